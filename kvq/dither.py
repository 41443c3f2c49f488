"""Floyd–Steinberg error diffusion onto a fixed palette, without a loop over pixels.

Error diffusion is sequential by nature, but in raster order pixel ``(y, x)``
only waits for ``(y, x-1)`` and ``(y-1, x-1..x+1)``, so every pixel on the
"wavefront" ``x + 2*y = t`` can be processed at once: a Python loop over
``W + 2*H`` wavefronts instead of ``W*H`` pixels. Serpentine order would chain
the end of one row to the start of the next and cannot be split this way, so
the scan is raster order (left to right on every row).
"""

from __future__ import annotations

import numpy as np

# Rows per strip: the float32 working buffer holds one strip, which bounds the
# memory of huge images; strips cost only extra wavefronts (2 per row).
_STRIP_ELEMENTS = 1 << 24


def floyd_steinberg(pixels: np.ndarray, palette: np.ndarray, transparent: int | None = None) -> np.ndarray:
    """Map pixels to palette indices with Floyd–Steinberg error diffusion.

    Error is diffused in the byte space of the image (sRGB and alpha), with
    weights 7/16, 3/16, 5/16 and 1/16, and each pixel takes the palette entry
    nearest (squared byte distance, lowest index on ties) to its value plus the
    error it received, clipped to 0..255.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, C)
    palette : ndarray of uint8, shape (K, C)
    transparent : int or None
        Index of the fully transparent entry. Pixels with alpha 0 always take
        it and neither pass on nor receive error, so invisible colours cannot
        bleed into visible ones.

    Returns
    -------
    ndarray of intp, shape (H, W)
    """
    h, w, c = pixels.shape
    pal = palette.astype(np.float32)
    neg2_pal_t = -2.0 * pal.T
    pal_norm = (pal * pal).sum(axis=1)
    out = np.empty((h, w), dtype=np.intp)
    strip = max(1, min(h, _STRIP_ELEMENTS // max(1, (w + 2) * c)))
    carry = np.zeros((w + 2, c), dtype=np.float32)
    for y0 in range(0, h, strip):
        rows = min(strip, h - y0)
        # One column of padding each side and one spare row below absorb the
        # error that falls off the edges or into the next strip.
        buf = np.zeros((rows + 1, w + 2, c), dtype=np.float32)
        buf[:rows, 1:-1] = pixels[y0 : y0 + rows]
        buf[0] += carry
        alpha0 = pixels[y0 : y0 + rows, :, 3] == 0 if transparent is not None else None
        r_all = np.arange(rows)
        for t in range(w + 2 * (rows - 1)):
            x = t - 2 * r_all
            ok = (x >= 0) & (x < w)
            r, x = r_all[ok], x[ok]
            v = np.clip(buf[r, x + 1], 0.0, 255.0)
            d = v @ neg2_pal_t
            d += pal_norm
            idx = d.argmin(axis=1)
            e = v - pal[idx]
            if alpha0 is not None:
                hidden = alpha0[r, x]
                idx[hidden] = transparent
                e[hidden] = 0.0
            out[y0 + r, x] = idx
            # Separate statements: two pixels of one wavefront can hit the same
            # neighbour, and a single fancy-indexed += would drop one of them.
            buf[r, x + 2] += e * (7 / 16)
            buf[r + 1, x] += e * (3 / 16)
            buf[r + 1, x + 1] += e * (5 / 16)
            buf[r + 1, x + 2] += e * (1 / 16)
        carry = buf[rows].copy()
    return out
