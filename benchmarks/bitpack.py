"""Index packing: the numpy fast paths against bitarray, on 12 megapixels.

    python benchmarks/bitpack.py

For each width, median seconds of ``kvq.bitpack.pack`` and ``unpack`` with
``fast=True`` (numpy where the width allows) and ``fast=False`` (bitarray),
measured in the same run, and the ratio. Both give identical bytes
(tests/test_bitpack.py); this only shows which is faster.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from kvq import bitpack

PIXELS = 12_000_000
REPEAT = 5


def median_seconds(function, *args, **kwargs) -> float:
    """Median wall-clock seconds of ``REPEAT`` calls."""
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        function(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{PIXELS:,} indices, median of {REPEAT} runs")
    print("| bits | pack numpy s | pack bitarray s | bitarray / numpy | unpack numpy s | unpack bitarray s | bitarray / numpy |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for bits in (1, 2, 4, 6, 7, 8, 16):
        k = 1 << bits
        values = rng.integers(0, k, PIXELS).astype(bitpack.index_dtype(k))
        packed = bitpack.pack(values, bits)
        assert packed == bitpack.pack(values, bits, fast=False)
        pf, ps = (median_seconds(bitpack.pack, values, bits, fast=f) for f in (True, False))
        uf, us = (median_seconds(bitpack.unpack, packed, bits, PIXELS, k, fast=f) for f in (True, False))
        print(f"| {bits} | {pf:.3f} | {ps:.3f} | {ps / pf:.1f}x | {uf:.3f} | {us:.3f} | {us / uf:.1f}x |")


if __name__ == "__main__":
    main()
