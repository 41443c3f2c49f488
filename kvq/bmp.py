"""A palette BMP of 1 or 4 bits per pixel, which Pillow does not write.

Pillow writes every mode ``P`` image as an 8-bit BMP; a palette of at most 16
entries needs only 4 bits a pixel (2 entries, 1 bit), half or an eighth of
the bytes, and every BMP reader reads those depths (Pillow, browsers,
Windows). The format is small and fixed (Microsoft's BITMAPINFOHEADER)::

    offset  size  field
    0       2     "BM"
    2       4     file size                    (all integers little-endian)
    6       4     0 (reserved)
    10      4     offset of the pixel rows
    14      4     40: the size of BITMAPINFOHEADER
    18      4     width
    22      4     height (positive: rows stored bottom-up)
    26      2     1 plane
    28      2     bits per pixel: 1 or 4
    30      4     0: BI_RGB, uncompressed
    34      4     size of the pixel rows
    38      4     horizontal resolution, pixels per metre
    42      4     vertical resolution, pixels per metre
    46      4     entries in the palette
    50      4     0: every entry is important
    54      4 * N palette: blue, green, red, 0
    ...           rows, bottom row first, each padded to a multiple of 4 bytes;
                  the leftmost pixel in the high bits of a byte

Larger palettes, and images Pillow writes well, go through Pillow.
"""

from __future__ import annotations

import struct
from typing import IO

import numpy as np

__all__ = ["bits_for", "write_palette_bmp"]

_FILE_HEADER = 14
_INFO_HEADER = 40
_INCH = 0.0254


def bits_for(entries: int) -> int | None:
    """The BMP depth this module writes for a palette of ``entries``: 1, 4, or None (Pillow's 8 bits).

    Parameters
    ----------
    entries : int

    Returns
    -------
    int or None
    """
    if entries <= 2:
        return 1
    if entries <= 16:
        return 4
    return None


def write_palette_bmp(indices: np.ndarray, palette: np.ndarray, fp: IO[bytes], *, dpi: tuple[float, float] | None = None) -> None:
    """Write a palette image as a 1- or 4-bit BMP.

    Parameters
    ----------
    indices : ndarray of uint8, shape (H, W)
        Values below ``len(palette)``.
    palette : ndarray of uint8, shape (K, 3)
        RGB entries, K <= 16.
    fp : binary file object
    dpi : (float, float), optional
        Resolution; stored as pixels per metre.

    Raises
    ------
    ValueError
        More than 16 entries.
    """
    height, width = indices.shape
    bits = bits_for(len(palette))
    if bits is None:
        raise ValueError(f"a {len(palette)}-entry palette needs 8 bits a pixel")
    per_byte = 8 // bits
    row_bytes = (width * bits + 7) // 8
    stride = (row_bytes + 3) // 4 * 4
    padded = np.zeros((height, row_bytes * per_byte), dtype=np.uint8)
    padded[:, :width] = indices
    # Leftmost pixel in the highest bits.
    groups = padded.reshape(height, row_bytes, per_byte)
    shifts = (bits * np.arange(per_byte - 1, -1, -1)).astype(np.uint8)
    packed = np.bitwise_or.reduce(groups << shifts, axis=2).astype(np.uint8)
    rows = np.zeros((height, stride), dtype=np.uint8)
    rows[:, :row_bytes] = packed
    entries = np.zeros((len(palette), 4), dtype=np.uint8)
    entries[:, :3] = palette[:, ::-1]  # BGR, then a zero byte
    per_metre = (0, 0) if dpi is None else tuple(round(d / _INCH) for d in dpi)
    offset = _FILE_HEADER + _INFO_HEADER + entries.nbytes
    size = offset + rows.nbytes
    fp.write(struct.pack("<2sIHHI", b"BM", size, 0, 0, offset))
    fp.write(struct.pack("<IiiHHIIiiII", _INFO_HEADER, width, height, 1, bits, 0, rows.nbytes, *per_metre, len(palette), 0))
    fp.write(entries.tobytes())
    fp.write(rows[::-1].tobytes())  # bottom row first
