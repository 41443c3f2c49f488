"""The suite's written output: ``results.csv`` and ``report.md``."""

from __future__ import annotations

import csv
import math
import platform
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..container import OVERHEAD
from .peers import PEERS, pngquant_version
from .suite import Row, csv_columns

#: Peers whose size ratio is in the summary, in order.
SUMMARY_PEERS = ("png8", "pngquant", "gif", "kvq_png8", "webp", "jxl", "jpeg", "kmeans")


def write_csv(rows: Sequence[Row], path: Path) -> None:
    """Write one CSV line per image and K (columns: :func:`kvq.bench.suite.csv_columns`)."""
    with open(path, "w", newline="", encoding="utf-8") as fp:
        writer = csv.DictWriter(fp, fieldnames=csv_columns(), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _csv_value(value) for key, value in row.csv_dict().items()})


def _csv_value(value: object) -> object:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        if math.isnan(value):
            return ""
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"
    return value


@dataclass
class Summary:
    """Means over the images at one requested K.

    Ratios (``factor``, ``ratio``) are geometric means, so that one extreme
    image cannot outweigh all the others and ``a ÷ b`` summarises as the
    inverse of ``b ÷ a``; bits per pixel, PSNR (already a logarithm), SSIM and
    ΔE2000 are arithmetic means.
    """

    k: int
    images: int
    factor: float
    #: the textbook N·ceil(log2 K) + 8·C·K bits over the file's bits: geometric mean, smallest and largest
    theory_factor: float
    theory_range: tuple[float, float]
    bpp: float
    psnr: float
    ssim: float
    delta_e2000: float
    #: rows whose accounting holds (:attr:`kvq.bench.suite.Row.accounting_holds`)
    held: int
    lossless: int
    #: mean bits per pixel of the same files with fixed-width indices
    fixed_bpp: float = math.nan
    #: rows per index coding of their files, by name, most first
    codings: dict[str, int] = field(default_factory=dict)
    #: peer -> (geometric mean of kvq bytes / peer bytes, images with the peer)
    ratio: dict[str, tuple[float, int]] = field(default_factory=dict)
    #: peer -> (mean bpp, mean PSNR, mean SSIM, images with the peer)
    peer_quality: dict[str, tuple[float, float, float, int]] = field(default_factory=dict)
    #: kvq's engine beside the textbook method, over the images that have both (:class:`Textbook`)
    textbook: Textbook | None = None


@dataclass
class Textbook:
    """kvq's engine beside scikit-learn's KMeans (the ``kmeans`` peer) at one K, over the same images.

    PSNR and ΔE2000 are arithmetic means (PSNR over the images where both are
    finite); seconds are means of each encode's wall time, and the time ratio
    a geometric mean of the per-image ratios.
    """

    images: int
    psnr: float
    kmeans_psnr: float
    delta_e2000: float
    kmeans_delta_e2000: float
    seconds: float
    kmeans_seconds: float
    time_ratio: float


def _mean(values: Sequence[float]) -> float:
    values = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    return sum(values) / len(values) if values else math.nan


def _geomean(values: Sequence[float]) -> float:
    """Geometric mean of the positive finite values; NaN when there are none."""
    values = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan


def summarise(rows: Sequence[Row]) -> list[Summary]:
    """Means per requested K, in the order the Ks were given (ratios: geometric means).

    PSNR means are over the images whose kvq PSNR is finite; ``lossless``
    counts the others (images with at most K colours).
    """
    ks: list[int] = []
    for row in rows:
        if row.k_requested not in ks:
            ks.append(row.k_requested)
    out = []
    for k in ks:
        group = [r for r in rows if r.k_requested == k]
        summary = Summary(
            k=k,
            images=len(group),
            factor=_geomean([r.factor_vs_raw for r in group]),
            theory_factor=_geomean([r.theory_bits / r.file_bits for r in group]),
            theory_range=(min(r.theory_bits / r.file_bits for r in group), max(r.theory_bits / r.file_bits for r in group)),
            bpp=_mean([r.bpp for r in group]),
            psnr=_mean([r.psnr for r in group if math.isfinite(r.psnr)]),
            ssim=_mean([r.ssim for r in group]),
            delta_e2000=_mean([r.delta_e2000 for r in group]),
            held=sum(r.accounting_holds for r in group),
            lossless=sum(not math.isfinite(r.psnr) for r in group),
            fixed_bpp=_mean([r.fixed_file_bits / r.n_pixels for r in group]),
            codings=dict(Counter(r.coding for r in group).most_common()),
        )
        for key in PEERS:
            have = [r for r in group if r.peers.get(key, {}).get("bytes")]
            if not have:
                continue
            summary.ratio[key] = (_geomean([r.file_bytes / r.peers[key]["bytes"] for r in have]), len(have))
            finite = [r.peers[key]["psnr"] for r in have if math.isfinite(r.peers[key]["psnr"])]
            summary.peer_quality[key] = (
                _mean([r.peers[key]["bpp"] for r in have]),
                _mean(finite),
                _mean([r.peers[key]["ssim"] for r in have]),
                len(have),
            )
        summary.textbook = _textbook([r for r in group if r.peers.get("kmeans", {}).get("seconds") is not None])
        out.append(summary)
    return out


