"""Index coding 1 on the Kodak photos: the file sizes and speed ratios of issue 10's goals, in one run.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/entropy.py [--kodak ../shared/kodak] [--ks 16,64,256]
        [--decode-repeat 21] [--encode-repeat 5] [--out benchmarks/results/entropy]

For every photo and K, kvq quantizes once per encode and the same palette and indices are stored five ways; the mean
bytes of each whole file are compared:

- ``.kvq`` fixed width: ``kvq.encode(image, k=K, coding="fixed")``;
- PNG-8: kvq's own palette and indices written by Pillow with zlib level 9 (``compress_level=9``);
- WebP-lossless of the decoded pixels (Pillow: ``lossless=True, quality=100, method=6``);
- JPEG XL lossless of the decoded pixels at effort 9 (``imagecodecs.jpegxl_encode(pixels, lossless=True, effort=9)``);
- the default ``kvq.encode(image, k=K)`` (index coding 1, entropy coded).

Every file is decoded again and must give exactly the same pixels. Three ratios per K follow: kvq's mean size over
WebP's and over JPEG XL's, and decode speed against WebP: file bytes to an RGB array, ``kvq.decode(data)`` against
``np.asarray(Image.open(BytesIO(webp)).convert("RGB"))``, the same image in the same run, warm (numba has compiled
the kernel before any timing), repeats interleaved, the median of each per image, on one thread (NUMBA_NUM_THREADS=1
and OMP_NUM_THREADS=1 are set before anything is imported). The encode cost is the default ``kvq.encode`` time over
the same encode with ``coding="fixed"`` (medians per image, interleaved). Times are taken with both
``time.perf_counter`` (wall) and ``time.process_time`` (CPU of this process); the ratios quoted use process time,
which other work on a shared machine disturbs less. Each ratio over the photos is the ratio of the mean times.

Writes ``<out>.md`` (the tables) and ``<out>.csv`` (one line per photo and K). Without the photos it says so and
exits 0.
"""

from __future__ import annotations

import os

