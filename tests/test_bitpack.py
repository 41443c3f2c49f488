"""Index packing: the numpy fast path, the bitarray path and the spec's bit-by-bit definition give the same bytes."""

from __future__ import annotations

import numpy as np
import pytest

from kvq import bitpack
from kvq.errors import FormatError

COUNTS = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 255, 1001]


def spec_pack(values, bits: int) -> bytes:
    """Section 6 of the spec, literally: one bit stream, MSB first, zero padding."""
    stream = "".join(format(int(v), f"0{bits}b") for v in values) if bits else ""
    stream += "0" * (-len(stream) % 8)
    return bytes(int(stream[i : i + 8], 2) for i in range(0, len(stream), 8))


def values_for(rng, bits: int, count: int) -> np.ndarray:
    dtype = np.uint8 if bits <= 8 else np.uint16
    v = rng.integers(0, 1 << bits, size=count).astype(dtype)
    v[0] = (1 << bits) - 1  # the all-ones index and zero both occur
    if count > 1:
        v[-1] = 0
    return v


@pytest.mark.parametrize("bits", range(1, 17))
def test_all_paths_agree_and_round_trip(rng, bits):
    for count in COUNTS:
        values = values_for(rng, bits, count)
        packed = bitpack.pack(values, bits)
        assert packed == bitpack.pack(values, bits, fast=False) == spec_pack(values, bits)
        assert len(packed) == (count * bits + 7) // 8
        k = 1 << bits
        for fast in (True, False):
            out = bitpack.unpack(packed, bits, count, k, fast=fast)
            assert out.dtype == bitpack.index_dtype(k)
            np.testing.assert_array_equal(out, values)


@pytest.mark.parametrize("bits", [8, 16])
def test_whole_byte_widths_are_plain_bytes(rng, bits):
    values = values_for(rng, bits, 50)
    expected = values.astype(np.uint8).tobytes() if bits == 8 else values.astype(">u2").tobytes()
    assert bitpack.pack(values, bits) == bitpack.pack(values, bits, fast=False) == expected


def test_known_bytes():
    assert bitpack.pack(np.array([0, 1, 2, 2, 0, 1]), 2) == bytes([0x1A, 0x10])
    assert bitpack.pack(np.array([1, 0, 1]), 1) == bytes([0b10100000])
    assert bitpack.pack(np.array([256, 1], dtype=np.uint16), 9) == bytes([0b10000000, 0b00000000, 0b01000000])
    assert bitpack.pack(np.array([0x1234], dtype=np.uint16), 16) == b"\x12\x34"


def test_two_dimensional_input_is_packed_row_major_without_row_padding():
    grid = np.array([[1, 0, 1], [1, 1, 0]], dtype=np.uint8)
    assert bitpack.pack(grid, 1) == bytes([0b10111000])


def test_zero_bits():
    assert bitpack.pack(np.zeros(10, np.uint8), 0) == b""
    out = bitpack.unpack(b"", 0, 10, 1)
    assert out.dtype == np.uint8 and out.shape == (10,) and not out.any()


@pytest.mark.parametrize("bits", [3, 9, 13])
def test_block_boundaries(rng, monkeypatch, bits):
    # Blocks are 2**20 pixels; shrink them so that many block joins are crossed on a small array.
    monkeypatch.setattr(bitpack, "_BLOCK", 64)
    for count in (63, 64, 65, 128, 129, 64 * 7 + 5):
        values = values_for(rng, bits, count)
        packed = bitpack.pack(values, bits, fast=False)
        assert packed == spec_pack(values, bits)
        np.testing.assert_array_equal(bitpack.unpack(packed, bits, count, 1 << bits, fast=False), values)


@pytest.mark.parametrize("bits", range(1, 17))
def test_fast_unpack_across_block_joins(rng, monkeypatch, bits):
    # The numpy paths work a block at a time (and the 9-15 bit one reads 4
    # bytes past each field): shrunk blocks put many joins, and the tail, in a small array.
    monkeypatch.setattr(bitpack, "_BLOCK", 64)
    for count in (16, 17, 63, 64, 65, 71, 72, 73, 128, 129, 64 * 7 + 5):
        values = values_for(rng, bits, count)
        packed = spec_pack(values, bits)
        np.testing.assert_array_equal(bitpack.unpack(packed, bits, count, 1 << bits), values)


@pytest.mark.parametrize("bits", range(9, 16))
def test_fast_wide_unpack_rejects_bad_padding_and_large_indices(bits):
    count = 8 * 5 + 3  # several whole groups on the fast path, then a tail with padding
    k = (1 << (bits - 1)) + 3
    packed = bytearray(bitpack.pack(np.zeros(count, np.uint16), bits))
    packed[-1] |= 1
    with pytest.raises(FormatError, match="padding bits") as info:
        bitpack.unpack(bytes(packed), bits, count, k)
    assert info.value.offset == len(packed) - 1
    for pixel in (0, 7, 8, 17, 31, count - 1):
        values = np.zeros(count, np.uint16)
        values[pixel] = k
        with pytest.raises(FormatError, match=f"index {k} of pixel {pixel} is >= palette size {k}") as info:
            bitpack.unpack(bitpack.pack(values, bits), bits, count, k)
        assert info.value.offset == pixel * bits // 8


def test_real_block_size_round_trip(rng):
    count = (1 << 20) + 13
    values = rng.integers(0, 1 << 5, size=count).astype(np.uint8)
    packed = bitpack.pack(values, 5)
    assert len(packed) == (count * 5 + 7) // 8
    np.testing.assert_array_equal(bitpack.unpack(packed, 5, count, 32), values)


@pytest.mark.parametrize("bits, count", [(1, 1), (1, 9), (2, 3), (3, 7), (5, 3), (7, 9), (9, 1), (9, 7), (15, 3)])
def test_non_zero_padding_is_rejected(bits, count):
    packed = bytearray(bitpack.pack(np.zeros(count, np.uint16), bits))
    pad = len(packed) * 8 - count * bits
    assert 0 < pad < 8
    for bit in range(pad):
        corrupt = bytearray(packed)
        corrupt[-1] |= 1 << bit
        with pytest.raises(FormatError, match="padding bits") as info:
            bitpack.unpack(bytes(corrupt), bits, count, 1 << bits)
        assert info.value.offset == len(packed) - 1


@pytest.mark.parametrize("k", [3, 5, 200, 255, 257, 600, 40000, 65535])
@pytest.mark.parametrize("fast", [True, False])
def test_index_at_or_above_k_is_rejected(rng, k, fast):
    bits = (k - 1).bit_length()
    count = 37
    values = rng.integers(0, k, size=count).astype(bitpack.index_dtype(1 << bits))
    assert bitpack.unpack(bitpack.pack(values, bits), bits, count, k, fast=fast).max() < k
    for pixel, bad in ((0, k), (20, (1 << bits) - 1), (36, k)):
        corrupt = values.copy()
        corrupt[pixel] = bad
        with pytest.raises(FormatError, match=f"index {bad} of pixel {pixel} is >= palette size {k}") as info:
            bitpack.unpack(bitpack.pack(corrupt, bits), bits, count, k, fast=fast)
        assert info.value.offset == pixel * bits // 8


@pytest.mark.parametrize("k, dtype", [(1, np.uint8), (256, np.uint8), (257, np.uint16), (65536, np.uint16)])
def test_index_dtype(k, dtype):
    assert bitpack.index_dtype(k) == dtype
