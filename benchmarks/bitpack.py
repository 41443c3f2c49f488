"""Fixed-width index decoding and encoding at every width, numpy fast paths against bitarray.

Run from the repository root::

    python benchmarks/bitpack.py            # writes benchmarks/results/bitpack.md
    python benchmarks/bitpack.py --quick    # fewer pixels and repeats, prints only

For each index width from 1 to 16 bits: megapixels per second of
``kvq.bitpack.unpack`` (the decoding of a fixed-width index stream, with the
check that every index is below K) on the fast path and on the bitarray path,
and of ``unpack`` followed by the palette lookup to RGB pixels
(``kvq.codec.lookup``), which is what ``kvq.decode`` adds; and of ``pack``
both ways. K is the smallest palette that needs the width (2**(bits-1) + 1),
so the range check always runs; indices are uniformly random, the worst case
for the lookup's caches. Paths alternate within each repeat and the median is
reported, so load from other processes hits both alike; the speed-up is the
ratio of the two in the same run. One thread. Both paths give identical
bytes and indices (``tests/test_bitpack.py``).

The goals of issue 12 are checked on the fast ``unpack`` column: at least
150 MP/s at every width and 500 MP/s at 8 bits.
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
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvq import bitpack
from kvq.codec import lookup

GOAL_ALL, GOAL_8 = 150.0, 500.0


def seconds(function: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def measure(bits: int, pixels: int, slow_pixels: int, repeats: int, rng: np.random.Generator) -> dict[str, float]:
    """Megapixels per second of each path at one width (medians over interleaved repeats)."""
    k = 2 if bits == 1 else (1 << (bits - 1)) + 1
    dtype = bitpack.index_dtype(k)
    values = rng.integers(0, k, pixels).astype(dtype)
    few = values[:slow_pixels]
    palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
    packed = bitpack.pack(values, bits)
    packed_few = bitpack.pack(few, bits, fast=False)
    assert np.array_equal(bitpack.unpack(packed, bits, pixels, k), values)
    times: dict[str, list[float]] = {name: [] for name in ("unpack", "unpack_slow", "decode", "pack", "pack_slow")}
    for _ in range(repeats):
        times["unpack"].append(seconds(bitpack.unpack, packed, bits, pixels, k) / pixels)
        times["unpack_slow"].append(seconds(bitpack.unpack, packed_few, bits, slow_pixels, k, fast=False) / slow_pixels)
        times["decode"].append(
            seconds(lambda: lookup(palette, bitpack.unpack(packed, bits, pixels, k).reshape(1, -1))) / pixels
        )
        times["pack"].append(seconds(bitpack.pack, values, bits) / pixels)
        times["pack_slow"].append(seconds(bitpack.pack, few, bits, fast=False) / slow_pixels)
    return {name: 1e-6 / statistics.median(t) for name, t in times.items()} | {"k": k}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pixels", type=int, default=12_000_000, help="indices per fast-path call (default 12 MP)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="2 MP, 3 repeats, print only")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bitpack.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.pixels, args.repeats = 2_000_000, 3
    # bitarray is 10-100x slower: a smaller sample gives the same rate.
    slow_pixels = min(args.pixels, 1_000_000)
    rng = np.random.default_rng(0)
    rows = []
    for bits in range(1, 17):
        r = measure(bits, args.pixels, slow_pixels, args.repeats, rng)
        rows.append((bits, r))
        print(f"{bits} bits: unpack {r['unpack']:.0f} MP/s", file=sys.stderr, flush=True)

    goal_met = all(r["unpack"] >= GOAL_ALL for _, r in rows) and dict(rows)[8]["unpack"] >= GOAL_8
    cmd = "python benchmarks/bitpack.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Fixed-width index decoding and encoding, every width",
        "",
        f"`{cmd.strip()}` on {platform.machine()} with {os.cpu_count()} cores (shared with other work), one thread; "
        f"{args.pixels:,} random indices per fast-path call ({slow_pixels:,} on the bitarray path), K = 2^(bits-1) + 1, "
        f"median of {args.repeats} interleaved repeats. MP/s = million indices per second.",
        "",
        "- **unpack**: `bitpack.unpack` (fixed-width stream to indices, each checked < K), numpy path and bitarray path.",
        "- **decode to RGB**: `unpack` then the palette lookup (`codec.lookup`) to an RGB array, as `kvq.decode` does.",
        "- **pack**: `bitpack.pack` both ways (encoding).",
        "",
        "| bits | K | unpack MP/s | unpack, bitarray MP/s | speed-up | decode to RGB MP/s | pack MP/s | pack, bitarray MP/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for bits, r in rows:
        lines.append(
            f"| {bits} | {int(r['k']):,} | {r['unpack']:,.0f} | {r['unpack_slow']:,.0f} | {r['unpack'] / r['unpack_slow']:,.1f}x | "
            f"{r['decode']:,.0f} | {r['pack']:,.0f} | {r['pack_slow']:,.0f} |"
        )
    worst = min(rows, key=lambda row: row[1]["unpack"])
    lines += [
        "",
        f"Goal (issue 12): unpack at least {GOAL_ALL:.0f} MP/s at every width and {GOAL_8:.0f} MP/s at 8 bits: "
        f"**{'met' if goal_met else 'not met'}** (slowest: {worst[1]['unpack']:,.0f} MP/s at {worst[0]} bits; "
        f"8 bits: {dict(rows)[8]['unpack']:,.0f} MP/s).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
