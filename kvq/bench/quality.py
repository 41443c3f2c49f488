"""Quality measures of the suite: PSNR, SSIM and mean CIEDE2000 colour difference.

All three are computed at full resolution. ΔE2000 is computed in blocks of
rows so that its float64 Lab buffers stay small for large images. SSIM is
scikit-image's (uniform 7×7 window, data range 255), averaged over channels.

RGBA images are measured on **premultiplied** colour: R, G and B each times
A / 255, beside A itself. A pixel counts as much as it shows: the colour of a
fully transparent pixel, which no viewer shows and which codecs are free to
change, counts for nothing, while a change of alpha always counts. (Straight
RGBA was reported to score pngquant's logo 15.9 dB where its visible pixels
are at 60.6 dB.) Grey and RGB images are compared as they are.
"""

from __future__ import annotations

import math

import numpy as np

from .. import metrics

__all__ = ["delta_e2000", "premultiplied", "psnr", "ssim"]

_BLOCK_PIXELS = 1 << 20


def premultiplied(pixels: np.ndarray) -> np.ndarray:
    """RGBA with R, G, B multiplied by A / 255, as float64; other images as float64 unchanged.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (..., C)

    Returns
    -------
    ndarray of float64, same shape
    """
    out = pixels.astype(np.float64)
    if pixels.shape[-1] == 4:
        out[..., :3] *= out[..., 3:] / 255.0
    return out


def psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    """PSNR in dB (peak 255), RGBA on premultiplied colour; ``inf`` when nothing visible differs.

    Parameters
    ----------
    original, decoded : ndarray of uint8, shape (H, W, C)

    Returns
    -------
    float
    """
    if original.shape[-1] != 4:
        return metrics.psnr(original, decoded)
    if original.shape != decoded.shape:
        raise ValueError(f"shapes differ: {original.shape} and {decoded.shape}")
    flat_a, flat_b = original.reshape(-1, 4), decoded.reshape(-1, 4)
    total = 0.0
    # Blocks keep the float64 buffers small for 100-megapixel images.
    for start in range(0, len(flat_a), _BLOCK_PIXELS):
        stop = start + _BLOCK_PIXELS
        diff = premultiplied(flat_a[start:stop]) - premultiplied(flat_b[start:stop])
        total += float(np.einsum("ij,ij->", diff, diff))
    error = total / flat_a.size
    return math.inf if error == 0 else 10 * math.log10(255.0**2 / error)


def ssim(original: np.ndarray, decoded: np.ndarray) -> float:
    """Mean structural similarity of two (H, W, C) uint8 images, RGBA on premultiplied colour.

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
    if original.shape[2] == 4:
        a, b = premultiplied(original), premultiplied(decoded)
        return float(structural_similarity(a, b, channel_axis=2, data_range=255))
    return float(structural_similarity(original, decoded, channel_axis=2, data_range=255))


def delta_e2000(original: np.ndarray, decoded: np.ndarray) -> float:
    """Mean CIEDE2000 difference between two (H, W, C) uint8 sRGB images.

    Grey images are compared as grey sRGB. RGBA images are compared on
    premultiplied colour, which is the image shown over black: a transparent
    pixel is black on both sides whatever its stored colour.

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
    if block.shape[2] == 4:
        # rgb2lab takes floats in 0..1.
        return premultiplied(block)[:, :, :3] / 255.0
    return block[:, :, :3]
