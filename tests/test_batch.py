"""kvq.batch: many files in one call, serially and on a process pool; the manifest."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kvq
import kvq.pool
from kvq import batch
from kvq.manifest import ManifestWriter, read_manifest


@functools.cache
def _china() -> np.ndarray:
    from sklearn.datasets import load_sample_image

    return load_sample_image("china.jpg")


def photo_tiles(count: int) -> list[np.ndarray]:
    """``count`` different real-photo images: 64x48 tiles of scikit-learn's china.jpg, every other one flipped."""
    china = _china()
    tiles = []
    for i in range(count):
        y, x = 40 + (i // 8) * 48 % 360, (i % 8) * 64
        tile = china[y : y + 48, x : x + 64]
        tiles.append(np.ascontiguousarray(tile[::-1] if i % 2 else tile))
    return tiles


def make_tree(root: Path) -> dict[str, np.ndarray]:
    """{a,b}.png, sub/{c,d}.png, sub/deeper/e.bmp (lossless formats, so the pixels are known),
    a broken sub/broken.png, a hidden file and a text file, under ``root``."""
    names = ["a.png", "b.png", "sub/c.png", "sub/d.png", "sub/deeper/e.bmp"]
    images = dict(zip(names, photo_tiles(len(names)), strict=True))
    for name, pixels in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / name)
    (root / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / ".hidden.png").write_bytes(b"skip me")
    (root / "notes.txt").write_text("not an image")
    return images


def test_plan_mirrors_folders_and_flags_collisions(tmp_path):
    (tmp_path / "in" / "x").mkdir(parents=True)
    for name in ("in/a.png", "in/x/b.jpg", "in/x/b.png", "in/.secret.png", "in/c.txt", "in/d.kvq", "loose.gif"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "in" / ".cache").mkdir()
    (tmp_path / "in" / ".cache" / "e.png").write_bytes(b"")
    out = tmp_path / "out"
    tasks = batch.plan([tmp_path / "in", tmp_path / "loose.gif", tmp_path / "in" / "a.png"], out, suffix=".kvq", find=batch.IMAGE_SUFFIXES)
    got = [(Path(t.source).relative_to(tmp_path).as_posix(), Path(t.target).relative_to(out).as_posix(), bool(t.error)) for t in tasks]
    assert got == [
        ("in/a.png", "a.kvq", False),
        ("in/x/b.jpg", "x/b.kvq", False),
        ("in/x/b.png", "x/b.kvq", True),  # same output as b.jpg: refused, not overwritten
        ("loose.gif", "loose.kvq", False),
    ]  # hidden files and folders and .kvq files are not taken from folders; a.png named twice is planned once
    assert "in/x/b.jpg" in tasks[2].error.replace(os.sep, "/")


def test_plan_without_output_writes_beside_inputs(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "p.png").write_bytes(b"")
    (tasks,) = [batch.plan([tmp_path / "d"], None, suffix=".kvq", find=batch.IMAGE_SUFFIXES)]
    assert [t.target for t in tasks] == [str(tmp_path / "d" / "p.kvq")]


def encode_tree(tmp_path: Path, **kwargs) -> tuple[dict[str, np.ndarray], list[batch.FileResult]]:
    images = make_tree(tmp_path / "photos")
    results = list(batch.encode_files([tmp_path / "photos"], tmp_path / "out", k=16, **kwargs))
    return images, results


def by_name(results: list[batch.FileResult], root: Path) -> dict[str, batch.FileResult]:
    return {Path(r.source).relative_to(root).as_posix(): r for r in results}


