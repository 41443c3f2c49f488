"""Palette engine: pixels -> (palette, indices).

The k-means objective over pixels equals the count-weighted objective over the
image's distinct colours, and a photo has 10-100x fewer distinct colours than
pixels, so everything below works on that histogram:

1. Pack each pixel into a uint32 key and sort: distinct colours and counts.
2. Start from a greedy variance split (Wu / median-cut family): repeatedly cut
   the cluster with the largest squared error along its principal axis at the
   cut that removes the most error. Where it is cheap (small K), also start
   from scikit-learn's greedy k-means++ with the fixed seed; keep the better.
3. Weighted Lloyd iterations in the clustering space (RGB bytes or OKLab),
   with Hamerly's bounds and candidate lists (the centres nearest each centre)
   so most points are not searched at all. At high speeds most iterations run
   on a coarser bucketed histogram first (coarse to fine).
4. Round to the stored bytes, then a few Lloyd rounds on the *stored* palette
   with exact nearest-entry assignment, so the final labels are the nearest
   stored entries and every entry is used.
5. Expand labels of distinct colours to pixels with a lookup table.

Very large histograms (noise, huge photos) are first merged into coarser
buckets (count-weighted means) for steps 2-3 only; step 4 always uses the
exact distinct colours. Every random choice is seeded, every float reduction
is a sequential bincount or a 3-4 term dot product, and final assignments are
integer-exact, so the output does not depend on thread counts.
"""

from __future__ import annotations

import heapq

import numpy as np

from .colorspace import from_space, to_space
from .errors import QualityError, UnsupportedImageError
from .options import EncoderOptions

# Per speed 1..10: (largest histogram the final Lloyd iterations run on,
# largest histogram of the coarse stage, work budget in point-centre
# distances for the second start (k-means++), coarse Lloyd iterations, final
# Lloyd iterations and Lloyd rounds on the stored palette). Bigger histograms are
# merged into byte buckets first.
_PROFILES = {
    1: (1 << 20, 1 << 20, 1 << 30, 0, 300, 30),
    2: (1 << 18, 1 << 18, 1 << 27, 0, 150, 20),
    3: (1 << 17, 1 << 17, 1 << 25, 0, 80, 10),
    4: (1 << 16, 1 << 16, 1 << 24, 0, 40, 4),
    5: (1 << 16, 1 << 14, 1 << 22, 20, 8, 2),
    6: (1 << 15, 1 << 13, 1 << 22, 20, 5, 2),
    7: (1 << 14, 1 << 12, 1 << 21, 12, 3, 2),
    8: (1 << 13, 1 << 11, 1 << 20, 8, 2, 1),
    9: (1 << 12, 1 << 10, 1 << 19, 4, 1, 1),
    10: (1 << 11, 1 << 10, 1 << 18, 2, 1, 0),
}

# Bound on the elements of one distance block, so assignment memory does not
# grow with the image.
_BLOCK = 1 << 21


def quantize(pixels: np.ndarray, options: EncoderOptions) -> tuple[np.ndarray, np.ndarray]:
    """Choose a palette for ``pixels`` and map every pixel to it.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, C)
        C is 1 (grey), 3 (RGB) or 4 (RGBA).
    options : EncoderOptions
        Uses ``k``, ``seed``, ``quality``, ``color_space``, ``dither`` and
        ``speed``.

    Returns
    -------
    palette : ndarray of uint8, shape (K, C)
        1 <= K <= options.k, no two rows equal, every row used by some pixel.
    indices : ndarray of uint8 or uint16, shape (H, W)
        uint8 when K <= 256, else uint16; every value < K.

    Raises
    ------
    QualityError
        ``options.quality`` is set and even ``options.k`` colours do not reach it.
    UnsupportedImageError
        ``pixels`` is not an (H, W, C) uint8 array with C in {1, 3, 4}.

    Notes
    -----
    Without dithering every pixel gets the index of its nearest palette entry:
    squared byte distance over all channels for ``color_space="rgb"``, squared
    OKLab distance (alpha appended as alpha/255) to the OKLab value of the
    stored sRGB entry for ``"oklab"``; ties go to the lowest index. Pixels with
    alpha 0 are treated as (0, 0, 0, 0) and all share one such entry.
    ``quality`` is measured on that nearest-entry mapping, against those
    canonical transparent pixels, even when dithering is requested. ``seed``
    drives only the k-means++ start, which runs where it is cheap (small K,
    low speed numbers); the variance-split start makes no random choices.
    """
    pixels = _check_pixels(pixels)
    h, w, c = pixels.shape
    hist = _Histogram(pixels)
    if options.quality is None:
        palette, labels = _fit(hist, options.k, options)
    else:
        palette, labels = _fit_for_quality(hist, options)
    if options.dither == "floyd-steinberg" and len(palette) > 1:
        from .dither import floyd_steinberg

        transparent = None
        if hist.transparent:
            transparent = int(np.flatnonzero((palette == 0).all(axis=1))[0])
        flat = floyd_steinberg(hist.canonical_pixels(pixels), palette, transparent).ravel()
        # Dithering may leave an entry unused; the format wants none.
        used = np.bincount(flat, minlength=len(palette)) > 0
        if not used.all():
            remap = np.cumsum(used) - 1
            palette, flat = palette[used], remap[flat]
        dtype = np.uint8 if len(palette) <= 256 else np.uint16
        return palette, flat.astype(dtype).reshape(h, w)
    dtype = np.uint8 if len(palette) <= 256 else np.uint16
    return palette, hist.expand(labels.astype(dtype)).reshape(h, w)


