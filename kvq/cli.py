"""The ``kvq`` command: encode, decode, info, demo, bench and explore.

A door, not a codec: this module parses arguments, maps ``-`` to standard
input and output, and turns errors into exit codes. The work is done by
:mod:`kvq.fileio` (encode and decode files), :mod:`kvq.accounting` (the info
report), :mod:`kvq.demo`, :mod:`kvq.bench` and :mod:`kvq.explore`; encoder options come from
:class:`kvq.EncoderOptions`' own metadata (:func:`kvq.options.add_arguments`).

Exit status: 0 success, 1 error (bad input, corrupt file, bad option value,
I/O), 2 usage error, 99 when ``--quality`` cannot be reached (as pngquant
does). Errors are one line on standard error; no traceback reaches the user.
What the libraries underneath write to standard error (Pillow's warnings,
libtiff's own messages) is held back, and shown only with ``-v``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from .demo import DEMO_KS, SAMPLES
from .options import add_arguments, k_list

FORCE_HELP = "replace an existing output; write to standard output even when it is a terminal"
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_QUALITY = 99


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"kvq: usage error: {message} (see {self.prog} --help)\n")


def _talk_arguments(parser: argparse.ArgumentParser) -> None:
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    talk.add_argument(
        "-v", "--verbose", action="store_true", help="also show the warnings of the libraries underneath (Pillow, libtiff)"
    )


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

    enc = sub.add_parser("encode", help="encode an image (anything Pillow reads) to .kvq, or quantize it to PNG, GIF ...")
    enc.add_argument("input", help="image file, or - for standard input")
    enc.add_argument(
        "-o", "--output",
        help="output; its extension picks the format: .kvq or none for kvq, .png .gif .webp ... for the quantized "
        "image in that format (default: INPUT with suffix .kvq; - for kvq on standard output)",
    )  # fmt: skip
    add_arguments(enc)
    enc.add_argument("--strip", action="store_true", help="store no ICC profile, EXIF or resolution (kept by default)")
    enc.add_argument("-f", "--force", action="store_true", help=FORCE_HELP)
    _talk_arguments(enc)

    dec = sub.add_parser("decode", help="decode a .kvq to an image file")
    dec.add_argument("input", help=".kvq file, or - for standard input")
    dec.add_argument(
        "-o", "--output",
        help="output image; its extension picks the format (default: INPUT with suffix .png; - for PNG on standard output)",
    )  # fmt: skip
    dec.add_argument("--format", help="output format name for Pillow (overrides the extension)")
    dec.add_argument("--max-pixels", type=int, default=None, help="refuse larger images (default 178,956,970, as Pillow)")
    dec.add_argument("--strip", action="store_true", help="write no ICC profile, EXIF or resolution (kept by default)")
    dec.add_argument("-f", "--force", action="store_true", help=FORCE_HELP)
    _talk_arguments(dec)

    inf = sub.add_parser("info", help="check a whole .kvq file; show its header, palette and where its bits go")
    inf.add_argument("input", help=".kvq file, or - for standard input")
    inf.add_argument("--json", action="store_true", help="print the report as JSON (every palette entry)")

    demo = sub.add_parser("demo", help="encode a bundled sample photo at several K and print the size table")
    demo.add_argument("--image", default=SAMPLES[0], choices=SAMPLES, help=f"scikit-learn sample image (default {SAMPLES[0]})")
    demo.add_argument(
        "-k", "--colors", dest="ks", type=k_list, nargs="+", default=[list(DEMO_KS)], metavar="K[,K...]",
        help="palette sizes, comma- or space-separated (default 2,16,64,256)",
    )  # fmt: skip
    demo.add_argument("-o", "--output-dir", help="also write the .kvq files and decoded PNGs here")

    from .explore import add_arguments as explore_arguments

    explore_arguments(sub.add_parser("explore", help="write a web page that shows an image at several K, decoded in the browser"))

    bench = sub.add_parser("bench", help="benchmark suite (needs: pip install 'kvq[bench]'); kvq bench --help", add_help=False)
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


@contextlib.contextmanager
def _held_stderr(verbose: bool) -> Iterator[None]:
    """Hold back what the libraries underneath write to standard error while a command runs.

    Python warnings (Pillow's DecompressionBombWarning, "Corrupt EXIF data",
    APNG frame counts) are recorded; C libraries (libtiff) write to file
    descriptor 2 directly, so that descriptor points at a temporary file
    meanwhile, while ``sys.stderr`` keeps writing to the real standard error.
    With ``verbose`` all of it is shown afterwards; otherwise a failure prints
    its one line and a success nothing.
    """
    held = _FdHold.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        text = held.stop()
        if verbose:
            for warning in caught:
                print(f"kvq: warning: {warning.message}", file=sys.stderr)
            for line in text.splitlines():
                print(f"kvq: {line}", file=sys.stderr)


class _FdHold:
    """File descriptor 2 redirected to a temporary file; ``sys.stderr`` on a copy of the real one."""

    def __init__(self, saved: int | None = None, file: Any = None, python_stderr: Any = None) -> None:
        self.saved, self.file, self.python_stderr = saved, file, python_stderr

    @classmethod
    def start(cls) -> _FdHold:
        try:
            # Only when Python's stderr is descriptor 2 itself (not closed, not
            # replaced by a caller that captures it).
            if sys.stderr is None or sys.stderr.fileno() != 2:
                return cls()
        except (AttributeError, OSError, ValueError):
            return cls()
        sys.stderr.flush()
        # Both stay open until stop(), so no with-block can hold them.
        file = tempfile.TemporaryFile()  # noqa: SIM115
        saved = os.dup(2)
        os.dup2(file.fileno(), 2)
        python_stderr = sys.stderr
        encoding = python_stderr.encoding
        sys.stderr = open(os.dup(saved), "w", buffering=1, encoding=encoding, errors="backslashreplace")  # noqa: SIM115
        return cls(saved, file, python_stderr)

    def stop(self) -> str:
        """Put descriptor 2 and ``sys.stderr`` back; return what was held."""
        if self.saved is None:
            return ""
        sys.stderr.close()
        sys.stderr = self.python_stderr
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.file.seek(0)
        text = self.file.read().decode(errors="replace")
        self.file.close()
        return text


def _stream(name: str, direction: str, *, force: bool = False) -> Any:
    """A path as given, or standard input or output for ``-``."""
    from .errors import KvqError

    if name != "-":
        return name
    stream = sys.stdin if direction == "in" else sys.stdout
    which = "input" if direction == "in" else "output"
    if stream is None:
        # Python sets sys.stdin / sys.stdout to None when the descriptor was
        # closed before it started (kvq decode x.kvq -o - >&-).
        raise KvqError(f"standard {which} is closed")
    if direction == "out" and not force and stream.isatty():
        # As gzip does: image bytes on a terminal are never what was meant.
        raise KvqError("will not write binary data to a terminal; redirect standard output, or use -f to force")
    return stream.buffer


def _text_out() -> Any:
    """Standard output for a command whose output is its text."""
    from .errors import KvqError

    if sys.stdout is None:
        raise KvqError("standard output is closed")
    return sys.stdout


def _cmd_encode(args: argparse.Namespace) -> int:
    from .accounting import breakdown, summary
    from .fileio import KVQ, default_output, encode_file, output_format
    from .options import from_arguments

    options = from_arguments(args)
    output = args.output or default_output(args.input, ".kvq")
    destination = _stream(output, "out", force=args.force)
    source = _stream(args.input, "in")
    encoded = encode_file(source, destination, options, force=args.force, name=args.input, strip=args.strip)
    if args.quiet:
        return EXIT_OK
    where = "stdout" if output == "-" else output
    sizes = encoded.sizes if output_format(destination) == KVQ else breakdown(encoded.header, os.path.getsize(output))
    # With the file on standard output, the summary goes to standard error.
    print(summary(encoded.header, sizes, encoded.psnr, where), file=sys.stderr if output == "-" else sys.stdout)
    return EXIT_OK


def _cmd_decode(args: argparse.Namespace) -> int:
    from .container import DEFAULT_MAX_PIXELS
    from .fileio import decode_file, default_output

    output = args.output or default_output(args.input, ".png")
    max_pixels = DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
    destination = _stream(output, "out", force=args.force)
    decode_file(
        _stream(args.input, "in"), destination, args.format, max_pixels=max_pixels, force=args.force, strip=args.strip
    )
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    from .accounting import describe
    from .fileio import read_input

    out = _text_out()
    report = describe(read_input(_stream(args.input, "in")), args.input)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.text(color=_colour_terminal(out)), file=out)
    return EXIT_OK


def _colour_terminal(stream: Any) -> bool:
    # The NO_COLOR convention (no-color.org), and terminals that cannot.
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    ks = [k for group in args.ks for k in group]
    run_demo(args.image, ks, args.output_dir, out=_text_out())
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


_COMMANDS = {
    "encode": _cmd_encode, "decode": _cmd_decode, "info": _cmd_info, "demo": _cmd_demo, "bench": _cmd_bench, "explore": _cmd_explore,
}  # fmt: skip


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
        with _held_stderr(getattr(args, "verbose", False)):
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
        return _fail((exc.strerror and f"{exc.filename or ''}: {exc.strerror}".lstrip(": ")) or str(exc))
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
