"""The one input adapter: what every door accepts as a file, checked once, in one place.

A file reaches kvq as its bytes, a path, or a binary file object (an open
file, standard input, a socket's stream). The decoder, ``kvq.validate``,
``kvq.read_header``, ``kvq decode``, ``kvq info``, the encoder's image input
and the Pillow-free doors all take any of the three, through :func:`opened`;
the refusals (a text-mode file, a strided buffer, an object of another kind)
are worded here only. A path that cannot be opened raises kvq's
:class:`kvq.KvqOSError` of the kind ``open`` raised (``KvqFileNotFoundError``,
``KvqIsADirectoryError``, ``KvqPermissionError``: a ``KvqError`` and the
built-in ``OSError`` alike), which the command turns into its one line.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TypeGuard, Union

from .errors import KvqError, os_error

#: What every door accepts as a file: its bytes, a path, or a binary file object.
Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", IO[bytes]]


def is_path(source: object) -> TypeGuard[str | os.PathLike[str]]:
    """bool: whether ``source`` is a path (str or path-like)."""
    return isinstance(source, (str, os.PathLike))


def display_name(name: str) -> str:
    """What messages call an input given by name: ``stdin`` for ``-`` (as the commands write standard input).

    Parameters
    ----------
    name : str

    Returns
    -------
    str
    """
    return "stdin" if name == "-" else name


@contextmanager
def opened(source: Source, what: str = "a .kvq file") -> Iterator[memoryview | IO[bytes]]:
    """The input as a memoryview of its bytes, or as a binary file object.

    Parameters
    ----------
    source : bytes-like, str, path-like or binary file object
        A path is opened here and closed on leaving the block; a file object
        is used from its current position.
    what : str, default="a .kvq file"
        What the input should be, for the message that refuses another kind.

    Yields
    ------
    memoryview or binary file object

    Raises
    ------
    KvqError
        A text-mode file, a buffer that is not contiguous, or an object that
        is none of the accepted kinds.
    KvqOSError
        From opening a path (a FileNotFoundError, IsADirectoryError or
        PermissionError too, as the system said).
    """
    if is_path(source):
        try:
            fp = open(source, "rb")  # noqa: SIM115 - closed below; only opening is translated
        except OSError as exc:
            raise os_error(exc) from None
        with fp:
            yield fp
        return
    if callable(getattr(source, "read", None)):
        yield binary(source)  # type: ignore[arg-type]
        return
    try:
        view = memoryview(source)  # type: ignore[arg-type]
    except TypeError:
        raise KvqError(f"expected {what} as bytes, a path or a binary file object, not {type(source).__name__}") from None
    if not view.c_contiguous:
        raise KvqError(f"{what} given as a buffer must be contiguous (a strided array view is not)")
    yield view.cast("B")


def binary(fp: IO[bytes]) -> IO[bytes]:
    """``fp`` itself, once it is known not to be a text-mode file.

    Raises
    ------
    KvqError
    """
    if isinstance(fp, io.TextIOBase):
        # Checked before reading: reading would fail to decode the signature's 0x89 instead.
        raise KvqError("expected a binary file object (open(path, 'rb')), not a text-mode file")
    return fp


def checked_read(fp: IO[bytes], size: int = -1) -> bytes:
    """``fp.read(size)``, refusing a file object whose ``read`` does not give bytes.

    Raises
    ------
    KvqError
    """
    data = fp.read(size)
    if not isinstance(data, (bytes, bytearray)):
        raise KvqError(f"expected a binary file object, not one whose read() gives {type(data).__name__}")
    return bytes(data)


def read_all(source: Source, what: str = "a .kvq file") -> bytes | memoryview:
    """The whole input: its bytes, a path's content, or a file object read to its end.

    Parameters
    ----------
    source : bytes-like, str, path-like or binary file object
    what : str, default="a .kvq file"

    Returns
    -------
    bytes-like

    Raises
    ------
    KvqError
        :class:`kvq.KvqOSError` for a path that cannot be opened.
    """
    with opened(source, what) as data:
        return data if isinstance(data, memoryview) else checked_read(data)


@contextmanager
def seekable(source: Source, what: str = "a .kvq file") -> Iterator[IO[bytes]]:
    """The input as a binary file object that can seek: a path's file, or the bytes in memory.

    A file object that cannot seek (standard input, a pipe) is read whole
    first; a regular file is read as it is needed.

    Parameters
    ----------
    source : bytes-like, str, path-like or binary file object
    what : str, default="a .kvq file"

    Yields
    ------
    binary file object
    """
    with opened(source, what) as data:
        if isinstance(data, memoryview):
            yield io.BytesIO(data)
        elif can_seek(data):
            yield data
        else:
            yield io.BytesIO(checked_read(data))


def can_seek(fp: IO[bytes]) -> bool:
    """bool: whether a file object says it can seek."""
    try:
        return bool(fp.seekable())
    except (AttributeError, ValueError, OSError):
        return False
