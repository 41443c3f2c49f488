"""Time ``Image.open(path).load()`` against ``kvq.decode`` on one 12-megapixel file.

Usage::

    PYTHONPATH=. python benchmarks/pillow_open.py [--source kodim01.png] [--repeat 7] [--out benchmarks/results/pillow_open.md]

The source photo is resized to 4000x3000 and encoded at k=256 once (cached
next to the system's temporary files, keyed by source and options); then each
reader runs ``--repeat`` times, interleaved so that both see the same machine
state, and the medians are compared. Pillow's ``load()`` of a P image stops at
the indices, while ``kvq.decode`` also looks every index up in the palette, so
``Image.open(path).convert("RGB")`` is timed as well: that is the same work.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import kvq

SIZE = (4000, 3000)
K = 256
#: Relative to the repository root, where the project's data lives beside it.
DEFAULT_SOURCE = Path("../shared/kodak/kodim01.png")


def make_file(source: Path) -> Path:
    """Encode ``source`` resized to :data:`SIZE` at k = :data:`K`, once.

    Parameters
    ----------
    source : Path
        Any image Pillow opens.

    Returns
    -------
    Path
        The cached ``.kvq`` file.
    """
    key = hashlib.sha256(f"{source.resolve()}:{source.stat().st_size}:{SIZE}:{K}:{kvq.__version__}".encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"kvq-pillow-open-{key}.kvq"
    if not path.exists():
        with Image.open(source) as im:
            big = im.convert("RGB").resize(SIZE, Image.Resampling.BICUBIC)
        start = time.perf_counter()
        data = kvq.encode(big, k=K)
        print(f"encoded {source.name} at {SIZE[0]}x{SIZE[1]}, k={K} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        path.write_bytes(data)
    return path


def pillow_load(path: Path) -> Image.Image:
    im = Image.open(path)
    im.load()
    return im


def pillow_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def kvq_decode(path: Path) -> np.ndarray:
    with open(path, "rb") as fp:
        return kvq.decode(fp.read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "pillow_open.md")
    args = parser.parse_args(argv)

    if not args.source.is_absolute():
        args.source = Path(__file__).resolve().parent.parent / args.source
    shown_source = os.path.relpath(args.source, Path(__file__).resolve().parent.parent)
    path = make_file(args.source)
    header = kvq.read_header(path)
    readers = {
        "`Image.open(path).load()`": pillow_load,
        "`Image.open(path).convert(\"RGB\")`": pillow_rgb,
        "`kvq.decode(open(path, 'rb').read())`": kvq_decode,
    }
    # The plugin must give exactly kvq's pixels, or the timing compares different work.
    assert np.array_equal(np.asarray(pillow_rgb(path)), kvq_decode(path))
    times: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(args.repeat):
        for name, read in readers.items():
            start = time.perf_counter()
            read(path)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    reference = medians["`kvq.decode(open(path, 'rb').read())`"]

    lines = [
        "# Pillow plugin: `Image.open(...).load()` against `kvq.decode`",
        "",
        f"Command: `PYTHONPATH=. python benchmarks/pillow_open.py --source {shown_source} --repeat {args.repeat}`",
        "",
        f"File: {args.source.name} resized to {header.width}x{header.height} "
        f"({header.n_pixels / 1e6:.0f} MP), k={header.k}, {path.stat().st_size:,} bytes; opens as mode "
        f"{Image.open(path).mode}.",
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"Pillow {Image.__version__}, numpy {np.__version__}. Median of {args.repeat} interleaved runs.",
        "",
        "| reader | median (ms) | min (ms) | vs kvq.decode |",
        "|---|---:|---:|---:|",
    ]
    for name, t in times.items():
        lines.append(f"| {name} | {medians[name] * 1e3:.1f} | {min(t) * 1e3:.1f} | {medians[name] / reference:.2f}x |")
    lines += [
        "",
        "`load()` of a P image stops at the palette indices (1 byte a pixel); `kvq.decode` and",
        "`convert(\"RGB\")` also expand them to 3 bytes a pixel.",
        "",
    ]
    text = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
