"""Dithering: kvq's error diffusion against libimagequant's, on photos.

Run from the repository root::

    python benchmarks/dither.py            # ../shared/kodak, K = 16 and 64 -> benchmarks/results/dither.md and a crop
    python benchmarks/dither.py --quick    # four photos, one repeat, print only

For each photo and K, four images: kvq with dithering (``dither=1``) and without, libimagequant with
dithering (``dithering_level=1``) and without. For each:

- **blurred PSNR**: PSNR between the original and the result after both are blurred by a Gaussian of
  sigma = 1 pixel (``scipy.ndimage.gaussian_filter`` on each channel), a simple model of the eye, which
  averages neighbouring pixels: dithering exists to raise this one;
- **plain PSNR**: what dithering costs pixel by pixel (the "cost" is undithered minus dithered PSNR);
- **seconds**: CPU seconds of quantize and remap (median over images of the median of ``--repeats``
  interleaved runs), and the ratio to libimagequant dithered.

One thread. It also writes ``dither_crop_k16.png``: the same crop of one photo, original, kvq dithered and
libimagequant dithered at K = 16, side by side and enlarged 3x without smoothing.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvq.options import EncoderOptions
from kvq.quantize import quantize

METHODS = ("kvq dithered", "kvq undithered", "libimagequant dithered", "libimagequant undithered")
#: The crop of the side-by-side picture: kodim03 (sky gradient, clouds, a hat's edge), else the first photo.
CROP_IMAGE, CROP_BOX, CROP_ZOOM = "kodim03.png", (330, 60, 490, 220), 3


def kvq(dither: float) -> Callable[[np.ndarray, int], np.ndarray]:
    def run(img: np.ndarray, k: int) -> np.ndarray:
        palette, indices = quantize(img, EncoderOptions(k=k, dither=dither))
        return palette[indices]

    return run


def libimagequant(dither: float) -> Callable[[np.ndarray, int], np.ndarray]:
    def run(img: np.ndarray, k: int) -> np.ndarray:
        import imagequant

        q = imagequant.quantize_pil_image(
            Image.fromarray(img), dithering_level=dither, max_colors=k, min_quality=0, max_quality=100
        )
        return np.asarray(q.convert("RGB"))

    return run


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def blur(img: np.ndarray) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(img.astype(np.float64), sigma=(1, 1, 0))


def crop_picture(img: np.ndarray, runs: dict[str, Callable[[np.ndarray, int], np.ndarray]], out: Path) -> None:
    """Original, kvq dithered and libimagequant dithered crops at K = 16, side by side, labelled."""
    left, top, right, bottom = CROP_BOX
    if img.shape[0] < bottom or img.shape[1] < right:
        left, top, right, bottom = 0, 0, min(img.shape[1], 160), min(img.shape[0], 160)
    panels = [("original", img)] + [(name, runs[name](img, 16)) for name in ("kvq dithered", "libimagequant dithered")]
    w, h = (right - left) * CROP_ZOOM, (bottom - top) * CROP_ZOOM
    sheet = Image.new("RGB", (3 * w + 40, h + 30), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, picture) in enumerate(panels):
        tile = Image.fromarray(picture[top:bottom, left:right]).resize((w, h), Image.Resampling.NEAREST)
        sheet.paste(tile, (i * (w + 20), 30))
        draw.text((i * (w + 20) + 4, 8), name if i == 0 else f"{name}, K = 16", fill="black")
    sheet.save(out, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("images", nargs="?", default=str(ROOT.parent / "shared" / "kodak"), help="folder of PNG photos")
    parser.add_argument("-k", type=int, nargs="+", default=[16, 64], help="palette sizes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="four photos, one repeat, print only")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for dither.md and the crop")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    files = sorted(Path(args.images).glob("*.png"))
    if args.quick:
        files, args.repeats = files[:4], 1
    if not files:
        print(f"no PNG files in {args.images}", file=sys.stderr)
        return 1
    images = {f.name: np.asarray(Image.open(f).convert("RGB")) for f in files}
    runs = {
        "kvq dithered": kvq(1.0), "kvq undithered": kvq(0.0),
        "libimagequant dithered": libimagequant(1.0), "libimagequant undithered": libimagequant(0.0),
    }  # fmt: skip
    first = next(iter(images.values()))
    for run in runs.values():
        run(first[:64, :64], 16)

    table: dict[int, dict[str, dict[str, float]]] = {}
    for k in args.k:
        per: dict[str, dict[str, list[float]]] = {n: {"blur": [], "plain": [], "t": []} for n in METHODS}
        for img in images.values():
            reference = blur(img)
            times: dict[str, list[float]] = {n: [] for n in METHODS}
            results: dict[str, np.ndarray] = {}
            for _ in range(args.repeats):
                for name in METHODS:
                    start = time.process_time()
                    results[name] = runs[name](img, k)
                    times[name].append(time.process_time() - start)
            for name in METHODS:
                per[name]["blur"].append(psnr(reference, blur(results[name])))
                per[name]["plain"].append(psnr(img, results[name]))
                per[name]["t"].append(statistics.median(times[name]))
        table[k] = {
            n: {"blur": float(np.mean(v["blur"])), "plain": float(np.mean(v["plain"])), "t": float(np.median(v["t"]))}
            for n, v in per.items()
        }
        print(f"K={k} done", file=sys.stderr, flush=True)

    lines = report(table, args, len(images), argv)
    print("\n".join(lines))
    if not args.quick:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "dither.md").write_text("\n".join(lines) + "\n")
        crop_picture(images.get(CROP_IMAGE, first), runs, out / "dither_crop_k16.png")
    return 0


def report(table: dict[int, dict[str, dict[str, float]]], args: argparse.Namespace, n: int, argv: list[str] | None) -> list[str]:
    cmd = "python benchmarks/dither.py " + " ".join(argv if argv is not None else sys.argv[1:])
    folder = Path(args.images)
    shown = os.path.relpath(folder, ROOT) if folder.is_absolute() else str(folder)
    lines = [
        "# Dithering on photos",
        "",
        f"`{cmd.strip()}` on {n} images from `{shown}`, one thread, {platform.machine()} with {os.cpu_count()} cores "
        f"shared with other work. Blurred PSNR: after a Gaussian blur of sigma = 1 of original and result. Plain "
        f"PSNR: mean over images. Seconds: median over images of the median CPU seconds of {args.repeats} "
        "interleaved runs of quantize + remap; the ratio is to libimagequant dithered in the same run. kvq: "
        "`dither=1`; libimagequant: `dithering_level=1`.",
        "",
        "| K | method | blurred PSNR dB | plain PSNR dB | seconds | time / libimagequant dithered |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for k, rows in table.items():
        base = rows["libimagequant dithered"]["t"]
        for name, r in rows.items():
            lines.append(f"| {k} | {name} | {r['blur']:.3f} | {r['plain']:.3f} | {r['t']:.3f} | {r['t'] / base:.2f} |")
    lines += [
        "",
        "## Goals (issue 12)",
        "",
        "| K | blurred PSNR: kvq dithered − max(kvq undithered, libimagequant dithered) | plain-PSNR cost: kvq / libimagequant "
        "| time: kvq dithered / libimagequant dithered (at most 1.5) | met |",
        "|---:|---:|---:|---:|---|",
    ]
    for k, rows in table.items():
        gain = rows["kvq dithered"]["blur"] - max(rows["kvq undithered"]["blur"], rows["libimagequant dithered"]["blur"])
        cost_kvq = rows["kvq undithered"]["plain"] - rows["kvq dithered"]["plain"]
        cost_liq = rows["libimagequant undithered"]["plain"] - rows["libimagequant dithered"]["plain"]
        ratio = rows["kvq dithered"]["t"] / rows["libimagequant dithered"]["t"]
        met = gain > 0 and cost_kvq <= cost_liq and ratio <= 1.5
        lines.append(
            f"| {k} | {gain:+.3f} dB | {cost_kvq:.3f} dB / {cost_liq:.3f} dB | {ratio:.2f} | {'yes' if met else 'no'} |"
        )
    return lines


if __name__ == "__main__":
    sys.exit(main())
