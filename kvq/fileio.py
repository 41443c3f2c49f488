"""Writing files so that nothing a user owns is lost.

Every output goes to a temporary file beside its destination and is renamed
into place only when complete, so a crash or SIGKILL leaves either the old
file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from .errors import KvqError


class OutputExistsError(KvqError, FileExistsError):
    """The output file exists and overwriting was not asked for."""


def check_output(path: str | os.PathLike, *, force: bool = False, inputs: tuple = ()) -> Path:
    """Refuse an output path that would overwrite an input or, without ``force``, any file.

    Parameters
    ----------
    path : str or path-like
    force : bool, default=False
        Allow replacing an existing file (never an input).
    inputs : tuple of str or path-like
        Paths being read in the same operation.

    Returns
    -------
    pathlib.Path
    """
    target = Path(path)
    for source in inputs:
        if _same_file(source, target):
            raise KvqError(f"output {target} is the same file as input {source}")
    if target.is_dir():
        raise KvqError(f"output {target} is a directory")
    if target.exists() and not force:
        raise OutputExistsError(f"output {target} exists (use --force / force=True to replace it)")
    return target


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _same_file(a: str | os.PathLike, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == b.resolve()


def atomic_write(path: str | os.PathLike, write: Callable[[object], None] | bytes, *, force: bool = False) -> None:
    """Write a file through a temporary sibling that is renamed into place.

    Parameters
    ----------
    path : str or path-like
        Destination.
    write : bytes or callable
        The content, or a function given the open binary temporary file.
    force : bool, default=False
        Replace an existing destination.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        # Name the output the user gave, not the hidden temporary file.
        raise type(exc)(exc.errno, exc.strerror, str(target)) from None
    try:
        # mkstemp creates the file 0600; give the output the permissions any
        # other newly created file would get.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fp:
            if isinstance(write, (bytes, bytearray, memoryview)):
                fp.write(write)
            else:
                write(fp)
            fp.flush()
            os.fsync(fp.fileno())
        if force:
            os.replace(tmp_name, target)
        else:
            # link() fails if the target appeared meanwhile: never overwrite
            # a file that another process created after our check.
            try:
                os.link(tmp_name, target)
            except FileExistsError:
                raise OutputExistsError(f"output {target} exists (use --force / force=True to replace it)") from None
            except OSError:
                if target.exists():
                    raise OutputExistsError(f"output {target} exists (use --force / force=True to replace it)") from None
                os.replace(tmp_name, target)
            else:
                os.unlink(tmp_name)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
