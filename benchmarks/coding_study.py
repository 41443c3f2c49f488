"""What a table-driven index coding could reach on the Kodak photos: a study for issue 10's speed goal.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/coding_study.py [--kodak ../shared/kodak] [--ks 16,64,256]
        [--sizes benchmarks/results/entropy.csv] [--out benchmarks/results/coding_study.md]

Index coding 1 (`spec/kvq-coding-1.md`) beats WebP-lossless and JPEG XL in size, but decodes at 0.04-0.09x WebP's speed (goal:
0.25x): it mixes three adaptive binary models for every one of 2.7 to 7.9 binary decisions a pixel, about 33 ns
each, bound by the latency of that chain, not by table sizes. A decoder fast enough needs about one table lookup a
pixel: a static (two-pass) or cheaply adaptive multi-symbol model, decoded by table (tANS, prefix codes) or by a
range coder over a short cumulative table. Before such a coding is designed and specified, this measures what it
could reach, without writing it: the ideal code length of each model on kvq's own indices (default options, the
same as ``benchmarks/entropy.py``), against the bytes that coding 1 and JPEG XL (effort 9) really take, as read from
that benchmark's CSV.

The symbol of a pixel is coding 1's own first step: its rank among the distinct neighbours (left, up, up-right,
up-left, in that order, with the edge rules of `spec/kvq-coding-1.md` §E5), or an escape to a literal index. Models:

- ``rank | pattern, states``: the rank coded in the context of the six neighbour equalities and the ranks chosen at
  the left and upper pixels (64 x 5 x 5 contexts), the context coding 1 hashes first.
- ``literal | up``: an escaped index in the context of the upper neighbour's index (K contexts).
- ``literal | up, left``: in the context of both (K^2 contexts; most are seen a few times).
- ``rank | pattern, states, up, left``, and the plain average of its probabilities with the first rank model's:
  the cheapest mixing a multi-symbol decoder can do (two 5-entry tables read and added a pixel).

Each is costed twice. *Static*: the empirical conditional entropy (what a two-pass coder with exact tables spends)
plus a table cost of 0.5 log2(n) + 1 bits per symbol a context uses (an MDL estimate; real tables are quantised
and cost about that). *Adaptive*: the code length of adaptive counts with the Krichevsky-Trofimov-style estimator
(n_s + a) / (n + A a), which does not depend on the order of the symbols, minimised over a in {1/2, 1/8, 1/32};
a decoder does one cumulative-table search a symbol. The file adds the palette (3 K bytes) and 60 bytes of header
and chunks. The sizes are ideal: an implementation spends about 1 % more. ``benchmarks/coding_prototype.py``
implements one such model and times its decoder.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.special import gammaln

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvq.options import EncoderOptions
from kvq.quantize import quantize

LN2 = np.log(2.0)


def neighbours(indices: np.ndarray) -> tuple[np.ndarray, ...]:
    """left, up, up_left, up_right of every pixel, with the edge rules of `spec/kvq-coding-1.md` §E5."""
    v = indices.astype(np.int64)
    left = np.zeros_like(v)
    left[:, 1:] = v[:, :-1]
    up = np.zeros_like(v)
    up[1:] = v[:-1]
    up_left = np.zeros_like(v)
    up_left[1:, 1:] = v[:-1, :-1]
    up_right = np.zeros_like(v)
    up_right[1:, :-1] = v[:-1, 1:]
    # First row: every neighbour is the left one (0 at the very first pixel).
    up[0], up_left[0], up_right[0] = left[0], left[0], left[0]
    # First column: left and up-left are the upper pixel; last column: up-right is.
    left[1:, 0], up_left[1:, 0] = up[1:, 0], up[1:, 0]
    up_right[1:, -1] = up[1:, -1]
    return left, up, up_left, up_right


def ranks(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each pixel's rank among its distinct neighbours (4: escape), the equality pattern, and the neighbours left/up."""
    v = indices.astype(np.int64)
    left, up, up_left, up_right = neighbours(indices)
    pattern = (
        (left == up) * 1 + (left == up_left) * 2 + (left == up_right) * 4
        + (up == up_left) * 8 + (up == up_right) * 16 + (up_left == up_right) * 32
    )  # fmt: skip
    has_up = up != left
    has_ur = (up_right != left) & (up_right != up)
    has_ul = (up_left != left) & (up_left != up) & (up_left != up_right)
    rank = np.full(v.shape, 4, dtype=np.int64)
    rank[has_ul & (v == up_left)] = 1 + has_up[has_ul & (v == up_left)] + has_ur[has_ul & (v == up_left)]
    at = has_ur & (v == up_right)
    rank[at] = 1 + has_up[at]
    rank[has_up & (v == up)] = 1
    rank[v == left] = 0
    return rank, pattern, left, up


