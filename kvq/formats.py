"""File extensions and image formats, both ways, in one place.

``kvq encode -o x.png`` writes the quantized image as PNG, ``kvq decode -o
x.webp`` writes WebP, a batch decode ``--format JPEG`` names its outputs
``.jpg``: each door asks here. Pillow's own registry of extensions answers
what kvq does not know itself (it imports every Pillow plugin, tens of
milliseconds, so the common cases are answered without it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

from .errors import KvqError

#: The format name of ``.kvq`` files, as Pillow knows it.
KVQ = "KVQ"
#: The suffix of ``.kvq`` files.
KVQ_SUFFIX = ".kvq"
#: The usual suffix of the formats outputs are written in most, without asking Pillow.
_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif"}


def _is_path(destination: Any) -> bool:
    return isinstance(destination, (str, os.PathLike))


def _pillow_format(suffix: str) -> str | None:
    from PIL import Image

    # Pillow's common plugins (BMP, GIF, JPEG, PPM, PNG) first; every plugin
    # only for the rest (0.1 s of a small image's whole encode).
    Image.preinit()
    return Image.EXTENSION.get(suffix.lower()) or Image.registered_extensions().get(suffix.lower())


def encode_format(destination: str | os.PathLike[str] | IO[bytes] | None) -> str:
    """The format ``kvq encode`` writes to ``destination``, from its extension.

    Parameters
    ----------
    destination : str, path-like, binary file object or None

    Returns
    -------
    str
        ``"KVQ"`` for ``.kvq``, for no extension and for a file object;
        otherwise the Pillow format of the extension (``"PNG"``, ``"GIF"``,
        ``"WEBP"``, ...), for a quantized image in that format.

    Raises
    ------
    KvqError
        An extension no format claims.
    """
    if not _is_path(destination):
        return KVQ
    suffix = Path(destination).suffix.lower()  # type: ignore[arg-type]  # a path, as checked
    if suffix in ("", KVQ_SUFFIX):
        return KVQ
    found = _pillow_format(suffix)
    if found is None:
        raise KvqError(f"{destination}: unknown extension {suffix}; use .kvq, or an image extension such as .png .gif .webp")
    return found


def decode_format(destination: str | os.PathLike[str] | IO[bytes]) -> str:
    """The Pillow format ``kvq decode`` writes to ``destination``: its extension's, PNG for a file object.

    Parameters
    ----------
    destination : str, path-like or binary file object

    Returns
    -------
    str

    Raises
    ------
    KvqError
        An extension Pillow does not write.
    """
    if not _is_path(destination):
        return "PNG"
    found = _pillow_format(Path(destination).suffix)  # type: ignore[arg-type]  # a path, as checked
    if found is None:
        raise KvqError(f"{destination}: unknown image extension; use --format or one of .png .bmp .tif .webp .gif .jpg")
    return found


def suffix_for(format: str) -> str:
    """The usual file suffix of a Pillow format (``"JPEG"`` -> ``".jpg"``).

    Parameters
    ----------
    format : str
        A format Pillow writes.

    Returns
    -------
    str

    Raises
    ------
    KvqError
        Pillow has no writer for ``format``.
    """
    from PIL import Image

    upper = format.upper()
    if upper in _SUFFIXES:
        return _SUFFIXES[upper]
    Image.init()
    if upper not in Image.SAVE:
        raise KvqError(f"Pillow cannot write {format!r} images")
    for suffix, name in Image.registered_extensions().items():
        if name == upper:
            return suffix
    raise KvqError(f"Pillow knows no file suffix for {format!r} images")
