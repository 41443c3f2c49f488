"""Compare kvq's palette engine with other colour quantizers on photos.

Run from the repository root::

    python benchmarks/quantizers.py            # all of ../shared/kodak, K = 2, 16, 64, 256
    python benchmarks/quantizers.py --quick    # four photos
    python benchmarks/quantizers.py DIR -k 16 64

Every method runs single-threaded (BLAS/OpenMP pools limited to one thread)
and without dithering. Times are CPU seconds of the calling process (for
pngquant, of the child process, which includes its PNG reading and writing),
so that other work on a shared machine does not inflate them; the table gives
the median over images. Quality is measured on the decoded RGB image: PSNR
(mean over images), SSIM, and CIEDE2000 colour difference (mean and the
99.9th percentile over all pixels of all images, which shows whether rare
colours were washed out). Methods that are not installed are skipped with a
note.
"""

from __future__ import annotations

import os

# Before numpy and friends load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import csv
import resource
import shutil
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

Method = Callable[[np.ndarray, int], np.ndarray]


def kvq_method(speed: int) -> Method:
    def run(img: np.ndarray, k: int) -> np.ndarray:
        palette, indices = quantize(img, EncoderOptions(k=k, speed=speed))
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


def libimagequant(img: np.ndarray, k: int) -> np.ndarray:
    import imagequant

    q = imagequant.quantize_pil_image(
        Image.fromarray(img), dithering_level=0.0, max_colors=k, min_quality=0, max_quality=100
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
        return np.asarray(Image.open(dst).convert("RGB")), seconds


def available_methods(speeds: list[int]) -> tuple[dict[str, Method], list[str]]:
    methods: dict[str, Method] = {f"kvq (speed {s})": kvq_method(s) for s in speeds}
    notes = []
    try:
        import sklearn  # noqa: F401

        methods["sklearn KMeans, all pixels"] = sklearn_kmeans
        methods["sklearn MiniBatchKMeans"] = sklearn_minibatch
    except ImportError:
        notes.append("scikit-learn not installed: KMeans and MiniBatchKMeans skipped")
    methods["Pillow median cut"] = pillow_method(Image.Quantize.MEDIANCUT)
    methods["Pillow fast octree"] = pillow_method(Image.Quantize.FASTOCTREE)
    try:
        import imagequant  # noqa: F401

        methods["libimagequant"] = libimagequant
    except ImportError:
        notes.append("imagequant (libimagequant) not installed: skipped")
    if shutil.which("pngquant"):
        methods["pngquant --nofs --speed 1"] = pngquant  # type: ignore[assignment]
    else:
        notes.append("pngquant not on PATH: skipped")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="?", default=str(ROOT.parent / "shared" / "kodak"), help="folder of PNG photos")
    parser.add_argument("-k", type=int, nargs="+", default=[2, 16, 64, 256], help="palette sizes")
    parser.add_argument("--quick", action="store_true", help="only the first four photos")
    parser.add_argument(
        "--speed", type=int, nargs="+", default=[EncoderOptions().speed],
        help="kvq speed(s); ratios are to the first (default: the encoder's default)",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for quantizers.md/.csv")
    parser.add_argument("--only", nargs="*", help="run only methods whose name contains one of these words")
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    files = sorted(Path(args.images).glob("*.png"))
    if args.quick:
        files = files[:4]
    if not files:
        print(f"no PNG files in {args.images}", file=sys.stderr)
        return 1
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    from skimage.color import rgb2lab

    labs = [rgb2lab(img) for img in images]
    methods, notes = available_methods(args.speed)
    if args.only:
        methods = {n: m for n, m in methods.items() if any(w.lower() in n.lower() for w in args.only)}
    kvq_name = next(iter(methods))
    # Warm up: lazy imports and first-call costs are not per-image work.
    for method in methods.values():
        method(images[0][:32, :32], 4)

    rows = []
    for k in args.k:
        per: dict[str, dict[str, list]] = {n: {"t": [], "psnr": [], "ssim": [], "de": []} for n in methods}
        # Methods interleave per image so that machine load drifts hit all alike.
        for img, lab in zip(images, labs, strict=True):
            for name, method in methods.items():
                start = time.process_time()
                result = method(img, k)
                seconds = time.process_time() - start
                if isinstance(result, tuple):
                    result, seconds = result
                p, s, de = quality(img, result, lab)
                for key, v in (("t", seconds), ("psnr", p), ("ssim", s), ("de", de)):
                    per[name][key].append(v)
            print(f"K={k}: {len(per[kvq_name]['t'])}/{len(images)} images", file=sys.stderr, flush=True)
        base_t = float(np.median(per[kvq_name]["t"]))
        base_p = float(np.mean(per[kvq_name]["psnr"]))
        for name, r in per.items():
            de = np.concatenate(r["de"])
            t = float(np.median(r["t"]))
            p = float(np.mean(r["psnr"]))
            rows.append({
                "K": k, "method": name, "seconds": t, "psnr": p, "ssim": float(np.mean(r["ssim"])),
                "de2000_mean": float(de.mean()), "de2000_p999": float(np.percentile(de, 99.9)),
                "time_vs_kvq": t / base_t, "psnr_vs_kvq_db": p - base_p,
            })

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "quantizers.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    cmd = "python benchmarks/quantizers.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Colour quantizers on photos",
        "",
        f"`{cmd.strip()}` on {len(images)} images from `{args.images}`, no dithering, one thread. "
        "Seconds: median CPU seconds per image (pngquant: its own process, PNG I/O included). "
        "PSNR over RGB and SSIM: mean over images. ΔE2000: mean and 99.9th percentile over all pixels. "
        "Ratios are to kvq in the same run (ΔPSNR in dB).",
        "",
    ]
    lines += [f"- {n}" for n in notes]
    if notes:
        lines.append("")
    lines.append("| K | method | seconds | PSNR dB | SSIM | ΔE00 mean | ΔE00 p99.9 | time / kvq | PSNR − kvq |")
    lines.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        lines.append(
            f"| {r['K']} | {r['method']} | {r['seconds']:.3f} | {r['psnr']:.3f} | {r['ssim']:.4f} | "
            f"{r['de2000_mean']:.2f} | {r['de2000_p999']:.2f} | {r['time_vs_kvq']:.2f} | {r['psnr_vs_kvq_db']:+.3f} |"
        )
    (out / "quantizers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
