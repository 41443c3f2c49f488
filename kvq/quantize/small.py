"""The palette engine for small images, in numpy alone: no compiled kernels to load.

Loading kvq's compiled kernels costs a process about 0.5 s (importing numba,
then reading the cached machine code), more than the whole work on an icon
takes in numpy. :func:`kvq.quantize.quantize` sends images whose pixels
times K is at most :data:`SMALL_WORK` here (``method="kvq"``: a 128 x 128
icon at K = 64, 256 x 256 at K = 16), so that ``kvq png 64 icon.png`` costs
about what any Python image tool costs to start.

The steps are the engine's, each in its plainest form, since the histogram of
a small image is small enough for brute force:

- the distinct colours and their counts (``np.unique``), alpha-0 pixels as
  one transparent colour, fixed as the first entry;
- a greedy variance split: the cluster of largest weighted squared error is
  cut at its mean along its widest coordinate, until there are K clusters;
- weighted Lloyd iterations with exact nearest centres (every distance
  computed), until no label changes;
- Lloyd rounds on the stored bytes, ending with exact nearest labels (lowest
  index on ties);
- with dithering, Floyd–Steinberg error diffusion run as a wavefront: pixel
  (y, x) depends only on pixels with a smaller ``x + 2y``, so every pixel of
  one such diagonal is done in one vectorised step. Unlike the engine's
  serpentine, edge-aware scan it runs left to right on every row and has no
  dither map; strength and the overshoot limit are the engine's.

Every sum is a ``np.bincount`` or an element-wise operation (no BLAS, whose
summation order depends on the machine), so the result is the same on every
machine. It is not the engine's result (0.1 to 0.25 dB less PSNR on Kodak
photos cut to 128 and 256 pixels at K = 16 to 256): the path depends on the
image's size and K only, never on the machine.
"""

from __future__ import annotations

import numpy as np

from ..options import EncoderOptions
from .colorspace import from_space, to_space

__all__ = ["SMALL_WORK", "quantize_small"]

#: Images whose pixels times K is at most this take this path. Measured on
#: Kodak photos cut to 128 and 256 pixels (a loaded 2-core machine): here
#: 14 to 95 ms against the kernels' 0.5 to 0.8 s to load plus the engine's
#: 16 to 122 ms; at 128 x 128 and K = 256 this path takes 150 to 250 ms, and
#: 256 x 256 at K = 256, 0.5 to 1 s, where loading the kernels pays.
SMALL_WORK = 1 << 20

# Rows of points per block of the brute-force distance matrix (float64 block
# of _BLOCK * K values).
_BLOCK = 4096
# Most points the start and the first Lloyd iterations run on.
_COARSE_POINTS = 2048
# Lloyd iterations on the histogram, by speed 1..10.
_ITERATIONS = {1: 40, 2: 30, 3: 24, 4: 16, 5: 12, 6: 10, 7: 8, 8: 6, 9: 4, 10: 2}
# Swap attempts (a centre moved from where it costs least to where the error is largest), by speed.
_SWAPS = {1: 32, 2: 16, 3: 8, 4: 4, 5: 2, 6: 2, 7: 1, 8: 0, 9: 0, 10: 0}
# Errors above this multiple of the palette's mean squared error are damped.
_LARGE_ERROR = 2.4
# Allowed overshoot of a dithered target beyond the palette's extent, as a
# fraction of the cube's edge (as the engine, after libimagequant).
_OVERSHOOT = 0.1


