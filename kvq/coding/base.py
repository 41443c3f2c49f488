"""The base class of every index coding: what the container, codec, bands and reports ask of one."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:  # the container imports the codings, not the other way round
    from ..container import Header, IndexSource


class IndexCoding(abc.ABC):
    """One index coding: how INDX holds the palette index of every pixel.

    Attributes
    ----------
    code : int
        The header's ``coding`` byte.
    name : str
        Its name in options and on the command line.
    description : str
        For reports (``kvq info``).
    summary : str
        One line for ``--help``.
    minor : int
        The minor format version that defines it; files that use it are
        written with this minor version.
    compiled : bool
        Whether encoding and decoding run compiled (numba) kernels.
    streams : bool
        Whether :meth:`bands` holds one band of indices at a time (True), or
        decodes them all and hands them out by bands (False).
    partial : bool
        Whether :meth:`read_rows` reads only the bytes the rows need, its own
        checks (a CRC of every part it reads) standing in for INDX's CRC,
        which only a reader of every byte can check.
    textbook : bool
        Whether INDX is exactly the textbook N * ceil(log2 K) bits, padded to
        a whole byte: its side bits are that padding, and a file with no
        ancillary chunk is exactly theory + overhead + padding.
    side_information : str
        What its side bits are, for reports.
    """

    code: ClassVar[int]
    name: ClassVar[str]
    description: ClassVar[str]
    summary: ClassVar[str]
    minor: ClassVar[int]
    compiled: ClassVar[bool] = False
    streams: ClassVar[bool] = False
    partial: ClassVar[bool] = False
    textbook: ClassVar[bool] = False
    side_information: ClassVar[str]

    def check_length(self, header: Header, length: int) -> str | None:
        """Why an INDX chunk of ``length`` bytes cannot hold ``header``'s indices, or None.

        Cheap, from the header alone (spec rule 18 and the coding's own).

        Parameters
        ----------
        header : Header
        length : int
            INDX data bytes, as the chunk declares.

        Returns
        -------
        str or None
        """
        return None

    @abc.abstractmethod
    def encode(self, indices: np.ndarray, k: int, *, limit: int | None = None, threads: int | None = None) -> bytes | None:
        """Code an (H, W) index array.

        Parameters
        ----------
        indices : ndarray of uint8 or uint16, shape (H, W)
            Every value below ``k``.
        k : int
            Palette size.
        limit : int, optional
            Give up (return None) rather than exceed this many bytes.
        threads : int, optional
            Threads a coding that can use several may use.

        Returns
        -------
        bytes or None
        """

    @abc.abstractmethod
    def decode(
        self, body: bytes | memoryview, header: Header, *, rows: tuple[int, int] | None = None, threads: int | None = None
    ) -> np.ndarray:
        """Decode INDX data to indices.

        Parameters
        ----------
        body : bytes-like
            The INDX chunk's data, its length already checked by :meth:`check_length`.
        header : Header
        rows : (int, int), optional
            Decode only rows ``y0`` to ``y1`` (a coding that cannot start
            inside the image decodes it all and slices).
        threads : int, optional

        Returns
        -------
        ndarray, shape (rows, W)
            uint8 when K <= 256, else uint16; every value below K.

        Raises
        ------
        FormatError
            With the offset inside ``body``; the caller rebases it to the file.
        """

    def read_rows(
        self,
        read: Callable[[int, int], bytes | memoryview],
        length: int,
        header: Header,
        rows: tuple[int, int] | None = None,
        *,
        threads: int | None = None,
    ) -> np.ndarray:
        """Rows ``y0`` to ``y1`` of the indices, the INDX data read through ``read(start, size)``.

        This default reads all of it and decodes with :meth:`decode`; a
        :attr:`partial` coding reads only what the rows need.

        Parameters
        ----------
        read : callable
            ``read(start, size)`` gives INDX data bytes.
        length : int
            Bytes of INDX data.
        header : Header
        rows : (int, int), optional
            Default: every row.
        threads : int, optional

        Returns
        -------
        ndarray, shape (y1 - y0, W)

        Raises
        ------
        FormatError
            With the offset inside the INDX data.
        """
        return self.decode(read(0, length), header, rows=rows, threads=threads)

    def count(self, body: bytes | memoryview, header: Header) -> np.ndarray:
        """Pixels per palette entry, checking the data exactly as :meth:`decode` does.

        Parameters
        ----------
        body : bytes-like
        header : Header

        Returns
        -------
        ndarray of int64, shape (K,)

        Raises
        ------
        FormatError
            The error :meth:`decode` raises, its offset inside ``body``.
        ImageTooLargeError
            The indices do not fit in memory (codings that must decode them all).
        """
        from ..bitpack import count_values, index_dtype
        from ..memory import allocating

        with allocating(header, header.n_pixels * index_dtype(header.k).itemsize):
            indices = self.decode(body, header)
        return count_values(indices, header.k)

    def bands(self, source: IndexSource, header: Header, band_rows: int, *, threads: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield the indices a band of rows at a time.

        This default decodes the whole stream (a coding whose contexts run
        across rows has no point inside it to start from) and slices it.

        Parameters
        ----------
        source : IndexSource
            The INDX data, its length, CRC and the end of file already checked.
        header : Header
        band_rows : int
            Rows per band (a multiple of 8).
        threads : int, optional

        Yields
        ------
        row : int
            The band's first row.
        indices : ndarray, shape (rows, W)
        """
        from ..bitpack import index_dtype
        from ..errors import FormatError
        from ..memory import allocating

        try:
            with allocating(header, header.n_pixels * index_dtype(header.k).itemsize):
                indices = self.decode(source.whole(), header, threads=threads)
        except FormatError as exc:
            raise exc.rebased(source.offset) from None
        for row in range(0, header.height, band_rows):
            yield row, indices[row : row + band_rows]

    @abc.abstractmethod
    def side_bits(self, header: Header, index_size: int) -> int:
        """Bits of ``index_size`` bytes of INDX data that carry no index (padding, coder flush, stream tables).

        Parameters
        ----------
        header : Header
        index_size : int
            Bytes of INDX data.

        Returns
        -------
        int
        """

    def layout(self, header: Header) -> dict[str, int]:
        """Facts of how INDX is laid out for ``header``'s image, for reports (``kvq info``): none by default.

        Parameters
        ----------
        header : Header

        Returns
        -------
        dict of str to int
        """
        return {}

    def start(self) -> None:  # noqa: B027 - optional: a pure-numpy coding has nothing to start
        """Compile, or load from the cache, the coding's compiled kernels (nothing for pure-numpy codings)."""

    def __repr__(self) -> str:
        return f"<index coding {self.code} ({self.name})>"
