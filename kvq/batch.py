"""Many files in one call: encode or decode lists of paths and folder trees.

The work is one function per file (:func:`encode_task`, :func:`decode_task`),
which never raises for a bad file but returns a :class:`FileResult` saying what
went wrong, and one runner, :func:`run`, that hands it to an executor: this
process (one file after another), a process pool of kvq's own (``jobs=N``), a
caller's :class:`concurrent.futures.Executor`, or a Dask ``distributed.Client``
through its executor. The ``kvq`` command runs a single file the same way, as
a batch of one.

>>> import kvq.batch                                           # doctest: +SKIP
>>> for result in kvq.batch.encode_files(["photos/"], "out/", k=64, jobs=2):
...     print(result.source, result.status, result.reason)

Rules the runner keeps, whatever runs the work:

- A file's output is written through a temporary sibling and renamed into
  place (:func:`kvq.fileio.atomic_write`), so an interrupted batch leaves
  complete outputs and nothing half-written under an output's name.
- An output that exists is skipped when it is valid (a ``.kvq`` that parses
  with every CRC and has the input's size; an image Pillow verifies with the
  ``.kvq``'s size), so running the same command again resumes an interrupted
  batch. ``force=True`` redoes every file; an existing output that is not
  valid is never replaced without it.
- At most a few tasks per worker are in flight, so a million-file folder does
  not become a million futures, and a result is released as soon as it has
  arrived: a Dask worker that dies loses no finished work.
- Stopping is the caller's: ``stop`` is anything with ``is_set()`` (a
  :class:`threading.Event`); once it is set no new file starts, the files in
  hand finish and are yielded, and the generator ends. kvq installs no signal
  handler: the ``kvq`` command sets the flag on Ctrl-C (:mod:`kvq.cli`).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import os
import stat
import threading
import time
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Protocol

from . import paths
from .container import DEFAULT_MAX_PIXELS
from .errors import KvqError, caused_by_ctrl_c, message
from .formats import KVQ, KVQ_SUFFIX, encode_format, suffix_for
from .options import EncoderOptions
from .paths import walk_images

__all__ = [
    "COLUMNS", "DONE", "FAILED", "IMAGE_SUFFIXES", "KVQ_SUFFIXES", "MAX_WARNINGS", "SKIPPED", "FileResult", "Stop", "Task",
    "decode_files", "decode_task", "encode_files", "encode_task", "failed", "plan", "process_pool", "reason", "run",
    "suffix_for", "summarize",
]  # fmt: skip

#: Suffixes of the files taken from a folder by :func:`encode_files` (a file
#: named on its own is read whatever its name): kvq.paths' list without
#: ``.kvq``, so that encoding a folder twice never takes its own outputs.
IMAGE_SUFFIXES = tuple(s for s in paths.IMAGE_SUFFIXES if s != KVQ_SUFFIX)
#: Suffix of the files taken from a folder by :func:`decode_files`.
KVQ_SUFFIXES = (KVQ_SUFFIX,)

DONE = "done"
SKIPPED = "skipped"
FAILED = "failed"


class Stop(Protocol):
    """What :func:`run` takes as its stop flag: a :class:`threading.Event`, or anything with ``is_set()``."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Task:
    """One file to process.

    Attributes
    ----------
    source : str
        Input path.
    target : str
        Output path.
    error : str
        A reason known before running (two inputs with one output); such a
        task fails without being run.
    """

    source: str
    target: str
    error: str = ""


@dataclass(frozen=True)
class FileResult:
    """What happened to one file: a manifest row.

    Attributes
    ----------
    source, target : str
        Input and output paths, as planned.
    status : {"done", "skipped", "failed"}
        ``"skipped"``: a valid output was already there.
    reason : str
        Why it failed or was skipped; empty when done.
    width, height : int or None
        Image size.
    k : int or None
        Palette entries stored in the ``.kvq`` file.
    coding : int or None
        Index coding byte of the ``.kvq`` file.
    bytes : int or None
        Size of the ``.kvq`` file: the output when encoding, the input when
        decoding.
    bits_per_pixel : float or None
        ``8 * bytes / (width * height)``.
    psnr : float or None
        PSNR in dB of the encoded pixels against the input; ``inf`` when
        lossless; None when not measured (skipped files, decoding).
    seconds : float
        Time spent on the file by the worker.
    warnings : str
        The Python warnings raised while the file was processed (Pillow's
        "Corrupt EXIF data", a palette with fewer colours than asked...),
        one line each, at most :data:`MAX_WARNINGS`, joined by newlines;
        recorded where the task runs in a process's main thread (this
        process, kvq's own pool), since Python's warning filters are global
        and a threaded worker's neighbours would see each other's.
    """

    source: str
    target: str
    status: str
    reason: str = ""
    width: int | None = None
    height: int | None = None
    k: int | None = None
    coding: int | None = None
    bytes: int | None = None
    bits_per_pixel: float | None = None
    psnr: float | None = None
    seconds: float = 0.0
    warnings: str = ""

    @property
    def ok(self) -> bool:
        """bool: done or skipped."""
        return self.status != FAILED

    def as_dict(self) -> dict[str, Any]:
        """dict: the fields, by name (the manifest's columns)."""
        return asdict(self)


#: Manifest columns, in order.
COLUMNS = tuple(f.name for f in fields(FileResult))

#: Warnings kept per file; a file that raises more gets a count of the rest.
MAX_WARNINGS = 5


# --------------------------------------------------------------------------- planning


