"""Shared fixtures and helpers. Keep this file small and additive: every test file uses it.

Helpers are plain functions that test modules import (``from conftest import run_kvq``):
pytest puts this folder on ``sys.path``.

Markers: ``slow`` marks tests that take seconds each (fuzzing smoke runs, SIGKILL and
memory-limit subprocesses). They run by default and in CI; ``pytest -m "not slow"`` leaves
them out for a quick loop while editing.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


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
