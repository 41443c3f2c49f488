"""The ``kvq`` command: encode, decode, info, demo and bench.

A door, not a codec: this module parses arguments, maps ``-`` to standard
input and output, and turns errors into exit codes. The work is done by
:mod:`kvq.fileio` (encode and decode files), :mod:`kvq.accounting` (the info
report), :mod:`kvq.demo`, :mod:`kvq.bench` and :mod:`kvq.explore`; encoder options come from
:class:`kvq.EncoderOptions`' own metadata (:func:`kvq.options.add_arguments`).

Several inputs or a folder make a batch (:mod:`kvq.batch`): files are done
one after another, on ``--jobs`` worker processes or on a Dask cluster
(``--scheduler``); a file that fails is listed at the end and the others are
done; outputs that are already there and valid are kept, so the same command
resumes an interrupted batch.

Exit status: 0 success; 1 error (bad input, corrupt file, I/O; in a batch:
an error that stopped the whole batch); 2 usage error; 3 some files of a
batch failed (listed on standard error), the others were done; 99 when
``--quality`` cannot be reached for the one input (as pngquant does); 130
interrupted (Ctrl-C); 141 standard output closed early (as after SIGPIPE).
Errors are one line on standard error; no traceback reaches the user.
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
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .demo import DEMO_KS, SAMPLES
from .options import add_arguments, k_list, positive_int

FORCE_HELP = "replace an existing output; write to standard output even when it is a terminal"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SOME_FAILED = 3
EXIT_QUALITY = 99
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class UsageError(Exception):
    """Arguments that parse but cannot go together; exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors and exit status 2."""

    #: The parsers of the subcommands, by name (set on the top parser by build_parser).
    commands: dict[str, argparse.ArgumentParser] | None = None

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"kvq: usage error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            # argparse refuses them from the top parser, whose help ("see kvq --help") lists only the commands:
            # the command's own parser names its own help (kvq encode --help).
            command = (self.commands or {}).get(getattr(parsed, "command", None) or "", self)
            command.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed


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

    enc = sub.add_parser("encode", help="encode images (anything Pillow reads) to .kvq, or quantize them to PNG, GIF ...")
    enc.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files or folders (every image below, recursively), or - for standard input"
    )
    enc.add_argument(
        "-o",
        "--output",
        help="output for one input file; its extension picks the format: .kvq or none for kvq, .png .gif .webp ... for "
        "the quantized image in that format (default: INPUT with suffix .kvq; - for kvq on standard output); "
        "for several inputs or a folder, an output folder that mirrors the inputs' tree (default: beside each input)",
    )
    add_arguments(enc)
    enc.add_argument(
        "--format", help="for several inputs or a folder: write the quantized images in this format (png, gif, bmp, tif, webp ...) "
        "instead of .kvq files; for one input, the output's format when -o is not given",
    )  # fmt: skip
    enc.add_argument("--strip", action="store_true", help="store no ICC profile, EXIF or resolution (kept by default)")
    _batch_arguments(enc, "encode")

    dec = sub.add_parser("decode", help="decode .kvq files to image files")
    dec.add_argument(
        "inputs", nargs="+", metavar="INPUT", help=".kvq files or folders (every .kvq below, recursively), or - for standard input"
    )
    dec.add_argument(
        "-o",
        "--output",
        help="output image for one input file; its extension picks the format (default: INPUT with suffix .png; - for PNG on "
        "standard output); for several inputs or a folder, an output folder (default: beside each input)",
    )
    dec.add_argument(
        "--format", help="output format name for Pillow (overrides the extension; default PNG, and without -o the output's suffix)"
    )
    dec.add_argument(
        "--max-pixels", type=positive_int, default=None, metavar="N", help="refuse larger images (default 178,956,970, as Pillow)"
    )
    dec.add_argument("--strip", action="store_true", help="write no ICC profile, EXIF or resolution (kept by default)")
    dec.add_argument(
        "--threads", type=positive_int, default=None, metavar="N",
        help="threads a file decodes on (coding 2's stripes; default: every core this process may use)",
    )  # fmt: skip
    _batch_arguments(dec, "decode")

    inf = sub.add_parser("info", help="check whole .kvq files; show their header, palette and where their bits go")
    inf.add_argument("inputs", nargs="+", metavar="INPUT", help=".kvq files or folders of them, or - for standard input")
    inf.add_argument(
        "--json", action="store_true", help="print the report as JSON (every palette entry); for several files one record per line"
    )

    demo = sub.add_parser("demo", help="encode a bundled sample photo at several K and print the size table")
    demo.add_argument("--image", default=SAMPLES[0], choices=SAMPLES, help=f"scikit-learn sample image (default {SAMPLES[0]})")
    demo.add_argument(
        "-k", "--colors", dest="ks", type=k_list, nargs="+", default=[list(DEMO_KS)], metavar="K[,K...]",
        help="palette sizes, comma- or space-separated (default 2,16,64,256)",
    )  # fmt: skip
    demo.add_argument("-o", "--output-dir", help="also write the .kvq files and decoded PNGs here")
    demo.add_argument("-f", "--force", action="store_true", help="replace files of the same names in the -o folder")

    from .explore import add_arguments as explore_arguments

    explore_arguments(sub.add_parser("explore", help="write a web page that shows an image at several K, decoded in the browser"))

    sub.add_parser(
        "png", help="pngquant's command line, word for word: kvq png [options] [ncolors] -- file ... (kvq png --help)", add_help=False
    ).add_argument("rest", nargs=argparse.REMAINDER)

    bench = sub.add_parser("bench", help="benchmark suite (needs: pip install 'kvq[bench]'); kvq bench --help", add_help=False)
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    parser.commands = dict(sub.choices)
    return parser


def _batch_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("-f", "--force", action="store_true", help=FORCE_HELP + " (never an input)")
    parser.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep an output that is already there and valid instead of failing (always on for several inputs or a folder)",
    )
    parser.add_argument(
        "-j", "--jobs", type=int, default=1, metavar="N", help=f"{verb} N files at a time in worker processes (0: one per CPU; default 1)"
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the batch on a Dask cluster, such as tcp://host:8786 (needs kvq[dask]; workers must see the same paths)",
    )
    parser.add_argument("--manifest", metavar="FILE", help="write one row per file to FILE (.csv or .json), atomically")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    noise.add_argument(
        "-v", "--verbose", action="store_true", help="print a line per file, and the warnings of the libraries underneath (Pillow, libtiff)"
    )


@contextlib.contextmanager
def _held_stderr(verbose: bool) -> Iterator[None]:
    """Hold back what the libraries underneath write to standard error while a command runs.

    Python warnings (Pillow's DecompressionBombWarning, "Corrupt EXIF data",
    APNG frame counts) and what libraries log where nobody set up logging
    (Pillow's TIFF plugin: "More samples per pixel than can be decoded") are
    recorded; C libraries (libtiff) write to file descriptor 2 directly, so that descriptor points at a temporary file
    meanwhile, while ``sys.stderr`` keeps writing to the real standard error.
    With ``verbose`` all of it is shown afterwards; otherwise a failure prints
    its one line and a success nothing.
    """
    from .batch import library_logs

    held = _FdHold.start()
    logged: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught, library_logs(logged):
            warnings.simplefilter("always")
            yield
    finally:
        text = held.stop()
        if verbose:
            for warning in caught:
                print(f"kvq: warning: {warning.message}", file=sys.stderr)
            for line in [*logged, *text.splitlines()]:
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
        # A library that complains about every file of a million-file batch
        # must not fill memory here: the first lines are the telling ones.
        size = self.file.seek(0, os.SEEK_END)
        self.file.seek(0)
        kept = self.file.read(_HELD_LIMIT)
        self.file.close()
        if size > _HELD_LIMIT:
            # Whole lines where there are any; else whole characters.
            end = kept.rfind(b"\n") + 1
            kept, newline = (kept[:end], "") if end else (kept.decode(errors="ignore").encode(), "\n")
            return kept.decode(errors="replace") + f"{newline}... and {size - len(kept):,} more bytes of messages\n"
        return kept.decode(errors="replace")


#: Bytes of held-back messages shown with -v.
_HELD_LIMIT = 64 * 1024


def _stream(name: str, direction: str, *, force: bool = False) -> Any:
    """A path as given, or standard input or output for ``-``."""
    from .fileio import standard_stream

    return standard_stream(name, direction, force=force)


def _text_out() -> Any:
    """Standard output for a command whose output is its text."""
    from .errors import KvqError

    if sys.stdout is None:
        raise KvqError("standard output is closed")
    return sys.stdout


def _is_batch(args: argparse.Namespace) -> bool:
    """Several inputs, a folder, or an output folder: a batch; else the one-file command."""
    output = args.output or ""
    if len(args.inputs) > 1 or any(os.path.isdir(name) for name in args.inputs):
        return True
    return bool(output) and output != "-" and (os.path.isdir(output) or output.endswith(("/", os.sep)))


def _jobs(args: argparse.Namespace) -> int:
    """Worker processes ``--jobs`` asks for: the one rule of the one-file command and of a batch."""
    if args.jobs < 0:
        raise UsageError(f"--jobs must be 0 (one per CPU) or more, not {args.jobs}")
    return args.jobs or os.cpu_count() or 1


def _cmd_encode(args: argparse.Namespace) -> int:
    from .options import from_arguments

    options = from_arguments(args)
    jobs = _jobs(args)
    if _is_batch(args):
        return _run_batch(args, "encode", jobs, options=options)
    return _run_one(args, "encode", options=options)


def _encode_suffix(args: argparse.Namespace) -> str:
    """The suffix of ``kvq encode``'s outputs: ``.kvq``, or that of ``--format`` (``png`` -> ``.png``)."""
    from .formats import KVQ, KVQ_SUFFIX, _pillow_format, suffix_for

    fmt = getattr(args, "format", None)
    if fmt is None or fmt.upper() in (KVQ, KVQ_SUFFIX[1:].upper()):
        return KVQ_SUFFIX
    # A format name (PNG, TIFF) or an extension's (png, tif, jpg).
    return suffix_for(_pillow_format("." + fmt.lower().lstrip(".")) or fmt)


def _cmd_decode(args: argparse.Namespace) -> int:
    from .container import DEFAULT_MAX_PIXELS

    max_pixels = DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
    jobs = _jobs(args)
    if _is_batch(args):
        return _run_batch(args, "decode", jobs, max_pixels=max_pixels)
    return _run_one(args, "decode", max_pixels=max_pixels)


def _run_one(args: argparse.Namespace, verb: str, **settings: Any) -> int:
    """One file: a batch of one through the batch's runner, its error the command's (message and exit status)."""
    import functools

    from . import batch
    from .fileio import default_output
    from .formats import suffix_for
    from .progress import Ticker

    source = args.inputs[0]
    # A decode's default name carries the format's suffix, as a batch's outputs do (--format webp: photo.webp).
    output = args.output or default_output(source, _encode_suffix(args) if verb == "encode" else suffix_for(args.format or "PNG"))
    task = batch.Task(source, output)
    # Whether an output there may be kept: then nothing is compiled, read or written.
    skipping = args.skip_existing and not args.force and "-" not in (source, output) and os.path.lexists(output)
    encoded: list[Any] = []
    ticker = Ticker(f"{verb[:-1]}ing {source}", enabled=None if not args.quiet else False)
    _stream(output, "out", force=args.force)  # binary data is refused for a terminal before any work
    if verb == "encode":
        if not skipping:
            _start_encode_kernels(args, settings["options"], [task])
        work = functools.partial(
            batch.encode_task, options=settings["options"], skip_existing=args.skip_existing, force=args.force, strip=args.strip,
            folders=False, raise_errors=True, on_stage=ticker.stage, on_encoded=encoded.append,
        )  # fmt: skip
    else:
        # An output there is compared with the decoding, so the kernels are needed whether or not it is kept.
        coding = None if not os.path.isfile(source) else _compiled_coding(source)  # a pipe's header is read once
        if coding is not None:
            _start_kernels(args, coding=coding)
        work = functools.partial(
            batch.decode_task, format=args.format, max_pixels=settings["max_pixels"], skip_existing=args.skip_existing,
            force=args.force, strip=args.strip, folders=False, raise_errors=True, threads=args.threads,
            keep_other_images=args.output is None and source != "-",
        )  # fmt: skip
    result = _one_file(args, verb, task, work, ticker)
    if result.status == batch.SKIPPED:
        if not args.quiet:
            print(f"{output}: exists and is valid, skipped")
        return EXIT_OK
    if verb == "encode" and not args.quiet and (output != "-" or args.verbose):
        _print_summary(encoded[0], output)
    return EXIT_OK


def _one_file(args: argparse.Namespace, verb: str, task: Any, work: Any, ticker: Any) -> Any:
    """Run the one file through the batch's runner; its manifest row is written whether it is done or failed."""
    from . import batch

    writer = None
    if args.manifest:
        from .manifest import ManifestWriter

        writer = ManifestWriter(args.manifest, verb, force=args.force)
    start = time.perf_counter()
    try:
        with ticker, _naming(task.source) if verb == "decode" else _naming_quality(task.source):
            (result,) = batch.run([task], work)
    except BaseException as exc:
        if writer is not None:
            writer.add(batch.failed(task, exc, time.perf_counter() - start))
            writer.close()
        raise
    if writer is not None:
        writer.add(result)
        writer.close()
    return result


def _print_summary(encoded: Any, output: str) -> None:
    """The one line ``kvq encode`` prints about the file it wrote; none when the file went to standard output.

    Standard output is then the file, and a success prints nothing on standard error; ``-v`` prints it there.
    """
    from .accounting import breakdown
    from .fileio import measured_psnr
    from .formats import KVQ, encode_format
    from .report import summary

    where = "stdout" if output == "-" else output
    sizes = encoded.sizes if output == "-" or encode_format(output) == KVQ else breakdown(encoded.header, os.path.getsize(output))
    # The file as written: a JPEG's own loss included (measured_psnr).
    quality = encoded.psnr if output == "-" else measured_psnr(encoded, output)
    print(summary(encoded.header, sizes, quality, where), file=sys.stderr if output == "-" else sys.stdout)


@contextlib.contextmanager
def _naming(source: str) -> Iterator[None]:
    """Name the file in the one error line of a bad or too large ``.kvq`` input, as kvq encode names a bad image."""
    from .errors import FormatError, ImageTooLargeError, message
    from .inputs import display_name

    try:
        yield
    except (FormatError, ImageTooLargeError) as exc:
        raise type(exc)(f"{display_name(source)}: {message(exc)}") from None


@contextlib.contextmanager
def _naming_quality(source: str) -> Iterator[None]:
    """Name the input whose quality target was missed: the codec that raised it saw pixels, not a file."""
    from .errors import QualityError, message
    from .inputs import display_name

    try:
        yield
    except QualityError as exc:
        raise QualityError(f"{display_name(source)}: {message(exc)}", exc.achieved) from None


def _start_kernels(args: argparse.Namespace, options: Any = None, coding: Any = None) -> None:
    """Compile, or load from the cache, the kernels the command will run (:func:`kvq.startup.start_kernels`)."""
    from .startup import start_kernels

    start_kernels(_watched(args), options, coding)


def _start_encode_kernels(args: argparse.Namespace, options: Any, tasks: Sequence[Any]) -> None:
    """Start the kernels encoding ``tasks`` will run, if any (:func:`kvq.startup.start_encode_kernels`)."""
    from .startup import start_encode_kernels

    start_encode_kernels(_watched(args), options, tasks)


def _watched(args: argparse.Namespace) -> bool:
    """Whether someone watches the command's standard error: -v, or a terminal without -q."""
    return getattr(args, "verbose", False) or (not getattr(args, "quiet", False) and _is_terminal(sys.stderr))


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


def _compiled_coding(source: str) -> Any:
    """The index coding of a file, from its header, when it runs compiled kernels; else None."""
    from . import coding
    from .codec import read_header
    from .errors import KvqError

    try:
        found = coding.by_code(read_header(source, max_pixels=None).coding)
    except (KvqError, OSError):
        return None  # decode_file reports it
    return found if found.compiled else None


def _run_batch(args: argparse.Namespace, verb: str, jobs: int, **settings: Any) -> int:
    """Run a batch with a progress bar, a manifest and the failures listed at the end."""
    import functools

    from . import batch
    from .errors import KvqError
    from .fileio import check_writable
    from .progress import ProgressBar

    if "-" in args.inputs:
        raise UsageError("- (standard input) can only be the one input")
    if args.output == "-":
        raise UsageError("- (standard output) takes one file; name an output folder")
    if args.scheduler and args.jobs != 1:
        raise UsageError("--jobs and --scheduler do not go together: the cluster's workers do the work")
    if args.output and os.path.lexists(args.output) and not os.path.isdir(args.output):
        # Once, rather than one failure a file.
        raise KvqError(f"output {args.output} is a file; several inputs or a folder need an output folder")
    if verb == "encode":
        suffix, find, what = _encode_suffix(args), batch.IMAGE_SUFFIXES, "image"
        work = functools.partial(batch.encode_task, options=settings["options"], force=args.force, strip=args.strip)
    else:
        fmt = args.format or "PNG"
        suffix, find, what = batch.suffix_for(fmt), batch.KVQ_SUFFIXES, ".kvq"
        work = functools.partial(
            batch.decode_task, format=fmt, max_pixels=settings["max_pixels"], force=args.force, strip=args.strip, threads=args.threads,
            keep_other_images=True,
        )  # fmt: skip
    tasks = batch.plan(args.inputs, args.output, suffix=suffix, find=find)
    if not tasks:
        raise KvqError(f"{' '.join(args.inputs)}: directory holds no {what} files (looked for {' '.join(find)})")
    # Once, before the first file's work, rather than one failure a file after all of it (a read-only folder);
    # a finished batch run again into a folder that has become read-only only finds its outputs there.
    for folder in dict.fromkeys(os.path.dirname(t.target) for t in tasks if args.force or not os.path.lexists(t.target)):
        check_writable(folder)
    failures: list[batch.FileResult] = []
    stop = threading.Event()
    at_once = False
    start = time.perf_counter()
    bar = ProgressBar(len(tasks), verb, enabled=False if args.quiet else None)
    with contextlib.ExitStack() as stack:
        manifest = None
        if args.manifest:
            from .manifest import ManifestWriter

            # Written on success and on Ctrl-C (once or twice), removed after an error.
            manifest = stack.enter_context(ManifestWriter(args.manifest, verb, force=args.force))
        client = stack.enter_context(_dask_client(args.scheduler)) if args.scheduler else None
        stack.enter_context(bar)
        if client is None and jobs == 1:
            # One file after another in this process: numpy's BLAS threads
            # (one per core) spin more than they help on these small matrices
            # (12 Kodak photos: 6.4 s of CPU with them, 4.0 s without), as in
            # the pool's workers (kvq.batch.process_pool).
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(1))
        if client is None:
            # Before the pool forks its workers, which then start with the kernels loaded,
            # and before any file's time is taken. A decode looks at its first file only:
            # a folder is usually one kind.
            if verb == "encode":
                _start_encode_kernels(args, settings["options"], tasks)
            elif (coding := _compiled_coding(tasks[0].source)) is not None:
                _start_kernels(args, coding=coding)
        # Ctrl-C now stops the batch: no file starts, those in hand finish and are reported.
        message = "kvq: stopping after the files in hand; Ctrl-C again to stop now"
        stack.enter_context(args.ctrl_c.stopping(stop, None if args.quiet else functools.partial(bar.say_now, message)))
        running = batch.run(tasks, work, executor=client, jobs=None if client else jobs, stop=stop)
        results = stack.enter_context(contextlib.closing(running))
        try:
            for result in results:
                bar.update(result.status)
                if manifest is not None:
                    manifest.add(result)
                if result.status == batch.FAILED:
                    failures.append(result)
                elif args.verbose:
                    bar.write(_result_line(result, verb), stream=sys.stdout)
                if args.verbose and result.warnings:
                    for line in result.warnings.splitlines():
                        bar.write(f"kvq: warning: {result.source}: {line}", stream=sys.stderr)
        except KeyboardInterrupt:
            # A second Ctrl-C: the batch stops at once, wherever it landed (inside the runner, or here).
            at_once = True
            with contextlib.suppress(KeyboardInterrupt, StopIteration):
                running.throw(KeyboardInterrupt())
    for result in failures:
        reason = result.reason.removeprefix(f"{result.source}: ")
        print(f"kvq: failed: {result.source}: {reason}", file=sys.stderr)
    done = bar.count - bar.skipped - bar.failed
    interrupted = at_once or stop.is_set()
    # A success is silent on standard error unless someone watches it (a
    # terminal) or asked (-v), as for one file; failures always get the count.
    watched = args.verbose or (sys.stderr is not None and sys.stderr.isatty())
    if not args.quiet and (failures or interrupted or watched):
        print(
            f"kvq {verb}: {done:,} done, {bar.skipped:,} skipped (already there), {bar.failed:,} failed"
            f" of {len(tasks):,} files in {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )
    if interrupted:
        left = len(tasks) - bar.count
        if at_once and manifest is not None:
            # The files in hand were stopped mid-way, their temporary files removed; one that was being
            # put in place at that moment may be there without its row. The rerun finds it either way.
            print(
                f"kvq: stopped at once: {left:,} files not done; the manifest lists the {bar.count:,} files reported, and an"
                " output being put in place at that moment may be on disk without its row; run the same command again to resume",
                file=sys.stderr,
            )
        else:
            print(f"kvq: interrupted: {left:,} files not done; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if failures else EXIT_OK


def _result_line(result: Any, verb: str) -> str:
    if result.status == "skipped":
        return f"{result.target}: exists and is valid, skipped"
    if verb == "decode":
        return f"{result.target}: {result.width} x {result.height}, K={result.k}, from {result.source} ({result.seconds:.2f} s)"
    line = f"{result.target}: {result.bytes:,} bytes, {result.bits_per_pixel:.3f} bpp, K={result.k}"
    if result.psnr is not None:
        line += f", PSNR {result.psnr:.2f} dB"
    return f"{line} ({result.seconds:.2f} s)"


def _dask_client(address: str) -> Any:
    from .errors import KvqError

    try:
        from distributed import Client
    except ImportError:
        raise KvqError("--scheduler needs Dask: pip install 'kvq[dask]'") from None
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise KvqError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def _cmd_info(args: argparse.Namespace) -> int:
    from . import batch
    from .errors import KvqError
    from .inputs import read_all
    from .report import describe

    if len(args.inputs) == 1 and not os.path.isdir(args.inputs[0]):
        out = _text_out()
        with _naming(args.inputs[0]):
            report = describe(read_all(_stream(args.inputs[0], "in")), args.inputs[0])
        # One line, as each file's record of several: `kvq info *.kvq --json` reads the same whatever the glob matched.
        print(json.dumps(report.as_dict()) if args.json else report.text(color=_colour_terminal(out)), file=out)
        return EXIT_OK
    if "-" in args.inputs:
        raise UsageError("- (standard input) can only be the one input")
    tasks = batch.plan(args.inputs, None, suffix=".kvq", find=batch.KVQ_SUFFIXES)
    if not tasks:
        raise KvqError(f"{' '.join(args.inputs)}: directory holds no .kvq files")
    failed = 0
    for number, task in enumerate(tasks):
        try:
            report = describe(read_all(task.source), task.source)
        except (KvqError, OSError, MemoryError) as exc:
            failed += 1
            reason = batch.reason(exc).removeprefix(f"{task.source}: ")
            print(f"kvq: failed: {task.source}: {reason}", file=sys.stderr)
            if args.json:
                print(json.dumps({"file": task.source, "error": reason}))
            continue
        if args.json:
            print(json.dumps(report.as_dict()))
        else:
            print(("\n" if number else "") + report.text(color=_colour_terminal(sys.stdout)))
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _colour_terminal(stream: Any) -> bool:
    # The NO_COLOR convention (no-color.org), and terminals that cannot.
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    ks = [k for group in args.ks for k in group]
    run_demo(args.image, ks, args.output_dir, force=args.force, out=_text_out())
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    from .errors import KvqError

    try:
        # The command line only: it answers --help, and says what to install before a run, without the extra.
        from .bench.cli import main as bench
    except ImportError as exc:
        message = str(exc)
        if "kvq[bench]" not in message:
            message = f"kvq bench needs the bench extra, pip install 'kvq[bench]' ({message})"
        raise KvqError(message) from None
    return bench(args.rest, prog="kvq bench")


def _cmd_explore(args: argparse.Namespace) -> int:
    from .explore import main as explore

    with _naming(args.input):
        return explore(args)


_COMMANDS = {
    "encode": _cmd_encode, "decode": _cmd_decode, "info": _cmd_info, "demo": _cmd_demo, "bench": _cmd_bench, "explore": _cmd_explore,
}  # fmt: skip


class _CtrlC:
    """The command's SIGINT handler: Ctrl-C stops it at once, but the first one during a batch stops the batch.

    Stopping a batch (:meth:`stopping`) sets its flag: no new file starts, the
    files in hand finish and are reported, the manifest lists exactly the
    outputs on disk. A second Ctrl-C raises KeyboardInterrupt, as Python's
    own handler does. The library never touches signals; this is the
    command's own, installed for its run and put back on the way out.
    """

    def __init__(self) -> None:
        self.stop: threading.Event | None = None
        self.on_stop: Callable[[], None] | None = None
        self.raised = False
        self.pressed = False

    def __call__(self, signum: int, frame: object) -> None:
        self.pressed = True
        if self.stop is not None and not self.stop.is_set():
            self.stop.set()
            if self.on_stop is not None:
                self.on_stop()  # said now, not once the files in hand have finished
            return
        if self.raised:
            # Stopping at once already: a KeyboardInterrupt now would land in the clean-up (the workers being
            # stopped, the manifest written, the pool's threads joined at exit) and could leave it half done,
            # the exit then waiting for ever on a worker or a lock. The clean-up is bounded; let it finish.
            return
        self.raised = True
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self, exiting: bool = False) -> Iterator[_CtrlC]:
        """For the length of the command, in place of Python's own handler (only from there: a caller's, or SIGINT ignored, stays).

        ``exiting``: the process ends with the command (its own ``kvq``
        process). Once Ctrl-C has been pressed, SIGINT is then left ignored
        rather than Python's handler put back: a KeyboardInterrupt in the
        interpreter's exit would interrupt the joining of a process pool's
        threads and workers (a wait for ever, or death by SIGINT in place of
        status 130).
        """
        import signal

        if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            yield self
            return
        signal.signal(signal.SIGINT, self)
        try:
            yield self
        finally:
            # A Ctrl-C here would raise before Python's handler is back: put it back whatever comes.
            afterwards = self._afterwards
            while signal.getsignal(signal.SIGINT) is self:
                with contextlib.suppress(KeyboardInterrupt):
                    signal.signal(signal.SIGINT, afterwards(exiting))

    def _afterwards(self, exiting: bool) -> Any:
        import signal

        return signal.SIG_IGN if exiting and self.pressed else signal.default_int_handler

    @contextlib.contextmanager
    def stopping(self, stop: threading.Event, said: Callable[[], None] | None = None) -> Iterator[None]:
        """Inside, the first Ctrl-C sets ``stop`` instead of raising, and calls ``said`` (from the signal handler)."""
        self.stop, self.on_stop = stop, said
        try:
            yield
        finally:
            self.stop, self.on_stop = None, None


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
    # Called with no arguments, as the kvq command's own process runs it (kvq, python -m kvq): the process ends with it.
    with _CtrlC().installed(exiting=argv is None) as ctrl_c:
        return _main(argv, ctrl_c)


def _main(argv: Sequence[str] | None, ctrl_c: _CtrlC) -> int:
    from .errors import OptionError, QualityError, caused_by_ctrl_c, message
    from .options import command_flags

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["png"]:
        return _png(argv[1:], ctrl_c)
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
    args.ctrl_c = ctrl_c
    try:
        with _held_stderr(getattr(args, "verbose", False)):
            return _COMMANDS[args.command](args)
    except UsageError as exc:
        return _fail(f"usage error: {exc} (see kvq {args.command} --help)", EXIT_USAGE, prefix="kvq: ")
    except BrokenPipeError:
        # Standard output closed early (kvq info DIR | head): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except QualityError as exc:
        return _fail(message(exc), EXIT_QUALITY)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except (Exception, MemoryError) as exc:  # noqa: BLE001 - a user must never see a traceback
        if caused_by_ctrl_c(exc) or (ctrl_c.raised and isinstance(exc, SystemError)):
            # Ctrl-C inside a compiled kernel arrives as a SystemError, its KeyboardInterrupt chained or not.
            return _fail("interrupted", EXIT_INTERRUPTED)
        if isinstance(exc, OptionError):
            # Every command that takes an encoder option (encode, explore, demo's -k) declares its flags from the
            # one declaration: an option refused below the command (a K of kvq demo) is named by that flag too.
            exc.spelled(command_flags())
        return _fail(message(exc))


def _png(argv: list[str], ctrl_c: _CtrlC) -> int:
    """``kvq png``: pngquant's command line, parsed as pngquant parses it (:mod:`kvq.pngquant`), its exit statuses."""
    from . import pngquant
    from .errors import caused_by_ctrl_c, message

    try:
        with _held_stderr(False):
            return pngquant.main(argv, ctrl_c)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except (Exception, MemoryError) as exc:  # noqa: BLE001 - a user must never see a traceback
        if caused_by_ctrl_c(exc) or (ctrl_c.raised and isinstance(exc, SystemError)):
            return _fail("interrupted", EXIT_INTERRUPTED)
        return _fail(message(exc))


def _fail(message: str, status: int = EXIT_ERROR, prefix: str = "kvq: error: ") -> int:
    message = " ".join(str(message).split())  # always exactly one line
    print(f"{prefix}{message}", file=sys.stderr)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
