"""The kvq command on many files: folders, --jobs, the manifest, resumption, exit statuses, progress.

Signals, terminals and worker pools (``--jobs``) run the command in a subprocess, as a user
runs it; the rest run ``kvq.cli.main`` in the test process on real descriptors 0-2
(``conftest.run_kvq_here``), the same code without the interpreter's start-up.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_batch import make_tree, photo_tiles

import kvq
from kvq.manifest import read_manifest

from conftest import kvq_command, kvq_env, run_kvq_here


def run(*args, cwd: Path) -> subprocess.CompletedProcess:
    """``kvq ARGS`` in this process, output as text; with worker processes (``--jobs`` other than 1,
    ``--scheduler``) in a subprocess (:func:`run_process`), so that no pool or cluster client starts in the tests'."""
    if "--scheduler" in args or ("--jobs" in args and str(args[args.index("--jobs") + 1]) != "1"):
        return run_process(*args, cwd=cwd)
    result = run_kvq_here(*args, cwd=cwd)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


def run_process(*args, cwd: Path) -> subprocess.CompletedProcess:
    """``kvq ARGS`` in a subprocess, as a user runs it, output as text."""
    return subprocess.run(kvq_command(*args), cwd=cwd, env=kvq_env(), capture_output=True, text=True, timeout=300)


@pytest.fixture()
def tree(tmp_path: Path) -> dict[str, np.ndarray]:
    return make_tree(tmp_path / "photos")


def test_folder_encode_lists_failures_and_exits_3(tmp_path, tree):
    result = run("encode", "photos", "-o", "out", "-k", "16", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    err = result.stderr.replace(os.sep, "/").splitlines()
    assert err[0] == "kvq: failed: photos/sub/broken.png: not an image Pillow can read"
    assert err[1].startswith("kvq encode: 5 done, 0 skipped (already there), 1 failed of 6 files in ")
    assert len(err) == 2 and result.stdout == ""  # no progress bar: standard error is not a terminal
    for name in tree:
        # The same door as a file: its metadata (a TIFF's resolution, say) rides along.
        with Image.open(tmp_path / "photos" / name) as source:
            assert (tmp_path / "out" / name).with_suffix(".kvq").read_bytes() == kvq.encode(source, k=16)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file()) == sorted(
        str(Path(name).with_suffix(".kvq").as_posix()) for name in tree
    )


