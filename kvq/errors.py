"""The one exception family that kvq raises.

Every error a caller can provoke with bad input is a :class:`KvqError`, which
subclasses :class:`ValueError` so that code written for Pillow (which treats
``ValueError`` and ``OSError`` as "broken image") keeps working.
"""

from __future__ import annotations


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
    """An image has more pixels than the caller's ``max_pixels`` limit allows."""


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
