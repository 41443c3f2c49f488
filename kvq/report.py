"""What ``kvq info`` and ``kvq encode`` say about a file: its header, palette and where every bit goes.

:func:`describe` checks a whole file, as decoding does, and returns a
:class:`FileReport`; its text is what ``kvq info`` prints, its dict what
``kvq info --json`` prints. The bit arithmetic itself is :mod:`kvq.accounting`'s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from . import coding as codings
from .accounting import SizeBreakdown, breakdown
from .codec import validate
from .container import OVERHEAD, Header

_KINDS = {1: "grey", 3: "RGB", 4: "RGBA"}


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
        Type and length in bytes of each ancillary chunk this reader keeps,
        in file order.
    palette : ndarray of uint8, shape (K, C)
    counts : ndarray of int64, shape (K,)
        Pixels that use each palette entry.
    skipped : int
        Ancillary chunks this reader does not know, checked and skipped.
    """

    name: str
    header: Header
    sizes: SizeBreakdown
    file_size: int
    ancillary: list[tuple[str, int]]
    palette: np.ndarray
    counts: np.ndarray
    skipped: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data, for ``kvq info --json``.

        Returns
        -------
        dict
            ``file``, ``header`` (every header field), ``bytes`` (file,
            overhead, palette, indices, ancillary), ``bits`` (every field of
            :class:`SizeBreakdown` with padding and ancillary bits),
            ``bits_per_pixel``, ``factor``, ``matches_theory``,
            ``ancillary`` (list of ``{"type", "bytes"}``), ``skipped_chunks``
            and ``palette`` (list of ``{"index", "color", "hex", "pixels"}``,
            ``color`` holding one value per channel).
        """
        h, s = self.header, self.sizes
        return {
            "file": self.name,
            "header": {**asdict(h), "version": list(h.version), "coding_name": codings.by_code(h.coding).description},
            "bytes": {
                "file": self.file_size,
                "overhead": OVERHEAD,
                "palette": h.palette_size,
                "indices": s.index_bits // 8,
                "indices_fixed_width": h.fixed_index_size,
                "ancillary": s.ancillary_bits // 8,
            },
            "bits": {
                **asdict(s),
                "padding_bits": s.padding_bits,
                "side_bits": s.side_bits,
                "ancillary_bits": s.ancillary_bits,
                "fixed_file_bits": s.fixed_file_bits,
            },
            "bits_per_pixel": s.bits_per_pixel,
            "factor": s.factor,
            "matches_theory": s.matches_theory,
            "ancillary": [{"type": kind, "bytes": length} for kind, length in self.ancillary],
            "skipped_chunks": self.skipped,
            "layout": codings.by_code(h.coding).layout(h),
            "palette": [
                {"index": i, "color": entry.tolist(), "hex": _hex(entry), "pixels": int(n)}
                for i, (entry, n) in enumerate(zip(self.palette, self.counts, strict=True))
            ],
        }

    def text(self, color: bool = False, max_entries: int = 256) -> str:
        """The report as ``kvq info`` prints it, one fact per line.

        Parameters
        ----------
        color : bool, default=False
            Show each palette entry as a swatch too (24-bit terminal colours).
        max_entries : int, default=256
            Palette entries listed; :meth:`as_dict` has them all.

        Returns
        -------
        str
        """
        h, s = self.header, self.sizes
        coding = codings.by_code(h.coding)
        entry = 8 * h.channels
        lines = [
            f"file        {self.name}",
            f"format      kvq {h.version[0]}.{h.version[1]}, index coding {h.coding} ({coding.description})",
            f"image       {h.width} x {h.height} = {h.n_pixels:,} pixels, "
            f"{_KINDS[h.channels]} ({h.channels} channel{'s' if h.channels > 1 else ''})",
            f"palette     K = {h.k:,} entries, {h.bits} bit{'s' if h.bits != 1 else ''} per index",
            f"bytes       {self.file_size:,} = overhead {OVERHEAD} + palette {h.palette_size:,} + indices {s.index_bits // 8:,}"
            + (f" + ancillary {s.ancillary_bits // 8:,}" if s.ancillary_bits else ""),
            f"bits        {s.file_bits:,} ({s.bits_per_pixel:.4f} per pixel)",
            f"vs {entry}·N     {s.raw_bits:,} bits uncompressed: {s.factor:.3f}x smaller ({100 / s.factor:.2f} %)",
        ]
        if coding.textbook:
            lines.append(
                f"vs theory   N·{h.bits} + {entry}·K = {s.theory_bits:,} bits; file = theory + {s.overhead_bits} overhead"
                f" + {s.padding_bits} padding" + (f" + {s.ancillary_bits:,} ancillary" if s.ancillary_bits else "") + " bits"
            )
        else:
            lines += [
                f"vs theory   N·{h.bits} + {entry}·K = {s.theory_bits:,} bits; file is {s.file_bits / s.theory_bits:.3f}x that",
                f"vs fixed    fixed-width file {s.fixed_file_bits:,} bits; this file is {s.fixed_file_bits / s.file_bits:.3f}x smaller",
                f"indices     {s.index_bits:,} bits = {(s.index_bits - s.side_bits) / h.n_pixels:.4f} per pixel"
                f" + {s.side_bits} side bits ({coding.side_information})",
            ]
            layout = coding.layout(h)
            if "stripes" in layout:
                count, rows = layout["stripes"], layout["stripe_rows"]
                last = h.height - (count - 1) * rows
                lines.append(
                    f"stripes     {count:,} of {rows:,} row{'s' if rows != 1 else ''}"
                    + (f" (the last {last:,})" if last != rows else "")
                    + ", each decodable on its own"
                )
        lines += [f"ancillary   {kind} ({length:,} bytes)" for kind, length in self.ancillary]
        if self.skipped:
            plural = "s" if self.skipped != 1 else ""
            lines.append(f"ancillary   {self.skipped:,} chunk{plural} unknown to this reader, skipped")
        lines += self._palette_lines(color, max_entries)
        return "\n".join(lines)

    def _palette_lines(self, color: bool, max_entries: int) -> list[str]:
        n = max(self.header.n_pixels, 1)
        index_width, count_width = len(f"{self.header.k - 1}"), len(f"{n:,}")
        lines = []
        for i, (entry, count) in enumerate(zip(self.palette[:max_entries], self.counts[:max_entries], strict=True)):
            swatch = _swatch(entry) + " " if color else ""
            share = f"({100 * count / n:.2f} %)"
            lines.append(f"entry       {i:>{index_width}}  {swatch}{_hex(entry):<9}  {int(count):>{count_width},} pixels {share}")
        if self.header.k > max_entries:
            lines.append(f"entry       ... {self.header.k - max_entries:,} more (kvq info --json lists every entry)")
        return lines


def _hex(entry: np.ndarray) -> str:
    """#rrggbb (#rrggbbaa with alpha) of a palette entry; grey as #vvvvvv."""
    values = [int(entry[0])] * 3 if len(entry) == 1 else [int(v) for v in entry]
    return "#" + "".join(f"{v:02x}" for v in values)


def _swatch(entry: np.ndarray) -> str:
    """Two cells of the entry's colour (alpha shown over black), as a 24-bit terminal background."""
    rgb = [int(entry[0])] * 3 if len(entry) == 1 else [int(v) for v in entry[:3]]
    if len(entry) == 4:
        rgb = [v * int(entry[3]) // 255 for v in rgb]
    return f"\x1b[48;2;{rgb[0]};{rgb[1]};{rgb[2]}m  \x1b[0m"


def describe(data: bytes | bytearray | memoryview, name: str = "-") -> FileReport:
    """Check a whole ``.kvq`` file, as decoding does, and account for its bits.

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
        The file is not a valid ``.kvq`` file: any error decoding would
        raise, from its chunks or its index data (any pixel count is accepted).
    """
    checked = validate(data, max_pixels=None)
    parsed, size = checked.parsed, checked.size
    ancillary = [(kind.decode(), len(body)) for kind, body in parsed.ancillary]
    return FileReport(
        name, parsed.header, breakdown(parsed.header, size, len(parsed.indices)), size, ancillary,
        checked.palette, checked.counts, parsed.skipped,
    )


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
