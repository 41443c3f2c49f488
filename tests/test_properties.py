"""Issue 6: property tests (hypothesis) of encode -> decode over random inputs.

Shapes, channel counts, K and contents are drawn at random; the properties are
the codec's promises: the decoded image has the input's shape, uses at most K
colours, is exactly the encoder's quantized pixels, is lossless when the input
has at most K colours, the file has exactly the size the header implies, and
encoding is deterministic. Below the codec, bit packing round-trips at every
width, including across block boundaries.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import kvq
from kvq import bitpack, container

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def colours(image: np.ndarray) -> int:
    flat = image.reshape(image.shape[0] * image.shape[1], -1)
    return len(np.unique(flat, axis=0))


@st.composite
def images(draw, max_side: int = 16):
    height = draw(st.integers(1, max_side))
    width = draw(st.integers(1, max_side))
    channels = draw(st.sampled_from([None, 1, 3, 4]))  # None: a 2-D grey array
    shape = (height, width) if channels is None else (height, width, channels)
    # Few distinct values as often as many: both the exact and the k-means path.
    levels = draw(st.sampled_from([1, 2, 5, 256]))
    values = arrays(np.uint8, shape, elements=st.integers(0, levels - 1).map(lambda v: v * (255 // max(levels - 1, 1))))
    return draw(values)


@SETTINGS
@given(image=images(), k=st.integers(1, 64) | st.sampled_from([256, 300]), seed=st.integers(0, 2**32 - 1))
def test_encode_decode_round_trip(image, k, seed):
    encoded = kvq.encode_image(image, k=k, seed=seed)
    data = encoded.data
    header = kvq.read_header(data)
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    assert (header.width, header.height, header.channels) == (width, height, channels)
    assert 1 <= header.k <= k
    assert header.bits == container.bits_for(header.k)
    # Fixed width: the size the header implies; entropy coding is chosen only when smaller.
    assert len(data) == header.fixed_file_size if header.coding == 0 else len(data) < header.fixed_file_size
    decoded = kvq.decode(data)
    assert decoded.dtype == np.uint8
    assert decoded.shape == ((height, width) if channels == 1 else (height, width, channels))
    # What the encoder says a decoder rebuilds is exactly the decoded array, grey (H, W) included.
    assert np.array_equal(decoded, encoded.pixels()) and decoded.shape == encoded.pixels().shape
    assert colours(decoded.reshape(height, width, -1)) == header.k  # compact: every entry used once
    # Lossless when the image has at most k colours; fully transparent pixels
    # are all one colour, (0, 0, 0, 0), as the README documents.
    canonical = image.reshape(height, width, -1).copy()
    if channels == 4:
        canonical[canonical[:, :, 3] == 0] = 0
    if colours(canonical) <= k:
        assert np.array_equal(decoded, canonical.reshape(decoded.shape))
    assert kvq.encode(image, k=k, seed=seed) == data  # deterministic


@SETTINGS
@given(
    channels=st.sampled_from([1, 3, 4]),
    k=st.integers(1, 256),
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    data=st.data(),
)
def test_indexed_round_trip(channels, k, height, width, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    palette = rng.integers(0, 256, (k, channels), dtype=np.uint8)
    indices = rng.integers(0, k, (height, width))
    file = kvq.encode_indexed(palette=palette, indices=indices)
    assert isinstance(file, bytes)  # regression: it returned an Encoded, not the documented bytes
    decoded = kvq.decode_indexed(file)
    # Entries may be merged or dropped, the pixels never change.
    assert np.array_equal(decoded.palette[decoded.indices], palette[indices])
    assert decoded.header.k <= k
    assert np.array_equal(kvq.decode(file).reshape(height, width, channels), palette[indices])


@settings(max_examples=12, deadline=None)
@given(k=st.sampled_from([257, 300, 511, 1025, 4097, 32768, 32769, 65536]), seed=st.integers(0, 1000))
def test_wide_indices_round_trip(k, seed):
    # 9..16 bits per index: k distinct RGB colours, each used at least once.
    rng = np.random.default_rng(seed)
    codes = rng.permutation(np.unique(rng.integers(0, 1 << 24, 2 * k)))[:k]
    palette = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=1).astype(np.uint8)
    n = k + 37
    width = 251
    height = -(-n // width)
    indices = rng.permutation(np.concatenate([np.arange(k), rng.integers(0, k, width * height - k)])).reshape(height, width)
    file = kvq.encode_indexed(palette=palette, indices=indices)
    header = kvq.read_header(file)
    assert header.k == k and header.bits == container.bits_for(k)
    assert np.array_equal(kvq.decode(file), palette[indices])


@settings(max_examples=200, deadline=None)
@given(bits=st.integers(0, 16), count=st.integers(0, 300), block=st.sampled_from([8, 16, 64, 1 << 20]), data=st.data())
def test_bitpack_round_trip_all_widths(bits, count, block, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    k = data.draw(st.integers((1 << (bits - 1)) + 1, 1 << bits)) if bits else 1  # bits == bits_for(k), as in a file
    values = rng.integers(0, k, count).astype(bitpack.index_dtype(k))
    saved = bitpack._BLOCK
    bitpack._BLOCK = block  # small blocks exercise the multi-block paths
    try:
        packed = bitpack.pack(values, bits)
        assert packed == bitpack.pack(values, bits, fast=False)
        assert len(packed) == (count * bits + 7) // 8
        for fast in (True, False):
            assert np.array_equal(bitpack.unpack(packed, bits, count, k, fast=fast), values)
        # An index >= k, or a set padding bit, is refused.
        if bits and count and k < (1 << bits):
            bad = values.copy()
            bad[data.draw(st.integers(0, count - 1))] = k
            with pytest.raises(kvq.FormatError):
                bitpack.unpack(bitpack.pack(bad, bits, fast=False), bits, count, k)
        if (count * bits) % 8:
            padded = packed[:-1] + bytes([packed[-1] | 1])
            with pytest.raises(kvq.FormatError):
                bitpack.unpack(padded, bits, count, k, fast=False)
    finally:
        bitpack._BLOCK = saved


@SETTINGS
@given(image=images(max_side=8), k=st.integers(1, 16), data=st.data())
def test_random_single_byte_change_is_detected(image, k, data):
    file = bytearray(kvq.encode(image, k=k))
    offset = data.draw(st.integers(0, len(file) - 1))
    file[offset] ^= data.draw(st.integers(1, 255))
    with pytest.raises(kvq.FormatError):
        kvq.decode(bytes(file))
    cut = data.draw(st.integers(0, len(file) - 1))
    with pytest.raises(kvq.FormatError):
        kvq.decode(bytes(kvq.encode(image, k=k))[:cut])


@SETTINGS
@given(
    chunks=st.lists(
        st.tuples(
            st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=1).flatmap(
                lambda first: st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3).map(
                    lambda rest: (first + rest).encode()
                )
            ),
            st.binary(max_size=40),
        ),
        max_size=6,
    )
)
def test_ancillary_chunks_are_skipped_and_kept(chunks):
    header = container.Header(3, 2, 3, 2, 1)
    palette, indices = bytes([1, 2, 3, 4, 5, 6]), b"\x54"
    data = container.write(header, palette, indices, chunks)
    parsed = container.parse(data, keep={kind for kind, _ in chunks})
    first: dict[bytes, bytes] = {}
    for kind, body in chunks:
        first.setdefault(kind, body)
    # The first chunk of each kept type (spec section 14); every other one is skipped.
    assert parsed.ancillary == list(first.items())
    assert parsed.skipped == len(chunks) - len(first)
    default = container.parse(data)  # keeps only the metadata types
    assert default.skipped + len(default.ancillary) == len(chunks)
    assert np.array_equal(kvq.decode(data), kvq.decode(container.write(header, palette, indices)))


@SETTINGS
@given(image=images(max_side=16), k=st.integers(1, 64))
def test_pillow_plugin_agrees_with_decode(image, k):
    pytest.importorskip("kvq.pillow_plugin")
    from PIL import Image

    data = kvq.encode(image, k=k)
    expected = kvq.decode(data)
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        mode = "RGBA" if expected.ndim == 3 and expected.shape[2] == 4 else ("L" if expected.ndim == 2 else "RGB")
        got = np.asarray(im.convert(mode))
    assert np.array_equal(got, expected)
