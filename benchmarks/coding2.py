"""Index coding 2 (stripes) beside coding 1, WebP-lossless and JPEG XL on the Kodak photos: issue 20's figures, in one run.

Usage (from the repository root; ``pip install -e ".[bench]"`` for imagecodecs)::

    PYTHONPATH=. python benchmarks/coding2.py [--kodak ../shared/kodak] [--ks 16,64,256] [--repeat 7]
        [--big-side 10000] [--out benchmarks/results/coding2]

For every photo and K, kvq quantizes once and the same palette and indices are stored as coding 1
(``coding="entropy"``) and coding 2 (``coding="striped"``); WebP-lossless (Pillow, ``lossless=True, quality=100,
method=6``) and JPEG XL lossless effort 9 (``imagecodecs.jpegxl_encode(..., effort=9)``) store the decoded pixels.
Every file decodes back to exactly those pixels. Reported, per K:

- **size**: mean bytes of coding 2 over coding 1, over WebP and over JPEG XL;
- **decode**: bytes to an RGB array, ns per pixel, the best of ``--repeat`` runs per photo, interleaved (coding 1,
  coding 2 on 1 and 2 threads, WebP, JPEG XL with ``numthreads`` 1 and 2), wall time (``time.perf_counter``: the only
  clock that shows two threads finishing sooner), averaged over the photos;
- **encode**: ``kvq.encode(image, k=K)`` with coding 2 over the same with ``coding="fixed"``, best of 3 each,
  interleaved, on one core (the process pinned to one CPU, so coding 2's thread pool has one thread) and on all cores.

Then, once: a 100-megapixel coding-2 file (a photo's indices tiled to ``--big-side`` squared), decoded whole by
``kvq decode`` to BMP and the 100-row band ``rows=(y, y + 100)`` of its middle through ``kvq.decode``, each in a
fresh process, with its time and peak resident memory (``ru_maxrss``) beside the output's size; the first-use compile
time (a fresh process with an empty numba cache decoding a small coding-2 file, against the same with the cache
warm); and a tiling check on a synthetic text image (the graphics set of ``benchmarks/graphics`` is built from
downloads; this stands in for it): the 4 x 4 tiled file's bytes over the untiled one's, for both codings.

Writes ``<out>.md`` and ``<out>.csv``. Timings on a shared machine are noisy: the ratios come from one run, each
photo's codecs interleaved.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import kvq
from kvq.coding import striped

DEFAULT_KODAK = "../shared/kodak"
DEFAULT_OUT = "benchmarks/results/coding2"
WEBP = {"lossless": True, "quality": 100, "method": 6}
JXL_EFFORT = 9
DECODERS = ("c1", "c2_t1", "c2_t2", "webp", "jxl_t1", "jxl_t2")
LABELS = {
    "c1": "coding 1",
    "c2_t1": "coding 2, 1 thread",
    "c2_t2": "coding 2, 2 threads",
    "webp": "WebP-LL",
    "jxl_t1": "JPEG XL, 1 thread",
    "jxl_t2": "JPEG XL, 2 threads",
}


def best(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def webp_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def measure(path: Path, k: int, repeat: int) -> dict[str, object]:
    import imagecodecs

    with Image.open(path) as im:
        image = np.asarray(im.convert("RGB"))
    fixed = kvq.encode_image(image, k=k, coding="fixed")
    palette, indices = fixed.palette, fixed.indices
    pixels = fixed.pixels()
    files = {
        "c1": kvq.encode_indexed(palette=palette, indices=indices, coding="entropy"),
        "c2": kvq.encode_indexed(palette=palette, indices=indices, coding="striped"),
    }
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "WEBP", **WEBP)
    files["webp"] = buffer.getvalue()
    files["jxl"] = bytes(imagecodecs.jpegxl_encode(pixels, lossless=True, effort=JXL_EFFORT))
    assert kvq.read_header(files["c2"]).coding == 2, "the encoder stored another coding"
    decoders: dict[str, Callable[[], np.ndarray]] = {
        "c1": lambda: kvq.decode(files["c1"]),
        "c2_t1": lambda: kvq.decode(files["c2"], threads=1),
        "c2_t2": lambda: kvq.decode(files["c2"], threads=2),
        "webp": lambda: webp_decode(files["webp"]),
        "jxl_t1": lambda: np.asarray(imagecodecs.jpegxl_decode(files["jxl"], numthreads=1)),
        "jxl_t2": lambda: np.asarray(imagecodecs.jpegxl_decode(files["jxl"], numthreads=2)),
    }
    for name, decode in decoders.items():
        assert np.array_equal(decode(), pixels), name
    times: dict[str, float] = dict.fromkeys(decoders, float("inf"))
    for _ in range(repeat):
        for name, decode in decoders.items():
            times[name] = min(times[name], best(decode))
    n = pixels.shape[0] * pixels.shape[1]
    row: dict[str, object] = {"photo": path.stem, "k": k, "pixels": n}
    row.update({f"{name}_bytes": len(data) for name, data in files.items()})
    row.update({f"{name}_ns": times[name] / n * 1e9 for name in decoders})
    return row


def encode_ratios(paths: list[Path], k: int) -> tuple[float, float]:
    """Coding 2's encode time over fixed width's: pinned to one CPU, then on all cores (best of 3 each, interleaved)."""
    cpus = os.sched_getaffinity(0)
    out = []
    for pinned in (True, False):
        os.sched_setaffinity(0, {min(cpus)} if pinned else cpus)
        try:
            total = {"striped": 0.0, "fixed": 0.0}
            for path in paths:
                with Image.open(path) as im:
                    image = np.asarray(im.convert("RGB"))
                kept = {"striped": float("inf"), "fixed": float("inf")}
                for _ in range(3):
                    for coding in kept:
                        kept[coding] = min(kept[coding], best(lambda coding=coding, image=image: kvq.encode(image, k=k, coding=coding)))
                for coding in kept:
                    total[coding] += kept[coding]
            out.append(total["striped"] / total["fixed"])
        finally:
            os.sched_setaffinity(0, cpus)
    return out[0], out[1]


def in_fresh_process(code: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``code`` in a new interpreter; it prints ``name=value`` lines, returned as floats (with ``peak_mb``)."""
    script = (
        textwrap.dedent(code) + "\nimport resource\nprint('peak_mb=%f' % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(done.stderr)
    return {key: float(value) for key, value in (line.split("=", 1) for line in done.stdout.split() if "=" in line)}


def big_file(path: Path, side: int, folder: Path) -> tuple[Path, int]:
    """A side x side coding-2 file: one photo's K = 64 indices tiled (the palette stays the photo's)."""
    with Image.open(path) as im:
        encoded = kvq.encode_image(np.asarray(im.convert("RGB")), k=64, coding="fixed")
    reps = (-(-side // encoded.indices.shape[0]), -(-side // encoded.indices.shape[1]))
    indices = np.tile(encoded.indices, reps)[:side, :side]
    target = folder / "big.kvq"
    target.write_bytes(kvq.encode_indexed(palette=encoded.palette, indices=indices, coding="striped"))
    return target, side * side


def big_and_partial(path: Path, side: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        big, n = big_file(path, side, Path(folder))
        baseline = in_fresh_process("import kvq, numpy, PIL.Image\nkvq.coding.by_name('striped').start()")
        band = in_fresh_process(
            f"""
            import time, kvq
            kvq.coding.by_name('striped').start()
            start = time.perf_counter()
            pixels = kvq.decode({str(big)!r}, rows=({side // 2}, {side // 2 + 100}))
            print('band_s=%f' % (time.perf_counter() - start))
            print('band_mb=%f' % (pixels.nbytes / 2**20))
            """
        )
        whole = in_fresh_process(
            f"""
            import time, sys
            from kvq.cli import main
            import kvq
            kvq.coding.by_name('striped').start()
            start = time.perf_counter()
            status = main(['decode', {str(big)!r}, '-o', {str(Path(folder) / "big.bmp")!r}, '-q'])
            print('whole_s=%f' % (time.perf_counter() - start))
            print('status=%d' % status)
            """
        )
        return {
            "pixels": n,
            "file_mb": big.stat().st_size / 2**20,
            "baseline_mb": baseline["peak_mb"],
            "band_s": band["band_s"],
            "band_peak_mb": band["peak_mb"],
            "band_out_mb": band["band_mb"],
            "whole_s": whole["whole_s"],
            "whole_peak_mb": whole["peak_mb"],
            "whole_out_mb": n * 3 / 2**20,
            "status": whole["status"],
        }


def first_use(path: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as folder:
        with Image.open(path) as im:
            small = np.asarray(im.convert("RGB"))[:64, :64]
        target = Path(folder) / "small.kvq"
        target.write_bytes(kvq.encode(small, k=16, coding="striped"))
        code = f"""
            import time
            start = time.perf_counter()
            import kvq
            kvq.decode({str(target)!r})
            print('seconds=%f' % (time.perf_counter() - start))
            """
        cold = in_fresh_process(code, {"NUMBA_CACHE_DIR": cache})
        warm = in_fresh_process(code, {"NUMBA_CACHE_DIR": cache})
    return {"cold_s": cold["seconds"], "warm_s": warm["seconds"]}


def text_image() -> np.ndarray:
    """A 384 x 256 'terminal': lines of monospace-like text in a few colours on a dark ground."""
    im = Image.new("RGB", (384, 256), (30, 30, 36))
    draw = ImageDraw.Draw(im)
    colours = [(220, 220, 220), (120, 200, 120), (230, 180, 90), (120, 160, 240)]
    for line in range(21):
        words = [f"def f{line}(x):", "return", f"x * {line + 3}", "# kvq", f"[{line:02d}]"]
        draw.text((6, 4 + 12 * line), "  ".join(words[: 2 + line % 4]), fill=colours[line % 4])
    return np.asarray(im)


def tiling() -> dict[str, float]:
    image = text_image()
    tiled = np.tile(image, (4, 4, 1))
    out = {}
    for coding in ("entropy", "striped"):
        one = len(kvq.encode(image, k=16, coding=coding))
        four = len(kvq.encode(tiled, k=16, coding=coding))
        out[coding] = four / one
    return out


def summarise(rows: list[dict[str, object]], ks: list[int]) -> list[dict[str, float]]:
    out = []
    for k in ks:
        group = [r for r in rows if r["k"] == k]

        def mean(key: str, group: list[dict[str, object]] = group) -> float:
            return float(np.mean([float(r[key]) for r in group]))  # type: ignore[arg-type]

        s = {"k": float(k), "photos": float(len(group))}
        s["c2_vs_c1"] = mean("c2_bytes") / mean("c1_bytes")
        s["c2_vs_webp"] = mean("c2_bytes") / mean("webp_bytes")
        s["c2_vs_jxl"] = mean("c2_bytes") / mean("jxl_bytes")
        s["c1_vs_jxl"] = mean("c1_bytes") / mean("jxl_bytes")
        for name in DECODERS:
            s[f"{name}_ns"] = mean(f"{name}_ns")
        out.append(s)
    return out


def markdown(
    summaries: list[dict[str, float]], encode: dict[int, tuple[float, float]], extra: dict[str, dict[str, float]], info: str
) -> str:
    lines = [
        "# Coding 2 (stripes) on the Kodak photos",
        "",
        f"`{info}`",
        "",
        "## Size (mean bytes of the whole file)",
        "",
        "| K | coding 2 / coding 1 | coding 2 / WebP-LL | coding 2 / JPEG XL e9 | coding 1 / JPEG XL e9 |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {s['k']:.0f} | {s['c2_vs_c1']:.3f} | {s['c2_vs_webp']:.3f} | {s['c2_vs_jxl']:.3f} | {s['c1_vs_jxl']:.3f} |" for s in summaries
    ]
    lines += [
        "",
        "## Decode, ns per pixel (wall, best of the repeats per photo, mean over photos)",
        "",
        "| K | " + " | ".join(LABELS[name] for name in DECODERS) + " | c2 1 thread / JXL 1 thread | c2 2 threads / JXL 2 threads "
        "| c2 speed-up 1 -> 2 threads |",
        "|---:|" + "---:|" * (len(DECODERS) + 3),
    ]
    for s in summaries:
        lines.append(
            f"| {s['k']:.0f} | "
            + " | ".join(f"{s[f'{name}_ns']:.1f}" for name in DECODERS)
            + f" | {s['c2_t1_ns'] / s['jxl_t1_ns']:.2f} | {s['c2_t2_ns'] / s['jxl_t2_ns']:.2f} | {s['c2_t1_ns'] / s['c2_t2_ns']:.2f} |"
        )
    lines += ["", "## Encode: coding 2 time / fixed-width time (whole kvq.encode, quantizing included)", ""]
    lines += ["| K | one core | all cores |", "|---:|---:|---:|"]
    lines += [f"| {k} | {one:.2f} | {every:.2f} |" for k, (one, every) in encode.items()]
    big = extra.get("big")
    if big:
        lines += [
            "",
            f"## A {big['pixels'] / 1e6:.0f}-megapixel coding-2 file ({big['file_mb']:.1f} MiB)",
            "",
            f"- the 100-row band of its middle, `kvq.decode(path, rows=(y, y + 100))`: {big['band_s']:.3f} s, peak RSS"
            f" {big['band_peak_mb']:.0f} MiB (a process that imported kvq and compiled its kernels: {big['baseline_mb']:.0f} MiB;"
            f" the band's pixels {big['band_out_mb']:.1f} MiB)",
            f"- the whole file, `kvq decode big.kvq -o big.bmp`: {big['whole_s']:.1f} s, peak RSS {big['whole_peak_mb']:.0f} MiB"
            f" for {big['whole_out_mb']:.0f} MiB of pixels (goal: at most the output + 64 MiB over the baseline)",
        ]
    first = extra.get("first_use")
    if first:
        lines += [
            "",
            "## First use",
            "",
            f"A fresh process with an empty numba cache: import kvq and decode a 64 x 64 coding-2 file in {first['cold_s']:.1f} s;"
            f" the same with the cache filled: {first['warm_s']:.2f} s (compiling adds {first['cold_s'] - first['warm_s']:.1f} s).",
        ]
    tiles = extra.get("tiling")
    if tiles:
        lines += [
            "",
            "## Tiling (a synthetic 384 x 256 text image, K = 16, tiled 4 x 4)",
            "",
            f"Tiled file / untiled file: coding 1 {tiles['entropy']:.2f}, coding 2 {tiles['striped']:.2f} (goal: at most 1.5;"
            " stripes add no long-range copy, so coding 2 does not change this).",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kodak", default=DEFAULT_KODAK)
    parser.add_argument("--ks", default="16,64,256")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--photos", type=int, default=0, help="use only the first N photos (0: all)")
    parser.add_argument("--big-side", type=int, default=10000, help="side of the big file (0: skip it)")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    paths = sorted(Path(args.kodak).glob("*.png"))
    if args.photos:
        paths = paths[: args.photos]
    if not paths:
        print(f"no photos in {args.kodak}; nothing measured")
        return 0
    ks = [int(k) for k in args.ks.split(",")]
    import imagecodecs

    info = (
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {striped.cores()} cores, load {os.getloadavg()[0]:.1f},"
        f" Python {platform.python_version()}, imagecodecs {imagecodecs.__version__}, {len(paths)} photos, best of {args.repeat}"
    )
    kvq.coding.by_name("striped").start()
    kvq.coding.by_name("entropy").start()
    rows = []
    for k in ks:
        for path in paths:
            row = measure(path, k, args.repeat)
            rows.append(row)
            print(f"{path.stem} K={k}: c2/c1 {row['c2_bytes'] / row['c1_bytes']:.3f}; ns/px " + ", ".join(
                f"{name} {row[f'{name}_ns']:.0f}" for name in DECODERS), flush=True)  # type: ignore[str-format]  # fmt: skip
    encode = {k: encode_ratios(paths[:4], k) for k in ks}
    print("encode", encode, flush=True)
    extra: dict[str, dict[str, float]] = {"tiling": tiling(), "first_use": first_use(paths[0])}
    print(extra, flush=True)
    if args.big_side:
        extra["big"] = big_and_partial(paths[0], args.big_side)
        print(extra["big"], flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    text = markdown(summarise(rows, ks), encode, extra, info + f", load at the end {os.getloadavg()[0]:.1f}")
    out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
