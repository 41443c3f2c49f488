"""The one nearest-entry search, shared by Lloyd, the final mapping and dithering.

libimagequant keeps one nearest-colour object (``nearest.c``) for its whole
engine; this is kvq's. :class:`Nearest` is built for a palette (or a set of
cluster centres) and answers "which entry is nearest to this point?" exactly,
with ties going to the lowest index.

How: for every entry ``g`` a table lists up to ``m`` other entries, in order
of their distance ``gap`` from ``g``, and a ``radius`` that no entry outside
the list comes closer than. A query starts from a guess ``g`` (last
iteration's label, the pixel's undithered entry, ...) at distance ``r``. By
the triangle inequality an entry ``c`` is at least ``gap(g, c) - r`` from the
point, so the scan of ``g``'s list stops at the first entry whose gap exceeds
``r`` plus the best distance found: it and everything after it (and outside
the list) is farther. When the list runs out before that, the query scans
every entry, so the answer is always exact; with a good guess it checks a
handful. Palettes of at most :data:`FULL_SCAN_MAX` entries are always
scanned in full, which is as fast at that size.

While Lloyd moves the centres a little at a time, the table *follows* them
instead of being rebuilt: the listed gaps are recomputed and re-sorted (K·m
distances instead of K²), and the radius shrinks by how far things moved, so
every bound stays valid. Gaps are capped at the radius, which keeps the
list's order a valid bound for the entries outside it.

The compiled functions ``search_one``, ``full_scan`` and ``distance2`` are
what the other kernels (:mod:`.lloyd`, :mod:`.swap`, :mod:`.dither`) call;
the class is the Python face of the same search.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel

#: Palettes this small are scanned in full on every query.
FULL_SCAN_MAX = 12
#: Length of each entry's neighbour list.
NEIGHBOURS = 32
#: Points and centres are stored with this many coordinates, the unused ones
#: zero, so that one compiled kernel with a fixed, unrolled distance serves
#: grey (1), RGB (3) and RGBA (4) alike.
DIMS = 4
#: A followed table is rebuilt once the centres moved, in all, this fraction
#: of the median distance between neighbouring centres.
_REBUILD = 1.0
#: Beyond this size the lists come from scipy's k-d tree: comparing all
#: pairs costs K² distances.
_PAIRWISE_MAX = 4096
# Relative and absolute margins on the float64 distance bounds. Squared
# distances of byte colours are exact integers, but square roots round; the
# margin only makes a scan go on a little longer, never stop early.
_REL = 1e-9
_ABS = 1e-9


def pad(points: np.ndarray) -> np.ndarray:
    """Points of 1 to 4 coordinates as a C-contiguous (N, 4) float64 array, unused coordinates zero.

    Parameters
    ----------
    points : ndarray of float or uint8, shape (N, D)

    Returns
    -------
    ndarray of float64, shape (N, 4)
    """
    points = np.asarray(points)
    out = np.zeros((len(points), DIMS))
    out[:, : points.shape[1]] = points
    return out


class Nearest:
    """Exact nearest entry of a set of centres (a palette in the clustering space).

    Parameters
    ----------
    centres : ndarray of float64, shape (K, 4)
        K >= 1 points, padded by :func:`pad`.

    Attributes
    ----------
    centres : ndarray of float64, shape (K, 4)
    neighbours : ndarray of int64, shape (K, m)
        For each centre, ``m`` others, nearest first; ``m = 0`` when the
        palette is scanned in full.
    gaps : ndarray of float64, shape (K, m)
        Their distances from the centre, capped at ``radius``.
    radius : ndarray of float64, shape (K,)
        No centre outside a row's list is closer than this (``inf`` when the
        list holds all the others).
    """

    def __init__(self, centres: np.ndarray) -> None:
        self._build(np.ascontiguousarray(centres, dtype=np.float64))

    def _build(self, centres: np.ndarray) -> None:
        self.centres = centres
        self.neighbours, self.gaps, self.radius = neighbour_table(centres)
        # How far the centres moved, in all, since the table was built.
        self._moved = 0.0
        self._tolerance = _REBUILD * float(np.median(self.gaps[:, 0])) if self.gaps.shape[1] else np.inf

    @property
    def table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What the compiled kernels take: (centres, neighbours, gaps, radius)."""
        return self.centres, self.neighbours, self.gaps, self.radius

    def follow(self, centres: np.ndarray, shift: np.ndarray) -> None:
        """Move to new ``centres``, each ``shift[c]`` (at least) from where it was.

        Parameters
        ----------
        centres : ndarray of float64, shape (K, 4)
        shift : ndarray of float64, shape (K,)
        """
        centres = np.ascontiguousarray(centres, dtype=np.float64)
        largest = float(shift.max())
        self._moved += largest
        if self._moved > self._tolerance:
            self._build(centres)
            return
        self.centres = centres
        if self.neighbours.shape[1]:
            self.gaps, self.radius = self.gaps.copy(), self.radius.copy()
            # Centres outside a list moved at most `largest`, the row's own centre shift[i].
            self.radius -= shift + largest
            _refresh(centres, self.neighbours, self.gaps, self.radius)

    def jump(self, centres: np.ndarray, changed: np.ndarray) -> None:
        """Move the centres listed in ``changed`` anywhere; the others stay.

        Parameters
        ----------
        centres : ndarray of float64, shape (K, 4)
        changed : ndarray of int
        """
        centres = np.ascontiguousarray(centres, dtype=np.float64)
        k, m = self.neighbours.shape
        self.centres = centres
        if m == 0:
            return
        if len(changed) * 8 > k or k > _PAIRWISE_MAX:
            self._build(centres)
            return
        self.neighbours, self.gaps, self.radius = self.neighbours.copy(), self.gaps.copy(), self.radius.copy()
        _jump(centres, np.unique(changed), self.neighbours, self.gaps, self.radius)
        _refresh(centres, self.neighbours, self.gaps, self.radius)

    def copy(self) -> Nearest:
        """A copy that later moves of this one leave alone (the arrays are replaced, never changed in place)."""
        twin = object.__new__(Nearest)
        twin.__dict__.update(self.__dict__)
        return twin

    def search(self, points: np.ndarray, guess: np.ndarray | None = None) -> np.ndarray:
        """Index of the nearest centre to each point, lowest index on ties.

        Parameters
        ----------
        points : ndarray of float64, shape (N, 4)
            Padded by :func:`pad`.
        guess : ndarray of int, shape (N,), optional
            Any centre index per point; a good guess (the nearest centre of
            a slightly different palette) makes the search fast, a bad one only
            slow. Values outside 0..K-1 are clipped.

        Returns
        -------
        ndarray of int64, shape (N,)
        """
        k = len(self.centres)
        if guess is None:
            start = np.zeros(len(points), dtype=np.int64)
        else:
            start = np.clip(np.asarray(guess, dtype=np.int64), 0, k - 1)
        labels = np.empty(len(points), dtype=np.int64)
        _search_all(points, *self.table, start, labels)
        return labels


