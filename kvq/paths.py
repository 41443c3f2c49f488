"""Finding image files: the folder walker of the bench suite and the batch runner.

Folders are listed with :func:`os.scandir` one at a time and walked lazily,
in sorted order, so that a folder of a million images costs one sorted
list of names per folder, never a list of every path at once, and two runs
visit the same files in the same order.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Union

#: File suffixes taken as images when walking folders (lower case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".ppm", ".pgm", ".pnm", ".kvq")

PathLike = Union[str, "os.PathLike[str]"]


def walk_images(
    folder: PathLike, *, recursive: bool = True, suffixes: Iterable[str] = IMAGE_SUFFIXES, hidden: bool = True
) -> Iterator[Path]:
    """Yield the image files of a folder, sorted by name, sub-folders after files.

    Parameters
    ----------
    folder : str or path-like
    recursive : bool, default=True
        Also walk sub-folders (depth first, in name order). Symbolic links
        to folders are not followed, so a link loop cannot make the walk
        endless; links to files are taken like files.
    suffixes : iterable of str, default=IMAGE_SUFFIXES
        File suffixes to take, compared in lower case.
    hidden : bool, default=True
        False leaves out files and folders whose names start with ``.``
        (kvq's own temporary files, macOS's ``._`` companions, ``.git``).

    Yields
    ------
    pathlib.Path
    """
    wanted = tuple(s.lower() for s in suffixes)
    with os.scandir(folder) as entries:
        listing = sorted(
            (entry.name, entry.is_dir(follow_symlinks=False), entry.is_file())
            for entry in entries
            if hidden or not entry.name.startswith(".")
        )
    subfolders = []
    for name, is_dir, is_file in listing:
        if is_file and Path(name).suffix.lower() in wanted:
            yield Path(folder) / name
        elif is_dir and recursive:
            subfolders.append(name)
    for name in subfolders:
        yield from walk_images(Path(folder) / name, recursive=True, suffixes=wanted, hidden=hidden)


def image_paths(inputs: Iterable[PathLike], *, recursive: bool = True, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> Iterator[Path]:
    """Yield the image files named by a list of files and folders, in order.

    A file is taken as it is, whatever its suffix; a folder gives its image
    files as :func:`walk_images` finds them.

    Parameters
    ----------
    inputs : iterable of str or path-like
    recursive : bool, default=True
        Walk folders' sub-folders too.
    suffixes : iterable of str, default=IMAGE_SUFFIXES

    Yields
    ------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        An input does not exist.
    ValueError
        A folder holds no image file.
    """
    wanted = tuple(suffixes)
    for entry in inputs:
        path = Path(entry)
        if path.is_dir():
            found = False
            for image in walk_images(path, recursive=recursive, suffixes=wanted):
                found = True
                yield image
            if not found:
                raise ValueError(f"{path} holds no image files ({', '.join(wanted)})")
        elif path.exists():
            yield path
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
