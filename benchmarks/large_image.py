"""Time and peak memory of encoding and decoding one very large image.

    PYTHONPATH=. python benchmarks/large_image.py [--megapixels 100] [-k 256] [--out benchmarks/results/large_image.md]

The image is a Kodak photo (or scikit-learn's china.jpg when ../shared/kodak
is absent) resized to the requested size, with +-3 of noise so that its colour
histogram is as rich as a real high-resolution photo's. Two measurements:

- **In the library**: ``kvq.encode_image`` and ``kvq.decode`` on the array,
  with numpy's own allocation high-water mark during each call (tracemalloc
  sees numpy buffers), beyond the input itself.
- **Whole processes**, as a user runs them: ``kvq encode big.png``,
  ``kvq decode big.kvq -o big.png`` and Pillow's ``Image.open("big.kvq").load()``
  through kvq's plugin, each in a fresh interpreter, with its peak resident
  memory (``ru_maxrss`` of that process, from ``os.wait4``) and seconds.
  Both decodes go by row bands; they are run on the default, entropy-coded
  file (whose index stream is decoded whole, then looked up by bands) and on
  the same palette and indices stored with fixed-width coding (read by bands
  from the file). ``python -c "import kvq"`` is the floor every process pays.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image

import kvq

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "kodak" / "kodim01.png"
GIB = 1024**3


def make_image(megapixels: float) -> np.ndarray:
    """Build a photo-like RGB image of about ``megapixels`` million pixels."""
    if KODAK.exists():
        source = Image.open(KODAK).convert("RGB")
    else:
        from sklearn.datasets import load_sample_image

        source = Image.fromarray(load_sample_image("china.jpg"))
    scale = math.sqrt(megapixels * 1e6 / (source.width * source.height))
    previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        big = np.asarray(source.resize((round(source.width * scale), round(source.height * scale)), Image.BICUBIC))
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    noise = np.random.default_rng(0).integers(-3, 4, big.shape, dtype=np.int8)
    return np.clip(big + noise, 0, 255, dtype=np.int16).astype(np.uint8)


def measure(function, *args, **kwargs):
    """Run ``function`` once; return its result, seconds and peak traced bytes."""
    tracemalloc.start()
    start = time.perf_counter()
    result = function(*args, **kwargs)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds, peak


# Runs one command and prints its seconds and peak RSS. It runs in a small
# interpreter of its own: a child forked from this benchmark's large process
# would count that process's memory in its ru_maxrss until it execs.
_LAUNCHER = """
import os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(os.waitstatus_to_exitcode(status), time.perf_counter() - start, usage.ru_maxrss * 1024)
"""


def process(command: list[str], cwd: Path) -> tuple[float, int]:
    """Run a command; return its seconds and its own peak resident memory in bytes (Linux)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", _LAUNCHER, *command], cwd=cwd, env=env, capture_output=True, text=True)
    status, seconds, rss = result.stdout.split()
    if result.returncode != 0 or status != "0":
        raise SystemExit(f"{' '.join(command)} failed ({status}): {result.stderr.strip()}")
    return float(seconds), int(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=100.0)
    parser.add_argument("-k", type=int, default=256)
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) here")
    args = parser.parse_args()
    image = make_image(args.megapixels)
    height, width = image.shape[:2]
    n = height * width
    lines = [
        "# One very large image: time and peak memory",
        "",
        f"Command: `PYTHONPATH=. python benchmarks/large_image.py --megapixels {args.megapixels:g} -k {args.k}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; load average"
        f" {os.getloadavg()[0]:.2f} at the start. One run of each.",
        "",
        f"Image: {width} x {height} = {n:,} pixels RGB ({image.nbytes / GIB:.2f} GiB), k={args.k}",
        "",
        "## In the library",
        "",
        "| step | seconds | peak memory beyond the input (GiB) |",
        "|---|---:|---:|",
    ]
    encoded, enc_s, enc_peak = measure(kvq.encode_image, image, k=args.k)
    pixels, dec_s, dec_peak = measure(kvq.decode, encoded.data, max_pixels=None)
    assert np.array_equal(pixels, encoded.pixels())
    del pixels
    lines += [f"| kvq.encode_image | {enc_s:.1f} | {enc_peak / GIB:.2f} |", f"| kvq.decode | {dec_s:.1f} | {dec_peak / GIB:.2f} |", ""]
    fixed = kvq.encode_indexed(palette=encoded.palette, indices=encoded.indices, coding="fixed")
    coding = {0: "fixed width", 1: "entropy coded"}[encoded.header.coding]
    lines.append(
        f"File: {len(encoded.data):,} bytes, K = {encoded.header.k}, {coding} (the default); the same palette and indices"
        f" in fixed width: {len(fixed):,} bytes."
    )
    with tempfile.TemporaryDirectory(prefix="kvq-bench-large-") as folder:
        work = Path(folder)
        previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            Image.fromarray(image).save(work / "big.png", compress_level=1)
        finally:
            Image.MAX_IMAGE_PIXELS = previous
        (work / "fixed.kvq").write_bytes(fixed)
        del image, encoded, fixed
        kvq_cmd = [sys.executable, "-m", "kvq"]
        runs = {
            'python -c "import kvq"': process([sys.executable, "-c", "import kvq"], work),
            f"kvq encode big.png -o big.kvq -k {args.k}": process(
                [*kvq_cmd, "encode", "big.png", "-o", "big.kvq", "-k", str(args.k), "-q"], work
            ),
            "kvq decode big.kvq -o out.png": process([*kvq_cmd, "decode", "big.kvq", "-o", "out.png", "--max-pixels", str(2 * n)], work),
            'Image.open("big.kvq").load()': process(
                [sys.executable, "-W", "ignore", "-c", "from PIL import Image; import kvq; Image.open('big.kvq').load()"], work
            ),
            "kvq decode fixed.kvq -o fixed.png (fixed width)": process(
                [*kvq_cmd, "decode", "fixed.kvq", "-o", "fixed.png", "--max-pixels", str(2 * n)], work
            ),
            'Image.open("fixed.kvq").load() (fixed width)': process(
                [sys.executable, "-W", "ignore", "-c", "from PIL import Image; import kvq; Image.open('fixed.kvq').load()"], work
            ),
        }
        previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(work / "out.png") as back, Image.open(work / "fixed.png") as again:
                out_mode = back.mode
                assert np.array_equal(np.asarray(back), np.asarray(again)), "the two codings decoded differently"
        finally:
            Image.MAX_IMAGE_PIXELS = previous
        kvq_size, fixed_size = (work / "big.kvq").stat().st_size, (work / "fixed.kvq").stat().st_size
    output_bytes = {"P": n, "L": n, "RGB": 3 * n, "RGBA": 4 * n}[out_mode]
    lines += [
        "",
        "## Whole processes",
        "",
        f"Decoded image in memory: mode {out_mode}, {output_bytes / GIB:.2f} GiB; input image {3 * n / GIB:.2f} GiB;"
        f" .kvq file {kvq_size / GIB:.2f} GiB (fixed width {fixed_size / GIB:.2f} GiB). Goal: each under 3 GB (2.79 GiB) peak.",
        "",
        "| process | seconds | peak RSS (GiB) |",
        "|---|---:|---:|",
        *(f"| `{name}` | {seconds:.1f} | {rss / GIB:.2f} |" for name, (seconds, rss) in runs.items()),
        "",
        f"Load average {os.getloadavg()[0]:.2f} at the end.",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