def test_many_inputs_quiet_and_verbose(tmp_path, tree):
    quiet = run("encode", "photos/a.png", "photos/sub/c.png", "-o", "flat", "-k", "8", "-q", cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert sorted(p.name for p in (tmp_path / "flat").iterdir()) == ["a.kvq", "c.kvq"]
    verbose = run("encode", "photos/a.png", "photos/sub/c.png", "-o", "flat", "-k", "8", "-v", "--force", cwd=tmp_path)
    lines = verbose.stdout.replace(os.sep, "/").splitlines()
    assert verbose.returncode == 0 and len(lines) == 2
    size = len(kvq.encode(tree["a.png"], k=8))
    assert lines[0].startswith(f"flat/a.kvq: {size:,} bytes, {8 * size / (64 * 48):.3f} bpp, K=")
    again = run("encode", "photos/a.png", "photos/sub/c.png", "-o", "flat", "-k", "8", "-v", cwd=tmp_path)
    skipped = ["flat/a.kvq: exists and is valid, skipped", "flat/c.kvq: exists and is valid, skipped"]
    assert again.stdout.replace(os.sep, "/").splitlines() == skipped


def test_decode_folder_and_info_many(tmp_path, tree):
    run("encode", "photos", "-o", "out", "-k", "16", cwd=tmp_path)
    (tmp_path / "out" / "sub" / "broken.kvq").write_bytes(b"\x89KVQ\r\n\x1a\n" + bytes(40))
    decoded = run("decode", "out", "-o", "back", cwd=tmp_path)
    assert decoded.returncode == 3 and "kvq: failed: " in decoded.stderr and "broken.kvq" in decoded.stderr
    for name in tree:
        with Image.open((tmp_path / "back" / name).with_suffix(".png")) as im:
            assert np.array_equal(np.asarray(im.convert("RGB")), kvq.decode((tmp_path / "out" / name).with_suffix(".kvq").read_bytes()))
    webp = run("decode", "out/a.kvq", "out/b.kvq", "-o", "webp", "--format", "webp", cwd=tmp_path)
    assert webp.returncode == 0 and sorted(p.name for p in (tmp_path / "webp").iterdir()) == ["a.webp", "b.webp"]
    info = run("info", "out", "--json", cwd=tmp_path)
    assert info.returncode == 3
    records = [json.loads(line) for line in info.stdout.splitlines()]  # one record per line, per file
    assert [Path(r["file"]).name for r in records] == ["a.kvq", "b.kvq", "broken.kvq", "c.kvq", "d.kvq", "e.kvq"]
    broken = records[2]
    assert broken == {"file": broken["file"], "error": "first chunk must be HEAD, not b'\\x00\\x00\\x00\\x00' (at byte 12)"}
    assert records[0]["bytes"]["file"] == (tmp_path / "out" / "a.kvq").stat().st_size
    text = run("info", "out/a.kvq", "out/b.kvq", cwd=tmp_path)
    assert text.returncode == 0 and text.stdout.count("file        ") == 2


def test_jobs_give_the_same_bytes_and_manifest(tmp_path, tree):
    serial = run("encode", "photos", "-o", "one", "-k", "16", "--manifest", "one.csv", cwd=tmp_path)
    pooled = run("encode", "photos", "-o", "two", "-k", "16", "--manifest", "two.json", "--jobs", "2", cwd=tmp_path)
    assert serial.returncode == pooled.returncode == 3
    for name in tree:
        kvq_name = Path(name).with_suffix(".kvq")
        assert (tmp_path / "two" / kvq_name).read_bytes() == (tmp_path / "one" / kvq_name).read_bytes()
    one = {Path(r["source"]).name: r for r in read_manifest(tmp_path / "one.csv")}
    two = {Path(r["source"]).name: r for r in read_manifest(tmp_path / "two.json")}
    assert {n: r["status"] for n, r in one.items()} == {n: r["status"] for n, r in two.items()}
    assert all(int(one[n]["bytes"]) == two[n]["bytes"] for n in one if one[n]["status"] == "done")
    assert json.loads((tmp_path / "two.json").read_text())["summary"] == {"done": 5, "skipped": 0, "failed": 1}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["encode", "photos", "-", "-o", "out"], "standard input) can only be the one input"),
        (["encode", "photos", "-o", "-"], "name an output folder"),
        (["encode", "photos", "--jobs", "-1"], "--jobs must be 0"),
        # One rule for one file and for a batch (issue 19.7: one file took -j -1).
        (["encode", "photos/a.png", "-o", "out/a.kvq", "--jobs", "-1"], "--jobs must be 0"),
        (["decode", "x.kvq", "-j", "-3"], "--jobs must be 0"),
        (["encode", "photos", "--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"], "do not go together"),
        (["decode", "photos", "-q", "-v"], "not allowed with argument"),
    ],
)
def test_usage_errors(tmp_path, tree, args, fragment):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2 and fragment in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_manifest_never_replaces_a_foreign_file(tmp_path, tree):
    (tmp_path / "notes.csv").write_text("mine\n")
    result = run("encode", "photos", "-o", "out", "--manifest", "notes.csv", cwd=tmp_path)
    assert result.returncode == 1 and "not a kvq manifest" in result.stderr
    assert (tmp_path / "notes.csv").read_text() == "mine\n" and not (tmp_path / "out").exists()


def many_photos(folder: Path, count: int) -> None:
    folder.mkdir()
    for i, tile in enumerate(photo_tiles(count)):
        Image.fromarray(tile).save(folder / f"{i:03d}.png")


