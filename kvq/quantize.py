"""Palette engine: pixels -> (palette, indices).

Baseline version: exact palette when the image has at most k colours,
otherwise scikit-learn k-means on the distinct colours weighted by count.
"""

from __future__ import annotations

import numpy as np

from .options import EncoderOptions


def quantize(pixels: np.ndarray, options: EncoderOptions) -> tuple[np.ndarray, np.ndarray]:
    """Choose a palette for ``pixels`` and map every pixel to it.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, C)
        C is 1, 3 or 4.
    options : EncoderOptions

    Returns
    -------
    palette : ndarray of uint8, shape (K, C)
        1 <= K <= options.k.
    indices : ndarray, shape (H, W)
        uint8 when K <= 256, else uint16; every value < K.
    """
    h, w, c = pixels.shape
    flat = pixels.reshape(-1, c)
    keys = np.zeros(flat.shape[0], dtype=np.uint32)
    for ch in range(c):
        keys = (keys << 8) | flat[:, ch]
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    colours = np.stack([(uniq >> (8 * (c - 1 - ch))) & 0xFF for ch in range(c)], axis=1).astype(np.uint8)
    if len(colours) <= options.k:
        palette, labels = colours, np.arange(len(colours))
    else:
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=options.k, n_init=1, random_state=options.seed, max_iter=50)
        km.fit(colours.astype(np.float32), sample_weight=counts)
        palette = np.clip(np.rint(km.cluster_centers_), 0, 255).astype(np.uint8)
        d = ((colours[:, None, :].astype(np.int32) - palette[None, :, :].astype(np.int32)) ** 2).sum(-1)
        labels = d.argmin(1)
    dtype = np.uint8 if len(palette) <= 256 else np.uint16
    return palette, labels.astype(dtype)[inverse].reshape(h, w)
