"""The work on one file of a batch: :func:`encode_task` and :func:`decode_task`, and what they take and give.

A :class:`Task` names one input and its output. The work never raises for a
bad file but returns a :class:`FileResult` saying what went wrong (made by
:func:`failed`): a manifest row. An output already there is kept when it is a
valid output of this input, and refused otherwise unless forced; an image
beside its ``.kvq`` that is not its decoding is never replaced. What the
libraries warn or log while a file is worked on travels with its result.

Nothing here knows what runs the work: :mod:`kvq.batch` plans the tasks and
runs them in this process, on kvq's own process pool (:mod:`kvq.pool`) or on
a caller's executor, and re-exports the public names of this module.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from .container import DEFAULT_MAX_PIXELS
from .errors import KvqError, caused_by_ctrl_c, message
from .formats import KVQ, encode_format
from .options import EncoderOptions

DONE = "done"
SKIPPED = "skipped"
FAILED = "failed"


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
    work = functools.partial(
        _encode_one, task, options, skip_existing=skip_existing, force=force, strip=strip, folders=folders,
        on_stage=on_stage, on_encoded=on_encoded,
    )  # fmt: skip
    return _as_row(task, work, raise_errors)


def _as_row(task: Task, work: Callable[[], FileResult], raise_errors: bool) -> FileResult:
    """Run one file's work: every failure becomes its row (unless ``raise_errors``), with the warnings it gave."""
    # The one-file command's own held-back standard error shows its warnings, failures' included.
    start = time.perf_counter()
    with _recording_warnings(not raise_errors) as caught:
        try:
            result = work()
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

    An output already there counts as done when it is this file's decoding: an image written no earlier than the
    ``.kvq`` that Pillow verifies at its size (as make tells an output up to date, without decoding), or else
    one that reads back as kvq's own writing of the decoding in that format would (a same-sized image with other
    pixels is an older decoding or another image, not work done).

    Parameters
    ----------
    task : Task
        ``-`` as its source or target is standard input or output (a batch of one).
    format : str, optional
        Pillow format name; default from the target's suffix.
    max_pixels : int or None, default=178,956,970
    skip_existing : bool, default=True
        Keep an output that is this file's decoding (see above).
    force : bool, default=False
    strip : bool, default=False
        Write no ICC profile, EXIF or resolution.
    folders, raise_errors : bool
        As for :func:`encode_task`.
    threads : int, optional
        Threads for a coding that decodes in parallel (:func:`kvq.decode`).
    keep_other_images : bool, default=False
        An image at the target that is not this file's decoding fails the file even with ``force``: the image
        found beside a ``.kvq`` (``kvq decode photo.kvq`` writes photo.png) is most likely the one it was made
        from. With ``folders`` (a batch) this holds only for targets in their input's own folder; for one file,
        wherever the target is (the command sets it when it named the target itself).

    Returns
    -------
    FileResult
    """
    work = functools.partial(
        _decode_one, task, format, max_pixels, skip_existing=skip_existing, force=force, strip=strip, folders=folders,
        threads=threads, keep_other_images=keep_other_images,
    )  # fmt: skip
    return _as_row(task, work, raise_errors)


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
        if target != "-" and os.path.lexists(target):
            # A batch keeps only the images beside their own inputs; one file keeps what the caller said.
            keep = keep_other_images and (not folders or _same_folder(source, target))
            skipped = _existing_decoding(task, input_, header, format, max_pixels, threads, skip_existing, force, keep, folders)
            if skipped is not None:
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


def _existing_decoding(
    task: Task, input_: str | bytes, header: Any, format: str | None, max_pixels: int | None, threads: int | None,
    skip_existing: bool, force: bool, keep: bool, folders: bool,
) -> FileResult | None:  # fmt: skip
    """What to do with an image already at a decode's target: the skipped row, None to write it, or an error.

    An output is done when it is this file's decoding. Telling costs a decode, so the common cases pay less: an
    output the call may not replace anyway is refused at once; one written after its ``.kvq`` was (as make
    tells) that Pillow verifies at the right size is taken as done, as a resumed batch finds its outputs. The
    rest, and any image ``keep`` protects before ``force`` may replace it, are compared with the decoding.

    Raises
    ------
    KvqError
        The target exists and may not be replaced (``output_exists``), is not this file's decoding, or (``keep``)
        is most likely the image the file was made from.
    """
    from .fileio import output_exists

    source, target = task.source, task.target
    size = (header.width, header.height)
    if not (force or skip_existing or keep):
        raise output_exists(target)
    if force and not keep:
        return None
    if not force and skip_existing and isinstance(input_, str) and _newer(target, input_) and _valid_image(target, size):
        return _existing_output(task, True, lambda: size, lambda _: True, "")
    ours = _is_decoding(target, input_, header, format, max_pixels, threads)
    if keep and not ours:
        raise _an_original(source, target, one_file=not folders)
    if force:
        return None
    return _existing_output(task, skip_existing, lambda: size, lambda _: ours, "this file's decoding")


def _newer(target: str, source: str) -> bool:
    """Whether ``target`` is a file last written no earlier than ``source`` (as make tells an output that is up to date)."""
    try:
        found = os.stat(target)
        return stat.S_ISREG(found.st_mode) and found.st_mtime_ns >= os.stat(source).st_mtime_ns
    except OSError:
        return False


def _same_folder(source: str, target: str) -> bool:
    """Whether ``target`` sits in ``source``'s folder, where the image a ``.kvq`` was made from usually is."""
    try:
        return os.path.samefile(os.path.dirname(source) or ".", os.path.dirname(target) or ".")
    except OSError:
        return False


