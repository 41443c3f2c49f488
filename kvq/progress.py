"""Progress on standard error: a bar for batches, a ticker for one long encode.

Small and dependency-free on purpose: the ``kvq`` command must start fast,
and the part of tqdm it would use is this much. Nothing is drawn unless the
stream is a terminal, so logs and pipes get no control characters.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from types import TracebackType
from typing import IO


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressBar:
    """Counts, rate and time left for a batch of files, redrawn in place.

    Parameters
    ----------
    total : int
        Number of files.
    label : str
        Shown before the bar (``"encode"``).
    stream : text file, default=sys.stderr
    enabled : bool or None
        None: draw only when ``stream`` is a terminal.
    interval : float, default=0.1
        Least seconds between redraws.
    """

    def __init__(self, total: int, label: str, stream: IO[str] | None = None, enabled: bool | None = None, interval: float = 0.1) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self.interval = interval
        self.count = 0
        self.failed = 0
        self.skipped = 0
        self._start = time.monotonic()
        self._drawn = 0.0
        self._width = 0

    def update(self, status: str) -> None:
        """Count one finished file.

        Parameters
        ----------
        status : {"done", "skipped", "failed"}
        """
        self.count += 1
        self.failed += status == "failed"
        self.skipped += status == "skipped"
        now = time.monotonic()
        if self.enabled and (now - self._drawn >= self.interval or self.count == self.total):
            self._draw(now)

    def line(self) -> str:
        """str: the bar's text for the current counts."""
        elapsed = time.monotonic() - self._start
        fraction = self.count / self.total if self.total else 1.0
        filled = int(24 * fraction)
        rate = self.count / elapsed if elapsed > 0 else 0.0
        # Skipped files cost almost nothing: leave them out of the rate that predicts the rest.
        worked = self.count - self.skipped
        left = (self.total - self.count) * elapsed / worked if worked else None
        parts = [
            f"kvq {self.label} [{'#' * filled}{'.' * (24 - filled)}] {self.count:,}/{self.total:,}",
            f"{100 * fraction:3.0f}%",
            f"{rate:.1f} files/s",
            f"{_duration(elapsed)} elapsed" + ("" if left is None or self.count == self.total else f", {_duration(left)} left"),
        ]
        if self.skipped:
            parts.append(f"{self.skipped:,} skipped")
        if self.failed:
            parts.append(f"{self.failed:,} failed")
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        text = self.line()
        pad = max(0, self._width - len(text))
        self.stream.write(f"\r{text}{' ' * pad}")
        self.stream.flush()
        self._width = len(text)
        self._drawn = now

    def write(self, message: str, stream: IO[str] | None = None) -> None:
        """Print a line above the bar (the bar is redrawn under it).

        Parameters
        ----------
        message : str
        stream : text file, optional
            Where the line goes; default the bar's stream.
        """
        out = stream if stream is not None else self.stream
        if self.enabled and self._width:
            self.stream.write(f"\r{' ' * self._width}\r")
            self.stream.flush()
            self._width = 0
        print(message, file=out, flush=True)
        if self.enabled and self.count:
            self._draw(time.monotonic())

    def say_now(self, message: str) -> None:
        """Print a line above the bar from a signal handler.

        Written straight to the stream's descriptor: a handler runs between
        two instructions of the main thread, maybe inside a write to the same
        stream, which a second write through it would re-enter. A stream
        without a descriptor gets the line from a thread, which waits for
        the write in hand.

        Parameters
        ----------
        message : str
        """
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            threading.Thread(target=self.write, args=(message,), name="kvq-say-now", daemon=True).start()
            return
        clear = f"\r{' ' * self._width}\r" if self.enabled and self._width else ""
        self._width = 0
        with contextlib.suppress(OSError):
            os.write(fd, f"{clear}{message}\n".encode(getattr(self.stream, "encoding", None) or "utf-8", "backslashreplace"))

    def close(self) -> None:
        """Finish the bar's line."""
        if self.enabled and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class Ticker:
    """What a long single-file job is doing and for how long, once it has run ``after`` seconds.

    A daemon thread redraws one line a few times a second; :meth:`stage`
    names the current step. Nothing is drawn for jobs shorter than
    ``after``, or when the stream is not a terminal.

    Parameters
    ----------
    label : str
        What is being done (``"encoding photo.png"``).
    after : float, default=2.0
    stream : text file, default=sys.stderr
    enabled : bool or None
        None: only on a terminal.
    """

    def __init__(self, label: str, after: float = 2.0, stream: IO[str] | None = None, enabled: bool | None = None) -> None:
        self.label = label
        self.after = after
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self._stage = ""
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._width = 0
        self._thread: threading.Thread | None = None

    def stage(self, name: str) -> None:
        """Name the step now running (``"quantizing"``).

        Parameters
        ----------
        name : str
        """
        self._stage = name

    def __enter__(self) -> Ticker:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="kvq-ticker", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        if self._stop.wait(self.after):
            return
        while True:
            text = f"kvq: {self.label}: {self._stage} ({_duration(time.monotonic() - self._start)})"
            self.stream.write(f"\r{text}{' ' * max(0, self._width - len(text))}")
            self.stream.flush()
            self._width = len(text)
            if self._stop.wait(0.25):
                return

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._width:
            self.stream.write(f"\r{' ' * self._width}\r")
            self.stream.flush()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