def test_encode_folder_serially(tmp_path):
    images, results = encode_tree(tmp_path)
    rows = by_name(results, tmp_path / "photos")
    assert sorted(rows) == sorted([*images, "sub/broken.png"])
    assert [Path(r.source).name for r in results] == ["a.png", "b.png", "broken.png", "c.png", "d.png", "e.bmp"]
    broken = rows.pop("sub/broken.png")
    assert broken.status == "failed" and "not an image" in broken.reason and "\n" not in broken.reason
    assert not (tmp_path / "out" / "sub" / "broken.kvq").exists()
    for name, row in rows.items():
        data = (tmp_path / "out" / name).with_suffix(".kvq").read_bytes()
        with Image.open(tmp_path / "photos" / name) as source:
            encoded = kvq.encode_image(source, k=16)
        assert data == encoded.data  # the batch writes exactly what kvq.encode makes
        assert row.status == "done" and row.reason == ""
        assert (row.width, row.height, row.k, row.coding, row.bytes) == (64, 48, encoded.header.k, encoded.header.coding, len(data))
        assert row.bits_per_pixel == 8 * len(data) / (64 * 48)
        assert row.psnr == pytest.approx(kvq.metrics.psnr(encoded.original, encoded.pixels()))
    assert not list((tmp_path / "out").rglob(".*")), "no temporary file is left behind"


def test_rerun_skips_valid_outputs_and_refuses_foreign_ones(tmp_path):
    images, first = encode_tree(tmp_path)
    out = tmp_path / "out"
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.kvq")}
    # An output that is not a complete .kvq of its input: truncated, and one of another size.
    (out / "b.kvq").write_bytes((out / "b.kvq").read_bytes()[:-1])
    (out / "sub" / "c.kvq").write_bytes(kvq.encode(np.zeros((5, 5, 3), np.uint8), k=2))
    again = by_name(list(batch.encode_files([tmp_path / "photos"], out, k=16)), tmp_path / "photos")
    assert again["a.png"].status == again["sub/d.png"].status == again["sub/deeper/e.bmp"].status == "skipped"
    assert again["a.png"].k == by_name(first, tmp_path / "photos")["a.png"].k and again["a.png"].psnr is None
    for name in ("b.png", "sub/c.png"):
        assert again[name].status == "failed" and "is not a complete .kvq of this input" in again[name].reason
    assert again["sub/broken.png"].status == "failed"  # still broken: tried again
    assert (out / "a.kvq").stat().st_mtime_ns == stamps[out / "a.kvq"], "a valid output is not rewritten"
    forced = by_name(list(batch.encode_files([tmp_path / "photos"], out, k=16, force=True)), tmp_path / "photos")
    assert forced["b.png"].status == forced["sub/c.png"].status == forced["a.png"].status == "done"
    assert (out / "b.kvq").read_bytes() == kvq.encode(images["b.png"], k=16)


def test_no_skip_existing_fails_existing_outputs(tmp_path):
    encode_tree(tmp_path)
    results = list(batch.encode_files([tmp_path / "photos"], tmp_path / "out", k=16, skip_existing=False))
    assert {r.status for r in results} == {"failed"}
    assert all("exists" in r.reason for r in results if not r.source.endswith("broken.png"))


def test_interrupted_batch_resumes(tmp_path):
    images = make_tree(tmp_path / "photos")
    results = batch.encode_files([tmp_path / "photos"], tmp_path / "out", k=16)
    first_two = [next(results), next(results)]
    results.close()  # the caller stops (Ctrl-C, a crash): nothing more is written
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == ["a.kvq", "b.kvq"] and all(r.status == "done" for r in first_two)
    resumed = by_name(list(batch.encode_files([tmp_path / "photos"], tmp_path / "out", k=16)), tmp_path / "photos")
    assert [resumed[n].status for n in ("a.png", "b.png")] == ["skipped", "skipped"]
    assert all(resumed[n].status == "done" for n in images if n not in ("a.png", "b.png"))


