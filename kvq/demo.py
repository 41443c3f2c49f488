"""``kvq demo``: a bundled sample photo at several palette sizes, and where its bits go."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from .container import OVERHEAD
from .errors import KvqError, OptionError
from .fileio import atomic_write, check_output, check_writable, encode_file
from .options import MAX_K

#: Palette sizes shown when none are given.
DEMO_KS = (2, 16, 64, 256)
#: scikit-learn's bundled sample photos.
SAMPLES = ("china.jpg", "flower.jpg")


def run_demo(
    image_name: str = SAMPLES[0],
    ks: Sequence[int] = DEMO_KS,
    output_dir: str | None = None,
    *,
    force: bool = False,
    out: IO[str],
) -> None:
    """Encode a scikit-learn sample photo at each K and print the size table.

    Parameters
    ----------
    image_name : {"china.jpg", "flower.jpg"}
    ks : sequence of int
        Palette sizes, each 1 to 65,536.
    output_dir : str, optional
        Also write the ``.kvq`` files and decoded PNGs here.
    force : bool, default=False
        Replace files of those names already in ``output_dir``.
    out : text file
        Where the table goes.

    Raises
    ------
    KvqError
        A K out of range, or ``output_dir`` a file, or one of the files to
        write already there (without ``force``), or a folder that cannot be
        written: all found before anything is printed.
    """
    from PIL import Image
    from sklearn.datasets import load_sample_image

    ks = list(dict.fromkeys(ks))  # a K named twice is shown, and written, once
    for k in ks:
        if not 1 <= k <= MAX_K:
            raise OptionError.about("k", f"must be between 1 and {MAX_K:,}, not {k:,}")
    stems = {k: Path(output_dir) / f"{Path(image_name).stem}-k{k}" for k in ks} if output_dir else {}
    if output_dir:
        # Before any output: a bad folder is the whole answer, not a half-printed table.
        if os.path.lexists(output_dir) and not os.path.isdir(output_dir):
            raise KvqError(f"{output_dir} is a file; -o names a folder for the demo's files")
        os.makedirs(output_dir, exist_ok=True)
        for name in stems.values():
            for suffix in (".kvq", ".png"):
                check_output(f"{name}{suffix}", force=force)
        check_writable(output_dir)
    image = load_sample_image(image_name)
    height, width = image.shape[:2]
    n = height * width
    print(f"kvq demo: scikit-learn's {image_name}, {width} x {height} = {n:,} pixels, 24·N = {24 * n:,} bits", file=out)
    columns = (
        f"{'K':>6} {'bits/idx':>8} {'file bytes':>11} {'fixed bytes':>11} {'file bits':>11} {'theory bits':>12} "
        f"{'bpp':>7} {'vs 24·N':>8} {'PSNR dB':>8}"
    )
    print(columns, file=out)
    for k in ks:
        stem = stems.get(k)
        encoded = encode_file(image, None if stem is None else f"{stem}.kvq", force=force, k=k)
        s = encoded.sizes
        print(
            f"{k:>6} {encoded.header.bits:>8} {len(encoded.data):>11,} {s.fixed_file_bits // 8:>11,} "
            f"{s.file_bits:>11,} {s.theory_bits:>12,} "
            f"{s.bits_per_pixel:>7.3f} {s.factor:>7.2f}x {encoded.psnr:>8.2f}",
            file=out,
        )
        if stem is not None:
            buf = io.BytesIO()
            Image.fromarray(encoded.pixels()).save(buf, "PNG")
            atomic_write(f"{stem}.png", buf.getvalue(), force=force)
    print(
        f"file: entropy-coded indices; fixed: the same file at ceil(log2 K) bits per index = theory + {8 * OVERHEAD} bits"
        " of overhead (+ < 8 padding bits); see `kvq info FILE`",
        file=out,
    )
