"""kvq's benchmark suite: every bit of a ``.kvq`` file, beside what users pick instead.

For each image and palette size K the suite writes a row that accounts for
the file bit by bit (N, 24·N, the textbook N·ceil(log2 K) + 24·K, the same
file with fixed-width indices, and the file's overhead, palette, index and
side bits), its quality (PSNR, SSIM, mean ΔE2000), and the same image at the
same K as PNG-8, GIF, pngquant and JPEG at the quality that matches kvq's
PSNR, and kvq's own pixels as PNG-8, WebP-lossless and JPEG XL lossless.
It writes ``report.md``, ``results.csv`` and pictures to a folder.

Run it as ``kvq bench [IMAGES or FOLDERS] [-k 2,16,64,256] [-o DIR]`` or
``python -m kvq.bench ...``. The suite needs the optional ``bench`` extra
(``pip install "kvq[bench]"``); ``import kvq`` never imports it. Its command
line does not: ``kvq bench --help`` and usage errors are answered without the
extra, and a run says what to install (:func:`require_extra`). The suite's
names (``main``, ``run_suite``, ...) are loaded on first use, and raise the
same :class:`ImportError` without the extra.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

#: Modules of the ``bench`` extra that the suite imports (module -> distribution).
REQUIRED = {"matplotlib": "matplotlib", "skimage": "scikit-image", "scipy": "scipy", "tqdm": "tqdm"}

#: The suite's public names, by the module that defines them.
_LAZY = {"main": "cli", "DEFAULT_KS": "suite", "Row": "suite", "run_suite": "suite"}

__all__ = ["DEFAULT_KS", "REQUIRED", "Row", "main", "require_extra", "run_suite"]


def require_extra() -> None:
    """Raise :class:`ImportError`, naming what to install, when the ``bench`` extra is missing.

    Raises
    ------
    ImportError
        One of :data:`REQUIRED` cannot be imported.
    """
    missing = [dist for module, dist in REQUIRED.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise ImportError(f"the kvq benchmark suite needs {', '.join(missing)}: install it with pip install \"kvq[bench]\"")


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    require_extra()
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
