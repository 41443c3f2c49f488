"""Greedy weighted k-means++ seeding, the quantizer's second start.

This is scikit-learn's ``sklearn.cluster.kmeans_plusplus`` (Arthur and
Vassilvitskii's k-means++ with ``2 + log(k)`` greedy local trials), restated
on dense float64 arrays: the same draws from the same ``RandomState``, the
same distance arithmetic in the same order, so it returns the same centres
bit for bit (``tests/test_seeding.py`` checks that against scikit-learn).

Why not call scikit-learn: importing ``sklearn.cluster`` takes about 0.8 s
(it pulls in scipy.stats and most of scikit-learn), four times what encoding
a Kodak photo takes, and it was paid by every ``kvq encode`` process. The
seeding itself is twenty lines of numpy.
"""

from __future__ import annotations

import numpy as np


def kmeans_plusplus(x: np.ndarray, k: int, weights: np.ndarray, seed: int) -> np.ndarray:
    """Choose ``k`` of the points ``x`` as initial centres, by weighted greedy k-means++.

    Parameters
    ----------
    x : ndarray of float64, shape (N, D)
        Points; ``N >= k``.
    k : int
        Number of centres, at least 1.
    weights : ndarray of float64, shape (N,)
        Positive weight of each point (its pixel count).
    seed : int
        Seed of the ``numpy.random.RandomState`` that draws the candidates.

    Returns
    -------
    ndarray of float64, shape (k, D)
        Rows of ``x``, in the order they were chosen.

    Notes
    -----
    The first centre is drawn with probability proportional to its weight;
    each next one is the best (lowest weighted potential) of
    ``2 + int(log(k))`` candidates drawn with probability proportional to
    weight times squared distance to the nearest centre so far. Squared
    distances are computed as ``|a|^2 - 2 a.b + |b|^2`` clipped at 0, as
    scikit-learn does, so that ties and rounding match it exactly.
    """
    x = np.asarray(x, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of points ({n}), not {k}")
    random_state = np.random.RandomState(seed)
    trials = 2 + int(np.log(k))
    norms = np.einsum("ij,ij->i", x, x)
    centres = np.empty((k, x.shape[1]), dtype=np.float64)
    first = random_state.choice(n, p=weights / weights.sum())
    centres[0] = x[first]
    closest = _squared_distances(x[first : first + 1], x, norms)
    potential = closest @ weights
    for c in range(1, k):
        draws = random_state.uniform(size=trials) * potential
        candidates = np.searchsorted(np.cumsum(weights * closest), draws)
        np.clip(candidates, None, closest.size - 1, out=candidates)
        distances = _squared_distances(x[candidates], x, norms)
        np.minimum(closest, distances, out=distances)
        potentials = distances @ weights.reshape(-1, 1)
        best = int(np.argmin(potentials))
        potential = potentials[best]
        closest = distances[best]
        centres[c] = x[candidates[best]]
    return centres


def _squared_distances(a: np.ndarray, x: np.ndarray, x_norms: np.ndarray) -> np.ndarray:
    """Squared distances from each row of ``a`` to every row of ``x``, shape (len(a), N)."""
    a_norms = np.einsum("ij,ij->i", a, a)[:, None]
    out = -2 * (a @ x.T)
    out += a_norms
    out += x_norms.reshape(1, -1)
    np.maximum(out, 0, out=out)
    return out