def _is_decoding(target: str, source: str | bytes, header: Any, format: str | None, max_pixels: int | None, threads: int | None) -> bool:
    """Whether the image at ``target`` reads back as ``source``'s decoding written in its format by kvq would.

    Written, not decoded: a JPEG (or any format that changes pixels) is compared with kvq's own JPEG of the
    decoding, read back, so an earlier decoding in a lossy format is recognised as well as a PNG.
    """
    import io

    import numpy as np
    from PIL import Image

    from .codec import decode_indexed
    from .export import write_image
    from .formats import decode_format

    try:
        if not stat.S_ISREG(os.stat(target).st_mode):
            return False  # a pipe or a device: opening it to look would wait on its writer
    except OSError:
        return False

    def pixels(fp: Any) -> np.ndarray | None:
        with warnings.catch_warnings():
            # The size is already bounded by max_pixels: Pillow's own bomb limit says nothing here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                with Image.open(fp) as image:
                    if image.size != (header.width, header.height):
                        return None
                    return np.asarray(image.convert({1: "L", 3: "RGB", 4: "RGBA"}[header.channels]))
            except Exception:  # noqa: BLE001 - not an image Pillow reads (or over its limit): not a decoding of source
                return None

    got = pixels(target)
    if got is None:
        return False
    decoded = decode_indexed(source, max_pixels, threads=threads)
    written = io.BytesIO()
    write_image(decoded, written, format or decode_format(target), strip=True, png_effort=0)
    written.seek(0)
    expected = pixels(written)
    return expected is not None and bool(np.array_equal(got, expected))


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
        with warnings.catch_warnings():
            # The size asked is already bounded by max_pixels: Pillow's own bomb warning would be the file's warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            if image.size != size:
                return False
            image.verify()
        return True
    except Exception:  # noqa: BLE001 - anything Pillow cannot verify is not valid
        return False


# The failure row of a file that did not run to its end (its worker died, the executor failed): kvq.pool's
# backend and kvq.batch's make it, beside failed(), which makes one from the file's own exception.
def _failed_to_run(task: Task, why: str) -> FileResult:
    return FileResult(task.source, task.target, FAILED, " ".join(why.split()))