def _textbook(group: Sequence[Row]) -> Textbook | None:
    if not group:
        return None
    both = [r for r in group if math.isfinite(r.psnr) and math.isfinite(r.peers["kmeans"]["psnr"])]
    return Textbook(
        images=len(group),
        psnr=_mean([r.psnr for r in both]),
        kmeans_psnr=_mean([r.peers["kmeans"]["psnr"] for r in both]),
        delta_e2000=_mean([r.delta_e2000 for r in group]),
        kmeans_delta_e2000=_mean([r.peers["kmeans"]["delta_e2000"] for r in group]),
        seconds=_mean([r.encode_seconds for r in group]),
        kmeans_seconds=_mean([r.peers["kmeans"]["seconds"] for r in group]),
        time_ratio=_geomean([r.peers["kmeans"]["seconds"] / r.encode_seconds for r in group]),
    )


def textbook_table(summaries: Sequence[Summary]) -> list[str]:
    """kvq's engine beside scikit-learn's KMeans: PSNR, ΔE2000 and seconds per K (empty when not measured)."""
    measured = [s for s in summaries if s.textbook is not None]
    if not measured:
        return []
    head = [
        "K", "images", "PSNR dB, kvq", "PSNR dB, KMeans", "ΔPSNR", "ΔE2000, kvq", "ΔE2000, KMeans",
        "seconds, kvq", "seconds, KMeans", "KMeans time ÷ kvq's",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    for s in measured:
        t = s.textbook
        assert t is not None
        cells = [
            # + 0.0: a difference that rounds to zero shows as 0.00, not -0.00.
            str(s.k), str(t.images), _f(t.psnr), _f(t.kmeans_psnr), _f(round(t.psnr - t.kmeans_psnr, 2) + 0.0), _f(t.delta_e2000),
            _f(t.kmeans_delta_e2000), _f(t.seconds, 3), _f(t.kmeans_seconds, 3), _f(t.time_ratio, 1, "×"),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _f(value: float, digits: int = 2, suffix: str = "") -> str:
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return f"{value:,.{digits}f}{suffix}"


def _notes(rows: Sequence[Row], key: str) -> str:
    counts: dict[str, list[str]] = {}
    for r in rows:
        if key in r.peers and not r.peers[key].get("bytes"):
            counts.setdefault(r.peers[key]["note"], []).append(f"{r.image} K={r.k_requested}")
    return "; ".join(
        f"{note} ({len(where)} row{'s' if len(where) > 1 else ''}: {', '.join(where[:6])}{', …' if len(where) > 6 else ''})"
        for note, where in counts.items()
    )


def _coding_cell(codings: dict[str, int], images: int) -> str:
    if len(codings) == 1:
        return next(iter(codings))
    return ", ".join(f"{name} ({count} of {images})" for name, count in codings.items())


def summary_table(summaries: Sequence[Summary]) -> list[str]:
    """The Markdown summary table (one line per K): size, quality and the accounting check."""
    head = [
        "K", "images", "coding", "bpp", "bpp fixed width", "factor vs raw", "factor vs theory (range)", "PSNR dB", "SSIM",
        "ΔE2000", "accounting",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---:|---:|---|" + "|".join("---:" for _ in head[3:]) + "|"]
    for s in summaries:
        low, high = s.theory_range
        cells = [
            str(s.k), str(s.images), _coding_cell(s.codings, s.images), _f(s.bpp, 3), _f(s.fixed_bpp, 3),
            _f(s.factor, 2, "×"), f"{_f(s.theory_factor, 2, '×')} ({_f(low, 2)}–{_f(high, 2)})", _f(s.psnr),
            _f(s.ssim, 4), _f(s.delta_e2000),
        ]  # fmt: skip
        cells.append(f"all {s.images} hold" if s.held == s.images else f"**{s.held} of {s.images} hold**")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def asked_peers(rows: Sequence[Row]) -> list[str]:
    """The peers the run was asked to measure (measured, or a note saying why not), in the summary's order."""
    return [key for key in SUMMARY_PEERS if any(key in r.peers for r in rows)]


def ratio_table(summaries: Sequence[Summary], peers: Sequence[str] = SUMMARY_PEERS) -> list[str]:
    """The Markdown table of kvq's file size divided by each of ``peers``' (geometric means, one line per K)."""
    head = ["K"] + [PEERS[key] for key in peers]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    for s in summaries:
        cells = [str(s.k)]
        for key in peers:
            if key not in s.ratio:
                cells.append("n/a")
            else:
                ratio, count = s.ratio[key]
                cells.append(_f(ratio, 3) + ("" if count == s.images else f" ({count} of {s.images})"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def peer_table(summaries: Sequence[Summary]) -> list[str]:
    """Mean size and quality of kvq and each peer per K."""
    head = ["K", "codec", "mean bpp", "mean PSNR dB", "mean SSIM", "images"]
    lines = ["| " + " | ".join(head) + " |", "|---:|---|---:|---:|---:|---:|"]
    for s in summaries:
        lines.append(f"| {s.k} | **kvq** | {_f(s.bpp, 3)} | {_f(s.psnr)} | {_f(s.ssim, 4)} | {s.images} |")
        for key in PEERS:
            if key in s.peer_quality:
                bpp, psnr, ssim, count = s.peer_quality[key]
                lines.append(f"| {s.k} | {PEERS[key]} | {_f(bpp, 3)} | {_f(psnr)} | {_f(ssim, 4)} | {count} |")
    return lines


def _peer_cell(row: Row, key: str) -> str:
    result = row.peers.get(key)
    if result is None:
        return "–"
    if not result.get("bytes"):
        return "n/a"
    cell = f"{result['bytes']:,} B, {_f(result['psnr'])} dB"
    if result.get("quality") not in (None, ""):
        cell += f" (q {result['quality']}" + (f", {result['note']})" if result.get("note") else ")")
    return cell


def _stored(r: Row) -> str:
    return f"{r.k_requested}" if r.k == r.k_requested else f"{r.k_requested} ({r.k})"


def accounting_table(rows: Sequence[Row]) -> list[str]:
    """One Markdown line per image and K: every bit of the ``.kvq`` file against 24·N, the theory and fixed width."""
    head = [
        "image", "K (stored)", "coding", "N", "raw bits", "theory bits", "fixed-width file bits", "file bits",
        "overhead", "palette", "indices", "side bits", "factor", "bpp", "accounting",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---|---:|---|" + "|".join("---:" for _ in head[3:]) + "|"]
    for r in rows:
        if r.textbook:
            check = f"{'yes' if r.matches_theory else '**NO**'}: theory + {r.overhead_bits} + {r.padding_bits}"
        else:
            check = f"{'yes' if r.accounted else '**NO**'}: {r.file_bits / r.fixed_file_bits:.3f} of fixed width"
        cells = [
            r.image, _stored(r), r.coding, f"{r.n_pixels:,}", f"{r.raw_bits:,}", f"{r.theory_bits:,}",
            f"{r.fixed_file_bits:,}", f"{r.file_bits:,}", f"{r.overhead_bits:,}", f"{r.palette_bits:,}",
            f"{r.index_bits:,}", f"{r.side_bits:,}", _f(r.factor_vs_raw, 2, "×"), _f(r.bpp, 3), check,
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def image_table(rows: Sequence[Row], peers: Sequence[str] = SUMMARY_PEERS) -> list[str]:
    """One Markdown line per image and K: the file's size and quality, and each of ``peers``' size and PSNR."""
    head = ["image", "K (stored)", "bytes", "PSNR", "SSIM", "ΔE2000"] + [PEERS[key] for key in peers]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "|".join("---:" for _ in head[1:]) + "|"]
    for r in rows:
        cells = [r.image, _stored(r), f"{r.file_bytes:,}", _f(r.psnr), _f(r.ssim, 4), _f(r.delta_e2000)]
        cells += [_peer_cell(r, key) for key in peers]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def versions() -> dict[str, str]:
    """Versions of everything that decides the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    import kvq

    out["kvq"] = kvq.__version__
    for dist in ("numpy", "numba", "pillow", "scikit-learn", "scikit-image", "matplotlib", "imagecodecs"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    from PIL import features

    out["libwebp"] = features.version("webp") or "not built in"
    out["libjxl"] = _libjxl_version()
    out["pngquant"] = pngquant_version() or "not installed"
    return out


def _libjxl_version() -> str:
    try:
        import imagecodecs
    except ImportError:
        return "not installed"
    # imagecodecs says "libjxl 0.11.2".
    return str(imagecodecs.jpegxl_version()).removeprefix("libjxl ")


def write_markdown(
    rows: Sequence[Row],
    path: Path,
    *,
    command: str,
    images: Sequence[tuple[str, str, int, int]],
    options: str,
    figures: Sequence[str],
    seconds: float,
) -> None:
    """Write ``report.md``.

    Parameters
    ----------
    rows : sequence of Row
    path : Path
    command : str
        The command line that produced the report.
    images : sequence of (name, source, width, height)
    options : str
        The encoder options, as text.
    figures : sequence of str
        File names of the pictures, linked from the report.
    seconds : float
        Wall time of the run.
    """
    summaries = summarise(rows)
    held = sum(r.accounting_holds for r in rows)
    v = versions()
    out = [
        "# kvq benchmark report",
        "",
        f"Command: `{command}`",
        "",
        f"Run {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} in {seconds:.0f} s on {platform.machine()}; "
        + ", ".join(f"{k} {val}" for k, val in v.items())
        + ".",
        "",
        f"Encoder options: {options}. Images ({len(images)}): "
        + ", ".join(f"{name} ({w}×{h})" for name, _, w, h in images)
        + ".",
        "",
        "## Summary",
        "",
        "Means over the images at each K. *coding* is the index coding of the files (the encoder stores fixed width"
        " where that is smaller); *bpp* is the file's bits per pixel, *bpp fixed width* the same file's with"
        " fixed-width indices (N·ceil(log2 K) bits and the padding of their last byte); *factor vs raw* is 24·N bits"
        " (8·N grey, 32·N with alpha) over the file's bits, a geometric mean; *factor vs theory* the textbook"
        " N·ceil(log2 K) + 24·K bits over the file's bits, a geometric mean, with the smallest and largest image's."
        " PSNR, SSIM and ΔE2000 of RGBA images are"
        " measured on premultiplied colour (see the end of this report).",
        "",
        *summary_table(summaries),
        "",
        f"Accounting: {'all ' + str(len(rows)) + ' rows hold' if held == len(rows) else f'**{held} of {len(rows)} rows hold**'}."
        f" A fixed-width file must be exactly N·ceil(log2 K) + 8·C·K bits (C channels: 24·K for RGB) plus the spec's"
        f" fixed overhead of {OVERHEAD} bytes ({8 * OVERHEAD} bits) plus 0–7 padding bits after the last index. An"
        " entropy-coded file must be exactly its overhead, palette and INDX bits, and its fixed-width figure exactly"
        " the theory's N·ceil(log2 K) plus the padding.",
        "",
    ]
    peers = asked_peers(rows)
    if peers:
        out += [
            "### kvq's file size divided by each peer's",
            "",
            "Geometric means over the images, so that no single image outweighs the others and a ÷ b summarises as the"
            " inverse of b ÷ a; below 1: the `.kvq` file is smaller. PNG-8, pngquant and GIF quantize with their own"
            " palettes; kvq's palette as PNG-8, WebP-lossless and JPEG XL lossless store exactly the `.kvq` file's"
            " pixels, so they measure the index coding alone.",
            "",
            *ratio_table(summaries, peers),
            "",
        ]
    else:
        out += ["No peer was asked (--peers none): the report is of kvq's own files alone.", ""]
    lossless = sum(s.lossless for s in summaries)
    if lossless:
        out += [f"{lossless} row(s) are lossless (the image has at most K colours); their PSNR is left out of the means.", ""]
    if peers:
        out += ["### Size and quality of each codec", "", *peer_table(summaries), ""]
    textbook = textbook_table(summaries)
    if textbook:
        out += [
            "### kvq's engine beside the textbook method",
            "",
            "The same images, K and options with `method=\"kmeans\"`: scikit-learn's `KMeans` (k-means++,"
            " `n_init=1`, `random_state` the seed) on the colour histogram, as the tutorials kvq grew from cluster."
            " ΔPSNR is kvq's engine minus KMeans (above 0: the engine is closer to the original); times are one"
            " encode each, on this machine, in this run: compare them only as the ratio.",
            "",
            *textbook,
            "",
        ]
    floor = [r for r in rows if r.peers.get("jpeg", {}).get("quality") == 1]
    if floor:
        ks_at_floor = sorted({r.k_requested for r in floor})
        out += [
            f"JPEG's lowest quality (1) already exceeds kvq's PSNR in {len(floor)} row(s) (K = "
            + ", ".join(map(str, ks_at_floor))
            + "): there the JPEG is both smaller and closer to the original than kvq's file.",
            "",
        ]
    skipped = [(key, _notes(rows, key)) for key in PEERS]
    skipped = [(key, note) for key, note in skipped if note]
    if skipped:
        out += ["Not measured: " + "; ".join(f"{PEERS[key]}: {note}" for key, note in skipped) + ".", ""]
    out += ["## Pictures", ""]
    for name in figures:
        out += [f"![{name}]({name})", ""]
    out += [
        "## Every image",
        "",
        "### Where the bits of each `.kvq` file go",
        "",
        "*raw* is 8·C·N (24·N for RGB); *theory* N·ceil(log2 K) + 8·C·K; *fixed-width file* the same file with"
        " fixed-width indices (8·62 + 8·C·K + 8·ceil(N·b/8)); *file* the actual size, which is overhead (signature,"
        " chunk framing, header: 8·62 bits) + palette (8·C·K) + indices (the INDX data); *side bits* are the index"
        " bits that carry no index: the padding of the last byte (fixed width) or the entropy coder's 32-bit flush"
        " (its adaptive model sends nothing else).",
        "",
        *accounting_table(rows),
        "",
        *(
            ["### Size and quality beside the peers", "", "Peer cells: file size and PSNR; JPEG with its quality setting.", ""]
            if peers
            else ["### Size and quality of each file", ""]
        ),
        *image_table(rows, peers),
        "",
        "## How each number is made",
        "",
        "- kvq: `kvq.encode_image` with the options above; every number is measured on the decoded file"
        " (`kvq.decode_indexed`), and the bits come from `kvq.breakdown(header, len(file), len(INDX data))`.",
        "- PSNR over all channels, peak 255 (`kvq.bench.quality.psnr`); SSIM: `skimage.metrics.structural_similarity`"
        " (7×7 window, data range 255, mean over channels); ΔE2000: mean `skimage.color.deltaE_ciede2000` of"
        " `rgb2lab` colours, every pixel at full resolution.",
        "- RGBA images: all three on premultiplied colour (R, G, B each × A / 255, beside A), so a pixel counts as"
        " much as it shows: the colour of a fully transparent pixel counts for nothing, a change of alpha always"
        " counts; ΔE2000 compares the colours shown over black. Grey and RGB images are compared as they are.",
        "- PNG-8 (Pillow): `Image.quantize(K, method=MEDIANCUT, dither=NONE)` (FASTOCTREE for RGBA),"
        " saved with `optimize=True`. GIF (Pillow): the same quantized image saved as GIF, `optimize=True`.",
        "- pngquant: `pngquant --nofs --speed 1 K -` (no dithering, slowest and best), when it is installed.",
        "- kvq palette as PNG-8: the `.kvq` file's own palette and indices written by Pillow as PNG-8 with"
        " `optimize=True` — the same pixels, deflate instead of kvq's index coding.",
        "- WebP-lossless of kvq's pixels: the decoded `.kvq` pixels saved by Pillow with `lossless=True, quality=100,"
        " method=6` (grey as RGB: WebP has no grey mode; it does not keep the colour of fully transparent pixels).",
        "- JPEG XL lossless of kvq's pixels: the decoded `.kvq` pixels through"
        " `imagecodecs.jpegxl_encode(pixels, lossless=True, effort=9)` (core Pillow has no JPEG XL plugin).",
        "- JPEG at kvq's PSNR: Pillow JPEG at the lowest quality 1–95 whose PSNR reaches kvq's at that K, by"
        " bisection, with 4:2:0 or 4:4:4 chroma, whichever file is smaller; n/a when even 95 falls short or kvq"
        " is lossless. The means of a column with n/a rows are over fewer images (the count is given).",
        "- kvq, scikit-learn KMeans palette: `kvq.encode_image` with the same options and `method=\"kmeans\"`"
        " (`kvq.quantize.sklearn_kmeans`), measured as kvq's own file, its ΔE2000 and its encode's seconds too.",
        "",
    ]
    path.write_text("\n".join(out), encoding="utf-8")
