"""Initial centres: a greedy variance split of the weighted colour histogram.

The median-cut family (Heckbert; Wu; libimagequant's ``mediancut.c``), in the
form that suits k-means best: start from one cluster holding every colour and
repeatedly cut the cluster whose best cut removes the most squared error,
across its principal axis (the direction of largest spread), at the place
along that axis where the cut removes the most error. The error a cut
removes is the between-cluster sum of squares, ``|S_L|² W / (W_L W_R)`` for
left weight ``W_L``, right weight ``W_R`` and the left sum ``S_L`` of the
points relative to the cluster's mean.

A cluster is described by its moments (weight, weighted sum, weighted sum of
outer products), which give its mean, covariance and principal axis without
a pass over its points. Positions along the axis are binned (:data:`BINS`
bins over four standard deviations either side of the mean), so finding a
cut is one pass over the cluster's points, and making it is one more, which
also sums the two parts' moments. Lloyd's iterations move the borders to
where they belong anyway.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel
from .nearest import DIMS

#: Bins along the principal axis in which a cut is sought.
BINS = 512
# Power iterations for the principal axis of a 4 x 4 covariance: the
# direction only needs to be close, since the cut position is searched.
_POWER_STEPS = 24
# Bins span this many standard deviations either side of the mean; points
# beyond fall in the end bins.
_SPAN = 4.0


def variance_split(points: np.ndarray, weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Split weighted points into at most ``k`` clusters by greedy variance cuts.

    Parameters
    ----------
    points : ndarray of float64, shape (N, 4)
        Padded by :func:`~.nearest.pad`.
    weights : ndarray of float64, shape (N,)
        Positive.
    k : int
        Clusters wanted; fewer come back when no cluster can be cut further
        (all its points equal).

    Returns
    -------
    centres : ndarray of float64, shape (<= k, 4)
        Weighted mean of each cluster.
    labels : ndarray of int64, shape (N,)
        Cluster of each point.
    """
    labels = np.empty(len(points), dtype=np.int64)
    centres = np.empty((k, DIMS))
    count = _split(points, weights, k, BINS, labels, centres)
    return centres[:count].copy(), labels


