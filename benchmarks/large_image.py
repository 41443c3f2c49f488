"""Time and peak memory of encoding and decoding one very large image.

    python benchmarks/large_image.py [--megapixels 100] [-k 256]

The image is a Kodak photo (or scikit-learn's china.jpg when ../shared/kodak
is absent) resized to the requested size, with +-3 of noise so that its colour
histogram is as rich as a real high-resolution photo's. Peak memory is
numpy's own allocation high-water mark during each call (tracemalloc sees
numpy buffers), beyond the input image itself.
"""

from __future__ import annotations

import argparse
import math
import time
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image

import kvq

KODAK = Path(__file__).resolve().parents[1] / ".." / "shared" / "kodak" / "kodim01.png"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=100.0)
    parser.add_argument("-k", type=int, default=256)
    args = parser.parse_args()
    image = make_image(args.megapixels)
    n = image.shape[0] * image.shape[1]
    encoded, enc_s, enc_peak = measure(kvq.encode_image, image, k=args.k)
    pixels, dec_s, dec_peak = measure(kvq.decode, encoded.data, max_pixels=None)
    assert np.array_equal(pixels, encoded.pixels())
    gib = 1024**3
    print(f"image: {image.shape[1]} x {image.shape[0]} = {n:,} pixels RGB ({image.nbytes / gib:.2f} GiB), k={args.k}")
    print("| step | seconds | peak memory beyond the input (GiB) |")
    print("|---|---:|---:|")
    print(f"| kvq.encode_image | {enc_s:.1f} | {enc_peak / gib:.2f} |")
    print(f"| kvq.decode | {dec_s:.1f} | {dec_peak / gib:.2f} |")
    print(f"file: {len(encoded.data):,} bytes, K = {encoded.header.k}")


if __name__ == "__main__":
    main()
