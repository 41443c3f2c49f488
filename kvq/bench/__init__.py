"""kvq's benchmark suite: every bit of a ``.kvq`` file, beside what users pick instead.

For each image and palette size K the suite writes a row that accounts for
the file bit by bit (N, 24·N, the textbook N·ceil(log2 K) + 24·K, and the
file's overhead, palette and index bits), its quality (PSNR, SSIM, mean
ΔE2000), and the same image at the same K as PNG-8, GIF, pngquant, kvq's own
palette saved as PNG-8, and JPEG at the quality that matches kvq's PSNR.
It writes ``report.md``, ``results.csv`` and pictures to a folder.

Run it as ``kvq bench [IMAGES or FOLDERS] [-k 2,16,64,256] [-o DIR]`` or
``python -m kvq.bench ...``. This package needs the optional ``bench``
extra (``pip install "kvq[bench]"``); ``import kvq`` never imports it.
"""

from __future__ import annotations

import importlib.util

#: Modules of the ``bench`` extra that the suite imports (module -> distribution).
REQUIRED = {"matplotlib": "matplotlib", "skimage": "scikit-image", "scipy": "scipy", "tqdm": "tqdm"}

_missing = [dist for module, dist in REQUIRED.items() if importlib.util.find_spec(module) is None]
if _missing:
    raise ImportError(
        f"the kvq benchmark suite needs {', '.join(_missing)}: install it with pip install \"kvq[bench]\""
    )

from .cli import main  # noqa: E402
from .suite import DEFAULT_KS, Row, run_suite  # noqa: E402

__all__ = ["DEFAULT_KS", "REQUIRED", "Row", "main", "run_suite"]
