"""kvq: a K-means palette image codec and its ``.kvq`` file format.

>>> import numpy as np, kvq
>>> image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
>>> data = kvq.encode(image, k=16)
>>> bool((kvq.decode(data) == image).all())   # 16 colours fit in K = 16: lossless
True

Importing kvq registers its Pillow plugin, so ``PIL.Image.open("x.kvq")``
works. scikit-learn is imported only when encoding.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .accounting import SizeBreakdown, breakdown
from .codec import Decoded, Encoded, decode, decode_indexed, encode, encode_image, encode_indexed, read_header
from .container import DEFAULT_MAX_PIXELS, OVERHEAD, Header
from .errors import (
    ChecksumError,
    FormatError,
    ImageTooLargeError,
    KvqError,
    NotKvqError,
    OptionError,
    QualityError,
    TruncatedError,
    UnsupportedImageError,
)
from .fileio import OutputExistsError, atomic_write, check_output
from .metadata import Metadata
from .options import EncoderOptions
from .pixels import open_image

__version__ = "1.0.0"

__all__ = [
    "ChecksumError",
    "DEFAULT_MAX_PIXELS",
    "Decoded",
    "Encoded",
    "EncoderOptions",
    "FormatError",
    "Header",
    "ImageTooLargeError",
    "KvqError",
    "Metadata",
    "NotKvqError",
    "OVERHEAD",
    "OptionError",
    "OutputExistsError",
    "QualityError",
    "SizeBreakdown",
    "TruncatedError",
    "UnsupportedImageError",
    "breakdown",
    "decode",
    "decode_indexed",
    "encode",
    "encode_image",
    "encode_indexed",
    "load",
    "open_image",
    "read_header",
    "register_pillow",
    "save",
]


def save(
    image: Any,
    path: str | os.PathLike,
    k: int = 256,
    *,
    force: bool = False,
    metadata: Metadata | None = None,
    strip: bool = False,
    **options: Any,
) -> Header:
    """Encode an image and write it to ``path`` atomically.

    Parameters
    ----------
    image : PIL.Image.Image, numpy.ndarray, str or path-like
        An image, or the path of a file Pillow can open.
    path : str or path-like
        Destination ``.kvq`` file.
    k : int, default=256
    force : bool, default=False
        Replace an existing file.
    metadata : Metadata, optional
        ICC profile, EXIF and resolution to store; by default the image's own.
    strip : bool, default=False
        Store no metadata.
    **options
        See :class:`EncoderOptions`.

    Returns
    -------
    Header
        The header of the written file.
    """
    inputs: tuple = ()
    if isinstance(image, (str, os.PathLike)):
        inputs = (image,)
        check_output(path, force=force, inputs=inputs)
        image = open_image(image)
    else:
        check_output(path, force=force)
    encoded = encode_image(image, k=k, metadata=metadata, strip=strip, **options)
    atomic_write(path, encoded.data, force=force)
    return encoded.header


def load(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read and decode a ``.kvq`` file.

    Parameters
    ----------
    path : str or path-like
    max_pixels : int or None, default=178,956,970

    Returns
    -------
    ndarray of uint8
        See :func:`decode`.
    """
    with open(path, "rb") as fp:
        # Refuse a decompression bomb from its first 38 bytes, before the
        # rest of the file is read.
        read_header(fp, max_pixels)
        fp.seek(0)
        return decode(fp.read(), max_pixels)


def register_pillow() -> None:
    """Register the ``.kvq`` plugin with Pillow; calling it again does nothing."""
    from . import pillow_plugin

    pillow_plugin.register()


try:
    register_pillow()
except ImportError:  # pragma: no cover - the plugin module is part of the package
    pass
