"""Where every bit of a ``.kvq`` file goes, beside the textbook figures.

The textbook cost of a K-colour palette image of N pixels is
N * ceil(log2 K) index bits plus 24 * K palette bits, against 24 * N bits
uncompressed (8 bits per channel: 8 and 32 per pixel for grey and RGBA).
A ``.kvq`` file with no ancillary chunks adds exactly the spec's fixed
overhead, plus at most 7 padding bits after the last index.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .container import OVERHEAD, Header, parse

#: What each index coding byte means, for reports.
CODING_NAMES = {0: "fixed width"}
_KINDS = {1: "grey", 3: "RGB", 4: "RGBA"}


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


@dataclass(frozen=True)
class FileReport:
    """What ``kvq info`` reports about one file: its header and where every bit goes.

    Attributes
    ----------
    name : str
        What to call the file (its path, or ``-``).
    header : Header
    sizes : SizeBreakdown
    file_size : int
        Bytes.
    ancillary : list of (str, int)
        Type and length in bytes of each ancillary chunk, in file order.
    """

    name: str
    header: Header
    sizes: SizeBreakdown
    file_size: int
    ancillary: list[tuple[str, int]]

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data, for ``kvq info --json``.

        Returns
        -------
        dict
            ``file``, ``header`` (every header field), ``bytes`` (file,
            overhead, palette, indices, ancillary), ``bits`` (every field of
            :class:`SizeBreakdown` with padding and ancillary bits),
            ``bits_per_pixel``, ``factor``, ``matches_theory`` and
            ``ancillary`` (list of ``{"type", "bytes"}``).
        """
        h, s = self.header, self.sizes
        return {
            "file": self.name,
            "header": {**asdict(h), "version": list(h.version), "coding_name": CODING_NAMES.get(h.coding, "unknown")},
            "bytes": {
                "file": self.file_size,
                "overhead": OVERHEAD,
                "palette": h.palette_size,
                "indices": h.index_size,
                "ancillary": s.ancillary_bits // 8,
            },
            "bits": {**asdict(s), "padding_bits": s.padding_bits, "ancillary_bits": s.ancillary_bits},
            "bits_per_pixel": s.bits_per_pixel,
            "factor": s.factor,
            "matches_theory": s.matches_theory,
            "ancillary": [{"type": kind, "bytes": length} for kind, length in self.ancillary],
        }

    def text(self) -> str:
        """str: the report as ``kvq info`` prints it, one fact per line."""
        h, s = self.header, self.sizes
        entry = 8 * h.channels
        lines = [
            f"file        {self.name}",
            f"format      kvq {h.version[0]}.{h.version[1]}, index coding {h.coding} ({CODING_NAMES.get(h.coding, 'unknown')})",
            f"image       {h.width} x {h.height} = {h.n_pixels:,} pixels, "
            f"{_KINDS[h.channels]} ({h.channels} channel{'s' if h.channels > 1 else ''})",
            f"palette     K = {h.k:,} entries, {h.bits} bit{'s' if h.bits != 1 else ''} per index",
            f"bytes       {self.file_size:,} = overhead {OVERHEAD} + palette {h.palette_size:,} + indices {h.index_size:,}"
            + (f" + ancillary {s.ancillary_bits // 8:,}" if s.ancillary_bits else ""),
            f"bits        {s.file_bits:,} ({s.bits_per_pixel:.4f} per pixel)",
            f"vs {entry}·N     {s.raw_bits:,} bits uncompressed: {s.factor:.3f}x smaller ({100 / s.factor:.2f} %)",
            f"vs theory   N·{h.bits} + {entry}·K = {s.theory_bits:,} bits; file = theory + {s.overhead_bits} overhead"
            f" + {s.padding_bits} padding" + (f" + {s.ancillary_bits:,} ancillary" if s.ancillary_bits else "") + " bits",
        ]
        lines += [f"ancillary   {kind} ({length:,} bytes)" for kind, length in self.ancillary]
        return "\n".join(lines)


def describe(data: bytes | bytearray | memoryview, name: str = "-") -> FileReport:
    """Check a whole ``.kvq`` file and account for its bits.

    Parameters
    ----------
    data : bytes-like
        The complete file.
    name : str, default="-"
        What to call it in the report.

    Returns
    -------
    FileReport

    Raises
    ------
    FormatError (and subclasses)
        The file is not a valid ``.kvq`` file (any pixel count is accepted).
    """
    parsed = parse(data, max_pixels=None)
    size = len(memoryview(data).cast("B"))
    ancillary = [(kind.decode(), len(body)) for kind, body in parsed.ancillary]
    return FileReport(name, parsed.header, breakdown(parsed.header, size), size, ancillary)


def summary(header: Header, sizes: SizeBreakdown, psnr: float, where: str) -> str:
    """The one line ``kvq encode`` prints about the file it wrote.

    Parameters
    ----------
    header : Header
    sizes : SizeBreakdown
    psnr : float
        dB.
    where : str
        The output's name.

    Returns
    -------
    str
    """
    return (
        f"{where}: {sizes.file_bits // 8:,} bytes, {sizes.bits_per_pixel:.3f} bpp, "
        f"{sizes.factor:.2f}x smaller than {8 * header.channels}·N, "
        f"K={header.k}, PSNR {psnr:.2f} dB"
    )