def previous_states(rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ranks chosen at the left and upper pixels (4 outside the image), as coding 1 keeps them."""
    state_left = np.full_like(rank, 4)
    state_left[:, 1:] = rank[:, :-1]
    state_up = np.full_like(rank, 4)
    state_up[1:] = rank[:-1]
    return state_left, state_up


def counts(context: np.ndarray, symbol: np.ndarray, alphabet: int) -> np.ndarray:
    """(contexts x alphabet) table of counts, over the contexts that occur."""
    _, dense = np.unique(context, return_inverse=True)
    table = np.zeros((dense.max() + 1, alphabet), dtype=np.int64)
    np.add.at(table, (dense.ravel(), symbol.ravel()), 1)
    return table


def static_bits(table: np.ndarray) -> float:
    """Empirical conditional entropy plus an MDL table cost."""
    n = table.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        data = -(table * np.where(table > 0, np.log2(table / n), 0.0)).sum()
    used = table > 0
    tables = (used * (0.5 * np.log2(np.maximum(n, 2)) + 1.0)).sum()
    return float(data + tables)


def adaptive_bits(table: np.ndarray) -> float:
    """Code length of adaptive (n_s + a) / (n + A a) counts, the best of three a."""
    alphabet = table.shape[1]
    n = table.sum(axis=1)
    best = np.inf
    for a in (0.5, 0.125, 0.03125):
        nats = (gammaln(n + alphabet * a) - gammaln(alphabet * a)).sum() - (gammaln(table + a) - gammaln(a)).sum()
        best = min(best, nats / LN2)
    return float(best)


def _mixed_kernel():  # type: ignore[no-untyped-def]
    import numba

    @numba.njit(cache=True)
    def run(context_a, context_b, symbols, n_a, n_b, alphabet, a):  # type: ignore[no-untyped-def]
        table_a = np.zeros((n_a, alphabet))
        table_b = np.zeros((n_b, alphabet))
        seen_a = np.zeros(n_a)
        seen_b = np.zeros(n_b)
        bits = 0.0
        for i in range(symbols.shape[0]):
            x, y, s = context_a[i], context_b[i], symbols[i]
            p = 0.5 * ((table_a[x, s] + a) / (seen_a[x] + alphabet * a) + (table_b[y, s] + a) / (seen_b[y] + alphabet * a))
            bits -= np.log2(p)
            table_a[x, s] += 1
            seen_a[x] += 1
            table_b[y, s] += 1
            seen_b[y] += 1
        return bits

    return run


def mixed_bits(context_a: np.ndarray, context_b: np.ndarray, symbols: np.ndarray, alphabet: int) -> float:
    """Code length of the average of two adaptive models' probabilities (a = 0.4): order-dependent, so simulated."""
    dense_a = np.unique(context_a.ravel(), return_inverse=True)[1].astype(np.int64).ravel()
    dense_b = np.unique(context_b.ravel(), return_inverse=True)[1].astype(np.int64).ravel()
    run = _mixed_kernel()
    return float(run(dense_a, dense_b, symbols.ravel(), dense_a.max() + 1, dense_b.max() + 1, alphabet, 0.4))


def study(indices: np.ndarray, k: int) -> dict[str, float]:
    """Ideal bits of each model on one image's indices."""
    rank, pattern, left, up = ranks(indices)
    state_left, state_up = previous_states(rank)
    ctx = (pattern * 5 + state_left) * 5 + state_up
    rank_table = counts(ctx, rank, 5)
    rich_table = counts((ctx * k + up) * k + left, rank, 5)
    escaped = rank == 4
    value = indices.astype(np.int64)[escaped]
    out = {
        "escape_share": float(escaped.mean()),
        "rank_static": static_bits(rank_table),
        "rank_adaptive": adaptive_bits(rank_table),
        "rank_values_adaptive": adaptive_bits(rich_table),
        "rank_left_adaptive": adaptive_bits(counts(ctx * k + left, rank, 5)),
        "rank_mixed": mixed_bits(ctx, (ctx * k + up) * k + left, rank, 5),
    }
    if value.size:
        by_up = counts(up[escaped], value, k)
        by_up_left = counts(up[escaped] * k + left[escaped], value, k)
        out |= {
            "literal_up_static": static_bits(by_up),
            "literal_up_adaptive": adaptive_bits(by_up),
            "literal_up_left_adaptive": adaptive_bits(by_up_left),
        }
    else:
        out |= {"literal_up_static": 0.0, "literal_up_adaptive": 0.0, "literal_up_left_adaptive": 0.0}
    return out


def arguments(description: str, out: str, *, repeat: bool = False) -> argparse.Namespace:
    """The options both studies take (``repeat``: also ``--repeat``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--kodak", default="../shared/kodak")
    parser.add_argument("--ks", default="16,64,256")
    if repeat:
        parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--sizes", default="benchmarks/results/entropy.csv", help="benchmarks/entropy.py's CSV")
    parser.add_argument("--out", default=out)
    return parser.parse_args()


def inputs(args: argparse.Namespace) -> tuple[list[Path], dict[tuple[str, int], dict[str, str]]]:
    """The Kodak photos (none: say so) and entropy.py's measured sizes, by (photo, K)."""
    photos = sorted(Path(args.kodak).glob("kodim*.png"))
    if not photos:
        print(f"no Kodak photos in {args.kodak}: nothing to measure")
        return [], {}
    with open(args.sizes, newline="") as fp:
        return photos, {(r["image"], int(r["k"])): r for r in csv.DictReader(fp)}


def main() -> None:
    args = arguments(__doc__.splitlines()[0], "benchmarks/results/coding_study.md")
    photos, measured = inputs(args)
    if not photos:
        return
    models = {
        "static rank + static literal given up": ("rank_static", "literal_up_static"),
        "static rank + adaptive literal given up": ("rank_static", "literal_up_adaptive"),
        "adaptive rank + adaptive literal given up": ("rank_adaptive", "literal_up_adaptive"),
        "adaptive rank + adaptive literal given up, left": ("rank_adaptive", "literal_up_left_adaptive"),
        "adaptive rank given left + adaptive literal given up": ("rank_left_adaptive", "literal_up_adaptive"),
        "adaptive rank given left + adaptive literal given up, left": ("rank_left_adaptive", "literal_up_left_adaptive"),
        "adaptive rank given up, left + adaptive literal given up, left": ("rank_values_adaptive", "literal_up_left_adaptive"),
        "average of the two rank models + adaptive literal given up, left": ("rank_mixed", "literal_up_left_adaptive"),
        "average of the two rank models + adaptive literal given up": ("rank_mixed", "literal_up_adaptive"),
    }
    lines = [
        "# A table-driven index coding: what it could reach (issue 10's speed goal)",
        "",
        f"Command: `PYTHONPATH=. python benchmarks/coding_study.py` on {len(photos)} Kodak photos, kvq's default options.",
        "Mean bytes of the whole file; in brackets, over JPEG XL lossless (effort 9) of the same pixels. Coding 1 and",
        "JPEG XL are real files (from `benchmarks/results/entropy.csv`); the other rows are ideal code lengths of the",
        "models described in the script's docstring (an implementation spends about 1 % more).",
        "",
    ]
    for k in (int(x) for x in args.ks.split(",")):
        rows: dict[str, list[float]] = defaultdict(list)
        escapes = []
        for photo in photos:
            pixels = np.asarray(Image.open(photo).convert("RGB"))
            palette, indices = quantize(pixels, EncoderOptions(k=k))
            result = study(indices, len(palette))
            escapes.append(result["escape_share"])
            overhead = 3 * len(palette) + 60
            for name, (rank_key, literal_key) in models.items():
                rows[name].append((result[rank_key] + result[literal_key]) / 8 + overhead)
            row = measured.get((photo.stem, k))
            if row:
                rows["coding 1 (real files)"].append(float(row["kvq_bytes"]))
                rows["JPEG XL e9 (real files)"].append(float(row["jxl_bytes"]))
                rows["WebP-lossless m6 (real files)"].append(float(row["webp_bytes"]))
        jxl = statistics.mean(rows["JPEG XL e9 (real files)"]) if rows["JPEG XL e9 (real files)"] else None
        lines += [
            f"## K = {k}: escapes (pixels that need a literal) {100 * statistics.mean(escapes):.1f} %",
            "",
            "| model | mean bytes | vs JPEG XL |",
            "|---|---:|---:|",
        ]
        for name, sizes in rows.items():
            mean = statistics.mean(sizes)
            lines.append(f"| {name} | {mean:,.0f} | {mean / jxl:.3f} |" if jxl else f"| {name} | {mean:,.0f} | |")
        lines.append("")
        print("\n".join(lines[-len(rows) - 5 :]), flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
