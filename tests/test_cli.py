"""The kvq command, reading its output, its files and its status.

What a process shows runs as a user runs it, in a subprocess (``run_kvq``): standard input
piped to standard output, every error's one line and exit status, two runs giving the same
bytes. The rest runs ``kvq.cli.main`` in the test process on real descriptors 0-2
(``run_kvq_here``): the same code, without the interpreter's start-up.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kvq
from kvq.container import OVERHEAD

from conftest import one_error_line, run_kvq
from conftest import run_kvq_here as run


def test_encode_info_decode_round_trip(photo_png: Path, tmp_path: Path) -> None:
    result = run("encode", str(photo_png), "-k", "16", "--coding", "fixed", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "photo.kvq"
    data = out.read_bytes()
    header = kvq.read_header(data)
    assert header.k == 16 and header.bits == 4
    assert len(data) == OVERHEAD + 3 * 16 + (96 * 64 * 4 + 7) // 8
    line = result.stdout.decode().strip()
    assert line.startswith(f"{out}: {len(data):,} bytes")
    assert "bpp" in line and "x smaller than 24·N" in line and "PSNR" in line

    info = run("info", str(out), cwd=tmp_path)
    assert info.returncode == 0
    text = info.stdout.decode()
    assert "96 x 64 = 6,144 pixels" in text
    assert f"{len(data):,} = overhead {OVERHEAD} + palette 48 + indices 3,072" in text
    assert f"N·4 + 24·K = {6144 * 4 + 24 * 16:,} bits" in text

    dec = run("decode", str(out), "-o", "back.png", cwd=tmp_path)
    assert dec.returncode == 0, dec.stderr
    with Image.open(tmp_path / "back.png") as im:
        back = np.asarray(im.convert("RGB"))
    assert np.array_equal(back, kvq.decode(data))


def test_same_options_same_bytes(photo_png: Path, tmp_path: Path) -> None:
    # Two runs in two processes (a new one and this one): nothing may depend on hash seeds or process state.
    for runner, name in ((run_kvq, "a.kvq"), (run, "b.kvq")):
        assert runner("encode", str(photo_png), "-o", name, "-k", "8", "--seed", "3", cwd=tmp_path).returncode == 0
    assert (tmp_path / "a.kvq").read_bytes() == (tmp_path / "b.kvq").read_bytes()


def test_stdin_to_stdout(photo_png: Path, tmp_path: Path) -> None:
    result = run_kvq("encode", "-", "-k", "4", cwd=tmp_path, stdin=photo_png.read_bytes())
    assert result.returncode == 0
    assert kvq.read_header(result.stdout).k == 4
    # Standard output holds only the file, and a success prints nothing on standard error (the README's promise;
    # the summary line went there): -v asks for it.
    assert result.stderr == b""
    verbose = run("encode", "-", "-k", "4", "-v", cwd=tmp_path, stdin=photo_png.read_bytes())
    assert verbose.stdout == result.stdout and verbose.stderr.decode().startswith("stdout: ")
    decoded = run_kvq("decode", "-", "-o", "-", cwd=tmp_path, stdin=result.stdout)
    assert decoded.returncode == 0
    assert decoded.stdout[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp"])
def test_decode_format_follows_extension(photo_png: Path, tmp_path: Path, suffix: str) -> None:
    data = kvq.encode(Image.open(photo_png), k=8)
    (tmp_path / "in.kvq").write_bytes(data)
    result = run("decode", "in.kvq", "-o", f"out{suffix}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / f"out{suffix}") as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), kvq.decode(data))


@pytest.mark.parametrize(("fmt", "name"), [("webp", "in.webp"), ("TIFF", "in.tif"), ("png", "in.png")])
def test_decode_format_names_the_default_output(photo_png: Path, tmp_path: Path, fmt: str, name: str) -> None:
    # `kvq decode in.kvq --format webp` wrote WebP bytes into in.png; a batch already named its outputs in.webp.
    data = kvq.encode(Image.open(photo_png), k=8)
    (tmp_path / "in.kvq").write_bytes(data)
    result = run("decode", "in.kvq", "--format", fmt, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.stem == "in") == sorted(["in.kvq", name])
    with Image.open(tmp_path / name) as im:
        assert im.format == fmt.upper()
        assert np.array_equal(np.asarray(im.convert("RGB")), kvq.decode(data))


def test_existing_output_needs_force(photo_png: Path, tmp_path: Path) -> None:
    target = tmp_path / "photo.kvq"
    target.write_bytes(b"precious")
    result = run("encode", str(photo_png), cwd=tmp_path)
    assert result.returncode == 1
    assert "exists" in one_error_line(result)
    assert target.read_bytes() == b"precious"
    assert run("encode", str(photo_png), "--force", cwd=tmp_path).returncode == 0
    assert kvq.read_header(target.read_bytes()).width == 96


@pytest.mark.parametrize(
    "args, status, fragment",
    [
        (["encode", "missing.png"], 1, "no such file"),
        (["encode", "photo.png", "-k", "0"], 1, "-k/--colors must be between 1 and 65,536"),
        (["encode", "photo.png", "-k", "65537"], 1, "-k/--colors must be between 1 and 65,536"),
        (["encode", "photo.png", "-o", "photo.png", "--force"], 1, "same file as input"),
        (["encode", "notes.txt"], 1, "not an image"),
        (["encode", ".", "-o", "-"], 2, "name an output folder"),  # a folder is a batch (tests/test_cli_batch.py)
        (["decode", "notes.txt"], 1, "not a .kvq file"),
        (["decode", "missing.kvq"], 1, "no such file"),
        (["info", "notes.txt"], 1, "not a .kvq file"),
        (["encode"], 2, "usage error"),
        (["encode", "photo.png", "-k", "many"], 2, "usage error"),
        (["frobnicate"], 2, "usage error"),
    ],
)
def test_bad_input_one_line_and_status(photo_png: Path, tmp_path: Path, args: list, status: int, fragment: str) -> None:
    (tmp_path / "notes.txt").write_text("not an image\n")
    before = sorted(os.listdir(tmp_path))
    result = run_kvq(*args, cwd=tmp_path)
    assert result.returncode == status
    assert fragment in one_error_line(result)
    assert sorted(os.listdir(tmp_path)) == before  # nothing left behind


def test_corrupt_file_names_the_offset(photo_png: Path, tmp_path: Path) -> None:
    data = bytearray(kvq.encode(Image.open(photo_png), k=8))
    data[100] ^= 0x40
    (tmp_path / "bad.kvq").write_bytes(bytes(data))
    result = run("decode", "bad.kvq", cwd=tmp_path)
    assert result.returncode == 1
    assert "CRC-32 mismatch" in one_error_line(result) and "at byte" in result.stderr.decode()
    assert not (tmp_path / "bad.png").exists()
    truncated = run("info", "-", cwd=tmp_path, stdin=bytes(data[:60]))
    assert truncated.returncode == 1 and "ends" in one_error_line(truncated)


def test_decode_refuses_more_pixels_than_allowed(photo_png: Path, tmp_path: Path) -> None:
    (tmp_path / "p.kvq").write_bytes(kvq.encode(Image.open(photo_png), k=4))
    result = run("decode", "p.kvq", "--max-pixels", "1000", cwd=tmp_path)
    assert result.returncode == 1
    # The file, and the option that raises the limit (not the library's max_pixels).
    expected = "p.kvq: image of 96x64 = 6,144 pixels exceeds the limit of 1,000 pixels (--max-pixels raises it)"
    assert one_error_line(result).endswith(expected)


def test_messages_name_the_commands_own_options_and_count_right(photo_png: Path, tmp_path: Path) -> None:
    # A command's message names --force, not the library's force=True...
    (tmp_path / "photo.kvq").write_bytes(b"precious")
    exists = one_error_line(run("encode", str(photo_png), "-o", "photo.kvq", cwd=tmp_path), 1)
    assert exists.endswith("output photo.kvq exists (-f/--force replaces it)") and "force=True" not in exists
    with pytest.raises(kvq.OutputExistsError, match=r"force=True replaces it"):  # ...and the library's the reverse
        kvq.save(np.zeros((2, 2, 3), np.uint8), tmp_path / "photo.kvq")
    # A usage error points at the command's own help, where the option would be listed.
    assert one_error_line(run("encode", str(photo_png), "--bogus", cwd=tmp_path), 2).endswith("(see kvq encode --help)")
    # One spelling of the palette size's name at every door: the flag the commands declare.
    for args in (["demo", "-k", "0"], ["encode", str(photo_png), "-k", "0"], ["explore", str(photo_png), "-k", "0", "--no-open"]):
        assert one_error_line(run(*args, cwd=tmp_path), 1).endswith("kvq: error: -k/--colors must be between 1 and 65,536, not 0"), args
    # One pixel is "1 pixel", and a file larger than 24·N is larger, not "0.05x smaller".
    Image.new("RGB", (1, 1)).save(tmp_path / "one.png")
    summary = run("encode", "one.png", cwd=tmp_path).stdout.decode()
    assert "21.67x larger than 24·N" in summary and "smaller" not in summary
    info = run("info", "one.kvq", cwd=tmp_path).stdout.decode()
    assert "1 x 1 = 1 pixel," in info and "K = 1 entry," in info and "21.667x larger than that" in info
    assert " 1 pixel  (100.00 %)" in info and "pixels" not in info


def test_demo_prints_size_table(tmp_path: Path) -> None:
    result = run("demo", "-k", "2", "16", "-o", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert "640 x 427 = 273,280 pixels" in lines[0]
    rows = [line.split() for line in lines[2:4]]
    n = 273_280
    for row, k, bits in zip(rows, (2, 16), (1, 4), strict=True):
        assert int(row[0]) == k and int(row[1]) == bits
        fixed = OVERHEAD + 3 * k + (n * bits + 7) // 8
        data = (tmp_path / "out" / f"china-k{k}.kvq").read_bytes()
        assert int(row[2].replace(",", "")) == len(data) < fixed
        assert int(row[3].replace(",", "")) == fixed
        assert int(row[5].replace(",", "")) == n * bits + 24 * k
    for k in (2, 16):
        data = (tmp_path / "out" / f"china-k{k}.kvq").read_bytes()
        with Image.open(tmp_path / "out" / f"china-k{k}.png") as im:
            assert np.array_equal(np.asarray(im), kvq.decode(data))


def test_demo_refuses_a_file_as_its_folder_before_printing(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = run("demo", "-k", "16", "-o", "notes.txt", cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == b""
    assert one_error_line(result) == "kvq: error: notes.txt is a file; -o names a folder for the demo's files"
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_demo_replaces_its_files_only_with_force(tmp_path: Path) -> None:
    assert run("demo", "-k", "2", "-o", "out", cwd=tmp_path).returncode == 0
    mine = tmp_path / "out" / "china-k2.png"
    mine.write_bytes(b"my own picture")
    kept = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    result = run("demo", "-k", "2", "-o", "out", cwd=tmp_path)
    assert result.stdout == b""  # refused before the table's first line
    assert "china-k2.kvq exists" in one_error_line(result, 1) and "--force" in one_error_line(result)
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == kept
    # A K named twice is one row and one file, not a refusal of its own output half way.
    forced = run("demo", "-k", "2,2", "-o", "out", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert len(forced.stdout.decode().splitlines()) == 4  # title, header, one row, footnote
    with Image.open(mine) as im:
        assert np.array_equal(np.asarray(im), kvq.decode(tmp_path / "out" / "china-k2.kvq"))


def test_demo_into_a_read_only_folder_is_one_error_before_the_table(tmp_path: Path, read_only_folder: Path) -> None:
    result = run("demo", "-k", "2", "-o", read_only_folder, cwd=tmp_path)
    assert result.stdout == b""
    assert one_error_line(result, 1).startswith(f"kvq: error: cannot write into {read_only_folder}: ")
    assert list(read_only_folder.iterdir()) == []


def test_version_and_help(tmp_path: Path) -> None:
    assert run("--version", cwd=tmp_path).stdout.decode().strip() == f"kvq {kvq.__version__}"
    help_text = run("encode", "--help", cwd=tmp_path).stdout.decode()
    for option in ("-k", "--seed", "--quality", "--color-space", "--dither", "--speed", "--force"):
        assert option in help_text


def test_library_save_and_load(photo_png: Path, tmp_path: Path) -> None:
    target = tmp_path / "lib.kvq"
    header = kvq.save(photo_png, target, k=8, seed=1)
    data = target.read_bytes()
    assert header == kvq.read_header(data) and header.k == 8
    # The same image given as a Pillow image or a path gives the same bytes.
    assert data == kvq.encode(Image.open(photo_png), k=8, seed=1)
    assert np.array_equal(kvq.load(target), kvq.decode(data))
    with pytest.raises(kvq.OutputExistsError):
        kvq.save(np.zeros((2, 2, 3), np.uint8), target)
    assert target.read_bytes() == data
    kvq.save(np.zeros((2, 2, 3), np.uint8), target, force=True)
    assert kvq.read_header(target).n_pixels == 4
    with pytest.raises(kvq.ImageTooLargeError):
        kvq.load(target, max_pixels=3)


def test_info_json_accounts_for_every_byte(photo_png: Path, tmp_path: Path) -> None:
    import json

    assert run("encode", str(photo_png), "-o", "p.kvq", "-k", "16", "--coding", "fixed", cwd=tmp_path).returncode == 0
    data = (tmp_path / "p.kvq").read_bytes()
    result = run("info", "p.kvq", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # One record, on one line, as each of several files' records (it was pretty-printed for one file alone).
    assert result.stdout.count(b"\n") == 1
    report = json.loads(result.stdout)
    assert report["file"] == "p.kvq"
    assert report["header"]["width"] == 96 and report["header"]["k"] == 16 and report["header"]["bits"] == 4
    sizes = report["bytes"]
    assert sizes["file"] == len(data) == sizes["overhead"] + sizes["palette"] + sizes["indices"] + sizes["ancillary"]
    assert (sizes["overhead"], sizes["palette"], sizes["indices"]) == (OVERHEAD, 48, 96 * 64 * 4 // 8)
    assert report["bits"]["theory_bits"] == 96 * 64 * 4 + 24 * 16 and report["matches_theory"] is True
    assert report["bits"]["file_bits"] == 8 * len(data) and report["ancillary"] == []


def test_the_command_in_process_leaves_ctrl_c_as_it_found_it(tmp_path, capsys, monkeypatch, python_sigint):
    # A program (or a test) that runs kvq's command in-process gets its own SIGINT handler back, and a Ctrl-C the
    # command saw is not remembered: a later, unrelated failure is not taken for an interruption. The handler is
    # called here as Python calls it on Ctrl-C, so nothing is sent to the test process.
    import signal
    import threading

    import kvq.cli
    from kvq.cli import main

    before = signal.getsignal(signal.SIGINT)
    handlers = []

    def kernel_interrupted(args):
        handler = signal.getsignal(signal.SIGINT)
        handlers.append(handler)
        with handler.stopping(threading.Event()) as _:  # in a batch: the first Ctrl-C stops it, quietly
            handler(signal.SIGINT, None)
        with pytest.raises(KeyboardInterrupt):  # otherwise it stops at once
            handler(signal.SIGINT, None)
        # As numba can leave it: no KeyboardInterrupt anywhere in the chain.
        raise SystemError("returned a result with an exception set")

    monkeypatch.setitem(kvq.cli._COMMANDS, "info", kernel_interrupted)
    assert main(["info", str(tmp_path / "x.kvq")]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before and handlers[0] is not before

    def unrelated(args):
        raise SystemError("a real bug")

    monkeypatch.setitem(kvq.cli._COMMANDS, "info", unrelated)
    assert main(["info", str(tmp_path / "x.kvq")]) == 1
    assert "internal error (SystemError: a real bug)" in capsys.readouterr().err


def test_decode_never_offers_to_replace_the_original(photo_png: Path, tmp_path: Path) -> None:
    # kvq encode photo.png && kvq decode photo.kvq: the default output is photo.png, the original. The message
    # suggested --force, which replaces the photo with its quantized copy; it names -o now, and --force does not
    # replace a file that is not kvq's own decoding of the input.
    assert run("encode", "photo.png", "-k", "8", cwd=photo_png.parent).returncode == 0
    original = photo_png.read_bytes()
    for extra in ([], ["--force"], ["--skip-existing"]):
        line = one_error_line(run("decode", "photo.kvq", *extra, cwd=photo_png.parent), 1)
        assert "name the output with -o, such as -o photo-kvq.png" in line and "force" not in line, extra
        assert photo_png.read_bytes() == original
    # kvq's own earlier decoding is an output like any other: kept, replaced with --force.
    assert run("decode", "photo.kvq", "-o", "back.png", cwd=photo_png.parent).returncode == 0
    (tmp_path / "back.kvq").write_bytes((tmp_path / "photo.kvq").read_bytes())
    assert "(-f/--force replaces it)" in one_error_line(run("decode", "back.kvq", cwd=tmp_path), 1)
    assert run("decode", "back.kvq", "--force", cwd=tmp_path).returncode == 0
    with Image.open(tmp_path / "back.png") as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), kvq.decode(tmp_path / "photo.kvq"))


def _feed(fifo: Path, data: bytes) -> None:
    """Write ``data`` into the named pipe ``fifo`` from a thread, once its reader has opened it."""
    import threading

    def write() -> None:
        with open(fifo, "wb") as fp:
            fp.write(data)

    threading.Thread(target=write, daemon=True).start()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX's")
def test_decode_and_info_read_a_named_pipe_once(photo_png: Path, tmp_path: Path) -> None:
    # A named pipe (or a shell's <(cat x.kvq), a /dev/fd path) can be read once: the input must be read once,
    # as standard input is, not opened for its header and again for the decode (the second open waited for ever).
    data = kvq.encode(Image.open(photo_png), k=8)
    fifo = tmp_path / "pipe.kvq"
    os.mkfifo(fifo)
    _feed(fifo, data)
    result = run_kvq("decode", fifo, "-o", tmp_path / "out.png", cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "out.png") as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), kvq.decode(data))
    _feed(fifo, data)
    result = run_kvq("info", fifo, "--json", cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    # The batch's row gives the bytes read, not the size a pipe's stat says (0).
    from kvq import batch

    _feed(fifo, data)
    (row,) = batch.decode_files([fifo], tmp_path / "rows")
    assert row.status == "done" and row.bytes == len(data) and row.k == kvq.read_header(data).k
    # Its header is checked before the rest is read; a pipe is never its own output.
    _feed(fifo, data)
    (row,) = batch.decode_files([fifo], tmp_path / "small", max_pixels=100)
    assert row.status == "failed" and "pixels" in row.reason
    assert not (tmp_path / "small").exists() or not list((tmp_path / "small").iterdir())


@pytest.mark.skipif(not Path("/dev/fd").is_dir() or not shutil.which("bash"), reason="needs bash and /dev/fd")
def test_decode_from_process_substitution(photo_png: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import kvq_env

    (tmp_path / "x.kvq").write_bytes(kvq.encode(Image.open(photo_png), k=8))
    command = f"{sys.executable} -m kvq decode <(cat x.kvq) -o y.png"
    result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=kvq_env(), capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "y.png") as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), kvq.decode(tmp_path / "x.kvq"))


@pytest.mark.parametrize(
    "flag, value, said",
    [
        ("-k", "0", "-k/--colors must be between 1 and 65,536, not 0"),
        ("--dither", "2", "--dither must be between 0.0 and 1.0, not 2.0"),
        ("--speed", "0", "--speed must be between 1 and 10, not 0"),
        ("--color-space", "xyz", "--color-space must be one of rgb, oklab, not 'xyz'"),
        ("--quality", "200", "--quality must be a PSNR in dB between 0 and 100, not 200.0"),
        ("--coding", "zip", "--coding must be one of"),
        ("--method", "sklearn", "--method must be one of kvq, kmeans, not 'sklearn'"),
        ("--seed", "-1", "--seed must be between 0 and"),
    ],
)
def test_an_option_error_names_the_flag_as_kvq_encode_spells_it(
    photo_png: Path, tmp_path: Path, flag: str, value: str, said: str
) -> None:
    # The library's own message names its keyword (color_space); the command's, the flag the user typed a value for.
    line = one_error_line(run("encode", str(photo_png), "-o", "x.kvq", flag, value, cwd=tmp_path), 1)
    assert line.startswith(f"kvq: error: {said}"), line


def test_decode_refuses_a_limit_of_no_pixels_naming_max_pixels(photo_png: Path, tmp_path: Path) -> None:
    (tmp_path / "p.kvq").write_bytes(kvq.encode(Image.open(photo_png), k=4))
    for limit in ("0", "-1"):
        line = one_error_line(run("decode", "p.kvq", "-o", "p.png", "--max-pixels", limit, cwd=tmp_path), 2)
        assert "--max-pixels" in line and "exceeds" not in line, line
    assert not (tmp_path / "p.png").exists()


def test_a_missed_quality_names_the_file_and_the_options_that_reach_it(photo_png: Path, tmp_path: Path) -> None:
    result = run("encode", str(photo_png), "-o", "q.kvq", "--quality", "60", "-k", "16", cwd=tmp_path)
    line = one_error_line(result, 99)
    assert line.startswith(f"kvq: error: {photo_png}: 16 colours reach only "), line
    assert "with --quality, or more colours with -k/--colors" in line and "quality=" not in line, line
    assert not (tmp_path / "q.kvq").exists()
    # Standard input is named as decode names it.
    piped = run("encode", "-", "-o", "q.kvq", "--quality", "60", "-k", "16", cwd=tmp_path, stdin=photo_png.read_bytes())
    assert one_error_line(piped, 99).startswith("kvq: error: stdin: 16 colours reach only "), piped.stderr


def test_empty_standard_input_is_stdin_to_encode_as_to_decode(tmp_path: Path) -> None:
    for verb, output in (("encode", "x.kvq"), ("decode", "x.png")):
        line = one_error_line(run(verb, "-", "-o", output, cwd=tmp_path, stdin=b""), 1)
        assert line.startswith("kvq: error: stdin: "), (verb, line)
