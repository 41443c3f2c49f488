"""``kvq png``: pngquant's command line, word for word, over kvq's palette.

::

    kvq png [options] [ncolors] -- pngfile [pngfile ...]
    kvq png [options] [ncolors] - >stdout <stdin

Every option pngquant 2.x documents either works with pngquant's meaning or
is refused with one line ("not supported by kvq png: --map"); the exit
statuses are pngquant's (:data:`EXIT_CODES`), and with several files the last
file's failure is the command's, as pngquant does. Files go through the one
runner of :mod:`kvq.batch` (``--jobs``, kvq's own addition).

pngquant's ``--quality`` is a 0-100 scale; :func:`quality_db` maps it onto the
PSNR kvq's ``--quality`` takes, through libimagequant's own curve from
quality to mean squared error (see its note).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import batch

#: pngquant's exit statuses (its ``pngquant_error``), as ``kvq png`` returns them.
EXIT_OK = 0
EXIT_MISSING_ARGUMENT = 1
EXIT_READ_ERROR = 2
EXIT_INVALID_ARGUMENT = 4
EXIT_NOT_OVERWRITING = 15
EXIT_CANT_WRITE = 16
EXIT_CANT_DECODE = 25
EXIT_TOO_LARGE_FILE = 98
EXIT_TOO_LOW_QUALITY = 99
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_MISSING_ARGUMENT: "no input file named",
    EXIT_READ_ERROR: "an input cannot be opened",
    EXIT_INVALID_ARGUMENT: "bad or unsupported option",
    EXIT_NOT_OVERWRITING: "the output exists (no --force)",
    EXIT_CANT_WRITE: "the output cannot be written",
    EXIT_CANT_DECODE: "an input is not an image kvq can decode",
    EXIT_TOO_LARGE_FILE: "--skip-if-larger: the result would be larger than the input (not written)",
    EXIT_TOO_LOW_QUALITY: "--quality: the minimum is not reached (not written)",
}

#: pngquant options kvq png refuses, with why.
UNSUPPORTED = {
    "--map": "a fixed palette from another image",
    "--iebug": "Internet Explorer 6's workaround (deprecated in pngquant too)",
    "--transbug": "transparent entries last, for old browsers",
    "--posterize": "palette entries of lower precision",
    "--ordered": "ordered dithering",
}


def quality_db(quality: float) -> float:
    """pngquant's quality, 0 to 100, as the PSNR (dB) kvq's ``--quality`` takes.

    libimagequant turns quality ``q`` into a largest mean squared error
    ``mse(q) = max(0, 0.016 / (0.001 + q) - 0.001) + 2.5 / (210 + q)**1.2 *
    (100.1 - q) / 100`` (``quality_to_mse``, colour components in 0..1) and
    reports it as ``mse * 65536 / 6`` per channel in bytes (its ``-v`` line
    "MSE=3.447 (Q=88)"); the PSNR of that error is ``10 log10(255² / that)``.
    So 60 is 36.9 dB, 80 is 40.3 dB, 90 is 43.5 dB; 100 is lossless (inf)
    and 0 no limit (0 dB).

    Parameters
    ----------
    quality : float
        0 to 100.

    Returns
    -------
    float
        dB; ``inf`` for 100.
    """
    if quality >= 100:
        return math.inf
    if quality <= 0:
        return 0.0
    mse = max(0.0, 0.016 / (0.001 + quality) - 0.001) + 2.5 / (210.0 + quality) ** 1.2 * (100.1 - quality) / 100.0
    return 10.0 * math.log10(255.0**2 / (mse * 65536.0 / 6.0))


def quality_of(psnr: float) -> float:
    """The inverse of :func:`quality_db`: pngquant's 0-100 quality of a PSNR (dB).

    Parameters
    ----------
    psnr : float

    Returns
    -------
    float
        0 to 100.
    """
    if psnr >= quality_db(99.999):
        return 100.0
    low, high = 0.0, 100.0
    for _ in range(50):  # quality_db rises with quality: bisection to well below 1e-10
        middle = (low + high) / 2
        low, high = (middle, high) if quality_db(middle) <= psnr else (low, middle)
    return low


def parse_quality(text: str) -> tuple[int, int]:
    """``--quality`` as pngquant reads it: ``min-max``, ``max`` (min = 90 % of it), ``-max`` or ``min-``.

    Returns
    -------
    (minimum, target) : tuple of int
    """
    import re

    match = re.fullmatch(r"(\d*)(-?)(\d*)", text.strip())
    if match is None or not (match.group(1) or match.group(3)):
        raise ValueError(text)
    low, dash, high = match.groups()
    if not dash:
        target, minimum = int(low), int(low) * 9 // 10
    elif not low:
        target, minimum = int(high), 0
    elif not high:
        target, minimum = 100, int(low)
    else:
        minimum, target = int(low), int(high)
    if not 0 <= minimum <= target <= 100:
        raise ValueError(text)
    return minimum, target


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_INVALID_ARGUMENT, f"kvq: usage error: {message} (see kvq png --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``kvq png``: pngquant's options, and ``--jobs``.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = _Parser(
        prog="kvq png",
        usage="kvq png [options] [ncolors] -- pngfile [pngfile ...]\n       kvq png [options] [ncolors] - >stdout <stdin",
        description="Quantize images to palette PNGs with pngquant's command line (ncolors 2-256, default 256). Exit "
        "status as pngquant: " + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items()) + ".",
    )
    parser.add_argument("files", nargs="*", metavar="[ncolors] file", help="images (anything Pillow reads); - for standard input")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite existing output files")
    parser.add_argument("--no-force", action="store_true", help="do not overwrite existing output files (the default)")
    parser.add_argument("--skip-if-larger", action="store_true", help="only save converted files if they're smaller than the original")
    parser.add_argument("-o", "--output", metavar="file", help="destination file path to use instead of --ext (- for standard output)")
    parser.add_argument("--ext", metavar="new.png", help="suffix for output file names (default -fs8.png, or -or8.png with --nofs)")
    parser.add_argument(
        "-Q", "--quality", metavar="min-max",
        help="use the fewest colours that reach max, and save nothing below min (0-100, pngquant's scale; see kvq.pngquant.quality_db)",
    )  # fmt: skip
    parser.add_argument("-s", "--speed", type=int, default=4, metavar="N", help="1 slow and best .. 4 default .. 11 fast and rough")
    parser.add_argument("--nofs", "--no-fs", action="store_true", help="disable Floyd-Steinberg dithering")
    parser.add_argument(
        "--floyd", type=float, nargs="?", const=1.0, default=1.0, metavar="0..1", help="dithering strength (default 1; --floyd=0.5)"
    )
    parser.add_argument("--strip", action="store_true", help="remove optional metadata (ICC profile, EXIF, resolution)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print a line per file")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors (the default)")
    parser.add_argument("-V", "--version", action="store_true", help="print the version")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N", help="kvq's own: N files at a time (0: one per CPU)")
    for name in UNSUPPORTED:
        parser.add_argument(name, nargs="?", const=True, default=None, help=argparse.SUPPRESS)
    return parser


@dataclass(frozen=True)
class PngResult(batch.FileResult):
    """A file's row, with the pngquant exit status it stands for."""

    exit: int = EXIT_OK
    shown: str = ""


