"""Issue 6: the ``kvq`` command under bad input.

Every failure is exactly one line on standard error starting with ``kvq:``,
no traceback, no "internal error", exit status 1 for errors and 2 for usage
errors, and no file left behind in the output folder (no partial output, no
temporary file); existing files are unchanged.

The errors found before any image is read (a bad K, usage errors) run the
command in a subprocess, as a user runs it, so that the exit statuses are
those of a real process; the rest run ``kvq.cli.main`` in the test process on
real descriptors 0-2 (``conftest.run_kvq_here``): the same code, without a
second of interpreter start-up for every case.
"""

from __future__ import annotations

import os
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kvq

from conftest import one_error_line, run_kvq
from conftest import run_kvq_here as run


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} | {
        p.name + "/": b"" for p in folder.iterdir() if p.is_dir()
    }


def fails(result: subprocess.CompletedProcess, status: int = 1) -> str:
    return one_error_line(result, status)


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    # At most 64 colours: encodes at K >= 64 take the exact path, no k-means (fast).
    Image.fromarray(rng.integers(0, 4, (24, 32, 3), dtype=np.uint8) * 85).save(tmp_path / "in.png")
    (tmp_path / "in.kvq").write_bytes(kvq.encode(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), k=4))
    return tmp_path


def expect_error(work: Path, *args, status: int = 1, contains: str | None = None, runner=run) -> str:
    before = snapshot(work)
    line = fails(runner(*args, cwd=work), status)
    assert snapshot(work) == before, "files were created, changed or removed"
    if contains is not None:
        assert contains.lower() in line.lower(), line
    return line


# ------------------------------------------------------------------- encode


@pytest.mark.parametrize("k", ["0", "-1", "65537", "99999999999"])
def test_invalid_k(work, k):
    expect_error(work, "encode", "in.png", "-o", "out.kvq", "-k", k, contains="-k/--colors must be", runner=run_kvq)


@pytest.mark.parametrize("k", ["abc", "2.5", ""])
def test_non_integer_k_is_usage_error(work, k):
    expect_error(work, "encode", "in.png", "-o", "out.kvq", "-k", k, status=2, contains="usage", runner=run_kvq)


@pytest.mark.parametrize("args", [[], ["encode"], ["frobnicate", "x"], ["encode", "in.png", "--bogus"], ["decode"], ["info"]])
def test_usage_errors(work, args):
    expect_error(work, *args, status=2, runner=run_kvq)