def wait_for_output(folder: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not (folder.exists() and any(p.suffix == ".kvq" for p in folder.iterdir())):
        assert process.poll() is None and time.monotonic() < deadline, "the batch ended before it could be interrupted"
        time.sleep(0.01)


def check_outputs_complete(folder: Path) -> list[str]:
    """Every visible output is a complete .kvq; return their names."""
    names = []
    for path in folder.iterdir():
        if not path.name.startswith("."):
            kvq.decode(path.read_bytes())  # raises on anything half-written
            names.append(path.name)
    return sorted(names)


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_writes_the_manifest_and_the_rerun_resumes(tmp_path, jobs):
    many_photos(tmp_path / "photos", 40)
    # SIGINT as a terminal's foreground command has it, whatever this run inherited: a shell starts a
    # background job (`pytest &` in a script) with SIGINT ignored, and Python then keeps ignoring it.
    process = subprocess.Popen(
        kvq_command("encode", "photos", "-o", "out", "-k", "64", "--manifest", "m.csv", "--jobs", jobs),
        cwd=tmp_path,
        env=kvq_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    wait_for_output(tmp_path / "out", process)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C does: the command and its workers
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "kvq: interrupted:" in err and "run the same command again to resume" in err
    rows = read_manifest(tmp_path / "m.csv")
    finished = check_outputs_complete(tmp_path / "out")
    # Files running at the interrupt finish and are listed, wherever Ctrl-C landed: kvq.batch.run
    # holds it while a result is recorded, and from the rename that puts an output in place.
    listed = [Path(r["target"]).name for r in rows]
    assert 1 <= len(finished) < 40 and sorted(listed) == finished
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")], "no temporary file left"
    again = run("encode", "photos", "-o", "out", "-k", "64", "--manifest", "m.csv", "--jobs", jobs, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    statuses = [r["status"] for r in read_manifest(tmp_path / "m.csv")]
    assert statuses.count("skipped") == len(finished) and statuses.count("done") == 40 - len(finished)


def test_sigkill_leaves_no_half_written_output_and_the_rerun_finishes(tmp_path):
    many_photos(tmp_path / "photos", 40)
    process = subprocess.Popen(
        kvq_command("encode", "photos", "-o", "out", "-k", "64", "--jobs", "2"),
        cwd=tmp_path,
        env=kvq_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_output(tmp_path / "out", process)
    os.killpg(process.pid, signal.SIGKILL)  # the command and its workers, mid-write
    assert process.wait(timeout=60) == -signal.SIGKILL
    finished = check_outputs_complete(tmp_path / "out")
    assert 1 <= len(finished) < 40
    again = run("encode", "photos", "-o", "out", "-k", "64", "--jobs", "2", "-v", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"{40 - len(finished)} done, {len(finished)} skipped" in again.stderr
    assert len(check_outputs_complete(tmp_path / "out")) == 40


def test_progress_bar_only_on_a_terminal(tmp_path, tree):
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        kvq_command("encode", "photos", "-o", "out", "-k", "8"), cwd=tmp_path, env=kvq_env(), stdout=subprocess.PIPE, stderr=follower
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            piece = os.read(leader, 4096)
        except OSError:  # the other side closed
            break
        if not piece:
            break
        seen += piece
    process.wait(timeout=120)
    os.close(leader)
    text = seen.decode()
    assert process.returncode == 3
    assert "\rkvq encode [########################] 6/6  100%" in text and "files/s" in text and "1 failed" in text
    assert process.stdout is not None and process.stdout.read() == b""


def test_a_successful_batch_is_silent_unless_asked(tmp_path, capsys):
    from kvq.cli import main

    (tmp_path / "in").mkdir()
    for name, value in (("a.png", 10), ("b.png", 200)):
        Image.fromarray(np.full((6, 5, 3), value, np.uint8)).save(tmp_path / "in" / name)
    assert main(["encode", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-k", "2"]) == 0
    assert capsys.readouterr() == ("", "")  # standard error is not a terminal here
    assert main(["decode", str(tmp_path / "out"), "-o", str(tmp_path / "back"), "-v"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2 and err.startswith("kvq decode: 2 done, 0 skipped (already there), 0 failed of 2 files")


def test_a_missing_input_is_a_failure_even_when_an_output_is_there(tmp_path, capsys):
    from kvq.cli import main

    Image.fromarray(np.full((5, 5, 3), 9, np.uint8)).save(tmp_path / "b.png")
    Image.fromarray(np.full((5, 5, 3), 200, np.uint8)).save(tmp_path / "c.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "gone.kvq").write_bytes(kvq.encode(np.full((5, 5, 3), 9, np.uint8), k=2))
    (tmp_path / "gone.kvq").write_bytes((tmp_path / "out" / "gone.kvq").read_bytes())
    # One file: its own error, not "exists and is valid, skipped".
    assert main(["encode", str(tmp_path / "gone.png"), "-o", str(tmp_path / "gone.kvq"), "--skip-existing"]) == 1
    assert capsys.readouterr().err.strip() == f"kvq: error: {tmp_path / 'gone.png'}: no such file"
    # A batch: a failure (exit 3), the other file done.
    assert main(["encode", str(tmp_path / "gone.png"), str(tmp_path / "c.png"), "-o", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert "gone.png: no such file" in err and "skipped" not in err.split("kvq encode:")[0]


def test_a_file_as_the_output_of_several_inputs_is_one_error(tmp_path, capsys):
    from kvq.cli import main

    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((4, 4, 3), 7, np.uint8)).save(tmp_path / name)
    (tmp_path / "x.kvq").write_bytes(b"keep")
    assert main(["encode", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "x.kvq")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"kvq: error: output {tmp_path / 'x.kvq'} is a file; several inputs or a folder need an output folder"
    assert (tmp_path / "x.kvq").read_bytes() == b"keep"


@pytest.mark.parametrize("jobs", [1, 2])
def test_verbose_shows_each_files_warnings_whichever_process_ran_it(tmp_path, jobs):
    # A truncated EXIF directory: Pillow warns "Corrupt EXIF data" and the photo is fine. Worker
    # processes raise it too; the warning travels with the file's result, named, and in the manifest.
    from test_doors import _exif_rotated, jpeg_with_app1

    make_tree(tmp_path / "photos")
    (tmp_path / "photos" / "camera.jpg").write_bytes(jpeg_with_app1(_exif_rotated()[:-6]))
    quiet = run("encode", "photos", "-o", "out", "-k", "4", "--jobs", jobs, "--manifest", "m.csv", cwd=tmp_path)
    assert quiet.returncode == 3 and "warning" not in quiet.stderr  # 3: sub/broken.png
    rows = {Path(r["source"]).name: r for r in read_manifest(tmp_path / "m.csv")}
    assert rows["camera.jpg"]["status"] == "done" and rows["camera.jpg"]["warnings"].startswith("Corrupt EXIF data")
    assert [name for name, r in rows.items() if r["warnings"]] == ["camera.jpg"]
    verbose = run("encode", "photos", "-o", "again", "-k", "4", "--jobs", jobs, "-v", cwd=tmp_path)
    warned = [line for line in verbose.stderr.splitlines() if "warning" in line]
    assert warned == [f"kvq: warning: {os.path.join('photos', 'camera.jpg')}: {rows['camera.jpg']['warnings']}"]


def test_the_workers_of_a_batch_die_with_it(tmp_path):
    # Issue 19.21: SIGKILL the kvq process of a --jobs 2 batch: its workers lived on for ever (reparented, holding
    # the output pipe and the manifest's temporary file). They die with it now, within a bounded wait.
    psutil = pytest.importorskip("psutil")
    many_photos(tmp_path / "photos", 40)
    process = subprocess.Popen(
        kvq_command("encode", "photos", "-o", "out", "-k", "64", "--jobs", "2", "--manifest", "m.csv"),
        cwd=tmp_path, env=kvq_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for_output(tmp_path / "out", process)
    workers = psutil.Process(process.pid).children()
    assert len(workers) >= 2
    process.kill()  # the kvq process alone, as `kill -9 PID` does: not its group
    assert process.wait(timeout=60) == -signal.SIGKILL
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, f"workers still running: {[w.pid for w in alive]}"


def test_a_full_disk_names_the_manifest_and_leaves_no_temporary_file(tmp_path, tree, monkeypatch):
    # Issue 19.22: every output was written, then "No space left on device" without naming the manifest, and its
    # temporary file stayed. The manifest's own writes fail here as on a full disk; the outputs' do not.
    import errno
    import io

    from kvq import manifest

    class Full(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    class FullDisk:
        def __getattr__(self, name):
            return getattr(os, name)

        def fdopen(self, fd, *args, **kwargs):
            os.close(fd)
            return io.TextIOWrapper(io.BufferedWriter(Full()), encoding="utf-8", newline="")

    monkeypatch.setattr(manifest, "os", FullDisk())
    result = run("encode", "photos", "-o", "out", "-k", "4", "--manifest", "m.csv", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "kvq: error: manifest m.csv: No space left on device"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "the manifest's temporary file is gone"
    assert not (tmp_path / "m.csv").exists()


def test_a_second_ctrl_c_stops_at_once_and_the_manifest_lists_the_outputs_on_disk(tmp_path, monkeypatch, python_sigint):
    # Issue 19.22: after two Ctrl-C 0.3 s apart the manifest listed 4 of 8 outputs on disk. The command's SIGINT
    # handler is called here as Python calls it, twice, as the third file starts: the first press stops the batch,
    # the second stops it at once, the third file unwound; the manifest is still written, and lists what is on disk.
    import signal as signals

    from kvq import batch

    many_photos(tmp_path / "photos", 8)
    real = batch.encode_task
    pressed = []

    def encode_task(task, *args, **kwargs):
        if task.source.endswith("002.png"):
            for press in range(2):
                pressed.append(press)
                signals.getsignal(signals.SIGINT)(signals.SIGINT, None)
        return real(task, *args, **kwargs)

    monkeypatch.setattr(batch, "encode_task", encode_task)
    result = run("encode", "photos", "-o", "out", "-k", "8", "--manifest", "m.csv", cwd=tmp_path)
    assert result.returncode == 130 and pressed == [0, 1], result.stderr
    assert "kvq: stopped at once: 6 files not done; the manifest lists the 2 files reported" in result.stderr
    listed = sorted(Path(r["target"]).name for r in read_manifest(tmp_path / "m.csv"))
    assert listed == check_outputs_complete(tmp_path / "out") == ["000.kvq", "001.kvq"]


def many_samples_tiff(path: Path) -> None:
    """A TIFF of 10 samples a pixel: Pillow refuses it, and logs "More samples per pixel than can be decoded"."""
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(path, np.zeros((8, 8, 10), np.uint8), photometric="minisblack", planarconfig="contig")


@pytest.mark.parametrize("jobs", [1, 2])
def test_what_pillow_logs_is_held_back_unless_verbose(tmp_path, jobs):
    # Issue 19.22: Pillow's TIFF plugin logs through Python's logging, which nobody set up: Python printed it on
    # standard error, past the command's held-back standard error, in this process and in the workers alike.
    (tmp_path / "photos").mkdir()
    many_samples_tiff(tmp_path / "photos" / "many.tif")
    Image.fromarray(photo_tiles(1)[0]).save(tmp_path / "photos" / "ok.png")
    # In a process of its own: in the tests' process, pytest's own logging handler would catch the record.
    quiet = run_process("encode", "photos", "-o", "out", "--jobs", jobs, cwd=tmp_path)
    assert quiet.returncode == 3 and "More samples" not in quiet.stderr, quiet.stderr
    loud = run_process("encode", "photos", "-o", "again", "--jobs", jobs, "-v", cwd=tmp_path)
    assert f"kvq: warning: {os.path.join('photos', 'many.tif')}: More samples per pixel than can be decoded: 10" in loud.stderr
    if jobs == 1:
        one = run_process("encode", "photos/many.tif", "-o", "one.kvq", cwd=tmp_path)
        assert one.returncode == 1 and one.stderr.splitlines() == ["kvq: error: photos/many.tif: not an image Pillow can read"]
        one_loud = run_process("encode", "photos/many.tif", "-o", "one.kvq", "-v", cwd=tmp_path)
        assert "kvq: More samples per pixel than can be decoded: 10" in one_loud.stderr


def test_a_read_only_output_folder_is_one_error_before_any_file(tmp_path: Path, tree, read_only_folder: Path) -> None:
    # It was found only after every file was encoded: 12 photos, 19 s, then 12 failures and status 3.
    for output in (read_only_folder, read_only_folder / "new" / "deeper"):
        result = run("encode", "photos", "-o", output, "-k", "4", "--manifest", tmp_path / "m.csv", cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip() == f"kvq: error: cannot write into {output}: Operation not permitted" or (
            result.stderr.strip() == f"kvq: error: cannot write into {output}: Permission denied"
        )
        assert list(read_only_folder.iterdir()) == [] and not (tmp_path / "m.csv").exists()
    # One file is refused before its encode too, with the same words.
    single = run("encode", "photos/a.png", "-o", read_only_folder / "a.kvq", cwd=tmp_path)
    assert single.returncode == 1 and f"cannot write into {read_only_folder}" in single.stderr


def test_an_output_made_with_other_options_is_not_already_done(tmp_path: Path) -> None:
    # `-k 16` after a `-k 64` run kept the K = 64 files and exited 0 ("12 skipped"), shown only with -v or a terminal.
    (tmp_path / "photos").mkdir()
    for name, pixels in zip(("a.png", "b.png"), photo_tiles(2), strict=True):
        Image.fromarray(pixels).save(tmp_path / "photos" / name)
    assert run("encode", "photos", "-o", "out", "-k", "16", cwd=tmp_path).returncode == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    assert all(kvq.read_header(data).k == 16 for data in before.values())
    for args, says in (
        (["-k", "4"], "(K = 16 stored, k = 4 asked); -f/--force replaces it"),
        (["-k", "16", "--coding", "fixed"], "(entropy index coding stored, fixed asked); -f/--force replaces it"),
    ):
        result = run("encode", "photos", "-o", "out", *args, cwd=tmp_path)
        assert result.returncode == 3, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.startswith("kvq: failed: ")]
        assert len(lines) == 2 and all("was made with other options " + says in line for line in lines), result.stderr
        assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
    # The same options: already done. A larger k leaves no trace a file can show (it stores the colours it uses).
    assert run("encode", "photos", "-o", "out", "-k", "16", cwd=tmp_path).returncode == 0
    assert run("encode", "photos", "-o", "out", "-k", "4", "--force", cwd=tmp_path).returncode == 0
    assert all(kvq.read_header(p).k == 4 for p in (tmp_path / "out").iterdir())


def test_the_first_ctrl_c_says_at_once_that_the_batch_is_stopping(tmp_path, monkeypatch, python_sigint):
    # The message came after the files in hand had finished (minutes, for large photos), so the first Ctrl-C
    # looked ignored. It is on standard error by the time the handler returns, while the file in hand goes on.
    import sys

    from kvq import batch

    many_photos(tmp_path / "photos", 4)
    real = batch.encode_task
    seen = []

    def encode_task(task, *args, **kwargs):
        if task.source.endswith("001.png"):
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
            seen.append(os.pread(sys.stderr.fileno(), 1 << 16, 0).decode())  # standard error so far
        return real(task, *args, **kwargs)

    monkeypatch.setattr(batch, "encode_task", encode_task)
    result = run("encode", "photos", "-o", "out", "-k", "8", cwd=tmp_path)
    assert result.returncode == 130, result.stderr
    assert seen == ["kvq: stopping after the files in hand; Ctrl-C again to stop now\n"]
    assert check_outputs_complete(tmp_path / "out") == ["000.kvq", "001.kvq"]  # the file in hand finished
    assert result.stderr.count("Ctrl-C again") == 1


def test_a_third_ctrl_c_does_not_interrupt_the_clean_up_of_the_second():
    # The second Ctrl-C stops at once: workers are stopped, the manifest written, the pool's threads joined at
    # exit. A third KeyboardInterrupt landing there could leave that half done, and the exit waiting for ever.
    import threading

    from kvq.cli import _CtrlC

    said = []
    ctrl_c, stop = _CtrlC(), threading.Event()
    with ctrl_c.stopping(stop, lambda: said.append("stopping")):
        ctrl_c(signal.SIGINT, None)
        assert stop.is_set() and said == ["stopping"]
        with pytest.raises(KeyboardInterrupt):
            ctrl_c(signal.SIGINT, None)
        for _ in range(3):
            ctrl_c(signal.SIGINT, None)  # ignored: the clean-up goes on
    assert said == ["stopping"]
    # Outside a batch the first Ctrl-C stops the command, and the ones after it are ignored as well.
    alone = _CtrlC()
    with pytest.raises(KeyboardInterrupt):
        alone(signal.SIGINT, None)
    alone(signal.SIGINT, None)


@pytest.mark.parametrize(("exiting", "pressed", "after"), [(True, True, "ignored"), (True, False, "python"), (False, True, "python")])
def test_the_commands_own_process_stays_deaf_to_ctrl_c_once_pressed(python_sigint, exiting, pressed, after):
    # Python's handler put back as the command returned made a late Ctrl-C a KeyboardInterrupt in the
    # interpreter's exit, where a process pool's threads and workers are joined: the command died by SIGINT
    # (status -2, not 130), or waited for ever. Its own process (kvq, python -m kvq) leaves SIGINT ignored
    # once it was pressed; a caller of kvq.cli.main(argv) gets its handler back.
    from kvq.cli import _CtrlC

    with _CtrlC().installed(exiting=exiting) as ctrl_c:
        if pressed:
            with pytest.raises(KeyboardInterrupt):
                signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
    expected = signal.SIG_IGN if after == "ignored" else signal.default_int_handler
    assert signal.getsignal(signal.SIGINT) is expected and ctrl_c.pressed == pressed


def test_a_folder_decode_never_replaces_the_images_the_files_were_made_from(tmp_path: Path) -> None:
    # `kvq encode photos && kvq decode photos` meets each photo at its .kvq's default output: it was listed as
    # "skipped (already there)", a photo of the right size, and --force replaced every photo with its quantized copy.
    (tmp_path / "photos").mkdir()
    for name, pixels in zip(("a.png", "b.png"), photo_tiles(2), strict=True):
        Image.fromarray(pixels).save(tmp_path / "photos" / name)
    assert run("encode", "photos", "-k", "8", cwd=tmp_path).returncode == 0
    originals = {p.name: p.read_bytes() for p in (tmp_path / "photos").glob("*.png")}
    for extra in ([], ["--force"]):
        result = run("decode", "photos", *extra, cwd=tmp_path)
        assert result.returncode == 3, result.stderr
        lines = [line for line in result.stderr.replace(os.sep, "/").splitlines() if line.startswith("kvq: failed: ")]
        assert lines == [
            f"kvq: failed: photos/{n}.kvq: photos/{n}.png exists and is not a decoding of photos/{n}.kvq "
            "(perhaps the image it was made from): decode into another folder with -o DIR"
            for n in "ab"
        ], extra
        assert {p.name: p.read_bytes() for p in (tmp_path / "photos").glob("*.png")} == originals
    results = list(kvq.batch.decode_files([tmp_path / "photos"], force=True))
    assert [r.status for r in results] == [kvq.batch.FAILED] * 2
    # A batch's reasons are worded for the command, as every other reason (kvq.errors.message).
    assert results[0].reason == (
        f"{tmp_path / 'photos' / 'a.png'} exists and is not a decoding of {tmp_path / 'photos' / 'a.kvq'} "
        "(perhaps the image it was made from): decode into another folder with -o DIR"
    )
    # -o naming the inputs' own folder is beside them too.
    assert run("decode", "photos", "-o", "photos", "--force", cwd=tmp_path).returncode == 3
    assert {p.name: p.read_bytes() for p in (tmp_path / "photos").glob("*.png")} == originals
    # The decodings themselves, beside their files, are kvq's own work: kept as done, rewritten with --force.
    assert run("decode", "photos", "-o", "back", cwd=tmp_path).returncode == 0
    for name in originals:
        (tmp_path / "photos" / name).write_bytes((tmp_path / "back" / name).read_bytes())
    assert "0 done, 2 skipped (already there)" in run("decode", "photos", "-v", cwd=tmp_path).stderr
    assert run("decode", "photos", "--force", cwd=tmp_path).returncode == 0


def test_an_older_decoding_is_not_already_done(tmp_path: Path) -> None:
    # With -o, a same-sized image from an earlier .kvq (another K) was kept as "already there".
    (tmp_path / "photos").mkdir()
    Image.fromarray(photo_tiles(1)[0]).save(tmp_path / "photos" / "a.png")
    assert run("encode", "photos", "-o", "kvq", "-k", "4", cwd=tmp_path).returncode == 0
    assert run("decode", "kvq", "-o", "back", cwd=tmp_path).returncode == 0
    assert run("encode", "photos", "-o", "kvq", "-k", "16", "--force", cwd=tmp_path).returncode == 0
    before = (tmp_path / "back" / "a.png").read_bytes()
    result = run("decode", "kvq", "-o", "back", cwd=tmp_path)
    assert result.returncode == 3
    assert "output back/a.png exists and is not this file's decoding (-f/--force replaces it)" in result.stderr.replace(os.sep, "/")
    assert (tmp_path / "back" / "a.png").read_bytes() == before
    assert run("decode", "kvq", "-o", "back", "--force", cwd=tmp_path).returncode == 0
    with Image.open(tmp_path / "back" / "a.png") as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), kvq.decode(tmp_path / "kvq" / "a.kvq"))


@pytest.mark.parametrize(
    "args",
    [
        ["encode", ".", "--format", "png", "-k", "16"],
        ["encode", "a.png", "b.png", "--format", "png", "-k", "16"],
        ["encode", "a.png", "-o", "a.png", "--skip-existing", "-k", "16"],
        ["encode", "a.png", "--format", "png", "-k", "16"],
        ["decode", "a.kvq", "-o", "a.kvq", "--format", "png"],
    ],
)
def test_an_output_that_is_its_input_is_refused_not_skipped(tmp_path: Path, args: list[str]) -> None:
    # `kvq encode . --format png` in a folder of PNGs exited 0, each photo "exists and is valid, skipped"; without
    # --skip-existing the message offered --force, which then failed on "same file as input".
    for name, pixels in zip(("a.png", "b.png"), photo_tiles(2), strict=True):
        Image.fromarray(pixels).save(tmp_path / name)
    (tmp_path / "a.kvq").write_bytes(kvq.encode(photo_tiles(1)[0], k=4))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    result = run(*args, cwd=tmp_path)
    assert result.returncode in (1, 3), result.stderr
    assert "is the same file as input" in result.stderr and "valid, skipped" not in result.stderr and "force" not in result.stderr
    assert "1 skipped" not in result.stderr and "2 skipped" not in result.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("beside", [False, True])
def test_a_decoding_in_a_lossy_format_is_already_done_and_force_redoes_it(tmp_path: Path, beside: bool) -> None:
    # Done meant "the same pixels", which a JPEG never holds: a second decode to JPEG failed every file, and
    # beside the inputs even --force was refused as if each JPEG were an original.
    (tmp_path / "kvq").mkdir()
    (tmp_path / "kvq" / "a.kvq").write_bytes(kvq.encode(photo_tiles(1)[0], k=8))
    out = [] if beside else ["-o", "jpegs"]
    written = (tmp_path / "kvq" / "a.jpg") if beside else (tmp_path / "jpegs" / "a.jpg")
    assert run("decode", "kvq", *out, "--format", "jpeg", cwd=tmp_path).returncode == 0
    first = written.read_bytes()
    again = run("decode", "kvq", *out, "--format", "jpeg", "-v", cwd=tmp_path)
    assert again.returncode == 0 and "0 done, 1 skipped (already there)" in again.stderr, again.stderr
    # Older than its .kvq (so not taken as done on its date), it is still recognised by its pixels.
    os.utime(written, ns=(0, 0))
    assert run("decode", "kvq", *out, "--format", "jpeg", "--force", cwd=tmp_path).returncode == 0
    assert written.read_bytes() == first


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX's")
def test_an_existing_pipe_as_the_output_is_refused_at_once(tmp_path: Path) -> None:
    # Telling whether an output is done opened it: a named pipe with no writer blocked for ever.
    (tmp_path / "a.kvq").write_bytes(kvq.encode(photo_tiles(1)[0], k=8))
    os.mkfifo(tmp_path / "out.png")
    for extra in ([], ["--skip-existing"]):
        result = run_process("decode", "a.kvq", "-o", "out.png", *extra, cwd=tmp_path)
        assert result.returncode == 1 and "out.png exists" in result.stderr, (extra, result.stderr)


def test_an_output_that_may_not_be_replaced_is_refused_without_decoding(tmp_path: Path, monkeypatch) -> None:
    # The answer is "exists" whatever the file decodes to: decoding it first cost a 24-megapixel file 2.4 s.
    from kvq import codec, filetask

    (tmp_path / "a.kvq").write_bytes(kvq.encode(photo_tiles(1)[0], k=8))
    (tmp_path / "a.png").write_bytes(b"something")

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(codec, "decode_indexed", no_decoding)
    row = filetask.decode_task(filetask.Task(str(tmp_path / "a.kvq"), str(tmp_path / "a.png")), skip_existing=False)
    assert row.status == filetask.FAILED and row.reason.endswith("a.png exists (-f/--force replaces it)"), row.reason


def test_a_manifest_whose_folder_cannot_be_made_is_named(tmp_path: Path) -> None:
    # --manifest kodim01.png/m.csv said "kodim01.png: File exists", naming neither the manifest nor the option.
    (tmp_path / "photos").mkdir()
    Image.fromarray(photo_tiles(1)[0]).save(tmp_path / "photos" / "a.png")
    result = run("encode", "photos", "-o", "out", "-k", "4", "--manifest", "photos/a.png/m.csv", cwd=tmp_path)
    assert result.returncode == 1
    line = result.stderr.replace(os.sep, "/").strip()
    assert line.startswith("kvq: error: manifest photos/a.png/m.csv: its folder cannot be made ("), line
    assert not (tmp_path / "out").exists()