def plan(
    inputs: Iterable[str | os.PathLike],
    output: str | os.PathLike | None,
    *,
    suffix: str,
    find: Iterable[str],
) -> list[Task]:
    """Map input files and folders to output paths.

    Parameters
    ----------
    inputs : iterable of str or path-like
        Files and folders. A folder contributes every file under it whose
        suffix is in ``find``, recursively, in sorted order, leaving out
        hidden files and folders (:func:`kvq.paths.walk_images`).
    output : str, path-like or None
        Output folder. A file ``a/b.png`` given on its own becomes
        ``OUTPUT/b.kvq``; a file ``photos/x/y.png`` found in the folder
        ``photos`` becomes ``OUTPUT/x/y.kvq`` (the same tree). None: every
        output goes beside its input.
    suffix : str
        The outputs' suffix, which replaces the input's (``".kvq"``).
    find : iterable of str
        Suffixes taken from folders.

    Returns
    -------
    list of Task
        In input order, folders in sorted order. An input named twice is
        kept once; a second input with the same output as an earlier one
        gets ``Task.error`` set rather than overwriting it.
    """
    out = None if output is None else Path(output)
    find = tuple(find)
    tasks: list[Task] = []
    owners: dict[str, str] = {}
    seen: set[str] = set()

    def add(source: Path, target: Path) -> None:
        key = os.path.normpath(os.path.abspath(source))
        if key in seen:
            return
        seen.add(key)
        target_key = os.path.normpath(os.path.abspath(target))
        error = ""
        if target_key in owners:
            error = f"its output {target} is also the output of {owners[target_key]}"
        else:
            owners[target_key] = str(source)
        tasks.append(Task(str(source), str(target), error))

    for entry in inputs:
        path = Path(entry)
        if path.is_dir():
            for found in walk_images(path, suffixes=find, hidden=False):
                relative = found.relative_to(path)
                add(found, ((out / relative) if out is not None else found).with_suffix(suffix))
        else:
            # A missing file is planned all the same and fails when run, so
            # that it is listed with the other failures.
            add(path, ((out / path.name) if out is not None else path).with_suffix(suffix))
    return tasks


# --------------------------------------------------------------------------- the work on one file


def reason(exc: BaseException) -> str:
    """One line saying what went wrong with a file, for the failure list and the manifest (:func:`kvq.errors.message`).

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    str
    """
    return message(exc)


def failed(task: Task, exc: BaseException, seconds: float = 0.0) -> FileResult:
    """The failure row of a file: the one place a failed :class:`FileResult` is made from an exception.

    Parameters
    ----------
    task : Task
    exc : BaseException
    seconds : float, default=0.0

    Returns
    -------
    FileResult
    """
    return FileResult(task.source, task.target, FAILED, reason(exc), seconds=seconds)


def _stream(name: str, direction: str, force: bool) -> Any:
    """A path as given; ``-`` is standard input or output (the one-file command's own)."""
    from .fileio import standard_stream

    return standard_stream(name, direction, force=force)