def neighbour_table(centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lists of :class:`Nearest` for ``centres`` ((K, 4) float64, C-contiguous).

    Returns
    -------
    neighbours, gaps, radius : ndarray
        See :class:`Nearest`; each list holds the ``m`` nearest others.
    """
    k = len(centres)
    if k <= FULL_SCAN_MAX:
        return np.zeros((k, 0), dtype=np.int64), np.zeros((k, 0)), np.full(k, np.inf)
    m = min(NEIGHBOURS, k - 1)
    neighbours = np.empty((k, m), dtype=np.int64)
    gaps = np.empty((k, m))
    radius = np.empty(k)
    if k <= _PAIRWISE_MAX:
        _build_pairwise(centres, neighbours, gaps, radius)
    else:
        from scipy.spatial import cKDTree

        # The tree's answer is exact; its m + 1 nearest others (plus the
        # centre itself, or a twin) are put in order as the pairwise build would.
        _, near = cKDTree(centres).query(centres, k=m + 2)
        _build_from(centres, near.astype(np.int64), neighbours, gaps, radius)
    return neighbours, gaps, radius


@kernel
def distance2(p0: float, p1: float, p2: float, p3: float, centres: np.ndarray, j: int) -> float:  # pragma: no cover
    """Squared distance from the point (p0, p1, p2, p3) to ``centres[j]``."""
    a = p0 - centres[j, 0]
    b = p1 - centres[j, 1]
    c = p2 - centres[j, 2]
    d = p3 - centres[j, 3]
    return a * a + b * b + c * c + d * d


@kernel
def _build_pairwise(
    centres: np.ndarray, neighbours: np.ndarray, gaps: np.ndarray, radius: np.ndarray
) -> None:  # pragma: no cover - compiled
    for i in range(centres.shape[0]):
        _fill_row(centres, i, np.arange(centres.shape[0]), neighbours, gaps, radius)


@kernel
def _build_from(
    centres: np.ndarray, near: np.ndarray, neighbours: np.ndarray, gaps: np.ndarray, radius: np.ndarray
) -> None:  # pragma: no cover - compiled
    for i in range(centres.shape[0]):
        _fill_row(centres, i, near[i], neighbours, gaps, radius)


@kernel
def _fill_row(
    centres: np.ndarray, i: int, candidates: np.ndarray, neighbours: np.ndarray, gaps: np.ndarray, radius: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Row ``i``: the m nearest of ``candidates`` (other than i), and the next one's distance as the radius."""
    m = neighbours.shape[1]
    k = centres.shape[0]
    # A sorted buffer of the m + 1 nearest so far: once it is full, most
    # candidates fail the first comparison.
    near_d = np.empty(m + 1)
    near_j = np.empty(m + 1, dtype=np.int64)
    p0, p1, p2, p3 = centres[i, 0], centres[i, 1], centres[i, 2], centres[i, 3]
    n = 0
    for j in candidates:
        if j == i or j >= k:
            continue
        d = distance2(p0, p1, p2, p3, centres, j)
        if n == m + 1 and d >= near_d[m]:
            continue
        pos = n if n <= m else m
        while pos > 0 and near_d[pos - 1] > d:
            if pos <= m:
                near_d[pos] = near_d[pos - 1]
                near_j[pos] = near_j[pos - 1]
            pos -= 1
        near_d[pos] = d
        near_j[pos] = j
        if n <= m:
            n += 1
    for t in range(m):
        neighbours[i, t] = near_j[t]
        gaps[i, t] = np.sqrt(near_d[t])
    radius[i] = np.sqrt(near_d[m]) if n > m else np.inf


@kernel
def _refresh(centres: np.ndarray, neighbours: np.ndarray, gaps: np.ndarray, radius: np.ndarray) -> None:  # pragma: no cover
    """Recompute each listed gap, re-sort each row by it, and cap the gaps at the row's radius."""
    k, m = neighbours.shape
    for i in range(k):
        p0, p1, p2, p3 = centres[i, 0], centres[i, 1], centres[i, 2], centres[i, 3]
        for t in range(m):
            d = np.sqrt(distance2(p0, p1, p2, p3, centres, neighbours[i, t]))
            j = neighbours[i, t]
            # Insertion sort: the rows were sorted a moment ago.
            pos = t
            while pos > 0 and gaps[i, pos - 1] > d:
                gaps[i, pos] = gaps[i, pos - 1]
                neighbours[i, pos] = neighbours[i, pos - 1]
                pos -= 1
            gaps[i, pos] = d
            neighbours[i, pos] = j
        for t in range(m):
            gaps[i, t] = min(gaps[i, t], radius[i])


@kernel
def _jump(
    centres: np.ndarray, changed: np.ndarray, neighbours: np.ndarray, gaps: np.ndarray, radius: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Patch the lists after the centres in ``changed`` moved anywhere (gaps are refreshed after)."""
    k, m = neighbours.shape
    moved = np.zeros(k, dtype=np.bool_)
    for c in changed:
        moved[c] = True
    for c in changed:
        _fill_row(centres, c, np.arange(k), neighbours, gaps, radius)
    for i in range(k):
        if moved[i]:
            continue
        p0, p1, p2, p3 = centres[i, 0], centres[i, 1], centres[i, 2], centres[i, 3]
        for c in changed:
            listed = False
            for t in range(m):
                if neighbours[i, t] == c:
                    listed = True
                    break
            if listed:
                continue  # its gap is recomputed by the refresh
            d = np.sqrt(distance2(p0, p1, p2, p3, centres, c))
            # An outsider came in: it takes the place of the farthest listed
            # entry when nearer, else the radius must admit it.
            last = 0
            for t in range(1, m):
                if gaps[i, t] > gaps[i, last]:
                    last = t
            if d < gaps[i, last]:
                evicted = np.sqrt(distance2(p0, p1, p2, p3, centres, neighbours[i, last]))
                radius[i] = min(radius[i], evicted)
                neighbours[i, last] = c
                gaps[i, last] = d
            else:
                radius[i] = min(radius[i], d)


@kernel
def full_scan(p0: float, p1: float, p2: float, p3: float, centres: np.ndarray) -> tuple[int, float, float]:  # pragma: no cover
    """Nearest centre by comparing all of them; see :func:`search_one`."""
    best = 0
    best_d2 = np.inf
    second_d2 = np.inf
    for j in range(centres.shape[0]):
        d2 = distance2(p0, p1, p2, p3, centres, j)
        if d2 < best_d2:
            second_d2 = best_d2
            best, best_d2 = j, d2
        elif d2 < second_d2:
            second_d2 = d2
    return best, best_d2, np.sqrt(second_d2)


@kernel
def search_one(
    p0: float,
    p1: float,
    p2: float,
    p3: float,
    centres: np.ndarray,
    neighbours: np.ndarray,
    gaps: np.ndarray,
    radius: np.ndarray,
    guess: int,
) -> tuple[int, float, float]:  # pragma: no cover - compiled
    """Nearest centre to the point (p0, p1, p2, p3); the table is :attr:`Nearest.table`.

    Returns
    -------
    best : int
        Index of the nearest centre, lowest on ties.
    best_d2 : float
        Its squared distance.
    lower : float
        A lower bound on the distance (not squared) from the point to every
        other centre: what Hamerly's bounds in :mod:`.lloyd` keep.
    """
    listed = neighbours.shape[1]
    if listed == 0:
        return full_scan(p0, p1, p2, p3, centres)
    best = guess
    best_d2 = distance2(p0, p1, p2, p3, centres, guess)
    to_guess = np.sqrt(best_d2)
    # Entry t of the guess's list, and every entry after it or outside the
    # list, is at least gaps[guess, t] - to_guess away: once that exceeds
    # the best distance so far, nothing further can win. `reach` is that
    # threshold on the gap.
    reach = to_guess + to_guess * (1.0 + _REL) + _ABS
    second_d2 = np.inf
    # A lower bound on the distance to every entry not scanned.
    unscanned = np.inf
    stopped = False
    for t in range(listed):
        gap = gaps[guess, t]
        if gap > reach:
            unscanned = gap - to_guess
            stopped = True
            break
        j = neighbours[guess, t]
        d2 = distance2(p0, p1, p2, p3, centres, j)
        if d2 < best_d2 or (d2 == best_d2 and j < best):
            second_d2 = best_d2
            best, best_d2 = j, d2
            reach = to_guess + np.sqrt(d2) * (1.0 + _REL) + _ABS
        elif d2 < second_d2:
            second_d2 = d2
    if not stopped and radius[guess] < np.inf:
        if radius[guess] <= reach:
            return full_scan(p0, p1, p2, p3, centres)
        unscanned = radius[guess] - to_guess
    return best, best_d2, min(np.sqrt(second_d2), unscanned)


@kernel
def _search_all(
    points: np.ndarray,
    centres: np.ndarray,
    neighbours: np.ndarray,
    gaps: np.ndarray,
    radius: np.ndarray,
    guess: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    for i in range(points.shape[0]):
        out[i] = search_one(
            points[i, 0], points[i, 1], points[i, 2], points[i, 3], centres, neighbours, gaps, radius, guess[i]
        )[0]
