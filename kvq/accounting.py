"""Where every bit of a ``.kvq`` file goes, beside the textbook figures: pure arithmetic on a header and sizes.

The textbook cost of a K-colour palette image of N pixels is
N * ceil(log2 K) index bits plus 24 * K palette bits, against 24 * N bits
uncompressed (8 bits per channel: 8 and 32 per pixel for grey and RGBA).
A ``.kvq`` file with no ancillary chunks adds exactly the spec's fixed
overhead, plus at most 7 padding bits after the last index. What ``kvq info``
and ``kvq encode`` print about a file is :mod:`kvq.report`'s.

A header alone gives every size of a fixed-width file; the entropy-coded
stream's length is known only from its INDX chunk, so :func:`breakdown` also
takes the file itself and reads its chunk lengths (not its index data).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import coding as codings
from . import inputs
from .container import OVERHEAD, Header, Reader
from .errors import OptionError


@dataclass(frozen=True)
class SizeBreakdown:
    """Bit accounting of one file.

    Attributes
    ----------
    n_pixels : int
    raw_bits : int
        Uncompressed: 8 * channels * N (24 * N for RGB).
    theory_bits : int
        N * ceil(log2 K) + 8 * channels * K: the textbook fixed-width figure.
    overhead_bits : int
        8 * the spec's fixed overhead (signature, chunk framing, header).
    palette_bits : int
        8 * channels * K.
    index_bits : int
        8 * the INDX data bytes, whatever the coding.
    file_bits : int
        Size of the file in bits.
    coding : int
        The header's index coding byte (0 fixed width, 1 entropy coded).
    fixed_index_bits : int
        8 * ceil(N * b / 8): what the indices take in fixed width.
    side_bits : int
        Index bits that carry no index, as the coding counts them: the
        fixed-width padding, or the 32-bit flush of the entropy coder (its
        adaptive model sends nothing).
    """

    n_pixels: int
    raw_bits: int
    theory_bits: int
    overhead_bits: int
    palette_bits: int
    index_bits: int
    file_bits: int
    coding: int = codings.FALLBACK.code
    fixed_index_bits: int = 0
    side_bits: int = 0

    @property
    def _textbook(self) -> bool:
        return codings.by_code(self.coding).textbook

    @property
    def padding_bits(self) -> int:
        """int: zero bits after the last fixed-width index (0 to 7; 0 for the other codings)."""
        return self.side_bits if self._textbook else 0

    @property
    def ancillary_bits(self) -> int:
        """int: bits in optional chunks (0 for files kvq writes)."""
        return self.file_bits - self.overhead_bits - self.palette_bits - self.index_bits

    @property
    def fixed_file_bits(self) -> int:
        """int: the same file with fixed-width indices."""
        return self.file_bits - self.index_bits + self.fixed_index_bits

    @property
    def factor(self) -> float:
        """float: compression factor against the uncompressed bits."""
        return self.raw_bits / self.file_bits

    @property
    def bits_per_pixel(self) -> float:
        """float: file bits per pixel."""
        return self.file_bits / self.n_pixels

    @property
    def matches_theory(self) -> bool:
        """bool: fixed width and file bits == theory + fixed overhead + padding, nothing else."""
        return self._textbook and self.file_bits == self.theory_bits + self.overhead_bits + self.padding_bits

    @property
    def accounted(self) -> bool:
        """bool: every bit is overhead, palette, indices or ancillary, and the
        fixed-width indices are exactly theory + padding."""
        fixed_ok = self.fixed_index_bits == self.theory_bits - self.palette_bits + (-(self.theory_bits - self.palette_bits)) % 8
        return fixed_ok and self.ancillary_bits >= 0


def breakdown(source: Header | inputs.Source, file_size: int | None = None, index_size: int | None = None) -> SizeBreakdown:
    """Account for the bits of a file.

    Parameters
    ----------
    source : Header, or the file as bytes, a path or a binary file object
        A file is read up to its INDX chunk's length (chunk by chunk, every
        CRC before INDX checked; not the index data), which gives its header,
        its size and the index size. A header gives them only for fixed
        width, unless the sizes are passed.
    file_size : int, optional
        The file's real size in bytes; defaults to the file's, or for a header
        to the size with no ancillary chunks.
    index_size : int, optional
        Bytes of INDX data. With a header of a coding other than fixed width,
        required unless ``file_size`` is given (then taken as the file holds
        no ancillary chunk); a fixed-width file's follows from its header.

    Returns
    -------
    SizeBreakdown

    Raises
    ------
    OptionError
        A header of an entropy-coded file with neither size.
    FormatError, ImageTooLargeError
        A file that is not a valid ``.kvq`` up to its INDX chunk (no pixel
        limit applies: no pixel memory is taken).
    """
    if isinstance(source, Header):
        header = source
    else:
        with inputs.opened(source) as data:
            reader = Reader(data, max_pixels=None, lazy=True)
        header = reader.header
        file_size = reader.file_size if file_size is None else file_size
        index_size = reader.index_length if index_size is None else index_size
    n = header.n_pixels
    entry_bits = 8 * header.channels
    fixed = header.fixed_index_size
    coding = codings.by_code(header.coding)
    if index_size is None:
        if coding.textbook:
            index_size = fixed
        elif file_size is not None:
            index_size = file_size - OVERHEAD - header.palette_size
        else:
            raise OptionError(
                f"a header alone does not give the size of {coding.name}-coded indices: pass the file itself "
                "(kvq.breakdown(data) or kvq.breakdown(path)), or its file_size= or index_size="
            )
    if file_size is None:
        file_size = OVERHEAD + header.palette_size + index_size
    return SizeBreakdown(
        n_pixels=n,
        raw_bits=entry_bits * n,
        theory_bits=n * header.bits + entry_bits * header.k,
        overhead_bits=8 * OVERHEAD,
        palette_bits=8 * header.palette_size,
        index_bits=8 * index_size,
        file_bits=8 * file_size,
        coding=header.coding,
        fixed_index_bits=8 * fixed,
        side_bits=coding.side_bits(header, index_size),
    )
