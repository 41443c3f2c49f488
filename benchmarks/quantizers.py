"""kvq's palette engine against other colour quantizers on photos: time and quality.

Run from the repository root::

    python benchmarks/quantizers.py            # ../shared/kodak, K = 16, 64, 256 -> benchmarks/results/quantizers.md
    python benchmarks/quantizers.py --quick    # four photos, print only
    python benchmarks/quantizers.py DIR -k 16 64 --more

Methods (no dithering, one thread: BLAS/OpenMP/numba pools limited to one):

- kvq at its default speed (``kvq.quantize.quantize``: palette and indices, then the RGB image);
- libimagequant through its Python binding ``imagequant`` (quantize and remap, dithering 0, quality 0-100);
- ``pngquant --nofs --speed 1`` (its slowest, best setting), timed as its own process, PNG reading and
  writing included;
- scikit-learn ``KMeans`` on all pixels (k-means++, one start, seed 0), and its palette rounded to bytes;
- with ``--more``: MiniBatchKMeans, Pillow's median cut and fast octree, and kvq at other speeds.

Timing: every image is quantized by every method in turn, ``--repeats`` times (KMeans once: it is there for
its quality), so that load from other work on a shared machine hits all alike; a method's time for an image
is the median of its repeats in CPU seconds of this process (pngquant: of its child process), and the table
gives the median over images, and its ratio to libimagequant's. Quality is measured on the RGB image: PSNR
(mean over images), SSIM, and CIEDE2000 (mean, and 99.9th percentile over all pixels of all images, which
shows whether rare colours were washed out). Methods that are not installed are skipped with a note. First
calls (imports, numba's cached kernels) are made before timing.
"""

from __future__ import annotations

import os

# Before numpy and friends load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import csv
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvq.options import EncoderOptions
from kvq.quantize import quantize

#: A method maps (image, K) to the quantized RGB image, or to (image, seconds) when it times itself.
Method = Callable[[np.ndarray, int], "np.ndarray | tuple[np.ndarray, float]"]
KVQ = "kvq (default)"
LIQ = "libimagequant"
PNGQUANT = "pngquant --nofs --speed 1"
KMEANS = "sklearn KMeans, all pixels"
#: Methods timed once per image (their quality is the point, not their time).
ONCE = (KMEANS, "sklearn MiniBatchKMeans")


def kvq_method(speed: int | None = None) -> Method:
    def run(img: np.ndarray, k: int) -> np.ndarray:
        options = EncoderOptions(k=k) if speed is None else EncoderOptions(k=k, speed=speed)
        palette, indices = quantize(img, options)
        return palette[indices]

    return run


