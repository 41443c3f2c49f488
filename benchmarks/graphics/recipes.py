"""The graphics set's sources and the recipe of each image; run by build.py inside the pinned environment.

Each recipe reads only the pinned sources in ``SOURCES`` (through ``Context``) and returns a Pillow image;
build.py writes, hashes and lists it. Categories: ``screenshot``, ``icon``, ``chart``, ``pixelart``,
``map``, ``text``. Licences are those of the content each image shows, as its authors state them.
"""

from __future__ import annotations

import os
import tempfile

# Matplotlib reads matplotlibrc from the working folder and the user's config folder: neither may change
# the charts. This must be set before matplotlib is imported.
os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="kvq-graphics-mpl-")

import csv
import gzip
import html
import importlib.metadata
import io
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from PIL import Image

from build import BuildError, Recipe, Source

matplotlib.use("Agg")
matplotlib.rcdefaults()
from matplotlib import font_manager
from matplotlib.figure import Figure

# Only matplotlib's own fonts (DejaVu, shipped in the pinned wheel), never the system's: a system
# DejaVu of another version would change every label.
font_manager.fontManager.ttflist = [f for f in font_manager.fontManager.ttflist if f.fname.startswith(matplotlib.get_data_path())]

ANY_WHEEL = "py3-none-any.whl"