@kernel
def moments(points: np.ndarray, weights: np.ndarray, members: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:  # pragma: no cover
    """Weight, weighted sum and weighted sum of outer products of some points."""
    total = 0.0
    sums = np.zeros(DIMS)
    products = np.zeros((DIMS, DIMS))
    for i in members:
        _add(points, weights, i, sums, products)
        total += weights[i]
    return total, sums, products


@kernel
def _add(points: np.ndarray, weights: np.ndarray, i: int, sums: np.ndarray, products: np.ndarray) -> None:  # pragma: no cover
    w = weights[i]
    for a in range(DIMS):
        wa = w * points[i, a]
        sums[a] += wa
        for b in range(a, DIMS):
            products[a, b] += wa * points[i, b]


@kernel
def _error(total: float, sums: np.ndarray, products: np.ndarray) -> float:  # pragma: no cover - compiled
    """Squared error about the mean, from moments."""
    error = 0.0
    for a in range(DIMS):
        error += products[a, a] - sums[a] * sums[a] / total
    return max(error, 0.0)


@kernel
def position(points: np.ndarray, i: int, axis: np.ndarray) -> float:  # pragma: no cover - compiled
    """Where point ``i`` lies along ``axis``; a cut sends it right when this is at least the threshold."""
    p = 0.0
    for ch in range(DIMS):
        p += points[i, ch] * axis[ch]
    return p


@kernel
def best_cut(
    points: np.ndarray,
    weights: np.ndarray,
    members: np.ndarray,
    total: float,
    sums: np.ndarray,
    products: np.ndarray,
    axis: np.ndarray,
    bins: int,
) -> tuple[float, float]:  # pragma: no cover - compiled
    """Best cut of one cluster, given its :func:`moments`, across its principal axis.

    Fills ``axis`` and returns (error removed, threshold): the points with
    :func:`position` below the threshold form one part. An error of 0 means
    the cluster cannot be cut.
    """
    n = members.shape[0]
    if n < 2 or total <= 0.0:
        return 0.0, 0.0
    mean = np.empty(DIMS)
    for a in range(DIMS):
        mean[a] = sums[a] / total
    cov = np.empty((DIMS, DIMS))
    for a in range(DIMS):
        for b in range(a, DIMS):
            cov[a, b] = products[a, b] / total - mean[a] * mean[b]
            cov[b, a] = cov[a, b]
    # Power iteration from the axis of largest variance (by hand: a 4 x 4
    # product through BLAS costs more than the arithmetic).
    start = 0
    for a in range(DIMS):
        if cov[a, a] > cov[start, start]:
            start = a
    if cov[start, start] <= 0.0:
        return 0.0, 0.0
    for a in range(DIMS):
        axis[a] = 1.0 if a == start else 0.0
    nxt = np.empty(DIMS)
    variance = 0.0
    for _ in range(_POWER_STEPS):
        norm = 0.0
        for a in range(DIMS):
            v = 0.0
            for b in range(DIMS):
                v += cov[a, b] * axis[b]
            nxt[a] = v
            norm += v * v
        if norm == 0.0:
            return 0.0, 0.0
        norm = np.sqrt(norm)
        variance = norm  # the eigenvalue, once the iteration has settled
        for a in range(DIMS):
            axis[a] = nxt[a] / norm
    centre = 0.0
    for a in range(DIMS):
        centre += mean[a] * axis[a]
    half = _SPAN * np.sqrt(variance)
    if not half > 1e-12 * (1.0 + abs(centre)):
        return 0.0, 0.0
    # A cluster of n points needs no more than about 2n bins.
    bins = min(bins, 2 * n)
    low = centre - half
    scale = bins / (2.0 * half)
    weight_in = np.zeros(bins)
    sum_in = np.zeros((bins, DIMS))
    for i in members:
        b = min(max(int((position(points, i, axis) - low) * scale), 0), bins - 1)
        w = weights[i]
        weight_in[b] += w
        for ch in range(DIMS):
            sum_in[b, ch] += w * (points[i, ch] - mean[ch])
    best_gain = 0.0
    cut = -1
    left_w = 0.0
    left_s = np.zeros(DIMS)
    for b in range(bins - 1):
        left_w += weight_in[b]
        norm = 0.0
        for ch in range(DIMS):
            left_s[ch] += sum_in[b, ch]
            norm += left_s[ch] * left_s[ch]
        right_w = total - left_w
        if weight_in[b] == 0.0 or right_w <= 1e-12 * total or left_w <= 0.0:
            continue
        gain = norm * total / (left_w * right_w)
        if gain > best_gain:
            best_gain, cut = gain, b
    if cut < 0:
        return 0.0, 0.0
    # Bin b ends at low + (b + 1) / scale. Points right at that boundary may
    # fall either way by rounding; a cut that leaves one side empty is
    # dropped by the caller.
    return best_gain, low + (cut + 1) / scale


@kernel
def _split(
    points: np.ndarray, weights: np.ndarray, k: int, bins: int, labels: np.ndarray, centres: np.ndarray
) -> int:  # pragma: no cover - compiled
    n = points.shape[0]
    # Cluster c holds order[start[c]:stop[c]] and has moments total[c],
    # sums[c], products[c].
    order = np.arange(n)
    start = np.zeros(k, dtype=np.int64)
    stop = np.zeros(k, dtype=np.int64)
    total = np.zeros(k)
    sums = np.zeros((k, DIMS))
    products = np.zeros((k, DIMS, DIMS))
    axes = np.zeros((k, DIMS))
    thresholds = np.zeros(k)
    stop[0] = n
    for i in range(n):
        _add(points, weights, i, sums[0], products[0])
        total[0] += weights[i]
    count = 1
    # Lazy greedy: a cluster enters the heap keyed by its squared error, an
    # upper bound on what any cut of it can remove, and its best cut is only
    # searched when it reaches the top; it then goes back keyed by that
    # cut's gain. A cluster popped with its gain known has the largest gain
    # of all, so the result is that of searching every cluster's cut, for
    # fewer searches.
    # A binary heap of (-key, cluster, searched) triples, smallest first, as
    # heapq would keep them (each cluster is in it at most once).
    heap_key = np.empty(k)
    heap_id = np.empty(k, dtype=np.int64)
    heap_searched = np.empty(k, dtype=np.int64)
    # Typed once, so that each heap helper compiles once.
    unsearched, searched_cut = np.int64(0), np.int64(1)
    size = _push(heap_key, heap_id, heap_searched, np.int64(0), -_error(total[0], sums[0], products[0]), np.int64(0), unsearched)
    while count < k and size > 0:
        key, c, searched = heap_key[0], heap_id[0], heap_searched[0]
        size = _pop(heap_key, heap_id, heap_searched, size)
        if key >= 0.0:
            break
        if not searched:
            members = order[start[c] : stop[c]]
            gain, thresholds[c] = best_cut(points, weights, members, total[c], sums[c], products[c], axes[c], bins)
            if gain > 0.0:
                size = _push(heap_key, heap_id, heap_searched, size, -gain, c, searched_cut)
            continue
        # Partition the cluster's slice in place, left part first, summing
        # the right part's moments on the way (the left's are the rest).
        new = count
        total[new] = 0.0
        for a in range(DIMS):
            sums[new, a] = 0.0
            for b in range(DIMS):
                products[new, a, b] = 0.0
        lo, hi = start[c], stop[c] - 1
        while lo <= hi:
            i = order[lo]
            if position(points, i, axes[c]) < thresholds[c]:
                lo += 1
            else:
                _add(points, weights, i, sums[new], products[new])
                total[new] += weights[i]
                order[lo], order[hi] = order[hi], order[lo]
                hi -= 1
        if lo == start[c] or lo == stop[c]:
            continue  # rounding put every point on one side: leave it whole
        count += 1
        start[new], stop[new] = lo, stop[c]
        stop[c] = lo
        total[c] -= total[new]
        for a in range(DIMS):
            sums[c, a] -= sums[new, a]
            for b in range(DIMS):
                products[c, a, b] -= products[new, a, b]
        for side in range(2):
            part = c if side == 0 else new
            if stop[part] - start[part] > 1:
                error = _error(total[part], sums[part], products[part])
                if error > 0.0:
                    size = _push(heap_key, heap_id, heap_searched, size, -error, part, unsearched)
    for c in range(count):
        for i in order[start[c] : stop[c]]:
            labels[i] = c
        for ch in range(DIMS):
            centres[c, ch] = sums[c, ch] / total[c]
    return count


@kernel
def _before(key: np.ndarray, ident: np.ndarray, flag: np.ndarray, a: int, b: int) -> bool:  # pragma: no cover
    """Whether heap entry a orders before entry b: by key, then cluster, then flag."""
    if key[a] != key[b]:
        return key[a] < key[b]
    if ident[a] != ident[b]:
        return ident[a] < ident[b]
    return flag[a] < flag[b]


@kernel
def _swap_entries(key: np.ndarray, ident: np.ndarray, flag: np.ndarray, a: int, b: int) -> None:  # pragma: no cover
    key[a], key[b] = key[b], key[a]
    ident[a], ident[b] = ident[b], ident[a]
    flag[a], flag[b] = flag[b], flag[a]


@kernel
def _push(key: np.ndarray, ident: np.ndarray, flag: np.ndarray, size: int, k: float, c: int, f: int) -> int:  # pragma: no cover
    """Add (k, c, f) to the heap of ``size`` entries; returns the new size."""
    key[size], ident[size], flag[size] = k, c, f
    i = size
    while i > 0:
        parent = (i - 1) // 2
        if not _before(key, ident, flag, i, parent):
            break
        _swap_entries(key, ident, flag, i, parent)
        i = parent
    return size + 1


@kernel
def _pop(key: np.ndarray, ident: np.ndarray, flag: np.ndarray, size: int) -> int:  # pragma: no cover - compiled
    """Remove the first entry of the heap of ``size`` entries; returns the new size."""
    size -= 1
    _swap_entries(key, ident, flag, 0, size)
    i = 0
    while True:
        first = i
        for child in (2 * i + 1, 2 * i + 2):
            if child < size and _before(key, ident, flag, child, first):
                first = child
        if first == i:
            return size
        _swap_entries(key, ident, flag, i, first)
        i = first
