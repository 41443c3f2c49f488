"""The ``kvq`` command: encode, decode, info, demo and bench.

A door, not a codec: this module parses arguments, maps ``-`` to standard
input and output, and turns errors into exit codes. The work is done by
:mod:`kvq.fileio` (encode and decode files), :mod:`kvq.accounting` (the info
report), :mod:`kvq.demo` and :mod:`kvq.bench`; encoder options come from
:class:`kvq.EncoderOptions`' own metadata (:func:`kvq.options.add_arguments`).

Exit status: 0 success, 1 error (bad input, corrupt file, I/O), 2 usage
error, 99 when ``--quality`` cannot be reached (as pngquant does).
Errors are one line on standard error; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from .demo import DEMO_KS, SAMPLES
from .options import add_arguments

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_QUALITY = 99


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"kvq: usage error: {message} (see {self.prog} --help)\n")


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
    add_arguments(enc)
    enc.add_argument("-f", "--force", action="store_true", help="replace an existing output")

    dec = sub.add_parser("decode", help="decode a .kvq to an image file")
    dec.add_argument("input", help=".kvq file, or - for standard input")
    dec.add_argument("-o", "--output", help="output image; its extension picks the format (default: INPUT with suffix .png; - for PNG on standard output)")
    dec.add_argument("--format", help="output format name for Pillow (overrides the extension)")
    dec.add_argument("--max-pixels", type=int, default=None, help="refuse larger images (default 178,956,970, as Pillow)")
    dec.add_argument("-f", "--force", action="store_true", help="replace an existing output")

    inf = sub.add_parser("info", help="show a .kvq header and where its bits go")
    inf.add_argument("input", help=".kvq file, or - for standard input")
    inf.add_argument("--json", action="store_true", help="print the report as JSON")

    demo = sub.add_parser("demo", help="encode a bundled sample photo at several K and print the size table")
    demo.add_argument("--image", default=SAMPLES[0], choices=SAMPLES, help=f"scikit-learn sample image (default {SAMPLES[0]})")
    demo.add_argument("-k", "--colors", dest="ks", type=int, nargs="+", default=list(DEMO_KS), metavar="K", help="palette sizes (default 2 16 64 256)")
    demo.add_argument("-o", "--output-dir", help="also write the .kvq files and decoded PNGs here")

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


def _stream(name: str, direction: str) -> Any:
    """A path as given, or standard input or output for ``-``."""
    if name != "-":
        return name
    return sys.stdin.buffer if direction == "in" else sys.stdout.buffer


def _cmd_encode(args: argparse.Namespace) -> int:
    from .accounting import summary
    from .fileio import default_output, encode_file
    from .options import from_arguments

    options = from_arguments(args)
    output = args.output or default_output(args.input, ".kvq")
    encoded = encode_file(_stream(args.input, "in"), _stream(output, "out"), options, force=args.force, name=args.input)
    where = "stdout" if output == "-" else output
    # With the file on standard output, the summary goes to standard error.
    print(summary(encoded.header, encoded.sizes, encoded.psnr, where), file=sys.stderr if output == "-" else sys.stdout)
    return EXIT_OK


def _cmd_decode(args: argparse.Namespace) -> int:
    from .container import DEFAULT_MAX_PIXELS
    from .fileio import decode_file, default_output

    output = args.output or default_output(args.input, ".png")
    max_pixels = DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
    decode_file(_stream(args.input, "in"), _stream(output, "out"), args.format, max_pixels=max_pixels, force=args.force)
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    from .accounting import describe
    from .fileio import read_input

    report = describe(read_input(_stream(args.input, "in")), args.input)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.text())
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.image, args.ks, args.output_dir, out=sys.stdout)
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


_COMMANDS = {"encode": _cmd_encode, "decode": _cmd_decode, "info": _cmd_info, "demo": _cmd_demo, "bench": _cmd_bench}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