def test_process_pool_is_byte_identical_to_serial(tmp_path):
    images = make_tree(tmp_path / "photos")
    serial = by_name(list(batch.encode_files([tmp_path / "photos"], tmp_path / "serial", k=16)), tmp_path / "photos")
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        pooled = by_name(list(batch.encode_files([tmp_path / "photos"], tmp_path / "pool", k=16, executor=pool)), tmp_path / "photos")
    own = by_name(list(batch.encode_files([tmp_path / "photos"], tmp_path / "own", k=16, jobs=2)), tmp_path / "photos")
    for rows in (pooled, own):
        assert {n: r.status for n, r in rows.items()} == {n: r.status for n, r in serial.items()}
    for name in images:
        data = (tmp_path / "serial" / name).with_suffix(".kvq").read_bytes()
        assert (tmp_path / "pool" / name).with_suffix(".kvq").read_bytes() == data
        assert (tmp_path / "own" / name).with_suffix(".kvq").read_bytes() == data


def die_on_c(task: batch.Task) -> batch.FileResult:
    """A worker that dies (as if killed for memory) on any file named c.png."""
    if Path(task.source).name == "c.png":
        os._exit(9)
    return batch.encode_task(task, kvq.EncoderOptions(k=16))


def test_own_pool_survives_a_worker_that_dies(tmp_path):
    images = make_tree(tmp_path / "photos")
    tasks = batch.plan([tmp_path / "photos"], tmp_path / "out", suffix=".kvq", find=batch.IMAGE_SUFFIXES)
    rows = by_name(list(batch.run(tasks, die_on_c, jobs=2)), tmp_path / "photos")
    assert sorted(rows) == sorted([*images, "sub/broken.png"])
    assert rows["sub/c.png"].status == "failed" and "worker process died" in rows["sub/c.png"].reason
    # The death breaks the whole pool: a file the other worker had just written, its result
    # not yet back, is retried alone, finds its complete output and is reported skipped (as
    # on a Dask cluster, tests/test_dask.py; seen once in a loaded full run). The output
    # folder was empty: whatever is there this batch wrote, and it must be the file's encode.
    for name in images:
        if name != "sub/c.png":
            assert rows[name].status in ("done", "skipped"), rows[name]
            with Image.open(tmp_path / "photos" / name) as source:  # its metadata (a BMP's resolution) rides along
                assert (tmp_path / "out" / name).with_suffix(".kvq").read_bytes() == kvq.encode(source, k=16), name


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_manifest(tmp_path, suffix):
    _, results = encode_tree(tmp_path)
    path = tmp_path / f"manifest{suffix}"
    with ManifestWriter(path, "encode") as manifest:
        for result in results:
            manifest.add(result)
        assert not path.exists(), "the manifest appears only when complete"
    rows = read_manifest(path)
    assert [Path(r["source"]).name for r in rows] == [Path(r.source).name for r in results]
    assert [r["status"] for r in rows] == [r.status for r in results]
    first = rows[0]
    assert set(first) >= {"source", "target", "status", "reason", "k", "coding", "bytes", "bits_per_pixel", "psnr", "seconds"}
    if suffix == ".json":
        document = json.loads(path.read_text())
        assert document["summary"] == {"done": 5, "skipped": 0, "failed": 1}
        assert first["bytes"] == results[0].bytes and first["lossless"] is False
    else:
        assert int(first["bytes"]) == results[0].bytes and float(first["psnr"]) == pytest.approx(results[0].psnr, rel=1e-5)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_manifest_lossless_and_replacement_rules(tmp_path):
    lossless = batch.FileResult("a.png", "a.kvq", "done", psnr=float("inf"), bytes=70)
    path = tmp_path / "m.json"
    with ManifestWriter(path, "encode") as manifest:
        manifest.add(lossless)
    (row,) = read_manifest(path)
    assert row["psnr"] is None and row["lossless"] is True
    with ManifestWriter(path, "encode") as manifest:  # a manifest is replaced: resuming writes it again
        pass
    assert read_manifest(path) == []
    csv_path = tmp_path / "m.csv"
    with ManifestWriter(csv_path, "encode") as manifest:
        manifest.add(lossless)
    assert read_manifest(csv_path)[0]["psnr"] == "inf"
    # A manifest from before the warnings column is a kvq manifest too; a CSV that shares only a first word is not.
    older = tmp_path / "older.csv"
    older.write_text("source,target,status,reason,width,height,k,coding,bytes,bits_per_pixel,psnr,seconds\na.png,a.kvq,done,,,,,,,,,0.1\n")
    with ManifestWriter(older, "encode") as manifest:
        manifest.add(lossless)
    assert [r["source"] for r in read_manifest(older)] == ["a.png"] and "warnings" in read_manifest(older)[0]
    (tmp_path / "sources.csv").write_text("source,comment\nx,y\n")
    with pytest.raises(kvq.KvqError, match="not a kvq manifest"):
        ManifestWriter(tmp_path / "sources.csv", "encode")
    (tmp_path / "notes.csv").write_text("precious,data\n")
    with pytest.raises(kvq.KvqError, match="not a kvq manifest"):
        ManifestWriter(tmp_path / "notes.csv", "encode")
    with pytest.raises(kvq.KvqError, match=r"\.csv or \.json"):
        ManifestWriter(tmp_path / "m.txt", "encode")
    assert (tmp_path / "notes.csv").read_text() == "precious,data\n"