SOURCES: dict[str, Source] = {
    s.key: s
    for s in [
        # PyPI
        Source(
            "arcade",
            "pypi",
            "arcade",
            "3.3.3",
            "25f4e0e5b8bcbe7a7d087c0a23b19e9f423b0c70ec00945c8712c9a3e541ebd2",
            "CC0-1.0 (Kenney assets); ansimuz assets: free use and redistribution (public-license.txt)",
            f"arcade-3.3.3-{ANY_WHEEL}",
        ),
        Source(
            "pygame",
            "pypi",
            "pygame",
            "2.6.1",
            "ce8cc108b92de9b149b344ad2e25eedbe773af0dc41dfb24d1f07f679b558c60",
            "LGPL-2.1 (pygame and its documentation)",
            "pygame-2.6.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ),
        Source(
            "pyxel",
            "pypi",
            "pyxel",
            "2.9.9",
            "f63ef27bc2e92f085691c694a28ec774ba8b668bdf9c608fbaa9aae5c9d82518",
            "MIT (Pyxel, its examples and their assets)",
            "pyxel-2.9.9-cp311-abi3-manylinux_2_28_x86_64.whl",
        ),
        Source(
            "sklearn",
            "pypi",
            "scikit-learn",
            "1.9.1",
            "52a0703bbc07ad27f560fa63fa68e4c54dd735bfbbf65b4dd3c225dc7547b6df",
            "BSD-3-Clause (package); data sets: UCI (iris, wine, breast cancer: CC-BY-4.0), diabetes (Efron et al. 2004)",
            "scikit_learn-1.9.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        ),
        Source(
            "skimage",
            "pypi",
            "scikit-image",
            "0.26.0",
            "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
            "BSD-3-Clause (package); text.png: public domain",
            "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        ),
        Source(
            "ocrmypdf",
            "pypi",
            "ocrmypdf",
            "17.13.0",
            "151c35d810eb628fbc5cb9bbe80b834ecf094737efa0e7a2e9e1fac3c730ed49",
            "test scans, per its REUSE.toml: linn.png GFDL-1.2+ or CC-BY-SA-3.0; typewriter.png GFDL-1.2+ or CC-BY-SA-1.0..3.0; "
            "baiona.png CC-BY-SA-4.0; crom.png CC-BY-SA-4.0 (James R. Barlow)",
            "ocrmypdf-17.13.0.tar.gz",
        ),
        Source(
            "pygments220",
            "pypi",
            "pygments",
            "2.20.0",
            "81a9e26dd42fd28a23a2d169d86d7ac03b46e2f8b59ed4698fb4785f946d0176",
            "BSD-2-Clause",
            f"pygments-2.20.0-{ANY_WHEEL}",
        ),
        Source(
            "pygments221",
            "pypi",
            "pygments",
            "2.21.0",
            "2363c69b61c4a97c838da3b130dcd6468f4848992b21a82f2a63ec34377137d9",
            "BSD-2-Clause",
            f"pygments-2.21.0-{ANY_WHEEL}",
        ),
        Source(
            "matplotlib",
            "installed",
            "matplotlib",
            "3.11.2",
            "",
            "matplotlib licence (PSF-based); sample data shipped with it",
            "",
            {
                "mpl-data/sample_data/goog.npz": "400917cf30e6b664f7b0da93d7c745860d3aa9008da8b7f160d2dd12e6a318b1",
                "mpl-data/sample_data/topobathy.npz": "0244e03291702df45024dcb5cacbc4f3d4cb30d72dfa7fd371c4ac61c42b4fbf",
                "mpl-data/sample_data/jacksboro_fault_dem.npz": "d493f50a33e82a4420494c54d1fca1539d177bdc27ab190bc5fe6e92f62fb637",
            },
        ),
        # npm
        Source(
            "twemoji",
            "npm",
            "@twemoji/svg",
            "15.0.0",
            "1d2907557a422c7c4e3feca50ef915c39da1db3d76b4a4d7e73fb59bce4403c3",
            "CC-BY-4.0 (Twemoji graphics, Twitter Inc. and contributors); package MIT",
            "twemoji-svg-15.0.0.tgz",
        ),
        Source(
            "devicon",
            "npm",
            "devicon",
            "2.17.0",
            "e611f56ef1eeb17c00940f970d44d8ca086439ae7892b496a46b81a7f9a38d5a",
            "MIT (the icon files; the logos are their owners' trademarks)",
            "devicon-2.17.0.tgz",
        ),
        Source(
            "vega",
            "npm",
            "vega",
            "6.4.0",
            "3521fb6ff68a94a40323954f0ba4484ba4014b157bfd37f89a3b063082320c42",
            "BSD-3-Clause",
            "vega-6.4.0.tgz",
        ),
        Source(
            "vegalite",
            "npm",
            "vega-lite",
            "6.5.0",
            "811230a6bfd2cdbfc359d0c38f624a90df86657b7f251b67be88bcc4eee32b7f",
            "BSD-3-Clause",
            "vega-lite-6.5.0.tgz",
        ),
        Source(
            "vegadata",
            "npm",
            "vega-datasets",
            "3.2.1",
            "6f72fda460a9863fae5fcb32f85bcd49e1761fdea6dc6cf9f4962472881cc5a3",
            "BSD-3-Clause (package); each data set's own licence in its datapackage.json",
            "vega-datasets-3.2.1.tgz",
        ),
        Source(
            "ghcss",
            "npm",
            "github-markdown-css",
            "5.9.0",
            "291a28816709426a8a348c8db497c6f2c625ec5e596d3406770dcfff975233b4",
            "MIT",
            "github-markdown-css-5.9.0.tgz",
        ),
        Source(
            "inter",
            "npm",
            "@fontsource/inter",
            "5.3.0",
            "02034af8d41dcc67ac8eab88f642e129bb8a2e8922abf30229c32725f54d8fd6",
            "OFL-1.1",
            "fontsource-inter-5.3.0.tgz",
        ),
        Source(
            "jbmono",
            "npm",
            "@fontsource/jetbrains-mono",
            "5.3.0",
            "1bbea47d1387406da5b6ccc4184cc61eae6851cc0db5c1d9bbd088ea9daa0b4a",
            "OFL-1.1",
            "fontsource-jetbrains-mono-5.3.0.tgz",
        ),
        Source(
            "serif",
            "npm",
            "@fontsource/source-serif-4",
            "5.3.1",
            "54b7898afa20cf4b2d807bbf2b5a2f865e28a83db8a5fcc563dafce5ecb5e7c8",
            "OFL-1.1",
            "fontsource-source-serif-4-5.3.1.tgz",
        ),
    ]
}

#: Every page rendered by Chromium uses these sources for its fonts.
FONTS = ("inter", "jbmono", "serif")
#: Fonts keyed by CSS family: (source key, file stem inside the package's files/ folder).
FONT_FILES = {
    "KVQ Sans": ("inter", "inter-latin"),
    "KVQ Mono": ("jbmono", "jetbrains-mono-latin"),
    "KVQ Serif": ("serif", "source-serif-4-latin"),
}


# --------------------------------------------------------------------------------------------------
# The context the recipes work in


def find_chromium(explicit: str | None) -> str:
    """The Chromium binary: ``explicit``, else the first of chromium, chromium-browser, google-chrome on PATH."""
    for name in [explicit] if explicit else ["chromium", "chromium-browser", "google-chrome"]:
        found = shutil.which(name)
        if found:
            return found
    raise BuildError("no Chromium found (install chromium, or name it with --chromium)")


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    except OSError:
        return "absent"
    match = re.search(r"\d+(\.\d+)+", out)
    return match.group(0) if match else out.strip()


def environment(chromium: str) -> dict[str, str]:
    """The versions of every renderer, for the manifest."""
    import markdown
    import PIL
    import pygments
    import pyxel
    import resvg_py

    return {
        "chromium": _version([chromium, "--version"]),
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "matplotlib": matplotlib.__version__,
        "pygments": pygments.__version__,
        "markdown": markdown.__version__,
        "rich": importlib.metadata.version("rich"),
        "resvg-py": resvg_py.__version__,
        "pyxel": pyxel.VERSION,
        "git": _version(["git", "--version"]),
        "grep": _version(["grep", "--version"]),
    }


class Context:
    """What a recipe may use: the opened sources, a scratch folder, Chromium and the pinned fonts."""

    def __init__(self, opened: dict[str, Any], work: Path, chromium: str):
        self.sources = opened
        self.work = work
        self.chromium = chromium
        self._extracted: dict[tuple[str, str], Path] = {}
        self._shots = 0

    def read(self, key: str, member: str) -> bytes:
        """Bytes of a member of a source (``package/...`` for npm, the wheel path for PyPI)."""
        return self.sources[key].read(member)

    def image(self, key: str, member: str) -> Image.Image:
        """A member decoded by Pillow (fully loaded)."""
        img = Image.open(io.BytesIO(self.read(key, member)))
        img.load()
        return img

    def text(self, key: str, member: str) -> str:
        """A member as UTF-8 text."""
        return self.read(key, member).decode("utf-8")

    def extract(self, key: str, prefix: str) -> Path:
        """Every member under ``prefix`` written into the scratch folder (once); the folder."""
        if (key, prefix) not in self._extracted:
            dest = self.work / "src" / key / prefix.strip("/").replace("/", "_")
            self._extracted[key, prefix] = self.sources[key].extract(prefix, dest)
        return self._extracted[key, prefix]

    def fonts_css(self) -> str:
        """``@font-face`` rules for KVQ Sans, KVQ Mono and KVQ Serif (regular, bold, italic) from the npm fonts."""
        rules = []
        for family, (key, stem) in FONT_FILES.items():
            folder = self.extract(key, "package/files")
            for weight in (400, 700):
                for style in ("normal", "italic"):
                    url = (folder / f"{stem}-{weight}-{style}.woff2").as_uri()
                    rules.append(
                        f'@font-face {{ font-family: "{family}"; src: url("{url}") format("woff2"); '
                        f"font-weight: {weight}; font-style: {style}; }}"
                    )
        return "\n".join(rules)

    def page(self, name: str, body_html: str) -> Path:
        """Write an HTML page into the scratch folder; its path."""
        path = self.work / "pages" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body_html, encoding="utf-8")
        return path

    def screenshot(self, page: Path, width: int, height: int, scale: float = 1.0) -> Image.Image:
        """Headless Chromium's screenshot of a local page in a ``width`` x ``height`` CSS-pixel window.

        The virtual time budget lets scripts and web fonts finish first, without waiting on the clock.
        A page that comes out blank (a script error, a missing file) is an error, not an image.
        """
        self._shots += 1
        out = self.work / f"shot-{self._shots}.png"
        profile = self.work / f"profile-{self._shots}"
        cmd = [
            self.chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--mute-audio",
            f"--user-data-dir={profile}",
            "--allow-file-access-from-files",
            # Every compositor stage finishes before the frame is drawn, and no tile is rastered late or
            # checkered: without these a scrolling box at the window's edge came out half drawn once in 69.
            "--run-all-compositor-stages-before-draw",
            "--disable-threaded-scrolling",
            "--disable-threaded-animation",
            "--disable-checker-imaging",
            "--disable-partial-raster",
            f"--force-device-scale-factor={scale:g}",
            f"--window-size={width},{height}",
            "--virtual-time-budget=10000",
            f"--screenshot={out}",
            page.as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            raise BuildError(f"Chromium did not finish {page.name} in 180 s") from None
        shutil.rmtree(profile, ignore_errors=True)
        if proc.returncode != 0 or not out.exists():
            raise BuildError(f"Chromium failed on {page.name}: {proc.stderr.strip().splitlines()[-1:]}")
        img = Image.open(out)
        img.load()
        img = img.convert("RGB")
        if len(img.getcolors(16) or range(17)) < 3:
            raise BuildError(f"Chromium rendered {page.name} blank")
        return img


def trim(img: Image.Image, margin: int = 12, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Crop a screenshot to its content plus ``margin`` pixels of background."""
    arr = np.asarray(img.convert("RGB"))
    ys, xs = np.nonzero(np.any(arr != np.array(background, dtype=np.uint8), axis=2))
    if len(xs) == 0:
        raise BuildError("nothing to trim to: the page is blank")
    box = (
        max(0, xs.min() - margin),
        max(0, ys.min() - margin),
        min(img.width, xs.max() + 1 + margin),
        min(img.height, ys.max() + 1 + margin),
    )
    return img.crop(box)


def render_figure(fig: Figure, dpi: float) -> Image.Image:
    """A matplotlib figure as an RGB image, through Agg, with no metadata."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    img = Image.open(buf)
    img.load()
    return img.convert("RGB")


# --------------------------------------------------------------------------------------------------
# screenshot: real pages, code, terminals

#: Injected into every page: the pinned fonts take the place of the page's font names, so the
#: screenshot does not depend on which fonts the machine has.
FONT_OVERRIDE = """
body, body * { font-family: "KVQ Sans" !important; }
pre, pre *, code, code *, tt, tt *, kbd, samp, .highlight, .highlight * { font-family: "KVQ Mono" !important; }
"""


def pygame_doc(page: str, width: int, height: int, scale: float = 1.0) -> Callable[[Context], Image.Image]:
    """A page of pygame's Sphinx documentation, as the wheel ships it."""

    def make(ctx: Context) -> Image.Image:
        docs = ctx.extract("pygame", "pygame/docs/generated")
        path = docs / page
        text = path.read_text(encoding="utf-8")
        style = f"<style>{ctx.fonts_css()}{FONT_OVERRIDE}</style>"
        patched = path.with_name(path.stem + ".kvq.html")
        patched.write_text(text.replace("</head>", style + "</head>", 1), encoding="utf-8")
        return ctx.screenshot(patched, width, height, scale)

    return make


def markdown_page(key: str, member: str, dark: bool, width: int, height: int) -> Callable[[Context], Image.Image]:
    """A package's README as GitHub shows it: Python-Markdown, github-markdown-css and Pygments."""

    def make(ctx: Context) -> Image.Image:
        import markdown
        from pygments.formatters import HtmlFormatter

        text = ctx.text(key, member)
        body = markdown.markdown(
            text,
            extensions=["tables", "fenced_code", "codehilite"],
            extension_configs={"codehilite": {"css_class": "highlight", "guess_lang": False}},
        )
        # The images are on the web, which the build does not reach: drop them rather than show broken ones.
        body = re.sub(r"<img\b[^>]*>", "", body)
        theme = "dark" if dark else "light"
        css = ctx.text("ghcss", f"package/github-markdown-{theme}.css")
        code_css = HtmlFormatter(style="github-dark" if dark else "default").get_style_defs(".markdown-body .highlight")
        background = "#0d1117" if dark else "#ffffff"
        page = ctx.page(
            f"{key}-{theme}.html",
            f"""<!DOCTYPE html><html><head><meta charset="utf-8"><style>
{ctx.fonts_css()}
{css}
{code_css}
body {{ margin: 0; background: {background}; }}
.markdown-body {{ box-sizing: border-box; max-width: 980px; margin: 0 auto; padding: 45px; }}
.markdown-body .highlight pre {{ background: transparent; }}
{FONT_OVERRIDE}
</style></head><body><article class="markdown-body">{body}</article></body></html>""",
        )
        return ctx.screenshot(page, width, height)

    return make


def code_page(
    key: str, member: str, lexer: str, style: str, width: int, height: int, first: int = 1, last: int | None = None, font_px: int = 14
) -> Callable[[Context], Image.Image]:
    """Real source code as an editor or a code-hosting page shows it: Pygments' HTML, line numbers."""

    def make(ctx: Context) -> Image.Image:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import get_lexer_by_name

        lines = ctx.text(key, member).splitlines()[first - 1 : last]
        fmt = HtmlFormatter(style=style, linenos="inline", linenostart=first, cssclass="highlight")
        body = highlight("\n".join(lines) + "\n", get_lexer_by_name(lexer), fmt)
        background = fmt.style.background_color or "#ffffff"
        page = ctx.page(
            f"code-{Path(member).stem}-{style}.html",
            f"""<!DOCTYPE html><html><head><meta charset="utf-8"><style>
{ctx.fonts_css()}
{fmt.get_style_defs(".highlight")}
body {{ margin: 0; background: {background}; }}
.highlight {{ background: {background}; }}
.highlight pre {{ margin: 0; padding: 14px 18px; font-size: {font_px}px; line-height: 1.5; }}
.highlight .linenos {{ padding-right: 14px; }}
{FONT_OVERRIDE}
</style></head><body>{body}</body></html>""",
        )
        return ctx.screenshot(page, width, height)

    return make


#: Rich's HTML export, as a terminal window: {code}, {foreground} and {background} are Rich's fields.
TERMINAL_HTML = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>
FONTS
body {{ margin: 0; background: {background}; }}
pre {{ margin: 0; padding: 10px 12px; color: {foreground}; font-family: "KVQ Mono"; font-size: 14px; line-height: 1.3; }}
</style></head><body><pre><code>{code}</code></pre></body></html>"""


def terminal(
    name: str, ansi: Callable[[Context], str], columns: int, rows: int, width: int, height: int
) -> Callable[[Context], Image.Image]:
    """Real colour terminal output (ANSI escapes) in a terminal's monospace grid, through Rich's HTML export."""

    def make(ctx: Context) -> Image.Image:
        from rich.console import Console
        from rich.terminal_theme import MONOKAI
        from rich.text import Text

        text = "\n".join(ansi(ctx).splitlines()[:rows])
        console = Console(
            record=True, width=columns, file=io.StringIO(), color_system="truecolor", force_terminal=True, legacy_windows=False
        )
        console.print(Text.from_ansi(text), crop=True, overflow="crop", no_wrap=True)
        page_html = console.export_html(theme=MONOKAI, inline_styles=True, code_format=TERMINAL_HTML)
        page = ctx.page(f"terminal-{name}.html", page_html.replace("FONTS", ctx.fonts_css(), 1))
        return ctx.screenshot(page, width, height)

    return make


def _tool_env(ctx: Context) -> dict[str, str]:
    """A clean environment for git and grep: no user configuration, default colours, one locale."""
    home = ctx.work / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LC_ALL": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "TERM": "xterm-256color",
    }


def _pygments_trees(ctx: Context) -> Path:
    base = ctx.work / "pygments-diff"
    if not base.exists():
        for key, name in (("pygments220", "pygments-2.20.0"), ("pygments221", "pygments-2.21.0")):
            shutil.copytree(ctx.extract(key, "pygments"), base / name)
    return base


def git_diff_patch(ctx: Context) -> str:
    """``git diff --no-index --color=always`` of Pygments' Python lexer from 2.20.0 to 2.21.0."""
    base = _pygments_trees(ctx)
    proc = subprocess.run(
        ["git", "diff", "--no-index", "--color=always", "pygments-2.20.0/lexers/python.py", "pygments-2.21.0/lexers/python.py"],
        cwd=base,
        capture_output=True,
        text=True,
        env=_tool_env(ctx),
    )
    if proc.returncode not in (0, 1):
        raise BuildError(f"git diff failed: {proc.stderr.strip()}")
    return proc.stdout


def git_diff_stat(ctx: Context) -> str:
    """``git diff --no-index --stat --color=always`` between the two Pygments trees (the lexers)."""
    base = _pygments_trees(ctx)
    proc = subprocess.run(
        [
            "git",
            "diff",
            "--no-index",
            "--color=always",
            "--stat=110,60",
            "--stat-count=200",
            "pygments-2.20.0/lexers",
            "pygments-2.21.0/lexers",
        ],
        cwd=base,
        capture_output=True,
        text=True,
        env=_tool_env(ctx),
    )
    if proc.returncode not in (0, 1):
        raise BuildError(f"git diff failed: {proc.stderr.strip()}")
    return proc.stdout


def grep_output(ctx: Context) -> str:
    """``grep -n --color=always 'pyxel\\.\\(blt\\|bltm\\)'`` over Pyxel's examples, file by file in name order."""
    folder = ctx.extract("pyxel", "pyxel/examples")
    files = sorted(p.name for p in folder.glob("*.py"))
    proc = subprocess.run(
        ["grep", "-n", "--color=always", r"pyxel\.\(blt\|bltm\|text\)(", *files],
        cwd=folder,
        capture_output=True,
        text=True,
        env=_tool_env(ctx),
    )
    if proc.returncode != 0:
        raise BuildError(f"grep failed: {proc.stderr.strip()}")
    return proc.stdout


def pygmentize_output(ctx: Context) -> str:
    """What ``pygmentize -f terminal256 -O style=monokai`` prints for Pyxel's snake example."""
    from pygments import highlight
    from pygments.formatters import Terminal256Formatter
    from pygments.lexers import PythonLexer

    return highlight(ctx.text("pyxel", "pyxel/examples/07_snake.py"), PythonLexer(), Terminal256Formatter(style="monokai"))


# --------------------------------------------------------------------------------------------------
# icon: icons and logos with alpha, one subject at 72, 128, 256 and 512 px

ICON_SIZES = (72, 128, 256, 512)


def svg_icon(key: str, member: str, size: int) -> Callable[[Context], Image.Image]:
    """An SVG icon rendered by resvg at ``size`` x ``size`` on a transparent background."""

    def make(ctx: Context) -> Image.Image:
        import resvg_py

        png = resvg_py.svg_to_bytes(svg_string=ctx.text(key, member), width=size, height=size, skip_system_fonts=True)
        img = Image.open(io.BytesIO(bytes(png)))
        img.load()
        if img.size != (size, size):
            raise BuildError(f"resvg made {img.size} of {member}, not {size}x{size}")
        return img.convert("RGBA")

    return make


# --------------------------------------------------------------------------------------------------
# chart: plots of real data (matplotlib) and Vega-Lite / Vega charts (Chromium)


def _csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def iris_scatter_matrix(ctx: Context) -> Image.Image:
    rows = _csv_rows(ctx.read("sklearn", "sklearn/datasets/data/iris.csv"))[1:]
    data = np.array([[float(v) for v in r[:4]] for r in rows])
    species = np.array([int(r[4]) for r in rows])
    names = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
    labels = ["setosa", "versicolor", "virginica"]
    fig = Figure(figsize=(9, 9))
    axes = fig.subplots(4, 4)
    for i in range(4):
        for j in range(4):
            ax = axes[i, j]
            for s in range(3):
                sel = species == s
                if i == j:
                    ax.hist(data[sel, i], bins=12, alpha=0.6, color=f"C{s}")
                else:
                    ax.scatter(data[sel, j], data[sel, i], s=9, color=f"C{s}", label=labels[s])
            if i == 3:
                ax.set_xlabel(names[j])
            if j == 0:
                ax.set_ylabel(names[i])
    axes[0, 1].legend(loc="upper right", fontsize=8)
    fig.suptitle("Iris data set (scikit-learn)")
    fig.tight_layout()
    return render_figure(fig, 100)


def wine_heatmap(ctx: Context) -> Image.Image:
    rows = _csv_rows(ctx.read("sklearn", "sklearn/datasets/data/wine_data.csv"))[1:]
    data = np.array([[float(v) for v in r[:13]] for r in rows])
    names = [
        "alcohol",
        "malic acid",
        "ash",
        "alcalinity of ash",
        "magnesium",
        "total phenols",
        "flavanoids",
        "nonflavanoid phenols",
        "proanthocyanins",
        "colour intensity",
        "hue",
        "OD280/OD315",
        "proline",
    ]
    corr = np.corrcoef(data, rowvar=False)
    fig = Figure(figsize=(9, 8))
    ax = fig.subplots()
    im = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(13), names, rotation=45, ha="right")
    ax.set_yticks(range(13), names)
    for i in range(13):
        for j in range(13):
            ax.text(j, i, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize=7, color="white" if abs(corr[i, j]) > 0.6 else "black")
    fig.colorbar(im, ax=ax, shrink=0.8, label="Pearson correlation")
    ax.set_title("Wine data set: correlation of the 13 measurements")
    fig.tight_layout()
    return render_figure(fig, 100)


def diabetes_bars(ctx: Context) -> Image.Image:
    raw = gzip.decompress(ctx.read("sklearn", "sklearn/datasets/data/diabetes_data_raw.csv.gz")).decode()
    data = np.array([[float(v) for v in line.split()] for line in raw.strip().splitlines()])
    target = np.array(
        [float(v) for v in gzip.decompress(ctx.read("sklearn", "sklearn/datasets/data/diabetes_target.csv.gz")).decode().split()]
    )
    names = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    corr = np.array([np.corrcoef(data[:, k], target)[0, 1] for k in range(10)])
    order = np.argsort(corr)
    fig = Figure(figsize=(6.4, 4.8))
    ax = fig.subplots()
    colours = ["#d62728" if c < 0 else "#1f77b4" for c in corr[order]]
    ax.barh([names[k] for k in order], corr[order], color=colours)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("correlation with disease progression after one year")
    ax.set_title("Diabetes data set (442 patients)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return render_figure(fig, 100)


def breast_cancer_histograms(ctx: Context) -> Image.Image:
    rows = _csv_rows(ctx.read("sklearn", "sklearn/datasets/data/breast_cancer.csv"))[1:]
    data = np.array([[float(v) for v in r[:30]] for r in rows])
    malignant = np.array([int(r[30]) for r in rows]) == 0
    fig = Figure(figsize=(8, 5))
    axes = fig.subplots(1, 2)
    for ax, col, name in ((axes[0], 0, "mean radius"), (axes[1], 1, "mean texture")):
        bins = np.linspace(data[:, col].min(), data[:, col].max(), 30)
        ax.hist(data[malignant, col], bins=bins, alpha=0.55, color="#d62728", label="malignant")
        ax.hist(data[~malignant, col], bins=bins, alpha=0.55, color="#2ca02c", label="benign")
        ax.set_xlabel(name)
        ax.set_ylabel("tumours")
        ax.legend()
    fig.suptitle("Breast cancer Wisconsin (diagnostic) data set")
    fig.tight_layout()
    return render_figure(fig, 100)


def goog_price_volume(ctx: Context) -> Image.Image:
    with np.load(ctx.sources["matplotlib"].path("mpl-data/sample_data/goog.npz")) as npz:
        price = npz["price_data"]
    price = price[-250:]
    days = np.arange(len(price))
    fig = Figure(figsize=(8, 5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot(days, price["adj_close"], color="#1f77b4", linewidth=1.2, label="adjusted close")
    top.fill_between(days, price["low"], price["high"], color="#1f77b4", alpha=0.2, label="day's range")
    top.set_ylabel("price (USD)")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    top.set_title("Google, last 250 trading days of matplotlib's goog.npz")
    up = price["close"] >= price["open"]
    bottom.bar(days, price["volume"] / 1e6, color=np.where(up, "#2ca02c", "#d62728"), width=0.8)
    bottom.set_ylabel("volume (M)")
    bottom.set_xlabel("trading day")
    fig.tight_layout()
    return render_figure(fig, 200)


def vega_page(ctx: Context, name: str, spec: dict[str, Any], lite: bool) -> Path:
    """An HTML page that renders a Vega or Vega-Lite spec to SVG once the pinned fonts are loaded."""
    vega = ctx.extract("vega", "package/build") / "vega.min.js"
    scripts = [vega]
    if lite:
        scripts.append(ctx.extract("vegalite", "package/build") / "vega-lite.min.js")
    tags = "".join(f'<script src="{s.as_uri()}"></script>' for s in scripts)
    compile_ = "vegaLite.compile(spec).spec" if lite else "spec"
    return ctx.page(
        f"{name}.html",
        f"""<!DOCTYPE html><html><head><meta charset="utf-8">{tags}<style>
{ctx.fonts_css()}
body {{ margin: 0; background: white; }}
#view {{ padding: 16px; display: inline-block; }}
</style></head><body><div id="view"></div><script>
const spec = {json.dumps(spec)};
(async () => {{
  await document.fonts.load('12px "KVQ Sans"');
  await document.fonts.load('bold 12px "KVQ Sans"');
  const view = new vega.View(vega.parse({compile_}), {{renderer: "svg", container: "#view", hover: false}});
  await view.runAsync();
}})();
</script></body></html>""",
    )


VL_CONFIG = {"font": "KVQ Sans", "view": {"stroke": None}}
VEGA_FONT = {
    "text": {"font": "KVQ Sans"},
    "axis": {"labelFont": "KVQ Sans", "titleFont": "KVQ Sans"},
    "legend": {"labelFont": "KVQ Sans", "titleFont": "KVQ Sans"},
    "title": {"font": "KVQ Sans"},
}


def vega_chart(
    name: str, spec_of: Callable[[Context], dict[str, Any]], lite: bool, width: int, height: int
) -> Callable[[Context], Image.Image]:
    """A Vega(-Lite) chart or map rendered by Chromium, trimmed to its content."""

    def make(ctx: Context) -> Image.Image:
        spec = spec_of(ctx)
        return trim(ctx.screenshot(vega_page(ctx, name, spec, lite), width, height))

    return make


def _vega_csv(ctx: Context, member: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(ctx.text("vegadata", f"package/data/{member}"))))


def _vega_json(ctx: Context, member: str) -> Any:
    return json.loads(ctx.text("vegadata", f"package/data/{member}"))


def seattle_weather_spec(ctx: Context) -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "title": "Seattle weather, 2012-2015",
        "data": {"values": _vega_csv(ctx, "seattle-weather.csv")},
        "mark": "bar",
        "width": 640,
        "height": 360,
        "encoding": {
            "x": {"timeUnit": "month", "field": "date", "type": "ordinal", "title": "month"},
            "y": {"aggregate": "count", "type": "quantitative", "title": "days"},
            "color": {
                "field": "weather",
                "type": "nominal",
                "scale": {
                    "domain": ["sun", "fog", "drizzle", "rain", "snow"],
                    "range": ["#e7ba52", "#c7c7c7", "#aec7e8", "#1f77b4", "#9467bd"],
                },
            },
        },
        "config": VL_CONFIG,
    }


def stocks_spec(ctx: Context) -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "title": "Stock prices, 2000-2010",
        "data": {"values": _vega_csv(ctx, "stocks.csv")},
        "mark": {"type": "line", "point": False, "strokeWidth": 1.5},
        "width": 720,
        "height": 380,
        "encoding": {
            "x": {"field": "date", "type": "temporal", "timeUnit": "yearmonth", "title": None},
            "y": {"field": "price", "type": "quantitative", "title": "price (USD)"},
            "color": {"field": "symbol", "type": "nominal"},
        },
        "config": VL_CONFIG,
    }


def flare_tree_spec(ctx: Context) -> dict[str, Any]:
    """Vega's radial tree example, on the flare class hierarchy."""
    return {
        "$schema": "https://vega.github.io/schema/vega/v6.json",
        "width": 720,
        "height": 720,
        "padding": 5,
        "autosize": "none",
        "signals": [{"name": "originX", "update": "width / 2"}, {"name": "originY", "update": "height / 2"}],
        "data": [
            {
                "name": "tree",
                "values": _vega_json(ctx, "flare.json"),
                "transform": [
                    {"type": "stratify", "key": "id", "parentKey": "parent"},
                    {"type": "tree", "method": "cluster", "size": [1, 270], "as": ["alpha", "radius", "depth", "children"]},
                    {"type": "formula", "expr": "(360 * datum.alpha + 270) % 360", "as": "angle"},
                    {"type": "formula", "expr": "PI * datum.angle / 180", "as": "radians"},
                    {"type": "formula", "expr": "inrange(datum.angle, [90, 270])", "as": "leftside"},
                    {"type": "formula", "expr": "originX + datum.radius * cos(PI * datum.angle / 180)", "as": "x"},
                    {"type": "formula", "expr": "originY + datum.radius * sin(PI * datum.angle / 180)", "as": "y"},
                ],
            },
            {
                "name": "links",
                "source": "tree",
                "transform": [
                    {"type": "treelinks"},
                    {
                        "type": "linkpath",
                        "shape": "orthogonal",
                        "orient": "radial",
                        "sourceX": "source.radians",
                        "sourceY": "source.radius",
                        "targetX": "target.radians",
                        "targetY": "target.radius",
                    },
                ],
            },
        ],
        "scales": [
            {"name": "color", "type": "linear", "range": {"scheme": "magma"}, "domain": {"data": "tree", "field": "depth"}, "zero": True}
        ],
        "marks": [
            {
                "type": "path",
                "from": {"data": "links"},
                "encode": {
                    "update": {
                        "x": {"signal": "originX"},
                        "y": {"signal": "originY"},
                        "path": {"field": "path"},
                        "stroke": {"value": "#ccc"},
                    }
                },
            },
            {
                "type": "symbol",
                "from": {"data": "tree"},
                "encode": {
                    "enter": {"size": {"value": 60}, "stroke": {"value": "#fff"}},
                    "update": {"x": {"field": "x"}, "y": {"field": "y"}, "fill": {"scale": "color", "field": "depth"}},
                },
            },
            {
                "type": "text",
                "from": {"data": "tree"},
                "encode": {
                    "enter": {"text": {"field": "name"}, "fontSize": {"value": 8}, "baseline": {"value": "middle"}},
                    "update": {
                        "x": {"field": "x"},
                        "y": {"field": "y"},
                        "dx": {"signal": "(datum.leftside ? -1 : 1) * 6"},
                        "angle": {"signal": "datum.leftside ? datum.angle - 180 : datum.angle"},
                        "align": {"signal": "datum.leftside ? 'right' : 'left'"},
                    },
                },
            },
        ],
        "config": VEGA_FONT,
    }


# --------------------------------------------------------------------------------------------------
# map


def us_unemployment_spec(ctx: Context) -> dict[str, Any]:
    rates = [
        {"id": r["id"], "rate": float(r["rate"])}
        for r in csv.DictReader(io.StringIO(ctx.text("vegadata", "package/data/unemployment.tsv")), delimiter="\t")
    ]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "title": "Unemployment rate by county, 2009",
        "width": 900,
        "height": 540,
        "data": {"values": _vega_json(ctx, "us-10m.json"), "format": {"type": "topojson", "feature": "counties"}},
        "transform": [{"lookup": "id", "from": {"data": {"values": rates}, "key": "id", "fields": ["rate"]}}],
        "projection": {"type": "albersUsa"},
        "mark": {"type": "geoshape", "stroke": "white", "strokeWidth": 0.2},
        "encoding": {"color": {"field": "rate", "type": "quantitative", "scale": {"scheme": "blues"}, "title": "rate"}},
        "config": VL_CONFIG,
    }


def world_spec(ctx: Context) -> dict[str, Any]:
    world = _vega_json(ctx, "world-110m.json")
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "width": 960,
        "height": 468,
        "projection": {"type": "equalEarth"},
        "layer": [
            {"data": {"sphere": True}, "mark": {"type": "geoshape", "fill": "#d8ecf7"}},
            {
                "data": {"graticule": {"step": [15, 15]}},
                "mark": {"type": "geoshape", "stroke": "#9ecae1", "strokeWidth": 0.5, "fill": None},
            },
            {
                "data": {"values": world, "format": {"type": "topojson", "feature": "countries"}},
                "mark": {"type": "geoshape", "stroke": "white", "strokeWidth": 0.5},
                "encoding": {"color": {"field": "id", "type": "nominal", "scale": {"scheme": "set3"}, "legend": None}},
            },
        ],
        "config": VL_CONFIG,
    }


def london_spec(ctx: Context) -> dict[str, Any]:
    """Vega-Lite's London Tube Lines example."""
    lines = [
        "Bakerloo",
        "Central",
        "Circle",
        "District",
        "DLR",
        "Hammersmith & City",
        "Jubilee",
        "Metropolitan",
        "Northern",
        "Piccadilly",
        "Victoria",
        "Waterloo & City",
    ]
    colours = [
        "rgb(137,78,36)",
        "rgb(220,36,30)",
        "rgb(255,206,0)",
        "rgb(1,114,41)",
        "rgb(0,175,173)",
        "rgb(215,153,175)",
        "rgb(106,114,120)",
        "rgb(114,17,84)",
        "rgb(0,0,0)",
        "rgb(0,24,168)",
        "rgb(0,160,226)",
        "rgb(106,187,170)",
    ]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "width": 760,
        "height": 560,
        "layer": [
            {
                "data": {"values": _vega_json(ctx, "londonBoroughs.json"), "format": {"type": "topojson", "feature": "boroughs"}},
                "mark": {"type": "geoshape", "stroke": "white", "strokeWidth": 2},
                "encoding": {"color": {"value": "#eee"}},
            },
            {
                "data": {"values": _vega_json(ctx, "londonCentroids.json")},
                "transform": [
                    {
                        "calculate": "indexof (datum.name,' ') > 0  ? substring(datum.name,0,indexof(datum.name, ' ')) : datum.name",
                        "as": "bLabel",
                    }
                ],
                "mark": "text",
                "encoding": {
                    "longitude": {"field": "cx", "type": "quantitative"},
                    "latitude": {"field": "cy", "type": "quantitative"},
                    "text": {"field": "bLabel", "type": "nominal"},
                    "size": {"value": 8},
                    "opacity": {"value": 0.6},
                },
            },
            {
                "data": {"values": _vega_json(ctx, "londonTubeLines.json"), "format": {"type": "topojson", "feature": "line"}},
                "mark": {"type": "geoshape", "filled": False, "strokeWidth": 2},
                "encoding": {
                    "color": {
                        "field": "id",
                        "type": "nominal",
                        "legend": {"title": None, "orient": "bottom-right", "offset": 0},
                        "scale": {"domain": lines, "range": colours},
                    }
                },
            },
        ],
        "config": VL_CONFIG,
    }


