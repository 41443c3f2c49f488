"""kvq's own process pool for a batch (``jobs=N``), and the life of its workers.

:func:`process_pool` makes a pool whose workers ignore Ctrl-C (the process
that runs the batch decides), unwind the file in hand on SIGTERM and end,
and never outlive the process that started them (:func:`_worker_setup`).
:class:`_OwnPool` is the runner's backend on it: one file per worker in
flight; each result is also recorded on disk, so that one lost when a
worker's death puts the pool down is found rather than made again, and the
other files in flight run again alone, once, so that a worker's death fails
at most its own file and no file is done twice.

The runner, :func:`kvq.batch.run`, drives every backend through
:class:`_Backend`, which lives here, with the backend that shaped it, because
:mod:`kvq.batch` imports this module and never the other way; its other
backends (this process, a caller's executor) are :mod:`kvq.batch`'s.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .filetask import FileResult, Task, _failed_to_run

# --------------------------------------------------------------------------- the pool


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
        # kvq.batch: the runner, which imports this module and the work on one file, all that a worker unpickles.
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


# --------------------------------------------------------------------------- the runner's backend on it


class _Backend:
    """What the runner (:func:`kvq.batch._drive`) runs the work on: an executor, and what to do when a worker dies or the batch ends."""

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
