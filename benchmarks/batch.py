"""The command's speed against pngquant: one photo, a folder with --jobs 2, and a Dask cluster.

Usage::

    PYTHONPATH=. python benchmarks/batch.py [--repeat 7] [--out benchmarks/results/batch.md]

Three measurements, each a ratio between commands timed in the same run,
interleaved so that both see the same machine state, medians compared:

1. **One photo, whole process.** ``kvq encode kodim01.png -k 64`` against
   ``pngquant --nofs 64 kodim01.png``: what a shell loop pays per file,
   start-up and imports included. Goal: kvq at most 2x pngquant's time.
2. **A folder.** ``kvq encode FOLDER -k 64 --jobs 2`` over the 12 Kodak photos
   against one ``pngquant --nofs 64`` call over the same 12 files (pngquant
   works on one core). Goal: at most 1.0x.
3. **Dask.** ``kvq encode FOLDER -k 64 --scheduler ADDRESS`` on a
   ``LocalCluster`` of 2 single-threaded worker processes against
   ``kvq encode FOLDER -k 64 --jobs 1``, over 24 photos (the 12 Kodak photos
   twice, under two names). The cluster is started and warmed up (one batch)
   first, as a cluster is a long-lived service, with Dask's default worker
   settings except ``MALLOC_TRIM_THRESHOLD_`` (see the README). Goal: at
   least 1.7x the throughput of ``--jobs 1``.

Inputs come from ``../shared/kodak`` (relative to the project root) and are
copied to a temporary folder outside the project; every output goes there too.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "kodak"


def kvq_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "kvq", *map(str, args)]


#: This process's environment at the start. A LocalCluster's nannies run in this
#: process and add their workers' settings to os.environ, which every later
#: command would otherwise inherit.
ENVIRONMENT = dict(os.environ)

#: CPU seconds (user + system) of each timed command and the processes it waited for, by name.
CPU: dict[str, list[float]] = {}


def timed(command: list[str], cwd: Path, name: str = "") -> float:
    """Seconds one command takes, start to exit; a failure stops the benchmark.

    Its CPU time, and that of the worker processes it reaps (not a Dask
    cluster's), is kept in :data:`CPU`: unlike seconds, it hardly depends on
    what else the machine runs.
    """
    env = dict(ENVIRONMENT, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), ENVIRONMENT.get("PYTHONPATH")])))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
    CPU.setdefault(name, []).append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return seconds


def interleaved(
    commands: dict[str, list[str]], cwd: Path, repeat: int, before: dict[str, Callable[[], None]] | None = None
) -> dict[str, list[float]]:
    """Run each command ``repeat`` times, in turn; ``before[name]()`` runs untimed before each run."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            if before and name in before:
                before[name]()
            times[name].append(timed(command, cwd, name))
    return times


def clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def row(name: str, seconds: list[float], reference: float, files: int = 1, cpu: bool = True) -> str:
    median = statistics.median(seconds)
    line = f"| {name} | {median:.2f} | {min(seconds):.2f} | {max(seconds):.2f} | {files / median:.2f} | {median / reference:.2f}x |"
    return line + (f" {statistics.median(CPU[name]):.2f} |" if cpu else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs of each command (default 7; the Dask part runs half as many)")
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) here")
    args = parser.parse_args()
    pngquant = shutil.which("pngquant")
    photos = sorted(KODAK.glob("kodim*.png"))
    if pngquant is None or len(photos) < 12:
        raise SystemExit("needs pngquant on PATH and the 12 Kodak photos in ../shared/kodak")
    photos = photos[:12]
    version = subprocess.run([pngquant, "--version"], capture_output=True, text=True).stdout.split()[0]
    work = Path(tempfile.mkdtemp(prefix="kvq-bench-batch-"))
    lines: list[str] = []
    loads: list[float] = []
    try:
        one = work / "one"
        one.mkdir()
        shutil.copy(photos[0], one / photos[0].name)
        folder = work / "twelve"
        folder.mkdir()
        # pngquant writes its outputs beside its inputs: it gets its own copy,
        # or kvq's next run would find 24 images in the folder.
        pq_folder = work / "twelve-pngquant"
        pq_folder.mkdir()
        for photo in photos:
            shutil.copy(photo, folder / photo.name)
            shutil.copy(photo, pq_folder / photo.name)
        twice = work / "twentyfour"
        twice.mkdir()
        for photo in photos:
            shutil.copy(photo, twice / photo.name)
            shutil.copy(photo, twice / f"again-{photo.name}")

        loads.append(os.getloadavg()[0])
        # 1. One photo, whole process.
        single = interleaved(
            {
                "kvq encode -k 64": kvq_command("encode", one / photos[0].name, "-o", work / "one.kvq", "-k", 64, "--force", "-q"),
                "pngquant --nofs 64": [pngquant, "--nofs", "64", "--force", "-o", str(work / "one-pq.png"), str(one / photos[0].name)],
                "python -c 'import kvq'": [sys.executable, "-c", "import kvq"],
                "python -c pass": [sys.executable, "-c", "pass"],
            },
            work,
            args.repeat,
        )
        reference = statistics.median(single["pngquant --nofs 64"])
        ratios = [k / p for k, p in zip(single["kvq encode -k 64"], single["pngquant --nofs 64"], strict=True)]
        lines += [
            f"## 1. One photo, whole process ({photos[0].name}, 768x512)",
            "",
            "| command | median (s) | min (s) | max (s) | files/s | vs pngquant | CPU (s) |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *(row(name, seconds, reference) for name, seconds in single.items()),
            "",
            f"kvq / pngquant, median of the per-run ratios: **{statistics.median(ratios):.2f}x** (goal: at most 2x).",
            "",
        ]

        loads.append(os.getloadavg()[0])
        # 2. A folder of 12 photos, --jobs 2, against one pngquant call.
        outputs = work / "out-twelve"
        pq_inputs = sorted(pq_folder.glob("*.png"))
        folder_times = interleaved(
            {
                "kvq encode FOLDER -k 64 --jobs 2": kvq_command("encode", folder, "-o", outputs, "-k", 64, "--jobs", 2, "-q"),
                "kvq encode FOLDER -k 64 --jobs 1": kvq_command("encode", folder, "-o", outputs, "-k", 64, "--jobs", 1, "-q"),
                "pngquant --nofs 64 12 files": [pngquant, "--nofs", "64", "--force", "--ext", "-pq.png", *map(str, pq_inputs)],
            },
            work,
            args.repeat,
            before={name: lambda: clear(outputs) for name in ("kvq encode FOLDER -k 64 --jobs 2", "kvq encode FOLDER -k 64 --jobs 1")},
        )
        made = len(list(outputs.rglob("*.kvq")))
        if made != 12:
            raise SystemExit(f"kvq encoded {made} files of the folder of 12")
        reference = statistics.median(folder_times["pngquant --nofs 64 12 files"])
        pairs = zip(folder_times["kvq encode FOLDER -k 64 --jobs 2"], folder_times["pngquant --nofs 64 12 files"], strict=True)
        ratios = [k / p for k, p in pairs]
        lines += [
            "## 2. A folder of 12 photos",
            "",
            "| command | median (s) | min (s) | max (s) | files/s | vs pngquant | CPU (s) |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *(row(name, seconds, reference, 12) for name, seconds in folder_times.items()),
            "",
            f"kvq --jobs 2 / pngquant, median of the per-run ratios: **{statistics.median(ratios):.2f}x** (goal: at most 1.0x).",
            "",
        ]

        loads.append(os.getloadavg()[0])
        # 3. Dask: a LocalCluster of 2 single-threaded workers against --jobs 1, 24 photos.
        # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 for its workers by default,
        # which makes glibc map and zero every numpy temporary above 128 KiB: an
        # encode takes about 1.5x as long. The README says how to unset it, as here.
        import dask
        from distributed import LocalCluster

        trim = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
        with dask.config.set(trim), LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster:
            address = cluster.scheduler_address
            dask_out, serial_out = work / "out-dask", work / "out-serial"
            timed(kvq_command("encode", twice, "-o", dask_out, "-k", 64, "--scheduler", address, "-q"), work)  # warm-up
            dask_times = interleaved(
                {
                    "kvq encode FOLDER -k 64 --jobs 1": kvq_command("encode", twice, "-o", serial_out, "-k", 64, "--jobs", 1, "-q"),
                    "kvq encode FOLDER -k 64 --scheduler (2 workers x 1 thread)": kvq_command(
                        "encode", twice, "-o", dask_out, "-k", 64, "--scheduler", address, "-q"
                    ),
                },
                work,
                max(1, (args.repeat + 1) // 2),
                before={
                    "kvq encode FOLDER -k 64 --jobs 1": lambda: clear(serial_out),
                    "kvq encode FOLDER -k 64 --scheduler (2 workers x 1 thread)": lambda: clear(dask_out),
                },
            )
        serial_times = dask_times["kvq encode FOLDER -k 64 --jobs 1"]
        cluster_times = dask_times["kvq encode FOLDER -k 64 --scheduler (2 workers x 1 thread)"]
        reference = statistics.median(serial_times)
        speedups = [s / d for s, d in zip(serial_times, cluster_times, strict=True)]
        names = [p.with_suffix(".kvq").name for p in twice.iterdir()]
        same = all((dask_out / name).read_bytes() == (serial_out / name).read_bytes() for name in names)
        lines += [
            "## 3. Dask LocalCluster, 24 photos",
            "",
            "| command | median (s) | min (s) | max (s) | files/s | time vs --jobs 1 |",
            "|---|---:|---:|---:|---:|---:|",
            # No CPU column: the cluster's workers are this process's children,
            # and getrusage does not separate them from the commands it waited for.
            *(row(name, seconds, reference, 24, cpu=False) for name, seconds in dask_times.items()),
            "",
            f"Throughput of the cluster / --jobs 1, median of the per-run ratios: **{statistics.median(speedups):.2f}x**"
            f" (goal: at least 1.7x). Outputs byte-identical: {'yes' if same else 'NO'}.",
            "",
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    header = [
        "# The kvq command against pngquant: one photo, a folder, a Dask cluster",
        "",
        f"Command: `PYTHONPATH=. python benchmarks/batch.py --repeat {args.repeat}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs. Load average (1 minute) at the start of parts 1, 2 and 3:"
        f" {', '.join(f'{load:.2f}' for load in loads)}; {os.getloadavg()[0]:.2f} at the end (0 on an idle machine; this"
        f" benchmark's own runs raise it; above {os.cpu_count()}, parallel runs cannot get {os.cpu_count()} cores)."
        f" Python {platform.python_version()}, pngquant {version}. Runs interleaved; medians. CPU: user +"
        " system seconds of the command and the workers it reaps (a Dask cluster's workers are not counted).",
        "",
    ]
    report = "\n".join(header + lines)
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