def us_airports_spec(ctx: Context) -> dict[str, Any]:
    airports = [{"longitude": float(r["longitude"]), "latitude": float(r["latitude"])} for r in _vega_csv(ctx, "airports.csv")]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "title": "Airports of the United States",
        "width": 900,
        "height": 540,
        "projection": {"type": "albersUsa"},
        "layer": [
            {
                "data": {"values": _vega_json(ctx, "us-10m.json"), "format": {"type": "topojson", "feature": "states"}},
                "mark": {"type": "geoshape", "fill": "#e5e5e5", "stroke": "white"},
            },
            {
                "data": {"values": airports},
                "mark": {"type": "circle", "size": 8, "color": "#c0392b", "opacity": 0.8},
                "encoding": {
                    "longitude": {"field": "longitude", "type": "quantitative"},
                    "latitude": {"field": "latitude", "type": "quantitative"},
                },
            },
        ],
        "config": VL_CONFIG,
    }


def jacksboro_hillshade(ctx: Context) -> Image.Image:
    from matplotlib.colors import LightSource

    with np.load(ctx.sources["matplotlib"].path("mpl-data/sample_data/jacksboro_fault_dem.npz")) as dem:
        z = dem["elevation"]
        # The grid spacing is in degrees: in metres, as matplotlib's shading example converts it.
        dy = 111200 * float(dem["dy"])
        dx = 111200 * float(dem["dx"]) * np.cos(np.radians(float(dem["ymin"])))
    import matplotlib as mpl

    ls = LightSource(azdeg=315, altdeg=45)
    rgb = ls.shade(z, cmap=mpl.colormaps["gist_earth"], blend_mode="overlay", vert_exag=0.05, dx=dx, dy=dy)
    fig = Figure(figsize=(8, 7.2))
    ax = fig.subplots()
    ax.imshow(rgb, extent=(0, z.shape[1] * dx, 0, z.shape[0] * dy))
    cs = ax.contour(np.flipud(z), levels=10, colors="black", linewidths=0.4, extent=(0, z.shape[1] * dx, 0, z.shape[0] * dy))
    ax.clabel(cs, fontsize=6)
    ax.set_xlabel("east (m)")
    ax.set_ylabel("north (m)")
    ax.ticklabel_format(style="plain")
    ax.set_title("Jacksboro fault, Tennessee: shaded relief and 10 contours")
    fig.tight_layout()
    return render_figure(fig, 100)