@dataclass(frozen=True)
class _Settings:
    colours: int
    dither: float
    speed: int
    minimum: float | None
    target: float | None
    skip_if_larger: bool
    force: bool
    strip: bool


def main(argv: Sequence[str], ctrl_c: Any = None) -> int:
    """Run ``kvq png``.

    Parameters
    ----------
    argv : sequence of str
        The arguments after ``png``.
    ctrl_c : kvq.cli._CtrlC, optional
        The command's Ctrl-C handler (a first Ctrl-C stops starting files).

    Returns
    -------
    int
        pngquant's exit status.
    """
    parser = build_parser()
    try:
        args = parser.parse_intermixed_args(_glued(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.version:
        from . import __version__

        print(f"kvq {__version__}")
        return EXIT_OK
    for name in UNSUPPORTED:
        if getattr(args, name[2:].replace("-", "_")) is not None:
            return _fail(f"not supported by kvq png: {name} ({UNSUPPORTED[name]})", EXIT_INVALID_ARGUMENT)
    files = list(args.files)
    colours = 256
    if files and files[0].isdigit():
        colours = int(files.pop(0))
        if not 2 <= colours <= 256:
            return _fail("Number of colors must be between 2 and 256.", EXIT_INVALID_ARGUMENT)
    if not 1 <= args.speed <= 11:
        return _fail(f"{_flag(parser, 'speed')} should be between 1 (slow) and 11 (fast), not {args.speed}", EXIT_INVALID_ARGUMENT)
    if not 0.0 <= args.floyd <= 1.0:
        return _fail(f"{_flag(parser, 'floyd')} must be between 0 and 1, not {args.floyd:g}", EXIT_INVALID_ARGUMENT)
    if args.jobs < 0:
        return _fail(f"{_flag(parser, 'jobs')} must be 0 (one per CPU) or more, not {args.jobs}", EXIT_INVALID_ARGUMENT)
    minimum = target = None
    if args.quality is not None:
        try:
            low, high = parse_quality(args.quality)
        except ValueError:
            return _fail(
                f"{_flag(parser, 'quality')} should be in format min-max where min and max are numbers in range 0-100, "
                f"not {args.quality!r}",
                EXIT_INVALID_ARGUMENT,
            )
        # kvq's --quality tops out at 100 dB: reached by a lossless palette only, as pngquant's 100.
        minimum = min(quality_db(low), 100.0) if low > 0 else None
        target = min(quality_db(high), 100.0) if high > 0 else None
    if not files:
        parser.print_usage(sys.stderr)
        return EXIT_MISSING_ARGUMENT
    if args.output is not None and len(files) > 1:
        return _fail("Only one input file is allowed when --output is used.", EXIT_INVALID_ARGUMENT)
    if "-" in files and len(files) > 1:
        return _fail("- (standard input) can only be the one input.", EXIT_INVALID_ARGUMENT)
    dither = 0.0 if args.nofs else args.floyd
    ext = args.ext or ("-fs8.png" if dither > 0 else "-or8.png")
    tasks = [batch.Task(name, _output_name(name, args.output, ext)) for name in files]
    settings = _Settings(
        colours, dither, min(args.speed, 10), minimum, target, args.skip_if_larger, args.force and not args.no_force, args.strip
    )
    return _run(tasks, settings, args, ctrl_c)


def _flag(parser: argparse.ArgumentParser, dest: str) -> str:
    """The option that sets ``dest``, as this command spells it (``-s/--speed``): its messages name kvq png's flags, not kvq encode's."""
    return "/".join(next(action.option_strings for action in parser._actions if action.dest == dest))


#: Options that take a value: getopt gives them the next word whatever it starts with (--ext -min.png).
_VALUED = ("--ext", "-o", "--output", "-Q", "--quality", "-s", "--speed", "-j", "--jobs")


def _glued(argv: Sequence[str]) -> list[str]:
    """``--ext -min.png`` as ``--ext=-min.png``: argparse would take a value starting with - for an option."""
    out: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "--":
            out += [word, *words]
            break
        if word in _VALUED:
            value = next(words, None)
            out.append(word if value is None else (f"{word}={value}" if word.startswith("--") else f"{word}{value}"))
            continue
        out.append(word)
    return out


def _output_name(source: str, output: str | None, ext: str) -> str:
    """pngquant's naming: ``-o`` as given; else the input less its ``.png`` (any image suffix here) plus ``ext``."""
    if output is not None:
        return output
    if source == "-":
        return "-"
    from .paths import IMAGE_SUFFIXES

    root, suffix = os.path.splitext(source)
    return (root if suffix.lower() in IMAGE_SUFFIXES else source) + ext


def _run(tasks: list[batch.Task], settings: _Settings, args: argparse.Namespace, ctrl_c: Any) -> int:
    import contextlib
    import functools
    import threading

    from .coding import FALLBACK
    from .options import EncoderOptions

    # A PNG's indices are never stored as .kvq: the textbook coding loads no entropy coder.
    options = EncoderOptions(k=settings.colours, dither=settings.dither, speed=settings.speed, coding=FALLBACK.name)
    if "-" not in (tasks[0].source, tasks[0].target):
        from .startup import start_encode_kernels

        start_encode_kernels(args.verbose, options, tasks)
    work = functools.partial(png_task, settings=settings)
    jobs = args.jobs or os.cpu_count() or 1
    stop = threading.Event()
    status = EXIT_OK
    done = 0
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if ctrl_c is not None:
            stack.enter_context(ctrl_c.stopping(stop))
        for result in batch.run(tasks, work, jobs=None if len(tasks) == 1 else jobs, stop=stop):
            code = result.exit if isinstance(result, PngResult) else EXIT_READ_ERROR
            if result.status == batch.FAILED and code == EXIT_OK:
                code = EXIT_READ_ERROR  # a worker that died, or an error the task did not classify
            if code != EXIT_OK:
                status = code
                print(f"  error: {result.reason}", file=sys.stderr)
            else:
                done += 1
                if args.verbose and isinstance(result, PngResult):
                    print(f"{result.source}: {result.shown}", file=sys.stderr)
    if stop.is_set():
        print(f"kvq png: interrupted: {len(tasks) - done} files not done", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.verbose:
        print(f"Quantized {done} image{'s' if done != 1 else ''} in {time.perf_counter() - start:.2f} s.", file=sys.stderr)
    return status


def png_task(task: batch.Task, *, settings: _Settings) -> PngResult:
    """Quantize one file to a palette PNG as pngquant would; never raises for a bad file.

    Parameters
    ----------
    task : kvq.batch.Task
        ``-`` as source or target: standard input or output.
    settings : _Settings

    Returns
    -------
    PngResult
        Its ``exit`` is the pngquant status the file stands for.
    """
    from .errors import KvqError, QualityError, message

    start = time.perf_counter()
    source, target = task.source, task.target

    def failure(code: int, reason: str) -> PngResult:
        return PngResult(source, target, batch.FAILED, reason, seconds=time.perf_counter() - start, exit=code)

    def kept(code: int, reason: str) -> PngResult:
        """A result not saved (98, 99): to standard output, pngquant writes the original image instead ("it'd be
        nasty to create 0-byte file", pngquant.c); a PNG's own bytes, any other image as a PNG."""
        if target == "-":
            out = standard_stream(target, "out", force=True)
            original = piped
            if source != "-":
                with open(source, "rb") as fp:
                    original = fp.read()
            if original[:8] == b"\x89PNG\r\n\x1a\n":
                out.write(original)
            else:
                image.save(out, format="PNG")
            out.flush()
        return failure(code, reason)

    if target != "-" and os.path.lexists(target) and not settings.force:
        return failure(EXIT_NOT_OVERWRITING, f"'{target}' exists; not overwriting")
    from dataclasses import replace

    from .codec import Decoded, encode_image
    from .coding import FALLBACK
    from .export import write_image
    from .fileio import standard_stream, write_output
    from .inputs import display_name
    from .options import EncoderOptions
    from .pixels import open_image

    piped = b""
    original_size = None
    try:
        if source == "-":
            # Read whole here: --skip-if-larger needs the original's size, and a result not saved keeps it.
            piped = standard_stream(source, "in").read()
            original_size = len(piped)
            image = open_image(io.BytesIO(piped), name=source)
        else:
            image = open_image(standard_stream(source, "in"), name=source)
            original_size = os.path.getsize(source) if os.path.isfile(source) else None
    except (KvqError, OSError, MemoryError) as exc:
        # pngquant: 2 for a file it cannot open, 25 for one it cannot decode.
        # A file the system cannot open is an OSError (kvq's own KvqOSError included); one that opens but is no
        # image kvq reads is a KvqError of another kind.
        unopened = isinstance(exc, OSError)
        return failure(EXIT_READ_ERROR if unopened else EXIT_CANT_DECODE, message(exc))
    options = EncoderOptions(k=settings.colours, dither=settings.dither, speed=settings.speed, coding=FALLBACK.name)
    try:
        if settings.target is None:
            encoded = encode_image(image, options, strip=settings.strip)
        else:
            try:
                encoded = encode_image(image, replace(options, quality=settings.target), strip=settings.strip)
            except QualityError as exc:
                if settings.minimum is not None and exc.achieved < settings.minimum:
                    return kept(
                        EXIT_TOO_LOW_QUALITY,
                        f"{source}: {settings.colours} colours reach {exc.achieved:.2f} dB PSNR, below the minimum's "
                        f"{settings.minimum:.2f} dB; not saved",
                    )
                encoded = encode_image(image, options, strip=settings.strip)
    except (KvqError, MemoryError, ValueError) as exc:
        return failure(EXIT_READ_ERROR, f"{source}: {message(exc)}")
    decoded = Decoded(encoded.header, encoded.palette, encoded.indices, encoded.metadata)
    buffer = io.BytesIO()
    try:
        write_image(decoded, buffer, "PNG", strip=settings.strip)
    except KvqError as exc:
        return failure(EXIT_CANT_WRITE, f"{target}: {message(exc)}")
    data = buffer.getvalue()
    if settings.skip_if_larger and original_size is not None:
        # pngquant's rule: smaller than the original by at least what the quality lost,
        # (size - 1) * (quality / 100) ** 1.5.
        largest = (original_size - 1) * (quality_of(encoded.psnr) / 100.0) ** 1.5
        if len(data) > largest:
            said = f"the result ({len(data):,} bytes) would not be smaller than the original; not saved"
            return kept(EXIT_TOO_LARGE_FILE, f"{display_name(source)}: {said}")
    try:
        write_output(standard_stream(target, "out", force=True), data, force=settings.force, inputs=(source,))
    except BrokenPipeError:
        raise
    except (KvqError, OSError) as exc:
        code = EXIT_NOT_OVERWRITING if isinstance(exc, FileExistsError) else EXIT_CANT_WRITE
        return failure(code, f"{target}: {message(exc)}")
    shown = f"{encoded.header.k} colours, {len(data):,} bytes, PSNR {encoded.psnr:.2f} dB, to {target}"
    return PngResult(
        source, target, batch.DONE, width=encoded.header.width, height=encoded.header.height, k=encoded.header.k,
        bytes=len(data), psnr=encoded.psnr, seconds=time.perf_counter() - start, shown=shown,
    )  # fmt: skip


def _fail(text: str, status: int) -> int:
    print(f"kvq: {text}", file=sys.stderr)
    return status
