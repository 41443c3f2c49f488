"""The one exception family that kvq raises.

Every error a caller can provoke with bad input is a :class:`KvqError`, which
subclasses :class:`ValueError` so that code written for Pillow (which treats
``ValueError`` and ``OSError`` as "broken image") keeps working.
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
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
    """Ctrl-C for the command and its batches: a record of it, and a way to hold it where it would lose a result.

    Python runs a signal handler between any two bytecodes of the main thread,
    so every change of handler below is written to survive a Ctrl-C arriving
    halfway through it: state first, handler last on the way in; on the way
    out, a teardown that is simply redone if a Ctrl-C interrupts it, with that
    Ctrl-C delivered again once the teardown is complete.
    """

    def __init__(self) -> None:
        self.seen = False  # Ctrl-C reached the command (see interrupted_by_user)
        self.requested = False  # Ctrl-C arrived while held by held()
        self._armed = False
        self._holding = 0  # 1 while a held() block of the main thread has _hold installed
        self._stale: Any = signal.default_int_handler  # what _hold stands for when no block holds

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
        try:
            if threading.current_thread() is threading.main_thread() and self._current() is signal.default_int_handler:
                installed = True
                signal.signal(signal.SIGINT, self._handle)
            yield
        finally:
            # Redone if Ctrl-C interrupts it: no call comes before the try,
            # as Python runs signal handlers only at calls and loop jumps.
            interrupted = False
            while True:
                try:
                    if installed:
                        signal.signal(signal.SIGINT, signal.default_int_handler)
                    self.seen = False
                    break
                except KeyboardInterrupt:
                    interrupted = True
            _deliver_after(interrupted)

    def _handle(self, signum: int, frame: object) -> None:
        self.seen = True
        signal.default_int_handler(signum, frame)  # type: ignore[arg-type]

    def _current(self) -> Any:
        """The SIGINT handler in force, seeing through a _hold that no block holds (left by another thread)."""
        handler = signal.getsignal(signal.SIGINT)
        if handler == self._hold and not self._holding:
            return self._stale
        return handler

    def pending(self) -> bool:
        """Whether the main thread's held() block has a Ctrl-C waiting (False in any other thread)."""
        return bool(self._holding and self.requested and threading.current_thread() is threading.main_thread())

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold Ctrl-C outside :meth:`waiting`, so that it lands only where it can be handled.

        A parallel batch keeps books on results that its workers finished;
        a KeyboardInterrupt raised anywhere in that bookkeeping (or in the
        caller's loop body, between two results) would drop a result whose
        output is on disk. Inside this block Ctrl-C is recorded in
        :attr:`requested` and raised at the next :meth:`waiting`, or when
        the block ends, however it ends (a generator closed early or
        collected gets it right after); a second Ctrl-C raises at once.
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
        seen = self.seen
        self.requested = False
        try:
            self._stale = previous
            self._holding = 1
            signal.signal(signal.SIGINT, self._hold)
            yield
            if self.requested:  # held past the last wait: it still stops the caller
                raise KeyboardInterrupt
        finally:
            # Redone if Ctrl-C interrupts it (see watching()).
            late = False
            while True:
                try:
                    late = late or self.requested
                    self._holding = 0  # from here _hold acts as `previous`
                    if threading.current_thread() is threading.main_thread():
                        signal.signal(signal.SIGINT, previous)
                    # What leaves this block is a KeyboardInterrupt or nothing; the
                    # record must not relabel a later, unrelated failure "interrupted".
                    self.seen, self.requested, self._armed = seen, False, False
                    break
                except KeyboardInterrupt:
                    late = True
            _deliver_after(late)

    def _hold(self, signum: int, frame: object) -> None:
        if not self._holding:  # no block holds: behave as the handler it replaced
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

    def disarm(self) -> bool:
        """A Ctrl-C from here waits for the next :meth:`waiting` (or :meth:`rearm`); return whether it was armed.

        Called before the rename that puts a finished file in place, so that
        the file and the result that reports it are not torn apart, and while
        a temporary file is created, so that it cannot be left behind.
        """
        armed = self._armed
        if threading.current_thread() is threading.main_thread():
            self._armed = False
        return armed

    def rearm(self, armed: bool) -> None:
        """Undo :meth:`disarm`: with ``armed``, a Ctrl-C that came meanwhile is raised now."""
        if armed and threading.current_thread() is threading.main_thread():
            self._armed = True
            if self.requested:
                raise KeyboardInterrupt


def _deliver_after(ctrl_c: bool) -> None:
    """Deliver again a Ctrl-C that a teardown absorbed, unless a KeyboardInterrupt is already leaving.

    Inside a ``finally`` the exception in flight is visible. Otherwise the
    main thread gets SIGINT again a moment later, from a timer thread: a
    generator that its caller dropped is closed by a finalizer, which
    swallows any exception raised in it, so raising now would lose the
    Ctrl-C; 50 ms later the finalizer is over and the caller's own code
    receives it, as if the user had pressed Ctrl-C then.
    """
    if ctrl_c and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
        timer = threading.Timer(0.05, _thread.interrupt_main)
        timer.daemon = True
        timer.start()


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
