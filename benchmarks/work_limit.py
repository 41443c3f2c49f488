"""Coding 1's work limit (spec rule 27): how far real files stay from it, and what it saves on a hostile file.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/work_limit.py [--kodak ../shared/kodak] [--out benchmarks/results/work_limit]

Calibration: every Kodak photo at K = 2, 4, ..., 256 (kvq's default options, and full dithering at K = 16 and 256,
the noisiest index fields), and a few drawn graphics (flat areas, text, stripes, a gradient) at K = 2 to 256, are
quantized and coded; the coder's own count of decisions D is set against the limit
``WORK_PER_PIXEL * N + WORK_PER_BYTE * L`` (N pixels, L bytes of stream). The table gives the largest D / limit per
set and K: below 0.5, no real file comes within half of the limit.

Hostile file: a K = 65,536 grey image whose pixels repeat a period of 5 along each row (shifted 3 a row), so that
every pixel has four distinct neighbours, none equal to it, and its 16-bit literal is predictable: 20 decisions a
pixel in a few bytes. Its decode is timed without the limit (the kernel with no limit, as kvq decoded before rule 27)
and with it (``kvq.decode``, refused), best of 3 each, on this machine; the file's size is given.

Writes ``<out>.md``. Without the photos it measures the graphics and the hostile file only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import kvq
from kvq import container
from kvq.coding import entropy

KS = (2, 4, 8, 16, 32, 64, 128, 256)


def decisions(indices: np.ndarray, k: int) -> tuple[int, int]:
    """(decisions, stream bytes) of coding ``indices`` with coding 1, with no work limit."""
    kernel = entropy._kernel()
    height, width = indices.shape
    n = height * width
    flat = np.require(indices, np.uint8 if k <= 256 else np.uint16, ["C", "W"]).reshape(-1)
    out = np.empty(31 * n + 16, dtype=np.uint8)
    status, used, _, count = kernel.run(
        flat, width, height, k, entropy.table_bits(n), out, False, 1 << 62,
        kernel.SQUASH_TABLE, kernel.STRETCH_TABLE, kernel.RATE_TABLE,
    )  # fmt: skip
    assert status == kernel.OK
    return int(count), int(used)


def graphics() -> dict[str, np.ndarray]:
    """A few drawn images: flat areas, text, stripes and a gradient, as in screenshots, charts and icons."""
    rng = np.random.default_rng(7)
    images = {}
    canvas = Image.new("RGB", (640, 480), "white")
    draw = ImageDraw.Draw(canvas)
    for row in range(30):
        draw.text((8, 4 + 16 * row), " ".join("".join(rng.choice(list("abcdefghij"), 6)) for _ in range(9)), fill="black")
    images["text"] = np.asarray(canvas)
    canvas = Image.new("RGB", (640, 480), (240, 240, 250))
    draw = ImageDraw.Draw(canvas)
    for _ in range(40):
        x, y = rng.integers(0, 600, 2)
        draw.rectangle([int(x), int(y), int(x) + 80, int(y) + 40], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw.ellipse([int(y), int(x) // 2, int(y) + 50, int(x) // 2 + 50], outline=(0, 0, 0), width=2)
    images["shapes"] = np.asarray(canvas)
    images["stripes"] = np.repeat(((np.arange(640) // 7) % 5 * 60).astype(np.uint8)[None, :, None], 480, 0).repeat(3, 2)
    gradient = np.linspace(0, 255, 640)[None, :, None] * np.linspace(0.2, 1, 480)[:, None, None]
    images["gradient"] = np.broadcast_to(gradient, (480, 640, 3)).astype(np.uint8)
    images["flat"] = np.full((480, 640, 3), 200, np.uint8)
    # Ordered (Bayer 4 x 4) dithering of the gradient to 4 levels a channel: a regular pattern, as old GIFs have.
    bayer = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]) / 16 - 0.5
    threshold = np.tile(bayer, (120, 160))[:, :, None]
    images["bayer"] = (np.clip(np.round(images["gradient"] / 255 * 3 + threshold), 0, 3) * 85).astype(np.uint8)
    return images


def calibrate(sets: dict[str, dict[str, np.ndarray]]) -> list[tuple[str, str, float, str]]:
    """(set, options, largest D / limit, which image) per set, option and K."""
    rows = []
    for set_name, images in sets.items():
        variants = [(f"K = {k}", {"k": k}) for k in KS]
        if set_name == "Kodak":
            variants += [(f"K = {k}, dither 1", {"k": k, "dither": 1.0}) for k in (16, 256)]
        for label, options in variants:
            worst, which = 0.0, ""
            for name, pixels in images.items():
                encoded = kvq.encode_image(pixels, coding="fixed", **options)
                count, length = decisions(encoded.indices.reshape(pixels.shape[:2]), encoded.header.k)
                ratio = count / entropy.work_limit(pixels.shape[0] * pixels.shape[1], length)
                if ratio > worst:
                    worst, which = ratio, name
            rows.append((set_name, label, worst, which))
            print(f"{set_name:9} {label:20} {worst:.3f} ({which})", flush=True)
    return rows


def hostile(width: int, height: int) -> bytes:
    """The 20-decisions-a-pixel file, coded with no work limit (as kvq wrote before rule 27)."""
    values = np.array([0, 13_107, 26_214, 39_321, 52_428], dtype=np.uint16)
    x, y = np.meshgrid(np.arange(width), np.arange(height))
    indices = values[(x + 3 * y) % 5]
    k = 65_536
    kernel = entropy._kernel()
    n = width * height
    out = np.empty(31 * n + 16, dtype=np.uint8)
    status, used, _, count = kernel.run(
        indices.reshape(-1).copy(), width, height, k, entropy.table_bits(n), out, False, 1 << 62,
        kernel.SQUASH_TABLE, kernel.STRETCH_TABLE, kernel.RATE_TABLE,
    )  # fmt: skip
    assert status == kernel.OK and count > 19 * n, count
    header = container.Header(width, height, 1, k, 16, 1, (1, 1))
    return container.write(header, bytes(k), out[:used].tobytes())


def best_of(work, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kodak", default="../shared/kodak")
    parser.add_argument("--size", type=int, default=2000, help="the hostile file's width and height")
    parser.add_argument("--out", default="benchmarks/results/work_limit")
    args = parser.parse_args()
    sets = {}
    photos = sorted(Path(args.kodak).glob("*.png"))
    if photos:
        sets["Kodak"] = {p.stem: np.asarray(Image.open(p).convert("RGB")) for p in photos}
    sets["graphics"] = graphics()
    rows = calibrate(sets)

    data = hostile(args.size, args.size)
    header = kvq.read_header(data)
    length = len(data) - container.OVERHEAD - header.palette_size
    kernel = entropy._kernel()
    n = header.n_pixels
    stream = np.frombuffer(data[-4 - length : -4], np.uint8).copy()

    def unlimited() -> None:
        out = np.zeros(n, np.uint16)
        status = kernel.run(out, header.width, header.height, header.k, entropy.table_bits(n), stream, True, 1 << 62,
                            kernel.SQUASH_TABLE, kernel.STRETCH_TABLE, kernel.RATE_TABLE)[0]  # fmt: skip
        assert status == kernel.OK

    def limited() -> None:
        try:
            kvq.decode(data)
        except kvq.FormatError as exc:
            assert "rule 27" in str(exc)
        else:
            raise AssertionError("the hostile file decoded")

    unlimited()  # compile
    before, after = best_of(unlimited), best_of(limited)
    lines = [
        "# Coding 1's work limit (spec rule 27)",
        "",
        f"`PYTHONPATH=. python benchmarks/work_limit.py`; limit = {entropy.WORK_PER_PIXEL} N + {entropy.WORK_PER_BYTE} L"
        " decisions (N pixels, L stream bytes). Taken on a shared, loaded 2-core machine: the times are CPU seconds of"
        " this process, best of 3.",
        "",
        "## Real files: the largest decisions / limit",
        "",
        "| set | options | largest D / limit | image |",
        "| --- | --- | ---: | --- |",
        *[f"| {s} | {o} | {r:.3f} | {w} |" for s, o, r, w in rows],
        "",
        f"Largest over all: {max(r for *_, r, _ in rows):.3f} (below 0.5: no real file within half of the limit).",
        "",
        "## The hostile file",
        "",
        f"{header.width} x {header.height} grey, K = 65,536, 20 decisions a pixel: {len(data):,} bytes"
        f" ({length:,} of stream).",
        "",
        "| decode | CPU seconds |",
        "| --- | ---: |",
        f"| no work limit (as before rule 27) | {before:.3f} |",
        f"| kvq.decode, refused by rule 27 | {after:.3f} |",
        "",
        f"Ratio {before / after:.1f}x. At the pixel limit (178,956,970 pixels) the same pattern costs"
        f" {before * 178_956_970 / n:.0f} s without the limit and about {after * 178_956_970 / n:.0f} s to be"
        " refused, by linear extrapolation.",
    ]
    Path(args.out).with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
