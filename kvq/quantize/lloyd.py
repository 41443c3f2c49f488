"""Weighted Lloyd iterations on the colour histogram.

Each point is a distinct colour (in the clustering space) weighted by its
pixel count, so an iteration costs the number of distinct colours, not of
pixels. Hamerly's bounds skip most points once the centres settle: each point
keeps an upper bound on the distance to its own centre and a lower bound on
the distance to every other; when the centres move, the bounds move by as
much, and only a point whose bounds cross is searched again, through the
shared :class:`~.nearest.Nearest` search starting from its current centre.

Sums run sequentially in point order, so the result does not depend on thread
counts or on the machine.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel
from .nearest import Nearest, distance2, search_one


class Lloyd:
    """Weighted k-means on a fixed point set: the centres, each point's label and Hamerly's bounds.

    Parameters
    ----------
    points : ndarray of float64, shape (N, 4)
        Padded by :func:`~.nearest.pad`.
    weights : ndarray of float64, shape (N,)
        Positive.
    centres : ndarray of float64, shape (K, 4), or Nearest
        The starting centres, or a search over them to start from.
    guess : ndarray of int, shape (N,), optional
        A guess of each point's nearest centre; a good one makes the first
        search fast.

    Attributes
    ----------
    nearest : Nearest
        The search over the current centres (``nearest.centres``).
    labels : ndarray of int64, shape (N,)
        Nearest centre of each point (up to ties) for the current centres.
    upper, lower : ndarray of float64, shape (N,)
        Upper bound on each point's distance to its own centre, lower bound
        on its distance to every other.
    """

    def __init__(
        self,
        points: np.ndarray,
        weights: np.ndarray,
        centres: np.ndarray | Nearest,
        guess: np.ndarray | None = None,
    ) -> None:
        self.points, self.weights = points, weights
        self.nearest = centres.copy() if isinstance(centres, Nearest) else Nearest(centres)
        centres = self.nearest.centres
        n, k = len(points), len(centres)
        start = np.zeros(n, dtype=np.int64) if guess is None else np.clip(guess, 0, k - 1).astype(np.int64)
        self.labels = np.empty(n, dtype=np.int64)
        self.upper = np.empty(n)
        self.lower = np.empty(n)
        _assign(points, *self.nearest.table, start, self.labels, self.upper, self.lower)

    @property
    def centres(self) -> np.ndarray:
        """ndarray of float64, shape (K, 4): the current centres."""
        return self.nearest.centres

    def run(self, max_iter: int, tol: float) -> None:
        """Lloyd iterations until no label changes, no centre moves farther than ``tol``, or ``max_iter``.

        Empty clusters keep their centre.
        """
        for _ in range(max_iter):
            moved = np.empty_like(self.centres)
            shift = np.empty(len(moved))
            update_centres(self.points, self.weights, self.labels, self.centres, moved, shift)
            changed = self.move(moved, shift)
            if changed == 0 or shift.max() <= tol:
                break

    def move(self, centres: np.ndarray, shift: np.ndarray) -> int:
        """Put the centres at ``centres``, ``shift[c]`` (at least) from where each was, and relabel.

        Returns
        -------
        int
            How many labels changed.
        """
        self.nearest.follow(centres, shift)
        return int(_reassign(self.points, *self.nearest.table, self.labels, self.upper, self.lower, shift))

    def teleport(self, centres: np.ndarray, changed: np.ndarray, fallback: np.ndarray) -> None:
        """Put the centres at ``centres``, where only those listed in ``changed`` moved, maybe far, and relabel.

        Cheaper than :meth:`move` for a few long jumps: every other centre's
        points only compare their lower bound with the distance to the
        moved centres, and only the points of moved centres are searched,
        starting from ``fallback`` (a good guess: their second-nearest
        centre before the jump).
        """
        moved = np.zeros(len(centres), dtype=np.bool_)
        moved[changed] = True
        self.nearest.jump(centres, changed)
        _teleport(self.points, self.centres, moved, np.unique(changed), fallback, self.labels, self.upper, self.lower)
        _reassign(self.points, *self.nearest.table, self.labels, self.upper, self.lower, np.zeros(len(centres)))

    def error(self) -> float:
        """Weighted sum of squared distances from each point to its centre."""
        return float(_total_error(self.points, self.weights, self.centres, self.labels))

    def save(self) -> tuple[Nearest, np.ndarray, np.ndarray, np.ndarray]:
        """A copy of the state, for :meth:`restore`."""
        return self.nearest.copy(), self.labels.copy(), self.upper.copy(), self.lower.copy()

    def restore(self, saved: tuple[Nearest, np.ndarray, np.ndarray, np.ndarray]) -> None:
        """Go back to a state :meth:`save` returned."""
        self.nearest, self.labels, self.upper, self.lower = saved


@kernel
def _assign(
    points: np.ndarray,
    centres: np.ndarray,
    neighbours: np.ndarray,
    gaps: np.ndarray,
    radius: np.ndarray,
    guess: np.ndarray,
    labels: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
) -> None:  # pragma: no cover - compiled
    for i in range(points.shape[0]):
        best, best_d2, other = search_one(
            points[i, 0], points[i, 1], points[i, 2], points[i, 3], centres, neighbours, gaps, radius, guess[i]
        )
        labels[i] = best
        upper[i] = np.sqrt(best_d2)
        lower[i] = other


@kernel
def update_centres(
    points: np.ndarray,
    weights: np.ndarray,
    labels: np.ndarray,
    centres: np.ndarray,
    moved: np.ndarray,
    shift: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Weighted mean of each cluster into ``moved`` (empty ones keep their centre), and how far each moved."""
    k, dims = centres.shape
    sums = np.zeros((k, dims))
    total = np.zeros(k)
    for i in range(points.shape[0]):
        c = labels[i]
        w = weights[i]
        total[c] += w
        sums[c, 0] += w * points[i, 0]
        sums[c, 1] += w * points[i, 1]
        sums[c, 2] += w * points[i, 2]
        sums[c, 3] += w * points[i, 3]
    for c in range(k):
        d = 0.0
        for ch in range(dims):
            value = sums[c, ch] / total[c] if total[c] > 0 else centres[c, ch]
            moved[c, ch] = value
            diff = value - centres[c, ch]
            d += diff * diff
        shift[c] = np.sqrt(d)


