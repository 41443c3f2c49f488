"""Starting kvq's compiled kernels before a command's work: only those its files need.

The ``kvq`` command (``encode``, ``decode``, ``png``) loads the kernels (numba's
cache, or a compile once after an install) before any timer, progress line or
worker process starts, so that no file's time includes it and a process pool's
workers fork with them loaded. A small image written as PNG, GIF ... needs
none (:mod:`kvq.quantize.small`): loading them would cost the process more
than its whole work.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

__all__ = ["header_size", "start_encode_kernels", "start_kernels"]


def start_kernels(watched: bool, options: Any = None, coding: Any = None) -> None:
    """Compile, or load from the cache, the kernels of the quantizer with ``options`` and of ``coding``.

    numba starts without its scipy and cffi imports (the process is the
    command's own, see kvq._numba_start). Compiling happens once after an
    install and takes a while: the command says so when someone watches,
    rather than look hung.

    Parameters
    ----------
    watched : bool
        Say so on standard error when a kernel is compiled.
    options : EncoderOptions, optional
        The quantizer's (and its index coding's).
    coding : kvq.coding.base.Coding, optional
    """
    from . import _jit
    from ._numba_start import start

    start()
    previous = _jit.on_compile(_say_compiling if watched else None)
    try:
        if options is not None:
            from . import coding as codings
            from .quantize import start as start_quantizer

            start_quantizer(options)
            coding = codings.by_name(options.coding)
        if coding is not None:
            coding.start()
    finally:
        _jit.on_compile(previous)


def start_encode_kernels(watched: bool, options: Any, tasks: Sequence[Any]) -> None:
    """Start the kernels encoding ``tasks`` will run: none for small images written as PNG, GIF ... (kvq.quantize.small).

    Loading them costs a process about 0.5 s, more than such an image's
    whole encode. The first 16 files stand for a batch (their headers only
    are read); a worker loads the kernels itself for a larger file after them.

    Parameters
    ----------
    watched : bool
        See :func:`start_kernels`.
    options : EncoderOptions
    tasks : sequence of kvq.batch.Task
    """
    from . import coding as codings
    from .formats import KVQ, encode_format
    from .quantize import uses_kernels

    if all(task.target != "-" and encode_format(task.target) != KVQ for task in tasks[:16]):
        from .fileio import for_image_output

        options = for_image_output(options, {})
    quantizer = any((size := header_size(task.source)) is None or uses_kernels(size, options) for task in tasks[:16])
    coding = codings.by_name(options.coding)
    if quantizer:
        start_kernels(watched, options)
    elif coding.compiled:
        start_kernels(watched, coding=coding)


def header_size(source: str) -> tuple[int, int] | None:
    """(height, width) of an image file from its header, or None (standard input, not readable: the encode says why).

    Parameters
    ----------
    source : str

    Returns
    -------
    tuple of int, or None
    """
    if source == "-" or not os.path.isfile(source):
        return None
    from PIL import Image

    try:
        # The file's own encode reports its warnings (Corrupt EXIF data ...), named; this look is silent.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(source) as image:
                return image.height, image.width
    except Exception:  # noqa: BLE001 - the encode reports any problem with the file, as without this look
        return None


def _say_compiling(kernel: str) -> None:
    print("kvq: compiling kvq's kernels for this machine, once after an install...", file=sys.stderr, flush=True)
