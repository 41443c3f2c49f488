"""Palette engine: pixels -> (palette, indices).

Split by layer, as libimagequant is (``pam``, ``mediancut``, ``nearest``,
``kmeans``, remapping and dithering)::

    histogram.py    pixels -> distinct colours and their counts; coarser buckets
    initialise.py   greedy variance split of the histogram: the first centres
    lloyd.py        weighted Lloyd iterations with Hamerly's bounds
    swap.py         leaving a Lloyd optimum: remove the cheapest centre, split the richest cluster
    nearest.py      THE nearest-entry search, used by Lloyd, the final mapping and dithering
    palette.py      rounding to stored bytes, merging repeats, dropping unused entries
    dither.py       serpentine, edge-aware error diffusion with a strength
    colorspace.py   sRGB <-> OKLab
    sklearn_kmeans.py  the textbook method instead of the engine: scikit-learn's KMeans (``method="kmeans"``)

:func:`quantize` runs them in that order. The work is sized by a
:class:`Profile` per ``speed``: the start, most Lloyd iterations and the swaps
run on a *coarse* histogram (colours merged into byte buckets, a few
thousand points), the last Lloyd iterations on the full one, and the final
rounds on the stored bytes with exact nearest-entry labels.

Every choice is deterministic (no random numbers at all), sums run
sequentially in a fixed order inside compiled kernels, and the final labels
are exact for byte colours, so the same input and options give the same
bytes on every machine and thread count. The compiled kernels (numba) are
cached on disk after their first use, keyed on their sources (:mod:`kvq._jit`);
:func:`start` compiles or loads them ahead of the work.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..errors import OptionError, UnsupportedImageError
from ..options import EncoderOptions
from .colorspace import from_space, to_space

if TYPE_CHECKING:
    from .histogram import Histogram

# The engine's layers (histogram ... swap) are imported where they run: they
# load numba, and a small image never needs them (see .small).

__all__ = ["PROFILES", "Profile", "quantize", "start"]


@dataclass(frozen=True)
class Profile:
    """How much work one ``speed`` setting spends, stage by stage.

    Attributes
    ----------
    coarse_points : int
        Largest histogram the coarse stage (start, Lloyd, swaps) runs on;
        bigger ones are merged into byte buckets first.
    fine_points : int
        Largest histogram the fine Lloyd iterations run on (likewise).
    coarse_iterations : int
        Most Lloyd iterations on the coarse histogram.
    swap_rounds : int
        Most swap attempts (:func:`.swap.swap_refine`).
    swaps_per_centre : float
        Swaps tried together at first, per centre (at least one).
    settle : int
        Lloyd iterations after each swap attempt.
    fine_iterations : int
        Most Lloyd iterations on the fine histogram.
    palette_rounds : int
        Most Lloyd rounds on the stored bytes.
    tolerance : float
        Lloyd stops once no centre moves more than this fraction of the
        data's extent (2e-4 is a twentieth of a byte in RGB).
    """

    coarse_points: int
    fine_points: int
    coarse_iterations: int
    swap_rounds: int
    swaps_per_centre: float
    settle: int
    fine_iterations: int
    palette_rounds: int
    tolerance: float


#: The work of each speed, 1 (slowest, best palette) to 10 (fastest).
PROFILES: dict[int, Profile] = {
    1: Profile(1 << 17, 1 << 21, 300, 100, 1 / 16, 4, 100, 20, 1e-5),
    2: Profile(1 << 16, 1 << 20, 200, 50, 1 / 16, 3, 50, 10, 2e-5),
    3: Profile(1 << 15, 1 << 19, 100, 20, 1 / 8, 3, 20, 5, 1e-4),
    4: Profile(1 << 14, 1 << 18, 30, 8, 1 / 8, 2, 10, 3, 5e-4),
    5: Profile(1 << 13, 1 << 17, 25, 4, 1 / 8, 2, 6, 2, 1e-3),
    6: Profile(1 << 12, 1 << 16, 20, 2, 1 / 8, 2, 4, 1, 2e-3),
    7: Profile(1 << 11, 1 << 15, 15, 1, 1 / 8, 1, 3, 1, 4e-3),
    8: Profile(1 << 11, 1 << 14, 10, 0, 1 / 8, 0, 2, 1, 8e-3),
    9: Profile(1 << 10, 1 << 13, 6, 0, 1 / 8, 0, 1, 0, 1.6e-2),
    10: Profile(1 << 9, 1 << 12, 3, 0, 1 / 8, 0, 0, 0, 3e-2),
}


def quantize(pixels: np.ndarray, options: EncoderOptions) -> tuple[np.ndarray, np.ndarray]:
    """Choose a palette for ``pixels`` and map every pixel to it.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, C)
        C is 1 (grey), 3 (RGB) or 4 (RGBA).
    options : EncoderOptions
        Uses ``k``, ``color_space``, ``dither`` and ``speed``.

    Returns
    -------
    palette : ndarray of uint8, shape (K, C)
        1 <= K <= options.k, no two rows equal, every row used by some pixel.
    indices : ndarray of uint8 or uint16, shape (H, W)
        uint8 when K <= 256, else uint16; every value < K.

    Raises
    ------
    OptionError
        ``options.quality`` is set: a quality target is the encoder's
        (:func:`kvq.encode_image`, which measures the file a decoder reads).
    UnsupportedImageError
        ``pixels`` is not an (H, W, C) uint8 array with C in {1, 3, 4}.

    Notes
    -----
    Without dithering every pixel gets the index of its nearest palette entry:
    squared byte distance over all channels for ``color_space="rgb"``, squared
    OKLab distance (alpha appended as alpha/255) to the OKLab value of the
    stored sRGB entry for ``"oklab"``; ties go to the lowest index. With
    alpha the colour is premultiplied (times alpha/255) in either space, so
    the palette is chosen on the error a viewer sees over a background. Pixels with
    alpha 0 are treated as (0, 0, 0, 0) and all share one such entry. kvq's
    engine draws no random numbers: ``seed`` does not change its result.
    ``method="kmeans"`` chooses the palette with scikit-learn's ``KMeans``
    instead (:mod:`.sklearn_kmeans`, seeded by ``seed``); the rest is the same.
    """
    if options.quality is not None:
        raise OptionError("a quality target is the encoder's: kvq.encode_image finds the palette that reaches it")
    pixels = _check_pixels(pixels)
    if not uses_kernels(pixels.shape, options):
        from .small import quantize_small

        return quantize_small(pixels, options)
    return _quantize_compiled(pixels, options)


def _quantize_compiled(pixels: np.ndarray, options: EncoderOptions) -> tuple[np.ndarray, np.ndarray]:
    """:func:`quantize` with the compiled kernels, whatever the image's size (checked pixels, no quality target)."""
    h, w, _ = pixels.shape
    from .histogram import Histogram
    from .palette import drop_unused

    hist = Histogram(pixels)
    palette, labels = _fit(hist, options.k, options)
    if options.dither > 0 and len(palette) > 1:
        from .dither import diffuse

        transparent = None
        if hist.transparent:
            transparent = int(np.flatnonzero((palette == 0).all(axis=1))[0])
        plain = hist.expand(labels.astype(np.uint16 if len(palette) > 256 else np.uint8)).reshape(h, w)
        indices = diffuse(hist.canonical_pixels(pixels), palette, plain, options.dither, options.color_space, transparent)
    else:
        indices = hist.expand(labels.astype(np.uint16 if len(palette) > 256 else np.uint8)).reshape(h, w)
    return drop_unused(palette, indices)