def _image_size(path: str) -> tuple[int, int]:
    """(width, height) of an image file as kvq would store it (EXIF rotation applied), read from its header.

    An input that cannot be read raises the error its encode would: an
    output already there is no reason to skip a missing or broken input.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            # Orientations 5 to 8 swap width and height (pixels.to_array applies them).
            if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                width, height = height, width
            return width, height
    except Exception:  # noqa: BLE001 - unreadable: the encode's own door says why
        from .pixels import open_image

        image = open_image(path)  # raises kvq's error for it
        return image.size


def _valid_kvq(target: str, size: tuple[int, int] | None) -> Any:
    """The header of ``target`` if it is a complete ``.kvq`` (every CRC) of ``size``; else None."""
    from .container import parse

    try:
        with open(target, "rb") as fp:
            parsed = parse(fp.read(), max_pixels=None)
    except (OSError, KvqError):
        return None
    header = parsed.header
    if size is not None and (header.width, header.height) != size:
        return None
    return header


def _other_options(header: Any, options: EncoderOptions) -> str:
    """What in a ``.kvq`` file's header shows it was not made with ``options``; "" when nothing does.

    A file stores only the colours it uses and not the options, so two things
    tell: more entries than the ``k`` asked, and an entropy-coded file where
    fixed width is asked (the default coding stores fixed width where that
    is smaller). Fewer entries than ``k``, another seed, method, dither,
    speed, colour space or quality target leave no trace in the file.

    Parameters
    ----------
    header : Header
    options : EncoderOptions

    Returns
    -------
    str
        Such as "K = 64 stored, k = 16 asked".
    """
    from . import coding

    if header.k > options.k:
        return f"K = {header.k:,} stored, k = {options.k:,} asked"
    stored = coding.by_code(header.coding)
    if coding.by_name(options.coding).textbook and not stored.textbook:
        return f"{stored.name} index coding stored, {options.coding} asked"
    return ""


def _kvq_fields(header: Any, size: int | None) -> dict[str, Any]:
    """The manifest's fields of a ``.kvq`` file: its header's, and its size when known (not on standard input)."""
    return {
        "width": header.width,
        "height": header.height,
        "k": header.k,
        "coding": header.coding,
        "bytes": size,
        "bits_per_pixel": None if size is None else 8 * size / header.n_pixels,
    }


def _existing_output(
    task: Task, skip_existing: bool, size: Callable[[], tuple[int, int]], valid: Callable[[tuple[int, int]], bool], what: str
) -> FileResult:
    """The skipped row of an output already there, once it is known to be a complete output of this input.

    Raises
    ------
    KvqError
        The output is there and not a complete output of this input, or
        skipping was not asked for.
    """
    from .fileio import output_exists

    start = time.perf_counter()
    if not skip_existing:
        raise output_exists(task.target)
    if not valid(size()):
        error = KvqError(f"output {task.target} exists and is not {what} (force=True replaces it)")
        raise error.for_command(f"output {task.target} exists and is not {what} (-f/--force replaces it)")
    return FileResult(task.source, task.target, SKIPPED, "output exists and is valid", seconds=time.perf_counter() - start)


def encode_task(
    task: Task,
    options: EncoderOptions,
    *,
    skip_existing: bool = True,
    force: bool = False,
    strip: bool = False,
    folders: bool = True,
    raise_errors: bool = False,
    on_stage: Callable[[str], None] | None = None,
    on_encoded: Callable[[Any], None] | None = None,
) -> FileResult:
    """Encode one file of a batch; never raises for a bad file (unless ``raise_errors``).

    Parameters
    ----------
    task : Task
        ``-`` as its source or target is standard input or output (a batch of one).
    options : EncoderOptions
    skip_existing : bool, default=True
        Keep an output that is already a complete ``.kvq`` of this input's
        size (status ``"skipped"``); False: an existing output is a failure.
    force : bool, default=False
        Replace any existing output.
    strip : bool, default=False
        Store no ICC profile, EXIF or resolution.
    folders : bool, default=True
        Create the output's folder (a batch mirrors its input tree); False
        refuses a missing one.
    raise_errors : bool, default=False
        Raise the file's error rather than return it as a failed row: the
        one-file command, whose message and exit status are the error's.
    on_stage, on_encoded : callable, optional
        Called with each step's name (``"reading"``, ``"quantizing"``,
        ``"writing"``, ``"measuring PSNR"``) and with the :class:`kvq.Encoded`,
        when the file is worked on in this process (the one-file command's
        progress line and summary).

    Returns
    -------
    FileResult
    """
    # The one-file command's own held-back standard error shows its warnings, failures' included.
    start = time.perf_counter()
    with _recording_warnings(not raise_errors) as caught:
        try:
            result = _encode_one(
                task, options, skip_existing=skip_existing, force=force, strip=strip, folders=folders,
                on_stage=on_stage, on_encoded=on_encoded,
            )  # fmt: skip
        except (Exception, MemoryError) as exc:  # every failure becomes a row
            if raise_errors or caused_by_ctrl_c(exc):
                raise
            result = failed(task, exc, time.perf_counter() - start)
    return _with_warnings(result, caught)


def _encode_one(
    task: Task, options: EncoderOptions, *, skip_existing: bool, force: bool, strip: bool, folders: bool,
    on_stage: Callable[[str], None] | None, on_encoded: Callable[[Any], None] | None,
) -> FileResult:  # fmt: skip
    from .fileio import check_not_an_input, encode_file, measured_psnr

    start = time.perf_counter()
    source, target = task.source, task.target
    if task.error:
        raise KvqError(task.error)
    image_output = target != "-" and encode_format(target) != KVQ
    if target != "-" and source != "-":
        # Before any check of an output already there: the input itself is never "already done" nor replaceable.
        check_not_an_input(target, (source,))
    if not force and target != "-" and source != "-" and os.path.lexists(target):
        if image_output:
            # A quantized image (kvq encode --format png): complete, and of this input's size.
            skipped = _existing_output(
                task, skip_existing, lambda: _image_size(source), lambda size: _valid_image(target, size), "a complete image of this input"
            )
            return replace(skipped, seconds=time.perf_counter() - start, bytes=os.path.getsize(target))
        header = None

        def valid(size: tuple[int, int]) -> bool:
            nonlocal header
            header = _valid_kvq(target, size)
            if header is not None and (other := _other_options(header, options)):
                # Valid, but not what this run asks for: not "already done" (it was skipped, exit 0).
                error = KvqError(f"output {target} was made with other options ({other}); force=True replaces it")
                raise error.for_command(f"output {target} was made with other options ({other}); -f/--force replaces it")
            return header is not None

        skipped = _existing_output(task, skip_existing, lambda: _image_size(source), valid, "a complete .kvq of this input")
        return replace(skipped, seconds=time.perf_counter() - start, **_kvq_fields(header, os.path.getsize(target)))
    if folders and target != "-":
        # The mirrored folder first: the output check refuses a missing parent.
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    encoded = encode_file(
        _stream(source, "in", force), _stream(target, "out", force), options,
        force=force, name=source, strip=strip, progress=on_stage,
    )  # fmt: skip
    if on_stage is not None:
        on_stage("measuring PSNR")
    quality = measured_psnr(encoded, target)
    if on_encoded is not None:
        on_encoded(encoded)
    # An image output's row gives that file's bytes, not those of the .kvq never written.
    fields_ = _kvq_fields(encoded.header, os.path.getsize(target) if image_output else len(encoded.data))
    return FileResult(source, target, DONE, psnr=quality, seconds=time.perf_counter() - start, **fields_)


def decode_task(
    task: Task,
    *,
    format: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    skip_existing: bool = True,
    force: bool = False,
    strip: bool = False,
    folders: bool = True,
    raise_errors: bool = False,
    threads: int | None = None,
    keep_other_images: bool = False,
) -> FileResult:
    """Decode one ``.kvq`` file of a batch to an image file; never raises for a bad file (unless ``raise_errors``).

    An output already there counts as done only when it is this file's decoding: the same pixels, whatever the
    image's format or mode (a same-sized image with other pixels is an older decoding or another image, not work
    done).

    Parameters
    ----------
    task : Task
        ``-`` as its source or target is standard input or output (a batch of one).
    format : str, optional
        Pillow format name; default from the target's suffix.
    max_pixels : int or None, default=178,956,970
    skip_existing : bool, default=True
        Keep an output that Pillow verifies and that has the ``.kvq``'s size.
    force : bool, default=False
    strip : bool, default=False
        Write no ICC profile, EXIF or resolution.
    folders, raise_errors : bool
        As for :func:`encode_task`.
    threads : int, optional
        Threads for a coding that decodes in parallel (:func:`kvq.decode`).
    keep_other_images : bool, default=False
        An image at the target that is not this file's decoding fails the file even with ``force``. For targets
        named for the caller beside their inputs (``kvq decode photo.kvq`` writes photo.png): the image found
        there is most likely the one the ``.kvq`` was made from, and ``force`` must not replace it.

    Returns
    -------
    FileResult
    """
    start = time.perf_counter()
    with _recording_warnings(not raise_errors) as caught:
        try:
            result = _decode_one(
                task, format, max_pixels, skip_existing=skip_existing, force=force, strip=strip, folders=folders, threads=threads,
                keep_other_images=keep_other_images,
            )  # fmt: skip
        except (Exception, MemoryError) as exc:  # every failure becomes a row
            if raise_errors or caused_by_ctrl_c(exc):
                raise
            result = failed(task, exc, time.perf_counter() - start)
    return _with_warnings(result, caught)


def _decode_one(
    task: Task,
    format: str | None,
    max_pixels: int | None,
    *,
    skip_existing: bool,
    force: bool,
    strip: bool,
    folders: bool,
    threads: int | None = None,
    keep_other_images: bool = False,
) -> FileResult:
    from .codec import read_header
    from .fileio import check_not_an_input, decode_file

    start = time.perf_counter()
    source, target = task.source, task.target
    if task.error:
        raise KvqError(task.error)
    # What is decoded: the path, or the bytes of one that can be read only once.
    input_: str | bytes = source
    if source != "-":
        if not _regular_file(source):
            input_ = _read_once(source, target, max_pixels)
        # The input's header first: a missing or broken input is its own failure, whatever is at the output.
        header = read_header(input_, max_pixels)
        fields_ = _kvq_fields(header, len(input_) if isinstance(input_, bytes) else os.path.getsize(source))
        if target != "-":
            check_not_an_input(target, (source,))
        if target != "-" and os.path.lexists(target) and (keep_other_images or not force):
            ours = _is_decoding(target, input_, max_pixels, threads)
            if not ours and keep_other_images:
                raise _an_original(source, target, one_file=not folders)
            if not force:
                what = "this file's decoding (the same pixels)"
                skipped = _existing_output(task, skip_existing, lambda: (header.width, header.height), lambda _: ours, what)
                return replace(skipped, seconds=time.perf_counter() - start, **fields_)
    if folders and target != "-":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    decoded = decode_file(
        _stream(input_, "in", force) if isinstance(input_, str) else input_,
        _stream(target, "out", force), format, max_pixels=max_pixels, force=force, strip=strip,
        threads=threads,
    )  # fmt: skip
    fields_ = _kvq_fields(decoded.header, None if source == "-" else fields_["bytes"])
    return FileResult(source, target, DONE, seconds=time.perf_counter() - start, **fields_)


def _is_decoding(target: str, source: str | bytes, max_pixels: int | None, threads: int | None) -> bool:
    """Whether the image at ``target`` holds exactly the pixels that ``source`` (a ``.kvq``) decodes to."""
    import numpy as np
    from PIL import Image

    from .codec import decode

    expected = decode(source, max_pixels, threads=threads)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[expected.shape[2] if expected.ndim == 3 else 1]
    try:
        with Image.open(target) as image:
            if image.size != (expected.shape[1], expected.shape[0]):
                return False
            got = np.asarray(image.convert(mode))
    except Exception:  # noqa: BLE001 - not an image Pillow reads: not a decoding of source either
        return False
    return bool(np.array_equal(got.reshape(expected.shape), expected))


def _an_original(source: str, target: str, one_file: bool) -> KvqError:
    """The error for an image beside ``source`` that is not its decoding: most likely the image it was made from.

    As pngquant writes photo-fs8.png and dwebp wants -o, kvq asks for another name rather than offer --force, which
    would replace the original with its quantized copy.
    """
    said = f"{target} exists and is not a decoding of {source} (perhaps the image it was made from)"
    if not one_file:
        return KvqError(f"{said}: decode into another folder (output=...)").for_command(
            f"{said}: decode into another folder with -o DIR"
        )
    other = Path(target).with_name(f"{Path(target).stem}-kvq{Path(target).suffix}")
    return KvqError(f"{said}: name another output").for_command(f"{said}: name the output with -o, such as -o {other}")


def _regular_file(path: str) -> bool:
    """Whether ``path`` can be read twice: a regular file (or nothing there, which fails as it does)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return True


