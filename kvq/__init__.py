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

import importlib
import importlib.util
from typing import Any

from ._version import __version__ as __version__
from .errors import (
    ChecksumError,
    FormatError,
    ImageTooLargeError,
    KvqError,
    KvqFileNotFoundError,
    KvqIsADirectoryError,
    KvqOSError,
    KvqPermissionError,
    NotKvqError,
    OptionError,
    QualityError,
    TruncatedError,
    UnsupportedImageError,
)

#: The rest of the public API, imported on first use (PEP 562): ``import kvq``
#: costs the errors and the Pillow plugin's registration, not the codec, the
#: container, bitarray or numba (``kvq png`` on an icon needs a fraction of it).
_LAZY = {
    "SizeBreakdown": "accounting", "breakdown": "accounting",
    "Decoded": "codec", "Encoded": "codec", "Validated": "codec", "decode": "codec", "decode_indexed": "codec",
    "encode": "codec", "encode_image": "codec", "encode_indexed": "codec", "read_header": "codec", "validate": "codec",
    "DEFAULT_MAX_PIXELS": "container", "OVERHEAD": "container", "Header": "container",
    "OutputExistsError": "fileio", "load": "fileio", "save": "fileio", "atomic_write": "fileio", "check_output": "fileio",
    "Metadata": "metadata", "EncoderOptions": "options", "open_image": "pixels",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        # kvq.coding, kvq.container, ...: the submodules ``import kvq`` used to import, found as attributes again.
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f".{name}", __name__)
        raise AttributeError(f"module 'kvq' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once: later look-ups find it here
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, "__version__", "atomic_write", "check_output"})


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
    "KvqFileNotFoundError",
    "KvqIsADirectoryError",
    "KvqOSError",
    "KvqPermissionError",
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


def _register_lazily() -> None:
    """Register the ``.kvq`` format with Pillow without importing the plugin until a ``.kvq`` file is opened or saved."""
    from PIL import Image

    def open_kvq(fp: Any, filename: Any = None) -> Any:
        from . import pillow_plugin

        pillow_plugin.register()  # the real entries replace these
        return pillow_plugin.KvqImageFile(fp, filename)

    def save_kvq(im: Any, fp: Any, filename: Any) -> None:
        from . import pillow_plugin

        pillow_plugin.register()
        pillow_plugin._save(im, fp, filename)

    if "KVQ" in Image.OPEN:
        return  # already registered, lazily or not
    Image.register_open("KVQ", open_kvq, lambda prefix: prefix.startswith(b"\x89KVQ\r\n\x1a\n"))
    Image.register_save("KVQ", save_kvq)
    Image.register_extension("KVQ", ".kvq")
    Image.register_mime("KVQ", "image/x-kvq")


_register_lazily()
