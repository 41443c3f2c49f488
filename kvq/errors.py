"""The one exception family that kvq raises.

Every error a caller can provoke with bad input is a :class:`KvqError`, which
subclasses :class:`ValueError` so that code written for Pillow (which treats
``ValueError`` and ``OSError`` as "broken image") keeps working. A file that
cannot be opened, read or written is a :class:`KvqOSError`, which is an
``OSError`` too (and a ``FileNotFoundError``, ``IsADirectoryError`` or
``PermissionError`` where the system said so).
"""

from __future__ import annotations

from collections.abc import Mapping


class KvqError(ValueError):
    """Base class of every error kvq raises on bad input or options.

    Attributes
    ----------
    command_message : str or None
        The same message as the ``kvq`` command words it, where the library's
        names a keyword argument (``force=True``, ``max_pixels``) that the
        command spells as an option (``--force``, ``--max-pixels``); None when
        both say the same. :func:`message` uses it.
    """

    command_message: str | None = None

    def for_command(self, text: str) -> KvqError:
        """This error, with ``text`` as the command's wording of it (see :attr:`command_message`).

        Parameters
        ----------
        text : str

        Returns
        -------
        KvqError
            ``self``.
        """
        self.command_message = text
        return self


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
    """An encoder or decoder option is out of range or of the wrong type.

    Attributes
    ----------
    option : str or None
        The keyword argument refused (``"k"``, ``"max_pixels"``), where the
        error is about one; a command spells it as its own flag
        (:meth:`spelled`).
    reason : str or None
        What is wrong with it, the message less the option's name.
    """

    option: str | None = None
    reason: str | None = None

    @classmethod
    def about(cls, option: str, reason: str) -> OptionError:
        """The error "``option`` ``reason``", which a command can reword with its own flag.

        Parameters
        ----------
        option : str
            The keyword argument, as the library names it.
        reason : str
            What is wrong with its value ("must be between 1 and 10, not 0").

        Returns
        -------
        OptionError
        """
        error = cls(f"{option} {reason}")
        error.option, error.reason = option, reason
        return error

    def spelled(self, flags: Mapping[str, str]) -> OptionError:
        """This error, worded for a command that spells its option as ``flags[option]`` (see :meth:`KvqError.for_command`).

        Parameters
        ----------
        flags : mapping of str to str
            A command's flags by the keyword argument each sets
            (``{"k": "-k/--colors"}``); an option it does not hold, or a
            wording already set, is left alone.

        Returns
        -------
        OptionError
            ``self``.
        """
        if self.command_message is None and self.option is not None and self.option in flags and self.reason is not None:
            self.for_command(f"{flags[self.option]} {self.reason}")
        return self


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


class KvqOSError(OSError, KvqError):
    """A file kvq was asked to read or write cannot be: the system's error, as a :class:`KvqError` too.

    Raised with the system's ``errno``, ``strerror`` and ``filename`` (the
    file the caller named, not a temporary one), so ``except OSError`` and
    ``except KvqError`` both catch it. The three commonest have their own
    classes, which also subclass the built-in one of the same name; any other
    (a full disk, a read-only file system) is this class.
    """


class KvqFileNotFoundError(FileNotFoundError, KvqOSError):
    """A file to read (or the folder of a file to write) does not exist."""


class KvqIsADirectoryError(IsADirectoryError, KvqOSError):
    """A folder was given where a file is read or written."""


class KvqPermissionError(PermissionError, KvqOSError):
    """The system refused to open a file for reading, or to create or replace one."""


def os_error(exc: OSError, filename: object = None) -> KvqOSError:
    """The :class:`KvqOSError` of the same kind as ``exc``, with its number and words.

    Parameters
    ----------
    exc : OSError
        What the system raised.
    filename : str or path-like, optional
        The file to name instead of ``exc.filename`` (the output a caller
        asked for rather than the hidden temporary file beside it).

    Returns
    -------
    KvqOSError
        ``exc`` itself when it is one already.
    """
    if isinstance(exc, KvqOSError) and filename is None:
        return exc
    kind: type[KvqOSError] = KvqOSError
    kinds = ((FileNotFoundError, KvqFileNotFoundError), (IsADirectoryError, KvqIsADirectoryError), (PermissionError, KvqPermissionError))
    for builtin, ours in kinds:
        if isinstance(exc, builtin):
            kind = ours
    name = exc.filename if filename is None else filename
    if exc.errno is None:
        return kind(*exc.args)
    return kind(exc.errno, exc.strerror, None if name is None else str(name))


def caused_by_ctrl_c(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was caused by, a KeyboardInterrupt.

    Ctrl-C inside a compiled (numba) kernel surfaces as a SystemError
    ("returned a result with an exception set") whose chain holds the
    KeyboardInterrupt, one or more links down.

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    bool
    """
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, KeyboardInterrupt):
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return False


def message(exc: BaseException) -> str:
    """One line saying what went wrong: the command's error line and a batch's failure reason, worded here only.

    Worded for the command: an option is named as the command spells it
    (``--force``), where the exception's own message names the library's
    keyword (``force=True``).

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    str
        kvq's own message for a :class:`KvqError`; the file and the system's
        words for an OSError (a :class:`KvqOSError` included); "interrupted" for Ctrl-C; "out of memory"; and
        for anything else an internal error to report.
    """
    if isinstance(exc, KvqError) and exc.command_message:
        text = exc.command_message
    elif isinstance(exc, KvqError) and not isinstance(exc, KvqOSError):
        text = str(exc)
    elif caused_by_ctrl_c(exc):
        text = "interrupted"
    elif isinstance(exc, FileNotFoundError):
        text = f"{exc.filename}: no such file"
    elif isinstance(exc, IsADirectoryError):
        text = f"{exc.filename}: is a directory"
    elif isinstance(exc, PermissionError):
        text = f"{exc.filename}: permission denied"
    elif isinstance(exc, OSError):
        text = (exc.strerror and f"{exc.filename or ''}: {exc.strerror}".lstrip(": ")) or str(exc)
    elif isinstance(exc, MemoryError):
        text = "out of memory"
    else:
        text = f"internal error ({type(exc).__name__}: {exc}); please report it"
    return " ".join(text.split())
