"""A folder of photos to palette PNGs: kvq against one pngquant call; and kvq png's start-up on an icon.

Usage::

    PYTHONPATH=. python benchmarks/png_folder.py [--repeat 3] [--out benchmarks/results/png_folder]

Two measurements, each a ratio between commands timed in the same run,
interleaved (every round runs every command once, in turn) so that all see
the same machine state; the best of ``--repeat`` rounds is compared:

1. **A folder.** ``kvq encode FOLDER -o OUT --format png -k 64 --jobs 2``
   and ``kvq png --nofs --jobs 2 64 FILES`` over the 12 Kodak photos, against
   one ``pngquant --nofs 64`` call over the same 12 files (pngquant works on
   one core). Goal (issue 18): kvq at most 1.0x pngquant's time. Also
   ``--speed 10`` (kvq's fastest palette), to show what the palette's work
   costs.
2. **Start-up.** ``kvq png 64 icon.png`` on a 128 x 128 RGBA icon (kodim01,
   cut down; dithered, pngquant's default), whole process, against
   ``python -c "import numpy, PIL.Image"``, the floor of any Python image
   tool. Goal: at most 2x. ``pngquant 64 icon.png`` for scale.

Wall-clock seconds, and CPU seconds (user + system of the command and the
processes it waited for). Inputs come from ``../shared/kodak`` (relative to
the project root) and are copied to a temporary folder outside the project;
every output goes there too. Writes ``OUT.md`` and ``OUT.csv``.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "kodak"


#: The commands' environment: as a user's, whose Python keeps the modules' bytecode
#: (a PYTHONDONTWRITEBYTECODE=1 here would compile kvq's sources in every process).
ENVIRONMENT = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``command``; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENVIRONMENT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def interleaved(commands: dict[str, list[str]], cwd: Path, repeat: int) -> dict[str, list[tuple[float, float]]]:
    """Each command once per round, in turn, after one untimed warm-up round (caches, compiled kernels)."""
    for command in commands.values():
        timed(command, cwd)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            runs[name].append(timed(command, cwd))
    return runs


def kvq_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "kvq", *map(str, args)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "png_folder"))
    args = parser.parse_args()
    if shutil.which("pngquant") is None:
        sys.exit("png_folder.py needs pngquant")
    photos = sorted(KODAK.glob("*.png"))
    if len(photos) != 12:
        sys.exit(f"png_folder.py needs the 12 Kodak photos in {KODAK}")
    env_note = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    pngquant_version = subprocess.run(["pngquant", "--version"], capture_output=True, text=True).stdout.strip()
    import compileall

    import kvq

    compileall.compile_dir(Path(kvq.__file__).parent, quiet=1)  # the bytecode an install leaves
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = work / "photos"
        folder.mkdir()
        for photo in photos:
            shutil.copy(photo, folder / photo.name)
        names = [f"photos/{photo.name}" for photo in photos]
        from PIL import Image

        with Image.open(photos[0]) as image:
            image.convert("RGBA").resize((128, 128), Image.LANCZOS).save(work / "icon.png")

        load_start = os.getloadavg()[0]
        folder_runs = interleaved(
            {
                "pngquant --nofs 64 (12 files, one call)": ["pngquant", "--nofs", "-f", "64", *names],
                "kvq encode FOLDER --format png -k 64 --jobs 2": kvq_command(
                    "encode", "photos", "-o", "web", "--format", "png", "-k", 64, "--jobs", 2, "-f", "-q"
                ),
                "kvq png --nofs --jobs 2 64 (12 files)": kvq_command("png", "--nofs", "--jobs", 2, "-f", "64", *names),
                "kvq encode FOLDER --format png -k 64 --jobs 2 --speed 10": kvq_command(
                    "encode", "photos", "-o", "web10", "--format", "png", "-k", 64, "--jobs", 2, "--speed", 10, "-f", "-q"
                ),
            },
            work,
            args.repeat,
        )
        startup_runs = interleaved(
            {
                'python -c "import numpy, PIL.Image"': [sys.executable, "-c", "import numpy, PIL.Image"],
                "kvq png 64 icon.png": kvq_command("png", "-f", "64", "icon.png"),
                "kvq png --nofs 64 icon.png": kvq_command("png", "--nofs", "-f", "64", "icon.png"),
                "pngquant 64 icon.png": ["pngquant", "-f", "64", "icon.png"],
            },
            work,
            args.repeat,
        )
        load_end = os.getloadavg()[0]

    def table(part: str, runs: dict[str, list[tuple[float, float]]], peer: str) -> list[str]:
        best_peer = min(w for w, _ in runs[peer])
        lines = ["| command | best (s) | worst (s) | CPU of the best (s) | vs " + peer.split(" (")[0] + " |", "|---|---:|---:|---:|---:|"]
        for name, values in runs.items():
            wall, cpu = min(values)
            lines.append(f"| {name} | {wall:.2f} | {max(w for w, _ in values):.2f} | {cpu:.2f} | {wall / best_peer:.2f}x |")
            rows.append({"part": part, "command": name, "best_s": f"{wall:.4f}", "worst_s": f"{max(w for w, _ in values):.4f}",
                         "cpu_s": f"{cpu:.4f}", "ratio": f"{wall / best_peer:.4f}", "runs": len(values)})  # fmt: skip
        return lines

    report = [
        "# A folder of photos to PNG, and kvq png's start-up",
        "",
        f"Command: `PYTHONPATH=. python benchmarks/png_folder.py --repeat {args.repeat}`",
        "",
        f"Machine: {env_note}; {pngquant_version and 'pngquant ' + pngquant_version}. Load average (1 minute) "
        f"{load_start:.2f} at the start, {load_end:.2f} at the end (0 on an idle machine; above 2, two processes "
        "cannot each get a core). Runs interleaved; the best of each command's runs.",
        "",
        "## 1. The 12 Kodak photos (768x512) to palette PNGs at 64 colours, no dithering",
        "",
        *table("folder", folder_runs, "pngquant --nofs 64 (12 files, one call)"),
        "",
        "## 2. Start-up: one 128 x 128 RGBA icon, whole process",
        "",
        *table("startup", startup_runs, 'python -c "import numpy, PIL.Image"'),
        "",
    ]
    out = Path(args.out)
    out.with_suffix(".md").write_text("\n".join(report))
    with out.with_suffix(".csv").open("w", newline="") as fp:
        writer = csv.DictWriter(fp, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print("\n".join(report))


if __name__ == "__main__":
    main()
