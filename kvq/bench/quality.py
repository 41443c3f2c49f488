"""Quality measures of the suite: PSNR, SSIM and mean CIEDE2000 colour difference.

All three are computed at full resolution. ΔE2000 is computed in blocks of
rows so that its float64 Lab buffers stay small for large images. SSIM is
scikit-image's (uniform 7×7 window, data range 255), averaged over channels.
"""

from __future__ import annotations

import math

import numpy as np

from ..metrics import psnr

__all__ = ["delta_e2000", "psnr", "ssim"]

_BLOCK_PIXELS = 1 << 20


def ssim(original: np.ndarray, decoded: np.ndarray) -> float:
    """Mean structural similarity of two (H, W, C) uint8 images.

    Parameters
    ----------
    original, decoded : ndarray of uint8, shape (H, W, C)

    Returns
    -------
    float
        1.0 for identical images; NaN when a side is shorter than SSIM's
        7-pixel window.
    """
    from skimage.metrics import structural_similarity

    if original.shape != decoded.shape:
        raise ValueError(f"shapes differ: {original.shape} and {decoded.shape}")
    if min(original.shape[:2]) < 7:
        return math.nan
    if original.shape[2] == 1:
        return float(structural_similarity(original[:, :, 0], decoded[:, :, 0], data_range=255))
    return float(structural_similarity(original, decoded, channel_axis=2, data_range=255))


def delta_e2000(original: np.ndarray, decoded: np.ndarray) -> float:
    """Mean CIEDE2000 difference between two (H, W, C) uint8 sRGB images.

    Grey images are compared as grey sRGB; alpha is ignored (ΔE measures
    colour only).

    Parameters
    ----------
    original, decoded : ndarray of uint8, shape (H, W, C)

    Returns
    -------
    float
    """
    from skimage.color import deltaE_ciede2000, rgb2lab

    if original.shape != decoded.shape:
        raise ValueError(f"shapes differ: {original.shape} and {decoded.shape}")
    height, width, _ = original.shape
    rows = max(1, _BLOCK_PIXELS // width)
    total = 0.0
    for top in range(0, height, rows):
        a = _rgb(original[top : top + rows])
        b = _rgb(decoded[top : top + rows])
        total += float(deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).sum())
    return total / (height * width)


def _rgb(block: np.ndarray) -> np.ndarray:
    if block.shape[2] == 1:
        block = np.repeat(block, 3, axis=2)
    return block[:, :, :3]
