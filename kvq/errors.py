"""The one exception family that kvq raises.

Every error a caller can provoke with bad input is a :class:`KvqError`, which
subclasses :class:`ValueError` so that code written for Pillow (which treats
``ValueError`` and ``OSError`` as "broken image") keeps working.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class KvqError(ValueError):
    """Base class of every error kvq raises on bad input or options."""


class FormatError(KvqError):
    """A byte string is not a valid ``.kvq`` file.

    Parameters
    ----------
    message : str
        What is wrong.
    offset : int or None
        Byte offset in the file where the problem was found, when known.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.reason = message
        self.offset = offset
        if offset is not None:
            message = f"{message} (at byte {offset})"
        super().__init__(message)

    def rebased(self, start: int) -> FormatError:
        """The same error, its offset counted from ``start`` bytes earlier.

        A reader of one part of a file (a chunk, the index data) reports
        offsets within that part; the caller that knows where the part begins
        rebases them to offsets in the file.

        Parameters
        ----------
        start : int
            File offset of the part's first byte.

        Returns
        -------
        FormatError
            Of the same class, with offset ``start + offset`` (``start`` when
            the part gave none).
        """
        return type(self)(self.reason, start + (self.offset or 0))


class NotKvqError(FormatError):
    """The data does not start with the ``.kvq`` signature."""


class TruncatedError(FormatError):
    """The file ends before the data its header declares."""


class ChecksumError(FormatError):
    """A chunk's CRC-32 does not match its contents."""


class ImageTooLargeError(KvqError):
    """An image has more pixels than the caller's ``max_pixels`` limit allows.

    Also raised for an input image that Pillow refuses as a decompression bomb
    (``PIL.Image.MAX_IMAGE_PIXELS``), whether at open or, for formats that
    learn a frame's size late, at load.
    """


class UnsupportedImageError(KvqError):
    """An input image (array or Pillow image) cannot be encoded."""


class OptionError(KvqError):
    """An encoder or decoder option is out of range or of the wrong type."""


class QualityError(KvqError):
    """No palette of at most ``k`` colours reaches the requested ``quality``.

    Attributes
    ----------
    achieved : float
        The best PSNR (dB) reached with the largest allowed palette.
    """

    def __init__(self, message: str, achieved: float) -> None:
        self.achieved = achieved
        super().__init__(message)


class _Interrupt:
    """Whether Ctrl-C reached this process during :meth:`watching` (a record, set by a signal handler)."""

    def __init__(self) -> None:
        self.seen = False
        self.requested = False  # Ctrl-C arrived while held by held()
        self._armed = False
        self._holding = 0  # held() blocks that installed _hold and have not ended
        self._stale: Any = None  # the handler _hold stands for after a block ended off the main thread

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """For the length of a command, record SIGINT before raising KeyboardInterrupt as Python's own handler does.

        A compiled kernel that is interrupted turns the KeyboardInterrupt
        into a SystemError; the record tells the two apart. Only the main
        thread may set handlers, and a handler someone else installed is
        kept. On the way out the handler and the record are put back, so a
        program that runs the command in-process keeps its own Ctrl-C and
        its later failures are not taken for interruptions.
        """
        self.seen = False
        installed = False
        if threading.current_thread() is threading.main_thread() and self._current() is signal.default_int_handler:
            signal.signal(signal.SIGINT, self._handle)
            installed = True
        try:
            yield
        finally:
            if installed:
                signal.signal(signal.SIGINT, signal.default_int_handler)
            self.seen = False

    def _handle(self, signum: int, frame: object) -> None:
        self.seen = True
        signal.default_int_handler(signum, frame)  # type: ignore[arg-type]

    def _current(self) -> Any:
        """The SIGINT handler in force, seeing through a _hold left behind by a block that ended in another thread."""
        handler = signal.getsignal(signal.SIGINT)
        if handler == self._hold and not self._holding:
            return self._stale
        return handler

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold Ctrl-C outside :meth:`waiting`, so that it lands only where it can be handled.

        A parallel batch keeps books on results that its workers finished;
        a KeyboardInterrupt raised anywhere in that bookkeeping (or in the
        caller's loop body, between two results) would drop a result whose
        output is on disk. Inside this block Ctrl-C is recorded in
        :attr:`requested` and raised at the next :meth:`waiting`, or when
        the block ends, however it ends; a second Ctrl-C raises at once.
        Outside the main thread, inside another such block, or where someone
        else's SIGINT handler is installed, nothing changes.
        """
        if threading.current_thread() is not threading.main_thread() or self._holding:
            yield
            return
        previous = self._current()
        if previous not in (signal.default_int_handler, self._handle):
            yield
            return
        self.requested = False
        seen = self.seen
        signal.signal(signal.SIGINT, self._hold)
        self._holding = 1
        try:
            try:
                yield
            except GeneratorExit:
                # The caller stopped early (a break, close()): a Ctrl-C it
                # was holding must still stop it, not vanish.
                if self.requested:
                    raise KeyboardInterrupt from None
                raise
            if self.requested:  # held past the last wait: it still stops the caller
                raise KeyboardInterrupt
        finally:
            self._holding = 0
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, previous)
            else:
                # A generator closed by another thread (or collected there)
                # cannot set the handler: _hold stays and acts as `previous`.
                self._stale = previous
            # What leaves this block is a KeyboardInterrupt or nothing; the
            # record must not relabel a later, unrelated failure "interrupted".
            self.seen, self.requested = seen, False

    def _hold(self, signum: int, frame: object) -> None:
        if not self._holding:  # left behind: behave as the handler it replaced
            if self._stale == self._handle:
                self._handle(signum, frame)
            signal.default_int_handler(signum, frame)  # type: ignore[arg-type]
        self.seen = True
        again = self.requested
        self.requested = True
        if self._armed or again:
            signal.default_int_handler(signum, frame)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Where a held Ctrl-C lands: raise KeyboardInterrupt now if one came, or when one comes.

        Only in the main thread inside :meth:`held`; elsewhere nothing changes.
        """
        if not self._holding or threading.current_thread() is not threading.main_thread():
            yield
            return
        self._armed = True
        try:
            if self.requested:
                raise KeyboardInterrupt
            yield
        finally:
            self._armed = False

    def disarm(self) -> None:
        """An output is about to be committed: a Ctrl-C from here waits for the next :meth:`waiting`.

        Called before the rename that puts a finished file in place, so that
        the file and the result that reports it are not torn apart.
        """
        if threading.current_thread() is threading.main_thread():
            self._armed = False


interrupt = _Interrupt()


def interrupted_by_user(exc: BaseException) -> bool:
    """True when ``exc`` is, or was caused by, Ctrl-C.

    Parameters
    ----------
    exc : BaseException
        The exception caught.

    Returns
    -------
    bool
        True for a KeyboardInterrupt anywhere in the chain of causes, or for
        any exception raised after the CLI's SIGINT handler saw Ctrl-C.
    """
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, KeyboardInterrupt):
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return interrupt.seen
