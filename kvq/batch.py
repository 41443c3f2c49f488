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
  with every CRC, has the input's size and shows no other options; an image
  that is the ``.kvq``'s decoding, see :func:`kvq.filetask.decode_task`), so
  running the same command again resumes an interrupted batch. ``force=True``
  redoes every file; an existing output that is not valid is never replaced
  without it, and an image beside its ``.kvq`` that is not its decoding (the
  image it was made from) not even with it.
- At most a few tasks per worker are in flight, so a million-file folder does
  not become a million futures, and a result is released as soon as it has
  arrived: a Dask worker that dies loses no finished work.
- Stopping is the caller's: ``stop`` is anything with ``is_set()`` (a
  :class:`threading.Event`); once it is set no new file starts, the files in
  hand finish and are yielded, and the generator ends. kvq installs no signal
  handler: the ``kvq`` command sets the flag on Ctrl-C (:mod:`kvq.cli`).

The parts live in modules of their own, whose public names this module
re-exports: the work on one file, with :class:`Task` and :class:`FileResult`,
in :mod:`kvq.filetask`; kvq's own process pool and its workers' life in
:mod:`kvq.pool`. Here: the plan (:func:`plan`), the runner (:func:`run`) and
its backends, the two verbs (:func:`encode_files`, :func:`decode_files`) and
:func:`summarize`.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import os
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from . import paths
from .container import DEFAULT_MAX_PIXELS, pixel_limit
from .errors import KvqError, OptionError
from .filetask import (
    COLUMNS,
    DONE,
    FAILED,
    MAX_WARNINGS,
    SKIPPED,
    FileResult,
    Task,
    _failed_to_run,
    decode_task,
    encode_task,
    failed,
    reason,
)
from .filetask import library_logs as library_logs  # not in __all__, yet public: the command's held-back standard error uses it
from .formats import KVQ_SUFFIX, suffix_for
from .options import EncoderOptions
from .paths import walk_images
from .pool import _Backend, _OwnPool, process_pool

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


class Stop(Protocol):
    """What :func:`run` takes as its stop flag: a :class:`threading.Event`, or anything with ``is_set()``."""

    def is_set(self) -> bool: ...


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
    inputs : str, path-like, or iterable of them
        Files and folders (one path alone is one input). A folder contributes every file under it whose
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
    if isinstance(inputs, (str, os.PathLike)):
        # One path, not a sequence of one-letter paths ("photos" read as p, h, o, ...).
        inputs = [inputs]
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


# --------------------------------------------------------------------------- running


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
        raise OptionError("give either executor or jobs, not both")
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


class _InProcess(_Backend):
    """This process, one file after another: each submit runs the file, so results come in task order."""

    def submit(self, work: Callable[[Task], FileResult], task: Task) -> cf.Future:
        future: cf.Future = cf.Future()
        future.set_result(work(task))
        return future


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
    inputs : str, path-like, or iterable of them
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
    inputs : str, path-like, or iterable of them
        ``.kvq`` files and folders (their ``.kvq`` files, recursively).
    output : str, path-like or None
        Output folder (see :func:`plan`); None: beside each input. Beside its input (None, or the inputs' own
        folder), an image that is not the input's decoding (the image it was made from, most likely) fails that
        file and is never replaced, even with ``force``.
    format : str, default="PNG"
        Pillow format of the outputs; their suffix is the format's usual one.
    max_pixels : int or None, default=178,956,970
        Refuse larger images.
    executor, jobs, skip_existing, force, stop
        As for :func:`encode_files`.

    Yields
    ------
    FileResult

    Raises
    ------
    OptionError
        ``max_pixels`` is neither None nor a positive integer (at the call, before any file).
    """
    # The caller's mistake once, before any file, rather than one failure a file.
    pixel_limit(max_pixels)
    tasks = plan(inputs, output, suffix=suffix_for(format), find=KVQ_SUFFIXES)
    # Beside their inputs, outputs meet the images the .kvq files were made from: those are never replaced
    # (decode_task keeps only those in their input's own folder).
    work = functools.partial(
        decode_task, format=format, max_pixels=max_pixels, skip_existing=skip_existing, force=force,
        keep_other_images=True,
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