def test_manifest_written_on_interrupt_not_on_error(tmp_path):
    row = batch.FileResult("a.png", "a.kvq", "done")
    with pytest.raises(KeyboardInterrupt), ManifestWriter(tmp_path / "m.csv", "encode") as manifest:
        manifest.add(row)
        raise KeyboardInterrupt
    assert len(read_manifest(tmp_path / "m.csv")) == 1
    with pytest.raises(RuntimeError), ManifestWriter(tmp_path / "n.csv", "encode") as manifest:
        manifest.add(row)
        raise RuntimeError("bug")
    assert not (tmp_path / "n.csv").exists() and not list(tmp_path.glob(".n.csv*"))


def test_own_pool_from_a_threaded_program_uses_a_fork_server(tmp_path):
    """Forking a process that has other threads is unsafe: the pool then starts from a fork server."""
    import threading

    images = make_tree(tmp_path / "photos")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        pool = batch.process_pool(2)
        try:
            assert pool._mp_context.get_start_method() == "forkserver"
        finally:
            pool.shutdown()
        results = list(batch.encode_files([tmp_path / "photos"], tmp_path / "out", k=16, jobs=2))
    finally:
        stop.set()
        other.join()
    failed = [(r.source, r.reason) for r in results if r.status == "failed"]
    assert sorted(r.status for r in results) == ["done"] * len(images) + ["failed"], failed
    for name in images:
        with Image.open(tmp_path / "photos" / name) as source:
            assert (tmp_path / "out" / name).with_suffix(".kvq").read_bytes() == kvq.encode(source, k=16)


