"""kvq: a K-means palette image codec and its ``.kvq`` file format.

>>> import numpy as np, kvq
>>> image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
>>> data = kvq.encode(image, k=16)
>>> bool((kvq.decode(data) == image).all())   # 16 colours fit in K = 16: lossless
True

Importing kvq registers its Pillow plugin, so ``PIL.Image.open("x.kvq")``
works. Neither importing kvq nor encoding or decoding imports scikit-learn;
numba is imported on the first encode of an image whose pixels times K is
above :data:`kvq.quantize.small.SMALL_WORK` (smaller ones are quantized in
numpy), or that is entropy coded, or the first decode of a file whose index
coding is compiled.
"""

from __future__ import annotations

import contextlib

from ._version import __version__ as __version__
from .accounting import SizeBreakdown, breakdown
from .codec import (
    Decoded,
    Encoded,
    Validated,
    decode,
    decode_indexed,
    encode,
    encode_image,
    encode_indexed,
    read_header,
    validate,
)
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
from .fileio import OutputExistsError, load, save
from .fileio import atomic_write as atomic_write  # not in __all__, kept importable
from .fileio import check_output as check_output
from .metadata import Metadata
from .options import EncoderOptions
from .pixels import open_image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "OVERHEAD",
    "ChecksumError",
    "Decoded",
    "Encoded",
    "EncoderOptions",
    "FormatError",
    "Header",
    "ImageTooLargeError",
    "KvqError",
    "Metadata",
    "NotKvqError",
    "OptionError",
    "OutputExistsError",
    "QualityError",
    "SizeBreakdown",
    "TruncatedError",
    "UnsupportedImageError",
    "Validated",
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
    "validate",
]


def register_pillow() -> None:
    """Register the ``.kvq`` plugin with Pillow; calling it again does nothing."""
    from . import pillow_plugin

    pillow_plugin.register()


with contextlib.suppress(ImportError):  # pragma: no cover - the plugin module is part of the package
    register_pillow()
