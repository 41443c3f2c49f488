"""Turn what a user hands the encoder into an (H, W, C) uint8 array.

Accepted: numpy uint8 arrays of shape (H, W), (H, W, 1), (H, W, 3) or
(H, W, 4), and any image Pillow opens. Pillow modes are mapped as the README
describes; transparency is kept wherever Pillow keeps it (an alpha channel, an
RGBA palette, a PNG ``tRNS`` colour); EXIF orientation is applied so that the
stored pixels look the way every viewer shows the photo.
"""

from __future__ import annotations

import contextlib
import struct
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ImageTooLargeError, UnsupportedImageError

if TYPE_CHECKING:  # Pillow is imported lazily: the numpy path does not need it.
    from PIL import Image

    from .inputs import Source

#: Pillow mode of pixels with 1, 3 or 4 channels, both ways between kvq and Pillow.
PILLOW_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


class FramesDroppedWarning(UserWarning):
    """An image file holds more than one frame (an animation, pages), and kvq stores only the first.

    A ``.kvq`` file holds one image. :func:`open_image` warns with this
    category, so ``kvq encode -v`` shows it, a batch records it with the
    file's result and in the manifest, and a program can turn it into an
    error with :func:`warnings.simplefilter`.
    """


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
    from PIL import Image

    try:
        image = oriented(image)
        mode = image.mode
        if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            return _from_wide_grey(image)
        if has_alpha(image):
            image = image.convert("RGBA")
        elif mode in ("1", "L", "F"):
            image = image.convert("L")
        elif mode != "RGB":
            # P without transparency, CMYK, YCbCr, LAB, HSV, and 48-bit RGB
            # (which Pillow already reduces to 8 bits per channel).
            image = image.convert("RGB")
        array = np.asarray(image)
    except Image.DecompressionBombError as exc:
        # Some formats (ICO, ICNS) only learn a frame's real size on load.
        raise ImageTooLargeError(f"cannot read image: {exc}") from None
    except (OSError, ValueError, SyntaxError, EOFError, NotImplementedError) as exc:
        # NotImplementedError: formats Pillow identifies but cannot decode
        # (unusual DDS pixel formats, some BLP encodings).
        raise UnsupportedImageError(f"cannot read image: {exc}") from None
    if array.ndim == 2:
        array = array[:, :, None]
    return array


def has_alpha(image: Image.Image) -> bool:
    """Whether a Pillow image carries transparency in any of the ways Pillow stores it.

    Parameters
    ----------
    image : PIL.Image.Image

    Returns
    -------
    bool
        True for modes with an alpha band, for a ``P`` image with an RGBA
        palette (what ``Image.quantize`` gives an RGBA image) and for any image
        with ``info["transparency"]`` (a PNG ``tRNS`` index, grey level or colour).
    """
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return True
    if "transparency" in image.info:
        return True
    return image.mode == "P" and image.palette is not None and image.palette.mode == "RGBA"


def _from_wide_grey(image: Image.Image) -> np.ndarray:
    # 16-bit grey: Pillow's convert("L") clips at 255 instead of scaling, so
    # scale 0..65535 to 0..255 with rounding here.
    wide = np.asarray(image).astype(np.int64)
    grey = np.clip((np.clip(wide, 0, 65535) * 255 + 32767) // 65535, 0, 255).astype(np.uint8)
    transparent = image.info.get("transparency")
    if not isinstance(transparent, int):
        return grey[:, :, None]
    # A tRNS grey level in 16 bits names one exact value: match it before scaling.
    alpha = np.where(wide == transparent, 0, 255).astype(np.uint8)
    return np.stack([grey, grey, grey, alpha], axis=2)


#: EXIF orientation -> the Pillow transpose that undoes it (as ImageOps.exif_transpose).
_ORIENTATION = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}


def orientation(image: Image.Image) -> int:
    """The image's EXIF orientation, 1 (as stored) when absent or unreadable.

    Parameters
    ----------
    image : PIL.Image.Image

    Returns
    -------
    int
        1 to 8.

    Notes
    -----
    Cameras and phones write EXIF blocks that Pillow cannot parse (a bad TIFF
    header, a truncated directory); the picture is still good, so an
    unreadable orientation counts as none rather than refusing the image.
    """
    try:
        value = image.getexif().get(0x0112, 1)
    except (SyntaxError, ValueError, TypeError, KeyError, IndexError, EOFError, struct.error):
        return 1
    return int(value) if isinstance(value, int) and value in _ORIENTATION else 1