def png_bytes(width: int, height: int) -> bytes:
    """A PNG of any declared size, including zero, which Pillow itself refuses to write."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = zlib.compress(b"\x00" * (1 + 3 * width) * height)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "name, content",
    [
        ("empty.png", b""),
        ("zero-width.png", png_bytes(0, 5)),
        ("zero-height.png", png_bytes(5, 0)),
        ("text.png", b"this is not an image\n" * 10),
        ("random.bin", bytes(range(256)) * 4),
    ],
)
def test_unreadable_inputs(work, name, content):
    (work / name).write_bytes(content)
    expect_error(work, "encode", name, "-o", "out.kvq", "-k", "4")


def _corrupt_inputs(work: Path) -> list[str]:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    image.save(work / "full.png")
    image.save(work / "full.jpg", quality=90)
    png, jpg = (work / "full.png").read_bytes(), (work / "full.jpg").read_bytes()
    cases = {
        "trunc-half.png": png[: len(png) // 2],
        "trunc-header.png": png[:20],
        "crc.png": png[:40] + bytes([png[40] ^ 0xFF]) + png[41:],
        "trunc-half.jpg": jpg[: len(jpg) // 2],
        "trunc-header.jpg": jpg[:30],
        "garbage.jpg": jpg[:200] + bytes(500),
    }
    for name, data in cases.items():
        (work / name).write_bytes(data)
    return list(cases)


def test_corrupt_and_truncated_png_jpeg(work):
    for name in _corrupt_inputs(work):
        before = snapshot(work)
        result = run("encode", name, "-o", "out.kvq", "-k", "65536", cwd=work)
        # Pillow decodes some damaged JPEGs with grey fill; what matters is a
        # clean outcome: a complete file, or one error line and nothing written.
        if result.returncode == 0:
            assert kvq.load(work / "out.kvq").shape[:2] == (64, 64)
            (work / "out.kvq").unlink()
        else:
            fails(result)
            assert snapshot(work) == before, name
    # The clearly broken ones must fail.
    for name in ("trunc-header.png", "crc.png", "trunc-header.jpg", "trunc-half.png"):
        expect_error(work, "encode", name, "-o", "out.kvq", "-k", "4")


def test_directory_input(work):
    (work / "folder").mkdir()
    expect_error(work, "encode", "folder", "-o", "out.kvq", contains="directory")
    expect_error(work, "decode", "folder", "-o", "out.png", contains="directory")
    expect_error(work, "info", "folder", contains="directory")


def test_missing_input(work):
    expect_error(work, "encode", "nope.png", "-o", "out.kvq", contains="nope.png")
    expect_error(work, "decode", "nope.kvq", "-o", "out.png", contains="nope.kvq")
    expect_error(work, "info", "nope.kvq", contains="nope.kvq")


def test_unwritable_output_folder(work):
    expect_error(work, "encode", "in.png", "-o", "missing-dir/out.kvq", contains="out.kvq")
    expect_error(work, "encode", "in.png", "-o", "in.kvq/out.kvq", contains="out.kvq")  # parent is a file
    expect_error(work, "decode", "in.kvq", "-o", "missing-dir/out.png", contains="out.png")
    if os.geteuid() != 0:  # root writes into read-only folders anyway
        locked = work / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        try:
            expect_error(work, "encode", "in.png", "-o", "locked/out.kvq")
            assert list(locked.iterdir()) == []
        finally:
            locked.chmod(0o755)


def test_output_is_a_directory(work):
    # An existing folder as -o takes the output, as cp's target folder does.
    (work / "outdir").mkdir()
    assert run("encode", "in.png", "-o", "outdir", cwd=work).returncode == 0
    assert kvq.read_header(work / "outdir" / "in.kvq").width == 32
    # A folder where the output file would go fails that file, even with --force.
    (work / "outdir2" / "in.kvq").mkdir(parents=True)
    result = run("encode", "in.png", "-o", "outdir2", "--force", cwd=work)
    err = result.stderr.decode()
    assert result.returncode == 3 and "Traceback" not in err
    assert "kvq: failed: in.png: output outdir2/in.kvq is a directory" in err.replace(os.sep, "/")
    assert (work / "outdir2" / "in.kvq").is_dir() and list((work / "outdir2").iterdir()) == [work / "outdir2" / "in.kvq"]


def test_output_equal_to_input(work):
    expect_error(work, "encode", "in.png", "-o", "in.png", "--force", contains="same file")
    expect_error(work, "decode", "in.kvq", "-o", "in.kvq", "--force", "--format", "PNG", contains="same file")
    expect_error(work, "encode", "in.png", "-o", "./sub/../in.png", "--force")


def test_existing_output_without_force(work):
    (work / "out.kvq").write_bytes(b"precious")
    (work / "out.png").write_bytes(b"precious")
    expect_error(work, "encode", "in.png", "-o", "out.kvq", "-k", "4", contains="exists")
    expect_error(work, "decode", "in.kvq", "-o", "out.png", contains="exists")
    assert (work / "out.kvq").read_bytes() == b"precious"
    # With --force it is replaced, and nothing else is left.
    assert run("encode", "in.png", "-o", "out.kvq", "-k", "64", "--force", cwd=work).returncode == 0
    assert kvq.load(work / "out.kvq").shape == (24, 32, 3)
    assert sorted(p.name for p in work.iterdir()) == ["in.kvq", "in.png", "out.kvq", "out.png"]


# ------------------------------------------------------------- odd shapes


@pytest.mark.parametrize("shape", [(1, 1), (1, 100_000), (100_000, 1)])
def test_extreme_shapes_round_trip(tmp_path, shape):
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 2, (*shape, 3), dtype=np.uint8) * 255  # 8 colours: K = 8 is exact
    Image.fromarray(pixels).save(tmp_path / "in.png")
    result = run("encode", "in.png", "-o", "out.kvq", "-k", "8", cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    decoded = kvq.load(tmp_path / "out.kvq")
    assert decoded.shape == (*shape, 3)
    result = run("decode", "out.kvq", "-o", "back.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "back.png").convert("RGB")), decoded)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back.png", "in.png", "out.kvq"]


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "PA", "I", "I;16", "F", "RGB", "RGBA", "CMYK", "YCbCr"])
def test_every_pillow_mode_encodes_or_fails_cleanly(tmp_path, mode):
    base = Image.fromarray(np.random.default_rng(3).integers(0, 256, (6, 7, 3), dtype=np.uint8))
    image = base.convert(mode) if mode not in ("PA", "I;16") else base.convert("L").convert(mode)
    try:
        image.save(tmp_path / "in.tif")
    except (OSError, ValueError, KeyError):
        pytest.skip(f"Pillow cannot write {mode} as TIFF")
    result = run("encode", "in.tif", "-o", "out.kvq", "-k", "256", cwd=tmp_path)
    if result.returncode == 0:
        assert kvq.load(tmp_path / "out.kvq").shape[:2] == (6, 7)
    else:
        fails(result)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


# ------------------------------------------------------------ decode / info


def corrupted(valid: bytes) -> dict[str, bytes]:
    flip = bytearray(valid)
    flip[len(valid) - 6] ^= 0x10
    return {
        "empty.kvq": b"",
        "signature.kvq": b"\x89KVQ\r\n\x1a",
        "png-named.kvq": (b"\x89PNG\r\n\x1a\n" + bytes(40)),
        "header-only.kvq": valid[:38],
        "trunc.kvq": valid[:-1],
        "flip.kvq": bytes(flip),
        "trailing.kvq": valid + b"\x00",
        "bomb.kvq": valid[:16] + struct.pack(">II", 60000, 60000) + valid[24:],
    }


def test_corrupt_kvq_through_decode_and_info(work):
    valid = (work / "in.kvq").read_bytes()
    for name, data in corrupted(valid).items():
        (work / name).write_bytes(data)
    for name in corrupted(valid):
        expect_error(work, "decode", name, "-o", "out.png")
        expect_error(work, "info", name)


def test_decode_bomb_honours_max_pixels(work):
    data = kvq.encode(np.zeros((300, 300), dtype=np.uint8), k=1)
    (work / "big.kvq").write_bytes(data)
    expect_error(work, "decode", "big.kvq", "-o", "out.png", "--max-pixels", "89999", contains="exceeds")
    assert run("decode", "big.kvq", "-o", "out.png", "--max-pixels", "90000", cwd=work).returncode == 0


def test_decode_unknown_output_extension(work):
    expect_error(work, "decode", "in.kvq", "-o", "out.unknownext")


def test_valid_info(work):
    result = run("info", "in.kvq", cwd=work)
    assert result.returncode == 0 and b"8 x 8" in result.stdout, result


# ------------------------------------------------- the library's encoder


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((0, 5, 3), dtype=np.uint8),
        np.zeros((5, 0), dtype=np.uint8),
        np.zeros((0, 0, 4), dtype=np.uint8),
        np.zeros((4, 4, 2), dtype=np.uint8),
        np.zeros((4, 4, 5), dtype=np.uint8),
        np.zeros((4,), dtype=np.uint8),
        np.zeros((2, 2, 2, 3), dtype=np.uint8),
        np.zeros((4, 4, 3), dtype=np.float32),
        np.zeros((4, 4), dtype=np.uint16),
        np.zeros((4, 4), dtype=bool),
        b"not an image",  # a str is a path: test_fileio
        None,
        [[1, 2], [3, 4]],
    ],
    ids=lambda v: f"{type(v).__name__}{getattr(v, 'shape', '')}{getattr(v, 'dtype', '')}",
)
def test_library_refuses_unsupported_images(image):
    with pytest.raises(kvq.UnsupportedImageError):
        kvq.encode(image, k=4)


@pytest.mark.parametrize("k", [0, -1, 65537, 2.5, "16", None, True])
def test_library_refuses_invalid_k(k):
    with pytest.raises(kvq.OptionError):
        kvq.encode(np.zeros((2, 2, 3), dtype=np.uint8), k=k)


def test_library_extreme_shapes():
    for shape in [(1, 1, 3), (1, 100_000), (100_000, 1, 4)]:
        image = np.random.default_rng(4).integers(0, 256, shape, dtype=np.uint8)
        decoded = kvq.decode(kvq.encode(image, k=4))
        assert decoded.shape == image.shape
        assert len(np.unique(decoded.reshape(decoded.shape[0] * decoded.shape[1], -1), axis=0)) <= 4


def test_save_failure_leaves_nothing(tmp_path):
    (tmp_path / "out.kvq").write_bytes(b"old")
    with pytest.raises(kvq.OutputExistsError):
        kvq.save(np.zeros((2, 2, 3), dtype=np.uint8), tmp_path / "out.kvq", k=2)
    with pytest.raises(kvq.UnsupportedImageError):
        kvq.save(np.zeros((0, 2, 3), dtype=np.uint8), tmp_path / "new.kvq", k=2)
    with pytest.raises(kvq.KvqError):
        kvq.save(tmp_path / "out.kvq", tmp_path / "out.kvq", k=2, force=True)  # output is the input
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.kvq"]
    assert (tmp_path / "out.kvq").read_bytes() == b"old"