def sklearn_kmeans(img: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    x = img.reshape(-1, 3).astype(np.float32)
    km = KMeans(n_clusters=k, n_init=1, random_state=0).fit(x)
    palette = np.clip(np.rint(km.cluster_centers_), 0, 255).astype(np.uint8)
    return palette[km.predict(x)].reshape(img.shape)


def sklearn_minibatch(img: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import MiniBatchKMeans

    x = img.reshape(-1, 3).astype(np.float32)
    km = MiniBatchKMeans(n_clusters=k, n_init=1, random_state=0, batch_size=4096).fit(x)
    palette = np.clip(np.rint(km.cluster_centers_), 0, 255).astype(np.uint8)
    return palette[km.predict(x)].reshape(img.shape)


def pillow_method(method: Image.Quantize) -> Method:
    def run(img: np.ndarray, k: int) -> np.ndarray:
        q = Image.fromarray(img).quantize(colors=k, method=method, dither=Image.Dither.NONE)
        return np.asarray(q.convert("RGB"))

    return run


def libimagequant(img: np.ndarray, k: int, dithering: float = 0.0) -> np.ndarray:
    import imagequant

    q = imagequant.quantize_pil_image(
        Image.fromarray(img), dithering_level=dithering, max_colors=k, min_quality=0, max_quality=100
    )
    return np.asarray(q.convert("RGB"))


def pngquant(img: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.png", Path(tmp) / "out.png"
        Image.fromarray(img).save(src, compress_level=1)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            ["pngquant", "--nofs", "--speed", "1", "--force", "--output", str(dst), str(max(k, 2)), str(src)],
            check=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        with Image.open(dst) as out:
            return np.asarray(out.convert("RGB")), seconds


def available_methods(more: bool) -> tuple[dict[str, Method], list[str]]:
    methods: dict[str, Method] = {KVQ: kvq_method()}
    notes = []
    try:
        import imagequant  # noqa: F401

        methods[LIQ] = libimagequant
    except ImportError:
        notes.append("imagequant (libimagequant) not installed: skipped")
    if shutil.which("pngquant"):
        methods[PNGQUANT] = pngquant
    else:
        notes.append("pngquant not on PATH: skipped")
    try:
        import sklearn  # noqa: F401

        methods[KMEANS] = sklearn_kmeans
        if more:
            methods["sklearn MiniBatchKMeans"] = sklearn_minibatch
    except ImportError:
        notes.append("scikit-learn not installed: KMeans skipped")
    if more:
        methods["Pillow median cut"] = pillow_method(Image.Quantize.MEDIANCUT)
        methods["Pillow fast octree"] = pillow_method(Image.Quantize.FASTOCTREE)
        for speed in (1, 2, 6, 8, 10):
            methods[f"kvq (speed {speed})"] = kvq_method(speed)
    return methods, notes


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def quality(ref: np.ndarray, out: np.ndarray, lab_ref: np.ndarray) -> tuple[float, float, np.ndarray]:
    from skimage.color import deltaE_ciede2000, rgb2lab
    from skimage.metrics import structural_similarity

    ssim = structural_similarity(ref, out, channel_axis=2, data_range=255)
    de = deltaE_ciede2000(lab_ref, rgb2lab(out)).astype(np.float32).ravel()
    return psnr(ref, out), float(ssim), de


def timed(method: Method, img: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    start = time.process_time()
    result = method(img, k)
    seconds = time.process_time() - start
    if isinstance(result, tuple):
        return result
    return result, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("images", nargs="?", default=str(ROOT.parent / "shared" / "kodak"), help="folder of PNG photos")
    parser.add_argument("-k", type=int, nargs="+", default=[16, 64, 256], help="palette sizes")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each method per image (KMeans: 1)")
    parser.add_argument("--quick", action="store_true", help="only the first four photos, one repeat; print only")
    parser.add_argument("--more", action="store_true", help="also MiniBatchKMeans, Pillow's and kvq's other speeds")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for quantizers.md/.csv")
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    files = sorted(Path(args.images).glob("*.png"))
    if args.quick:
        files, args.repeats = files[:4], 1
    if not files:
        print(f"no PNG files in {args.images}", file=sys.stderr)
        return 1
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    from skimage.color import rgb2lab

    labs = [rgb2lab(img) for img in images]
    methods, notes = available_methods(args.more)
    for method in methods.values():
        method(images[0][:64, :64], 16)

    rows = []
    for k in args.k:
        per: dict[str, dict[str, list]] = {n: {"t": [], "psnr": [], "ssim": [], "de": []} for n in methods}
        for img, lab in zip(images, labs, strict=True):
            times: dict[str, list[float]] = {n: [] for n in methods}
            results: dict[str, np.ndarray] = {}
            for repeat in range(args.repeats):
                for name, method in methods.items():
                    if repeat and name in ONCE:
                        continue
                    results[name], seconds = timed(method, img, k)
                    times[name].append(seconds)
            for name in methods:
                p, s, de = quality(img, results[name], lab)
                for key, v in (("t", statistics.median(times[name])), ("psnr", p), ("ssim", s), ("de", de)):
                    per[name][key].append(v)
            print(f"K={k}: {len(per[KVQ]['t'])}/{len(images)} images", file=sys.stderr, flush=True)
        base = float(np.median(per[LIQ]["t"])) if LIQ in per else float("nan")
        for name, r in per.items():
            de = np.concatenate(r["de"])
            t = float(np.median(r["t"]))
            rows.append({
                "K": k, "method": name, "seconds": t, "time_vs_libimagequant": t / base,
                "psnr": float(np.mean(r["psnr"])), "ssim": float(np.mean(r["ssim"])),
                "de2000_mean": float(de.mean()), "de2000_p999": float(np.percentile(de, 99.9)),
            })  # fmt: skip

    lines = report(rows, args, len(images), notes, argv)
    print("\n".join(lines))
    if not args.quick:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "quantizers.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        (out / "quantizers.md").write_text("\n".join(lines) + "\n")
    return 0


def report(rows: list[dict], args: argparse.Namespace, n_images: int, notes: list[str], argv: list[str] | None) -> list[str]:
    cmd = "python benchmarks/quantizers.py " + " ".join(argv if argv is not None else sys.argv[1:])
    folder = Path(args.images)
    shown = os.path.relpath(folder, ROOT) if folder.is_absolute() else str(folder)
    lines = [
        "# Colour quantizers on photos",
        "",
        f"`{cmd.strip()}` on {n_images} images from `{shown}`, no dithering, one thread, {platform.machine()} with "
        f"{os.cpu_count()} cores shared with other work. Seconds: median over images of each image's median CPU "
        f"seconds over {args.repeats} interleaved runs (KMeans: one run; pngquant: its own process, PNG I/O included). "
        "PSNR over RGB and SSIM: mean over images. ΔE2000: mean and 99.9th percentile over all pixels. "
        "Time ratio and ΔPSNR against libimagequant in the same run.",
        "",
    ]
    lines += [f"- {n}" for n in notes]
    if notes:
        lines.append("")
    lines.append("| K | method | seconds | time / libimagequant | PSNR dB | SSIM | ΔE00 mean | ΔE00 p99.9 |")
    lines.append("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        lines.append(
            f"| {r['K']} | {r['method']} | {r['seconds']:.3f} | {r['time_vs_libimagequant']:.2f} | {r['psnr']:.3f} | "
            f"{r['ssim']:.4f} | {r['de2000_mean']:.2f} | {r['de2000_p999']:.2f} |"
        )
    lines += ["", "## Goals (issue 12)", ""]
    lines.append("Default encode: time at most 1.0x libimagequant's, PSNR above libimagequant, pngquant and KMeans on all pixels.")
    lines.append("")
    lines.append("| K | kvq / libimagequant time | kvq PSNR − best peer PSNR | met |")
    lines.append("|---:|---:|---:|---|")
    for k in args.k:
        at_k = {r["method"]: r for r in rows if r["K"] == k}
        kvq = at_k[KVQ]
        peers = [at_k[name]["psnr"] for name in (LIQ, PNGQUANT, KMEANS) if name in at_k]
        margin = kvq["psnr"] - max(peers) if peers else float("nan")
        met = kvq["time_vs_libimagequant"] <= 1.0 and margin > 0 and len(peers) == 3
        lines.append(f"| {k} | {kvq['time_vs_libimagequant']:.2f} | {margin:+.3f} dB | {'yes' if met else 'no'} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