def uses_kernels(shape: tuple[int, ...], options: EncoderOptions) -> bool:
    """Whether :func:`quantize` runs compiled kernels for an image of ``shape`` with ``options``.

    Images whose pixels times K is at most :data:`.small.SMALL_WORK` take
    the numpy path of :mod:`.small` with kvq's engine: loading the kernels
    would cost more than the work. The choice depends on the size and K
    only, never on the machine.

    Parameters
    ----------
    shape : tuple of int
        (H, W) or (H, W, C).
    options : EncoderOptions

    Returns
    -------
    bool
    """
    from .small import SMALL_WORK

    return options.method == "kmeans" or shape[0] * shape[1] * options.k > SMALL_WORK


def _check_pixels(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
        raise UnsupportedImageError(f"pixels must be an (H, W, C) uint8 array with C in 1, 3, 4; got {pixels.dtype} {pixels.shape}")
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise UnsupportedImageError(f"image has no pixels: shape {pixels.shape}")
    return np.ascontiguousarray(pixels)


def _fit(hist: Histogram, k: int, options: EncoderOptions) -> tuple[np.ndarray, np.ndarray]:
    """Palette of at most ``k`` colours and the index of each distinct colour's nearest entry."""
    from .histogram import coarser
    from .initialise import variance_split
    from .lloyd import Lloyd
    from .nearest import pad
    from .palette import round_to_palette
    from .swap import swap_refine

    colours = hist.colours
    if len(colours) <= k:
        return colours, np.arange(len(colours))
    if options.method == "kmeans":
        from .sklearn_kmeans import fit

        return fit(hist, k, options)
    space, profile = options.color_space, PROFILES[options.speed]
    # The transparent entry is fixed: fit the visible colours with one fewer.
    n_fixed = 1 if hist.transparent else 0
    free = k - n_fixed
    points = pad(to_space(colours, space))
    weights = hist.counts.astype(np.float64)
    if free == 0:
        return colours[:1], np.zeros(len(colours), dtype=np.int64)
    visible, visible_points, visible_weights = colours[n_fixed:], points[n_fixed:], weights[n_fixed:]
    extent = float(np.ptp(visible_points, axis=0).max())
    tol = profile.tolerance * extent

    # Both stages keep some points per centre: a fine stage smaller than the
    # coarse one would cap the palette (speed 10 at K = 8192 gave 3,091 colours).
    fine, fine_weights, fine_of = coarser(visible, visible_points, visible_weights, max(profile.fine_points, 16 * free))
    # The coarse stage keeps some points per centre, or there is nothing to cluster.
    coarse, coarse_weights, coarse_of = coarser(visible, visible_points, visible_weights, max(profile.coarse_points, 16 * free))
    if len(coarse) < 4 * free:
        coarse, coarse_weights, coarse_of = fine, fine_weights, fine_of
    centres, labels = variance_split(coarse, coarse_weights, free)
    state = Lloyd(coarse, coarse_weights, centres, labels)
    state.run(profile.coarse_iterations, tol)
    batch = max(1, round(free * profile.swaps_per_centre))
    swap_refine(state, profile.swap_rounds, batch, profile.settle)
    if len(fine) > len(coarse):
        guess = np.empty(len(fine), dtype=np.int64)
        guess[fine_of] = state.labels[coarse_of]
        state = Lloyd(fine, fine_weights, state.nearest, guess)
        state.run(profile.fine_iterations, tol)
        by_colour = state.labels[fine_of]
    else:
        by_colour = state.labels[coarse_of]
    palette = np.concatenate([colours[:n_fixed], from_space(state.centres[:, : hist.channels], space, hist.channels)])
    guess = np.concatenate([np.zeros(n_fixed, dtype=np.int64), by_colour + n_fixed])
    return round_to_palette(points, weights, palette, space, profile.palette_rounds, n_fixed, guess)


def start(options: EncoderOptions | None = None) -> None:
    """Compile, or load from numba's cache, the kernels :func:`quantize` runs with ``options``.

    The first run after an install compiles them; later runs load them from
    numba's cache.
    The ``kvq`` command calls this before its first file, so that no timer,
    progress line or per-file time includes the compiling; a program that
    times its encodes can do the same.

    Parameters
    ----------
    options : EncoderOptions, optional
        The options the work will use (their dithering and colour space pick
        kernels); default :class:`EncoderOptions`'s.
    """
    options = options or EncoderOptions()
    # Which kernels run, and with which types, depends on the image having
    # more colours than K (fewer is the lossless path, which clusters
    # nothing), on K (a palette above 256 entries takes uint16 indices) and
    # on the channels (grey, RGB, RGBA with transparent pixels): a 32 x 32
    # image of 1,024 distinct colours, clustered at a few K up to the
    # options' K, in each channel layout, reaches every specialisation a
    # photo's encode does, so no first file compiles inside its own time.
    i, j = np.indices((32, 32))
    rgb = np.stack([8 * i + j % 8, 8 * j + i % 8, (37 * i * j + 11 * i) % 256], axis=2).astype(np.uint8)
    rgba = np.concatenate([rgb, np.where((i + j) % 5 == 0, 0, 255 - i).astype(np.uint8)[..., None]], axis=2)
    grey = rgb[..., :1]
    for k in sorted({min(options.k, k) for k in (2, 16, 256, 1024)}):
        for pixels in (rgb, rgba, grey):
            # The compiled path itself: images this small take the numpy path in quantize (uses_kernels).
            _quantize_compiled(pixels, replace(options, k=k, quality=None))
