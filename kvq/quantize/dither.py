"""Error diffusion onto a fixed palette: serpentine Floyd–Steinberg, edge-aware, with a strength.

Modelled on libimagequant's remapping (``remap.c``):

- **Serpentine scan.** Rows alternate left-to-right and right-to-left, so the
  error never drifts one way and no diagonal "worms" form.
- **A dither map** says how much each pixel may be dithered (0..255).
  Dithering across an edge makes it jagged, and noisy areas are dithered by
  nature, so the map is low where the image's second differences are large
  (edges and noise; thin lines are removed from the map by an opening), and
  it is scaled by how uniform the *undithered* result is around the pixel:
  a long run of one palette entry (a flat area or a band in a gradient) is
  where dithering pays, a busy mix of entries is where it only adds noise.
- **Damped error.** Each pixel receives its neighbours' error times the
  level (``1 - (1 - strength)²``, libimagequant's curve, times 15/16 so
  that small errors do not pile up) times its dither map value; an error
  much larger than the palette's own typical error is damped, so a single
  far-off entry cannot spread a streak; negligible errors are not diffused.
- The target colour (pixel plus received error) may overshoot the colour
  cube by a little, not more, so saturated colours do not smear.

The nearest entry of each target comes from the shared search
(:mod:`.nearest`), starting from the pixel's undithered entry. Everything
runs in the clustering space (bytes for ``"rgb"``, OKLab for ``"oklab"``),
row strip by row strip, in one compiled sequential scan: the result does not
depend on the machine or thread count.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel
from .colorspace import to_space
from .nearest import Nearest, pad, search_one

#: Pixels per strip: the float64 working copy of a strip is 32 bytes a pixel.
_STRIP_PIXELS = 1 << 20
# Allowed overshoot of the target colour beyond the colour cube, as a
# fraction of the cube's edge (libimagequant: 1.1 and -0.1).
_OVERSHOOT = 0.1
# Errors above this multiple of the palette's mean squared error (per
# pixel) are damped; libimagequant uses 2.4.
_LARGE_ERROR = 2.4
# Squared errors below this (in byte units) are not diffused.
_NEGLIGIBLE = 2.0 / 256.0 * 255.0**2 / 256.0
# Second differences (bytes, the larger of the two directions) at which the
# dither map reaches zero.
_EDGE = 255.0


def diffuse(
    pixels: np.ndarray,
    palette: np.ndarray,
    plain: np.ndarray,
    strength: float,
    space: str,
    transparent: int | None = None,
) -> np.ndarray:
    """Map pixels to palette indices with edge-aware serpentine error diffusion.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, C)
        Alpha-0 pixels already set to (0, 0, 0, 0).
    palette : ndarray of uint8, shape (K, C)
    plain : ndarray of int, shape (H, W)
        Each pixel's nearest entry (the undithered mapping).
    strength : float
        0 < strength <= 1.
    space : {"rgb", "oklab"}
        Where errors are measured and diffused.
    transparent : int or None
        Index of the fully transparent entry. Pixels with alpha 0 always take
        it and neither pass on nor receive error, so invisible colours cannot
        bleed into visible ones.

    Returns
    -------
    ndarray, shape (H, W)
        Same dtype as ``plain``.
    """
    h, w, c = pixels.shape
    dtype = plain.dtype
    nearest = Nearest(pad(to_space(palette, space)))
    level = (1.0 - (1.0 - strength) ** 2) * 15.0 / 16.0
    # The palette's typical error, in the clustering space, sets what counts
    # as a large error.
    plain_flat = plain.reshape(-1)
    unit = 1.0 if space == "rgb" else 1.0 / 255.0
    sample = slice(None, None, max(1, (h * w) // 65536))
    values = pad(to_space(pixels.reshape(-1, c)[sample], space))
    mse = float(((values - nearest.centres[plain_flat[sample]]) ** 2).sum(axis=1).mean())
    large = max(_LARGE_ERROR * mse, 16.0 * unit * unit)
    negligible = _NEGLIGIBLE * unit * unit
    reach = _OVERSHOOT * 255.0 * unit
    low, high = _cube(space, c)
    # One index type for every palette size: one compiled scan, not two.
    plain = plain.astype(np.uint16, copy=False)
    dither_map = _dither_map(pixels, plain)
    out = np.empty((h, w), dtype=np.uint16)
    # Error arriving at the current and the next row, one column of padding
    # each side.
    this_row = np.zeros((w + 2, 4))
    next_row = np.zeros((w + 2, 4))
    hidden = pixels[..., 3] == 0 if transparent is not None else np.zeros((h, w), dtype=bool)
    rows = max(1, _STRIP_PIXELS // w)
    for top in range(0, h, rows):
        bottom = min(h, top + rows)
        strip = pad(to_space(pixels[top:bottom].reshape(-1, c), space)).reshape(bottom - top, w, 4)
        _scan(
            strip, dither_map[top:bottom], plain[top:bottom], hidden[top:bottom], top,
            *nearest.table, -1 if transparent is None else transparent,
            level, large, negligible, low - reach, high + reach, this_row, next_row, out[top:bottom],
        )  # fmt: skip
    return out.astype(dtype, copy=False)


def _cube(space: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper ends of each coordinate over all byte colours."""
    if space == "rgb":
        low, high = np.zeros(4), np.zeros(4)
        high[:channels] = 255.0
        return low, high
    grid = np.linspace(0, 255, 18).round().astype(np.uint8)
    if channels == 1:
        corners = grid[:, None]
    else:
        corners = np.stack(np.meshgrid(grid, grid, grid), axis=-1).reshape(-1, 3)
        if channels == 4:
            corners = np.concatenate([corners, np.full((len(corners), 1), 255, np.uint8)], axis=1)
            corners = np.concatenate([corners, np.zeros_like(corners)])
    points = pad(to_space(corners, "oklab"))
    return points.min(axis=0), points.max(axis=0)


