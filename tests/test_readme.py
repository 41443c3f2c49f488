"""The README's examples, run as a user runs them: in a fresh interpreter, in a folder holding the files they name.

Each top-level expression of an example is evaluated and its value checked against what the README's comment beside
it says; what Pillow is asked to resample is recorded (a thumbnail of a ``P`` image is resized by nearest neighbour,
whatever filter is named, so an example must convert first and keep what ``convert`` returns).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kvq

from conftest import REPO, kvq_env

README = REPO / "README.md"

#: Runs a README example from standard input and prints, as JSON, the value of each top-level expression (arrays as
#: shape, dtype and a digest) and the mode of every image Pillow was asked to thumbnail.
RUNNER = r"""
import ast, hashlib, json, sys
import numpy as np
from PIL import Image

resized = []
_thumbnail = Image.Image.thumbnail


def thumbnail(self, *args, **kwargs):
    resized.append(self.mode)
    return _thumbnail(self, *args, **kwargs)


Image.Image.thumbnail = thumbnail


def describe(value):
    if isinstance(value, np.ndarray):
        out = {"shape": list(value.shape), "dtype": str(value.dtype), "sha256": hashlib.sha256(value.tobytes()).hexdigest()}
        if value.ndim == 3 and value.shape[2] == 4:
            out["rgb_sha256"] = hashlib.sha256(np.ascontiguousarray(value[..., :3]).tobytes()).hexdigest()
            out["alpha"] = np.unique(value[..., 3]).tolist()
        return out
    return repr(value)


source = sys.stdin.read()
namespace = {"__name__": "__main__"}
values = {}
for node in ast.parse(source).body:
    text = ast.get_source_segment(source, node)
    if isinstance(node, ast.Expr):
        values[text] = describe(eval(compile(ast.Expression(node.value), "README", "eval"), namespace))
    else:
        exec(compile(ast.Module([node], []), "README", "exec"), namespace)
print(json.dumps({"values": values, "thumbnails": resized}))
"""


def example(section: str) -> str:
    """The first Python block of the README section headed ``## section``."""
    text = README.read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return body.split("```python\n", 1)[1].split("```", 1)[0]


