"""Turn what a user hands the encoder into an (H, W, C) uint8 array.

Accepted: numpy uint8 arrays of shape (H, W), (H, W, 1), (H, W, 3) or
(H, W, 4), and any image Pillow opens. Pillow modes are mapped as the README
describes; EXIF orientation is applied so that the stored pixels look the way
every viewer shows the photo.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import UnsupportedImageError

if TYPE_CHECKING:  # Pillow is imported lazily: the numpy path does not need it.
    from PIL import Image

#: Pillow mode of pixels with 1, 3 or 4 channels, both ways between kvq and Pillow.
PILLOW_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def pillow_mode(channels: int) -> str:
    """The Pillow mode of pixels with ``channels`` channels.

    Parameters
    ----------
    channels : {1, 3, 4}

    Returns
    -------
    str
        ``"L"``, ``"RGB"`` or ``"RGBA"``.
    """
    return PILLOW_MODES[channels]


def to_array(image: Any) -> np.ndarray:
    """Normalise an image to a C-contiguous (H, W, C) uint8 array, C in {1, 3, 4}.

    Parameters
    ----------
    image : PIL.Image.Image or numpy.ndarray
        uint8 array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4),
        or a Pillow image of any mode.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    UnsupportedImageError
        Wrong type, dtype, shape, or an empty image.
    """
    if isinstance(image, np.ndarray):
        array = _from_numpy(image)
    elif _is_pil_image(image):
        array = _from_pillow(image)
    else:
        raise UnsupportedImageError(f"expected a PIL.Image or a numpy array, not {type(image).__name__}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise UnsupportedImageError(f"image has no pixels (size {array.shape[1]}x{array.shape[0]})")
    return np.ascontiguousarray(array)


def _is_pil_image(obj: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a core dependency
        return False
    return isinstance(obj, Image.Image)


def _from_numpy(array: np.ndarray) -> np.ndarray:
    if array.dtype != np.uint8:
        raise UnsupportedImageError(f"array dtype must be uint8, not {array.dtype}")
    if array.ndim == 2:
        return array[:, :, None]
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        return array
    raise UnsupportedImageError(f"array shape must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), not {array.shape}")


def _from_pillow(image: Image.Image) -> np.ndarray:
    from PIL import ImageOps

    try:
        image = ImageOps.exif_transpose(image)
        mode = image.mode
        if mode in ("1", "L"):
            image = image.convert("L")
        elif mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            # 16-bit grey: Pillow's convert("L") clips at 255 instead of
            # scaling, so scale 0..65535 to 0..255 with rounding here.
            wide = np.asarray(image).astype(np.int64)
            grey = np.clip((np.clip(wide, 0, 65535) * 255 + 32767) // 65535, 0, 255).astype(np.uint8)
            return grey[:, :, None]
        elif mode == "F":
            image = image.convert("L")
        elif mode in ("LA", "La", "PA", "RGBa") or (mode == "P" and "transparency" in image.info):
            image = image.convert("RGBA")
        elif mode == "RGBA":
            pass
        elif mode != "RGB":
            # P without transparency, CMYK, YCbCr, LAB, HSV, and 48-bit RGB
            # (which Pillow already reduces to 8 bits per channel).
            image = image.convert("RGB")
        array = np.asarray(image)
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnsupportedImageError(f"cannot read image: {exc}") from exc
    if array.ndim == 2:
        array = array[:, :, None]
    return array


def open_image(source: str | os.PathLike[str] | bytes | bytearray | memoryview, name: str | None = None) -> Image.Image:
    """Open and fully load an image with Pillow, raising kvq's errors for bad input.

    Parameters
    ----------
    source : str, path-like or bytes-like
        A file path, or the file's bytes (standard input, say).
    name : str, optional
        What to call the input in messages; defaults to the path.

    Returns
    -------
    PIL.Image.Image

    Raises
    ------
    UnsupportedImageError
        Not an image Pillow reads, a corrupt or truncated one, a directory, or
        a decompression bomb. A missing file raises FileNotFoundError.
    """
    from PIL import Image, UnidentifiedImageError

    stream: Any
    if isinstance(source, (bytes, bytearray, memoryview)):
        label, stream = name or "input", io.BytesIO(source)
    else:
        label, stream = name or str(source), source
        if os.path.isdir(source):
            raise UnsupportedImageError(f"{label}: is a directory, not an image")
        if os.path.exists(source) and not os.path.isfile(source):
            # A pipe or device (a shell's <(...)) cannot seek, as Pillow needs.
            with open(source, "rb") as fp:
                stream = io.BytesIO(fp.read())
    try:
        with Image.open(stream) as image:
            image.load()
            # copy() detaches the pixels from the file, which is closed here.
            return image.copy()
    except UnidentifiedImageError:
        raise UnsupportedImageError(f"{label}: not an image Pillow can read") from None
    except FileNotFoundError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise UnsupportedImageError(f"{label}: cannot read image: {exc}") from None
