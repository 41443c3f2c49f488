"""Decoding an open file by row bands, in memory for one band rather than the whole image.

A 100-megapixel file decoded whole holds the file's bytes, every index and
every pixel at once. :class:`BandReader` opens the file with the container's
reader (:class:`kvq.container.Reader`: header, palette, INDX's length, then
its CRC and the end of file in one streaming pass, before the first band) and
hands the index coding a band of rows at a time to decode, so that a consumer
(the Pillow plugin's decoder, ``kvq decode``) holds its output and one band.

That holds for codings that can start a band anywhere (fixed width, and
coding 2, whose stripes are decoded a group at a time on all cores:
``IndexCoding.streams``). The entropy-coded stream of coding 1 is one
sequential arithmetic-coded stream whose contexts run across rows, with no
point inside it to start from: it is decoded whole to its indices (1 byte a
pixel for K <= 256, 2 beyond), and only the palette lookup, 1, 3 or 4 bytes a
pixel, is done a band at a time.

Every check is the container's and the coding's own, with the same messages
and file offsets as :func:`kvq.decode`; the CRC is checked before the first
band is yielded, so a corrupt file never gives a single band of garbage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import numpy as np

from . import coding, container
from .container import DEFAULT_MAX_PIXELS, Header
from .metadata import Metadata

#: Pixels per band (rounded to whole rows, a multiple of 8 rows so that every
#: band but the last starts on a byte boundary at any index width).
BAND_PIXELS = 1 << 20


class BandReader:
    """A ``.kvq`` file open for decoding by row bands.

    Parameters
    ----------
    fp : binary file object
        Seekable, positioned at the start of the file.
    max_pixels : int or None, default=178,956,970
        Refuse larger images before reading past the header.
    threads : int, optional
        Threads a coding that decodes in parallel may use (coding 2's
        stripes); None: all the cores this process may use.

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

    def __init__(self, fp: IO[bytes], max_pixels: int | None = DEFAULT_MAX_PIXELS, *, threads: int | None = None) -> None:
        self._reader = container.Reader(fp, max_pixels)
        self.threads = threads
        self.header: Header = self._reader.header
        self.ancillary = self._reader.ancillary
        self.index_offset = self._reader.index_offset
        self.palette = np.frombuffer(self._reader.palette, dtype=np.uint8).reshape(self.header.k, self.header.channels)

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
            bytes; for fixed width, at the band holding it for an index >= K
            or non-zero padding bits.
        """
        source = self._reader.indices()
        yield from coding.by_code(self.header.coding).bands(source, self.header, self.band_rows(band_pixels), threads=self.threads)

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
