"""Shared fixtures and helpers. Keep this file small and additive: every test file uses it.

Helpers are plain functions that test modules import (``from conftest import run_kvq``):
pytest puts this folder on ``sys.path``.

Markers: ``slow`` marks tests that wait seconds on the clock or on a tool however fast
the code is (the fuzzing smoke run, SIGKILLs after set delays, a wheel build). They run by
default and in CI; ``pytest -m "not slow"`` leaves them out for a quick loop while editing.

The ``kvq`` command is run two ways. :func:`run_kvq` starts ``python -m kvq`` as a user
does: for what only a process shows (signals, pipes, terminals, closed descriptors, what
gets imported, separate processes agreeing). :func:`run_kvq_here` runs the same
``kvq.cli.main`` in the test process on real descriptors 0, 1 and 2, without the second or
so that each new interpreter spends importing numpy, Pillow and numba and loading the
compiled kernels: for what a command does with its files, options and messages.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
# The suite tests this checkout, in this process as in the subprocesses it starts (kvq_env), whatever copy of kvq
# is installed: one copy, so its compiled kernels are compiled once.
sys.path.insert(0, str(REPO))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile, or load from numba's cache, the kernels most tests run, before any test's clock starts.

    A fresh clone compiles them here, once: the first test that needs them does
    not spend its timeout on it, and the subprocesses tests start (the fuzzers among them) load them from the cache.
    """
    from kvq import _jit, coding, quantize
    from kvq.options import EncoderOptions

    def say(kernel: str) -> None:
        sys.stderr.write("\nkvq: compiling kvq's kernels for this checkout, once...\n")

    previous = _jit.on_compile(say)
    try:
        for options in (EncoderOptions(), EncoderOptions(k=300), EncoderOptions(k=16, dither=1.0, color_space="oklab")):
            quantize.start(options)
        for index_coding in coding.CODINGS:
            index_coding.start()
    finally:
        _jit.on_compile(previous)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (the default, pyproject.toml): one worker per core this process may use, at most 4.

    Each worker holds numpy, numba and the compiled kernels (up to 0.85 GB at its peak); more than 4 would mostly
    add memory, since the longest tests (the fuzzing run, the JavaScript decoder's) set the suite's length there.
    """
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def kvq_env() -> dict[str, str]:
    """The environment of a ``kvq`` subprocess: this checkout first on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def kvq_command(*args: object) -> list[str]:
    """The command line of ``python -m kvq ARGS``, as a user runs it."""
    return [sys.executable, "-m", "kvq", *map(str, args)]


def run_kvq(*args: object, cwd: Path, stdin: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the ``kvq`` command in a subprocess of this checkout and capture its output."""
    return subprocess.run(kvq_command(*args), cwd=cwd, input=stdin, env=kvq_env(), capture_output=True, timeout=timeout)


def run_kvq_here(*args: object, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run the ``kvq`` command's ``main`` in this process, as :func:`run_kvq` runs it in a subprocess.

    Descriptors 0, 1 and 2 (not only ``sys.stdin``, ``sys.stdout`` and ``sys.stderr``) are
    files meanwhile, as pipes are for a subprocess: the command's own hold on descriptor 2,
    and whatever C libraries write there, behave as in a real process. The working folder,
    the streams, the descriptors and the SIGINT handler are put back afterwards. Returns
    what :func:`run_kvq` returns: the exit status and the bytes written to each stream.
    """
    from kvq.cli import main

    argv = [str(arg) for arg in args]
    streams = sys.stdin, sys.stdout, sys.stderr
    sigint = signal.getsignal(signal.SIGINT)
    here = os.getcwd()
    for stream in streams[1:]:
        stream.flush()
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        fin.write(stdin or b"")
        fin.seek(0)
        saved = [os.dup(fd) for fd in (0, 1, 2)]
        try:
            for fd, file in zip((0, 1, 2), (fin, fout, ferr), strict=True):
                os.dup2(file.fileno(), fd)
            # Python's own standard streams for pipes: locale encoding, backslashreplace on stderr.
            sys.stdin = open(0, closefd=False)  # noqa: SIM115 - closed below
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False, errors="backslashreplace")  # noqa: SIM115
            os.chdir(cwd)
            try:
                status = main(argv)
            except SystemExit as exc:  # as the interpreter turns sys.exit(code) into a status
                status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os.chdir(here)
            signal.signal(signal.SIGINT, sigint)
            for stream in (sys.stdin, sys.stdout, sys.stderr):
                if stream not in streams:
                    stream.close()
            sys.stdin, sys.stdout, sys.stderr = streams
            for fd, copy in zip((0, 1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)
        fout.seek(0)
        ferr.seek(0)
        return subprocess.CompletedProcess(["kvq", *argv], status, fout.read(), ferr.read())


def one_error_line(result: subprocess.CompletedProcess, status: int | None = None) -> str:
    """The one ``kvq: ...`` line a failed command prints; no traceback, no internal error."""
    err = result.stderr.decode(errors="replace")
    assert "Traceback" not in err, err
    assert "internal error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kvq: "), err
    if status is not None:
        assert result.returncode == status, (result.returncode, err)
    return lines[0]


def chunk(kind: bytes, data: bytes, length: int | None = None) -> bytes:
    """A ``.kvq`` chunk with a correct CRC (over length, type and data); ``length`` overrides the declared length."""
    head = struct.pack(">I", len(data) if length is None else length) + kind
    return head + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(head)))


@pytest.fixture
def python_sigint():
    """SIGINT handled as Python handles it in a foreground process, whatever this run inherited.

    A shell starts a background job (``pytest &`` in a script) with SIGINT ignored, and Python keeps ignoring it:
    the ``kvq`` command then leaves it so, and installs no handler of its own.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240607)


@pytest.fixture
def example_rgb() -> np.ndarray:
    """The spec's worked example: 3x2 RGB, red/green/blue, indices 0 1 2 / 2 0 1."""
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    return palette[np.array([[0, 1, 2], [2, 0, 1]])]


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photo, small enough for quick encodes: a 96x64 crop of scikit-learn's china.jpg (every install has it)."""
    from sklearn.datasets import load_sample_image

    return np.ascontiguousarray(load_sample_image("china.jpg")[100:164, 200:296])


@pytest.fixture
def photo_png(photo: np.ndarray, tmp_path: Path) -> Path:
    """:func:`photo` saved as ``photo.png`` in the test's own folder."""
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return path


@pytest.fixture
def read_only_folder(tmp_path: Path):
    """A folder no file can be created in, for root too (root ignores permissions, not the immutable flag)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("root, and this file system has no immutable flag (chattr +i) to make a folder read-only")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
