"""kvq's indexed PNG against pngquant's, and against pngquant's after oxipng: bytes and quality.

Run from the repository root (needs ``pngquant`` on PATH, the Kodak photos and the graphics set, see
``benchmarks/graphics/README.md``, and pyoxipng: ``pip install ".[png]"``)::

    python benchmarks/png.py                     # -> benchmarks/results/png.md and png.csv
    python benchmarks/png.py --quick             # 3 photos and 6 graphics, print only
    python benchmarks/png.py --jobs 2            # images on two processes
    python benchmarks/png.py --only icon         # re-measure one category; the other rows come from png.csv

For every image and K (16, 64, 256), without dithering and with it:

- **kvq**: ``kvq.quantize`` (default options; ``dither=1`` for the dithered rows) and the PNG that
  ``kvq encode -o x.png`` writes (:mod:`kvq.pngwrite`, default effort);
- **pngquant**: ``pngquant --nofs K`` (dithered rows: ``pngquant K``, its default dithering), version as
  printed in the report;
- **pngquant + oxipng**: pngquant's file through oxipng's strongest preset (``-o max``: pyoxipng's
  ``optimize_from_memory(data, level=6)``).

Quality is **alpha-aware PSNR**: for RGB images the PSNR over the three channels; for RGBA images the
*premultiplied PSNR*, the PSNR over the four channels R·α/255, G·α/255, B·α/255 and α, the colour as a
viewer shows it over a background (an invisible pixel's colour does not count). Dithered rows give the
*blurred* PSNR as ``benchmarks/dither.py`` does: both images (premultiplied for RGBA) blurred by a
Gaussian of sigma = 1 pixel first. Bytes are compared as the ratio of the mean bytes (kvq's total over
pngquant's) per set and category; the CSV has every file.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import csv
import io
import json
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KS = (16, 64, 256)
KODAK = ROOT.parent / "shared" / "kodak"
GRAPHICS = ROOT / "benchmarks" / "graphics" / "images"
FIELDS = (
    "set", "category", "image", "mode", "k", "kvq_bytes", "pngquant_bytes", "pngquant_oxipng_bytes",
    "kvq_psnr", "pngquant_psnr", "kvq_colours", "pngquant_colours", "kvq_seconds",
)  # fmt: skip


def premultiplied(pixels: np.ndarray) -> np.ndarray:
    """RGB as float; RGBA with the colour times alpha / 255 (what a viewer shows over a background)."""
    x = pixels.astype(np.float64)
    if x.shape[2] == 4:
        x[..., :3] *= x[..., 3:] / 255.0
    return x


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two float images on the 0-255 scale (inf when equal)."""
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def alpha_psnr(original: np.ndarray, result: np.ndarray, blurred: bool) -> float:
    """Alpha-aware PSNR (premultiplied for RGBA), after a Gaussian blur of sigma 1 when ``blurred``."""
    a, b = premultiplied(original), premultiplied(result)
    if blurred:
        from scipy.ndimage import gaussian_filter

        a, b = gaussian_filter(a, sigma=(1, 1, 0)), gaussian_filter(b, sigma=(1, 1, 0))
    return psnr(a, b)


def load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        mode = "RGBA" if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info else "RGB"
        return np.asarray(im.convert(mode))


def decode_png(data: bytes, channels: int) -> tuple[np.ndarray, int]:
    """Pixels of a PNG (as ``channels`` channels) and the number of palette entries it uses."""
    with Image.open(io.BytesIO(data)) as im:
        colours = len(np.unique(np.asarray(im))) if im.mode == "P" else -1
        return np.asarray(im.convert("RGBA" if channels == 4 else "RGB")), colours


