"""Decoding an open file by row bands, in memory for one band rather than the whole image.

A 100-megapixel file decoded whole holds the file's bytes, every index and
every pixel at once. :class:`BandReader` reads the header and palette, checks
the INDX chunk's length, CRC and end of file in one streaming pass, and then
unpacks and yields the indices a band of rows at a time, so that a consumer
(the Pillow plugin's decoder, ``kvq decode``) holds its output and one band.

That holds for fixed-width files (index coding 0). The entropy-coded stream
of coding 1 is one sequential arithmetic-coded stream whose contexts run
across rows, with no point inside it to start from: it is decoded whole to
its indices (1 byte a pixel for K <= 256, 2 beyond), and only the palette
lookup, 1, 3 or 4 bytes a pixel, is done a band at a time. A coding-1 decode
therefore holds its output, every index and one band of pixels.

The checks are those of :func:`kvq.container.parse` and
:func:`kvq.bitpack.unpack`, with the same messages and file offsets, and the
CRC is checked before the first band is yielded: a corrupt file never gives
a single band of garbage.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import IO

import numpy as np

from . import coding, container
from .container import DEFAULT_MAX_PIXELS, Header
from .errors import ChecksumError, FormatError, TruncatedError
from .metadata import Metadata

#: Pixels per band (rounded to whole rows, a multiple of 8 rows so that every
#: band but the last starts on a byte boundary at any index width).
BAND_PIXELS = 1 << 20
#: Bytes read per step of the checking pass.
_READ = 1 << 20


class BandReader:
    """A ``.kvq`` file open for decoding by row bands.

    Parameters
    ----------
    fp : binary file object
        Seekable, positioned at the start of the file.
    max_pixels : int or None, default=178,956,970
        Refuse larger images before reading past the header.

    Attributes
    ----------
    header : Header
    palette : ndarray of uint8, shape (K, C)
    ancillary : list of (bytes, bytes)
        Ancillary chunks, in file order.
    index_offset : int
        File offset of the first index byte.

    Raises
    ------
    FormatError (and subclasses), ImageTooLargeError
        The header, palette or an ancillary chunk is invalid.
    """

    def __init__(self, fp: IO[bytes], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        self._fp = fp
        self._start = fp.tell()
        self.header: Header = container.read_header_from(fp, max_pixels)
        palette, self.ancillary, self.index_offset, self.index_length = container.read_palette_from(fp, self.header)
        self.palette = np.frombuffer(palette, dtype=np.uint8).reshape(self.header.k, self.header.channels)

    @property
    def metadata(self) -> Metadata:
        """Metadata: the file's ICC profile, EXIF and resolution, as :func:`kvq.decode_indexed` reads them."""
        return Metadata.from_chunks(self.ancillary)

    def band_rows(self, band_pixels: int | None = None) -> int:
        """Rows per band: about ``band_pixels`` pixels, a multiple of 8 rows.

        Parameters
        ----------
        band_pixels : int, optional
            Default: :data:`BAND_PIXELS` (1,048,576).

        Returns
        -------
        int
        """
        if band_pixels is None:
            band_pixels = BAND_PIXELS
        return max(8, band_pixels // self.header.width // 8 * 8)

    def _verify(self) -> None:
        """Check the INDX chunk's data length, CRC and that nothing follows it, as parse() does."""
        fp = self._fp
        length, chunk = self.index_length, self.index_offset - 8
        available = fp.seek(0, 2) - self._start - chunk
        if available < container.CHUNK_OVERHEAD:
            raise TruncatedError("file ends inside a chunk header", chunk)
        if length > available - container.CHUNK_OVERHEAD:
            raise TruncatedError(f"chunk INDX declares {length:,} bytes but the file ends first", chunk)
        fp.seek(self._start + self.index_offset)
        crc = zlib.crc32(container.INDX, zlib.crc32(struct.pack(">I", length)))
        left = length
        while left:
            piece = fp.read(min(left, _READ))
            if not piece:  # the file shrank since it was measured
                raise TruncatedError(f"chunk INDX declares {length:,} bytes but the file ends first", chunk)
            crc = zlib.crc32(piece, crc)
            left -= len(piece)
        tail = fp.read(4)
        if len(tail) < 4:
            raise TruncatedError(f"chunk INDX declares {length:,} bytes but the file ends first", chunk)
        (stored,) = struct.unpack(">I", tail)
        if stored != crc:
            raise ChecksumError(f"CRC-32 mismatch in chunk INDX: stored {stored:08x}, computed {crc:08x}", self.index_offset + length)
        extra = available - container.CHUNK_OVERHEAD - length
        if extra:
            raise FormatError(f"{extra:,} bytes after the INDX chunk, which must be last", self.index_offset + length + 4)

    def bands(self, band_pixels: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Check the index data, then yield it a band of rows at a time.

        Parameters
        ----------
        band_pixels : int, optional
            About how many pixels per band; default :data:`BAND_PIXELS`.

        Yields
        ------
        row : int
            Index of the band's first row.
        indices : ndarray, shape (rows, width)
            uint8 when K <= 256, else uint16; every value < K.

        Raises
        ------
        TruncatedError, ChecksumError, FormatError
            Before the first band for a short file, a bad CRC or trailing
            bytes; at the band holding it for an index >= K or non-zero
            padding bits.
        """
        h = self.header
        self._verify()
        # Offsets of errors are counted from the file's start, which may not be the stream's.
        source = container.IndexSource(self._fp, self.index_offset, self.index_length, base=self._start)
        yield from coding.by_code(h.coding).bands(source, h, self.band_rows(band_pixels))

    def pixel_bands(self, band_pixels: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """As :meth:`bands`, with every index looked up in the palette.

        Yields
        ------
        row : int
        pixels : ndarray of uint8, shape (rows, width, channels)
        """
        from .codec import lookup

        for row, indices in self.bands(band_pixels):
            yield row, lookup(self.palette, indices)