def run_example(code: str, folder: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", RUNNER], input=code.encode(), cwd=folder, env=kvq_env(), capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def sha256(array: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.fixture
def pillow_folder(tmp_path: Path, photo: np.ndarray) -> Path:
    """The files the Pillow example names: a photo as PNG and as .kvq, and a logo."""
    Image.fromarray(photo).save(tmp_path / "photo.png")
    (tmp_path / "photo.kvq").write_bytes(kvq.encode(photo, k=64))
    logo = np.zeros((40, 60, 3), dtype=np.uint8)
    logo[10:30, 15:45] = (200, 40, 30)
    Image.fromarray(logo).save(tmp_path / "logo.png")
    return tmp_path


def test_the_pillow_example_runs_as_its_comments_say(pillow_folder: Path) -> None:
    original = (pillow_folder / "photo.kvq").read_bytes()
    out = run_example(example("Pillow"), pillow_folder)
    values = out["values"]
    height, width = kvq.read_header(original).height, kvq.read_header(original).width
    assert values["im.format, im.size, im.mode"] == repr(("KVQ", (width, height), "P"))
    # A thumbnail is resampled from colours, never from palette indices.
    assert out["thumbnails"], "the example makes no thumbnail"
    assert "P" not in out["thumbnails"], f"thumbnail() called on a {out['thumbnails']} image"
    # imageio gives exactly kvq.decode; matplotlib the same colours and an alpha channel of 255.
    pixels = kvq.decode(original)
    read = values['iio.imread("photo.kvq")']
    assert read == {"shape": [height, width, 3], "dtype": "uint8", "sha256": sha256(pixels)}
    shown = values['plt.imread("photo.kvq")']
    assert (shown["shape"], shown["dtype"], shown["rgb_sha256"], shown["alpha"]) == ([height, width, 4], "uint8", sha256(pixels), [255])


def test_a_fresh_interpreter_reads_kvq_through_pillow_only_after_import_kvq(pillow_folder: Path) -> None:
    # What the README tells users: no Pillow reads plugins from entry points, so the import is needed, and enough.
    readers = {
        "Pillow": "from PIL import Image; Image.open('photo.kvq').load()",
        "imageio": "import imageio.v3 as iio; iio.imread('photo.kvq')",
        "matplotlib": "import matplotlib.image as mpimg; mpimg.imread('photo.kvq')",
    }
    for name, code in readers.items():
        without = subprocess.run([sys.executable, "-c", code], cwd=pillow_folder, env=kvq_env(), capture_output=True, timeout=120)
        assert without.returncode != 0, f"{name} read a .kvq file without import kvq: update the README"
        with_kvq = subprocess.run(
            [sys.executable, "-c", f"import kvq; {code}"], cwd=pillow_folder, env=kvq_env(), capture_output=True, timeout=120
        )
        assert with_kvq.returncode == 0, (name, with_kvq.stderr.decode())


def test_matplotlib_makes_a_gif_rgba_too(tmp_path: Path, photo: np.ndarray) -> None:
    # The README's explanation of the fourth channel: matplotlib's imread turns any palette image (not read as PNG)
    # into RGBA; an RGB GIF gets one as a K <= 256 .kvq file does.
    import matplotlib.image as mpimg

    Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(tmp_path / "photo.gif")
    with Image.open(tmp_path / "photo.gif") as gif:
        assert gif.mode == "P" and "transparency" not in gif.info
    read = mpimg.imread(tmp_path / "photo.gif")
    assert read.shape == (*photo.shape[:2], 4) and (read[..., 3] == 255).all()


def readme_text() -> str:
    """The README's prose and tables with every run of white space as one space, so that a figure may wrap."""
    return " ".join(README.read_text(encoding="utf-8").split())


def table(markdown: str, heading_cell: str) -> list[list[str]]:
    """The body rows of the first Markdown table whose header row has ``heading_cell``, as lists of cells."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|") and heading_cell in line)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_the_readmes_figures_are_those_of_the_benchmarks_it_names() -> None:
    import csv

    text = readme_text()
    results = REPO / "benchmarks" / "results"
    # The file against the textbook: benchmarks/kodak/report.md, its summary.
    summary = table((REPO / "benchmarks" / "kodak" / "report.md").read_text(encoding="utf-8"), "factor vs theory")
    theory = {row[0]: row[6] for row in summary}
    means = [theory[k].split("×")[0] for k in ("2", "16", "64", "256")]
    lows = [float(cell.split("(")[1].split("–")[0]) for cell in theory.values()]
    highs = [float(cell.split("–")[1].rstrip(")")) for cell in theory.values()]
    assert (
        f"On the 12 Kodak photos the entropy-coded file is {means[0]}, {means[1]}, {means[2]} and {means[3]} times smaller"
        " than the textbook N·ceil(log2 K) + 24·K at K = 2, 16, 64 and 256 (geometric means;"
        f" from {min(lows):.2f} times, one photo at K = 256, to {max(highs):.2f} times, one at K = 2;"
        " `benchmarks/kodak/report.md`)"
    ) in text
    assert min(lows) == float(theory["256"].split("(")[1].split("–")[0]) and max(highs) == float(theory["2"].split("–")[1].rstrip(")"))
    # Against WebP-lossless and JPEG XL, and the decoding time: benchmarks/results/entropy.md and entropy.csv.
    ratios = table((results / "entropy.md").read_text(encoding="utf-8"), "decode speed vs WebP")
    assert [row[0] for row in ratios] == ["16", "64", "256"]
    assert all(float(row[1]) < 1 and float(row[2]) < 1 for row in ratios)  # smaller than both, on average, at every K
    speeds = [row[4].split("×")[0] for row in ratios]
    with open(results / "entropy.csv", newline="", encoding="utf-8") as fp:
        photos = list(csv.DictReader(fp))
    jxl_wins = sum(int(r["jxl_bytes"]) < int(r["kvq_bytes"]) for r in photos if r["k"] == "16")
    milliseconds = [1000 * float(r["decode_kvq_cpu_s"]) for r in photos]
    assert len({r["image"] for r in photos}) == 12
    assert f"(JPEG XL is smaller on {jxl_wins} of the 12 photos at K = 16)" in text
    assert (
        f"Decoding it is slower than theirs: {min(milliseconds):.0f} to {max(milliseconds):.0f} ms of CPU for one of those"
        f" photos at K = 16 to 256, {speeds[0]}, {speeds[1]} and {speeds[2]} times WebP-lossless's speed at K = 16, 64 and 256"
        " (`benchmarks/results/entropy.md`, per photo in `benchmarks/results/entropy.csv`)"
    ) in text
    # A 100-megapixel photo: benchmarks/results/large_image.md, its table of whole processes.
    processes = table((results / "large_image.md").read_text(encoding="utf-8"), "peak RSS (GiB)")
    peaks = {row[0].strip("`").split(" -o ")[0].split(".load")[0]: row[2] for row in processes}
    decode, pillow, fixed = peaks["kvq decode big.kvq"], peaks['Image.open("big.kvq")'], peaks["kvq decode fixed.kvq"]
    assert (
        f"peaks at {decode} GiB through `kvq decode` and {pillow} GiB through Pillow's `load()`, or {fixed} GiB as a"
        " fixed-width file"
    ) in text
    # The explore page's slider: benchmarks/results/explore_slider.md.
    slider = table((results / "explore_slider.md").read_text(encoding="utf-8"), "95th percentile")
    assert f"a step's work takes {slider[0][1]}, median, on a 768×512 photo; `benchmarks/results/explore_slider.md`" in text
    # Figures with no benchmark behind them are gone.
    for unsourced in ("2 to 4 times", "10 to 25 times", "about 1.5 times", "under 3 minutes", "a few milliseconds"):
        assert unsourced not in text