def measure(task: tuple[str, str, str]) -> list[dict[str, object]]:
    """Every row for one image: K x (plain, dithered)."""
    import oxipng

    from kvq.options import EncoderOptions
    from kvq.pngwrite import encode_png
    from kvq.quantize import quantize

    set_name, category, path = task
    pixels = load(Path(path))
    channels = pixels.shape[2]
    source = Path(path).read_bytes()
    rows = []
    for mode in ("plain", "dithered"):
        dithered = mode == "dithered"
        for k in KS:
            start = time.process_time()
            palette, indices = quantize(pixels, EncoderOptions(k=k, dither=1.0 if dithered else 0.0))
            kvq_png = encode_png(indices, palette)
            seconds = time.process_time() - start
            command = ["pngquant", *([] if dithered else ["--nofs"]), str(k), "-"]
            pq_png = subprocess.run(command, input=source, capture_output=True, check=True).stdout
            pq_ox = oxipng.optimize_from_memory(pq_png, level=6)
            kvq_pixels, kvq_colours = decode_png(kvq_png, channels)
            assert np.array_equal(kvq_pixels, palette[indices]), path
            pq_pixels, pq_colours = decode_png(pq_png, channels)
            rows.append(
                {
                    "set": set_name, "category": category, "image": Path(path).name, "mode": mode, "k": k,
                    "kvq_bytes": len(kvq_png), "pngquant_bytes": len(pq_png), "pngquant_oxipng_bytes": len(pq_ox),
                    "kvq_psnr": round(alpha_psnr(pixels, kvq_pixels, dithered), 4),
                    "pngquant_psnr": round(alpha_psnr(pixels, pq_pixels, dithered), 4),
                    "kvq_colours": kvq_colours, "pngquant_colours": pq_colours, "kvq_seconds": round(seconds, 3),
                }
            )  # fmt: skip
    return rows


def tasks(quick: bool, only: list[str] | None = None) -> list[tuple[str, str, str]]:
    photos = sorted(KODAK.glob("*.png"))
    out = [("kodak", "photo", str(p)) for p in (photos[:3] if quick else photos)]
    if only:
        out = [t for t in out if t[1] in only]
    manifest = json.loads((GRAPHICS / "manifest.json").read_text())
    graphics = sorted((entry["category"], entry["file"]) for entry in manifest["images"] if not only or entry["category"] in only)
    if quick:
        graphics = graphics[::12]
    out += [("graphics", category, str(GRAPHICS / file)) for category, file in graphics]
    return out


def _finite(values: list[float]) -> list[float]:
    # A lossless result (inf dB) is capped at 99 dB, as kvq bench does, so that means stay finite.
    return [min(v, 99.0) for v in values]


