"""Index coding 0: fixed width, ceil(log2 K) bits per index (spec §6).

Row-major, most significant bit first, no row padding, the last byte
zero-padded: the textbook N * ceil(log2 K) bits. The bit work is
:mod:`kvq.bitpack`'s; this module says what the format asks of it. Any run of
8 indices fills whole bytes, so a band of 8 rows (or any 8 pixels) starts on
a byte boundary: the indices can be read a band at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from .. import bitpack
from ..errors import FormatError
from .base import IndexCoding

if TYPE_CHECKING:
    from ..container import Header, IndexSource


def fixed_size(n_pixels: int, bits: int) -> int:
    """Bytes of ``n_pixels`` indices packed at ``bits`` bits each: ceil(N * bits / 8).

    Parameters
    ----------
    n_pixels, bits : int

    Returns
    -------
    int
    """
    return (n_pixels * bits + 7) // 8


class FixedWidth(IndexCoding):
    """Coding 0: every index in ceil(log2 K) bits (format 1.0)."""

    code = 0
    name = "fixed"
    description = "fixed width"
    summary = "ceil(log2 K) bits each, format 1.0"
    minor = 0
    streams = True
    textbook = True
    side_information = "padding"

    def check_length(self, header: Header, length: int) -> str | None:
        expected = fixed_size(header.n_pixels, header.bits)
        if length != expected:
            return f"INDX holds {length:,} bytes, expected {expected:,}"
        return None

    def encode(self, indices: np.ndarray, k: int, *, limit: int | None = None, threads: int | None = None) -> bytes | None:
        return bitpack.pack(indices, (k - 1).bit_length())

    def decode(
        self, body: bytes | memoryview, header: Header, *, rows: tuple[int, int] | None = None, threads: int | None = None
    ) -> np.ndarray:
        y0, y1 = (0, header.height) if rows is None else rows
        view = memoryview(body).cast("B")
        flat = _unpack(lambda start, size: view[start : start + size], header, y0 * header.width, (y1 - y0) * header.width)
        return flat.reshape(y1 - y0, header.width)

    def count(self, body: bytes | memoryview, header: Header) -> np.ndarray:
        # Block by block: validating a file never holds its indices.
        return bitpack.tally(body, header.bits, header.n_pixels, header.k)

    def bands(self, source: IndexSource, header: Header, band_rows: int, *, threads: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        for row in range(0, header.height, band_rows):
            rows = min(band_rows, header.height - row)
            try:
                band = _unpack(source.read, header, row * header.width, rows * header.width)
            except FormatError as exc:
                raise exc.rebased(source.offset) from None
            yield row, band.reshape(rows, header.width)

    def side_bits(self, header: Header, index_size: int) -> int:
        return 8 * index_size - header.n_pixels * header.bits


def _unpack(read: Callable[[int, int], bytes | memoryview], header: Header, first: int, count: int) -> np.ndarray:
    """Indices ``first`` to ``first + count`` (pixel numbers), read through ``read(start, size)`` of the INDX data.

    The read starts at the run of 8 indices holding the first one (a byte
    boundary) and ends at a run's end, or at the image's end, where the
    padding rule applies; every index of the range is checked against K,
    numbered from the start of the image, with offsets in the INDX data.
    """
    bits, n = header.bits, header.n_pixels
    start, stop = first // 8 * 8, min(n, -(-(first + count) // 8) * 8)
    start_byte = start * bits // 8
    data = read(start_byte, fixed_size(stop, bits) - start_byte)
    try:
        # The whole width: K is checked below, with pixel numbers from the image's start.
        unpacked = bitpack.unpack(data, bits, stop - start, 1 << bits)
    except FormatError as exc:
        raise exc.rebased(start_byte) from None
    indices = unpacked[first - start : first - start + count]
    bitpack.check_below(indices, header.k, bits, first=first)
    return indices.astype(bitpack.index_dtype(header.k), copy=False)