def quantize_small(pixels: np.ndarray, options: EncoderOptions) -> tuple[np.ndarray, np.ndarray]:
    """Choose a palette for a small image and map every pixel to it, in numpy alone.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, C)
        C-contiguous; C is 1, 3 or 4.
    options : EncoderOptions
        Uses ``k``, ``color_space``, ``dither`` and ``speed``.

    Returns
    -------
    palette : ndarray of uint8, shape (K, C)
        No two rows equal, every row used.
    indices : ndarray of uint8 or uint16, shape (H, W)
    """
    h, w, c = pixels.shape
    if c == 4 and bool((pixels[..., 3] == 255).all()):
        # Opaque RGBA is RGB with a constant alpha: a quarter less distance work.
        palette, indices = quantize_small(np.ascontiguousarray(pixels[..., :3]), options)
        return np.concatenate([palette, np.full((len(palette), 1), 255, np.uint8)], axis=1), indices
    flat = pixels.reshape(-1, c)
    keys = flat[:, 0].astype(np.uint32)
    for ch in range(1, c):
        keys = (keys << 8) | flat[:, ch]
    if c == 4:
        keys[flat[:, 3] == 0] = 0
    unique, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    shifts = 8 * np.arange(c - 1, -1, -1, dtype=np.uint32)
    colours = ((unique[:, None] >> shifts) & 0xFF).astype(np.uint8)
    transparent = bool(c == 4 and unique[0] == 0)
    space = options.color_space
    if len(colours) <= options.k:
        palette, labels = colours, np.arange(len(colours))
    else:
        palette, labels = _fit(colours, counts.astype(np.float64), options.k, space, options.speed, transparent)
    indices = labels[inverse.reshape(-1)].reshape(h, w)
    if options.dither > 0 and len(palette) > 1:
        canonical = pixels
        if transparent:
            canonical = pixels.copy()
            canonical[canonical[..., 3] == 0] = 0
        indices = _diffuse(canonical, palette, options.dither, space, 0 if transparent else None)
    return _drop_unused(palette, indices)