def summary(rows: list[dict[str, object]], keys: tuple[str, ...]) -> dict[tuple[object, ...], dict[str, float]]:
    groups: dict[tuple[object, ...], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = {}
    for key, group in groups.items():
        kvq_bytes = np.mean([float(r["kvq_bytes"]) for r in group])  # type: ignore[arg-type]
        out[key] = {
            "n": len(group),
            "vs_pq": kvq_bytes / np.mean([float(r["pngquant_bytes"]) for r in group]),  # type: ignore[arg-type]
            "vs_ox": kvq_bytes / np.mean([float(r["pngquant_oxipng_bytes"]) for r in group]),  # type: ignore[arg-type]
            "dpsnr": float(
                np.mean(_finite([float(r["kvq_psnr"]) for r in group]))  # type: ignore[arg-type]
                - np.mean(_finite([float(r["pngquant_psnr"]) for r in group]))  # type: ignore[arg-type]
            ),
            "kvq_colours": float(np.mean([float(r["kvq_colours"]) for r in group])),  # type: ignore[arg-type]
            "pq_colours": float(np.mean([float(r["pngquant_colours"]) for r in group])),  # type: ignore[arg-type]
        }
    return out


def report(rows: list[dict[str, object]], command: str, seconds: float) -> list[str]:
    version = subprocess.run(["pngquant", "--version"], capture_output=True, text=True).stdout.strip()
    from importlib.metadata import version as dist_version

    lines = [
        "# kvq's indexed PNG against pngquant",
        "",
        f"`{command}`: {len({(r['set'], r['image']) for r in rows})} images, {seconds / 60:.0f} minutes on "
        f"{platform.machine()} with {os.cpu_count()} cores shared with other work (sizes and PSNR do not depend on "
        f"the load). pngquant {version}, pyoxipng {dist_version('pyoxipng')} (`level=6`, oxipng's `-o max`), "
        f"deflate (libdeflate) {dist_version('deflate')}. kvq: default options, the PNG `kvq encode -o x.png` "
        "writes. Bytes: kvq's mean bytes over pngquant's (`pngquant --nofs K`; dithered: `pngquant K`) and over "
        "pngquant's file after oxipng. ΔPSNR: kvq's mean alpha-aware PSNR minus pngquant's (premultiplied for "
        "RGBA; dithered rows: after a Gaussian blur of sigma 1, as `benchmarks/dither.py`). Goals (issue 18): "
        "bytes at most 0.90 and 1.00, ΔPSNR at least 0. Per file in `png.csv`.",
        "",
    ]
    for mode in ("plain", "dithered"):
        title = "Without dithering" if mode == "plain" else "With dithering (kvq `dither=1`, pngquant's default)"
        lines += [f"## {title}", "", "| set | K | images | kvq / pngquant | kvq / (pngquant + oxipng) | ΔPSNR dB "
                  "| colours kvq / pngquant | goals met |", "|---|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
        table = summary([r for r in rows if r["mode"] == mode], ("set", "k"))
        for (set_name, k), s in sorted(table.items()):
            met = s["vs_pq"] <= 0.90 and s["vs_ox"] <= 1.0 and s["dpsnr"] >= 0
            lines.append(
                f"| {set_name} | {k} | {s['n']} | {s['vs_pq']:.3f} | {s['vs_ox']:.3f} | {s['dpsnr']:+.2f} "
                f"| {s['kvq_colours']:.0f} / {s['pq_colours']:.0f} | {'yes' if met else 'no'} |"
            )
        lines += ["", "By graphics category:", "", "| category | K | images | kvq / pngquant | kvq / (pngquant + oxipng) "
                  "| ΔPSNR dB |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
        table = summary([r for r in rows if r["mode"] == mode and r["set"] == "graphics"], ("category", "k"))
        for (category, k), s in sorted(table.items()):
            lines.append(f"| {category} | {k} | {s['n']} | {s['vs_pq']:.3f} | {s['vs_ox']:.3f} | {s['dpsnr']:+.2f} |")
        lines.append("")
    lines += [
        "## Icons with alpha: premultiplied PSNR by icon size, no dithering",
        "",
        "Goal: kvq's premultiplied PSNR at least pngquant's on every icon size at every K. Min Δ: the icon of that "
        "size on which kvq did worst against pngquant.",
        "",
        "| size px | K | icons | ΔPSNR mean dB | min Δ dB | icons kvq >= pngquant | kvq / pngquant bytes | met |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    icons = [r for r in rows if r["mode"] == "plain" and r["category"] == "icon"]
    sizes = sorted({int(str(r["image"]).rsplit("-", 1)[1].split(".")[0]) for r in icons})
    for size in sizes:
        for k in KS:
            group = [r for r in icons if r["k"] == k and str(r["image"]).endswith(f"-{size}.png")]
            deltas = [min(float(r["kvq_psnr"]), 99.0) - min(float(r["pngquant_psnr"]), 99.0) for r in group]  # type: ignore[arg-type]
            ratio = sum(int(r["kvq_bytes"]) for r in group) / sum(int(r["pngquant_bytes"]) for r in group)  # type: ignore[call-overload]
            wins = sum(d >= 0 for d in deltas)
            lines.append(
                f"| {size} | {k} | {len(group)} | {np.mean(deltas):+.2f} | {min(deltas):+.2f} | {wins} / {len(group)} "
                f"| {ratio:.3f} | {'yes' if wins == len(group) else 'no'} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 photos and 6 graphics, print only")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--only",
        action="append",
        help="re-measure only this category (photo, icon, chart, ...; repeatable): the rows of the others come from png.csv",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for png.md and png.csv")
    args = parser.parse_args(argv)
    if not (GRAPHICS / "manifest.json").exists():
        print("no graphics set: run python benchmarks/graphics/build.py first", file=sys.stderr)
        return 1
    work = tasks(args.quick, args.only)
    start = time.time()
    rows: list[dict[str, object]] = []
    previous = Path(args.out) / "png.csv"
    if args.only and previous.exists():
        with open(previous, newline="") as f:
            kept = [row for row in csv.DictReader(f) if row["category"] not in args.only]
        rows += [
            {
                key: (int(v) if v.lstrip("-").isdigit() else float(v) if key.endswith("psnr") or key.endswith("seconds") else v)
                for key, v in row.items()
            }
            for row in kept
        ]
    with ProcessPoolExecutor(args.jobs) as pool:
        for done, result in enumerate(pool.map(measure, work), 1):
            rows += result
            print(f"{done}/{len(work)} {result[0]['image']}", file=sys.stderr, flush=True)
    command = "python benchmarks/png.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = report(rows, command.strip(), time.time() - start)
    if args.only:
        lines[2] += f" Only {', '.join(args.only)} re-measured in this run; the other rows are those of the previous `png.csv`."
    print("\n".join(lines))
    if not args.quick:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "png.md").write_text("\n".join(lines) + "\n")
        with open(out / "png.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
