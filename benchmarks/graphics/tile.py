"""The "same image tiled 4 x 4" variants of the graphics set, for measuring long-range repetition (issue 20).

Run from the repository root, after build.py::

    python benchmarks/graphics/tile.py                                   # images/ -> images-tiled/
    python benchmarks/graphics/tile.py --images DIR --out DIR2 --n 4 --max-pixels 2100000

A codec that finds repeated regions stores the tiled image in little more than the untiled one (issue 20's
goal: at most 1.5x); one that codes each pixel from its neighbours alone pays about 16x. For every image of
the set it writes a pair into the output folder: the untiled base (``NAME-base.png``) and its tiling
(``NAME-tiled4x4.png``). The base is the image itself when its tiling stays within ``--max-pixels`` (the set's
own limit by default), else the centre crop of the largest square that does (362 x 362 px at 4 x 4), so that
every category has variants and a benchmark over them takes as long as one over the set. ``manifest.json``
lists each pair: the two files, the image of the set, the crop box (or none), the category, sizes and sha256.
Needs numpy and Pillow.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def tile(image: Image.Image, n: int = 4) -> Image.Image:
    """The image repeated ``n`` times across and ``n`` times down, pixel for pixel.

    Parameters
    ----------
    image : PIL.Image.Image
        Any mode Pillow can turn into an array (RGB and RGBA in the set).
    n : int
        Repetitions in each direction (>= 1).

    Returns
    -------
    PIL.Image.Image
        Same mode, ``n`` times the width and the height.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    arr = np.asarray(image)
    reps = (n, n) + (1,) * (arr.ndim - 2)
    return Image.fromarray(np.tile(arr, reps), image.mode)


def png(image: Image.Image) -> bytes:
    """PNG bytes with no metadata, as build.py writes the set."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=HERE / "images", help="the built set (default: benchmarks/graphics/images/)")
    parser.add_argument(
        "--out", type=Path, default=HERE / "images-tiled", help="where the variants go (default: benchmarks/graphics/images-tiled/)"
    )
    parser.add_argument("--n", type=int, default=4, help="repetitions across and down (default 4)")
    parser.add_argument("--max-pixels", type=int, default=2_100_000, help="largest tiled image, in pixels (default 2,100,000)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    manifest_path = args.images / "manifest.json"
    if not manifest_path.exists():
        print(f"tile.py: no {manifest_path}; build the set first (benchmarks/graphics/build.py)", file=sys.stderr)
        return 1
    entries = json.loads(manifest_path.read_text())["images"]
    side = math.isqrt(args.max_pixels // (args.n * args.n))
    variants = []
    for entry in entries:
        with Image.open(args.images / entry["file"]) as img:
            img.load()
            box = None
            if img.width * img.height * args.n * args.n > args.max_pixels:
                w, h = min(side, img.width), min(side, img.height)
                left, top = (img.width - w) // 2, (img.height - h) // 2
                box = (left, top, left + w, top + h)
            base = img.crop(box) if box else img.copy()
        stem = entry["file"][: -len(".png")]
        pair = {"image": entry["file"], "crop": box, "n": args.n, "category": entry["category"]}
        for role, picture in (("base", base), ("tiled", tile(base, args.n))):
            name = f"{stem}-base.png" if role == "base" else f"{stem}-tiled{args.n}x{args.n}.png"
            data = png(picture)
            target = args.out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            pair[role] = {
                "file": name,
                "width": picture.width,
                "height": picture.height,
                "mode": picture.mode,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        variants.append(pair)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "manifest.json").write_text(
        json.dumps({"about": f"{args.n}x{args.n} tilings of {manifest_path}", "images": variants}, indent=1) + "\n"
    )
    cropped = sum(1 for v in variants if v["crop"])
    print(f"{len(variants)} images tiled {args.n}x{args.n} into {args.out} ({cropped} of them as a centre crop of at most {side}x{side})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
