"""Leaving a Lloyd optimum: remove the cheapest clusters, split the most profitable ones.

Lloyd's iterations stop in the nearest local optimum of the squared error,
and on photos those optima differ by a tenth of a dB and more. A swap moves
one centre from where it is least useful to where one is most wanted, in
the spirit of Fränti's random swap and of I-k-means-+ (Ismkhan 2018), but
choosing instead of guessing:

- the **removal cost** of a centre is what its points would add to the error
  by going to their second-nearest centre (an upper bound: those centres
  would then move towards them);
- the **split gain** of a cluster is the error removed by its best cut
  across its principal axis (:func:`.initialise.best_cut`; a lower bound on
  what two centres would do there).

Where the gain of one cluster exceeds the removal cost of another, the
removed centre becomes one half of the split cluster. Several disjoint swaps
run at once; a few Lloyd iterations settle them, and they are kept only if
the total error went down (otherwise half as many are tried).
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel
from .initialise import BINS, best_cut, moments, position
from .lloyd import Lloyd
from .nearest import distance2

#: A swap is tried when the split gain exceeds this fraction of the removal
#: cost: the cost is an overestimate and the gain an underestimate.
PROMISE = 0.5
# Removals and splits considered per round, cheapest and richest first.
_CANDIDATES = 64


def swap_refine(state: Lloyd, rounds: int, batch: int, settle: int) -> None:
    """Improve a Lloyd optimum in place by swaps, until none helps or ``rounds`` are spent.

    Parameters
    ----------
    state : Lloyd
        Converged (or nearly); left with a total error never above the one
        it came with.
    rounds : int
        Most attempts (kept or not).
    batch : int
        Swaps tried together at first; halved after each failed attempt.
    settle : int
        Lloyd iterations after each attempt.
    """
    k = len(state.centres)
    if k < 3:
        return
    points, weights = state.points, state.weights
    error = state.error()
    failed: set[tuple[int, int]] = set()
    improved = True  # the costs and gains below describe the current state only until it improves
    for _ in range(rounds):
        if improved:
            removal = np.zeros(k)
            second = np.empty(len(points), dtype=np.int64)
            _removal_costs(points, weights, state.labels, *state.nearest.table, removal, second)
            gain, axes, thresholds = _split_gains(points, weights, state.labels, k, BINS)
        pairs = _choose(removal, gain, batch, failed)
        if not pairs:
            break
        saved = state.save()
        moved = state.centres.copy()
        chosen = np.array(pairs, dtype=np.int64)
        _apply(points, weights, state.labels, chosen, axes, thresholds, moved)
        state.teleport(moved, chosen.ravel(), second)
        state.run(settle, 0.0)
        trial_error = state.error()
        improved = trial_error < error
        if improved:
            error = trial_error
            failed.clear()
        else:
            state.restore(saved)
            if batch > 1:
                batch = max(1, batch // 2)
            else:
                failed.add(pairs[0])


def _choose(removal: np.ndarray, gain: np.ndarray, batch: int, failed: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """Up to ``batch`` (removed, split) pairs, cheapest removals with largest gains, all distinct, none in ``failed``."""
    cheap = np.argsort(removal, kind="stable")[:_CANDIDATES]
    rich = np.argsort(-gain, kind="stable")[:_CANDIDATES]
    used: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for a in cheap.tolist():
        if len(pairs) == batch:
            break
        if a in used:
            continue
        for b in rich.tolist():
            if gain[b] <= PROMISE * removal[a]:
                break
            if b != a and b not in used and (a, b) not in failed:
                pairs.append((a, b))
                used.update((a, b))
                break
    return pairs


@kernel
def _removal_costs(
    points: np.ndarray,
    weights: np.ndarray,
    labels: np.ndarray,
    centres: np.ndarray,
    neighbours: np.ndarray,
    gaps: np.ndarray,
    radius: np.ndarray,
    cost: np.ndarray,
    second: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Second-nearest centre of every point, and in ``cost[c]`` what moving c's points there adds."""
    k = centres.shape[0]
    m = neighbours.shape[1]
    for i in range(points.shape[0]):
        a = labels[i]
        p0, p1, p2, p3 = points[i, 0], points[i, 1], points[i, 2], points[i, 3]
        own = distance2(p0, p1, p2, p3, centres, a)
        best = np.inf
        best_j = -1
        search_all = m == 0
        if m > 0:
            # The second nearest is among a's neighbours within reach, or
            # else beyond the list (then search all).
            r = np.sqrt(own)
            reach = np.inf
            stopped = False
            for t in range(m):
                if gaps[a, t] > reach:
                    stopped = True
                    break
                j = neighbours[a, t]
                d = distance2(p0, p1, p2, p3, centres, j)
                if d < best:
                    best, best_j = d, j
                    reach = r + np.sqrt(d)
            search_all = not stopped and radius[a] <= reach
        if search_all:
            for j in range(k):
                if j != a:
                    d = distance2(p0, p1, p2, p3, centres, j)
                    if d < best:
                        best, best_j = d, j
        second[i] = best_j
        cost[a] += weights[i] * (best - own)


@kernel
def _split_gains(
    points: np.ndarray, weights: np.ndarray, labels: np.ndarray, k: int, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Best cut of every cluster: (gain, axis, threshold) per cluster."""
    n, dims = points.shape
    # Members of each cluster, contiguous (a counting sort by label).
    start = np.zeros(k + 1, dtype=np.int64)
    for i in range(n):
        start[labels[i] + 1] += 1
    for c in range(k):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[fill[labels[i]]] = i
        fill[labels[i]] += 1
    gain = np.zeros(k)
    axes = np.zeros((k, dims))
    thresholds = np.zeros(k)
    for c in range(k):
        members = order[start[c] : start[c + 1]]
        total, sums, products = moments(points, weights, members)
        gain[c], thresholds[c] = best_cut(points, weights, members, total, sums, products, axes[c], bins)
    return gain, axes, thresholds


@kernel
def _apply(
    points: np.ndarray,
    weights: np.ndarray,
    labels: np.ndarray,
    pairs: np.ndarray,
    axes: np.ndarray,
    thresholds: np.ndarray,
    centres: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Move each removed centre ``a`` to the mean of the far half of cluster ``b``, and ``b`` to its near half.

    ``pairs`` rows are (a, b); ``centres`` is changed in place.
    """
    k, dims = centres.shape
    target = np.full(k, -1, dtype=np.int64)
    for p in range(pairs.shape[0]):
        target[pairs[p, 1]] = pairs[p, 0]
    total = np.zeros((k, 2))
    sums = np.zeros((k, 2, dims))
    for i in range(points.shape[0]):
        b = labels[i]
        if target[b] < 0:
            continue
        side = 1 if position(points, i, axes[b]) >= thresholds[b] else 0
        total[b, side] += weights[i]
        for ch in range(dims):
            sums[b, side, ch] += weights[i] * points[i, ch]
    for p in range(pairs.shape[0]):
        a, b = pairs[p, 0], pairs[p, 1]
        if total[b, 0] == 0.0 or total[b, 1] == 0.0:
            continue  # rounding put the whole cluster on one side
        for ch in range(dims):
            centres[b, ch] = sums[b, 0, ch] / total[b, 0]
            centres[a, ch] = sums[b, 1, ch] / total[b, 1]
