"""Where every bit of a ``.kvq`` file goes, beside the textbook figures.

The textbook cost of a K-colour palette image of N pixels is
N * ceil(log2 K) index bits plus 24 * K palette bits, against 24 * N bits
uncompressed (8 bits per channel: 8 and 32 per pixel for grey and RGBA).
A ``.kvq`` file with no ancillary chunks adds exactly the spec's fixed
overhead, plus at most 7 padding bits after the last index.
"""

from __future__ import annotations

from dataclasses import dataclass

from .container import OVERHEAD, Header


@dataclass(frozen=True)
class SizeBreakdown:
    """Bit accounting of one file.

    Attributes
    ----------
    n_pixels : int
    raw_bits : int
        Uncompressed: 8 * channels * N (24 * N for RGB).
    theory_bits : int
        N * ceil(log2 K) + 8 * channels * K.
    overhead_bits : int
        8 * the spec's fixed overhead (signature, chunk framing, header).
    palette_bits : int
        8 * channels * K.
    index_bits : int
        8 * ceil(N * b / 8): the index bits and the last byte's padding.
    file_bits : int
        Size of the file in bits.
    """

    n_pixels: int
    raw_bits: int
    theory_bits: int
    overhead_bits: int
    palette_bits: int
    index_bits: int
    file_bits: int

    @property
    def padding_bits(self) -> int:
        """int: zero bits after the last index (0 to 7)."""
        return self.index_bits - (self.theory_bits - self.palette_bits)

    @property
    def ancillary_bits(self) -> int:
        """int: bits in optional chunks (0 for files kvq writes)."""
        return self.file_bits - self.overhead_bits - self.palette_bits - self.index_bits

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
        """bool: file bits == theory + fixed overhead + padding, nothing else."""
        return self.file_bits == self.theory_bits + self.overhead_bits + self.padding_bits


def breakdown(header: Header, file_size: int | None = None) -> SizeBreakdown:
    """Account for the bits of a file with ``header``.

    Parameters
    ----------
    header : Header
    file_size : int, optional
        The file's real size in bytes; defaults to the size with no
        ancillary chunks.

    Returns
    -------
    SizeBreakdown
    """
    n = header.n_pixels
    entry_bits = 8 * header.channels
    return SizeBreakdown(
        n_pixels=n,
        raw_bits=entry_bits * n,
        theory_bits=n * header.bits + entry_bits * header.k,
        overhead_bits=8 * OVERHEAD,
        palette_bits=8 * header.palette_size,
        index_bits=8 * header.index_size,
        file_bits=8 * (header.file_size if file_size is None else file_size),
    )
