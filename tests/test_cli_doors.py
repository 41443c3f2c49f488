"""Issue 11: the ``kvq`` command agrees with the library, and says exactly one thing.

Tests that depend on file descriptors (closed streams, terminals, what C
libraries write to standard error) run the command in a subprocess; the
others call ``kvq.cli.main`` in the test process, which is the same code
without the start-up cost.
"""

from __future__ import annotations

import io
import json
import os
import pty
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_doors import _exif_rotated, _photo, _png_chunk, dds, icns_bomb, jpeg_with_app1, visible

import kvq
from kvq import container
from kvq.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def env() -> dict[str, str]:
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return environ


def run(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvq", *args], cwd=cwd, env=env(), capture_output=True, timeout=120, **kwargs)


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """``kvq`` with shell redirections (closing a descriptor, say)."""
    line = f'"{sys.executable}" -m kvq {command}'
    return subprocess.run(["sh", "-c", line], cwd=cwd, env=env(), capture_output=True, timeout=120)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvq: error: "), err
    return lines[0]


def cli(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture()
def photo_png(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(_photo()).save(path)
    return path


# ------------------------------------------------ the library's inputs, items 1-4


def test_cli_encodes_jpeg_with_corrupt_exif(tmp_path: Path, capsys) -> None:
    path = tmp_path / "camera.jpg"
    path.write_bytes(jpeg_with_app1(_exif_rotated()[:10]))  # made the CLI say "internal error (error: ...)"
    with Image.open(path) as im:
        stored = np.asarray(im.convert("RGB"))
    status, _, err = cli(capsys, "encode", str(path), "-k", "8")
    assert (status, err) == (0, "")
    assert (tmp_path / "camera.kvq").read_bytes() == kvq.encode(stored, k=8)


def test_cli_keeps_transparency_of_rgba_palettes_and_trns(tmp_path: Path, capsys) -> None:
    # A DDS with an 8-bit palette of RGBA entries (Pillow opens it as P with an RGBA palette).
    palette = np.zeros((256, 4), np.uint8)
    palette[:3] = [(255, 0, 0, 0), (0, 255, 0, 255), (0, 0, 255, 128)]
    header = struct.pack("<6I", 0x1007, 4, 4, 4, 0, 0) + bytes(44) + struct.pack("<4I", 32, 0x20, 0, 8) + bytes(36)
    (tmp_path / "sprite.dds").write_bytes(b"DDS " + struct.pack("<I", 124) + header + palette.tobytes() + bytes([0, 1, 2, 1] * 4))
    assert cli(capsys, "encode", str(tmp_path / "sprite.dds"), "-k", "16")[0] == 0
    decoded = kvq.load(tmp_path / "sprite.kvq")
    assert decoded.shape == (4, 4, 4)
    assert sorted(np.unique(decoded[..., 3]).tolist()) == [0, 128, 255]

    grey = np.asarray(Image.fromarray(_photo()).convert("L"))
    Image.fromarray(grey).save(tmp_path / "grey.png", transparency=int(grey[0, 0]))
    assert cli(capsys, "encode", str(tmp_path / "grey.png"))[0] == 0
    alpha = kvq.load(tmp_path / "grey.kvq")[..., 3]
    assert np.array_equal(alpha == 0, grey == grey[0, 0])


def test_cli_names_what_pillow_cannot_decode(tmp_path: Path, capsys) -> None:
    (tmp_path / "texture.dds").write_bytes(dds(pfflags=0))
    status, out, err = cli(capsys, "encode", str(tmp_path / "texture.dds"))
    assert status == 1 and out == ""
    assert one_line(err) == f"kvq: error: {tmp_path / 'texture.dds'}: cannot read image: Unknown pixel format flags 0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["texture.dds"]


def test_cli_refuses_a_bomb_found_at_load(tmp_path: Path, capsys) -> None:
    (tmp_path / "icon.icns").write_bytes(icns_bomb())
    status, _, err = cli(capsys, "encode", str(tmp_path / "icon.icns"))
    assert status == 1 and "decompression bomb" in one_line(err)


# -------------------------------------------------- item 5: stray lines on stderr


def corrupt_deflate_tiff(path: Path) -> None:
    """A 4x4 RGB TIFF whose deflate stream is broken: libtiff prints its own error line."""
    buf = io.BytesIO()
    Image.fromarray(_photo(4, 4)).save(buf, "TIFF", compression="tiff_adobe_deflate")
    data = bytearray(buf.getvalue())
    data[8:20] = b"\x55" * 12  # the strip starts right after the 8-byte header
    path.write_bytes(bytes(data))


def test_library_messages_are_held_back_on_error(tmp_path: Path) -> None:
    corrupt_deflate_tiff(tmp_path / "scan.tif")
    result = run("encode", "scan.tif", cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot read image" in one_line(result.stderr.decode())
    verbose = run("encode", "scan.tif", "-v", cwd=tmp_path).stderr.decode()
    assert "Decoding error" in verbose and verbose.strip().splitlines()[-1] == one_line(result.stderr.decode())

    # Pillow's DecompressionBombWarning, then a truncated file: only the error.
    ihdr = struct.pack(">IIBBBBB", 10000, 10000, 1, 0, 0, 0, 0)
    chunks = ((b"IHDR", ihdr), (b"IDAT", zlib.compress(bytes(999))[:40]))
    png = b"\x89PNG\r\n\x1a\n" + b"".join(_png_chunk(kind, data) for kind, data in chunks)
    (tmp_path / "big.png").write_bytes(png)
    result = run("encode", "big.png", cwd=tmp_path)
    assert result.returncode == 1 and "truncated" in one_line(result.stderr.decode())


def test_held_library_messages_are_bounded(tmp_path: Path) -> None:
    # A library that complains once per file of a huge batch: -v shows the first 64 KiB and a count.
    script = (
        "import os, sys\n"
        "from kvq.cli import _FdHold\n"
        "hold = _FdHold.start()\n"
        "for i in range(20000): os.write(2, b'TIFFReadDirectory: unknown field with tag %d\\n' % i)\n"
        "text = hold.stop()\n"
        "print(len(text.encode()), text.splitlines()[0], text.splitlines()[-1], sep='|')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    size, first, last = result.stdout.strip().split("|")
    assert result.stderr == "" and int(size) <= 64 * 1024 + 100
    assert first == "TIFFReadDirectory: unknown field with tag 0"
    assert last.startswith("... and ") and last.endswith(" more bytes of messages")
    # One line longer than the cap, of two-byte characters: cut between characters, every byte counted.
    script = (
        "import os\n"
        "from kvq.cli import _FdHold\n"
        "hold = _FdHold.start()\n"
        "os.write(2, ('\\u00e9' * 40000).encode())\n"
        "text = hold.stop()\n"
        "print(ascii(text[-50:]), len(text.split(chr(10))[0].encode()), sep='|')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    tail, kept = result.stdout.strip().split("|")
    assert int(kept) == 64 * 1024 and tail.endswith(f"\\n... and {80000 - 64 * 1024:,} more bytes of messages\\n'")


def test_warnings_are_silent_on_success_unless_verbose(tmp_path: Path, capsys) -> None:
    # A truncated EXIF directory: Pillow warns "Corrupt EXIF data", the photo is fine.
    exif = _exif_rotated()
    (tmp_path / "camera.jpg").write_bytes(jpeg_with_app1(exif[:-6]))
    result = run("encode", "camera.jpg", "-k", "4", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == b""
    assert result.stdout.decode().startswith("camera.kvq: ")
    verbose = run("encode", "camera.jpg", "-k", "4", "-o", "v.kvq", "-v", cwd=tmp_path)
    assert verbose.returncode == 0 and "kvq: warning: Corrupt EXIF data" in verbose.stderr.decode()
    status, out, err = cli(capsys, "encode", str(tmp_path / "camera.jpg"), "-k", "4", "-o", str(tmp_path / "q.kvq"), "-q")
    assert (status, out, err) == (0, "", "")
    assert (tmp_path / "q.kvq").read_bytes() == (tmp_path / "camera.kvq").read_bytes()


# ------------------------------------------------ item 10 and 17: kvq info


def _bad_indices() -> dict[str, bytes]:
    odd = kvq.encode_indexed(palette=np.array([[0, 0, 0], [9, 9, 9], [200, 1, 1]], np.uint8), indices=np.array([[0, 1, 2]]))
    return {
        "padding": odd[:-13] + container._chunk(container.INDX, bytes([0b00011001])),
        "index-ge-k": odd[:-13] + container._chunk(container.INDX, bytes([0b00011100])),
    }


@pytest.mark.parametrize("case", ["padding", "index-ge-k"])
def test_info_checks_the_index_data(tmp_path: Path, capsys, case: str) -> None:
    data = _bad_indices()[case]
    (tmp_path / "bad.kvq").write_bytes(data)
    with pytest.raises(kvq.FormatError) as decoding:
        kvq.decode(data)
    for extra in ([], ["--json"]):
        status, out, err = cli(capsys, "info", str(tmp_path / "bad.kvq"), *extra)
        assert (status, out) == (1, "")
        assert one_line(err) == f"kvq: error: {tmp_path / 'bad.kvq'}: {decoding.value}"


def test_info_shows_the_palette_with_pixel_counts(tmp_path: Path, capsys) -> None:
    data = kvq.encode(_photo(), k=8)
    (tmp_path / "p.kvq").write_bytes(data)
    decoded = kvq.decode_indexed(data)
    counts = np.bincount(decoded.indices.ravel(), minlength=decoded.header.k)
    status, out, _ = cli(capsys, "info", str(tmp_path / "p.kvq"))
    assert status == 0
    entries = [line.split() for line in out.splitlines() if line.startswith("entry ")]
    assert len(entries) == decoded.header.k
    for i, fields in enumerate(entries):
        assert int(fields[1]) == i
        assert fields[2] == "#" + decoded.palette[i].tobytes().hex()
        assert int(fields[3].replace(",", "")) == counts[i]
    assert "\x1b[" not in out  # not a terminal: no colour

    status, out, _ = cli(capsys, "info", str(tmp_path / "p.kvq"), "--json")
    report = json.loads(out)
    assert [e["color"] for e in report["palette"]] == decoded.palette.tolist()
    assert [e["pixels"] for e in report["palette"]] == counts.tolist()
    assert sum(e["pixels"] for e in report["palette"]) == 48 * 64
    assert report["palette"][0]["hex"] == "#" + decoded.palette[0].tobytes().hex()


def test_info_palette_of_grey_rgba_and_large_k() -> None:
    from kvq.report import describe

    grey = kvq.encode_indexed(palette=np.array([[0], [200]], np.uint8), indices=np.array([[0, 1, 1]]))
    assert "#c8c8c8" in describe(grey).text()
    assert describe(grey).as_dict()["palette"][1] == {"index": 1, "color": [200], "hex": "#c8c8c8", "pixels": 2}
    rgba = kvq.encode_indexed(palette=np.array([[255, 0, 0, 0], [0, 0, 255, 128]], np.uint8), indices=np.array([[0, 1]]))
    text = describe(rgba).text(color=True)
    assert "#ff000000" in text and "\x1b[48;2;0;0;128m" in text  # half-transparent blue over black
    entries = np.stack([np.arange(300) % 256, np.arange(300) // 256, np.zeros(300)], axis=1).astype(np.uint8)
    big = kvq.encode_indexed(palette=entries, indices=np.arange(300).reshape(10, 30))
    text = describe(big).text()
    assert sum(line.startswith("entry ") for line in text.splitlines()) == 257 and "44 more" in text
    assert len(describe(big).as_dict()["palette"]) == 300


def _pty_run(args: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    """Run kvq with standard output on a terminal; return status, what the terminal got, stderr."""
    master, slave = pty.openpty()
    try:
        command = [sys.executable, "-m", "kvq", *args]
        proc = subprocess.Popen(command, cwd=cwd, env={**env(), **(extra_env or {})}, stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        seen = b""
        while True:
            try:
                piece = os.read(master, 65536)
            except OSError:  # the terminal is gone once the child exits
                break
            if not piece:
                break
            seen += piece
        err = proc.stderr.read()
        return proc.wait(timeout=120), seen, err
    finally:
        os.close(master)


def test_info_shows_swatches_on_a_colour_terminal(tmp_path: Path) -> None:
    two = kvq.encode_indexed(palette=np.array([[255, 0, 0], [0, 128, 0]], np.uint8), indices=np.array([[0, 1]]))
    (tmp_path / "p.kvq").write_bytes(two)
    status, seen, _ = _pty_run(["info", "p.kvq"], tmp_path, {"TERM": "xterm-256color"})
    assert status == 0 and b"\x1b[48;2;255;0;0m" in seen and b"\x1b[48;2;0;128;0m" in seen
    status, seen, _ = _pty_run(["info", "p.kvq"], tmp_path, {"TERM": "xterm-256color", "NO_COLOR": "1"})
    assert status == 0 and b"\x1b[" not in seen and b"#ff0000" in seen


# -------------------------------------------- item 11: closed standard streams


def test_closed_standard_streams_give_a_clear_line(tmp_path: Path, photo_png: Path) -> None:
    (tmp_path / "in.kvq").write_bytes(kvq.encode(_photo(), k=4))
    for command, which in (
        ("decode in.kvq -o - >&-", "output"),
        ("encode photo.png -o - >&-", "output"),
        ("info in.kvq >&-", "output"),
        ("decode - -o out.png <&-", "input"),
        ("encode - -o out.kvq <&-", "input"),
        ("explore photo.png -o - -k 2 >&-", "output"),
        ("explore - -o out.html --no-open -k 2 <&-", "input"),
    ):
        result = shell(command, tmp_path)
        assert result.returncode == 1, (command, result.stderr)
        assert one_line(result.stderr.decode()) == f"kvq: error: standard {which} is closed", command
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out.kvq").exists()
    assert not (tmp_path / "out.html").exists()


def test_a_reader_that_stops_early_is_exit_141_not_success(tmp_path: Path) -> None:
    # Outputs larger than a pipe's buffer (64 KiB), read 10 bytes of: the
    # command must not report a cut-off output as written (a short write of
    # a buffered pipe once hid the broken pipe).
    noise = np.random.default_rng(3).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    (tmp_path / "noise.kvq").write_bytes(kvq.encode(noise, k=256))
    for args in (["encode", "noise.png", "-o", "-", "-k", "256"], ["decode", "noise.kvq", "-o", "-", "--format", "PNG"]):
        process = subprocess.Popen(
            [sys.executable, "-m", "kvq", *args], cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert process.stdout is not None and process.stderr is not None
        assert len(process.stdout.read(10)) == 10
        process.stdout.close()
        err = process.stderr.read().decode()
        assert process.wait(timeout=120) == 141, (args, err)
        assert err == "", args  # quiet, as cat is after SIGPIPE, and no "N bytes" success line


# -------------------------------------------- item 15: the output's extension


def test_encode_to_png_is_an_indexed_png_with_the_palette(tmp_path: Path, capsys, photo_png: Path) -> None:
    expected = kvq.decode(kvq.encode(Image.open(photo_png), k=16))
    status, out, _ = cli(capsys, "encode", str(photo_png), "-o", str(tmp_path / "small.png"), "-k", "16")
    assert status == 0
    size = (tmp_path / "small.png").stat().st_size
    assert out.startswith(f"{tmp_path / 'small.png'}: {size:,} bytes")
    with Image.open(tmp_path / "small.png") as im:
        assert (im.format, im.mode) == ("PNG", "P")
        assert len(im.getpalette()) // 3 <= 16
        assert np.array_equal(np.asarray(im.convert("RGB")), expected)


def test_encode_to_png_keeps_alpha_in_trns(tmp_path: Path, capsys) -> None:
    rgba = np.concatenate([_photo(), np.full((48, 64, 1), 255, np.uint8)], axis=2)
    rgba[:, :16, 3] = 0
    rgba[:, 16:24, 3] = 100
    Image.fromarray(rgba).save(tmp_path / "logo.png")
    assert cli(capsys, "encode", str(tmp_path / "logo.png"), "-o", str(tmp_path / "logo-16.png"), "-k", "16")[0] == 0
    expected = kvq.decode(kvq.encode(rgba, k=16))
    with Image.open(tmp_path / "logo-16.png") as im:
        assert (im.format, im.mode) == ("PNG", "P") and "transparency" in im.info
        assert np.array_equal(visible(np.asarray(im.convert("RGBA"))), visible(expected))


def test_encode_output_extension_picks_the_format(tmp_path: Path, capsys, photo_png: Path) -> None:
    kvq_bytes = kvq.encode(Image.open(photo_png), k=8)
    for name in ("plain", "x.kvq", "X.KVQ"):
        assert cli(capsys, "encode", str(photo_png), "-o", str(tmp_path / name), "-k", "8")[0] == 0
        assert (tmp_path / name).read_bytes() == kvq_bytes, name
    assert cli(capsys, "encode", str(photo_png), "-o", str(tmp_path / "x.gif"), "-k", "8")[0] == 0
    with Image.open(tmp_path / "x.gif") as im:
        assert im.format == "GIF" and np.array_equal(np.asarray(im.convert("RGB")), kvq.decode(kvq_bytes))
    status, _, err = cli(capsys, "encode", str(photo_png), "-o", str(tmp_path / "x.xyz"), "-k", "8")
    assert status == 1 and "unknown extension .xyz" in one_line(err)
    assert not (tmp_path / "x.xyz").exists()


# --------------------------------------------------------- item 16: consistency


def test_decode_of_a_non_kvq_file_says_so(tmp_path: Path, capsys, photo_png: Path) -> None:
    status, _, err = cli(capsys, "decode", str(photo_png))
    assert status == 1 and "not a .kvq file" in one_line(err)


def test_missing_output_folder_is_named(tmp_path: Path, capsys, photo_png: Path) -> None:
    missing = tmp_path / "nowhere" / "deeper"
    status, _, err = cli(capsys, "encode", str(photo_png), "-o", str(missing / "x.kvq"))
    assert status == 1 and f"folder {missing} does not exist" in one_line(err)
    (tmp_path / "in.kvq").write_bytes(kvq.encode(_photo(), k=4))
    status, _, err = cli(capsys, "decode", str(tmp_path / "in.kvq"), "-o", str(photo_png / "x.png"))
    assert status == 1 and f"folder {photo_png} is not a folder" in one_line(err)


def test_binary_output_is_not_written_to_a_terminal(tmp_path: Path, photo_png: Path) -> None:
    (tmp_path / "in.kvq").write_bytes(kvq.encode(_photo(), k=4))
    for args in (["decode", "in.kvq", "-o", "-"], ["encode", "photo.png", "-o", "-", "-k", "4"]):
        status, seen, err = _pty_run(args, tmp_path)
        assert status == 1 and seen == b"", args
        assert "terminal" in one_line(err.decode())
    status, seen, _ = _pty_run(["decode", "in.kvq", "-o", "-", "-f"], tmp_path)
    assert status == 0 and seen.startswith(b"\x89PNG")


def test_bad_option_values_fail_alike(tmp_path: Path, capsys, photo_png: Path) -> None:
    statuses = {}
    for flag, value in (("--speed", "11"), ("--dither", "atkinson"), ("--color-space", "cmyk"), ("-k", "0")):
        status, _, err = cli(capsys, "encode", str(photo_png), "-o", str(tmp_path / "x.kvq"), flag, value)
        statuses[flag] = status
        assert "must be" in one_line(err)
    assert set(statuses.values()) == {1}, statuses
    # The spellings kvq.encode accepts are accepted here too.
    assert cli(capsys, "encode", str(photo_png), "-o", str(tmp_path / "fs.kvq"), "-k", "4", "--dither", "fs")[0] == 0
    assert kvq.load(tmp_path / "fs.kvq").shape == (48, 64, 3)


def test_list_options_take_commas_everywhere() -> None:
    assert build_parser().parse_args(["demo", "-k", "2,16"]).ks == [[2, 16]]
    assert build_parser().parse_args(["demo", "-k", "2", "16,64"]).ks == [[2], [16, 64]]


def test_bench_has_force_quiet_and_help_for_every_encoder_option() -> None:
    pytest.importorskip("matplotlib")
    from kvq.bench.cli import build_parser as bench_parser

    parser = bench_parser()
    args = parser.parse_args(["-f", "-q"])
    assert args.force and args.quiet
    encoder = {"seed", "color_space", "dither", "speed"}
    helps = {action.dest: action.help for action in parser._actions if action.dest in encoder}
    assert set(helps) == encoder and all(helps.values()), helps


def test_every_command_with_output_has_quiet_and_verbose() -> None:
    for command in ("encode", "decode"):
        args = build_parser().parse_args([command, "x", "-q"])
        assert args.quiet and not args.verbose
        assert build_parser().parse_args([command, "x", "-v"]).verbose
