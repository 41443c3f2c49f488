"""Many files in one call: encode or decode lists of paths and folder trees.

The work is one function per file, which never raises for a bad file but
returns a :class:`FileResult` saying what went wrong, and a runner that hands
those functions to whatever runs them: nothing (this process, one file after
another), a :class:`concurrent.futures.Executor`, a process pool of its own
(``jobs=N``), or a Dask ``distributed.Client`` for more than one machine.

>>> import kvq.batch                                           # doctest: +SKIP
>>> for result in kvq.batch.encode_files(["photos/"], "out/", k=64, jobs=2):
...     print(result.source, result.status, result.reason)

Rules every runner follows:

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
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from . import paths
from .container import DEFAULT_MAX_PIXELS
from .errors import KvqError
from .options import EncoderOptions
from .paths import walk_images

#: Suffixes of the files taken from a folder by :func:`encode_files` (a file
#: named on its own is read whatever its name): kvq.paths' list without
#: ``.kvq``, so that encoding a folder twice never takes its own outputs.
IMAGE_SUFFIXES = tuple(s for s in paths.IMAGE_SUFFIXES if s != ".kvq")
#: Suffix of the files taken from a folder by :func:`decode_files`.
KVQ_SUFFIXES = (".kvq",)

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
    """One line saying what went wrong with a file, for the failure list and the manifest.

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    str
    """
    from .errors import interrupted_by_user

    if isinstance(exc, KvqError):
        message = str(exc)
    elif interrupted_by_user(exc):
        message = "interrupted"
    elif isinstance(exc, FileNotFoundError):
        message = f"{exc.filename}: no such file"
    elif isinstance(exc, IsADirectoryError):
        message = f"{exc.filename}: is a directory"
    elif isinstance(exc, PermissionError):
        message = f"{exc.filename}: permission denied"
    elif isinstance(exc, OSError) and exc.strerror:
        message = f"{exc.filename or ''}: {exc.strerror}".lstrip(": ")
    elif isinstance(exc, MemoryError):
        message = "out of memory"
    else:
        message = f"internal error ({type(exc).__name__}: {exc}); please report it"
    return " ".join(message.split())


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


def _kvq_fields(header: Any, size: int) -> dict[str, Any]:
    return {
        "width": header.width,
        "height": header.height,
        "k": header.k,
        "coding": header.coding,
        "bytes": size,
        "bits_per_pixel": 8 * size / header.n_pixels,
    }


def _reraise_interrupt(exc: BaseException) -> None:
    """Stop the batch when ``exc`` is Ctrl-C in disguise.

    Ctrl-C inside a numba kernel surfaces as a SystemError ("returned a
    result with an exception set") whose chain may or may not hold the
    KeyboardInterrupt; the CLI's SIGINT handler also records it in
    :data:`kvq.errors.interrupt`, which catches the other case.
    """
    from .errors import interrupted_by_user

    if interrupted_by_user(exc):
        raise KeyboardInterrupt from None


def encode_task(task: Task, options: EncoderOptions, *, skip_existing: bool = True, force: bool = False) -> FileResult:
    """Encode one file of a batch; never raises for a bad file.

    Parameters
    ----------
    task : Task
    options : EncoderOptions
    skip_existing : bool, default=True
        Keep an output that is already a complete ``.kvq`` of this input's
        size (status ``"skipped"``).
    force : bool, default=False
        Replace any existing output.

    Returns
    -------
    FileResult
    """
    with _recording_warnings() as caught:
        result = _encode_one(task, options, skip_existing=skip_existing, force=force)
    return _with_warnings(result, caught)


def _encode_one(task: Task, options: EncoderOptions, *, skip_existing: bool, force: bool) -> FileResult:
    from .fileio import check_output, encode_file

    start = time.perf_counter()
    source, target = task.source, task.target
    try:
        if task.error:
            raise KvqError(task.error)
        if not force and os.path.lexists(target):
            if not skip_existing:
                raise KvqError(f"output {target} exists (use --force to replace it)")
            header = _valid_kvq(target, _image_size(source))
            if header is None:
                raise KvqError(f"output {target} exists and is not a complete .kvq of this input (use --force to replace it)")
            fields_ = _kvq_fields(header, os.path.getsize(target))
            return FileResult(source, target, SKIPPED, "output exists and is valid", seconds=time.perf_counter() - start, **fields_)
        # The mirrored folder first: check_output refuses a missing parent.
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        check_output(target, force=force, inputs=(source,))
        encoded = encode_file(source, target, options, force=force)
        quality = encoded.psnr
    except (Exception, MemoryError) as exc:  # noqa: BLE001 - every failure becomes a row
        _reraise_interrupt(exc)
        return FileResult(source, target, FAILED, reason(exc), seconds=time.perf_counter() - start)
    fields_ = _kvq_fields(encoded.header, len(encoded.data))
    return FileResult(source, target, DONE, psnr=quality, seconds=time.perf_counter() - start, **fields_)


def decode_task(
    task: Task,
    *,
    format: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    skip_existing: bool = True,
    force: bool = False,
) -> FileResult:
    """Decode one ``.kvq`` file of a batch to an image file; never raises for a bad file.

    Parameters
    ----------
    task : Task
    format : str, optional
        Pillow format name; default from the target's suffix.
    max_pixels : int or None, default=178,956,970
    skip_existing : bool, default=True
        Keep an output that Pillow verifies and that has the ``.kvq``'s size.
    force : bool, default=False

    Returns
    -------
    FileResult
    """
    with _recording_warnings() as caught:
        result = _decode_one(task, format, max_pixels, skip_existing=skip_existing, force=force)
    return _with_warnings(result, caught)


def _decode_one(task: Task, format: str | None, max_pixels: int | None, *, skip_existing: bool, force: bool) -> FileResult:
    from .codec import read_header
    from .fileio import check_output, decode_file

    start = time.perf_counter()
    source, target = task.source, task.target
    try:
        if task.error:
            raise KvqError(task.error)
        header = read_header(source, max_pixels)
        fields_ = _kvq_fields(header, os.path.getsize(source))
        if not force and os.path.lexists(target):
            if not skip_existing:
                raise KvqError(f"output {target} exists (use --force to replace it)")
            if not _valid_image(target, (header.width, header.height)):
                raise KvqError(f"output {target} exists and is not a complete image of this file's size (use --force to replace it)")
            return FileResult(source, target, SKIPPED, "output exists and is valid", seconds=time.perf_counter() - start, **fields_)
        # The mirrored folder first: check_output refuses a missing parent.
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        check_output(target, force=force, inputs=(source,))
        decode_file(source, target, format, max_pixels=max_pixels, force=force)
    except (Exception, MemoryError) as exc:  # noqa: BLE001 - every failure becomes a row
        _reraise_interrupt(exc)
        return FileResult(source, target, FAILED, reason(exc), seconds=time.perf_counter() - start)
    return FileResult(source, target, DONE, seconds=time.perf_counter() - start, **fields_)


@contextlib.contextmanager
def _recording_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """The warnings raised inside, in a list; an empty list, and nothing touched, outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    with warnings.catch_warnings(record=True) as caught:
        # Last, so that a caller's own filters (DecompressionBombWarning as an error, say) still decide.
        warnings.simplefilter("always", append=True)
        yield caught


def _with_warnings(result: FileResult, caught: list[warnings.WarningMessage]) -> FileResult:
    if not caught:
        return result
    lines = list(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
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


def _is_dask_client(executor: Any) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed" and hasattr(executor, "submit")


def process_pool(jobs: int) -> cf.ProcessPoolExecutor:
    """A process pool for batch work.

    On Linux, from a process with no other thread, workers are forked: they
    start at once with everything this process has imported (a fork server
    would first import numpy and kvq again, about 0.3 s). Elsewhere, or from
    a threaded program, where forking is unsafe, they start from a fork
    server that has imported kvq (or are spawned, on Windows). Workers ignore
    Ctrl-C: the parent decides what to do about it.

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
    import threading

    context: multiprocessing.context.BaseContext
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        context = multiprocessing.get_context("fork")
    elif "forkserver" in multiprocessing.get_all_start_methods():
        forkserver = multiprocessing.get_context("forkserver")
        forkserver.set_forkserver_preload(["kvq.batch"])
        context = forkserver
    else:  # Windows
        context = multiprocessing.get_context("spawn")
    return cf.ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_setup)


def _worker_setup() -> None:
    """Make a pool worker one single-threaded process among ``jobs``.

    Ctrl-C reaches every process of the terminal's group: only the parent
    acts on it (it cancels the files not started and waits for those
    running, whose outputs are then complete); workers that died of the same
    KeyboardInterrupt would print a traceback each and break the pool.

    numpy's BLAS starts a thread per core in every process: N workers would
    run N x cores threads on N cores, spinning against each other. One
    thread each, as Dask's nanny sets for its workers.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency of kvq and of scikit-learn
        return
    threadpool_limits(1)


def run(
    tasks: Iterable[Task],
    work: Callable[[Task], FileResult],
    *,
    executor: Any = None,
    jobs: int | None = None,
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
        What runs the work. None with ``jobs`` None or 1: this process,
        one file after another, results in task order.
    jobs : int, optional
        Without ``executor``: run on a process pool of this many workers,
        created and shut down here. A worker process that dies (killed for
        memory, say) fails only the file it was working on: the pool is
        rebuilt and the files that were in flight are retried one at a time.

    Yields
    ------
    FileResult
        One per task, in completion order when parallel.

    Notes
    -----
    With a Dask client, workers read and write the paths themselves, so they
    need the same file system as this process (paths are made absolute).
    Each task is a Dask task of its own; the scheduler reschedules a task whose
    worker died, and marks it failed (``KilledWorker``) after
    ``distributed.scheduler.allowed-failures`` deaths. Finished tasks'
    results are released as soon as they arrive, so the death of a worker
    never makes Dask recompute them.

    Ctrl-C (in the main thread, with Python's own SIGINT handler in place)
    is held while the caller handles a result and while results are
    collected, and raised as KeyboardInterrupt where nothing is half-done:
    a parallel run first yields the results of the files already sent to
    its workers, whose outputs are complete, and a file of a serial run is
    either cut short before its output is renamed into place or reported.
    So every output on disk has been yielded. A second Ctrl-C stops the
    reporting at once (kvq's own worker processes still finish the file in
    hand before the pool shuts down; their outputs are complete). Close the
    generator (or exhaust it) to restore the handler.
    """
    if executor is not None and jobs is not None:
        raise ValueError("give either executor or jobs, not both")
    if executor is None and (jobs is None or jobs <= 1):
        from .errors import interrupt

        with interrupt.held():
            for task in tasks:
                # Cut short, a file leaves no output; atomic_write disarms this
                # before the rename that commits one, so it is then reported.
                with interrupt.waiting():
                    result = work(task)
                yield result
        return
    if executor is None:
        yield from _run_own_pool(tasks, work, int(jobs or 1))
    elif _is_dask_client(executor):
        yield from _run_dask(tasks, work, executor)
    else:
        yield from _run_executor(tasks, work, executor, _window(getattr(executor, "_max_workers", os.cpu_count() or 1)))


def _window(workers: int) -> int:
    """Tasks kept in flight: enough that no worker waits, few enough to stay small."""
    return 2 * max(1, workers) + 2


def _failed(task: Task, reason: str) -> FileResult:
    return FileResult(task.source, task.target, FAILED, " ".join(reason.split()))


def _run_executor(
    tasks: Iterable[Task], work: Callable[[Task], FileResult], executor: cf.Executor, window: int
) -> Iterator[FileResult]:
    from .errors import interrupt

    pending: dict[cf.Future, Task] = {}
    source = iter(tasks)
    try:
        with interrupt.held():
            for task in source:
                pending[executor.submit(work, task)] = task
                if len(pending) < window:
                    continue
                yield from _next_done(pending)
            while pending:
                yield from _next_done(pending)
    finally:
        for future in pending:
            future.cancel()


def _next_done(pending: dict[cf.Future, Task]) -> Iterator[FileResult]:
    done = yield from _wait_first(pending)
    for future in done:
        yield _outcome(future, pending.pop(future))


def _wait_first(pending: dict[cf.Future, Task]) -> Generator[FileResult, None, set[cf.Future]]:
    """Wait for the first of ``pending`` to finish; on Ctrl-C, report the running ones and re-raise.

    Ctrl-C, held by :meth:`kvq.errors.interrupt.held` everywhere else, lands
    only here, where nothing is half-done: results already received have
    been yielded, and those still running are waited for and yielded too.
    """
    from .errors import interrupt

    try:
        with interrupt.waiting():
            done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
    except KeyboardInterrupt:
        yield from _drain(pending)
        raise
    return done


def _outcome(future: cf.Future, task: Task) -> FileResult:
    try:
        return future.result()
    except cf.process.BrokenProcessPool as exc:
        return _failed(task, f"the worker process died while processing it ({exc})")
    except Exception as exc:  # noqa: BLE001 - the executor's own failure, for this file
        return _failed(task, reason(exc))


def _run_own_pool(tasks: Iterable[Task], work: Callable[[Task], FileResult], jobs: int) -> Iterator[FileResult]:
    from .errors import interrupt

    source = iter(tasks)
    window = _window(jobs)
    pool = process_pool(jobs)
    pending: dict[cf.Future, Task] = {}
    unsent: list[Task] = []
    try:
        with interrupt.held():
            while True:
                broken = False
                while len(pending) < window and not broken:
                    task = unsent.pop() if unsent else next(source, None)
                    if task is None:
                        break
                    try:
                        pending[pool.submit(work, task)] = task
                    except cf.process.BrokenProcessPool:
                        unsent.append(task)  # never started: no suspect
                        broken = True
                if not pending and not broken:
                    return
                suspects = []
                if pending:
                    done = yield from _wait_first(pending)
                    for future in done:
                        task = pending.pop(future)
                        try:
                            result = future.result()
                        except cf.process.BrokenProcessPool:
                            suspects.append(task)
                            continue
                        yield result
                if suspects or broken:
                    # The pool is unusable and every task in flight fails with it;
                    # only one of them killed its worker, but which one is unknown.
                    # Retry each alone on a fresh pool.
                    suspects += pending.values()
                    pending.clear()
                    pool.shutdown(wait=True, cancel_futures=True)
                    pool = process_pool(jobs)
                    for task in suspects:
                        if interrupt.pending():  # one file at a time here: stop between two
                            raise KeyboardInterrupt
                        pool, result = _alone(pool, work, task, jobs)
                        yield result
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _drain(pending: dict[cf.Future, Task]) -> Iterator[FileResult]:
    """After Ctrl-C: cancel what has not started, and report what was running once it ends.

    The running files finish (workers ignore the interrupt) and their outputs
    are complete; reporting them keeps the manifest true to what is on disk.
    """
    for future in pending:
        future.cancel()
    done, _ = cf.wait(pending)
    for future in done:
        task = pending.pop(future)
        if not future.cancelled():
            yield _outcome(future, task)


def _alone(
    pool: cf.ProcessPoolExecutor, work: Callable[[Task], FileResult], task: Task, jobs: int
) -> tuple[cf.ProcessPoolExecutor, FileResult]:
    try:
        return pool, pool.submit(work, task).result()
    except cf.process.BrokenProcessPool:
        pool.shutdown(wait=True, cancel_futures=True)
        reason = "the worker process died while processing it (out of memory, or a crash in an image library)"
        return process_pool(jobs), _failed(task, reason)


def _run_dask(tasks: Iterable[Task], work: Callable[[Task], FileResult], client: Any) -> Iterator[FileResult]:
    from distributed import as_completed

    from .errors import interrupt

    threads = sum(client.nthreads().values()) or 1
    window = _window(threads)
    batch = uuid.uuid4().hex[:12]
    source = enumerate(tasks)
    in_flight: dict[str, Task] = {}
    queue = as_completed()

    def submit() -> bool:
        item = next(source, None)
        if item is None:
            return False
        number, task = item
        key = f"kvq-{batch}-{number}"
        remote = replace(task, source=os.path.abspath(task.source), target=os.path.abspath(task.target))
        queue.add(client.submit(work, remote, key=key, pure=False))
        in_flight[key] = task
        return True

    try:
        with interrupt.held():
            yield from _collect_dask(queue, in_flight, window, submit)
    finally:
        if in_flight:
            # Tasks already running on the cluster cannot be stopped; their
            # outputs are complete and a rerun finds them.
            client.cancel(list(queue.futures), force=True)
            queue.clear()


def _collect_dask(queue: Any, in_flight: dict[str, Task], window: int, submit: Callable[[], bool]) -> Iterator[FileResult]:
    from .errors import interrupt

    while len(in_flight) < window and submit():
        pass
    interrupted = False
    while in_flight:
        try:
            with interrupt.waiting():
                future = next(queue)
        except KeyboardInterrupt:
            # The files already sent finish (a cluster's running tasks cannot be
            # stopped) and are reported, as by a pool; a second Ctrl-C stops at once.
            interrupted = True
            future = next(queue, None)
            if future is None:
                break
        task = in_flight.pop(future.key)
        try:
            result = future.result()
        except Exception as exc:  # noqa: BLE001 - KilledWorker, a lost connection: this file failed
            result = _failed(task, f"{type(exc).__name__}: {exc}")
        else:
            result = replace(result, source=task.source, target=task.target)
        # Forget the key now: Dask would recompute a result it still
        # holds a reference to if the worker keeping it died.
        future.release()
        del future
        yield result
        if not interrupted:
            submit()
    if interrupted:
        raise KeyboardInterrupt


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
    return run(tasks, work, executor=executor, jobs=jobs)


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
) -> Generator[FileResult, None, None]:
    """Decode ``.kvq`` files and folders of them to image files.

    Parameters
    ----------
    inputs : iterable of str or path-like
        ``.kvq`` files and folders (their ``.kvq`` files, recursively).
    output : str, path-like or None
        Output folder (see :func:`plan`); None: beside each input.
    format : str, default="PNG"
        Pillow format of the outputs; their suffix is the format's usual one.
    max_pixels : int or None, default=178,956,970
        Refuse larger images.
    executor, jobs, skip_existing, force
        As for :func:`encode_files`.

    Yields
    ------
    FileResult
    """
    tasks = plan(inputs, output, suffix=suffix_for(format), find=KVQ_SUFFIXES)
    work = functools.partial(decode_task, format=format, max_pixels=max_pixels, skip_existing=skip_existing, force=force)
    return run(tasks, work, executor=executor, jobs=jobs)


def suffix_for(format: str) -> str:
    """The usual file suffix of a Pillow format (``"JPEG"`` -> ``".jpg"``).

    Parameters
    ----------
    format : str
        A format Pillow writes.

    Returns
    -------
    str

    Raises
    ------
    KvqError
        Pillow has no writer for ``format``.
    """
    from PIL import Image

    upper = format.upper()
    if upper in _SUFFIXES:
        return _SUFFIXES[upper]
    Image.init()
    if upper not in Image.SAVE:
        raise KvqError(f"Pillow cannot write {format!r} images")
    for suffix, name in Image.registered_extensions().items():
        if name == upper:
            return suffix
    raise KvqError(f"Pillow knows no file suffix for {format!r} images")


_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif"}


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