@kernel
def _scan(
    values: np.ndarray,
    dither_map: np.ndarray,
    plain: np.ndarray,
    hidden: np.ndarray,
    first_row: int,
    centres: np.ndarray,
    neighbours: np.ndarray,
    gaps: np.ndarray,
    radius: np.ndarray,
    transparent: int,
    level: float,
    large: float,
    negligible: float,
    low: np.ndarray,
    high: np.ndarray,
    this_row: np.ndarray,
    next_row: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    rows, width = plain.shape
    target = np.empty(4)
    error = np.empty(4)
    for y in range(rows):
        forward = (first_row + y) % 2 == 0
        for x in range(width + 2):
            for ch in range(4):
                next_row[x, ch] = 0.0
        for step in range(width):
            x = step if forward else width - 1 - step
            if hidden[y, x]:
                out[y, x] = transparent
                continue
            # Error received, scaled by the level and the dither map.
            scale = level * dither_map[y, x] / 255.0
            received = 0.0
            for ch in range(4):
                error[ch] = this_row[x + 1, ch] * scale
                received += error[ch] * error[ch]
            if received < negligible:
                for ch in range(4):
                    target[ch] = values[y, x, ch]
            else:
                # Shorten the error so the target stays near the colour cube.
                ratio = 1.0
                for ch in range(4):
                    v = values[y, x, ch] + error[ch]
                    if v > high[ch] and error[ch] > 0.0:
                        ratio = min(ratio, (high[ch] - values[y, x, ch]) / error[ch])
                    elif v < low[ch] and error[ch] < 0.0:
                        ratio = min(ratio, (low[ch] - values[y, x, ch]) / error[ch])
                if received > large:
                    ratio *= 0.8
                ratio = max(ratio, 0.0)
                for ch in range(4):
                    target[ch] = values[y, x, ch] + error[ch] * ratio
            best = search_one(
                target[0], target[1], target[2], target[3], centres, neighbours, gaps, radius, int(plain[y, x])
            )[0]
            out[y, x] = best
            # The error this pixel passes on: what its target missed by.
            spread = 0.0
            for ch in range(4):
                error[ch] = target[ch] - centres[best, ch]
                spread += error[ch] * error[ch]
            if spread > large:
                for ch in range(4):
                    error[ch] *= 0.75
            ahead = x + 2 if forward else x
            behind = x if forward else x + 2
            for ch in range(4):
                e = error[ch]
                this_row[ahead, ch] += e * (7.0 / 16.0)
                next_row[behind, ch] += e * (3.0 / 16.0)
                next_row[x + 1, ch] += e * (5.0 / 16.0)
                next_row[ahead, ch] += e * (1.0 / 16.0)
        for x in range(width + 2):
            for ch in range(4):
                this_row[x, ch] = next_row[x, ch]


def _dither_map(pixels: np.ndarray, plain: np.ndarray) -> np.ndarray:
    """How much each pixel may be dithered, 0..255 (uint8, shape (H, W))."""
    h, w, _ = pixels.shape
    edges = np.empty((h, w), dtype=np.uint8)
    _edge_map(pixels, edges)
    if h >= 3 and w >= 3:
        # An opening: thin lines of low values (the edges' own halo) stay,
        # isolated high pixels inside noise go.
        spare = np.empty_like(edges)
        _min3(edges, spare)
        _max3(spare, edges)
    _uniformity(plain, edges)
    return edges


@kernel
def _edge_map(pixels: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """255 where the image is smooth, falling to 0 at sharp edges and in noise."""
    h, w, c = pixels.shape
    for y in range(h):
        up = max(y - 1, 0)
        down = min(y + 1, h - 1)
        for x in range(w):
            left = max(x - 1, 0)
            right = min(x + 1, w - 1)
            horizontal = 0.0
            vertical = 0.0
            for ch in range(c):
                centre = 2.0 * pixels[y, x, ch]
                horizontal = max(horizontal, abs(float(pixels[y, left, ch]) + pixels[y, right, ch] - centre))
                vertical = max(vertical, abs(float(pixels[up, x, ch]) + pixels[down, x, ch] - centre))
            edge = max(horizontal, vertical)
            out[y, x] = int(max(0.0, 255.0 * (1.0 - edge / _EDGE)))


@kernel
def _min3(src: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    h, w = src.shape
    for y in range(h):
        for x in range(w):
            v = 255
            for dy in range(max(y - 1, 0), min(y + 2, h)):
                for dx in range(max(x - 1, 0), min(x + 2, w)):
                    v = min(v, src[dy, dx])
            out[y, x] = v


@kernel
def _max3(src: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    h, w = src.shape
    for y in range(h):
        for x in range(w):
            v = 0
            for dy in range(max(y - 1, 0), min(y + 2, h)):
                for dx in range(max(x - 1, 0), min(x + 2, w)):
                    v = max(v, src[dy, dx])
            out[y, x] = v


@kernel
def _uniformity(plain: np.ndarray, dither_map: np.ndarray) -> None:  # pragma: no cover - compiled
    """Scale the map by how uniform the undithered result is (libimagequant's ``update_dither_map``).

    Each horizontal run of one entry scores 10 per pixel plus 15 for every
    pixel above or below it with the same entry; the run's pixels keep
    ``(map + 128) / 383 * (1 - 20 / (20 + score))`` of the dithering.
    """
    h, w = plain.shape
    for y in range(h):
        start = 0
        while start < w:
            entry = plain[y, start]
            stop = start + 1
            while stop < w and plain[y, stop] == entry:
                stop += 1
            score = 10 * (stop - start)
            for x in range(start, stop):
                if y > 0 and plain[y - 1, x] == entry:
                    score += 15
                if y < h - 1 and plain[y + 1, x] == entry:
                    score += 15
            keep = 1.0 - 20.0 / (20.0 + score)
            for x in range(start, stop):
                dither_map[y, x] = int((dither_map[y, x] + 128.0) * (255.0 / 383.0) * keep)
            start = stop