def _read_once(source: str, target: str, max_pixels: int | None) -> bytes:
    """The bytes of an input that can be read only once (a named pipe, a shell's ``<(...)``), as standard input is read.

    Its header is checked against ``max_pixels`` before the rest is read, and
    the output is refused first if it is the input itself.
    """
    from .container import HEADER_SIZE, parse_header
    from .fileio import check_not_an_input
    from .inputs import checked_read

    if target != "-":
        check_not_an_input(target, (source,))
    with open(source, "rb") as fp:
        head = checked_read(fp, HEADER_SIZE)
        parse_header(head, max_pixels)
        return head + checked_read(fp)


@contextlib.contextmanager
def _recording_warnings(record: bool = True) -> Iterator[list[str]]:
    """What the libraries say while a file is worked on, one line each, in a list filled when the block ends.

    Python warnings (Pillow's "Corrupt EXIF data", a palette with fewer
    colours than asked) and what a library logs where nobody set up logging
    (Pillow's TIFF plugin logs "More samples per pixel than can be decoded",
    which Python would print to standard error) travel with the file's result.
    Outside the main thread, or without ``record``, nothing is touched: Python's
    warning filters and logging are global, and a threaded worker's
    neighbours would see each other's.
    """
    lines: list[str] = []
    if not record or threading.current_thread() is not threading.main_thread():
        yield lines
        return
    with warnings.catch_warnings(record=True) as caught, library_logs(lines):
        # Last, so that a caller's own filters (DecompressionBombWarning as an error, say) still decide.
        warnings.simplefilter("always", append=True)
        yield lines
    lines[:0] = [str(w.message) for w in caught]