def oriented(image: Image.Image) -> Image.Image:
    """Turn an image the way its EXIF orientation says viewers show it.

    Parameters
    ----------
    image : PIL.Image.Image

    Returns
    -------
    PIL.Image.Image
        ``image`` itself when no turn is needed; otherwise a new image with the
        same mode, palette and ``info``.
    """
    from PIL import Image

    turn = _ORIENTATION.get(orientation(image))
    return image if turn is None else image.transpose(Image.Transpose[turn])


def open_image(source: Source, name: str | None = None) -> Image.Image:
    """Open and fully load an image with Pillow, raising kvq's errors for bad input.

    Parameters
    ----------
    source : str, path-like, bytes-like or binary file object
        A file path, the file's bytes, or an open binary file (standard
        input, say), read through :mod:`kvq.inputs` as every door reads.
    name : str, optional
        What to call the input in messages; defaults to the path.

    Returns
    -------
    PIL.Image.Image

    Raises
    ------
    UnsupportedImageError
        Not an image Pillow reads, a format it identifies but cannot decode,
        or a corrupt or truncated file.
    ImageTooLargeError
        A decompression bomb (more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``
        allows).
    KvqOSError
        A path that cannot be opened: ``KvqFileNotFoundError`` for a missing
        file, ``KvqIsADirectoryError`` for a folder, ``KvqPermissionError``
        (each the built-in OSError of that name too).
    KvqError
        ``source`` is none of the accepted kinds.

    Warns
    -----
    FramesDroppedWarning
        The file holds several frames (an animated GIF, WebP or PNG, a
        multi-page TIFF): the first is returned, the others are not read.
    """
    from PIL import Image, UnidentifiedImageError

    from .errors import KvqError
    from .inputs import display_name, is_path, seekable

    label = display_name(name) if name else (str(source) if is_path(source) else "input")
    try:
        # Pillow needs a file it can seek: a pipe (a shell's <(...)) is read whole first.
        with seekable(source, "an image file") as fp, Image.open(fp) as image:
            # Before load(): counting frames seeks through the file and back.
            frames = frame_count(image)
            if frames > 1:
                # Unnamed, as Pillow's own warnings: a batch and the manifest put each file's name before them.
                warnings.warn(
                    f"the image has {frames:,} frames (an animation or pages); only the first is encoded",
                    FramesDroppedWarning,
                    stacklevel=2,
                )
            image.load()
            # copy() detaches the pixels from the file, which is closed here.
            return image.copy()
    except UnidentifiedImageError:
        raise UnsupportedImageError(f"{label}: not an image Pillow can read") from None
    except (FileNotFoundError, KvqError):
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{label}: cannot read image: {exc}") from None
    except (OSError, ValueError, SyntaxError, EOFError, NotImplementedError) as exc:
        raise UnsupportedImageError(f"{label}: cannot read image: {exc}") from None


#: MPO entries that are a smaller copy of the first image (cameras write them as previews), not more pictures.
_MPO_PREVIEWS = ("Large Thumbnail",)


def frame_count(image: Image.Image) -> int:
    """How many pictures an open image file holds; kvq encodes the first.

    Parameters
    ----------
    image : PIL.Image.Image
        Opened, not yet loaded: counting a GIF's or TIFF's frames seeks
        through the file, and it is left at its first frame.

    Returns
    -------
    int
        ``n_frames`` of an animated GIF, WebP or PNG (APNG), a multi-page
        TIFF and the like; 1 for a single image, for a camera JPEG whose other
        MPO entries are only previews of it ("Large Thumbnail"), and for a
        file whose later frames cannot be counted (the first is still read).
    """
    try:
        frames = int(getattr(image, "n_frames", 1))
    except (OSError, ValueError, SyntaxError, EOFError, struct.error):
        # A broken later frame: Pillow's count stops there, away from the first frame. load() then
        # reports what is wrong with the first frame, if anything.
        with contextlib.suppress(OSError, ValueError, SyntaxError, EOFError, struct.error):
            image.seek(0)
        return 1
    if frames > 1 and image.format == "MPO":
        entries = getattr(image, "mpinfo", {}).get(0xB002, [])[1:]
        kinds = [str(entry.get("Attribute", {}).get("MPType", "")) for entry in entries]
        if kinds and all(kind.startswith(_MPO_PREVIEWS) for kind in kinds):
            return 1
    return max(frames, 1)