def test_a_callers_warning_filters_still_decide(tmp_path, monkeypatch):
    # Recording each file's warnings must not overrule a caller who made Pillow's bomb warning an error.
    import warnings

    (tmp_path / "photos").mkdir()
    Image.fromarray(photo_tiles(1)[0]).save(tmp_path / "photos" / "a.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 64 x 48 = 3072 pixels: a warning, not an error
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        (refused,) = batch.encode_files([tmp_path / "photos"], tmp_path / "strict", k=8)
    (warned,) = batch.encode_files([tmp_path / "photos"], tmp_path / "lenient", k=8)
    assert refused.status == "failed" and "exceeds limit" in refused.reason
    assert warned.status == "done" and "exceeds limit" in warned.warnings


def test_ctrl_c_inside_a_compiled_kernel_is_told_apart_from_a_failure(tmp_path, monkeypatch):
    # numba turns an interrupted kernel into "SystemError: ... returned a result with an exception set", its
    # KeyboardInterrupt one or more links down the chain: such a file stops the batch, it is not a failed row.
    from kvq import fileio
    from kvq.errors import caused_by_ctrl_c

    def chained(depth):
        try:
            if depth == 0:
                raise KeyboardInterrupt
            chained(depth - 1)
        except BaseException as exc:
            raise SystemError("returned a result with an exception set") from exc

    for depth in (0, 2):
        with pytest.raises(SystemError) as caught:
            chained(depth)
        assert caused_by_ctrl_c(caught.value)
    assert not caused_by_ctrl_c(SystemError("a real bug"))

    def interrupted_kernel(*args, **kwargs):
        chained(1)

    monkeypatch.setattr(fileio, "encode_file", interrupted_kernel)
    with pytest.raises(SystemError):
        batch.encode_task(batch.Task(str(tmp_path / "a.png"), str(tmp_path / "a.kvq")), kvq.EncoderOptions())


def tiles_folder(tmp_path: Path, count: int) -> list[batch.Task]:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, tile in enumerate(photo_tiles(count)):
        Image.fromarray(tile).save(folder / f"{i:02d}.png")
    return batch.plan([folder], tmp_path / "out", suffix=".kvq", find=batch.IMAGE_SUFFIXES)


def on_disk(tmp_path: Path) -> list[str]:
    """The outputs in place, every one a complete .kvq; no temporary file is left beside them."""
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert not [name for name in names if name.startswith(".")], names
    for name in names:
        kvq.decode(tmp_path / "out" / name)
    return names


@pytest.mark.parametrize("runner", ["serial", "jobs", "threads", "processes"])
def test_a_stop_set_by_the_caller_starts_no_new_file_and_reports_those_in_hand(tmp_path, runner):
    # The caller's loop sets the flag at the first result: the generator ends by itself, having yielded exactly
    # the files whose outputs are on disk. kvq's own pool holds one file per worker, so at most those finish.
    import threading
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    tasks = tiles_folder(tmp_path, 16)
    work = functools.partial(batch.encode_task, options=kvq.EncoderOptions(k=16))
    stop = threading.Event()
    executors = {"threads": ThreadPoolExecutor(2), "processes": ProcessPoolExecutor(2)}
    settings = {"serial": {}, "jobs": {"jobs": 2}, **{name: {"executor": pool} for name, pool in executors.items()}}[runner]
    reported = []
    try:
        for result in batch.run(tasks, work, stop=stop, **settings):
            stop.set()
            reported.append(result)
    finally:
        for pool in executors.values():
            pool.shutdown()
    assert all(r.status == "done" for r in reported)
    assert sorted(Path(r.target).name for r in reported) == on_disk(tmp_path)
    most = {"serial": 1, "jobs": 2, "threads": 4, "processes": 4}[runner]  # the first, and the others in hand
    assert 1 <= len(reported) <= most < 16


def test_a_stop_set_by_a_work_function_lets_its_file_finish(tmp_path):
    import threading

    tasks = tiles_folder(tmp_path, 8)
    stop = threading.Event()

    def work(task: batch.Task) -> batch.FileResult:
        result = batch.encode_task(task, kvq.EncoderOptions(k=8))
        if task.source.endswith("02.png"):
            stop.set()  # as a signal handler sets it, in the middle of a file
        return result

    reported = [Path(r.target).name for r in batch.run(tasks, work, stop=stop)]
    assert reported == ["00.kvq", "01.kvq", "02.kvq"] == on_disk(tmp_path)


def test_the_library_never_touches_the_sigint_handler(tmp_path):
    import signal

    tasks = tiles_folder(tmp_path, 4)
    before = signal.getsignal(signal.SIGINT)
    for jobs in (None, 2):
        for _ in batch.run(tasks, functools.partial(batch.encode_task, options=kvq.EncoderOptions(k=4), force=True), jobs=jobs):
            assert signal.getsignal(signal.SIGINT) is before


def quick(task: batch.Task) -> batch.FileResult:
    Path(task.target).write_text("done")
    return batch.FileResult(task.source, task.target, "done")


def slow_unless_crash(task: batch.Task) -> batch.FileResult:
    if Path(task.source).name == "crash":
        os._exit(9)
    time.sleep(0.2)  # a file's work, so that the crash is seen while others are in hand
    return quick(task)


def blocked_in_hand(task: batch.Task) -> batch.FileResult:
    """A file that never finishes: half written to its temporary file, it says so, and waits."""
    from kvq.fileio import atomic_write

    if not task.source.endswith("slow"):
        return quick(task)

    def write(fp):
        fp.write(b"half of a file")
        fp.flush()
        Path(task.target + ".ready").write_text(str(os.getpid()))
        while True:
            time.sleep(0.05)

    atomic_write(task.target, write)
    return batch.FileResult(task.source, task.target, "done")


def test_keyboard_interrupt_stops_at_once_and_unwinds_the_files_in_hand(tmp_path):
    # A second Ctrl-C reaches the runner as KeyboardInterrupt: kvq's own workers are stopped, the file in hand
    # unwinds (its temporary file removed, no output), and nothing waits for it to finish.
    tasks = [batch.Task("quick", str(tmp_path / "quick")), batch.Task("slow", str(tmp_path / "slow"))]
    results = batch.run(tasks, blocked_in_hand, jobs=2)
    assert next(results).source == "quick"
    ready = tmp_path / "slow.ready"
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert time.monotonic() < deadline, "the slow file never started"
        time.sleep(0.01)
    worker = int(ready.read_text())
    with pytest.raises(KeyboardInterrupt):
        results.throw(KeyboardInterrupt())
    while _alive(worker):
        assert time.monotonic() < deadline, "the worker in hand was not stopped"
        time.sleep(0.01)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quick", "slow.ready"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie until its parent reaps it: gone as far as its files go.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    return True


def test_ctrl_c_while_files_are_retried_after_a_worker_died_stops_between_two(tmp_path):
    import threading

    tasks = [batch.Task("crash", str(tmp_path / "crash"))] + [batch.Task(f"s{i}", str(tmp_path / f"t{i}")) for i in range(8)]
    stop = threading.Event()
    reported = []
    for result in batch.run(tasks, slow_unless_crash, jobs=2, stop=stop):
        if result.source == tasks[0].source:  # the crash is known: its worker died, the pool was rebuilt
            assert result.status == "failed" and "worker process died" in result.reason
            stop.set()
        if result.status == "done":
            reported.append(Path(result.target).name)
    assert len(reported) < 8 and sorted(reported) == sorted(p.name for p in tmp_path.iterdir())


def test_a_temporary_file_is_removed_whatever_interrupts_its_write(tmp_path, monkeypatch):
    # Ctrl-C (a KeyboardInterrupt) the moment the temporary file exists, before anything is written to it.
    from kvq import fileio

    real = os.fdopen

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "fdopen", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_write(tmp_path / "x.kvq", b"data")
    monkeypatch.setattr(fileio.os, "fdopen", real)
    assert list(tmp_path.iterdir()) == []


def logged_work(task: batch.Task) -> batch.FileResult:
    """A file's work that logs each attempt and each completion (a line in ``attempts`` and ``done`` beside the
    output) and does what the file's name says to the worker on the first attempt, or on every one (``always-``):
    ``kill-N`` sends it signal N."""
    import signal

    folder = Path(task.target).parent
    name = Path(task.source).name
    with open(folder / "attempts", "a") as log:
        log.write(name + "\n")
    first = not (folder / f"{name}.tried").exists()
    (folder / f"{name}.tried").touch()
    done = folder / "done"
    if done.exists() and name in done.read_text().split():
        # As encode_task does with a valid output: a file its worker finished just before the pool was put down
        # (the other worker's death), its result not yet recorded, is run again and finds it done (seen in a
        # fresh clone). Nothing is made twice.
        return batch.FileResult(task.source, task.target, "done")
    if "kill-" in name and (first or name.startswith("always-")):
        signum = signal.Signals(int(name.split("kill-")[1]))
        if signum not in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
            # Its default action, whatever this run inherited (nohup ignores SIGHUP): kvq handles only these two.
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    Path(task.target).write_text("done")
    with open(folder / "done", "a") as log:
        log.write(name + "\n")
    return batch.FileResult(task.source, task.target, "done")


def log_lines(path: Path) -> list[str]:
    return sorted(path.read_text().split()) if path.exists() else []


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGKILL", "SIGUSR1", "SIGHUP", "SIGINT"])
def test_a_worker_ended_by_any_signal_costs_its_file_one_retry_and_the_batch_goes_on(tmp_path, signum):
    # SIGTERM made the worker raise SystemExit(143), which the pool handed back as the file's result and which
    # ended the whole batch. Every signal that ends a worker is now a worker that died: its file is run again
    # alone, once, and the batch goes on; SIGINT, the terminal's Ctrl-C, is the parent's, and a worker ignores it.
    import signal

    victim = f"kill-{int(getattr(signal, signum))}"
    names = ["a", "b", victim, "c", "d", "e"]
    tasks = [batch.Task(name, str(tmp_path / f"{name}.out")) for name in names]
    rows = {Path(r.source).name: r for r in batch.run(tasks, logged_work, jobs=2)}
    assert sorted(rows) == sorted(names) and all(r.status == "done" for r in rows.values()), rows
    assert log_lines(tmp_path / "done") == sorted(names)  # every file finished exactly once
    attempts = log_lines(tmp_path / "attempts")
    assert attempts.count(victim) == (1 if signum == "SIGINT" else 2)


def test_a_file_that_kills_its_worker_twice_fails_and_no_file_is_done_twice(tmp_path):
    names = ["a", "b", "always-kill-9", "c", "d", "e", "f"]
    tasks = [batch.Task(name, str(tmp_path / f"{name}.out")) for name in names]
    rows = {Path(r.source).name: r for r in batch.run(tasks, logged_work, jobs=2)}
    assert rows["always-kill-9"].status == "failed" and "worker process died" in rows["always-kill-9"].reason
    assert all(rows[name].status == "done" for name in names if name != "always-kill-9")
    assert log_lines(tmp_path / "attempts").count("always-kill-9") == 2  # once in the pool, once alone
    assert log_lines(tmp_path / "done") == sorted(n for n in names if n != "always-kill-9")


_REAL_RECORDED = kvq.pool._recorded


def recorded_then_lost(work, task, record):
    """kvq.pool._recorded, but the worker of the file named ``lost`` dies once its result is recorded."""
    import signal

    result = _REAL_RECORDED(work, task, record)
    if task.source == "lost":
        os.kill(os.getpid(), signal.SIGKILL)
    return result


def test_a_result_lost_when_the_pool_is_put_down_is_recovered_not_made_again(tmp_path, monkeypatch):
    # The file was finished, its output in place, but its worker died before handing the result back (the pool
    # terminates every worker when one dies): it is reported as finished, with its own row, and not done again.
    import tempfile

    monkeypatch.setattr(kvq.pool, "_recorded", recorded_then_lost)  # the forked workers inherit it
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    names = ["a", "lost", "b", "c"]
    tasks = [batch.Task(name, str(tmp_path / f"{name}.out")) for name in names]
    rows = {Path(r.source).name: r for r in batch.run(tasks, logged_work, jobs=2)}
    assert all(r.status == "done" for r in rows.values()) and sorted(rows) == sorted(names)
    assert log_lines(tmp_path / "done") == sorted(names)
    assert list((tmp_path / "tmp").iterdir()) == []  # the records went with the batch


def deaf_in_hand(task: batch.Task) -> batch.FileResult:
    """A file whose worker cannot act on SIGTERM, as one inside a compiled kernel acts on it only when the kernel
    returns: it says it is in hand, and never finishes."""
    import signal

    if not task.source.endswith("deaf"):
        return quick(task)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    Path(task.target + ".ready").write_text(str(os.getpid()))
    while True:
        time.sleep(0.05)


def test_stopping_at_once_does_not_wait_for_a_worker_inside_compiled_code(tmp_path):
    # The second Ctrl-C terminated the workers and went on; a worker inside a numba kernel (here: one that
    # cannot act on SIGTERM) ran on until its kernel returned, and the command's exit waited for it. Whatever
    # has not unwound after a moment is killed.
    tasks = [batch.Task("quick", str(tmp_path / "quick")), batch.Task("deaf", str(tmp_path / "deaf"))]
    results = batch.run(tasks, deaf_in_hand, jobs=2)
    assert next(results).source == "quick"
    ready = tmp_path / "deaf.ready"
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert time.monotonic() < deadline, "the deaf file never started"
        time.sleep(0.01)
    worker = int(ready.read_text())
    with pytest.raises(KeyboardInterrupt):
        results.throw(KeyboardInterrupt())
    assert not _alive(worker)  # gone by the time the batch has stopped


@pytest.mark.parametrize("parent_is_there", [True, False])
def test_a_worker_whose_parent_died_before_it_started_ends_at_once(parent_is_there):
    # The worker used to read its parent's pid after the fork: a parent that died in between was never
    # noticed (the worker took init as its parent). The pid is taken before the fork and compared once the
    # worker has asked Linux to kill it with its parent.
    import subprocess
    import sys

    from conftest import REPO, kvq_env

    probe = (
        f"import os, sys\nfrom kvq import pool\npool._worker_setup(os.getppid() if {parent_is_there} else 1 << 22)\nprint('running')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=kvq_env(), capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout.strip()) == ((0, "running") if parent_is_there else (1, ""))
    assert "Traceback" not in result.stderr


def test_a_callers_process_pool_that_loses_a_worker_fails_the_files_left_without_ending_the_batch(tmp_path):
    # kvq cannot rebuild a caller's pool: once broken it refuses new work. That refusal (BrokenProcessPool from
    # submit) ended the batch, results still to come unreported; each file left is now a failure of its own.
    from concurrent.futures import ProcessPoolExecutor

    names = ["a", "b", "always-kill-9"] + [f"f{i:02d}" for i in range(40)]
    tasks = [batch.Task(name, str(tmp_path / f"{name}.out")) for name in names]
    with ProcessPoolExecutor(2) as pool:
        rows = {Path(r.source).name: r for r in batch.run(tasks, logged_work, executor=pool)}
    assert sorted(rows) == sorted(names)
    assert rows["always-kill-9"].status == "failed"
    for row in rows.values():
        assert row.status == "done" or "worker process died" in row.reason or "process pool is broken" in row.reason, row
    # What was reported done is on disk. A file a worker finished as the pool broke is on disk too, its result lost
    # with the pool (seen under load): reported as a failure of the broken pool, never as done without its output.
    on_disk = {p.name[: -len(".out")] for p in tmp_path.glob("*.out")}
    done = {n for n in names if rows[n].status == "done"}
    assert done <= on_disk
    for name in on_disk - done:
        assert "worker process died" in rows[name].reason or "process pool is broken" in rows[name].reason, rows[name]


def test_one_path_is_one_input_and_argument_mistakes_are_kvq_errors(tmp_path: Path) -> None:
    # encode_files("photos", ...) planned one input a letter (p, h, o, ...), each a failure "no such file".
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "photos").mkdir()
    Image.fromarray(photo_tiles(1)[0]).save(tmp_path / "photos" / "a.png")
    for inputs, out in ((tmp_path / "photos", "first"), (str(tmp_path / "photos"), "out")):
        (row,) = batch.encode_files(inputs, tmp_path / out, k=4)
        assert row.status == batch.DONE and Path(row.target) == tmp_path / out / "a.kvq"
    (row,) = batch.decode_files(str(tmp_path / "out"), tmp_path / "back")
    assert row.status == batch.DONE
    with ThreadPoolExecutor(1) as pool, pytest.raises(kvq.OptionError, match="give either executor or jobs, not both"):
        list(batch.encode_files([tmp_path / "photos"], tmp_path / "out2", executor=pool, jobs=2))
