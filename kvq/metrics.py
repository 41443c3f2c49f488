"""Quality measures shared by the CLI, the tests and the benchmarks."""

from __future__ import annotations

import math

import numpy as np


def mse(original: np.ndarray, decoded: np.ndarray) -> float:
    """Mean squared error over every sample of two same-shaped uint8 images.

    Parameters
    ----------
    original, decoded : ndarray of uint8

    Returns
    -------
    float
    """
    if original.shape != decoded.shape:
        raise ValueError(f"shapes differ: {original.shape} and {decoded.shape}")
    total = 0
    flat_a = original.reshape(-1)
    flat_b = decoded.reshape(-1)
    # Blocks keep the int64 difference buffer small for 100-megapixel images.
    step = 1 << 22
    for start in range(0, flat_a.size, step):
        diff = flat_a[start : start + step].astype(np.int64) - flat_b[start : start + step]
        total += int(np.dot(diff, diff))
    return total / flat_a.size


def psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB (peak 255); ``inf`` for identical images.

    Parameters
    ----------
    original, decoded : ndarray of uint8

    Returns
    -------
    float
    """
    error = mse(original, decoded)
    return math.inf if error == 0 else 10 * math.log10(255.0**2 / error)
