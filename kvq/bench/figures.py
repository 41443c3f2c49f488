"""The suite's pictures: rate–distortion curves, bits against 24·N, reconstruction grids.

matplotlib is used with its Agg backend only, so no display is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .peers import PEERS
from .report import summarise
from .suite import Row

_COLOURS = {
    "kvq": "#d62728",
    "kvq_fixed": "#e377c2",
    "png8": "#1f77b4",
    "pngquant": "#2ca02c",
    "gif": "#9467bd",
    "kvq_png8": "#ff7f0e",
    "webp": "#17becf",
    "jxl": "#bcbd22",
    "jpeg": "#7f7f7f",
    "kmeans": "#393b79",
}
_MARKERS = {
    "kvq": "o", "kvq_fixed": "o", "png8": "s", "pngquant": "^", "gif": "v", "kvq_png8": "D", "webp": "P", "jxl": "*",
    "jpeg": "x", "kmeans": "h",
}  # fmt: skip
_NAMES = {"kvq": "kvq (.kvq file)", "kvq_fixed": "kvq, fixed-width indices"}


def _name(key: str) -> str:
    return _NAMES.get(key) or PEERS[key]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def log2_ticks(low: float, high: float, least: int = 3) -> list[float]:
    """Labelled ticks for a base-2 log axis from ``low`` to ``high``, at least ``least`` of them.

    Powers of 2 where the range spans enough of them; otherwise 1.5 times
    each power of 2 joins them (0.75, 1, 1.5, 2, 3, ...); for a range
    narrower still, evenly spaced round numbers. A range within one octave
    had a single labelled tick, or none.

    Parameters
    ----------
    low, high : float
        The axis limits, 0 < low < high.
    least : int, default=3

    Returns
    -------
    list of float
        Ascending, within [low, high].
    """
    from matplotlib.ticker import MaxNLocator

    first, last = math.floor(math.log2(low)), math.ceil(math.log2(high))
    for steps in ((1.0,), (1.0, 1.5)):
        ticks = [m * 2.0**e for e in range(first, last + 1) for m in steps if low <= m * 2.0**e <= high]
        if len(ticks) >= least:
            return sorted(ticks)
    for bins in range(least, 4 * least):
        ticks = [float(v) for v in MaxNLocator(nbins=bins, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high) if low <= v <= high]
        if len(ticks) >= least:
            break
    return ticks


def rd_curves(rows: Sequence[Row], path: Path) -> None:
    """Mean bits per pixel of the actual files against mean PSNR and SSIM, one line per codec across K.

    Every point is a file's real size (bytes × 8 / N), kvq's included; when
    kvq's files are entropy coded, the same files with fixed-width indices
    are drawn too, dotted, at the same quality.
    """
    plt = _pyplot()
    fig = rd_curves_figure(rows)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rd_curves_figure(rows: Sequence[Row]) -> Any:
    """The figure :func:`rd_curves` saves: two panels, and one legend for both below them, clear of every line.

    Parameters
    ----------
    rows : sequence of Row

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    summaries = summarise(rows)
    entropy = not all(r.textbook for r in rows)
    lossless = all(s.lossless == s.images for s in summaries)
    fig, axes = plt.subplots(1, 2, figsize=(13, 6.0), layout="constrained")
    for ax, metric, label in ((axes[0], 1, "PSNR (dB)"), (axes[1], 2, "SSIM")):
        series = {"kvq": [(s.k, s.bpp, s.psnr if metric == 1 else s.ssim) for s in summaries]}
        if entropy:
            series["kvq_fixed"] = [(s.k, s.fixed_bpp, s.psnr if metric == 1 else s.ssim) for s in summaries]
        for key in PEERS:
            series[key] = [
                (s.k, s.peer_quality[key][0], s.peer_quality[key][metric]) for s in summaries if key in s.peer_quality
            ]
        for key, points in series.items():
            # An infinite PSNR (lossless) has no place on the axis; kvq's mean PSNR at a K is NaN when every image is.
            points = [p for p in points if math.isfinite(p[1]) and math.isfinite(p[2])]
            if not points:
                continue
            points.sort(key=lambda p: p[1])
            xs = [p[1] for p in points]
            ys = [p[2] for p in points]
            ax.plot(
                xs, ys, marker=_MARKERS[key], color=_COLOURS[key], label=_name(key),
                linewidth=2.4 if key == "kvq" else 1.4, markersize=7 if key == "kvq" else 5,
                linestyle={"jpeg": "--", "kvq_fixed": ":"}.get(key, "-"), zorder=3 if key == "kvq" else 2,
            )  # fmt: skip
            if key == "kvq":
                for k, x, y in points:
                    ax.annotate(f"K={k}", (x, y), textcoords="offset points", xytext=(6, -12), fontsize=9, color=_COLOURS[key])
        if not ax.get_lines():
            # Nothing to draw: say why, rather than leave an empty panel (or ask the legend for no column).
            note = "lossless at every K: no rate-distortion curve" if lossless else "no finite point to draw"
            ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", fontsize=12, color="#555555")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("bits per pixel of the actual file (bytes × 8 / N)")
            ax.set_ylabel(f"mean {label}")
            ax.set_title(f"Rate–distortion: bits per pixel against {label.split()[0]}")
            continue
        ax.set_xscale("log", base=2)
        ax.set_xlabel("bits per pixel of the actual file (bytes × 8 / N, log scale)")
        ax.set_ylabel(f"mean {label}")
        ax.grid(True, which="both", alpha=0.3)
        title = f"Rate–distortion: bits per pixel against {label.split()[0]}"
        if _name("kvq") not in ax.get_legend_handles_labels()[1]:
            title += "\n(kvq is lossless at every K: no point of its own)" if lossless else "\n(no point of kvq's)"
        ax.set_title(title)
        # Matplotlib labels only powers of 2 on a base-2 axis: one label, or none, when the points span an octave.
        low, high = ax.get_xlim()
        ax.xaxis.set_major_locator(FixedLocator(log2_ticks(low, high)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(low, high)
    # One legend for both panels, outside them: inside, it covered lines wherever it was put. Its entries come from
    # both: a codec lossless at every K has a line for SSIM and none for PSNR.
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(name, handle)
    if entries:
        fig.legend(list(entries.values()), list(entries), loc="outside lower center", ncol=min(len(entries), 5), fontsize=9, frameon=False)
    images = len({r.image for r in rows})
    fig.suptitle(
        f"Means over {images} image(s) at each K; JPEG is at the quality that matches kvq's PSNR;"
        " kvq's palette as PNG-8, WebP and JPEG XL hold kvq's own pixels",
        fontsize=10,
    )
    return fig


def raw_reference(rows: Sequence[Row]) -> tuple[str, str]:
    """How to name the uncompressed size and the palette's bits for the images in ``rows``.

    Returns
    -------
    (str, str)
        ("24·N", "24·K") when every image is RGB, "8·N" / "32·N" for grey or
        RGBA alone, and ("8·C·N", "8·C·K") with C the channels when they mix.
    """
    channels = {r.channels for r in rows}
    if len(channels) == 1:
        bits = 8 * channels.pop()
        return f"{bits}·N", f"{bits}·K"
    return "8·C·N", "8·C·K"


def bits_vs_raw(rows: Sequence[Row], path: Path) -> None:
    """Where a ``.kvq`` file's bits go against the raw size (24·N for RGB), and its size beside the peers', per K."""
    plt = _pyplot()
    summaries = summarise(rows)
    raw_name, palette_name = raw_reference(rows)
    ks = [s.k for s in summaries]
    groups = {k: [r for r in rows if r.k_requested == k] for k in ks}
    raw_bpp = float(np.mean([r.raw_bits / r.n_pixels for r in rows]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.6), constrained_layout=True)

    # Left: raw, theory, the fixed-width file (when the files are entropy coded) and the file's three parts, in
    # bits per pixel.
    x = np.arange(len(ks))
    entropy = not all(r.textbook for r in rows)
    bars = 4 if entropy else 3
    width = 0.8 / bars
    index = [np.mean([(r.index_bits) / r.n_pixels for r in groups[k]]) for k in ks]
    palette = [np.mean([r.palette_bits / r.n_pixels for r in groups[k]]) for k in ks]
    overhead = [np.mean([r.overhead_bits / r.n_pixels for r in groups[k]]) for k in ks]
    theory = [np.mean([r.theory_bits / r.n_pixels for r in groups[k]]) for k in ks]
    fixed = [np.mean([r.fixed_file_bits / r.n_pixels for r in groups[k]]) for k in ks]
    mixed = "" if "C" not in raw_name else f", mean {raw_bpp:.3g} bpp"
    at = [x + (j - (bars - 1) / 2) * width for j in range(bars)]
    left.bar(at[0], [raw_bpp] * len(ks), width, color="#bbbbbb", label=f"uncompressed ({raw_name}{mixed})")
    left.bar(at[1], theory, width, color="#8c564b", label=f"theory N·ceil(log2 K) + {palette_name}")
    if entropy:
        left.bar(at[2], fixed, width, color=_COLOURS["kvq_fixed"], label="the same .kvq, fixed-width indices")
    indices_name = ".kvq indices (entropy coded)" if entropy else ".kvq indices (+ padding)"
    left.bar(at[-1], index, width, color="#d62728", label=indices_name)
    left.bar(at[-1], palette, width, bottom=index, color="#ff9896", label=f".kvq palette ({palette_name})")
    left.bar(at[-1], overhead, width, bottom=np.add(index, palette), color="black", label=".kvq overhead (62 bytes)")
    for i, s in enumerate(summaries):
        total = index[i] + palette[i] + overhead[i]
        left.annotate(
            f"{100 * total / raw_bpp:.1f}% of raw, {s.factor:.2f}×\nindices {index[i]:.3f}"
            f"\n+ palette {palette[i]:.4f}\n+ overhead {overhead[i]:.4f}",
            (at[-1][i], total), textcoords="offset points",
            xytext=(0, 4), ha="center", fontsize=7.5,
        )  # fmt: skip
    left.set_xticks(x, [f"K={k}" for k in ks])
    left.set_ylabel("mean bits per pixel")
    left.set_ylim(0, raw_bpp * 1.4)
    left.set_title(f"Bits of a .kvq file against {raw_name} and the theory")
    left.legend(loc="upper center", ncol=2, fontsize=8.5)
    left.grid(True, axis="y", alpha=0.3)

    # Right: file size of kvq and every peer, in bits per pixel.
    codecs = ["kvq"] + [key for key in PEERS if any(key in s.peer_quality for s in summaries)]
    width = 0.8 / len(codecs)
    for j, key in enumerate(codecs):
        values = [s.bpp if key == "kvq" else (s.peer_quality[key][0] if key in s.peer_quality else np.nan) for s in summaries]
        offset = (j - (len(codecs) - 1) / 2) * width
        right.bar(x + offset, values, width, color=_COLOURS[key], label=_name(key))
        for xi, value in zip(x + offset, values, strict=True):
            if np.isfinite(value):
                right.annotate(
                    f"{value:.2f}", (xi, value), textcoords="offset points", xytext=(0, 2), ha="center", fontsize=6.5, rotation=90
                )
    top = max([s.bpp for s in summaries] + [q[0] for s in summaries for q in s.peer_quality.values() if np.isfinite(q[0])])
    right.set_xticks(x, [f"K={k}" for k in ks])
    right.set_ylabel("mean bits per pixel")
    right.set_ylim(0, top * 1.45)
    right.set_title(f"File size beside the peers at the same K (uncompressed: {raw_bpp:g} bpp)")
    right.legend(loc="upper left", ncol=2, fontsize=8.5)
    right.grid(True, axis="y", alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _swatch(palette: np.ndarray) -> np.ndarray:
    """Palette entries sorted by luminance, laid out in rows of up to 32."""
    colours = palette if palette.shape[1] != 1 else np.repeat(palette, 3, axis=1)
    colours = colours[:, :3].astype(np.float64)
    order = np.argsort(colours @ np.array([0.2126, 0.7152, 0.0722]), kind="stable")
    colours = colours[order]
    k = len(colours)
    cols = 32 if k > 64 else 16 if k > 16 else k
    rows = math.ceil(k / cols)
    cells = np.full((rows * cols, 3), 255.0)
    cells[:k] = colours
    return cells.reshape(rows, cols, 3).astype(np.uint8)


def _show(pixels: np.ndarray) -> np.ndarray:
    if pixels.shape[2] == 1:
        return np.repeat(pixels, 3, axis=2)
    return pixels


def grid(
    name: str,
    original: np.ndarray,
    reconstructions: Sequence[tuple[Row, np.ndarray, np.ndarray]],
    path: Path,
    detail: int = 128,
) -> None:
    """The original beside its reconstructions, a 1:1 detail of each, and the palettes as swatches.

    Parameters
    ----------
    name : str
    original : ndarray of uint8, shape (H, W, C)
    reconstructions : sequence of (Row, palette, indices)
        One per K, in order.
    path : Path
    detail : int, default=128
        Side of the square detail crop, taken from the image's busiest block.
    """
    plt = _pyplot()
    columns = 1 + len(reconstructions)
    height, width = original.shape[:2]
    panel_w = 3.1
    panel_h = panel_w * height / width
    fig = plt.figure(figsize=(panel_w * columns, panel_h + panel_w * 0.75 + 1.3 + 0.7), constrained_layout=True)
    spec = fig.add_gridspec(3, columns, height_ratios=[panel_h, panel_w * 0.75, 1.0])
    top, left = _busiest(original, detail)
    crop = (slice(top, top + detail), slice(left, left + detail))
    panels: list[tuple[str, str, np.ndarray, np.ndarray | None]] = [
        ("original", f"original\n{width}×{height}, {8 * original.shape[2]} bpp", original, None)
    ]
    for row, entries, indices in reconstructions:
        title = f"K={row.k_requested}: {row.bpp:.3f} bpp, {row.factor_vs_raw:.2f}×\nPSNR {row.psnr:.2f} dB, ΔE {row.delta_e2000:.2f}"
        panels.append((f"K={row.k}", title, entries[indices], entries))
    for column, (_, title, pixels, palette) in enumerate(panels):
        ax = fig.add_subplot(spec[0, column])
        ax.imshow(_show(pixels), interpolation="lanczos" if column == 0 else "nearest")
        ax.add_patch(plt.Rectangle((left, top), detail, detail, fill=False, edgecolor="yellow", linewidth=1))
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        ax = fig.add_subplot(spec[1, column])
        ax.imshow(_show(pixels[crop]), interpolation="nearest")
        ax.set_title(f"detail {detail}×{detail} at ({left}, {top})" if column == 0 else "detail", fontsize=8)
        ax.axis("off")
        ax = fig.add_subplot(spec[2, column])
        if palette is None:
            ax.text(0.5, 0.5, "palette swatches\n(sorted by luminance)", ha="center", va="center", fontsize=9)
            ax.axis("off")
        else:
            ax.imshow(_swatch(palette), interpolation="nearest", aspect="auto")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{len(palette)} colours", fontsize=8)
    fig.suptitle(f"{name}: original and its kvq reconstructions", fontsize=11)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _busiest(pixels: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the size×size block with the most detail (gradient energy)."""
    height, width = pixels.shape[:2]
    if height <= size or width <= size:
        return 0, 0
    grey = pixels[:, :, :3].astype(np.float64).mean(axis=2)
    energy = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1, :]
    best, corner = -1.0, (0, 0)
    step = max(8, size // 4)
    for top in range(0, height - size, step):
        for left in range(0, width - size, step):
            value = energy[top : top + size, left : left + size].sum()
            if value > best:
                best, corner = value, (top, left)
    return corner
