"""The "same image tiled 4 x 4" variants of the graphics set, for measuring long-range repetition (issue 20).

Run from the repository root, after build.py::

    python benchmarks/graphics/tile.py                                   # images/ -> images-tiled/
    python benchmarks/graphics/tile.py --images DIR --out DIR2 --n 4 --max-pixels 2100000

A codec that finds repeated regions stores the tiled image in little more than the untiled one (issue 20's
goal: at most 1.5x); one that codes each pixel from its neighbours alone pays about 16x. Only the images
whose tiled version stays within ``--max-pixels`` are tiled (the set's own limit by default), so that a
benchmark over the variants takes as long as one over the set. It writes ``manifest.json`` beside them:
each variant's file, the file it repeats, its category, size, mode and sha256. Needs numpy and Pillow.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
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
    variants = []
    for entry in entries:
        if entry["width"] * entry["height"] * args.n * args.n > args.max_pixels:
            continue
        with Image.open(args.images / entry["file"]) as img:
            tiled = tile(img, args.n)
        buf = io.BytesIO()
        tiled.save(buf, format="PNG", compress_level=9)
        name = entry["file"].replace(".png", f"-tiled{args.n}x{args.n}.png")
        target = args.out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(buf.getvalue())
        variants.append(
            {
                "file": name,
                "tiles": entry["file"],
                "n": args.n,
                "category": entry["category"],
                "width": tiled.width,
                "height": tiled.height,
                "mode": tiled.mode,
                "sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
            }
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "manifest.json").write_text(
        json.dumps({"about": f"{args.n}x{args.n} tilings of {manifest_path}", "images": variants}, indent=1) + "\n"
    )
    print(f"{len(variants)} of {len(entries)} images tiled {args.n}x{args.n} into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
