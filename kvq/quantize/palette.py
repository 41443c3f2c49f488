"""The stored palette: centres rounded to bytes, repeated entries merged, unused ones dropped.

Centres live in the clustering space as floats; the file stores bytes. The
last Lloyd rounds therefore run on the stored bytes themselves, so that the
final labels are the nearest *stored* entries (exact, lowest index on ties),
and the palette ends with no two equal rows and every row used.
"""

from __future__ import annotations

import numpy as np

from ..bitpack import count_values
from .colorspace import from_space, to_space
from .lloyd import update_centres
from .nearest import Nearest, pad


def round_to_palette(
    points: np.ndarray,
    weights: np.ndarray,
    palette: np.ndarray,
    space: str,
    rounds: int,
    n_fixed: int,
    guess: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd rounds on the stored palette bytes, ending with exact labels.

    Each round maps every distinct colour to its nearest stored entry, moves
    each entry to the mean of its colours and rounds it to bytes again, until
    the bytes stop changing or ``rounds`` is reached. Repeated entries are
    merged before each mapping.

    Parameters
    ----------
    points : ndarray of float64, shape (N, 4)
        The distinct colours in the clustering space, padded.
    weights : ndarray of float64, shape (N,)
        Their pixel counts.
    palette : ndarray of uint8, shape (K, C)
    space : {"rgb", "oklab"}
    rounds : int
    n_fixed : int
        The first ``n_fixed`` entries never move (the transparent entry).
    guess : ndarray of int, shape (N,), or None
        A guess of each colour's entry, as for :meth:`Nearest.search`.

    Returns
    -------
    palette : ndarray of uint8, shape (K', C)
        No two rows equal; some may be unused.
    labels : ndarray of int64, shape (N,)
        The nearest entry of every colour (lowest index on ties).
    """
    channels = palette.shape[1]
    labels = np.zeros(len(points), dtype=np.int64)
    nearest: Nearest | None = None
    for step in range(rounds + 1):
        palette = dedupe(palette)
        centres = pad(to_space(palette, space))
        if nearest is not None and len(centres) == len(nearest.centres):
            # Rounds move entries a little: the search follows them.
            nearest.follow(centres, np.sqrt(((centres - nearest.centres) ** 2).sum(axis=1)))
        else:
            nearest = Nearest(centres)
        labels = nearest.search(points, guess)
        guess = labels
        if step == rounds:
            break
        means = np.empty_like(centres)
        update_centres(points, weights, labels, centres, means, np.empty(len(centres)))
        moved = palette.copy()
        moved[n_fixed:] = from_space(means[n_fixed:, :channels], space, channels)
        if np.array_equal(moved, palette):
            break
        palette = moved
    return palette, labels


def dedupe(palette: np.ndarray) -> np.ndarray:
    """Remove repeated rows, keeping first occurrences in order (so a fixed first entry stays first)."""
    _, first = np.unique(palette, axis=0, return_index=True)
    if len(first) == len(palette):
        return palette
    return palette[np.sort(first)]


def drop_unused(palette: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove the entries no index uses and renumber the indices, keeping the entries' order.

    Dropping an entry nobody picked changes nobody's nearest entry, so exact
    nearest-entry labels stay exact.

    Parameters
    ----------
    palette : ndarray of uint8, shape (K, C)
    indices : ndarray of int, any shape
        Values below K.

    Returns
    -------
    palette : ndarray of uint8, shape (K', C)
    indices : ndarray, shape of the input
        uint8 when K' <= 256, else uint16.
    """
    used = count_values(indices, len(palette)) > 0
    dtype = np.uint8 if used.sum() <= 256 else np.uint16
    if used.all():
        return palette, indices.astype(dtype, copy=False)
    renumber = (np.cumsum(used) - 1).astype(dtype)
    return palette[used], renumber[indices]
