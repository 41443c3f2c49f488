"""The textbook method: scikit-learn's ``KMeans`` on the colour histogram (``method="kmeans"``).

The k-means colour-compression exercise of the machine-learning courses, and
the tutorials kvq grew from, cluster an image's pixels with
``sklearn.cluster.KMeans``. This module is that method, made a real encoder
option so that its result can be stored, measured and compared with kvq's own
engine (``method="kvq"``, the default):

- ``KMeans(n_clusters=K, init="k-means++", n_init=1, max_iter=300, tol=1e-4,
  random_state=seed)``, scikit-learn's defaults but for the seed, fitted on
  the image's distinct colours with their pixel counts as ``sample_weight``:
  the same objective as every pixel on its own, on 10 to 100 times fewer
  points (:class:`kvq.quantize.histogram.Histogram`);
- in the clustering space of ``color_space`` (sRGB bytes, or OKLab);
- one thread (``threadpoolctl``), because scikit-learn's parallel sums and
  BLAS may round differently with another number of threads, and kvq's
  output must be byte-identical on every machine;
- the centres are then rounded to the stored bytes, and each colour takes its
  nearest stored entry, as in kvq's engine, with no further Lloyd rounds
  (:func:`kvq.quantize.palette.round_to_palette` with ``rounds=0``).

What kvq's engine adds (the variance-split start, Hamerly's bounds, the swaps
that leave a local optimum, the rounds on the stored bytes) is measured by
``kvq bench`` beside this method: the peer ``kmeans``.

scikit-learn is imported only here, and this module only when the method is
used.
"""

from __future__ import annotations

import numpy as np

from ..options import EncoderOptions
from .colorspace import from_space, to_space
from .histogram import Histogram
from .nearest import pad
from .palette import round_to_palette

__all__ = ["KMEANS_SETTINGS", "fit"]

#: The KMeans settings besides ``n_clusters`` and ``random_state`` (scikit-learn's defaults for k-means++, written
#: out so that a change of default in a later scikit-learn cannot change kvq's files).
KMEANS_SETTINGS = {"init": "k-means++", "n_init": 1, "max_iter": 300, "tol": 1e-4, "algorithm": "lloyd"}


def fit(hist: Histogram, k: int, options: EncoderOptions) -> tuple[np.ndarray, np.ndarray]:
    """Palette of at most ``k`` colours by scikit-learn's ``KMeans``, and each distinct colour's nearest entry.

    Parameters
    ----------
    hist : Histogram
        The image's distinct colours and their pixel counts; more than ``k``
        colours (fewer are stored as they are, before any method runs).
    k : int
    options : EncoderOptions
        Uses ``color_space`` and ``seed`` (KMeans's ``random_state``).

    Returns
    -------
    palette : ndarray of uint8, shape (K', C)
        K' <= k; no two rows equal.
    labels : ndarray of int64, shape (N,)
        The nearest entry of every distinct colour (lowest index on ties).
    """
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    colours = hist.colours
    space = options.color_space
    # The transparent colour keeps an entry of its own, as in kvq's engine: fit the visible colours with one fewer.
    n_fixed = 1 if hist.transparent else 0
    free = k - n_fixed
    points = to_space(colours, space)
    weights = hist.counts.astype(np.float64)
    if free == 0:
        return colours[:1], np.zeros(len(colours), dtype=np.int64)
    model = KMeans(n_clusters=free, random_state=options.seed, **KMEANS_SETTINGS)
    with threadpool_limits(limits=1):
        model.fit(points[n_fixed:], sample_weight=weights[n_fixed:])
    palette = np.concatenate([colours[:n_fixed], from_space(model.cluster_centers_, space, hist.channels)])
    return round_to_palette(pad(points), weights, palette, space, 0, n_fixed, None)
