"""The ``kvq`` command: encode, decode, info, demo, bench and explore.

Exit status: 0 success, 1 error (bad input, corrupt file, I/O), 2 usage
error, 99 when ``--quality`` cannot be reached (as pngquant does).
Errors are one line on standard error; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path
from typing import Any, Sequence

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_QUALITY = 99

DEMO_KS = (2, 16, 64, 256)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"kvq: usage error: {message} (see {self.prog} --help)\n")


def _encoder_arguments(parser: argparse.ArgumentParser) -> None:
    from .options import COLOR_SPACES, DITHER_MODES, SPEED_RANGE

    parser.add_argument("-k", "--colors", dest="k", type=int, default=256, metavar="K", help="largest palette size, 1..65536 (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default 0)")
    parser.add_argument("--quality", type=float, default=None, metavar="DB", help=f"use the fewest colours reaching this PSNR in dB; exit {EXIT_QUALITY} if K colours cannot")
    parser.add_argument("--color-space", choices=COLOR_SPACES, default="rgb", help="space to cluster in (palette is always stored as sRGB)")
    parser.add_argument("--dither", choices=DITHER_MODES, default="none", help="error diffusion (default none)")
    parser.add_argument("--speed", type=int, default=None, metavar=f"{SPEED_RANGE[0]}-{SPEED_RANGE[1]}", help="1 slowest/best .. 10 fastest")


def _options(args: argparse.Namespace) -> Any:
    from .options import EncoderOptions

    extra = {} if args.speed is None else {"speed": args.speed}
    return EncoderOptions(k=args.k, seed=args.seed, quality=args.quality, color_space=args.color_space, dither=args.dither, **extra)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``kvq`` command.

    Returns
    -------
    argparse.ArgumentParser
    """
    from . import __version__

    parser = _Parser(prog="kvq", description="K-means palette image codec (.kvq files).")
    parser.add_argument("--version", action="version", version=f"kvq {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    enc = sub.add_parser("encode", help="encode an image (anything Pillow reads) to .kvq")
    enc.add_argument("input", help="image file, or - for standard input")
    enc.add_argument("-o", "--output", help="output .kvq (default: INPUT with suffix .kvq; - for standard output)")
    _encoder_arguments(enc)
    enc.add_argument("-f", "--force", action="store_true", help="replace an existing output")

    dec = sub.add_parser("decode", help="decode a .kvq to an image file")
    dec.add_argument("input", help=".kvq file, or - for standard input")
    dec.add_argument("-o", "--output", help="output image; its extension picks the format (default: INPUT with suffix .png; - for PNG on standard output)")
    dec.add_argument("--format", help="output format name for Pillow (overrides the extension)")
    dec.add_argument("--max-pixels", type=int, default=None, help="refuse larger images (default 178,956,970, as Pillow)")
    dec.add_argument("-f", "--force", action="store_true", help="replace an existing output")

    inf = sub.add_parser("info", help="show a .kvq header and where its bits go")
    inf.add_argument("input", help=".kvq file, or - for standard input")

    demo = sub.add_parser("demo", help="encode a bundled sample photo at several K and print the size table")
    demo.add_argument("--image", default="china.jpg", choices=("china.jpg", "flower.jpg"), help="scikit-learn sample image (default china.jpg)")
    demo.add_argument("-k", "--colors", dest="ks", type=int, nargs="+", default=list(DEMO_KS), metavar="K", help="palette sizes (default 2 16 64 256)")
    demo.add_argument("-o", "--output-dir", help="also write the .kvq files and decoded PNGs here")

    from .explore import add_arguments as explore_arguments

    explore_arguments(sub.add_parser("explore", help="write a web page that shows an image at several K, decoded in the browser"))

    bench = sub.add_parser("bench", help="benchmark suite (needs: pip install 'kvq[bench]'); kvq bench --help", add_help=False)
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kvq`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status.
    """
    from .errors import KvqError, QualityError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        if argv[:1] == ["bench"]:
            # The suite parses its own options; argparse's REMAINDER would
            # refuse the ones that come before the first path.
            args = argparse.Namespace(command="bench", rest=argv[1:])
        else:
            args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return _COMMANDS[args.command](args)
    except QualityError as exc:
        return _fail(str(exc), EXIT_QUALITY)
    except KvqError as exc:
        return _fail(str(exc))
    except FileNotFoundError as exc:
        return _fail(f"{exc.filename}: no such file")
    except IsADirectoryError as exc:
        return _fail(f"{exc.filename}: is a directory")
    except PermissionError as exc:
        return _fail(f"{exc.filename}: permission denied")
    except OSError as exc:
        return _fail(exc.strerror and f"{exc.filename or ''}: {exc.strerror}".lstrip(": ") or str(exc))
    except MemoryError:
        return _fail("out of memory")
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # noqa: BLE001 - a user must never see a traceback
        return _fail(f"internal error ({type(exc).__name__}: {exc}); please report it")


def _fail(message: str, status: int = EXIT_ERROR) -> int:
    message = " ".join(str(message).split())  # always exactly one line
    print(f"kvq: error: {message}", file=sys.stderr)
    return status


def _read_input(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    if os.path.isdir(name):
        raise IsADirectoryError(21, "is a directory", name)
    with open(name, "rb") as fp:
        return fp.read()


def _default_output(name: str, suffix: str) -> str:
    if name == "-":
        return "-"
    if os.path.isdir(name):
        raise IsADirectoryError(21, "is a directory", name)
    return str(Path(name).with_suffix(suffix))


def _write_output(name: str, content: Any, *, force: bool, inputs: tuple) -> None:
    from .fileio import atomic_write, check_output

    if name == "-":
        out = sys.stdout.buffer
        if isinstance(content, (bytes, bytearray)):
            out.write(content)
        else:
            content(out)
        out.flush()
        return
    check_output(name, force=force, inputs=tuple(i for i in inputs if i != "-"))
    atomic_write(name, content, force=force)


def _cmd_encode(args: argparse.Namespace) -> int:
    from .accounting import breakdown
    from .codec import encode_image
    from .fileio import check_output
    from .metrics import psnr
    from .pixels import open_image

    options = _options(args)
    output = args.output or _default_output(args.input, ".kvq")
    if output != "-":
        # Refuse before the (possibly long) encode, and again at the rename.
        check_output(output, force=args.force, inputs=(args.input,) if args.input != "-" else ())
    image = open_image(_read_input(args.input), name=args.input)
    encoded = encode_image(image, options)
    _write_output(output, encoded.data, force=args.force, inputs=(args.input,))
    sizes = breakdown(encoded.header, len(encoded.data))
    quality = psnr(encoded.original, encoded.pixels())
    where = "stdout" if output == "-" else output
    print(
        f"{where}: {len(encoded.data):,} bytes, {sizes.bits_per_pixel:.3f} bpp, "
        f"{sizes.factor:.2f}x smaller than {8 * encoded.header.channels}·N, "
        f"K={encoded.header.k}, PSNR {quality:.2f} dB",
        file=sys.stderr if output == "-" else sys.stdout,
    )
    return EXIT_OK


def _cmd_decode(args: argparse.Namespace) -> int:
    from PIL import Image

    from .codec import decode_indexed
    from .container import DEFAULT_MAX_PIXELS
    from .errors import KvqError
    from .fileio import check_output

    output = args.output or _default_output(args.input, ".png")
    if output != "-":
        check_output(output, force=args.force, inputs=(args.input,) if args.input != "-" else ())
    fmt = args.format
    if fmt is None:
        if output == "-":
            fmt = "PNG"
        else:
            fmt = Image.registered_extensions().get(Path(output).suffix.lower())
            if fmt is None:
                raise KvqError(f"{output}: unknown image extension; use --format or one of .png .bmp .tif .webp .gif .jpg")
    max_pixels = DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
    decoded = decode_indexed(_read_input(args.input), max_pixels)
    image = _to_pillow(decoded, fmt.upper())

    def save(fp: Any) -> None:
        try:
            # WebP is lossy unless asked; a decoder should not add loss the
            # user did not choose. JPEG has no lossless mode and stays lossy.
            image.save(fp, format=fmt, **({"lossless": True} if fmt.upper() == "WEBP" else {}))
        except (OSError, ValueError, KeyError) as exc:
            raise KvqError(f"cannot write {fmt}: {exc}") from None

    _write_output(output, save, force=args.force, inputs=(args.input,))
    return EXIT_OK


def _to_pillow(decoded: Any, fmt: str) -> Any:
    from PIL import Image

    header = decoded.header
    if fmt == "PNG" and header.k <= 256:
        # PNG-8 keeps the palette: the smallest exact file Pillow can write.
        image = Image.fromarray(decoded.indices, "P")
        palette = decoded.palette
        if header.channels == 1:
            palette = palette.repeat(3, axis=1)
        image.putpalette(palette[:, :3].tobytes(), rawmode="RGB")
        if header.channels == 4:
            image.info["transparency"] = decoded.palette[:, 3].tobytes()
        return image
    return Image.fromarray(decoded.pixels(), header.mode)


def _cmd_info(args: argparse.Namespace) -> int:
    from .accounting import breakdown
    from .container import OVERHEAD, parse

    data = _read_input(args.input)
    parsed = parse(data, max_pixels=None)
    h = parsed.header
    s = breakdown(h, len(data))
    kinds = {1: "grey", 3: "RGB", 4: "RGBA"}
    entry = 8 * h.channels
    lines = [
        f"file        {args.input}",
        f"format      kvq {h.version[0]}.{h.version[1]}, index coding {h.coding} (fixed width)",
        f"image       {h.width} x {h.height} = {h.n_pixels:,} pixels, {kinds[h.channels]} ({h.channels} channel{'s' if h.channels > 1 else ''})",
        f"palette     K = {h.k:,} entries, {h.bits} bit{'s' if h.bits != 1 else ''} per index",
        f"bytes       {len(data):,} = overhead {OVERHEAD} + palette {h.palette_size:,} + indices {h.index_size:,}"
        + (f" + ancillary {s.ancillary_bits // 8:,}" if s.ancillary_bits else ""),
        f"bits        {s.file_bits:,} ({s.bits_per_pixel:.4f} per pixel)",
        f"vs {entry}·N     {s.raw_bits:,} bits uncompressed: {s.factor:.3f}x smaller ({100 / s.factor:.2f} %)",
        f"vs theory   N·{h.bits} + {entry}·K = {s.theory_bits:,} bits; file = theory + {s.overhead_bits} overhead"
        f" + {s.padding_bits} padding" + (f" + {s.ancillary_bits:,} ancillary" if s.ancillary_bits else "") + " bits",
    ]
    for kind, body in parsed.ancillary:
        lines.append(f"ancillary   {kind.decode()} ({len(body):,} bytes)")
    print("\n".join(lines))
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from sklearn.datasets import load_sample_image

    from .accounting import breakdown
    from .codec import encode_image
    from .errors import KvqError
    from .fileio import atomic_write
    from .metrics import psnr

    for k in args.ks:
        if not 1 <= k <= 65536:
            raise KvqError(f"K must be between 1 and 65,536, not {k:,}")
    image = load_sample_image(args.image)
    height, width = image.shape[:2]
    n = height * width
    print(f"kvq demo: scikit-learn's {args.image}, {width} x {height} = {n:,} pixels, 24·N = {24 * n:,} bits")
    print(f"{'K':>6} {'bits/idx':>8} {'file bytes':>11} {'file bits':>11} {'theory bits':>12} {'bpp':>7} {'vs 24·N':>8} {'PSNR dB':>8}")
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    for k in args.ks:
        encoded = encode_image(image, k=k)
        s = breakdown(encoded.header, len(encoded.data))
        print(
            f"{k:>6} {encoded.header.bits:>8} {len(encoded.data):>11,} {s.file_bits:>11,} {s.theory_bits:>12,} "
            f"{s.bits_per_pixel:>7.3f} {s.factor:>7.2f}x {psnr(encoded.original, encoded.pixels()):>8.2f}"
        )
        if args.output_dir:
            stem = Path(args.output_dir) / f"{Path(args.image).stem}-k{k}"
            atomic_write(f"{stem}.kvq", encoded.data, force=True)
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(encoded.pixels()).save(buf, "PNG")
            atomic_write(f"{stem}.png", buf.getvalue(), force=True)
    print(f"file bits = theory + {8 * 62} bits of fixed overhead (+ < 8 padding bits); see `kvq info FILE`")
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    from .errors import KvqError

    try:
        from . import bench
    except ImportError as exc:
        message = str(exc)
        if "kvq[bench]" not in message:
            message = f"kvq bench needs the bench extra, pip install 'kvq[bench]' ({message})"
        raise KvqError(message) from None
    return bench.main(args.rest, prog="kvq bench")


def _cmd_explore(args: argparse.Namespace) -> int:
    from .explore import main as explore

    return explore(args)


_COMMANDS = {"encode": _cmd_encode, "decode": _cmd_decode, "info": _cmd_info, "demo": _cmd_demo, "bench": _cmd_bench, "explore": _cmd_explore}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