def _check_pixels(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
        raise UnsupportedImageError(
            f"pixels must be an (H, W, C) uint8 array with C in 1, 3, 4; got {pixels.dtype} {pixels.shape}"
        )
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise UnsupportedImageError(f"image has no pixels: shape {pixels.shape}")
    return np.ascontiguousarray(pixels)


class _Histogram:
    """Distinct colours of an image with their pixel counts."""

    def __init__(self, pixels: np.ndarray) -> None:
        h, w, c = pixels.shape
        self.channels = c
        self.n_pixels = h * w
        flat = pixels.reshape(-1, c)
        keys = flat[:, 0].astype(np.uint32)
        for ch in range(1, c):
            keys <<= 8
            keys |= flat[:, ch]
        if c == 4:
            # All invisible pixels are one colour, whatever RGB they carry.
            keys[flat[:, 3] == 0] = 0
        self.keys = keys
        s = np.sort(keys)
        first = np.empty(len(s), dtype=bool)
        first[0] = True
        np.not_equal(s[1:], s[:-1], out=first[1:])
        self.uniq = s[first]
        starts = np.flatnonzero(first)
        self.counts = np.diff(np.append(starts, len(s)))
        shifts = 8 * np.arange(c - 1, -1, -1, dtype=np.uint32)
        self.colours = ((self.uniq[:, None] >> shifts) & 0xFF).astype(np.uint8)
        self.transparent = c == 4 and self.uniq[0] == 0

    def canonical_pixels(self, pixels: np.ndarray) -> np.ndarray:
        if not self.transparent:
            return pixels
        out = pixels.copy()
        out[out[..., 3] == 0] = 0
        return out

    def expand(self, labels: np.ndarray) -> np.ndarray:
        """Per-pixel labels from per-distinct-colour ``labels``."""
        if self.channels <= 3 and labels.dtype == np.uint8:
            # np.empty leaves untouched pages unmapped, so the 16 MiB table
            # costs only the pages the image's colours land on.
            table = np.empty(1 << (8 * self.channels), dtype=labels.dtype)
            table[self.uniq] = labels
            return table[self.keys]
        out = np.empty(len(self.keys), dtype=labels.dtype)
        step = 1 << 22  # bounds the int64 positions searchsorted returns
        for i in range(0, len(self.keys), step):
            out[i : i + step] = labels[np.searchsorted(self.uniq, self.keys[i : i + step])]
        return out

    def sse(self, palette: np.ndarray, labels: np.ndarray) -> int:
        diff = self.colours.astype(np.int64) - palette[labels].astype(np.int64)
        return int(((diff * diff).sum(axis=1) * self.counts).sum())

    def psnr(self, palette: np.ndarray, labels: np.ndarray) -> float:
        sse = self.sse(palette, labels)
        if sse == 0:
            return float("inf")
        return float(10 * np.log10(255.0**2 * self.n_pixels * self.channels / sse))


def _fit(hist: _Histogram, k: int, options: EncoderOptions) -> tuple[np.ndarray, np.ndarray]:
    """Palette of at most ``k`` colours and the label of each distinct colour."""
    colours, counts = hist.colours, hist.counts
    if len(colours) <= k:
        return colours, np.arange(len(colours))
    space, speed = options.color_space, options.speed
    # The transparent entry is fixed: fit the visible colours with one fewer.
    fixed = colours[:1] if hist.transparent else colours[:0]
    free = k - len(fixed)
    if free == 0:
        return fixed, np.zeros(len(colours), dtype=np.intp)
    pts, wts = colours[len(fixed) :], counts[len(fixed) :].astype(np.float64)
    x = to_space(pts, space)
    fit_points, coarse_points, init_work, coarse_iters, iters, rounds = _PROFILES[speed]
    xr, wr, inv = _reduce(pts, x, wts, fit_points)
    # Coarse to fine: most Lloyd iterations run on a small bucketed histogram,
    # and the full one only finishes the job, where few points still move.
    xc, wc, _ = _reduce(pts, x, wts, coarse_points)
    starts = [_split_init(xc, wc, free)]
    # sklearn's greedy k-means++ tries 2 + log(k) candidates per centre. Where
    # that is cheap, a second start from it often finds a better optimum
    # (never a worse result: the lower error wins).
    if len(xc) * free * (2 + np.log(free)) <= init_work:
        starts.append((_plusplus_init(xc, wc, free, options.seed), None))
    best = None
    for centres, labels in starts:
        if len(xc) < len(xr):
            centres, _ = _lloyd(xc, wc, centres, labels, coarse_iters)
            labels = None
        centres, labels = _lloyd(xr, wr, centres, labels, iters)
        sse = _weighted_sse(xr, wr, centres, labels)
        if best is None or sse < best[0]:
            best = (sse, centres, labels)
    _, centres, labels = best
    palette = np.concatenate([fixed, from_space(centres, space, hist.channels)])
    guess = np.concatenate([np.zeros(len(fixed), dtype=np.intp), labels[inv] + len(fixed)])
    return _polish(hist, palette, space, rounds, len(fixed), guess)


def _weighted_sse(x: np.ndarray, w: np.ndarray, centres: np.ndarray, labels: np.ndarray) -> float:
    d = x - centres[labels]
    return float((np.einsum("nd,nd->n", d, d) * w).sum())


def _plusplus_init(x: np.ndarray, w: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Greedy k-means++ start on weighted points (scikit-learn's, see :mod:`kvq.seeding`), seeded."""
    from .seeding import kmeans_plusplus

    return kmeans_plusplus(x, min(k, len(x)), w, seed)


def _reduce(
    colours: np.ndarray, x: np.ndarray, w: np.ndarray, limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge colours into the finest byte buckets of which at most ``limit`` are occupied.

    Each bucket becomes one point at the count-weighted mean of its colours
    (in the clustering space) with their summed count.

    Returns
    -------
    x, w : ndarray
        The bucket points and weights (the inputs when already small enough).
    inverse : ndarray of intp, shape (N,)
        The bucket of each input colour.
    """
    if len(x) <= limit:
        return x, w, np.arange(len(x))
    for bits in range(7, 0, -1):
        coarse = colours >> (8 - bits)
        key = np.zeros(len(coarse), dtype=np.uint32)
        for ch in range(coarse.shape[1]):
            key = (key << bits) | coarse[:, ch]
        uniq, inv = np.unique(key, return_inverse=True)
        if len(uniq) <= limit:
            break
    inv = inv.ravel()
    means, wb = _weighted_means(x, w, inv, len(uniq))
    return means, wb, inv


def _split_init(x: np.ndarray, w: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy variance split of weighted points into ``k`` clusters.

    Parameters
    ----------
    x : ndarray of float64, shape (N, D)
    w : ndarray of float64, shape (N,)
        Positive weights.
    k : int
        Number of clusters wanted; fewer come back when the points run out.

    Returns
    -------
    centres : ndarray of float64, shape (<= k, D)
        Weighted means of the clusters.
    labels : ndarray of intp, shape (N,)
        Cluster of each point.
    """
    wx = x * w[:, None]
    wq = (wx * x).sum(axis=1)
    members = [np.arange(len(x))]
    sums = [(float(w.sum()), wx.sum(axis=0))]
    sse = float(wq.sum()) - float(sums[0][1] @ sums[0][1]) / sums[0][0]
    heap = [(-sse, 0)]
    while len(members) < k and heap:
        neg_sse, i = heapq.heappop(heap)
        idx = members[i]
        xi, wi = x[idx], w[idx]
        wt, s = sums[i]
        centred = xi - s / wt
        cov = (centred * wi[:, None]).T @ centred
        proj = xi @ np.linalg.eigh(cov)[1][:, -1]
        order = np.argsort(proj, kind="stable")
        cw = np.cumsum(wi[order])
        cs = np.cumsum(wx[idx[order]], axis=0)
        cq = np.cumsum(wq[idx[order]])
        lw, ls, rs = cw[:-1], cs[:-1], s - cs[:-1]
        # Error removed by a cut = between-cluster sum of squares.
        gain = (ls * ls).sum(axis=1) / lw + (rs * rs).sum(axis=1) / (wt - lw)
        # Cut only between different projections, so equal points stay together.
        sp = proj[order]
        gain[sp[1:] == sp[:-1]] = -np.inf
        cut = int(np.argmax(gain))
        if not np.isfinite(gain[cut]):
            continue
        members[i], right = idx[order[: cut + 1]], idx[order[cut + 1 :]]
        members.append(right)
        left_stats = (float(cw[cut]), cs[cut])
        right_stats = (wt - float(cw[cut]), s - cs[cut])
        left_sse = float(cq[cut]) - float(cs[cut] @ cs[cut]) / cw[cut]
        right_sse = float(cq[-1] - cq[cut]) - float(right_stats[1] @ right_stats[1]) / right_stats[0]
        sums[i] = left_stats
        sums.append(right_stats)
        for j, part, part_sse in ((i, members[i], left_sse), (len(members) - 1, right, right_sse)):
            if len(part) > 1 and part_sse > 1e-9 * sums[j][0]:
                heapq.heappush(heap, (-part_sse, j))
    labels = np.empty(len(x), dtype=np.intp)
    for j, part in enumerate(members):
        labels[part] = j
    return np.array([s / wt for wt, s in sums]), labels


def _assign(x: np.ndarray, centres: np.ndarray, guess: np.ndarray | None, m: int = 10) -> np.ndarray:
    """Exact nearest centre, checking only the ``m`` centres closest to a guess where it can.

    Parameters
    ----------
    x : ndarray of float32, shape (N, D)
    centres : ndarray, shape (K, D)
    guess : ndarray of intp, shape (N,), or None
        Any centre per point; a good one (last iteration's) makes most checks
        pass. None searches all centres.
    m : int
        Candidates per guess.

    Returns
    -------
    ndarray of intp, shape (N,)
        The same as :func:`_nearest`, ties included.

    Notes
    -----
    If ``c`` is not among the ``m`` centres nearest to guess ``g``, then
    ``|x - c| >= |g - c| - |x - g| >= r_g - |x - g|`` with ``r_g`` the distance
    from ``g`` to its nearest excluded centre. A point whose best candidate is
    strictly closer than that bound is certified; the rest are searched fully.
    Candidates are kept in index order so argmin breaks ties like the full search.
    """
    k = len(centres)
    if guess is None or k <= 3 * m:
        # Gathering candidates costs about as much as a full matmul this small.
        return _nearest(x, centres)
    c64 = np.asarray(centres, dtype=np.float64)
    cand, radius = _neighbours(c64, m)
    # One (K, m) table per channel: gathers of 2-D rows are far cheaper than
    # of (N, m, D) blocks.
    cand_planes = [np.ascontiguousarray(c64[:, ch].astype(np.float32)[cand]) for ch in range(x.shape[1])]
    c32 = c64.astype(np.float32)
    out = np.empty(len(x), dtype=np.intp)
    step = max(1, _BLOCK // m)
    for i in range(0, len(x), step):
        xb, gb = x[i : i + step], guess[i : i + step]
        d = None
        for ch, plane in enumerate(cand_planes):
            v = plane[gb]
            v -= xb[:, ch : ch + 1]
            v *= v
            d = v if d is None else d.__iadd__(v)
        j = d.argmin(axis=1)
        rows = np.arange(len(xb))
        best = cand[gb, j]
        out[i : i + step] = best
        dg = xb - c32[gb]
        dg = np.sqrt(np.einsum("nd,nd->n", dg, dg).astype(np.float64))
        # Margin covers float32 rounding in the distances (exact for bytes).
        sure = np.sqrt(d[rows, j].astype(np.float64)) * (1 + 1e-5) + 1e-6 < radius[gb] - dg
        unsure = np.flatnonzero(~sure)
        if len(unsure):
            out[i + unsure] = _nearest(xb[unsure], centres)
    return out


def _neighbours(centres: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` centres nearest each centre (itself included), in index order,
    and the distance to the nearest centre left out.

    A k-d tree keeps this O(K log K) in time and O(K m) in memory, so a
    65,536-entry palette needs no K x K matrix. Small palettes use a K x K
    matrix instead: importing scipy.spatial costs about 0.45 s, more than
    the whole encode of a photo at K = 64.
    """
    c64 = np.asarray(centres, dtype=np.float64)
    if len(c64) <= _SMALL_PALETTE:
        diff = c64[:, None, :] - c64[None, :, :]
        # The sum over channels runs in channel order, as the k-d tree's does.
        squared = (diff * diff).sum(axis=2)
        near = np.argpartition(squared, m, axis=1)[:, : m + 1]
        return np.sort(near[:, :m], axis=1), np.sqrt(squared[np.arange(len(c64)), near[:, m]])
    from scipy.spatial import cKDTree

    dist, near = cKDTree(c64).query(c64, k=m + 1)
    return np.sort(near[:, :m], axis=1), dist[:, m]


#: Largest palette whose neighbour lists come from a K x K distance matrix.
_SMALL_PALETTE = 512


def _nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each point, lowest index on ties.

    For byte-valued points and centres every product and partial sum is an
    integer below 2**24, so float32 arithmetic is exact and the result does not
    depend on the BLAS kernel or thread count.
    """
    c32 = centres.astype(np.float32)
    neg2t = -2.0 * c32.T
    norm = (c32 * c32).sum(axis=1)
    out = np.empty(len(x), dtype=np.intp)
    step = max(1, _BLOCK // len(c32))
    for i in range(0, len(x), step):
        d = x[i : i + step] @ neg2t
        d += norm
        out[i : i + step] = d.argmin(axis=1)
    return out


def _weighted_means(x: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    wt = np.bincount(labels, weights=w, minlength=k)
    sums = np.stack([np.bincount(labels, weights=w * x[:, j], minlength=k) for j in range(x.shape[1])], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / wt[:, None], wt


def _lloyd(
    x: np.ndarray, w: np.ndarray, centres: np.ndarray, labels: np.ndarray | None, iters: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Lloyd iterations from ``centres`` (``labels``: a guess of each point's nearest, or None).

    Empty clusters keep their centre. Hamerly's bounds skip the points whose
    centre cannot have changed: an upper bound on the distance to the own
    centre and a lower bound on any other, moved by how far centres moved.
    Stops early once no centre moves more than 1/5000 of the data's span (a
    twentieth of a byte for RGB), far below what rounding to bytes resolves.

    Returns
    -------
    centres : ndarray of float64, shape (K, D)
    labels : ndarray of intp, shape (N,)
        Nearest centre of each point (up to the candidate search) for the
        centres before the last update: a good guess for later searches.
    """
    x32 = x.astype(np.float32)
    tol = 2e-4 * float(np.ptp(x, axis=0).max())
    labels, upper, lower = _bounded_search(x32, centres, labels)
    for _ in range(iters):
        means, wt = _weighted_means(x, w, labels, len(centres))
        moved = np.where(wt[:, None] > 0, means, centres)
        delta = np.sqrt(((moved - centres) ** 2).sum(axis=1))
        centres = moved
        if delta.max() <= tol:
            break
        upper += delta[labels]
        lower -= delta.max()
        todo = np.flatnonzero(upper > lower)
        # The upper bound drifts fastest; make it exact before searching.
        own = x32[todo] - centres[labels[todo]].astype(np.float32)
        upper[todo] = np.sqrt(np.einsum("nd,nd->n", own, own).astype(np.float64))
        todo = todo[upper[todo] > lower[todo]]
        if len(todo):
            labels[todo], upper[todo], lower[todo] = _bounded_search(x32[todo], centres, labels[todo])
    return centres, labels


def _bounded_search(
    x: np.ndarray, centres: np.ndarray, guess: np.ndarray | None, m: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best centre among candidates, its distance, and a lower bound on the others.

    The candidates are all centres, or the ``m`` nearest to ``guess`` when
    there are many (see :func:`_assign` for the bound on the rest).
    """
    k = len(centres)
    c32 = centres.astype(np.float32)
    if guess is None or k <= 3 * m:
        best = np.empty(len(x), dtype=np.intp)
        upper = np.empty(len(x), dtype=np.float64)
        lower = np.empty(len(x), dtype=np.float64)
        neg2t = -2.0 * c32.T
        norm = (c32 * c32).sum(axis=1)
        step = max(1, (1 << 24) // k)  # 64 MiB of distances at most
        for i in range(0, len(x), step):
            xb = x[i : i + step]
            rows = np.arange(len(xb))
            d = xb @ neg2t
            d += norm
            b = d.argmin(axis=1)
            first = d[rows, b]
            d[rows, b] = np.inf
            second = d.min(axis=1) if k > 1 else np.full(len(xb), np.inf, dtype=np.float32)
            xx = (xb * xb).sum(axis=1)
            best[i : i + step] = b
            upper[i : i + step] = np.sqrt(np.maximum(first + xx, 0).astype(np.float64))
            lower[i : i + step] = np.sqrt(np.maximum(second + xx, 0).astype(np.float64))
        return best, upper, lower
    cand, radius = _neighbours(centres, m)
    d = None
    for ch in range(x.shape[1]):
        v = c32[:, ch][cand][guess]
        v -= x[:, ch : ch + 1]
        v *= v
        d = v if d is None else d.__iadd__(v)
    two = np.argpartition(d, 1, axis=1)[:, :2]
    rows = np.arange(len(x))
    d2 = d[rows[:, None], two]
    first = d2.argmin(axis=1)
    best = cand[guess, two[rows, first]]
    upper = np.sqrt(d2[rows, first].astype(np.float64))
    dg = x - c32[guess]
    dg = np.sqrt(np.einsum("nd,nd->n", dg, dg).astype(np.float64))
    lower = np.minimum(np.sqrt(d2[rows, 1 - first].astype(np.float64)), radius[guess] - dg)
    return best, upper, lower


def _polish(
    hist: _Histogram, palette: np.ndarray, space: str, rounds: int, n_fixed: int, guess: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd rounds on the stored bytes, then drop duplicate and unused entries.

    Returns the palette and, for every distinct colour, the index of its
    nearest entry in that palette.
    """
    colours, counts = hist.colours, hist.counts.astype(np.float64)
    xs = to_space(colours, space)
    x32 = xs.astype(np.float32)
    c = hist.channels
    for it in range(rounds + 1):
        palette = _dedupe(palette)
        if guess is None:
            labels = _nearest(x32, to_space(palette, space))
        else:
            # Dedupe may have shifted indices; a wrong guess only costs time.
            labels = _assign(x32, to_space(palette, space), np.minimum(guess, len(palette) - 1))
        guess = labels
        if it == rounds:
            break
        means, wt = _weighted_means(xs, counts, labels, len(palette))
        movable = wt > 0
        movable[:n_fixed] = False
        moved = palette.copy()
        moved[movable] = from_space(means[movable], space, c)
        if np.array_equal(moved, palette):
            break
        palette = moved
    used = np.bincount(labels, minlength=len(palette)) > 0
    if not used.all():
        # Dropping an entry nobody picked cannot change anyone's nearest entry.
        remap = np.cumsum(used) - 1
        palette, labels = palette[used], remap[labels]
    return palette, labels


def _dedupe(palette: np.ndarray) -> np.ndarray:
    """Remove repeated rows, keeping first occurrences in order (so a fixed first entry stays first)."""
    _, first = np.unique(palette, axis=0, return_index=True)
    if len(first) == len(palette):
        return palette
    return palette[np.sort(first)]


def _fit_for_quality(hist: _Histogram, options: EncoderOptions) -> tuple[np.ndarray, np.ndarray]:
    """Fewest colours (bisection on K) whose PSNR reaches ``options.quality``."""
    target = options.quality
    cache: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}

    def attempt(k: int) -> tuple[np.ndarray, np.ndarray, float]:
        if k not in cache:
            palette, labels = _fit(hist, k, options)
            cache[k] = (palette, labels, hist.psnr(palette, labels))
        return cache[k]

    hi = min(options.k, len(hist.colours))
    best = attempt(hi)
    if best[2] < target:
        raise QualityError(
            f"{options.k} colours reach only {best[2]:.2f} dB PSNR, short of the requested {target:.2f} dB",
            best[2],
        )
    lo = 0  # invariant: attempt(lo) misses the target (or lo == 0), attempt(hi) reaches it
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if attempt(mid)[2] >= target:
            hi = mid
        else:
            lo = mid
    palette, labels, _ = attempt(hi)
    return palette, labels
