"""``kvq png`` against pngquant itself: the same command lines give the same exit statuses and the same output files."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kvq
from kvq.pngquant import parse_quality, quality_db, quality_of

from conftest import run_kvq_here as run

PNGQUANT = shutil.which("pngquant")


def _icon(path: Path, seed: int = 0) -> Path:
    """A 48-px RGBA image with gradients, noise and transparent corners: more than 256 colours."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:48, 0:48]
    rgba = np.stack([x * 5, y * 5, (x + y) * 2, np.full_like(x, 255)], axis=2) + rng.integers(0, 24, (48, 48, 4))
    rgba = np.clip(rgba, 0, 255).astype(np.uint8)
    rgba[:8, :8, 3] = 0
    Image.fromarray(rgba).save(path)
    return path


def _four_colours(path: Path) -> Path:
    """A PNG that pngquant cannot make smaller: 4 colours, saved optimised."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).quantize(4).save(path, optimize=True)
    return path


CASES = {
    "ncolors and a file": ["64", "a.png"],
    "no dithering names -or8": ["--nofs", "64", "a.png"],
    "--ext": ["--ext", ".min.png", "a.png"],
    "-o": ["-o", "out.png", "32", "a.png"],
    "options after the files": ["64", "a.png", "--nofs", "--speed", "11"],
    "--": ["16", "--", "a.png"],
    "existing output": ["64", "a.png"],
    "existing output, --force": ["-f", "64", "a.png"],
    "--no-force wins": ["-f", "--no-force", "64", "a.png"],
    "a missing file among good ones": ["64", "nope.png", "a.png"],
    "ncolors 1": ["1", "a.png"],
    "ncolors 300": ["300", "a.png"],
    "speed 12": ["--speed", "12", "a.png"],
    "-o with two files": ["-o", "z.png", "a.png", "b.png"],
    "quality not reached": ["--quality", "99-100", "a.png"],
    "quality reached": ["--quality", "0-20", "a.png"],
    "bad quality": ["--quality", "abc", "a.png"],
    "skip if larger": ["--skip-if-larger", "four.png"],
    "not an image": ["bad.png"],
    "unknown option": ["--bogus", "a.png"],
    "no file": [],
}


def _folder(root: Path, case: str) -> Path:
    root.mkdir()
    _icon(root / "a.png")
    _icon(root / "b.png", seed=1)
    _four_colours(root / "four.png")
    (root / "bad.png").write_bytes(b"not a png at all")
    if case.startswith("existing output") or case == "--no-force wins":
        (root / "a-fs8.png").write_bytes(b"already here")
    return root


@pytest.mark.skipif(PNGQUANT is None, reason="pngquant is not installed")
@pytest.mark.parametrize("case", list(CASES))
def test_same_exit_status_and_files_as_pngquant(tmp_path: Path, case: str) -> None:
    args = CASES[case]
    ours, theirs = _folder(tmp_path / "kvq", case), _folder(tmp_path / "pngquant", case)
    before = {p.name for p in ours.iterdir()}
    expected = subprocess.run([PNGQUANT, *args], cwd=theirs, capture_output=True, timeout=60)
    result = run("png", *args, cwd=ours)
    err = result.stderr.decode(errors="replace")
    assert "Traceback" not in err, err
    assert result.returncode == expected.returncode, (err, expected.stderr)
    made = {p.name for p in ours.iterdir()} - before
    assert made == {p.name for p in theirs.iterdir()} - before
    for name in made:
        with Image.open(ours / name) as image:
            assert image.mode == "P"
    if case.startswith("existing output") and result.returncode == 15:
        assert (ours / "a-fs8.png").read_bytes() == b"already here"


@pytest.mark.skipif(PNGQUANT is None, reason="pngquant is not installed")
def test_standard_input_to_standard_output_as_pngquant(tmp_path: Path) -> None:
    data = _icon(tmp_path / "a.png").read_bytes()
    for args in (["64", "-"], ["-o", "-", "64", "a.png"]):
        expected = subprocess.run([PNGQUANT, *args], cwd=tmp_path, input=data, capture_output=True, timeout=60)
        result = run("png", *args, cwd=tmp_path, stdin=data)
        assert result.returncode == expected.returncode == 0, result.stderr
        with Image.open(io.BytesIO(result.stdout)) as image:
            assert image.mode == "P" and image.size == (48, 48)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


@pytest.mark.parametrize("option", ["--map=x.png", "--iebug", "--transbug", "--posterize=4", "--ordered"])
def test_an_unsupported_option_is_one_line_and_exit_4(tmp_path: Path, option: str) -> None:
    _icon(tmp_path / "a.png")
    result = run("png", option, "64", "a.png", cwd=tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 4
    assert err.strip().splitlines() == [err.strip()] and f"not supported by kvq png: {option.split('=')[0]}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_dithering_is_on_by_default_and_floyd_sets_its_strength(tmp_path: Path) -> None:
    _icon(tmp_path / "a.png")
    assert run("png", "16", "a.png", cwd=tmp_path).returncode == 0
    assert run("png", "--nofs", "16", "a.png", cwd=tmp_path).returncode == 0
    assert run("png", "--floyd=0", "--ext", "-zero.png", "16", "a.png", cwd=tmp_path).returncode == 0
    dithered, plain = (np.asarray(Image.open(tmp_path / n)) for n in ("a-fs8.png", "a-or8.png"))
    assert (dithered != plain).mean() > 0.05
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a-zero.png")), plain)


def test_quality_scale_is_libimagequants() -> None:
    assert parse_quality("60-80") == (60, 80)
    assert parse_quality("70") == (63, 70)
    assert parse_quality("-80") == (0, 80)
    assert parse_quality("60-") == (60, 100)
    for bad in ("80-60", "abc", "101", ""):
        with pytest.raises(ValueError):
            parse_quality(bad)
    # libimagequant -v prints "MSE=3.447 (Q=88)" for an error of 3.447 per channel: 42.76 dB.
    assert quality_db(88) == pytest.approx(10 * np.log10(255**2 / 3.447), abs=0.35)
    assert quality_db(100) == float("inf") and quality_db(0) == 0.0
    assert [round(quality_db(q), 1) for q in (60, 80)] == [36.9, 40.3]
    for q in (5, 50, 95):
        assert quality_of(quality_db(q)) == pytest.approx(q)


def test_jobs_run_the_files_through_the_pool(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        _icon(tmp_path / f"{name}.png", seed=ord(name))
    result = run("png", "--jobs", "2", "32", "a.png", "b.png", "c.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    one = run("png", "-o", "single.png", "32", "b.png", cwd=tmp_path)
    assert one.returncode == 0
    assert (tmp_path / "single.png").read_bytes() == (tmp_path / "b-fs8.png").read_bytes()


@pytest.mark.parametrize(("fmt", "suffix"), [("png", ".png"), ("gif", ".gif"), ("tif", ".tif"), ("bmp", ".bmp")])
def test_a_folder_to_a_tree_of_palette_images(tmp_path: Path, fmt: str, suffix: str) -> None:
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    _icon(tmp_path / "photos" / "a.png")
    if fmt == "bmp":  # BMP keeps no alpha (test_gif_and_bmp_refuse_what_they_cannot_hold)
        Image.open(tmp_path / "photos" / "a.png").convert("RGB").save(tmp_path / "photos" / "a.png")
    Image.open(_icon(tmp_path / "b.png", seed=3)).convert("RGB").save(tmp_path / "photos" / "sub" / "b.jpg")
    result = run("encode", "photos", "-o", "web/", "--format", fmt, "-k", "16", "--jobs", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    made = sorted(str(p.relative_to(tmp_path / "web")) for p in (tmp_path / "web").rglob("*") if p.is_file())
    assert made == sorted([f"a{suffix}", f"sub/b{suffix}"])
    with Image.open(tmp_path / "web" / "sub" / f"b{suffix}") as image:
        assert image.mode == "P" and len(image.getcolors()) <= 16
    # The same command again keeps the valid outputs, as for .kvq files.
    again = run("encode", "photos", "-o", "web/", "--format", fmt, "-k", "16", "-v", cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.decode().count("skipped") == 2, again.stdout


@pytest.mark.parametrize(("k", "bits"), [(2, 1), (16, 4), (64, 8)])
def test_bmp_keeps_the_palette_at_the_fewest_bits(tmp_path: Path, k: int, bits: int) -> None:
    source = _icon(tmp_path / "a.png")
    Image.open(source).convert("RGB").save(tmp_path / "rgb.png", dpi=(150, 150))
    result = run("encode", "rgb.png", "-o", "logo.bmp", "-k", k, "--dither", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = (tmp_path / "logo.bmp").read_bytes()
    assert int.from_bytes(data[28:30], "little") == bits
    row = (48 * bits + 31) // 32 * 4
    assert len(data) == 14 + 40 + 4 * k + 48 * row
    reference = run("encode", "rgb.png", "-o", "logo.png", "-k", k, "--dither", "0", cwd=tmp_path)
    assert reference.returncode == 0
    with Image.open(tmp_path / "logo.bmp") as bmp, Image.open(tmp_path / "logo.png") as png:
        assert bmp.mode == "P" and len(bmp.getcolors()) == k
        np.testing.assert_array_equal(np.asarray(bmp.convert("RGB")), np.asarray(png.convert("RGB")))
        assert bmp.info["dpi"] == pytest.approx((150, 150), abs=0.1)


@pytest.mark.parametrize("suffix", [".tif", ".gif"])
def test_tiff_and_gif_keep_the_palette(tmp_path: Path, suffix: str) -> None:
    Image.open(_icon(tmp_path / "a.png")).convert("RGB").save(tmp_path / "rgb.png")
    assert run("encode", "rgb.png", "-o", f"out{suffix}", "-k", "16", cwd=tmp_path).returncode == 0
    assert run("encode", "rgb.png", "-o", "out.png", "-k", "16", cwd=tmp_path).returncode == 0
    with Image.open(tmp_path / f"out{suffix}") as image, Image.open(tmp_path / "out.png") as png:
        assert image.mode == "P" and len(image.getcolors()) == 16
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), np.asarray(png.convert("RGB")))


def test_a_jpeg_output_reports_the_psnr_of_the_jpeg_written(tmp_path: Path) -> None:
    from kvq.metrics import psnr

    y, x = np.mgrid[0:64, 0:96]
    smooth = np.stack([x * 2, y * 3, (x + y) % 256], axis=2).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "rgb.png")
    result = run("encode", "rgb.png", "-o", "out.jpg", "-k", "64", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = float(result.stdout.decode().split("PSNR ")[1].split(" dB")[0])
    written = psnr(np.asarray(Image.open(tmp_path / "rgb.png")), np.asarray(Image.open(tmp_path / "out.jpg").convert("RGB")))
    palette_only = run("encode", "rgb.png", "-o", "out.png", "-k", "64", cwd=tmp_path).stdout.decode()
    assert printed == pytest.approx(written, abs=0.006)
    # Not the palette image's PSNR (the figure printed before), which JPEG's loss moves either way.
    assert abs(printed - float(palette_only.split("PSNR ")[1].split(" dB")[0])) > 0.1


def test_the_in_place_idiom_is_refused_as_the_readme_says(tmp_path: Path) -> None:
    # pngquant --ext .png --force overwrites its input; kvq never replaces an input, and says how in the README.
    before = _icon(tmp_path / "a.png").read_bytes()
    result = run("png", "--ext", ".png", "--force", "64", "a.png", cwd=tmp_path)
    assert result.returncode == 16
    assert "output a.png is the same file as input a.png" in result.stderr.decode()
    assert (tmp_path / "a.png").read_bytes() == before


@pytest.mark.parametrize(
    "args, said",
    [
        (["-s", "0"], "-s/--speed should be between 1 (slow) and 11 (fast), not 0"),
        (["--speed", "12"], "-s/--speed should be between 1 (slow) and 11 (fast), not 12"),
        (["--quality", "200"], "-Q/--quality should be in format min-max"),
        (["--floyd=2"], "--floyd must be between 0 and 1, not 2"),
        (["--jobs", "-1"], "-j/--jobs must be 0 (one per CPU) or more, not -1"),
    ],
)
def test_a_bad_option_value_names_kvq_pngs_own_flag(tmp_path: Path, args: list, said: str) -> None:
    _icon(tmp_path / "a.png")
    result = run("png", *args, "64", "a.png", cwd=tmp_path)
    err = result.stderr.decode().strip()
    assert result.returncode == 4 and len(err.splitlines()) == 1 and err.startswith(f"kvq: {said}"), err


def test_gif_and_bmp_refuse_what_they_cannot_hold(tmp_path: Path) -> None:
    # Pillow quantized a K = 1000 file to a 249-colour GIF, and dropped a palette's alpha from BMP and GIF, silently
    # (exit 0, the encode's PSNR printed for pixels the file did not hold).
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    translucent = np.asarray(Image.open(_icon(tmp_path / "icon.png"))).copy()
    translucent[8:16, :, 3] = 128
    Image.fromarray(translucent).save(tmp_path / "glass.png")
    cases = [
        (["noise.png", "-k", "1000", "-o", "x.gif"], "GIF holds at most 256 colours, not the 1,000 of this image"),
        (["glass.png", "-k", "16", "-o", "x.gif"], "GIF keeps one fully transparent colour at most"),
        (["glass.png", "-k", "16", "-o", "x.bmp"], "BMP keeps no alpha"),
        (["icon.png", "-k", "16", "-o", "x.bmp"], "BMP keeps no alpha"),
    ]
    for args, says in cases:
        result = run("encode", *args, cwd=tmp_path)
        assert result.returncode == 1 and says in result.stderr.decode(), (args, result.stderr)
        assert not (tmp_path / args[-1]).exists()
    # What they can hold is written exactly: an icon's opaque entries and its one clear entry in a GIF.
    assert run("encode", "icon.png", "-k", "16", "-o", "icon.kvq", cwd=tmp_path).returncode == 0
    assert run("decode", "icon.kvq", "-o", "icon.gif", cwd=tmp_path).returncode == 0
    with Image.open(tmp_path / "icon.gif") as gif:
        assert np.array_equal(np.asarray(gif.convert("RGBA")), kvq.decode(tmp_path / "icon.kvq"))


@pytest.mark.skipif(PNGQUANT is None, reason="pngquant is not installed")
def test_skip_if_larger_on_standard_input_as_pngquant(tmp_path: Path) -> None:
    # --skip-if-larger was ignored for standard input (exit 0, a larger file written). pngquant exits 98 there and,
    # to standard output, writes the original image rather than nothing; to a file, nothing.
    data = _four_colours(tmp_path / "four.png").read_bytes()
    expected = subprocess.run([PNGQUANT, "256", "--skip-if-larger", "-"], cwd=tmp_path, input=data, capture_output=True, timeout=60)
    result = run("png", "256", "--skip-if-larger", "-", cwd=tmp_path, stdin=data)
    assert result.returncode == expected.returncode == 98
    assert result.stdout == data  # the original's own bytes (pngquant writes its pixels again)
    with Image.open(io.BytesIO(expected.stdout)) as theirs, Image.open(tmp_path / "four.png") as ours:
        assert np.array_equal(np.asarray(theirs.convert("RGB")), np.asarray(ours.convert("RGB")))
    to_file = run("png", "256", "--skip-if-larger", "-o", "out.png", "-", cwd=tmp_path, stdin=data)
    assert to_file.returncode == 98 and not (tmp_path / "out.png").exists()