def _fit(colours: np.ndarray, weights: np.ndarray, k: int, space: str, speed: int, transparent: bool) -> tuple[np.ndarray, np.ndarray]:
    """Palette of at most ``k`` entries and each colour's nearest entry."""
    n_fixed = 1 if transparent else 0
    points = to_space(colours, space)
    if k - n_fixed == 0:
        return colours[:1], np.zeros(len(colours), dtype=np.int64)
    visible, visible_weights = points[n_fixed:], weights[n_fixed:]
    # The start and most iterations on colours merged into byte buckets (as
    # the engine's coarse stage), the last two on the colours themselves.
    coarse, coarse_weights = _buckets(colours[n_fixed:], visible, visible_weights, max(_COARSE_POINTS, 16 * k))
    labels = _variance_split(coarse, coarse_weights, k - n_fixed)
    centres = _means(coarse, coarse_weights, labels, k - n_fixed, None)
    centres = _lloyd(coarse, coarse_weights, centres, labels, _ITERATIONS[speed])
    centres = _swaps(coarse, coarse_weights, centres, _SWAPS[speed])
    if len(coarse) < len(visible):
        centres = _lloyd(visible, visible_weights, centres, _nearest(visible, centres), _ITERATIONS[speed] // 4 + 1)
    channels = colours.shape[1]
    palette = np.concatenate([colours[:n_fixed], from_space(centres, space, channels)])
    # Lloyd rounds on the stored bytes: the final labels are the nearest stored entries.
    for _ in range(_ITERATIONS[speed] // 4 + 1):
        palette = _dedupe(palette)
        stored = to_space(palette, space)
        labels = _nearest(points, stored)
        means = _means(points, weights, labels, len(palette), stored)
        rounded = palette.copy()
        rounded[n_fixed:] = from_space(means[n_fixed:], space, channels)
        if np.array_equal(rounded, palette):
            return palette, labels
        palette = rounded
    palette = _dedupe(palette)
    return palette, _nearest(points, to_space(palette, space))


def _lloyd(points: np.ndarray, weights: np.ndarray, centres: np.ndarray, labels: np.ndarray, iterations: int) -> np.ndarray:
    """Weighted Lloyd iterations from ``labels``, until no label changes."""
    centres = _means(points, weights, labels, len(centres), centres)
    for _ in range(iterations):
        moved = _nearest(points, centres)
        if np.array_equal(moved, labels):
            break
        labels = moved
        centres = _means(points, weights, labels, len(centres), centres)
    return centres


def _swaps(points: np.ndarray, weights: np.ndarray, centres: np.ndarray, rounds: int) -> np.ndarray:
    """Leave a Lloyd optimum, as the engine's swap step: move the centre whose removal costs least
    to the worst-served point of the cluster with the largest error, settle, keep it if the error fell."""
    if len(centres) < 3:
        return centres
    error = _error(points, weights, centres)
    for _ in range(rounds):
        distance = _distances(points, centres)
        rows = np.arange(len(points))
        labels = np.argmin(distance, axis=1)
        first = distance[rows, labels]
        distance[rows, labels] = np.inf
        second = distance.min(axis=1)
        removal = np.bincount(labels, weights=weights * (second - first), minlength=len(centres))
        cheapest = int(np.argmin(removal))
        served = np.bincount(labels, weights=weights * first, minlength=len(centres))
        served[cheapest] = -1.0
        richest = int(np.argmax(served))
        members = np.flatnonzero(labels == richest)
        trial = centres.copy()
        trial[cheapest] = points[members[np.argmax(weights[members] * first[members])]]
        trial = _lloyd(points, weights, trial, _nearest(points, trial), 3)
        trial_error = _error(points, weights, trial)
        if trial_error >= error:
            break
        centres, error = trial, trial_error
    return centres


def _distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared distance of every point to every centre, in float32 (exact for byte colours), coordinate by coordinate."""
    points, centres = points.astype(np.float32), centres.astype(np.float32)
    distance = np.square(points[:, None, 0] - centres[None, :, 0])
    for d in range(1, points.shape[1]):
        distance += np.square(points[:, None, d] - centres[None, :, d])
    return distance


def _error(points: np.ndarray, weights: np.ndarray, centres: np.ndarray) -> float:
    labels = _nearest(points, centres)
    gap = _rowsum(np.square(points - centres[labels]))
    return float(np.bincount(np.zeros(len(points), np.int64), weights=weights * gap)[0])


def _buckets(colours: np.ndarray, points: np.ndarray, weights: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Colours merged into the finest byte buckets (step 2, 4, 8 ...) of which at most ``limit`` are occupied."""
    if len(colours) <= limit:
        return points, weights
    for shift in range(1, 8):
        key = np.zeros(len(colours), dtype=np.int64)
        for ch in range(colours.shape[1]):
            key = (key << 8) | (colours[:, ch] >> shift)
        _, bucket = np.unique(key, return_inverse=True)
        bucket = bucket.reshape(-1)
        if bucket.max() < limit:
            break
    n = int(bucket.max()) + 1
    return _means(points, weights, bucket, n, None), np.bincount(bucket, weights=weights, minlength=n)


def _variance_split(points: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Greedy split into at most ``k`` clusters: the worst cluster is cut at its mean along its widest coordinate."""
    labels = np.zeros(len(points), dtype=np.int64)
    members = [np.arange(len(points))]
    errors = [_sse(points, weights)]
    while len(members) < k:
        worst = int(np.argmax(errors))
        if errors[worst] <= 0.0:
            break  # every cluster is one point
        idx = members[worst]
        p, wt = points[idx], weights[idx]
        mean = _weighted_mean(p, wt)
        zero = np.zeros(len(p), dtype=np.int64)
        spread = [float(np.bincount(zero, weights=wt * (p[:, d] - mean[d]) ** 2)[0]) for d in range(p.shape[1])]
        axis = int(np.argmax(spread))
        left = p[:, axis] <= mean[axis]
        if left.all() or not left.any():
            errors[worst] = 0.0
            continue
        members[worst], new = idx[left], idx[~left]
        members.append(new)
        errors[worst] = _sse(points[members[worst]], weights[members[worst]])
        errors.append(_sse(points[new], weights[new]))
        labels[new] = len(members) - 1
    return labels


def _weighted_mean(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    zero = np.zeros(len(points), dtype=np.int64)
    total = np.bincount(zero, weights=weights)[0]
    return np.array([np.bincount(zero, weights=weights * points[:, d])[0] / total for d in range(points.shape[1])])


def _sse(points: np.ndarray, weights: np.ndarray) -> float:
    mean = _weighted_mean(points, weights)
    error = _rowsum((points - mean) ** 2)
    return float(np.bincount(np.zeros(len(points), np.int64), weights=weights * error)[0])


def _rowsum(values: np.ndarray) -> np.ndarray:
    """Sum over the last axis, in coordinate order (no pairwise or SIMD reordering)."""
    out = values[..., 0].copy()
    for d in range(1, values.shape[-1]):
        out += values[..., d]
    return out


def _means(points: np.ndarray, weights: np.ndarray, labels: np.ndarray, k: int, previous: np.ndarray | None) -> np.ndarray:
    """Weighted mean of each cluster; an empty cluster keeps ``previous`` (or zero)."""
    total = np.bincount(labels, weights=weights, minlength=k)
    out = np.zeros((k, points.shape[1])) if previous is None else previous.copy()
    filled = total > 0
    for d in range(points.shape[1]):
        sums = np.bincount(labels, weights=weights * points[:, d], minlength=k)
        out[filled, d] = sums[filled] / total[filled]
    return out


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of each point's nearest centre (squared distance; lowest index on ties), every distance computed."""
    out = np.empty(len(points), dtype=np.int64)
    for start in range(0, len(points), _BLOCK):
        out[start : start + _BLOCK] = np.argmin(_distances(points[start : start + _BLOCK], centres), axis=1)
    return out


def _dedupe(palette: np.ndarray) -> np.ndarray:
    _, first = np.unique(palette, axis=0, return_index=True)
    return palette if len(first) == len(palette) else palette[np.sort(first)]


def _drop_unused(palette: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    used = np.bincount(indices.reshape(-1), minlength=len(palette)) > 0
    dtype = np.uint8 if used.sum() <= 256 else np.uint16
    if used.all():
        return palette, indices.astype(dtype)
    renumber = (np.cumsum(used) - 1).astype(dtype)
    return palette[used], renumber[indices]


def _diffuse(pixels: np.ndarray, palette: np.ndarray, strength: float, space: str, transparent: int | None) -> np.ndarray:
    """Floyd–Steinberg error diffusion, one anti-diagonal (constant ``x + 2y``) at a time."""
    h, w, c = pixels.shape
    values = to_space(pixels.reshape(-1, c), space).reshape(h, w, c)
    centres = to_space(palette, space)
    level = (1.0 - (1.0 - strength) ** 2) * 15.0 / 16.0
    reach = _OVERSHOOT * (255.0 if space == "rgb" else 1.0)
    low, high = centres.min(axis=0) - reach, centres.max(axis=0) + reach
    hidden = pixels[..., 3] == 0 if transparent is not None else np.zeros((h, w), dtype=bool)
    # An error far above the palette's typical one is damped (as the engine, after libimagequant's 2.4):
    # one far-off entry must not spread a streak.
    plain = centres[_nearest(values.reshape(-1, c), centres)]
    unit = 1.0 if space == "rgb" else 1.0 / 255.0
    large = max(_LARGE_ERROR * float(_rowsum(np.square(values.reshape(-1, c) - plain)).mean()), 16.0 * unit * unit)
    # Error arriving at each pixel, flat: one column of padding each side, one row below.
    stride = w + 2
    error = np.zeros(((h + 1) * stride, c))
    flat_values = values.reshape(-1, c)
    flat_hidden = hidden.reshape(-1)
    out = np.empty(h * w, dtype=np.int64)
    centres32 = centres.astype(np.float32)
    for t in range(w + 2 * (h - 1)):
        # The pixels (y, t - 2y) of this diagonal inside the image.
        ys = np.arange(max(0, (t - w + 2) // 2), min(h - 1, t // 2) + 1)
        xs = t - 2 * ys
        here = ys * w + xs
        at = ys * stride + xs + 1
        target = np.clip(flat_values[here] + error[at], low, high)
        chosen = _nearest_small(target, centres32)
        if transparent is not None:
            hide = flat_hidden[here]
            chosen[hide] = transparent
        out[here] = chosen
        spill = target - centres[chosen]
        size = _rowsum(np.square(spill))
        spill *= (level * np.sqrt(large / np.maximum(size, large)))[:, None]
        if transparent is not None:
            spill[hide] = 0.0
        # Each statement's targets are distinct within the diagonal, so += loses nothing.
        error[at + 1] += spill * (7.0 / 16.0)
        error[at + stride - 1] += spill * (3.0 / 16.0)
        error[at + stride] += spill * (5.0 / 16.0)
        error[at + stride + 1] += spill * (1.0 / 16.0)
    return out.reshape(h, w)


def _nearest_small(points: np.ndarray, centres32: np.ndarray) -> np.ndarray:
    """:func:`_nearest` for a few points, the centres already float32: the same operations in the same order."""
    points = points.astype(np.float32)
    distance = np.square(points[:, None, 0] - centres32[None, :, 0])
    for d in range(1, points.shape[1]):
        distance += np.square(points[:, None, d] - centres32[None, :, d])
    return np.argmin(distance, axis=1)
