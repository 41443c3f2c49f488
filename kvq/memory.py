"""Refusing, as :class:`kvq.ImageTooLargeError`, an allocation that cannot succeed.

``max_pixels`` is the decoder's real guard; this one holds when it is off
(``None``) or set high: then a K = 1 file of a few dozen bytes may claim up to
2^64 pixels. The codec (pixels) and the index codings (indices) both ask here
before allocating memory that grows with the image.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .errors import ImageTooLargeError

if TYPE_CHECKING:
    from .container import Header


def physical_memory() -> int | None:
    """int or None: bytes of physical memory, when the system reports them."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # not POSIX, or not reported
        return None


@contextmanager
def allocating(header: Header, size: int) -> Iterator[None]:
    """Refuse an allocation of ``size`` bytes for an image of ``header``'s size that cannot succeed.

    More than the machine's physical memory is refused before allocating; a
    smaller request that still fails (an address-space limit, other
    processes) is reported the same way, not as MemoryError.

    Parameters
    ----------
    header : Header
        Only its width and height are read, for the message.
    size : int
        Bytes about to be allocated inside the block.

    Raises
    ------
    ImageTooLargeError
    """
    what = f"{header.width}x{header.height} image"
    memory = physical_memory()
    limit = sys.maxsize if memory is None else memory
    if size > limit:
        where = "" if memory is None else f", more than this machine's {memory:,} bytes of memory"
        raise ImageTooLargeError(f"decoding the {what} needs {size:,} bytes{where}")
    try:
        yield
    except MemoryError:
        raise ImageTooLargeError(f"not enough memory to decode the {what} ({size:,} bytes)") from None