@contextlib.contextmanager
def library_logs(lines: list[str]) -> Iterator[list[str]]:
    """Hold back what libraries log while no logging is set up: into ``lines``, not onto standard error.

    Python prints such records (warnings and errors) to ``sys.stderr``
    through ``logging.lastResort``; a program that set up logging keeps its
    own handlers, untouched.
    """
    import logging

    class Held(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    previous = logging.lastResort
    logging.lastResort = Held(logging.WARNING)
    try:
        yield lines
    finally:
        logging.lastResort = previous


def _with_warnings(result: FileResult, caught: list[str]) -> FileResult:
    if not caught:
        return result
    lines = list(dict.fromkeys(" ".join(line.split()) for line in caught))
    if len(lines) > MAX_WARNINGS:
        lines[MAX_WARNINGS:] = [f"... and {len(lines) - MAX_WARNINGS} more warnings"]
    return replace(result, warnings="\n".join(lines))


def _valid_image(path: str, size: tuple[int, int]) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.size != size:
                return False
            image.verify()
        return True
    except Exception:  # noqa: BLE001 - anything Pillow cannot verify is not valid
        return False


# --------------------------------------------------------------------------- running


def process_pool(jobs: int) -> cf.ProcessPoolExecutor:
    """A process pool for batch work, whose workers die with this process.

    On Linux, from a process with no other thread, workers are forked: they
    start at once with everything this process has imported (a fork server
    would first import numpy and kvq again, about 0.3 s). Elsewhere, or from
    a threaded program, where forking is unsafe, they start from a fork
    server that has imported kvq (or are spawned, on Windows). Workers ignore
    Ctrl-C (the process that runs the batch decides; a forked worker ignores
    it from its first instruction), a SIGTERM unwinds the file in hand (its
    temporary file removed) and ends the worker, and workers end when this
    process ends, however it ends (SIGKILL included; see :func:`_worker_setup`).

    Parameters
    ----------
    jobs : int
        Number of worker processes.

    Returns
    -------
    concurrent.futures.ProcessPoolExecutor
    """
    import multiprocessing
    import sys

    context: multiprocessing.context.BaseContext
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        context = multiprocessing.get_context("fork")
    elif "forkserver" in multiprocessing.get_all_start_methods():
        forkserver = multiprocessing.get_context("forkserver")
        forkserver.set_forkserver_preload(["kvq.batch"])
        context = forkserver
    else:  # Windows
        context = multiprocessing.get_context("spawn")
    # The parent, named before any worker starts: a worker that asks later could find it already gone.
    parent = os.getpid() if context.get_start_method() != "forkserver" else -os.getpid()
    return _Pool(max_workers=jobs, mp_context=context, initializer=_worker_setup, initargs=(parent,))


class _Pool(cf.ProcessPoolExecutor):
    """A process pool whose tasks run through :func:`_in_worker`, and whose workers are forked with Ctrl-C held back."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        # Workers are forked inside submit: with SIGINT blocked across the fork, a Ctrl-C that reaches the
        # terminal's process group waits in the new worker until it ignores SIGINT (_worker_setup), and
        # reaches this process as soon as submit returns.
        with _sigint_held():
            return super().submit(_in_worker, fn, *args, **kwargs)


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    import signal

    if not hasattr(signal, "pthread_sigmask"):  # Windows: no fork, no mask
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


#: Linux's prctl option that sends a signal to a process when its parent dies.
_PR_SET_PDEATHSIG = 1

_SIGTERM = 15
#: How long a batch stopped at once waits for its workers to unwind their files in hand before it kills them.
_GRACE = 1.0

#: In a worker: whether a file is in hand, and whether a SIGTERM came.
_in_hand = False
_terminating = False


class _Terminated(BaseException):
    """Raised in a worker by SIGTERM to unwind the file in hand; the worker then ends by SIGTERM."""


def _worker_setup(parent: int) -> None:
    """Make a pool worker one single-threaded process among ``jobs``, that does not outlive its parent.

    Ctrl-C reaches every process of the terminal's group: only the process
    that runs the batch acts on it (it stops starting files and waits for the
    ones in hand); workers ignore it. SIGTERM (the batch stopped at once, the
    pool put down after a worker died, or anyone's ``kill``) unwinds the file
    in hand, its temporary file removed, and ends the worker as SIGTERM ends
    a process: the pool sees a worker that died, never an exception in place
    of a result.

    A worker must not outlive its parent (killed with SIGKILL, say): it would
    hold the output pipe and the manifest's temporary file for ever. Linux
    kills it with its parent (``PR_SET_PDEATHSIG``), and a worker whose
    parent is no longer ``parent`` once that is set (it died before) ends at
    once. Elsewhere, and for a worker started by a fork server (whose parent
    is the server: ``parent`` is then negative), a thread polls the parent.

    numpy's BLAS starts a thread per core in every process: N workers would
    run N x cores threads on N cores, spinning against each other. One
    thread each, as Dask's nanny sets for its workers.

    Parameters
    ----------
    parent : int
        The pid of the process that runs the batch, taken before any worker
        started; negative when the workers are a fork server's children.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if hasattr(signal, "pthread_sigmask"):
        # Blocked by the parent across the fork (_sigint_held); ignored now, so a pending one is dropped.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    direct = parent > 0
    parent = abs(parent)
    watch = True
    if direct:
        with contextlib.suppress(OSError, AttributeError):
            import ctypes
            import ctypes.util

            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            watch = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0
        if os.getppid() != parent:
            os._exit(1)  # the parent died before it could take this worker with it
    if watch:
        threading.Thread(target=_watch_parent, args=(parent, direct), name="kvq-parent-watch", daemon=True).start()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency of kvq and of scikit-learn
        return
    threadpool_limits(1)


def _in_worker(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Run one task in a worker, with the file in hand known to the SIGTERM handler."""
    global _in_hand
    _in_hand = True
    try:
        return fn(*args, **kwargs)
    except _Terminated:
        pass
    finally:
        _in_hand = False
        if _terminating:
            # Unwound (or the file's own code turned the exception into a failure, as numba turns one
            # raised inside a kernel into a SystemError): no result, the worker ends as SIGTERM ends it.
            _die(_SIGTERM)
    return None  # pragma: no cover - _die does not return


def _recorded(work: Callable[[Task], FileResult], task: Task, record: str) -> FileResult:
    """``work(task)``, its result also left in the file ``record`` (written whole, then renamed into place)."""
    import pickle

    result = work(task)
    with contextlib.suppress(OSError):
        with open(record + ".part", "wb") as fp:
            pickle.dump(result, fp)
        os.replace(record + ".part", record)
    return result


def _on_sigterm(signum: int, frame: object) -> None:
    global _terminating
    _terminating = True
    if _in_hand:
        raise _Terminated
    _die(signum)  # between files: nothing to unwind


def _die(signum: int) -> None:
    """End this worker by ``signum``, as its default action does."""
    import signal

    signal.signal(signum, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # pragma: no cover - where the signal does not end it


def _watch_parent(parent: int, direct: bool, every: float = 0.5) -> None:
    # Reparented, or the parent is gone: end now.
    while os.getppid() == parent if direct else _exists(parent):
        time.sleep(every)
    os._exit(1)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def run(
    tasks: Iterable[Task],
    work: Callable[[Task], FileResult],
    *,
    executor: Any = None,
    jobs: int | None = None,
    stop: Stop | None = None,
) -> Generator[FileResult, None, None]:
    """Run ``work`` on every task and yield the results as they complete.

    Parameters
    ----------
    tasks : iterable of Task
        Consumed lazily.
    work : callable
        A picklable function of one task (:func:`encode_task` or
        :func:`decode_task` with their options bound by
        :func:`functools.partial`).
    executor : concurrent.futures.Executor or distributed.Client, optional
        What runs the work. A Dask client runs it through its
        ``concurrent.futures`` executor (``client.get_executor``), each file
        its own task, with paths made absolute for its workers.
    jobs : int, optional
        Without ``executor``: None or 1 (or less), this process, one file
        after another, results in task order; N, a process pool of N
        workers (:func:`process_pool`), created and shut down here. A
        worker process that dies, by any signal (killed for memory, say, or
        sent SIGTERM), fails at most the file it was working on: the pool
        is rebuilt, a file in flight that a worker had finished is reported
        as finished, and the others are run again one at a time, alone,
        once; a file that ends its worker then too fails ("the worker
        process died while processing it"). No file is done twice.
    stop : threading.Event or any object with ``is_set()``, optional
        Once set, no new file starts; the files in hand finish, are yielded,
        and the generator ends. Files a caller's executor has queued but not
        started are cancelled; on a Dask cluster, which cannot tell them from
        running ones, every file sent is waited for and yielded.

    Yields
    ------
    FileResult
        One per task, in completion order when parallel.

    Raises
    ------
    KeyboardInterrupt
        As any exception raised in the caller's thread while a batch runs, it
        ends the batch at once: files not started are cancelled, and kvq's
        own worker processes are stopped, the files in hand unwound (no
        output, no temporary file); a worker still running after a second
        (inside a compiled kernel, which acts on SIGTERM only when it
        returns) is killed, which can leave a hidden temporary file. A
        caller's executor finishes its running tasks on its own. Results
        not yet yielded are not reported.

    Notes
    -----
    In flight at once: one file per worker of kvq's own pool (so a stop
    starts nothing new), twice the workers of a caller's executor, or of a
    Dask cluster's threads, so a million-file folder never becomes a
    million futures. A Dask result is released as soon as it arrives: the
    death of a worker never makes Dask compute a finished file again.
    """
    if executor is not None and jobs is not None:
        raise ValueError("give either executor or jobs, not both")
    backend: _Backend
    if executor is not None:
        backend = _Executor(executor)
    elif jobs is None or jobs <= 1:
        backend = _InProcess()
    else:
        backend = _OwnPool(jobs)
    yield from _drive(tasks, work, backend, stop)


def _stopping(stop: Stop | None) -> bool:
    return stop is not None and stop.is_set()


def _drive(tasks: Iterable[Task], work: Callable[[Task], FileResult], backend: _Backend, stop: Stop | None) -> Iterator[FileResult]:
    source = iter(tasks)
    pending: dict[cf.Future, Task] = {}
    abandoned = False
    try:
        while True:
            while len(pending) < backend.window and not _stopping(stop):
                task = next(source, None)
                if task is None:
                    break
                pending[backend.submit(work, task)] = task
            if not pending:
                break
            if _stopping(stop) and backend.cancels:
                _cancel(pending)  # queued, not started: they never start
            results, suspects = _collect(pending, backend)
            yield from results
            if suspects:
                # The pool is unusable and every file in flight fails with it. Those a worker finished, their
                # result lost as the pool was put down, are reported as finished; only one of the others killed
                # its worker, but which one is unknown: each is run again alone, on a fresh pool, once (a
                # file that kills its worker then too fails), so no file is done twice.
                suspects += pending.items()
                pending.clear()
                backend.restart()
                for future, task in suspects:
                    found = backend.recovered(future, task)
                    yield found if found is not None else backend.alone(work, task)
    except KeyboardInterrupt:
        abandoned = True
        _cancel(pending)
        backend.abandon()
        raise
    finally:
        if not abandoned:
            _cancel(pending)
            backend.close()


def _cancel(pending: dict[cf.Future, Task]) -> None:
    for future in pending:
        future.cancel()


def _collect(pending: dict[cf.Future, Task], backend: _Backend) -> tuple[list[FileResult], list[tuple[cf.Future, Task]]]:
    """Wait for the first files to finish; their results, and the files whose worker process died.

    The finished futures are dropped with this frame, before the next wait: a
    Dask result is released as soon as it has arrived.
    """
    done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
    results, suspects = [], []
    for future in done:
        task = pending.pop(future)
        if future.cancelled():
            continue
        try:
            results.append(backend.result(future, task))
        except cf.process.BrokenProcessPool:
            suspects.append((future, task))
    return results, suspects


class _Backend:
    """What :func:`_drive` runs the work on: an executor, and what to do when a worker dies or the batch ends."""

    window = 1
    #: Whether a future's cancel() means the file never starts (a stop cancels the ones queued).
    cancels = True

    def submit(self, work: Callable[[Task], FileResult], task: Task) -> cf.Future:
        raise NotImplementedError

    def result(self, future: cf.Future, task: Task) -> FileResult:
        return future.result()

    def restart(self) -> None:
        raise cf.process.BrokenProcessPool("a worker process died")  # pragma: no cover - kvq's own pool only

    def alone(self, work: Callable[[Task], FileResult], task: Task) -> FileResult:
        raise NotImplementedError  # pragma: no cover - kvq's own pool only

    def recovered(self, future: cf.Future, task: Task) -> FileResult | None:
        """The result of a file whose worker finished it before the pool broke, if it did; else None."""
        return None

    def abandon(self) -> None:
        """The batch stops at once (KeyboardInterrupt): stop what can be stopped."""

    def close(self) -> None:
        """The batch ended: release what it holds."""


class _InProcess(_Backend):
    """This process, one file after another: each submit runs the file, so results come in task order."""

    def submit(self, work: Callable[[Task], FileResult], task: Task) -> cf.Future:
        future: cf.Future = cf.Future()
        future.set_result(work(task))
        return future


class _OwnPool(_Backend):
    """kvq's own process pool: one file per worker in flight; a worker that dies fails only its own file."""

    def __init__(self, jobs: int) -> None:
        import tempfile

        self.jobs = self.window = jobs
        self.pool = process_pool(jobs)
        # Each worker leaves its file's result here too, before handing it back: a result lost when a death
        # elsewhere puts the pool down (it terminates every worker) is found here, not made again.
        self.records = tempfile.mkdtemp(prefix="kvq-batch-")
        self.record_of: dict[cf.Future, str] = {}
        self.count = 0

    def submit(self, work: Callable[[Task], FileResult], task: Task) -> cf.Future:
        self.count += 1
        record = os.path.join(self.records, str(self.count))
        try:
            future = self.pool.submit(_recorded, work, task, record)
        except cf.process.BrokenProcessPool:
            # Broken by a death the batch has not seen yet: its file will show it; this one never started.
            self.restart()
            future = self.pool.submit(_recorded, work, task, record)
        self.record_of[future] = record
        future.add_done_callback(self._forget)
        return future

    def result(self, future: cf.Future, task: Task) -> FileResult:
        try:
            return future.result()
        except _Terminated:
            # SIGTERM landed in the instant between the file's end and the worker's own bookkeeping: the
            # worker is ending; its file is treated as that of a worker that died.
            raise cf.process.BrokenProcessPool("a worker process was terminated") from None

    def _forget(self, future: cf.Future) -> None:
        # A result handed back needs no record; a lost one is read by recovered() first.
        if not future.cancelled() and future.exception() is None:
            record = self.record_of.pop(future, None)
            if record is not None:
                with contextlib.suppress(OSError):
                    os.unlink(record)

    def recovered(self, future: cf.Future, task: Task) -> FileResult | None:
        import pickle

        record = self.record_of.pop(future, None)
        if record is None:
            return None
        try:
            with open(record, "rb") as fp:
                found = pickle.load(fp)
            os.unlink(record)
        except (OSError, EOFError, pickle.UnpicklingError):
            return None
        return found if isinstance(found, FileResult) else None

    def restart(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pool = process_pool(self.jobs)

    def alone(self, work: Callable[[Task], FileResult], task: Task) -> FileResult:
        try:
            return self.pool.submit(work, task).result()
        except (cf.process.BrokenProcessPool, _Terminated):
            self.restart()
            return _failed_to_run(task, "the worker process died while processing it (out of memory, or a crash in an image library)")

    def abandon(self) -> None:
        # SIGTERM unwinds each worker's file in hand (see _worker_setup), at once where the worker runs Python;
        # one inside a compiled kernel acts on it only when the kernel returns, which may take seconds, so
        # whatever is left after a moment is killed: the batch stops now, at worst leaving a hidden
        # temporary file (as after any SIGKILL), which the next run ignores.
        processes = list(getattr(self.pool, "_processes", {}).values())
        for process in processes:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                process.terminate()
        deadline = time.monotonic() + _GRACE
        for process in processes:
            with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
                process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
                if process.is_alive():
                    process.kill()
                    process.join(_GRACE)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self._remove_records()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._remove_records()

    def _remove_records(self) -> None:
        import shutil

        shutil.rmtree(self.records, ignore_errors=True)


class _Executor(_Backend):
    """A caller's executor, or a Dask client through its executor, with paths made absolute for its workers."""

    def __init__(self, executor: Any) -> None:
        if _is_dask_client(executor):
            # pure=False: each file is its own task, run again if a worker dies mid-file, never taken from
            # an earlier identical call. Its futures stay pending until the task has run, so cancel() cannot
            # tell a task running on a worker (which runs to its end all the same) from one not started: a
            # stop waits for every file sent (twice the cluster's threads at most) and reports them.
            threads = sum(executor.nthreads().values()) or 1
            executor = executor.get_executor(pure=False)
            self.cancels = False
        else:
            threads = getattr(executor, "_max_workers", None) or os.cpu_count() or 1
        self.executor = executor
        # Enough that no worker waits; the ones queued but not started are cancelled by a stop.
        self.window = 2 * threads

    def submit(self, work: Callable[[Task], FileResult], task: Task) -> cf.Future:
        remote = replace(task, source=os.path.abspath(task.source), target=os.path.abspath(task.target))
        try:
            return self.executor.submit(work, remote)
        except cf.process.BrokenProcessPool as exc:
            # A caller's process pool that lost a worker takes no more work, and kvq cannot rebuild it: each
            # file left is a failure the caller sees (and the same call, run again, resumes), not an
            # exception that ends the batch and hides the results still to come.
            future: cf.Future = cf.Future()
            future.set_result(_failed_to_run(task, f"not run: the executor's process pool is broken ({exc})"))
            return future

    def result(self, future: cf.Future, task: Task) -> FileResult:
        try:
            result = future.result()
        except cf.process.BrokenProcessPool as exc:
            return _failed_to_run(task, f"the worker process died while processing it ({exc})")
        except Exception as exc:  # noqa: BLE001 - the executor's own failure (KilledWorker, a lost connection): this file's
            return _failed_to_run(task, f"{type(exc).__name__}: {exc}")
        return replace(result, source=task.source, target=task.target)


def _failed_to_run(task: Task, why: str) -> FileResult:
    return FileResult(task.source, task.target, FAILED, " ".join(why.split()))


def _is_dask_client(executor: Any) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed" and hasattr(executor, "get_executor")


# --------------------------------------------------------------------------- the two verbs


def encode_files(
    inputs: Iterable[str | os.PathLike],
    output: str | os.PathLike | None = None,
    options: EncoderOptions | None = None,
    *,
    executor: Any = None,
    jobs: int | None = None,
    skip_existing: bool = True,
    force: bool = False,
    stop: Stop | None = None,
    **kwargs: Any,
) -> Generator[FileResult, None, None]:
    """Encode image files and folders of them to ``.kvq`` files.

    Parameters
    ----------
    inputs : iterable of str or path-like
        Image files (any Pillow reads) and folders (their files with a suffix
        in :data:`IMAGE_SUFFIXES`, recursively).
    output : str, path-like or None
        Output folder, created as needed, mirroring each input folder's
        tree; None writes each ``.kvq`` beside its input. See :func:`plan`.
    options : EncoderOptions, optional
        When omitted, built from ``kwargs`` (``k``, ``seed``, ...).
    executor : concurrent.futures.Executor or distributed.Client, optional
    jobs : int, optional
    stop : threading.Event or any object with ``is_set()``, optional
        See :func:`run`.
    skip_existing : bool, default=True
        Keep outputs that are already valid, so an interrupted batch resumes.
    force : bool, default=False
        Replace existing outputs.
    **kwargs
        Encoder options.

    Yields
    ------
    FileResult
        One per input file, as each completes.

    Examples
    --------
    >>> from concurrent.futures import ProcessPoolExecutor   # doctest: +SKIP
    >>> with ProcessPoolExecutor(2) as pool:
    ...     failed = [r for r in encode_files(["photos"], "out", k=64, executor=pool) if not r.ok]
    """
    if options is None:
        options = EncoderOptions.from_kwargs(**kwargs)
    elif kwargs:
        raise KvqError("give either options or keyword options, not both")
    tasks = plan(inputs, output, suffix=".kvq", find=IMAGE_SUFFIXES)
    work = functools.partial(encode_task, options=options, skip_existing=skip_existing, force=force)
    return run(tasks, work, executor=executor, jobs=jobs, stop=stop)


def decode_files(
    inputs: Iterable[str | os.PathLike],
    output: str | os.PathLike | None = None,
    *,
    format: str = "PNG",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    executor: Any = None,
    jobs: int | None = None,
    skip_existing: bool = True,
    force: bool = False,
    stop: Stop | None = None,
) -> Generator[FileResult, None, None]:
    """Decode ``.kvq`` files and folders of them to image files.

    Parameters
    ----------
    inputs : iterable of str or path-like
        ``.kvq`` files and folders (their ``.kvq`` files, recursively).
    output : str, path-like or None
        Output folder (see :func:`plan`); None: beside each input, where an image that is not the input's
        decoding (the image it was made from, most likely) fails that file and is never replaced, even with
        ``force``.
    format : str, default="PNG"
        Pillow format of the outputs; their suffix is the format's usual one.
    max_pixels : int or None, default=178,956,970
        Refuse larger images.
    executor, jobs, skip_existing, force, stop
        As for :func:`encode_files`.

    Yields
    ------
    FileResult
    """
    tasks = plan(inputs, output, suffix=suffix_for(format), find=KVQ_SUFFIXES)
    # Beside their inputs, outputs meet the images the .kvq files were made from: those are never replaced.
    work = functools.partial(
        decode_task, format=format, max_pixels=max_pixels, skip_existing=skip_existing, force=force,
        keep_other_images=output is None,
    )  # fmt: skip
    return run(tasks, work, executor=executor, jobs=jobs, stop=stop)


def summarize(results: Iterable[FileResult]) -> dict[str, int]:
    """Count results by status.

    Parameters
    ----------
    results : iterable of FileResult

    Returns
    -------
    dict
        ``{"done": n, "skipped": n, "failed": n}``.
    """
    counts = {DONE: 0, SKIPPED: 0, FAILED: 0}
    for result in results:
        counts[result.status] += 1
    return counts