# One thread for everything timed, set before numpy, numba or Pillow load their thread pools.
os.environ["NUMBA_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import argparse
import csv
import io
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import kvq
from kvq.coding import DEFAULT, by_code
from kvq.coding import FALLBACK as TEXTBOOK  # the fixed-width coding: the textbook N * ceil(log2 K)

DEFAULT_KODAK = "../shared/kodak"
DEFAULT_KS = (16, 64, 256)
DEFAULT_OUT = "benchmarks/results/entropy"
WEBP = {"lossless": True, "quality": 100, "method": 6}
JXL_EFFORT = 9
#: Issue 10's goals: size below both peers at every K, decode at least 0.25x WebP's speed, encode at most 1.3x fixed.
GOAL_DECODE = 0.25
GOAL_ENCODE = 1.3
CODECS = (TEXTBOOK.name, "png8", "webp", "jxl", "kvq")
HEADS = {
    TEXTBOOK.name: ".kvq fixed width",
    "png8": "PNG-8 (zlib 9)",
    "webp": "WebP-lossless (method 6)",
    "jxl": "JPEG XL lossless (effort 9)",
    "kvq": "default `kvq.encode` (entropy)",
}


def timed(call: Callable[[], object]) -> tuple[object, float, float]:
    """Run ``call`` once: its result, wall seconds and CPU seconds of this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def png8(palette: np.ndarray, indices: np.ndarray) -> bytes:
    image = Image.fromarray(indices.astype(np.uint8), "P")
    image.putpalette(palette.tobytes(), "RGB")
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=9)
    return buf.getvalue()


def webp(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "WEBP", **WEBP)
    return buf.getvalue()


def webp_decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def measure(path: Path, k: int, encode_repeat: int, decode_repeat: int) -> dict[str, object]:
    """Sizes and times of one photo at one K (see the module docstring)."""
    import imagecodecs

    with Image.open(path) as im:
        image = np.asarray(im.convert("RGB"))
    # Encodes, interleaved: the default coding and the textbook fixed width, the same quantization each time.
    times: dict[str, list[tuple[float, float]]] = {DEFAULT: [], TEXTBOOK.name: []}
    files: dict[str, bytes] = {}
    for _ in range(encode_repeat):
        for coding in times:
            options = {"coding": coding}
            data, wall, cpu = timed(lambda options=options: kvq.encode(image, k=k, **options))
            assert isinstance(data, bytes)
            if files.setdefault(coding, data) != data:
                raise AssertionError(f"{path.name} K={k}: {coding} encode is not deterministic")
            times[coding].append((wall, cpu))
    entropy, fixed = kvq.decode_indexed(files[DEFAULT]), kvq.decode_indexed(files[TEXTBOOK.name])
    if fixed.header.coding != TEXTBOOK.code or not (
        np.array_equal(entropy.indices, fixed.indices) and np.array_equal(entropy.palette, fixed.palette)
    ):
        raise AssertionError(f"{path.name} K={k}: the two codings do not store the same palette and indices")
    pixels = entropy.pixels()
    files["png8"] = png8(entropy.palette, entropy.indices)
    files["webp"] = webp(pixels)
    files["jxl"] = bytes(imagecodecs.jpegxl_encode(pixels, lossless=True, effort=JXL_EFFORT))
    files["kvq"] = files.pop(DEFAULT)
    # Every file holds exactly the same pixels.
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(files["png8"])).convert("RGB")), pixels)
    assert np.array_equal(webp_decode(files["webp"]), pixels)
    assert np.array_equal(np.asarray(imagecodecs.jpegxl_decode(files["jxl"])), pixels)
    assert np.array_equal(kvq.decode(files["kvq"]), pixels)
    # Decode: warm (the loads above compiled numba's kernel), interleaved, medians.
    decode = {"kvq": lambda: kvq.decode(files["kvq"]), "webp": lambda: webp_decode(files["webp"])}
    dtimes: dict[str, list[tuple[float, float]]] = {"kvq": [], "webp": []}
    for _ in range(decode_repeat):
        for name, call in decode.items():
            _, wall, cpu = timed(call)
            dtimes[name].append((wall, cpu))

    def med(samples: list[tuple[float, float]], which: int) -> float:
        return statistics.median(s[which] for s in samples)

    row: dict[str, object] = {
        "image": path.stem,
        "k": k,
        "k_stored": entropy.header.k,
        "coding": by_code(entropy.header.coding).name,
    }
    row.update({f"{name}_bytes": len(files[name]) for name in CODECS})
    for name in ("kvq", "webp"):
        row[f"decode_{name}_wall_s"] = med(dtimes[name], 0)
        row[f"decode_{name}_cpu_s"] = med(dtimes[name], 1)
    for name in times:
        row[f"encode_{name}_wall_s"] = med(times[name], 0)
        row[f"encode_{name}_cpu_s"] = med(times[name], 1)
    return row


def _mean(rows: list[dict[str, object]], key: str) -> float:
    return statistics.fmean(float(r[key]) for r in rows)  # type: ignore[arg-type]


def summarise(rows: list[dict[str, object]], ks: list[int]) -> list[dict[str, float]]:
    """Means per K and the ratios (sizes: of mean bytes; speeds: of mean median times)."""
    out = []
    for k in ks:
        group = [r for r in rows if r["k"] == k]
        s: dict[str, float] = {"k": k, "images": len(group)}
        for name in CODECS:
            s[name] = _mean(group, f"{name}_bytes")
        s["size_vs_webp"] = s["kvq"] / s["webp"]
        s["size_vs_jxl"] = s["kvq"] / s["jxl"]
        for clock in ("cpu", "wall"):
            s[f"decode_speed_{clock}"] = _mean(group, f"decode_webp_{clock}_s") / _mean(group, f"decode_kvq_{clock}_s")
            s[f"encode_cost_{clock}"] = _mean(group, f"encode_{DEFAULT}_{clock}_s") / _mean(group, f"encode_{TEXTBOOK.name}_{clock}_s")
        s["kvq_wins"] = sum(int(r["kvq_bytes"]) < min(int(r["webp_bytes"]), int(r["jxl_bytes"])) for r in group)  # type: ignore[call-overload]
        out.append(s)
    return out


def _k(value: float) -> str:
    return f"{value / 1000:,.0f} k"


def markdown(rows: list[dict[str, object]], summaries: list[dict[str, float]], info: dict[str, str]) -> str:
    lines = [
        "# Index coding 1 against WebP-lossless and JPEG XL on the Kodak photos",
        "",
        f"`{info['command']}`, {info['date']}: {info['images']}; {info['machine']}; {info['versions']}.",
        f"Load average (1, 5, 15 min) at the start: {info['load_start']}; at the end: {info['load_end']}"
        f" (the machine is shared; {info['cpus']} CPUs). Wall time of the run: {info['seconds']}.",
        "",
        "Mean bytes of the whole file, kvq's own palette and indices in every column (see `benchmarks/entropy.py`):",
        "",
        "| K | " + " | ".join(HEADS[name] for name in CODECS) + " |",
        "|---:|" + "---:|" * len(CODECS),
    ]
    for s in summaries:
        lines.append(f"| {s['k']:.0f} | " + " | ".join(_k(s[name]) for name in CODECS) + " |")
    lines += [
        "",
        "Exact means, in bytes:",
        "",
        "| K | " + " | ".join(HEADS[name] for name in CODECS) + " |",
        "|---:|" + "---:|" * len(CODECS),
    ]
    for s in summaries:
        lines.append(f"| {s['k']:.0f} | " + " | ".join(f"{s[name]:,.1f}" for name in CODECS) + " |")
    lines += [
        "",
        "Ratios, per K (sizes: kvq's mean bytes over the peer's; times: process time, `time.process_time`, the ratio of"
        " the mean of the per-photo medians; wall time, `time.perf_counter`, in brackets):",
        "",
        "| K | size ÷ WebP | size ÷ JPEG XL | photos where kvq is smaller than both | decode speed vs WebP | encode time ÷ fixed width |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        lines.append(
            f"| {s['k']:.0f} | {s['size_vs_webp']:.3f} | {s['size_vs_jxl']:.3f} | {s['kvq_wins']:.0f} of {s['images']:.0f}"
            f" | {s['decode_speed_cpu']:.2f}× ({s['decode_speed_wall']:.2f}×)"
            f" | {s['encode_cost_cpu']:.3f} ({s['encode_cost_wall']:.3f}) |"
        )
    met = [
        all(s["size_vs_webp"] < 1 and s["size_vs_jxl"] < 1 for s in summaries),
        all(s["decode_speed_cpu"] >= GOAL_DECODE for s in summaries),
        all(s["encode_cost_cpu"] <= GOAL_ENCODE for s in summaries),
    ]
    lines += [
        "",
        "Issue 10's goals, on process time: mean size below both WebP and JPEG XL at every K:"
        f" {'met' if met[0] else '**not met**'}; decode at least {GOAL_DECODE}× WebP's speed:"
        f" {'met' if met[1] else '**not met**'}; encode at most {GOAL_ENCODE}× the fixed-width encode:"
        f" {'met' if met[2] else '**not met**'}.",
        "",
        "*decode speed vs WebP* is WebP's decode time over kvq's (above 1: kvq decodes faster); *encode time ÷ fixed"
        " width* includes the quantization both encodes share. Every file was decoded again and gave exactly the"
        " same pixels; the entropy-coded and fixed-width files store the same palette and indices. Per-photo numbers:"
        f" `{Path(info['csv']).name}`.",
        "",
    ]
    return "\n".join(lines)


def _versions() -> str:
    from importlib.metadata import version

    import imagecodecs
    from PIL import features

    parts = [f"python {platform.python_version()}", f"kvq {kvq.__version__}"]
    parts += [f"{dist} {version(dist)}" for dist in ("numpy", "numba", "scikit-learn", "pillow", "imagecodecs")]
    parts += [f"libwebp {features.version('webp')}", str(imagecodecs.jpegxl_version())]
    return ", ".join(parts)


def _load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kodak", default=DEFAULT_KODAK, help=f"the photos' folder, from the repository root (default {DEFAULT_KODAK})")
    parser.add_argument("--ks", default=",".join(map(str, DEFAULT_KS)), help="palette sizes (default 16,64,256)")
    parser.add_argument("--images", type=int, default=None, help="only the first N photos (for a quick try)")
    parser.add_argument("--decode-repeat", type=int, default=21)
    parser.add_argument("--encode-repeat", type=int, default=5)
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output path without suffix, from the repository root (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    folder = ROOT / args.kodak
    photos = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if not photos:
        print(f"no photos in {args.kodak} (relative to the repository root): nothing to measure")
        return 0
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        print('JPEG XL needs imagecodecs: pip install "kvq[bench]"')
        return 0
    photos = photos[: args.images]
    ks = [int(k) for k in args.ks.split(",")]
    started, load_start = time.perf_counter(), _load()
    # Compile numba's kernel (or load it from its cache) before anything is timed.
    kvq.decode(kvq.encode(np.zeros((8, 8, 3), np.uint8) + np.arange(8, dtype=np.uint8)[:, None, None] * 30, k=4))
    rows = []
    for path in photos:
        for k in ks:
            row = measure(path, k, args.encode_repeat, args.decode_repeat)
            rows.append(row)
            print(
                f"{path.stem} K={k}: kvq {row['kvq_bytes']:,} B, WebP {row['webp_bytes']:,} B, JPEG XL {row['jxl_bytes']:,} B;"
                f" decode {row['decode_kvq_cpu_s']:.4f} s vs {row['decode_webp_cpu_s']:.4f} s;"
                f" encode {row[f'encode_{DEFAULT}_cpu_s']:.2f} s vs {row[f'encode_{TEXTBOOK.name}_cpu_s']:.2f} s",
                flush=True,
            )
    summaries = summarise(rows, ks)
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="", encoding="utf-8") as fp:
        writer = csv.DictWriter(fp, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: f"{value:.6g}" if isinstance(value, float) else value for key, value in row.items()})
    command = "PYTHONPATH=. python benchmarks/entropy.py" + (f" {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip())
    info = {
        "command": command,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "images": f"{len(photos)} photos of {args.kodak}",
        "machine": f"{platform.machine()}, {platform.system()}",
        "versions": _versions(),
        "load_start": load_start,
        "load_end": _load(),
        "cpus": str(os.cpu_count()),
        "seconds": f"{time.perf_counter() - started:.0f} s",
        "csv": str(out.with_suffix(".csv")),
    }
    text = markdown(rows, summaries, info)
    out.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