def topobathy_map(ctx: Context) -> Image.Image:
    with np.load(ctx.sources["matplotlib"].path("mpl-data/sample_data/topobathy.npz")) as dem:
        z = dem["topo"]
        lon, lat = dem["longitude"], dem["latitude"]
    from matplotlib.colors import TwoSlopeNorm

    fig = Figure(figsize=(9, 7))
    ax = fig.subplots()
    norm = TwoSlopeNorm(vcenter=0, vmin=float(z.min()), vmax=float(z.max()))
    mesh = ax.pcolormesh(lon, lat, z, cmap="terrain", norm=norm, shading="auto")
    ax.contour(lon, lat, z, levels=[0], colors="black", linewidths=0.8)
    fig.colorbar(mesh, ax=ax, label="elevation (m)")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title("Topography and bathymetry (matplotlib's topobathy.npz), coastline in black")
    fig.tight_layout()
    return render_figure(fig, 100)


# --------------------------------------------------------------------------------------------------
# pixelart: sprites and sprite sheets

ARCADE = "arcade/resources/assets/images"


def crop(key: str, member: str, box: tuple[int, int, int, int] | None = None) -> Callable[[Context], Image.Image]:
    """An image of a source as it is, or a crop of it."""

    def make(ctx: Context) -> Image.Image:
        img = ctx.image(key, member)
        img = img.convert("RGBA") if ("transparency" in img.info or img.mode in ("RGBA", "LA", "PA")) else img.convert("RGB")
        return img.crop(box) if box else img

    return make


