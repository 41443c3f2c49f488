"""The benchmark suite (kvq.bench): its files, its accounting, and its peers."""

from __future__ import annotations

import csv
import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("matplotlib")
pytest.importorskip("skimage")
pytest.importorskip("tqdm")

import kvq
from kvq import breakdown
from kvq.bench import main
from kvq.bench import peers as peer_codecs
from kvq.bench.quality import psnr as bench_psnr
from kvq.bench.suite import csv_columns, load_images
from kvq.metrics import psnr as kvq_psnr

from conftest import kvq_env

KS = (2, 16)
ROOT = Path(__file__).resolve().parent.parent


def _gradient(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(1)
    image = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], axis=2)
    return np.clip(image + rng.integers(-12, 13, image.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Four tiny images: RGB gradient, a downscaled china crop, grey, and RGBA."""
    from sklearn.datasets import load_sample_image

    folder = tmp_path_factory.mktemp("images")
    Image.fromarray(_gradient(48, 64)).save(folder / "gradient.png")
    china = Image.fromarray(load_sample_image("china.jpg")[40:240, 100:400]).resize((90, 60), Image.LANCZOS)
    china.save(folder / "china_small.png")
    Image.fromarray(_gradient(30, 40)[:, :, 0]).save(folder / "grey.png")
    rgba = np.concatenate([_gradient(24, 32), np.full((24, 32, 1), 255, np.uint8)], axis=2)
    rgba[:12, :, 3] = 0
    Image.fromarray(rgba, "RGBA").save(folder / "alpha.png")
    return folder


@pytest.fixture(scope="module")
def run(images, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "results"
    code = main([str(images), "-k", ",".join(map(str, KS)), "-o", str(out), "--save-files", "--no-progress"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def rows(run) -> list[dict]:
    with open(run / "results.csv", newline="", encoding="utf-8") as fp:
        return list(csv.DictReader(fp))


def test_files_are_written(run, images):
    for name in ("report.md", "results.csv", "rd_curves.png", "bits_vs_raw.png"):
        assert (run / name).stat().st_size > 0, name
    # Grids for the first four images (the default --grids), sorted by name.
    for stem in ("alpha", "china_small", "gradient", "grey"):
        with Image.open(run / f"grid_{stem}.png") as im:
            assert im.width > 500 and im.height > 300
    for name in ("rd_curves.png", "bits_vs_raw.png"):
        with Image.open(run / name) as im:
            assert im.format == "PNG"


def test_csv_columns_and_rows(run, rows):
    with open(run / "results.csv", newline="", encoding="utf-8") as fp:
        assert next(csv.reader(fp)) == csv_columns()
    assert len(rows) == 4 * len(KS)
    assert [r["image"] for r in rows[:: len(KS)]] == ["alpha", "china_small", "gradient", "grey"]
    assert [int(r["k_requested"]) for r in rows[: len(KS)]] == list(KS)


def test_every_row_accounts_for_every_bit(rows):
    for r in rows:
        n, k, b, channels = int(r["n_pixels"]), int(r["k"]), int(r["bits_per_index"]), int(r["channels"])
        assert n == int(r["width"]) * int(r["height"])
        assert k <= int(r["k_requested"])
        assert b == (k - 1).bit_length()
        assert int(r["raw_bits"]) == 8 * channels * n
        assert int(r["theory_bits"]) == n * b + 8 * channels * k
        assert int(r["overhead_bits"]) == 8 * 62
        assert int(r["palette_bits"]) == 8 * channels * k
        assert int(r["ancillary_bits"]) == 0
        fixed_index_bits = 8 * math.ceil(n * b / 8)
        padding = fixed_index_bits - n * b
        assert int(r["fixed_file_bits"]) == int(r["theory_bits"]) + 8 * 62 + padding
        file_bits = int(r["file_bits"])
        assert file_bits == 8 * int(r["file_bytes"])
        assert file_bits == int(r["overhead_bits"]) + int(r["palette_bits"]) + int(r["index_bits"])
        assert r["accounted"] == "yes"
        if r["coding"] == "fixed":
            assert int(r["index_bits"]) == fixed_index_bits
            assert int(r["padding_bits"]) == int(r["side_bits"]) == padding <= 7
            assert file_bits == int(r["theory_bits"]) + 8 * 62 + padding == int(r["fixed_file_bits"])
            assert r["matches_theory"] == "yes"
        else:
            assert r["coding"] == "entropy"
            assert r["matches_theory"] == "no"
            assert int(r["padding_bits"]) == 0 and int(r["side_bits"]) == 32  # the coder's flush
            # The encoder keeps coding 1 only where it is smaller than fixed width.
            assert file_bits < int(r["fixed_file_bits"])
        assert float(r["factor_vs_raw"]) == pytest.approx(int(r["raw_bits"]) / file_bits, rel=1e-5)
        assert float(r["bpp"]) == pytest.approx(file_bits / n, rel=1e-5)


def test_photos_are_entropy_coded_and_smaller(rows):
    # A photo crop of 5,400 pixels: the default coding saves more than half of the fixed-width file at both K
    # (about 74 % at K = 2 and 64 % at K = 16 when this was written).
    china = {int(r["k_requested"]): r for r in rows if r["image"] == "china_small"}
    assert {r["coding"] for r in china.values()} == {"entropy"}
    for k, r in china.items():
        assert int(r["file_bits"]) < 0.5 * int(r["fixed_file_bits"]), k


def test_channels_set_the_raw_bits(rows):
    channels = {r["image"]: int(r["channels"]) for r in rows}
    assert channels == {"alpha": 4, "china_small": 3, "gradient": 3, "grey": 1}


def test_numbers_recomputed_from_the_kvq_files(run, rows, images):
    for r in rows:
        data = (run / "files" / f"{r['image']}_k{r['k_requested']}.kvq").read_bytes()
        checked = kvq.validate(data)
        header = checked.header
        sizes = breakdown(header, len(data), len(checked.parsed.indices))
        assert sizes.accounted
        assert sizes.matches_theory == (header.coding == 0)
        assert r["coding"] == {0: "fixed", 1: "entropy"}[header.coding]
        fields = ("n_pixels", "raw_bits", "theory_bits", "overhead_bits", "palette_bits", "index_bits", "file_bits")
        for field in (*fields, "fixed_file_bits", "side_bits", "padding_bits"):
            assert int(r[field]) == getattr(sizes, field), field
        assert int(r["k"]) == header.k and int(r["bits_per_index"]) == header.bits
        original = load_images([images / f"{r['image']}.png"])[0].pixels
        decoded = kvq.decode(data).reshape(original.shape)
        # RGBA on premultiplied colour (kvq.bench.quality); the others as kvq.metrics measures them.
        psnr = bench_psnr(original, decoded)
        if original.shape[2] != 4:
            assert psnr == kvq_psnr(original, decoded)
        if math.isinf(psnr):
            assert r["psnr"] == "inf"
        else:
            assert float(r["psnr"]) == pytest.approx(psnr, rel=1e-5)
        # kvq's own palette as PNG-8, WebP-lossless and JPEG XL hold exactly the same pixels.
        stem = run / "files" / f"{r['image']}_k{r['k_requested']}"
        for key, file, read_back in (
            ("kvq_png8", "_kvq_png8.png", peer_codecs.read_back),
            ("webp", "_webp.webp", peer_codecs.read_back),
            ("jxl", "_jxl.jxl", peer_codecs.jxl_read_back),
        ):
            peer = Path(f"{stem}{file}").read_bytes()
            assert int(r[f"{key}_bytes"]) == len(peer), key
            back = read_back(peer, header.channels)
            if key == "webp" and header.channels == 4:
                # WebP keeps every visible pixel; the colour of a fully transparent one is its to drop.
                visible = decoded[:, :, 3] > 0
                assert (back[:, :, 3] == decoded[:, :, 3]).all() and (back[visible] == decoded[visible]).all()
                assert float(r[f"{key}_psnr"]) == pytest.approx(float(r["psnr"]), rel=1e-9)
            else:
                assert (back == decoded).all(), key
                assert r[f"{key}_psnr"] == r["psnr"], key


def test_the_summary_says_how_much_smaller_than_the_textbook_each_file_is(run, rows):
    # The README quotes these figures from the committed Kodak report, so the report must state them.
    report = (run / "report.md").read_text(encoding="utf-8")
    summary = report.split("## Summary", 1)[1].split("\n\n")[2].splitlines()
    head = [cell.strip() for cell in summary[0].strip("|").split("|")]
    column = head.index("factor vs theory (range)")
    for line, k in zip(summary[2:], KS, strict=True):
        cell = [c.strip() for c in line.strip("|").split("|")][column]
        factors = [int(r["theory_bits"]) / int(r["file_bits"]) for r in rows if int(r["k_requested"]) == k]
        mean = math.exp(sum(map(math.log, factors)) / len(factors))
        assert cell == f"{mean:,.2f}× ({min(factors):,.2f}–{max(factors):,.2f})", k


def test_the_textbook_method_is_measured_beside_kvqs_engine(run, rows, images):
    from kvq.bench.quality import delta_e2000

    for r in rows:
        original = load_images([images / f"{r['image']}.png"])[0].pixels
        k = int(r["k_requested"])
        # The kmeans peer is the .kvq file the same options give with method="kmeans".
        data = (run / "files" / f"{r['image']}_k{k}_kmeans.kvq").read_bytes()
        assert data == kvq.encode(original, k=k, method="kmeans")
        assert int(r["kmeans_bytes"]) == len(data)
        decoded = kvq.decode(data).reshape(original.shape)
        psnr = bench_psnr(original, decoded)
        assert r["kmeans_psnr"] == "inf" if math.isinf(psnr) else float(r["kmeans_psnr"]) == pytest.approx(psnr, rel=1e-5)
        assert float(r["kmeans_delta_e2000"]) == pytest.approx(delta_e2000(original, decoded), rel=1e-5, abs=1e-9)
        assert float(r["kmeans_seconds"]) > 0 and float(r["encode_seconds"]) > 0
        # Only the textbook method's row has a ΔE2000 and seconds of its own.
        assert r["png8_delta_e2000"] == r["png8_seconds"] == ""
    report = (run / "report.md").read_text(encoding="utf-8")
    section = report.split("### kvq's engine beside the textbook method", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [line.split(" | ")[0] for line in table] == [f"| {k}" for k in KS]
    for line, k in zip(table, KS, strict=True):
        cells = line.strip("| ").split(" | ")
        group = [r for r in rows if int(r["k_requested"]) == k]
        assert int(cells[1]) == len(group)
        finite = [r for r in group if r["psnr"] != "inf" and r["kmeans_psnr"] != "inf"]
        assert float(cells[3]) == pytest.approx(np.mean([float(r["kmeans_psnr"]) for r in finite]), abs=0.006)
        assert float(cells[6]) == pytest.approx(np.mean([float(r["kmeans_delta_e2000"]) for r in group]), abs=0.006)


def test_the_textbook_peer_is_skipped_when_kvq_itself_uses_it(images, tmp_path):
    out = tmp_path / "kmeans"
    code = main([str(images / "gradient.png"), "-k", "16", "--method", "kmeans", "-o", str(out), "--peers", "kmeans",
                 "--grids", "0", "--no-progress", "--save-files"])  # fmt: skip
    assert code == 0
    with open(out / "results.csv", newline="", encoding="utf-8") as fp:
        (row,) = list(csv.DictReader(fp))
    assert row["kmeans_bytes"] == "" and row["kmeans_note"] == "kvq's own rows already use method kmeans"
    assert (out / "files" / "gradient_k16.kvq").read_bytes() == kvq.encode(_gradient(48, 64), k=16, method="kmeans")
    assert "method kmeans" in (out / "report.md").read_text(encoding="utf-8")


def _saved_figure(monkeypatch, draw, rows, path):
    """Call a figure function and return the matplotlib figure it saved, drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    saved = []
    real = Figure.savefig

    def savefig(self, *args, **kwargs):
        saved.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    draw(rows, path)
    (figure,) = saved
    # pyplot.close() leaves the figure without its canvas: lay it out again as it was saved.
    FigureCanvasAgg(figure).draw()
    return figure


def _rows(coding: str, ks, peers):
    from sklearn.datasets import load_sample_image

    from kvq.bench.suite import InputImage, measure

    image = InputImage("china", np.ascontiguousarray(load_sample_image("china.jpg")[:120, :160]), "test")
    return [measure(image, k, kvq.EncoderOptions(coding=coding), want_peers=peers) for k in ks]


@pytest.mark.parametrize(("coding", "ks", "peers"), [("fixed", (16, 32), ()), ("entropy", (2, 16, 64), ("kvq_png8", "webp"))])
def test_rd_curves_label_the_axis_and_keep_the_legend_off_every_line(monkeypatch, tmp_path, coding, ks, peers):
    from kvq.bench import figures

    figure = _saved_figure(monkeypatch, figures.rd_curves, _rows(coding, ks, peers), tmp_path / "rd.png")
    renderer = figure.canvas.get_renderer()
    legends = [legend.get_window_extent(renderer) for legend in [*figure.legends, *(ax.get_legend() for ax in figure.axes)] if legend]
    assert legends
    for ax in figure.axes:
        low, high = ax.get_xlim()
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text() and low <= t.get_position()[0] <= high]
        # A log axis over less than an octave had one label, or none.
        assert len(labels) >= 3, labels
        for line in ax.get_lines():
            xy = line.get_xydata()
            # Every point of every segment, in pixels, stays outside every legend.
            steps = np.linspace(0, 1, 50)[:, None]
            along = np.concatenate([a + steps * (b - a) for a, b in itertools.pairwise(xy)] or [xy])
            shown = ax.transData.transform(along)
            for box in legends:
                inside = (shown[:, 0] > box.x0) & (shown[:, 0] < box.x1) & (shown[:, 1] > box.y0) & (shown[:, 1] < box.y1)
                assert not inside.any(), f"the legend covers {line.get_label()!r}"


def test_lossless_peers_are_the_stated_settings_on_kvq_pixels(run):
    import io

    import imagecodecs

    stem = run / "files" / "china_small_k16"
    pixels = kvq.decode((run / "files" / "china_small_k16.kvq").read_bytes())
    webp = io.BytesIO()
    Image.fromarray(pixels).save(webp, "WEBP", lossless=True, quality=100, method=6)
    assert webp.getvalue() == Path(f"{stem}_webp.webp").read_bytes()
    assert bytes(imagecodecs.jpegxl_encode(pixels, lossless=True, effort=9)) == Path(f"{stem}_jxl.jxl").read_bytes()


def test_fixed_coding_run_is_the_fixed_width_figure_of_the_default_run(run, rows, images, tmp_path):
    out = tmp_path / "fixed"
    code = main([str(images / "china_small.png"), "-k", "16", "--coding", "fixed", "-o", str(out), "--peers", "none",
                 "--grids", "0", "--no-progress"])  # fmt: skip
    assert code == 0
    with open(out / "results.csv", newline="", encoding="utf-8") as fp:
        (fixed,) = list(csv.DictReader(fp))
    (entropy,) = [r for r in rows if r["image"] == "china_small" and r["k_requested"] == "16"]
    assert (fixed["coding"], fixed["matches_theory"], fixed["accounted"]) == ("fixed", "yes", "yes")
    # The same palette and indices (the coding is chosen after quantizing): the entropy-coded file's fixed-width
    # figure is exactly the fixed-width file, byte for byte in size.
    assert (fixed["k"], fixed["psnr"]) == (entropy["k"], entropy["psnr"])
    assert int(fixed["file_bits"]) == int(fixed["fixed_file_bits"]) == int(entropy["fixed_file_bits"])
    assert "| fixed |" in (out / "report.md").read_text(encoding="utf-8")


def test_an_entropy_file_that_does_not_add_up_fails_the_run(images, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(kvq.SizeBreakdown, "accounted", property(lambda self: False))
    out = tmp_path / "bad"
    code = main([str(images / "china_small.png"), "-k", "16", "-o", str(out), "--peers", "none", "--grids", "0", "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "china_small at K=16: entropy file is" in err and "fixed width would be" in err
    assert "**0 of 1 rows hold**" in (out / "report.md").read_text(encoding="utf-8")


def test_peers_measured_or_explained(rows):
    for r in rows:
        for key in ("png8", "kvq_png8", "webp", "jxl"):
            assert int(r[f"{key}_bytes"]) > 0
            assert float(r[f"{key}_bpp"]) == pytest.approx(8 * int(r[f"{key}_bytes"]) / int(r["n_pixels"]), rel=1e-5)
        if r["channels"] == "4":
            assert r["gif_bytes"] == "" and r["gif_note"] == "GIF has only 1-bit transparency"
            assert r["jpeg_bytes"] == "" and r["jpeg_note"] == "JPEG has no alpha"
        else:
            assert int(r["gif_bytes"]) > 0
            assert r["jpeg_bytes"] != "" or r["jpeg_note"]
        if r["jpeg_bytes"]:
            assert 1 <= int(r["jpeg_quality"]) <= 95
            assert float(r["jpeg_psnr"]) >= float(r["psnr"])
        if peer_codecs.pngquant_path():
            assert int(r["pngquant_bytes"]) > 0
        else:
            assert r["pngquant_note"] == "pngquant not installed"


def test_report_says_every_row_holds(run, rows):
    text = (run / "report.md").read_text(encoding="utf-8")
    assert f"Accounting: all {len(rows)} rows hold." in text
    assert "Command: `kvq bench " in text
    for k in KS:
        line = next(line for line in text.splitlines() if line.startswith(f"| {k} | 4 |"))
        assert line.endswith("| all 4 hold |")
    assert "| K | PNG-8 (Pillow) | pngquant | GIF (Pillow) | kvq palette as PNG-8 | WebP-lossless of kvq's pixels |" in text
    # One accounting line per file: its coding, 24·N, the theory, the fixed-width size, the actual size, the side bits.
    for r in rows:
        cells = [
            r["image"], r["coding"], f"{int(r['raw_bits']):,}", f"{int(r['theory_bits']):,}",
            f"{int(r['fixed_file_bits']):,}", f"{int(r['file_bits']):,}", f"{int(r['side_bits']):,}",
        ]  # fmt: skip
        assert any(line.startswith(f"| {r['image']} | {r['k_requested']} ") and all(f"| {c} |" in line for c in cells)
                   for line in text.splitlines()), r["image"]  # fmt: skip
    for picture in ("rd_curves.png", "bits_vs_raw.png", "grid_gradient.png"):
        assert f"]({picture})" in text


def test_missing_pngquant_is_a_note_not_a_failure(images, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert peer_codecs.pngquant_path() is None
    out = tmp_path / "out"
    code = main([str(images / "gradient.png"), "-k", "2", "-o", str(out), "--peers", "pngquant", "--grids", "0", "--no-progress"])
    assert code == 0
    with open(out / "results.csv", newline="", encoding="utf-8") as fp:
        (row,) = list(csv.DictReader(fp))
    assert row["pngquant_bytes"] == "" and row["pngquant_note"] == "pngquant not installed"
    assert "pngquant: pngquant not installed" in (out / "report.md").read_text(encoding="utf-8")


@pytest.mark.skipif(peer_codecs.pngquant_path() is None, reason="pngquant not installed")
def test_pngquant_peer():
    image = _gradient(48, 64)
    result = peer_codecs.pngquant(image, 16)
    assert result.ok and result.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(np.unique(result.pixels.reshape(-1, 3), axis=0)) <= 16


def test_jpeg_quality_is_the_lowest_that_reaches_the_target():
    import io

    image = _gradient(48, 64)
    target = 30.0
    result = peer_codecs.jpeg_matched(image, target)
    assert result.ok and result.note in ("4:2:0", "4:4:4")
    assert kvq_psnr(image, result.pixels) >= target
    subsampling = {"4:2:0": 2, "4:4:4": 0}[result.note]

    def jpeg_psnr(quality: int, subsampling: int) -> tuple[float, int]:
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "JPEG", quality=quality, subsampling=subsampling)
        return kvq_psnr(image, peer_codecs.read_back(buf.getvalue(), 3)), buf.tell()

    assert jpeg_psnr(result.quality, subsampling) == (kvq_psnr(image, result.pixels), len(result.data))
    if result.quality > 1:
        assert jpeg_psnr(result.quality - 1, subsampling)[0] < target
    assert peer_codecs.jpeg_matched(image, 0.1).quality == 1
    assert peer_codecs.jpeg_matched(image, 99.0).note == "even quality 95 falls short of kvq's PSNR"
    assert peer_codecs.jpeg_matched(image, math.inf).note == "kvq is lossless here"


def test_palette_peers_stop_at_256():
    image = _gradient(16, 16)
    assert peer_codecs.png8(image, 300).note == "PNG-8 holds at most 256 colours"
    assert peer_codecs.gif(image, 300).note == "GIF holds at most 256 colours"
    assert not peer_codecs.pngquant(image, 300).ok


def test_refuses_to_overwrite_or_write_into_the_package(run, images, capsys):
    assert main([str(images / "grey.png"), "-k", "2", "-o", str(run), "--no-progress"]) == 1
    assert "--force" in capsys.readouterr().err
    package = Path(kvq.__file__).parent / "bench-out"
    assert main([str(images / "grey.png"), "-k", "2", "-o", str(package), "--no-progress"]) == 2
    assert not package.exists()


def test_usage_errors(images, tmp_path):
    assert main(["-k", "0", "-o", str(tmp_path / "a")]) == 2
    assert main(["-k", "two", "-o", str(tmp_path / "b")]) == 2
    assert main(["--peers", "avif", "-o", str(tmp_path / "c")]) == 2
    assert main([str(tmp_path / "missing.png"), "-o", str(tmp_path / "d"), "--no-progress"]) == 1
    assert main(["--help"]) == 0


def test_ks_may_be_repeated_or_comma_separated():
    from kvq.bench.cli import build_parser

    args = build_parser().parse_args(["-k", "2", "-k", "16,64", "-k", "256"])
    assert [k for group in args.ks for k in group] == [2, 16, 64, 256]


def test_default_images_are_the_bundled_samples():
    images = load_images(None)
    assert [i.name for i in images] == ["china", "flower"]
    assert all(i.pixels.shape == (427, 640, 3) for i in images)


def test_core_import_stays_lean():
    # Not scipy: a core dependency, which numba (the entropy coder's kernel) imports when it is installed.
    code = (
        "import sys, numpy as np, kvq; kvq.encode(np.zeros((4, 4, 3), np.uint8), k=2); "
        "print(sorted(m for m in ('kvq.bench', 'matplotlib', 'skimage', 'tqdm', 'imagecodecs') if m in sys.modules))"
    )
    env = kvq_env()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


def test_without_the_extra_the_suite_says_what_to_install():
    code = (
        "import importlib.util as u; real = u.find_spec\n"
        "u.find_spec = lambda name, *a: None if name == 'matplotlib' else real(name, *a)\n"
        "try:\n    from kvq.bench import run_suite\nexcept ImportError as exc:\n    print(exc)\n"
    )
    env = kvq_env()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert 'pip install "kvq[bench]"' in out.stdout
    assert "matplotlib" in out.stdout


#: The kvq command in a process where matplotlib cannot be imported, as on an install without the bench extra.
WITHOUT_MATPLOTLIB = "import sys; sys.modules['matplotlib'] = None\nfrom kvq.cli import main\nsys.exit(main(sys.argv[1:]))"


def test_bench_help_needs_no_extra_and_a_run_says_what_to_install(tmp_path):
    env = kvq_env()
    shown = subprocess.run(
        [sys.executable, "-c", WITHOUT_MATPLOTLIB, "bench", "--help"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: kvq bench") and "--peers" in shown.stdout and shown.stderr == ""
    run = subprocess.run(
        [sys.executable, "-c", WITHOUT_MATPLOTLIB, "bench", "-o", "out"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == 'kvq bench: error: the kvq benchmark suite needs matplotlib: install it with pip install "kvq[bench]"\n'
    assert not (tmp_path / "out").exists()
    # A usage error is answered as such, extra or not.
    usage = subprocess.run(
        [sys.executable, "-c", WITHOUT_MATPLOTLIB, "bench", "--grids", "x"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert usage.returncode == 2 and "invalid int value" in usage.stderr


def test_no_progress_bar_where_standard_error_is_not_a_terminal(images, tmp_path, capfd):
    # A CI log or a redirected `kvq bench ... 2> log` got tqdm's bar redrawn into it, as the README says batches never do.
    out = tmp_path / "quiet"
    assert main([str(images / "china_small.png"), "-k", "2", "-o", str(out), "--peers", "none", "--grids", "0"]) == 0
    err = capfd.readouterr().err
    assert "kvq bench:" not in err and "\r" not in err and "encode/s" not in err


@pytest.fixture(scope="module")
def flat16(tmp_path_factory) -> Path:
    """A 64×64 image of 16 flat colours: lossless at K = 16 and above."""
    palette = np.random.default_rng(0).integers(0, 256, (16, 3), dtype=np.uint8)
    indices = np.repeat(np.repeat(np.arange(16).reshape(4, 4), 16, axis=0), 16, axis=1)
    path = tmp_path_factory.mktemp("flat") / "flat16.png"
    Image.fromarray(palette[indices]).save(path)
    return path


@pytest.mark.parametrize(("peers", "suffix"), [("none", ".png"), ("png8", ".png"), ("none", ".kvq")])
def test_an_image_lossless_at_every_k_gets_its_report(flat16, tmp_path, monkeypatch, peers, suffix):
    # Every PSNR is infinite: the rate-distortion figure drew no line and its legend asked for 0 columns (ValueError),
    # after results.csv alone was written.
    from kvq.bench import figures

    source = flat16
    if suffix == ".kvq":
        source = tmp_path / "flat16.kvq"
        source.write_bytes(kvq.encode(np.asarray(Image.open(flat16)), k=16))
    out = tmp_path / "b5"
    figure = []
    real = figures.rd_curves_figure
    monkeypatch.setattr(figures, "rd_curves_figure", lambda rows: figure.append(real(rows)) or figure[-1])
    assert main([str(source), "-k", "16", "--peers", peers, "-o", str(out), "--no-progress"]) == 0
    for name in ("report.md", "results.csv", "rd_curves.png", "bits_vs_raw.png", "grid_flat16.png"):
        assert (out / name).stat().st_size > 0, name
    psnr_panel = figure[0].axes[0]
    assert not psnr_panel.get_lines()
    assert "lossless at every K: no rate-distortion curve" in [t.get_text() for t in psnr_panel.texts]
    assert "1 row(s) are lossless" in (out / "report.md").read_text(encoding="utf-8")


def test_a_failed_run_leaves_no_output_and_its_rerun_is_not_refused(images, tmp_path, monkeypatch, capsys):
    from kvq.bench import figures
    from kvq.cli import main as kvq_main

    def broken(rows, path):
        raise RuntimeError("drawing failed")

    out = tmp_path / "deep" / "b6"
    argv = ["bench", str(images / "grey.png"), "-k", "2", "--peers", "none", "-o", str(out), "--no-progress", "--save-files"]
    with monkeypatch.context() as patched:
        patched.setattr(figures, "bits_vs_raw", broken)
        assert kvq_main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "drawing failed" in err and "Traceback" not in err
    # Nothing of the failed run: not results.csv (written before the figures), not the folder, not a staging folder.
    assert list(tmp_path.iterdir()) == []
    assert kvq_main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "bits_vs_raw.png", "files", "grid_grey.png", "rd_curves.png", "report.md", "results.csv",
    ]  # fmt: skip


def test_a_failed_forced_run_keeps_the_folder_as_it_was(images, tmp_path, monkeypatch):
    from kvq.bench import figures

    out = tmp_path / "b7"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "report.md").write_text("the last report")
    monkeypatch.setattr(figures, "rd_curves", lambda rows, path: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main([str(images / "grey.png"), "-k", "2", "--peers", "none", "-o", str(out), "--no-progress", "--force"])
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "report.md"]
    assert (out / "report.md").read_text() == "the last report"
    # The same run, drawn: its outputs join the folder's own file, the report replaced.
    monkeypatch.undo()
    assert main([str(images / "grey.png"), "-k", "2", "--peers", "none", "-o", str(out), "--no-progress", "--force", "--save-files"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "bits_vs_raw.png", "files", "grid_grey.png", "notes.txt", "rd_curves.png", "report.md", "results.csv",
    ]  # fmt: skip
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# kvq benchmark report")
    assert [p.name for p in (out / "files").iterdir()] == ["grey_k2.kvq"]


def test_an_existing_output_is_refused_in_the_words_of_every_kvq_command(images, tmp_path, capsys):
    out = tmp_path / "b8"
    out.mkdir()
    (out / "grid_grey.png").write_bytes(b"not the bench's")
    # A grid is an output too: it was replaced without --force.
    assert main([str(images / "grey.png"), "-k", "2", "--peers", "none", "-o", str(out), "--no-progress"]) == 1
    assert capsys.readouterr().err == f"kvq bench: error: output {out / 'grid_grey.png'} exists (-f/--force replaces it)\n"
    assert sorted(p.name for p in out.iterdir()) == ["grid_grey.png"]
    (out / "results.csv").write_text("")
    assert main([str(images / "grey.png"), "-k", "2", "--peers", "none", "-o", str(out), "--no-progress"]) == 1
    assert capsys.readouterr().err == f"kvq bench: error: output {out / 'results.csv'} exists (-f/--force replaces it)\n"
    # A file where the folder should be is named as such (it was "kvq: error: ...: File exists", from mkdir).
    assert main([str(images / "grey.png"), "-k", "2", "--peers", "none", "-o", str(out / "results.csv"), "--no-progress"]) == 1
    assert capsys.readouterr().err == f"kvq bench: error: output {out / 'results.csv'} is not a folder\n"


def test_no_peer_table_when_no_peer_was_asked(images, tmp_path):
    out = tmp_path / "alone"
    assert main([str(images / "grey.png"), "-k", "2", "--peers", "none", "-o", str(out), "--grids", "0", "--no-progress"]) == 0
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "No peer was asked (--peers none)" in text
    assert "### kvq's file size divided by each peer's" not in text and "| PNG-8 (Pillow)" not in text
    assert "| n/a |" not in text
    # One peer asked: its column alone.
    out = tmp_path / "one"
    assert main([str(images / "grey.png"), "-k", "2", "--peers", "png8", "-o", str(out), "--grids", "0", "--no-progress"]) == 0
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "| K | PNG-8 (Pillow) |\n" in text and "| GIF (Pillow)" not in text
