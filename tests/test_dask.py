"""The batch on a Dask cluster: a LocalCluster of 2 single-threaded worker processes on loopback.

Needs the ``dask`` extra (``pip install "kvq[dask]"``, part of ``kvq[test]``).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import pytest

from kvq import batch

distributed = pytest.importorskip("distributed")

from test_batch import by_name, make_tree  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR
    )
    with distributed.Client(cluster) as dask_client:
        yield dask_client
    cluster.close()


def test_same_bytes_as_serial_and_failures_reported(tmp_path, client):
    images = make_tree(tmp_path / "photos")
    serial = by_name(list(batch.encode_files([tmp_path / "photos"], tmp_path / "serial", k=16)), tmp_path / "photos")
    results = list(batch.encode_files([tmp_path / "photos"], tmp_path / "dask", k=16, executor=client))
    rows = by_name(results, tmp_path / "photos")
    assert len(results) == len(rows) == len(images) + 1
    assert rows["sub/broken.png"].status == "failed" and rows["sub/broken.png"].reason == serial["sub/broken.png"].reason
    # Paths come back as given, though workers got absolute ones.
    assert rows["a.png"].source == str(tmp_path / "photos" / "a.png")
    for name in images:
        assert rows[name].status == "done"
        assert (rows[name].k, rows[name].bytes, rows[name].psnr) == (serial[name].k, serial[name].bytes, serial[name].psnr)
        data = (tmp_path / "serial" / name).with_suffix(".kvq").read_bytes()
        assert (tmp_path / "dask" / name).with_suffix(".kvq").read_bytes() == data
    # Every finished task's result was released: nothing stays on the cluster
    # (releases travel to the scheduler asynchronously; give them a moment).
    deadline = time.monotonic() + 10
    while client.who_has() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not client.who_has()


def test_resumes_on_the_cluster(tmp_path, client):
    make_tree(tmp_path / "photos")
    list(batch.encode_files([tmp_path / "photos"], tmp_path / "out", k=16))
    again = list(batch.encode_files([tmp_path / "photos"], tmp_path / "out", k=16, executor=client))
    assert sorted(r.status for r in again) == ["failed"] + ["skipped"] * 5


def logged(task: batch.Task, log: str, options: object) -> batch.FileResult:
    """Encode one file, and note which process ran it and whether it encoded (``done``) or found its output."""
    result = batch.encode_task(task, options)
    with open(log, "a", encoding="utf-8") as fp:
        fp.write(f"{Path(task.source).name}\t{os.getpid()}\t{result.status}\n")
    return result


def test_no_work_repeated_when_a_worker_dies(tmp_path, client):
    """Kill the worker that ran the latest finished file, mid-batch, with SIGKILL.

    Dask recomputes a result that lived only on a dead worker if a client still
    holds it; the runner drops each result as it arrives, so no file finished
    before the kill is encoded again. The work notes every run of every file.
    """
    import functools
    import sys

    import cloudpickle
    from PIL import Image
    from test_batch import photo_tiles

    import kvq

    # The workers cannot import this test module: send its work function by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    folder = tmp_path / "photos"
    folder.mkdir()
    tiles = photo_tiles(16)
    for i, tile in enumerate(tiles):
        Image.fromarray(tile).save(folder / f"{i:02d}.png")
    log = tmp_path / "runs.log"
    tasks = batch.plan([folder], tmp_path / "out", suffix=".kvq", find=batch.IMAGE_SUFFIXES)
    work = functools.partial(logged, log=str(log), options=kvq.EncoderOptions(k=16))
    finished_before_kill: set[str] = set()
    results = []
    killed = None
    try:
        for result in batch.run(tasks, work, executor=client):
            results.append(result)
            if killed is None:
                finished_before_kill.add(Path(result.source).name)
                if len(results) == 4:
                    runs = dict(line.split("\t")[:2] for line in log.read_text().splitlines())
                    killed = int(runs[Path(result.source).name])
                    os.kill(killed, signal.SIGKILL)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert killed is not None
    # A file the dead worker had written but not yet reported is run again,
    # finds its valid output and is reported skipped; every other file is done.
    assert {r.status for r in results} <= {"done", "skipped"}
    assert all(r.status == "done" for r in results if Path(r.source).name in finished_before_kill)
    assert sorted(Path(r.source).name for r in results) == sorted(p.name for p in folder.iterdir())
    for result in results:
        assert Path(result.target).read_bytes() == kvq.encode(tiles[int(Path(result.source).stem)], k=16)
    runs: dict[str, list[str]] = {}
    encodes: dict[str, int] = {}
    for line in log.read_text().splitlines():
        name, pid, status = line.split("\t")
        runs.setdefault(name, []).append(pid)
        encodes[name] = encodes.get(name, 0) + (status == "done")
    assert any(runs[name][0] == str(killed) for name in finished_before_kill), "the killed worker had finished files"
    # The scheduler learns that a result was released a moment after the client has it: a kill in that moment
    # can have the file run again (seen under load). It then finds its valid output and encodes nothing.
    repeated = {name: runs[name] for name in finished_before_kill if encodes[name] != 1}
    assert not repeated, f"encoded again after the kill: {repeated}"


def test_command_line_scheduler(tmp_path, client):
    from test_cli_batch import run

    make_tree(tmp_path / "photos")
    serial = run("encode", "photos", "-o", "serial", "-k", "16", cwd=tmp_path)
    address = client.scheduler.address
    on_cluster = run("encode", "photos", "-o", "dask", "-k", "16", "--scheduler", address, "--manifest", "m.json", cwd=tmp_path)
    assert serial.returncode == on_cluster.returncode == 3, on_cluster.stderr
    assert "kvq: failed: " in on_cluster.stderr and "broken.png" in on_cluster.stderr
    for path in (tmp_path / "serial").rglob("*.kvq"):
        assert (tmp_path / "dask" / path.relative_to(tmp_path / "serial")).read_bytes() == path.read_bytes()
    decoded = run("decode", "dask", "-o", "back", "--scheduler", address, cwd=tmp_path)
    assert decoded.returncode == 0, decoded.stderr
    assert len(list((tmp_path / "back").rglob("*.png"))) == 5


def test_a_stop_reports_every_file_the_cluster_finishes(tmp_path, client):
    # The caller stops at the first result: the files already sent to the cluster and started run to the end
    # there (a running task cannot be stopped) and are reported; the others are cancelled.
    import functools
    import threading

    from PIL import Image
    from test_batch import photo_tiles

    import kvq

    (tmp_path / "photos").mkdir()
    for i, tile in enumerate(photo_tiles(24)):
        Image.fromarray(tile).save(tmp_path / "photos" / f"{i:02d}.png")
    tasks = batch.plan([tmp_path / "photos"], tmp_path / "out", suffix=".kvq", find=batch.IMAGE_SUFFIXES)
    work = functools.partial(batch.encode_task, options=kvq.EncoderOptions(k=16))
    stop = threading.Event()
    reported = []
    for result in batch.run(tasks, work, executor=client, stop=stop):
        stop.set()
        reported.append(Path(result.target).name)
    assert 1 <= len(reported) < 24 and sorted(reported) == sorted(p.name for p in (tmp_path / "out").iterdir())
