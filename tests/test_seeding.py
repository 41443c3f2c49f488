"""kvq's k-means++ seeding is scikit-learn's, bit for bit, without importing scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from kvq.seeding import kmeans_plusplus


@pytest.mark.parametrize(
    ("n", "k", "dims", "seed"),
    [(1000, 64, 3, 0), (20_000, 256, 3, 7), (300, 1, 4, 0), (20, 20, 1, 3), (5000, 17, 4, 11)],
)
def test_same_centres_as_scikit_learn(n: int, k: int, dims: int, seed: int) -> None:
    from sklearn.cluster import kmeans_plusplus as sklearn_kmeans_plusplus

    rng = np.random.default_rng(n + k)
    x = rng.random((n, dims)) * 255
    weights = rng.integers(1, 100, n).astype(np.float64)
    expected, _ = sklearn_kmeans_plusplus(x, k, sample_weight=weights, random_state=np.random.RandomState(seed))
    assert np.array_equal(kmeans_plusplus(x, k, weights, seed), expected)


def test_photo_colours_match_scikit_learn(photo: np.ndarray) -> None:
    from sklearn.cluster import kmeans_plusplus as sklearn_kmeans_plusplus

    colours, counts = np.unique(photo.reshape(-1, 3), axis=0, return_counts=True)
    x, w = colours.astype(np.float64), counts.astype(np.float64)
    expected, _ = sklearn_kmeans_plusplus(x, 64, sample_weight=w, random_state=np.random.RandomState(0))
    assert np.array_equal(kmeans_plusplus(x, 64, w, 0), expected)


def test_rejects_more_centres_than_points() -> None:
    with pytest.raises(ValueError, match="between 1 and the number of points"):
        kmeans_plusplus(np.zeros((3, 3)), 4, np.ones(3), 0)
