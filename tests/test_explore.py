"""kvq explore: the page it writes (self-contained, deterministic, holding exactly the encoder's files and the
original's pixels), its command line, and the package data that makes it work from an installed wheel.

What the page does in a browser is tested in tests/test_explore_browser.py."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
import webbrowser
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kvq
from kvq import coding, explore
from kvq.cli import main

REPO = Path(__file__).resolve().parent.parent
WEB_FILES = ("kvq.js", "explore.js", "explore.html", "package.json")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from sklearn.datasets import load_sample_image

    return np.ascontiguousarray(load_sample_image("china.jpg")[100:143, 200:264])  # 64 x 43


def logo() -> np.ndarray:
    """40x30 RGBA: a soft-edged disc on a transparent ground."""
    y, x = np.mgrid[0:30, 0:40].astype(np.float64)
    image = np.zeros((30, 40, 4), dtype=np.uint8)
    image[..., 0] = 200
    image[..., 1] = np.clip(x * 6, 0, 255)
    image[..., 2] = 40
    image[..., 3] = np.clip((12 - np.hypot(x - 20, y - 15)) * 60, 0, 255)
    return image


def page_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="kvq-data">(.*?)</script>', page, re.S)
    assert match, "no data block"
    return json.loads(match.group(1))


def test_page_embeds_the_encoders_files_and_the_original(photo):
    page = explore.build_page(photo, ks=(16, 2, 300, 2), name="china.png")
    data = page_data(page)
    assert data["name"] == "china.png"
    assert [e["k"] for e in data["entries"]] == [2, 16, 300]  # sorted, without repeats
    for entry in data["entries"]:
        file = base64.b64decode(entry["file"])
        # Byte for byte what kvq.encode writes with the same options.
        assert file == kvq.encode(photo, k=entry["k"])
        assert entry["name"] == f"china-k{entry['k']}.kvq"
        _check_coding_sizes(entry, file)
    original = data["original"]
    assert (original["width"], original["height"], original["channels"]) == (64, 43, 3)
    with Image.open(io.BytesIO(base64.b64decode(original["png"]))) as im:
        assert np.array_equal(np.asarray(im), photo)


@pytest.mark.parametrize("kind", ["grey", "rgba"])
def test_original_keeps_grey_and_alpha(photo, kind):
    image = np.asarray(Image.fromarray(photo).convert("L")) if kind == "grey" else logo()
    data = page_data(explore.build_page(image, ks=(4,)))
    channels = 1 if kind == "grey" else 4
    assert data["original"]["channels"] == channels
    with Image.open(io.BytesIO(base64.b64decode(data["original"]["png"]))) as im:
        assert im.mode == {1: "L", 4: "RGBA"}[channels]
        assert np.array_equal(np.asarray(im), image)
    file = base64.b64decode(data["entries"][0]["file"])
    assert kvq.read_header(file).channels == channels


def test_page_is_self_contained(photo):
    page = explore.build_page(photo, ks=(2, 8))
    # No element loads anything: no external script, style, font, image or frame.
    assert not re.search(r"<(link|img|iframe|object|embed|source|audio|video)\b", page, re.I)
    assert not re.search(r"\b(src|href)\s*=\s*[\"'](?!#)", page, re.I)
    assert not re.search(r"@import|https?://|//cdn|fetch\(|XMLHttpRequest|WebSocket|EventSource", page, re.I)
    assert not re.search(r"(?<![\w.])url\(", page)  # CSS url(...), not URL.createObjectURL(
    # The decoder and the app are the shipped files, verbatim.
    for name in ("kvq.js", "explore.js"):
        assert explore.web_asset(name) in page
    assert page.count("<script") == 4 and "<!--@" not in page


def test_same_input_same_page(photo):
    assert explore.build_page(photo, ks=(2, 5)) == explore.build_page(photo, ks=(2, 5))


def test_names_cannot_break_out_of_the_page(photo):
    name = "</script><script>alert(1)</script>.png"
    page = explore.build_page(photo, ks=(2,), name=name)
    assert "<script>alert" not in page
    assert page_data(page)["name"] == name
    assert "<title>&lt;/script&gt;" in page


def _check_coding_sizes(entry: dict, file: bytes) -> None:
    """An entry's coding_sizes: the file's own size under its coding, and what the encoder writes in the default one."""
    decoded = kvq.decode_indexed(file)
    own = coding.by_code(kvq.read_header(file).coding).name
    expected = {}
    for name in {own, coding.DEFAULT} - {"fixed"}:
        data = kvq.encode_indexed(palette=decoded.palette, indices=decoded.indices, coding=name)
        if kvq.read_header(data).coding == coding.by_name(name).code:
            expected[str(kvq.read_header(data).coding)] = len(data)
    assert entry["coding_sizes"] == expected
    assert own == "fixed" or entry["coding_sizes"][str(coding.by_name(own).code)] == len(file)


def test_a_page_charts_its_files_coding_and_the_default_and_can_hold_coding_2(photo):
    assert explore.COMPARED_CODING == coding.DEFAULT
    # A page in the default coding charts that one alone (no encode more than the files'); fixed width charts it too.
    for chosen in ("entropy", "fixed"):
        entry = page_data(explore.build_page(photo, ks=(16,), options=kvq.EncoderOptions(coding=chosen)))["entries"][0]
        assert set(entry["coding_sizes"]) == {"1"}
        _check_coding_sizes(entry, base64.b64decode(entry["file"]))
    tall = np.ascontiguousarray(np.tile(photo, (25, 1, 1)))  # 64 x 1075: 1024 rows a stripe, so 2 stripes
    data = page_data(explore.build_page(tall, ks=(3, 40), options=kvq.EncoderOptions(coding="striped")))
    for entry in data["entries"]:
        file = base64.b64decode(entry["file"])
        assert file == kvq.encode(tall, k=entry["k"], coding="striped")
        assert kvq.read_header(file).coding == 2
        assert set(entry["coding_sizes"]) == {"1", "2"}
        _check_coding_sizes(entry, file)


def test_entropy_file_when_the_encoder_has_that_coding(photo):
    encoded = kvq.encode_image(photo, k=16)
    entropy = explore.entropy_file(encoded, kvq.EncoderOptions(k=16))
    fields = {f.name for f in __import__("dataclasses").fields(kvq.EncoderOptions)}
    if "coding" not in fields:
        assert entropy is None
    else:
        assert entropy is not None
        assert kvq.read_header(entropy).coding == 1
        assert np.array_equal(kvq.decode(entropy), kvq.decode(encoded.data))


def test_options_reach_every_file(photo):
    options = kvq.EncoderOptions(seed=7, dither="floyd-steinberg", color_space="oklab")
    data = page_data(explore.build_page(photo, ks=(8,), options=options))
    assert base64.b64decode(data["entries"][0]["file"]) == kvq.encode(photo, k=8, seed=7, dither="floyd-steinberg", color_space="oklab")
    assert "seed 7, oklab clustering, dithering 1" in data["options"]


def test_the_command_explores_the_textbook_method_too(tmp_path, photo):
    # kvq explore --method kmeans: every K's file is the one kvq encode --method kmeans writes, and the page says so.
    from PIL import Image

    from kvq.cli import main

    Image.fromarray(photo).save(tmp_path / "photo.png")
    out = tmp_path / "page.html"
    command = ["explore", str(tmp_path / "photo.png"), "-o", str(out), "--no-open", "-k", "4,32"]
    assert main([*command, "--method", "kmeans", "--seed", "3"]) == 0
    data = page_data(out.read_text(encoding="utf-8"))
    for entry, k in zip(data["entries"], (4, 32), strict=True):
        assert base64.b64decode(entry["file"]) == kvq.encode(photo, k=k, method="kmeans", seed=3)
    assert data["options"] == "palettes by scikit-learn's KMeans, seed 3, rgb clustering, no dithering"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2,4,8", (2, 4, 8)), ("256, 2", (2, 256)), ("1,65536,1", (1, 65536)), ("16 32", (16, 32))],
)
def test_parse_ks(text, expected):
    assert explore.parse_ks(text) == expected


@pytest.mark.parametrize("text", ["", "0", "65537", "2,x", "-4", "1.5"])
def test_parse_ks_refuses(text):
    with pytest.raises(kvq.OptionError):
        explore.parse_ks(text)


def test_too_large_an_image_is_refused_before_encoding():
    big = Image.new("RGB", (5000, 4000))  # 20 MP: refused from its size
    with pytest.raises(kvq.ImageTooLargeError, match="20,000,000 pixels"):
        explore.build_page(big, ks=(2,))


def test_viewer_page_for_kvq_files(photo):
    file = kvq.encode(photo, k=4)
    data = page_data(explore.viewer_page([("x.kvq", file)]))
    assert data["original"] is None
    assert base64.b64decode(data["entries"][0]["file"]) == file
    with pytest.raises(kvq.ChecksumError):
        explore.viewer_page([("bad.kvq", file[:-1] + bytes([file[-1] ^ 1]))])


# ----------------------------------------------------------------------------------------------- the command


@pytest.fixture()
def photo_file(tmp_path, photo) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return path


@pytest.fixture()
def browser_calls(monkeypatch) -> list:
    calls: list = []

    def fake_open(url, *args, **kwargs):
        calls.append(url)
        return True

    monkeypatch.setattr(webbrowser, "open", fake_open)
    return calls


def test_cli_writes_the_page_beside_the_input_and_opens_it(photo_file, capsys, browser_calls):
    assert main(["explore", str(photo_file), "-k", "2,4"]) == 0
    out = photo_file.with_name("photo.explore.html")
    page = out.read_text(encoding="utf-8")
    assert [e["k"] for e in page_data(page)["entries"]] == [2, 4]
    assert capsys.readouterr().out.startswith(f"{out}: {len(page.encode()):,} bytes")
    assert browser_calls == [out.resolve().as_uri()]


def test_cli_no_open_and_output(photo_file, tmp_path, browser_calls):
    out = tmp_path / "page.html"
    assert main(["explore", str(photo_file), "-o", str(out), "--no-open", "-k", "3", "--seed", "5"]) == 0
    assert browser_calls == []
    assert base64.b64decode(page_data(out.read_text())["entries"][0]["file"]) == kvq.encode(Image.open(photo_file), k=3, seed=5)


def test_cli_without_a_browser_still_succeeds(photo_file, tmp_path, monkeypatch, capsys):
    def no_browser(url, *args, **kwargs):
        raise webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr(webbrowser, "open", no_browser)
    assert main(["explore", str(photo_file), "-o", str(tmp_path / "p.html"), "-k", "2"]) == 0
    assert "open file://" in capsys.readouterr().out
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: False)
    assert main(["explore", str(photo_file), "-o", str(tmp_path / "q.html"), "-k", "2"]) == 0


def test_cli_never_overwrites_without_force(photo_file, tmp_path, capsys, browser_calls):
    out = tmp_path / "page.html"
    out.write_text("mine")
    assert main(["explore", str(photo_file), "-o", str(out), "--no-open", "-k", "2"]) == 1
    assert out.read_text() == "mine"
    assert "exists" in capsys.readouterr().err
    assert main(["explore", str(photo_file), "-o", str(out), "--no-open", "-k", "2", "-f"]) == 0
    assert out.read_text().startswith("<!doctype html>")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-k", "0"], "-k/--colors must be between 1 and 65,536"),
        (["--max-pixels", "100"], "too heavy for a browser"),
        (["--speed", "11"], "speed must be between"),
    ],
)
def test_cli_errors_are_one_line(photo_file, tmp_path, capsys, browser_calls, args, message):
    out = tmp_path / "page.html"
    assert main(["explore", str(photo_file), "-o", str(out), "--no-open", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("kvq: error: ") and message in err and "\n" not in err
    assert not out.exists()


def test_cli_options_behave_as_the_other_commands(photo_file, tmp_path, capsys, browser_calls):
    out = tmp_path / "page.html"
    # A K list that is not numbers is a usage error (exit 2), as for kvq encode and kvq demo.
    assert main(["explore", str(photo_file), "-o", str(out), "--no-open", "-k", "two"]) == 2
    assert "usage error" in capsys.readouterr().err and not out.exists()
    # A limit of no pixels names --max-pixels, as kvq decode does (it named the library's max_pixels for a .kvq).
    for limit in ("0", "-5"):
        assert main(["explore", str(photo_file), "-o", str(out), "--no-open", "--max-pixels", limit]) == 2
        assert "argument --max-pixels: expected a whole number of 1 or more" in capsys.readouterr().err and not out.exists()
    # -k repeats, as for kvq demo and kvq bench, rather than the last one winning.
    assert main(["explore", str(photo_file), "-o", str(out), "--no-open", "-k", "2", "-k", "5,3", "-q"]) == 0
    assert capsys.readouterr() == ("", "")  # -q: nothing but errors
    page = out.read_text()
    assert all(f'"k":{k},' in page.replace(" ", "") for k in (2, 3, 5))
    assert '"k":16,' not in page.replace(" ", "")


def test_cli_on_a_kvq_file_and_on_non_images(tmp_path, photo, capsys, browser_calls):
    file = tmp_path / "x.kvq"
    file.write_bytes(kvq.encode(photo, k=4))
    assert main(["explore", str(file), "--no-open"]) == 0
    data = page_data((tmp_path / "x.explore.html").read_text())
    assert data["original"] is None and base64.b64decode(data["entries"][0]["file"]) == file.read_bytes()
    assert main(["explore", str(file), "--no-open", "-k", "4", "-o", str(tmp_path / "y.html")]) == 1
    assert "already a .kvq file" in capsys.readouterr().err
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert main(["explore", str(text), "--no-open"]) == 1
    assert "not an image" in capsys.readouterr().err
    assert main(["explore", str(tmp_path / "missing.png"), "--no-open"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_cli_subprocess_stdin_to_stdout(photo_file, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "kvq", "explore", "-", "-k", "2"],  # standard input: the page goes to standard output
        input=photo_file.read_bytes(), capture_output=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    page = result.stdout.decode("utf-8")
    assert page_data(page)["name"] == "stdin"
    assert list(tmp_path.iterdir()) == [photo_file]


# ----------------------------------------------------------------------------------------------- package data


def test_web_files_are_package_data():
    pyproject = (REPO / "pyproject.toml").read_text()
    declared = re.search(r"\[tool\.setuptools\.package-data\][^\[]*?kvq\s*=\s*\[([^\]]*)\]", pyproject, re.S)
    assert declared and {"web/*.js", "web/*.html", "web/package.json"} <= set(re.findall(r'"([^"]+)"', declared.group(1)))
    for name in WEB_FILES:
        assert (REPO / "kvq" / "web" / name).is_file()


@pytest.mark.slow
def test_wheel_holds_the_web_files(tmp_path):
    # Build from a copy, so that the checkout gets no build/ or egg-info; pip fetches the build backend that
    # pyproject.toml names, as any install does.
    src = tmp_path / "src"
    shutil.copytree(REPO / "kvq", src / "kvq", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("kvq-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in WEB_FILES:
            assert archive.read(f"kvq/web/{name}") == (REPO / "kvq" / "web" / name).read_bytes()


def test_docstring_example_runs():
    import doctest

    result = doctest.testmod(explore, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_cli_names_a_broken_kvq_file(tmp_path, photo, capsys, browser_calls):
    broken = tmp_path / "cut.kvq"
    broken.write_bytes(kvq.encode(photo, k=4)[:50])
    assert main(["explore", str(broken), "--no-open"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"kvq: error: {broken}: ") and "\n" not in err


def test_a_kvq_file_over_the_page_limit_gets_no_viewer_page(tmp_path):
    from kvq import container
    from kvq.cli import main

    # 20 megapixels declared in a few dozen bytes (K = 1: the indices take no bits).
    big = container.write(container.Header(5_000, 4_000, 3, 1, 0), bytes([200, 30, 30]), b"")
    with pytest.raises(kvq.ImageTooLargeError, match="exceeds the limit of 16,777,216 pixels"):
        explore.viewer_page([("big.kvq", big)])
    assert page_data(explore.viewer_page([("big.kvq", big)], max_pixels=None))["max_pixels"] is None
    (tmp_path / "big.kvq").write_bytes(big)
    assert main(["explore", str(tmp_path / "big.kvq"), "-o", str(tmp_path / "big.html"), "--no-open"]) == 1
    assert not (tmp_path / "big.html").exists()
    assert main(["explore", str(tmp_path / "big.kvq"), "-o", str(tmp_path / "big.html"), "--no-open", "--max-pixels", "20000000"]) == 0
    assert page_data((tmp_path / "big.html").read_text(encoding="utf-8"))["max_pixels"] == 20_000_000