def sprite_sheet(key: str, members: Callable[[Context], list[str]], columns: int) -> Callable[[Context], Image.Image]:
    """Animation frames packed into a grid, as a game's sprite sheet holds them (transparent gaps)."""

    def make(ctx: Context) -> Image.Image:
        frames = [ctx.image(key, m).convert("RGBA") for m in members(ctx)]
        w = max(f.width for f in frames)
        h = max(f.height for f in frames)
        rows = -(-len(frames) // columns)
        sheet = Image.new("RGBA", (w * min(columns, len(frames)), h * rows), (0, 0, 0, 0))
        for i, frame in enumerate(frames):
            sheet.paste(frame, ((i % columns) * w, (i // columns) * h))
        return sheet

    return make


def robot_frames(ctx: Context) -> list[str]:
    prefix = f"{ARCADE}/animated_characters/robot/"
    names = sorted(n for n in ctx.sources["arcade"].names() if n.startswith(prefix) and n.endswith(".png"))
    if not names:
        raise BuildError("no robot frames in arcade")
    return names


def cybercity_scene(scale: int) -> Callable[[Context], Image.Image]:
    """The three layers of ansimuz's Cyberpunk street background, stacked as the game draws them."""

    def make(ctx: Context) -> Image.Image:
        base = f"{ARCADE}/cybercity_background"
        far = ctx.image("arcade", f"{base}/far-buildings.png").convert("RGBA")
        back = ctx.image("arcade", f"{base}/back-buildings.png").convert("RGBA")
        front = ctx.image("arcade", f"{base}/foreground.png").convert("RGBA")
        scene = Image.new("RGBA", front.size, (0, 0, 0, 255))
        for layer in (far, back):
            for x in range(0, scene.width, layer.width):
                scene.alpha_composite(layer, (x, scene.height - layer.height))
        scene.alpha_composite(front, (0, 0))
        scene = scene.convert("RGB")
        return scene.resize((scene.width * scale, scene.height * scale), Image.Resampling.NEAREST) if scale > 1 else scene

    return make


def pyxel_palette() -> list[tuple[int, int, int]]:
    import pyxel

    return [((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in pyxel.DEFAULT_COLORS]


def pyxel_bank(ctx: Context) -> Image.Image:
    """Image bank 0 of Pyxel's sample resource file: the sprites of its examples, in Pyxel's 16 colours."""
    import zipfile

    import tomllib

    with zipfile.ZipFile(io.BytesIO(ctx.read("pyxel", "pyxel/examples/assets/sample.pyxres"))) as z:
        resource = tomllib.loads(z.read("pyxel_resource.toml").decode())
    rows = resource["images"][0]["data"]
    # Pyxel stores each row without its trailing zeros and no rows after the last used one: the sheet is
    # the used part, rounded up to whole 8-pixel tiles as Pyxel's editor lays sprites out.
    width = -(-max(len(r) for r in rows) // 8) * 8
    height = -(-len(rows) // 8) * 8
    index = np.zeros((height, width), dtype=np.uint8)
    for y, row in enumerate(rows):
        index[y, : len(row)] = row
    palette = np.array(pyxel_palette(), dtype=np.uint8)
    return Image.fromarray(palette[index], "RGB")


def pyxel_town(ctx: Context) -> Image.Image:
    """Pyxel's Tiled map example: the two drawn layers of urban_rpg.tmx with its 8-px tile set, as the example draws them."""
    import xml.etree.ElementTree as ET

    tileset = ctx.image("pyxel", "pyxel/examples/assets/urban_rpg.png").convert("RGB")
    root = ET.fromstring(ctx.read("pyxel", "pyxel/examples/assets/urban_rpg.tmx"))
    ts = root.find("tileset")
    if ts is None:
        raise BuildError("urban_rpg.tmx has no tileset")
    columns, tile, first = int(ts.get("columns", "0")), int(root.get("tilewidth", "8")), int(ts.get("firstgid", "1"))
    width, height = int(root.get("width", "0")), int(root.get("height", "0"))
    tiles = np.asarray(tileset)
    magenta = np.all(tiles == (255, 0, 255), axis=2)
    out = np.zeros((height * tile, width * tile, 3), dtype=np.uint8)
    # The example draws the first two layers; the third, "Collision", holds markers for the game's logic.
    for layer in root.findall("layer")[:2]:
        data = layer.find("data")
        if data is None or data.text is None:
            continue
        gids = np.array([int(v) for v in data.text.replace("\n", "").split(",") if v.strip()]).reshape(height, width)
        for (y, x), gid in np.ndenumerate(gids):
            if gid == 0:
                continue
            t = gid - first
            ty, tx = (t // columns) * tile, (t % columns) * tile
            src, mask = tiles[ty : ty + tile, tx : tx + tile], ~magenta[ty : ty + tile, tx : tx + tile]
            out[y * tile : (y + 1) * tile, x * tile : (x + 1) * tile][mask] = src[mask]
    return Image.fromarray(out, "RGB")


# --------------------------------------------------------------------------------------------------
# text: scans and rendered text


def grey_scan(key: str, member: str, box: tuple[int, int, int, int] | None = None) -> Callable[[Context], Image.Image]:
    """A scan (grey or bilevel) as RGB, cropped at its own resolution (no resampling)."""

    def make(ctx: Context) -> Image.Image:
        img = ctx.image(key, member).convert("RGB")
        return img.crop(box) if box else img

    return make


def licence_page(serif: bool, width: int, height: int) -> Callable[[Context], Image.Image]:
    """The LGPL 2.1 text shipped in pygame's docs, rendered as a book page or as plain text in a browser."""

    def make(ctx: Context) -> Image.Image:
        text = html.escape(ctx.text("pygame", "pygame/docs/generated/LGPL.txt"))
        if serif:
            paragraphs = "".join(f"<p>{' '.join(p.split())}</p>" for p in re.split(r"\n\s*\n", text) if p.strip())
            body = f'<div class="page">{paragraphs}</div>'
            css = (
                "body { margin: 0; background: #fff; color: #111; } "
                '.page { font-family: "KVQ Serif"; font-size: 17px; line-height: 1.45; '
                "text-align: justify; hyphens: auto; padding: 56px 72px; column-count: 2; column-gap: 40px; } p { margin: 0 0 0.6em; }"
            )
        else:
            body = f"<pre>{text}</pre>"
            css = (
                "body { margin: 0; background: #fff; color: #000; } "
                'pre { margin: 8px; font-family: "KVQ Mono"; font-size: 13px; line-height: 1.25; }'
            )
        page = ctx.page(
            f"lgpl-{'serif' if serif else 'mono'}.html",
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><style>{ctx.fonts_css()}{css}</style></head>'
            f"<body>{body}</body></html>",
        )
        return ctx.screenshot(page, width, height)

    return make


# --------------------------------------------------------------------------------------------------
# The recipes

PAGE_FONTS = FONTS


def _r(
    file: str, sources: tuple[str, ...], licence: str, made: str, make: Callable[[Context], Image.Image], group: str | None = None
) -> Recipe:
    return Recipe(file, sources, licence, made, make, group)


PYGAME_LIC = "LGPL-2.1 (pygame documentation); fonts OFL-1.1"
ICONS = [
    ("twemoji-fox", "twemoji", "package/1f98a.svg", "CC-BY-4.0 (Twemoji)", "Twemoji 1f98a (fox face)"),
    ("twemoji-rocket", "twemoji", "package/1f680.svg", "CC-BY-4.0 (Twemoji)", "Twemoji 1f680 (rocket)"),
    ("twemoji-bar-chart", "twemoji", "package/1f4ca.svg", "CC-BY-4.0 (Twemoji)", "Twemoji 1f4ca (bar chart)"),
    (
        "devicon-python",
        "devicon",
        "package/icons/python/python-original.svg",
        "MIT (devicon); Python logo: PSF trademark",
        "devicon python-original",
    ),
    (
        "devicon-firefox",
        "devicon",
        "package/icons/firefox/firefox-original.svg",
        "MIT (devicon); Firefox logo: Mozilla trademark",
        "devicon firefox-original (gradients)",
    ),
    (
        "devicon-docker",
        "devicon",
        "package/icons/docker/docker-original.svg",
        "MIT (devicon); Docker logo: Docker trademark",
        "devicon docker-original",
    ),
]

RECIPES: list[Recipe] = [
    # screenshot: documentation pages as the pygame wheel ships them
    _r(
        "screenshot/pygame-docs-front-page.png",
        ("pygame", *FONTS),
        PYGAME_LIC,
        "Chromium screenshot, 1280x1400 window, of docs/generated/index.html (Sphinx HTML in the pygame wheel), pinned fonts",
        pygame_doc("index.html", 1280, 1400),
    ),
    _r(
        "screenshot/pygame-docs-surface.png",
        ("pygame", *FONTS),
        PYGAME_LIC,
        "Chromium screenshot, 1024x768 window, of docs/generated/ref/surface.html",
        pygame_doc("ref/surface.html", 1024, 768),
    ),
    _r(
        "screenshot/pygame-docs-chimp-code.png",
        ("pygame", *FONTS),
        PYGAME_LIC,
        "Chromium screenshot, 1280x1000 window, of docs/generated/tut/ChimpLineByLine.html (prose and highlighted code)",
        pygame_doc("tut/ChimpLineByLine.html", 1280, 1000),
    ),
    _r(
        "screenshot/pygame-docs-draw-phone-2x.png",
        ("pygame", *FONTS),
        PYGAME_LIC,
        "Chromium screenshot of docs/generated/ref/draw.html in a 390x844 phone-sized window at device scale 2 (780x1688 pixels)",
        pygame_doc("ref/draw.html", 390, 844, scale=2),
    ),
    _r(
        "screenshot/readme-vega-datasets-light.png",
        ("vegadata", "ghcss", *FONTS),
        "BSD-3-Clause (text); MIT (CSS); fonts OFL-1.1",
        "vega-datasets' README.md through Python-Markdown and github-markdown-light.css, Chromium 1100x1600 window (images dropped)",
        markdown_page("vegadata", "package/README.md", dark=False, width=1100, height=1600),
    ),
    _r(
        "screenshot/readme-vega-lite-dark.png",
        ("vegalite", "ghcss", *FONTS),
        "BSD-3-Clause (text); MIT (CSS); fonts OFL-1.1",
        "vega-lite's README.md through Python-Markdown and github-markdown-dark.css, Chromium 1100x1400 window (images dropped)",
        markdown_page("vegalite", "package/README.md", dark=True, width=1100, height=1400),
    ),
    _r(
        "screenshot/code-pyxel-platformer-monokai.png",
        ("pyxel", *FONTS),
        "MIT (Pyxel); fonts OFL-1.1",
        "Pyxel's examples/10_platformer.py, Pygments HTML (style monokai, line numbers), Chromium 1280x960 window",
        code_page("pyxel", "pyxel/examples/10_platformer.py", "python", "monokai", 1280, 960),
    ),
    _r(
        "screenshot/code-pygments-html-formatter-light.png",
        ("pygments221", *FONTS),
        "BSD-2-Clause (Pygments); fonts OFL-1.1",
        "Pygments 2.21.0's formatters/html.py lines 1-95, Pygments HTML (style friendly, line numbers), Chromium 1000x1500 window",
        code_page("pygments221", "pygments/formatters/html.py", "python", "friendly", 1000, 1500, first=1, last=95, font_px=13),
    ),
    _r(
        "screenshot/code-pygments-javascript-lexer-dark.png",
        ("pygments221", *FONTS),
        "BSD-2-Clause (Pygments); fonts OFL-1.1",
        "Pygments 2.21.0's lexers/javascript.py lines 1-70 in a Pygments HTML page, style github-dark, Chromium 1200x1100 window",
        code_page("pygments221", "pygments/lexers/javascript.py", "python", "github-dark", 1200, 1100, first=1, last=70, font_px=15),
    ),
    _r(
        "screenshot/terminal-git-diff.png",
        ("pygments220", "pygments221", *FONTS),
        "BSD-2-Clause (Pygments); fonts OFL-1.1",
        "`git diff --no-index --color=always` of Pygments' lexers/python.py, 2.20.0 to 2.21.0, "
        "110x48 terminal (Rich, Monokai colours), Chromium",
        terminal("git-diff", git_diff_patch, 110, 48, 1000, 890),
    ),
    _r(
        "screenshot/terminal-git-diff-stat.png",
        ("pygments220", "pygments221", *FONTS),
        "BSD-2-Clause (Pygments); fonts OFL-1.1",
        "`git diff --no-index --stat --color=always` of Pygments' lexers, 2.20.0 to 2.21.0, "
        "120x40 terminal (Rich, Monokai colours), Chromium",
        terminal("git-diff-stat", git_diff_stat, 120, 40, 1090, 750),
    ),
    _r(
        "screenshot/terminal-grep.png",
        ("pyxel", *FONTS),
        "MIT (Pyxel); fonts OFL-1.1",
        "`grep -n --color=always 'pyxel\\.\\(blt\\|bltm\\|text\\)('` over Pyxel's examples, "
        "120x44 terminal (Rich, Monokai colours), Chromium",
        terminal("grep", grep_output, 120, 44, 1090, 820),
    ),
    _r(
        "screenshot/terminal-pygmentize.png",
        ("pyxel", *FONTS),
        "MIT (Pyxel); fonts OFL-1.1",
        "Pyxel's examples/07_snake.py through Pygments' Terminal256Formatter "
        "(what `pygmentize -f terminal256 -O style=monokai` prints), 100x52 terminal",
        terminal("pygmentize", pygmentize_output, 100, 52, 920, 960),
    ),
    # icon
    *[
        _r(
            f"icon/{name}-{size}.png",
            (key,),
            licence,
            f"{what}, SVG rendered by resvg at {size}x{size}, transparent background",
            svg_icon(key, member, size),
            group=name,
        )
        for name, key, member, licence, what in ICONS
        for size in ICON_SIZES
    ],
    # chart
    _r(
        "chart/iris-scatter-matrix.png",
        ("sklearn",),
        "CC-BY-4.0 (UCI iris data)",
        "matplotlib scatter matrix with histograms of scikit-learn's iris.csv, 900x900",
        iris_scatter_matrix,
    ),
    _r(
        "chart/wine-correlation-heatmap.png",
        ("sklearn",),
        "CC-BY-4.0 (UCI wine data)",
        "matplotlib annotated heat map of the correlations of scikit-learn's wine_data.csv, 900x800",
        wine_heatmap,
    ),
    _r(
        "chart/diabetes-correlation-bars.png",
        ("sklearn",),
        "scikit-learn's diabetes data (Efron et al., 2004)",
        "matplotlib horizontal bars: each feature's correlation with the target, scikit-learn's diabetes data, 640x480",
        diabetes_bars,
    ),
    _r(
        "chart/breast-cancer-histograms.png",
        ("sklearn",),
        "CC-BY-4.0 (UCI breast cancer Wisconsin data)",
        "matplotlib overlapping translucent histograms of two features by diagnosis, scikit-learn's breast_cancer.csv, 800x500",
        breast_cancer_histograms,
    ),
    _r(
        "chart/goog-price-volume-2x.png",
        ("matplotlib",),
        "matplotlib sample data (goog.npz)",
        "matplotlib price line, range band and volume bars of matplotlib's goog.npz, 8x5 in at 200 dpi (1600x1000)",
        goog_price_volume,
    ),
    _r(
        "chart/seattle-weather-bars.png",
        ("vega", "vegalite", "vegadata", *FONTS),
        "U.S. Government data set (NOAA)",
        "Vega-Lite stacked bars of vega-datasets' seattle-weather.csv, rendered to SVG in Chromium, trimmed",
        vega_chart("seattle-weather", seattle_weather_spec, True, 900, 600),
    ),
    _r(
        "chart/stocks-lines.png",
        ("vega", "vegalite", "vegadata", *FONTS),
        "vega-datasets stocks.csv (BSD-3-Clause package)",
        "Vega-Lite multi-series line chart of vega-datasets' stocks.csv, rendered to SVG in Chromium, trimmed",
        vega_chart("stocks", stocks_spec, True, 1000, 600),
    ),
    _r(
        "chart/flare-radial-tree.png",
        ("vega", "vegadata", *FONTS),
        "vega-datasets flare.json (BSD-3-Clause package)",
        "Vega's radial tree layout example on vega-datasets' flare.json class hierarchy, SVG in Chromium, trimmed",
        vega_chart("flare-tree", flare_tree_spec, False, 800, 800),
    ),
    # map
    _r(
        "map/us-unemployment-choropleth.png",
        ("vega", "vegalite", "vegadata", *FONTS),
        "ISC (TopoJSON US Atlas, US Census Bureau boundaries); U.S. Government data set (BLS)",
        "Vega-Lite choropleth of county unemployment (us-10m.json, unemployment.tsv), Albers USA, SVG in Chromium, trimmed",
        vega_chart("us-unemployment", us_unemployment_spec, True, 1000, 700),
    ),
    _r(
        "map/world-equal-earth.png",
        ("vega", "vegalite", "vegadata", *FONTS),
        "ISC (TopoJSON World Atlas); Natural Earth: public domain",
        "Vega-Lite world map of world-110m.json countries on a graticule, Equal Earth projection, SVG in Chromium, trimmed",
        vega_chart("world", world_spec, True, 1040, 600),
    ),
    _r(
        "map/london-tube-lines.png",
        ("vega", "vegalite", "vegadata", *FONTS),
        "UK Open Government Licence (boroughs); ODbL (tube lines, OpenStreetMap contributors)",
        "Vega-Lite's London Tube Lines example (londonBoroughs, londonCentroids, londonTubeLines), SVG in Chromium, trimmed",
        vega_chart("london", london_spec, True, 900, 700),
    ),
    _r(
        "map/us-airports.png",
        ("vega", "vegalite", "vegadata", *FONTS),
        "ISC (TopoJSON US Atlas); airports.csv: Data.gov (open)",
        "Vega-Lite dot map of vega-datasets' airports.csv over US states, Albers USA, SVG in Chromium, trimmed",
        vega_chart("airports", us_airports_spec, True, 1000, 700),
    ),
    _r(
        "map/jacksboro-shaded-relief.png",
        ("matplotlib",),
        "matplotlib sample data (jacksboro_fault_dem.npz, USGS DEM)",
        "matplotlib LightSource shaded relief (gist_earth) with labelled contours of jacksboro_fault_dem.npz, 800x720",
        jacksboro_hillshade,
    ),
    _r(
        "map/topobathy.png",
        ("matplotlib",),
        "matplotlib sample data (topobathy.npz)",
        "matplotlib terrain-coloured topography and bathymetry of topobathy.npz with the coastline contour, 900x700",
        topobathy_map,
    ),
    # pixelart
    _r(
        "pixelart/kenney-tiles-sheet.png",
        ("arcade",),
        "CC0-1.0 (Kenney)",
        "arcade's spritesheets/tiles.png (Kenney platformer tiles), top 1664x1152",
        crop("arcade", f"{ARCADE}/spritesheets/tiles.png", (0, 0, 1664, 1152)),
    ),
    _r(
        "pixelart/explosion-sheet.png",
        ("arcade",),
        "CC0-1.0 (arcade resources)",
        "arcade's spritesheets/explosion.png, frames 0-5 of rows 4-7 (1536x1024 of the 4096x3584 sheet)",
        crop("arcade", f"{ARCADE}/spritesheets/explosion.png", (0, 1024, 1536, 2048)),
    ),
    _r(
        "pixelart/codepage-437-font.png",
        ("arcade",),
        "CC0-1.0 (arcade resources)",
        "arcade's spritesheets/codepage_437.png, a bitmap font sheet, as is",
        crop("arcade", f"{ARCADE}/spritesheets/codepage_437.png"),
    ),
    _r(
        "pixelart/robot-sprite-sheet.png",
        ("arcade",),
        "CC0-1.0 (Kenney)",
        "the robot's animation frames of arcade's animated_characters/robot (96x128 each), packed 8 a row",
        sprite_sheet("arcade", robot_frames, 8),
    ),
    _r(
        "pixelart/miami-car-sheet.png",
        ("arcade",),
        "ansimuz: free use and redistribution (public-license.txt)",
        "the five car frames of arcade's miami_synth_parallax/car (ansimuz), side by side",
        sprite_sheet(
            "arcade",
            lambda ctx: [
                f"{ARCADE}/miami_synth_parallax/car/car-{n}.png" for n in ("idle", "running0", "running1", "running2", "running3")
            ],
            5,
        ),
    ),
    _r(
        "pixelart/cybercity-scene.png",
        ("arcade",),
        "ansimuz: free use and redistribution (public-license.txt)",
        "arcade's cybercity_background layers (ansimuz) composed back to front, 352x192",
        cybercity_scene(1),
    ),
    _r(
        "pixelart/cybercity-scene-3x.png",
        ("arcade",),
        "ansimuz: free use and redistribution (public-license.txt)",
        "the same scene enlarged 3x by pixel repetition, as pixel art is shown on the web, 1056x576",
        cybercity_scene(3),
    ),
    _r(
        "pixelart/pyxel-sprite-bank.png",
        ("pyxel",),
        "MIT (Pyxel)",
        "image bank 0 of Pyxel's examples/assets/sample.pyxres, its used 136x136, in Pyxel's default 16 colours",
        pyxel_bank,
    ),
    _r(
        "pixelart/pyxel-urban-town.png",
        ("pyxel",),
        "MIT (Pyxel)",
        "Pyxel's examples/assets/urban_rpg.tmx, its two drawn layers (not Collision) with urban_rpg.png's 8-px tiles "
        "(magenta transparent), 464x256",
        pyxel_town,
    ),
    _r(
        "pixelart/pyxel-urban-tileset.png",
        ("pyxel",),
        "MIT (Pyxel)",
        "Pyxel's examples/assets/urban_rpg.png tile set, as is (432x296)",
        crop("pyxel", "pyxel/examples/assets/urban_rpg.png"),
    ),
    # text
    _r(
        "text/skimage-text.png",
        ("skimage",),
        "public domain (scikit-image text.png, from Wikipedia)",
        "scikit-image's data/text.png (grey), as RGB",
        grey_scan("skimage", "skimage/data/text.png"),
    ),
    _r(
        "text/skimage-page.png",
        ("skimage",),
        "BSD-3-Clause (scikit-image data)",
        "scikit-image's data/page.png, a scanned page with uneven light (grey), as RGB",
        grey_scan("skimage", "skimage/data/page.png"),
    ),
    _r(
        "text/linn-sequencer-scan.png",
        ("ocrmypdf",),
        "GFDL-1.2-or-later or CC-BY-SA-3.0 (Forat Electronics, 1985)",
        "ocrmypdf's tests/resources/linn.png (bilevel 300-dpi scan of a two-column brochure), 2250x850 crop of the columns, as RGB",
        grey_scan("ocrmypdf", "ocrmypdf-17.13.0/tests/resources/linn.png", (150, 1150, 2400, 2000)),
    ),
    _r(
        "text/typewriter-scan.png",
        ("ocrmypdf",),
        "GFDL-1.2-or-later or CC-BY-SA-1.0/2.0/2.5/3.0 (Ellywa, 2005)",
        "ocrmypdf's tests/resources/typewriter.png (bilevel typewritten recipe), top-left 1650x1200, as RGB",
        grey_scan("ocrmypdf", "ocrmypdf-17.13.0/tests/resources/typewriter.png", (0, 0, 1650, 1200)),
    ),
    _r(
        "text/baiona-scan.png",
        ("ocrmypdf",),
        "CC-BY-SA-4.0 (Euskaldunaa, 2014)",
        "ocrmypdf's tests/resources/baiona.png (multilingual text and a map, colour scan), as is",
        grey_scan("ocrmypdf", "ocrmypdf-17.13.0/tests/resources/baiona.png"),
    ),
    _r(
        "text/crom-rendered.png",
        ("ocrmypdf",),
        "CC-BY-SA-4.0 (James R. Barlow, ocrmypdf synthetic test image)",
        "ocrmypdf's tests/resources/crom.png (one rendered line, 400x50 grey), as RGB",
        grey_scan("ocrmypdf", "ocrmypdf-17.13.0/tests/resources/crom.png"),
    ),
    _r(
        "text/lgpl-book-page.png",
        ("pygame", *FONTS),
        "LGPL-2.1 text (verbatim copying permitted); fonts OFL-1.1",
        "the LGPL 2.1 text from pygame's docs set as a justified two-column serif page (Source Serif 4, 17 px), Chromium 1000x1400",
        licence_page(True, 1000, 1400),
    ),
    _r(
        "text/lgpl-plain-text.png",
        ("pygame", *FONTS),
        "LGPL-2.1 text (verbatim copying permitted); fonts OFL-1.1",
        "the LGPL 2.1 text from pygame's docs as plain monospace text (JetBrains Mono, 13 px), Chromium 760x1200",
        licence_page(False, 760, 1200),
    ),
]
