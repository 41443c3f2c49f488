"""The colour histogram: an image's distinct colours and how many pixels have each.

The k-means objective over pixels equals the count-weighted objective over
distinct colours, and a photo has 10 to 100 times fewer distinct colours than
pixels, so every later layer works on this histogram (libimagequant's
``pam.c`` does the same). :func:`coarser` merges colours into buckets where
even the histogram is too big for a stage.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel
from .nearest import DIMS

# Pixels per block when expanding labels through searchsorted: bounds the
# int64 positions it returns.
_EXPAND_BLOCK = 1 << 22


class Histogram:
    """Distinct colours of an image with their pixel counts.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, C)
        C-contiguous, C in 1, 3, 4. With C = 4 every pixel of alpha 0 counts
        as (0, 0, 0, 0), whatever RGB it carries.

    Attributes
    ----------
    colours : ndarray of uint8, shape (N, C)
        The distinct colours, in increasing order of their packed value (so
        the transparent colour, when present, is first).
    counts : ndarray of int64, shape (N,)
        Pixels of each colour.
    transparent : bool
        Whether (0, 0, 0, 0) is among the colours (RGBA only).
    """

    def __init__(self, pixels: np.ndarray) -> None:
        h, w, c = pixels.shape
        self.channels = c
        self.n_pixels = h * w
        flat = pixels.reshape(-1, c)
        # keys: each pixel's colour packed into one integer, kept to expand
        # per-colour labels back to pixels.
        keys = flat[:, 0].astype(np.uint32)
        for ch in range(1, c):
            keys <<= 8
            keys |= flat[:, ch]
        if c == 4:
            keys[flat[:, 3] == 0] = 0
        self.keys = keys
        # unique: the packed value of each distinct colour, ascending.
        self.unique, self.counts = _distinct(keys, 8 * c)
        shifts = 8 * np.arange(c - 1, -1, -1, dtype=np.uint32)
        self.colours = ((self.unique[:, None] >> shifts) & 0xFF).astype(np.uint8)
        self.transparent = bool(c == 4 and self.unique[0] == 0)

    def canonical_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """``pixels`` with every alpha-0 pixel set to (0, 0, 0, 0), as the histogram counts them."""
        if not self.transparent:
            return pixels
        out = pixels.copy()
        out[out[..., 3] == 0] = 0
        return out

    def expand(self, labels: np.ndarray) -> np.ndarray:
        """Per-pixel labels, shape (H * W,), from per-colour ``labels`` (uint8 or uint16)."""
        if self.channels <= 3:
            # np.empty leaves untouched pages unmapped, so the table (16 or
            # 32 MiB for RGB) costs only the pages the image's colours land
            # on; searchsorted on uint16 labels was 37x slower (14 MP).
            table = np.empty(1 << (8 * self.channels), dtype=labels.dtype)
            table[self.unique] = labels
            return table[self.keys]
        out = np.empty(len(self.keys), dtype=labels.dtype)
        for i in range(0, len(self.keys), _EXPAND_BLOCK):
            out[i : i + _EXPAND_BLOCK] = labels[np.searchsorted(self.unique, self.keys[i : i + _EXPAND_BLOCK])]
        return out


def _distinct(keys: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``keys`` (below 2**bits) in increasing order, and how often each occurs.

    Up to 24 bits and for images of more than a quarter as many pixels as
    there are possible values, one pass counts into a table of every value
    (64 MiB for RGB, from calloc: untouched pages cost nothing); otherwise a
    least-significant-digit radix sort, 11 bits a pass, sorts a copy: two or
    three linear passes instead of a comparison sort's log N, with two
    buffers the size of ``keys``.
    """
    if bits <= 24 and (bits <= 16 or len(keys) >= (1 << bits) // 4):
        table = np.zeros(1 << bits, dtype=np.uint32 if len(keys) < 2**32 else np.int64)
        _count(keys, table)
        unique = np.flatnonzero(table).astype(np.uint32)
        return unique, table[unique].astype(np.int64)
    ordered = _radix_sort(keys, bits)
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    return ordered[starts], np.diff(np.append(starts, len(ordered)))


@kernel
def _count(keys: np.ndarray, table: np.ndarray) -> None:  # pragma: no cover - compiled
    for i in range(keys.shape[0]):
        table[keys[i]] += 1


@kernel
def _radix_sort(keys: np.ndarray, bits: int) -> np.ndarray:  # pragma: no cover - compiled
    n = keys.shape[0]
    ordered = keys.copy()
    spare = np.empty_like(ordered)
    shift = 0
    while shift < bits:
        count = np.zeros(2049, dtype=np.int64)
        for i in range(n):
            count[((ordered[i] >> shift) & 2047) + 1] += 1
        for d in range(2048):
            count[d + 1] += count[d]
        for i in range(n):
            d = (ordered[i] >> shift) & 2047
            spare[count[d]] = ordered[i]
            count[d] += 1
        ordered, spare = spare, ordered
        shift += 11
    return ordered


def coarser(
    colours: np.ndarray, points: np.ndarray, weights: np.ndarray, limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge colours into the finest byte buckets of which at most ``limit`` are occupied.

    A bucket of step ``q`` holds the colours whose every channel agrees in
    ``value // q``; it becomes one point at the count-weighted mean of its
    colours (in the clustering space) with their summed count. The k-means
    error of the buckets differs from that of the colours only where a
    bucket straddles two clusters, so the coarse stages lose little.

    Parameters
    ----------
    colours : ndarray of uint8, shape (N, C)
    points : ndarray of float64, shape (N, 4)
        The colours in the clustering space, padded.
    weights : ndarray of float64, shape (N,)
    limit : int

    Returns
    -------
    points, weights : ndarray
        The buckets (the inputs themselves when N <= limit).
    bucket : ndarray of int64, shape (N,)
        The bucket of each colour.
    """
    if len(points) <= limit:
        return points, weights, np.arange(len(points))

    def buckets(step: int) -> tuple[np.ndarray, np.ndarray]:
        top = (colours // step).astype(np.uint32)
        key = np.zeros(len(top), dtype=np.uint32)
        for ch in range(top.shape[1]):
            key = key * np.uint32(256 // step + 1) + top[:, ch]
        unique, bucket = np.unique(key, return_inverse=True)
        return unique, bucket

    # Bisection for the finest step that fits: the count of occupied buckets
    # falls as the step grows, and the coarsest step always fits (one bucket).
    lo, hi = 0, len(_STEPS) - 1
    found = None  # the buckets of step _STEPS[hi], once computed
    while lo < hi:
        mid = (lo + hi) // 2
        trial = buckets(_STEPS[mid])
        if len(trial[0]) <= limit:
            hi, found = mid, trial
        else:
            lo = mid + 1
    unique, bucket = found if found is not None else buckets(_STEPS[hi])
    bucket = bucket.ravel().astype(np.int64)
    total = np.bincount(bucket, weights=weights, minlength=len(unique))
    merged = np.empty((len(unique), DIMS))
    for ch in range(DIMS):
        merged[:, ch] = np.bincount(bucket, weights=weights * points[:, ch], minlength=len(unique)) / total
    return merged, total, bucket


# Bucket steps from fine to coarse, each about 1.25x the last in width (about
# 2x fewer buckets in 3-D), up to one bucket per channel.
_STEPS = (2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 26, 32, 43, 64, 128, 256)
