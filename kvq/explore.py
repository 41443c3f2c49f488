"""``kvq explore``: one self-contained HTML page that shows an image at several palette sizes.

The page embeds, for each K, the ``.kvq`` file the encoder writes (base64), and
decodes it in the browser with ``kvq/web/kvq.js``, a second decoder written
from the spec alone; so every page is also a test of that decoder. The original
is embedded as a PNG of exactly the pixels the encoder saw, for the comparison
and the PSNR. The page loads nothing from the network: no script, style or font.

>>> import numpy as np
>>> from kvq.explore import build_page
>>> html = build_page(np.zeros((4, 6, 3), dtype=np.uint8), ks=(2, 4), name="black.png")
>>> html.startswith("<!doctype html>") and "http" not in html.split("<body>")[1]
True
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import html
import io
import json
import os
import webbrowser
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from . import coding, container
from .codec import Encoded, encode_image
from .errors import OptionError
from .options import MAX_K, EncoderOptions, k_list

#: Palette sizes a page shows when none are given.
DEFAULT_KS = (2, 4, 8, 16, 32, 64, 128, 256)

#: Largest image a page is made for. Every K embeds a file of up to 2 bytes per
#: pixel, and a browser holds each decoded image in memory: past this the page
#: gets too heavy to open, and a smaller copy of the image shows K as well.
PAGE_MAX_PIXELS = 16_777_216

#: The index coding whose size the page charts beside every file (fixed width's it computes from the header): the
#: encoder's default. A page in another coding (kvq explore --coding) pays one more encode a K for it; a page in the
#: default pays none.
COMPARED_CODING = coding.DEFAULT

_SIGNATURE = bytes.fromhex("894B56510D0A1A0A")
_MARKERS = ("<!--@TITLE@-->", "<!--@DATA@-->", "<!--@KVQ_JS@-->", "<!--@EXPLORE_JS@-->")


def web_asset(name: str) -> str:
    """Text of a file shipped in ``kvq/web/`` (``kvq.js``, ``explore.js``, ``explore.html``).

    Parameters
    ----------
    name : str

    Returns
    -------
    str
    """
    return resources.files("kvq").joinpath("web").joinpath(name).read_text(encoding="utf-8")


def parse_ks(text: str) -> tuple[int, ...]:
    """Parse a list of palette sizes such as ``"2,4,8"`` (spaces allowed).

    Parameters
    ----------
    text : str

    Returns
    -------
    tuple of int
        Sorted, without repeats.

    Raises
    ------
    OptionError
        Not integers, or outside 1 to 65,536.
    """
    ks = set()
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        try:
            k = int(part)
        except ValueError:
            raise OptionError(f"K values must be integers separated by commas, not {text!r}") from None
        if not 1 <= k <= MAX_K:
            raise OptionError.about("k", f"must be between 1 and {MAX_K:,}, not {k:,}")
        ks.add(k)
    if not ks:
        raise OptionError("give at least one K, e.g. -k 2,16,256")
    return tuple(sorted(ks))


def coded_file(encoded: Encoded, name: str) -> bytes:
    """The same palette and indices in the index coding ``name``, as the encoder writes them.

    Parameters
    ----------
    encoded : Encoded
        An encoding in any coding.
    name : str
        An index coding's name (``"fixed"``, ``"entropy"``, ``"striped"``).

    Returns
    -------
    bytes
        A file in that coding, or fixed width where the encoder finds that
        smaller (as for every file it writes).
    """
    from . import codec

    if coding.by_code(encoded.header.coding) is coding.by_name(name):
        return encoded.data
    return bytes(codec.encode_indexed(palette=encoded.palette, indices=encoded.indices, coding=name))


def entropy_file(encoded: Encoded, options: EncoderOptions | None = None) -> bytes:
    """The same palette and indices in the entropy index coding (coding 1), as the encoder writes them.

    Parameters
    ----------
    encoded : Encoded
        An encoding in any coding.
    options : EncoderOptions, optional
        The options ``encoded`` was made with; the palette and indices are
        stored again as they are, so none of them changes the result.

    Returns
    -------
    bytes
        A coding-1 file, or fixed width where the encoder finds that smaller
        (as for every file it writes).
    """
    return coded_file(encoded, coding.by_code(1).name)


def coding_sizes(encoded: Encoded) -> dict[str, int]:
    """The file sizes the page charts for ``encoded``: its own, and :data:`COMPARED_CODING`'s, unless fixed width.

    Parameters
    ----------
    encoded : Encoded

    Returns
    -------
    dict of str to int
        Bytes of the file the encoder writes in each of those codings,
        keyed by the coding byte (as text, for JSON). Fixed width is left
        out (the page computes its size from the header), and so is a coding
        the encoder would not write (it stores fixed width where that is
        smaller).
    """
    sizes = {}
    for chosen in dict.fromkeys((coding.by_code(encoded.header.coding), coding.by_name(COMPARED_CODING))):
        data = coded_file(encoded, chosen.name)
        if not chosen.textbook and coding.by_code(container.parse_header(data, max_pixels=None).coding) is chosen:
            sizes[str(chosen.code)] = len(data)
    return sizes


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    channels = pixels.shape[2]
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    buffer = io.BytesIO()
    Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, mode).save(buffer, "PNG")
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _options_text(options: EncoderOptions) -> str:
    # dither is a strength from 0 to 1 (0: none, 1: full error diffusion).
    dither = "no dithering" if not options.dither else f"dithering {options.dither:g}"
    if options.method == "kmeans":
        # The engine's speed does not apply to scikit-learn's KMeans; the seed is its random_state.
        return f"palettes by scikit-learn's KMeans, seed {options.seed}, {options.color_space} clustering, {dither}"
    return f"seed {options.seed}, {options.color_space} clustering, {dither}, speed {options.speed}"


def _render(data: dict[str, Any], title: str) -> str:
    from . import __version__

    data = {"generator": f"kvq {__version__}", **data}
    # "<" is written as \u003c, so that no string in the data can close the
    # script element that holds it.
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=True).replace("<", "\\u003c")
    page = web_asset("explore.html")
    parts = {
        "<!--@TITLE@-->": html.escape(title),
        "<!--@DATA@-->": payload,
        "<!--@KVQ_JS@-->": _script_text("kvq.js"),
        "<!--@EXPLORE_JS@-->": _script_text("explore.js"),
    }
    for marker in _MARKERS:
        if page.count(marker) != 1:  # pragma: no cover - the template is part of the package
            raise RuntimeError(f"explore.html must hold {marker} once")
    for marker, text in parts.items():
        page = page.replace(marker, text)
    return page


def _script_text(name: str) -> str:
    text = web_asset(name)
    lowered = text.lower()
    if "</script" in lowered or "<script" in lowered or "<!--" in lowered:  # pragma: no cover - checked by the tests
        raise RuntimeError(f"{name} cannot be inlined in a script element")
    return text


def build_page(
    image: Any,
    ks: Sequence[int] = DEFAULT_KS,
    options: EncoderOptions | None = None,
    *,
    name: str = "image",
    max_pixels: int | None = PAGE_MAX_PIXELS,
) -> str:
    """Encode an image at each K and return the explorer page.

    Parameters
    ----------
    image : PIL.Image.Image or numpy.ndarray
        See :func:`kvq.encode`.
    ks : sequence of int, default=DEFAULT_KS
        Palette sizes, 1 to 65,536; each gets one ``.kvq`` file in the page.
    options : EncoderOptions, optional
        Everything but ``k`` (and ``quality``, which does not apply) is used
        for every K.
    name : str, default="image"
        What the page calls the image (a file name, not a path).
    max_pixels : int or None, default=PAGE_MAX_PIXELS
        Refuse larger images; None for no limit.

    Returns
    -------
    str
        The HTML page, self-contained.

    Raises
    ------
    OptionError, UnsupportedImageError
        Bad K values or options, or an image kvq cannot encode.
    ImageTooLargeError
        More than ``max_pixels`` pixels.
    """
    from .errors import ImageTooLargeError
    from .pixels import to_array

    ks = parse_ks(",".join(str(k) for k in ks)) if ks else parse_ks("")
    base = options or EncoderOptions()
    if base.quality is not None:
        raise OptionError("kvq explore shows chosen K values; --quality does not apply")
    # Checked before the pixels are converted: a 100-megapixel photo is refused at once.
    width, height = (image.shape[1], image.shape[0]) if isinstance(image, np.ndarray) else getattr(image, "size", (0, 0))
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name} is {width:,} x {height:,} = {width * height:,} pixels; a page of more than {max_pixels:,} pixels "
            "is too heavy for a browser: explore a smaller copy, or raise --max-pixels"
        )
    pixels = to_array(image)
    height, width, channels = pixels.shape
    stem = Path(name).stem or "image"
    entries = []
    for k in ks:
        chosen = dataclasses.replace(base, k=k)
        encoded = encode_image(pixels, chosen)
        entries.append(
            {
                "label": f"{k:,}",
                "name": f"{stem}-k{k}.kvq",
                "k": k,
                "file": _b64(encoded.data),
                "coding_sizes": coding_sizes(encoded),
            }
        )
    data = {
        "name": name,
        "options": _options_text(base),
        # Files dropped on the page later are held to the same limit.
        "max_pixels": max_pixels,
        "original": {"png": _b64(_png(pixels)), "width": width, "height": height, "channels": channels},
        "entries": entries,
    }
    return _render(data, f"{name} · kvq explore")


def viewer_page(files: Sequence[tuple[str, bytes]], *, max_pixels: int | None = PAGE_MAX_PIXELS) -> str:
    """A page that shows ``.kvq`` files as they are, with no original to compare.

    Parameters
    ----------
    files : sequence of (str, bytes)
        File names (not paths) and contents. Each is checked with
        :func:`kvq.decode_indexed` first, so that a broken file is reported
        here rather than in the browser.
    max_pixels : int or None, default=PAGE_MAX_PIXELS
        Refuse larger files, here and when dropped on the page; None for no
        limit.

    Returns
    -------
    str

    Raises
    ------
    FormatError
        A broken file.
    ImageTooLargeError
        A file of more than ``max_pixels`` pixels.
    """
    from .codec import decode_indexed

    entries: list[dict[str, Any]] = []
    for name, data in files:
        decode_indexed(data, max_pixels=max_pixels)
        entries.append({"label": name, "name": name, "k": None, "file": _b64(data), "coding_sizes": {}})
    title = files[0][0] if len(files) == 1 else f"{len(files)} files"
    page = {"name": title, "options": "", "max_pixels": max_pixels, "original": None, "entries": entries}
    return _render(page, f"{title} · kvq explore")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``kvq explore`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    from .options import add_arguments as encoder_arguments
    from .options import positive_int

    parser.add_argument("input", help="image file (anything Pillow reads) or .kvq file; - for standard input")
    parser.add_argument("-o", "--output", help="output page (default: INPUT with suffix .explore.html; - for standard output)")
    parser.add_argument(
        "-k", "--colors", dest="ks", default=None, action="extend", type=k_list, metavar="K,K,...",
        help=f"palette sizes, comma-separated, and -k may repeat (default {','.join(map(str, DEFAULT_KS))})",
    )  # fmt: skip
    parser.add_argument(
        "--max-pixels", type=positive_int, default=PAGE_MAX_PIXELS,
        help=f"refuse larger images, here and in .kvq files dropped on the page (default {PAGE_MAX_PIXELS:,})",
    )  # fmt: skip
    parser.add_argument("--no-open", action="store_true", help="do not open the page in the default browser")
    parser.add_argument("-f", "--force", action="store_true", help="replace an existing output")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    noise.add_argument("-v", "--verbose", action="store_true", help="also print the warnings of the libraries underneath (Pillow)")
    # The options kvq bench offers: every encoder option but k (swept here) and quality (which picks K itself).
    encoder_arguments(parser.add_argument_group("encoder options (as kvq encode)"), bench=True)


def main(args: argparse.Namespace) -> int:
    """Run ``kvq explore`` with parsed arguments; errors are raised for the CLI to report.

    Parameters
    ----------
    args : argparse.Namespace
        As :func:`add_arguments` defines them.

    Returns
    -------
    int
        0.
    """
    from .fileio import check_output, default_output, standard_stream, write_output
    from .inputs import read_all
    from .options import from_arguments
    from .pixels import open_image

    output = args.output or default_output(args.input, ".explore.html")
    if output != "-":
        # Refuse before the encodes, and again at the rename.
        check_output(output, force=args.force, inputs=(args.input,) if args.input != "-" else ())
    name = "stdin" if args.input == "-" else Path(args.input).name
    source: str | bytes | memoryview = read_all(standard_stream("-", "in")) if args.input == "-" else args.input
    if isinstance(source, str) and not os.path.isdir(source):
        with open(source, "rb") as fp:
            if fp.read(len(_SIGNATURE)) == _SIGNATURE:
                source = read_all(source)
    if isinstance(source, bytes) and source[: len(_SIGNATURE)] == _SIGNATURE:
        if args.ks is not None:
            raise OptionError(f"{name} is already a .kvq file: -k applies to images")
        page = viewer_page([(name, source)], max_pixels=args.max_pixels)
    else:
        options = from_arguments(args)
        ks = DEFAULT_KS if args.ks is None else parse_ks(",".join(map(str, args.ks)))
        page = build_page(open_image(source, name=name), ks, options, name=name, max_pixels=args.max_pixels)
    data = page.encode("utf-8")
    # The page is text: a terminal may have it (the closed-stream check still applies).
    destination = standard_stream(output, "out", force=True)
    write_output(destination, data, force=args.force, inputs=(args.input,))
    if output != "-":
        if not args.quiet:
            print(f"{output}: {len(data):,} bytes")
        if not args.no_open:
            open_in_browser(output)
    return 0


def open_in_browser(path: str) -> bool:
    """Open a page in the default browser; never fails.

    Parameters
    ----------
    path : str

    Returns
    -------
    bool
        Whether a browser took it. When none did, how to open it is printed.
    """
    uri = Path(path).resolve().as_uri()
    try:
        opened = webbrowser.open(uri)
    except Exception:  # noqa: BLE001 - a missing or broken browser must not fail a page that is written
        opened = False
    if not opened:
        print(f"no browser could be started here; open {uri} in one")
    return bool(opened)
