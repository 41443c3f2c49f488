"""Decoding by row bands gives the whole decode's pixels, and its errors, band by band."""

from __future__ import annotations

import io

import numpy as np
import pytest

import kvq
from kvq.bands import BandReader


def whole_from_bands(data: bytes, band_pixels: int) -> np.ndarray:
    reader = BandReader(io.BytesIO(data), max_pixels=None)
    out = np.empty((reader.header.height, reader.header.width), dtype=kvq.decode_indexed(data).indices.dtype)
    rows = []
    for row, band in reader.bands(band_pixels):
        out[row : row + len(band)] = band
        rows.append((row, len(band)))
    # Bands tile the image exactly, in order.
    assert [r for r, _ in rows] == [sum(n for _, n in rows[:i]) for i in range(len(rows))]
    assert sum(n for _, n in rows) == reader.header.height
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 5, 16, 200, 256, 300, 70_000 // 2])
@pytest.mark.parametrize("shape", [(37, 29), (8, 1), (1, 1000), (64, 33)])
def test_bands_equal_the_whole_decode(k: int, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(k * shape[0])
    palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
    palette[:, 0] = np.arange(k) % 256  # distinct entries, so none is merged away
    palette[:, 1] = np.arange(k) // 256
    indices = rng.integers(0, k, shape)
    data = kvq.encode_indexed(palette=palette, indices=indices)
    expected = kvq.decode_indexed(data).indices
    for band_pixels in (1, 64, 1000, 1 << 20):
        assert np.array_equal(whole_from_bands(data, band_pixels), expected)


def test_pixel_bands_are_the_decoded_pixels(photo: np.ndarray) -> None:
    data = kvq.encode(photo, k=64)
    reader = BandReader(io.BytesIO(data))
    pixels = np.concatenate([band for _, band in reader.pixel_bands(band_pixels=2000)])
    assert np.array_equal(pixels, kvq.decode(data))


def corruptions(data: bytes, start: int) -> list[bytes]:
    """Every single-byte change from ``start`` on, a truncation at each length from there, and trailing bytes."""
    out = []
    for i in range(start, len(data)):
        for value in (0x00, 0xFF, data[i] ^ 0x01):
            if value != data[i]:
                out.append(data[:i] + bytes([value]) + data[i + 1 :])
    out += [data[:n] for n in range(start, len(data))]
    out.append(data + b"\x00")
    return out


@pytest.mark.parametrize("k", [3, 16, 300])
def test_errors_and_offsets_equal_the_whole_decode(k: int) -> None:
    rng = np.random.default_rng(k)
    palette = np.stack([np.arange(k) % 256, np.arange(k) // 256, np.zeros(k)], axis=1).astype(np.uint8)
    data = kvq.encode_indexed(palette=palette, indices=rng.integers(0, k, (9, 7)))
    index_offset = BandReader(io.BytesIO(data)).index_offset
    # From the index data on, the same checks in the same order.
    for broken in corruptions(data, index_offset):
        with pytest.raises(kvq.FormatError) as whole:
            kvq.decode(broken)
        with pytest.raises(kvq.FormatError) as banded:
            list(BandReader(io.BytesIO(broken)).bands(band_pixels=8))
        assert (type(banded.value), str(banded.value)) == (type(whole.value), str(whole.value))
    # Before it, the lazy reader of the palette (as the Pillow plugin opens
    # files) checks a chunk's declared length before its data: still an error.
    for broken in corruptions(data, 0)[: -1 - (len(data) - index_offset)]:
        with pytest.raises(kvq.FormatError):
            kvq.decode(broken)
        with pytest.raises(kvq.FormatError):
            list(BandReader(io.BytesIO(broken)).bands(band_pixels=8))


def test_index_beyond_palette_found_in_a_later_band_is_reported_at_its_pixel() -> None:
    # K = 3 at 2 bits: index 3 is invalid. The CRC is fixed up, so only the index check can catch it.
    import struct
    import zlib

    indices = np.zeros((16, 8), dtype=np.uint8) + np.array([0, 1, 2, 0, 1, 2, 0, 1], dtype=np.uint8)
    data = bytearray(kvq.encode_indexed(palette=np.eye(3, dtype=np.uint8) * 255, indices=indices, coding="fixed"))
    reader = BandReader(io.BytesIO(bytes(data)))
    bad_pixel = 12 * 8 + 3  # row 12: in the second band of 8 rows
    data[reader.index_offset + bad_pixel * 2 // 8] |= 0b11 << (6 - 2 * (bad_pixel % 4))
    length = reader.header.fixed_index_size
    body = bytes(data[reader.index_offset : reader.index_offset + length])
    crc = zlib.crc32(body, zlib.crc32(b"INDX", zlib.crc32(struct.pack(">I", length))))
    data[reader.index_offset + length :] = struct.pack(">I", crc)
    with pytest.raises(kvq.FormatError, match=f"pixel {bad_pixel:,} is >= palette size 3") as whole:
        kvq.decode(bytes(data))
    bands = BandReader(io.BytesIO(bytes(data))).bands(band_pixels=64)
    row, first = next(bands)  # the first band is fine and comes out
    assert row == 0 and first.shape == (8, 8)
    with pytest.raises(kvq.FormatError) as banded:
        next(bands)
    assert str(banded.value) == str(whole.value)