@kernel
def _reassign(
    points: np.ndarray,
    centres: np.ndarray,
    neighbours: np.ndarray,
    gaps: np.ndarray,
    radius: np.ndarray,
    labels: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    shift: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Hamerly's step after the centres moved by ``shift``; returns how many labels changed.

    Hamerly lowers a point's lower bound (on the distance to every centre
    but its own) by the most that any centre moved. Here the centres in the
    own centre's neighbour list lower it only by the most that one of them
    moved, and the others by the larger of the most any centre moved and
    what the table says about how far they are. Late in the iterations most
    centres stand still, and this keeps most points unsearched.
    """
    k = centres.shape[0]
    listed = neighbours.shape[1]
    # Half the distance from each centre to its nearest other: a point closer
    # than that to its own centre cannot be nearer to any other.
    half = np.full(k, np.inf)
    # The most that any centre which can matter to a point of c moved.
    near_shift = np.zeros(k)
    # What bounds the distance to centres outside c's list.
    beyond = np.full(k, np.inf)
    if listed > 0:
        for c in range(k):
            half[c] = 0.5 * gaps[c, 0]
            beyond[c] = radius[c]
            for t in range(listed):
                near_shift[c] = max(near_shift[c], shift[neighbours[c, t]])
    else:
        for c in range(k):
            for j in range(k):
                if j != c:
                    d2 = distance2(centres[c, 0], centres[c, 1], centres[c, 2], centres[c, 3], centres, j)
                    half[c] = min(half[c], 0.5 * np.sqrt(d2))
                    near_shift[c] = max(near_shift[c], shift[j])
    largest = shift.max()
    changed = 0
    for i in range(points.shape[0]):
        own = labels[i]
        upper[i] += shift[own]
        # Centres in own's list moved at most near_shift[own]; the others at
        # most the largest shift, and they are beyond[own] - upper away anyway.
        lower[i] = min(lower[i] - near_shift[own], max(lower[i] - largest, beyond[own] - upper[i]))
        if upper[i] <= max(lower[i], half[own]):
            continue
        p0, p1, p2, p3 = points[i, 0], points[i, 1], points[i, 2], points[i, 3]
        best, best_d2, other = search_one(p0, p1, p2, p3, centres, neighbours, gaps, radius, own)
        if best != own:
            changed += 1
        labels[i] = best
        upper[i] = np.sqrt(best_d2)
        lower[i] = other
    return changed


@kernel
def _total_error(points: np.ndarray, weights: np.ndarray, centres: np.ndarray, labels: np.ndarray) -> float:  # pragma: no cover
    total = 0.0
    for i in range(points.shape[0]):
        c = labels[i]
        d = 0.0
        for ch in range(points.shape[1]):
            diff = points[i, ch] - centres[c, ch]
            d += diff * diff
        total += weights[i] * d
    return total


@kernel
def _teleport(
    points: np.ndarray,
    centres: np.ndarray,
    moved: np.ndarray,
    changed: np.ndarray,
    fallback: np.ndarray,
    labels: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Bounds after the centres in ``changed`` jumped; the points they held are marked for a search."""
    for i in range(points.shape[0]):
        a = labels[i]
        if moved[a]:
            if not moved[fallback[i]]:
                labels[i] = fallback[i]
            upper[i] = np.inf
            lower[i] = 0.0
            continue
        for c in changed:
            d = 0.0
            for ch in range(points.shape[1]):
                diff = points[i, ch] - centres[c, ch]
                d += diff * diff
            lower[i] = min(lower[i], np.sqrt(d))
