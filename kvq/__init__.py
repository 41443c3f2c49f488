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
from .fileio import OutputExistsError, atomic_write, check_output, load, save
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


def register_pillow() -> None:
    """Register the ``.kvq`` plugin with Pillow; calling it again does nothing."""
    from . import pillow_plugin

    pillow_plugin.register()


try:
    register_pillow()
except ImportError:  # pragma: no cover - the plugin module is part of the package
    pass
