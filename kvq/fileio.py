"""The file verbs, and writing files so that nothing a user owns is lost.

:func:`encode_file` and :func:`decode_file` are the file-level doors onto the
in-memory codec (as ``qoi_write`` and ``qoi_read`` wrap ``qoi_encode`` and
``qoi_decode``); ``kvq.save``, ``kvq.load``, the ``kvq`` command and the
benchmark suite all go through them.

Every output goes to a temporary file beside its destination and is renamed
into place only when complete, so a crash or SIGKILL leaves either the old
file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Union

from . import formats
from .codec import Decoded, Encoded, decode, encode_image
from .container import DEFAULT_MAX_PIXELS, Header, pixel_limit, read_header_from
from .errors import KvqError, KvqFileNotFoundError, KvqIsADirectoryError, KvqOSError, os_error
from .formats import decode_format, encode_format
from .inputs import is_path, seekable
from .metadata import Metadata
from .options import EncoderOptions
from .pixels import open_image

if TYPE_CHECKING:
    import numpy as np

PathLike = Union[str, "os.PathLike[str]"]


class OutputExistsError(KvqError, FileExistsError):
    """The output file exists and overwriting was not asked for."""


def output_exists(target: object) -> OutputExistsError:
    """The refusal to replace ``target``, worded for the library (``force=True``) and for the command (``--force``).

    Parameters
    ----------
    target : str or path-like

    Returns
    -------
    OutputExistsError
    """
    error = OutputExistsError(f"output {target} exists (force=True replaces it)")
    error.for_command(f"output {target} exists (-f/--force replaces it)")
    return error


def check_output(path: PathLike, *, force: bool = False, inputs: tuple[Any, ...] = ()) -> Path:
    """Refuse an output path that would overwrite an input or, without ``force``, any file.

    Parameters
    ----------
    path : str or path-like
    force : bool, default=False
        Allow replacing an existing file (never an input).
    inputs : tuple of str or path-like
        Paths being read in the same operation.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    KvqError
        ``path`` is one of ``inputs``.
    OutputExistsError
        ``path`` exists and ``force`` is False.
    KvqIsADirectoryError
        ``path`` is a folder.
    KvqFileNotFoundError
        The folder ``path`` would go in does not exist (:class:`KvqOSError`
        when it is a file).
    """
    target = Path(path)
    check_not_an_input(target, inputs)
    if target.is_dir():
        error: KvqOSError = KvqIsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
        raise error.for_command(f"output {target} is a directory")
    if target.exists() and not force:
        raise output_exists(target)
    # Name the folder that is missing: "no such file" about a file that is
    # about to be created says nothing useful. The error is the one open()
    # would raise for it, so that except FileNotFoundError catches it too.
    folder = target.parent
    if not folder.is_dir():
        if folder.exists():
            error = KvqOSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
            raise error.for_command(f"output {target}: folder {folder} is not a folder")
        error = KvqFileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(folder))
        raise error.for_command(f"output {target}: folder {folder} does not exist")
    return target


def check_not_an_input(path: PathLike, inputs: tuple[Any, ...]) -> None:
    """Refuse an output path that is one of the inputs, whatever else is true of it (force or not, valid or not).

    Parameters
    ----------
    path : str or path-like
    inputs : tuple of str or path-like

    Raises
    ------
    KvqError
        ``path`` names the same file as one of ``inputs``.
    """
    target = Path(path)
    for source in inputs:
        if _same_file(source, target):
            raise KvqError(f"output {target} is the same file as input {source}")


def check_writable(folder: PathLike) -> None:
    """Refuse a folder no file can be created in, before any work, by creating one there as the outputs will be.

    A folder that does not exist yet is checked at its nearest existing
    parent, where it will be made. A permission check (``os.access``) would
    pass for root in a read-only folder and knows nothing of read-only file
    systems; creating and removing a hidden file tells.

    Parameters
    ----------
    folder : str or path-like

    Raises
    ------
    KvqOSError
        The system's error about ``folder``; the command words it "cannot
        write into FOLDER: " and the system's words.
    """
    import tempfile  # here, not at the top: a command's start-up pays for what it uses

    place = Path(folder) if str(folder) else Path(".")
    while not os.path.lexists(place) and place != place.parent:
        place = place.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=".kvq-probe.", suffix=".tmp", dir=place)
    except OSError as exc:
        raise os_error(exc, folder).for_command(f"cannot write into {folder}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)


def _same_file(a: PathLike, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == b.resolve()


#: Flags of a new temporary file: created here or not at all, never following a link.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)


def create_temporary(target: Path) -> tuple[int, Path]:
    """Create a hidden temporary file beside ``target``, for writing, with the permissions any new file gets.

    Parameters
    ----------
    target : pathlib.Path
        The file it will become.

    Returns
    -------
    fd : int
        Open for writing.
    path : pathlib.Path

    Raises
    ------
    KvqOSError
        Naming ``target``, not the hidden temporary file.
    """
    folder = target.parent if str(target.parent) else Path(".")
    while True:
        name = folder / f".{target.name}.{os.urandom(6).hex()}.tmp"
        try:
            # 0o666 less the umask, as the system gives any new file (mkstemp would give 0o600).
            return os.open(name, _CREATE, 0o666), name
        except FileExistsError:
            continue
        except OSError as exc:
            raise os_error(exc, target) from None


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], None] | bytes, *, force: bool = False) -> None:
    """Write a file through a temporary sibling that is renamed into place.

    A crash, a SIGKILL or an exception (Ctrl-C included) leaves either the old
    file or the new one, never half of one, and no temporary file but after
    a SIGKILL.

    Parameters
    ----------
    path : str or path-like
        Destination.
    write : bytes or callable
        The content, or a function given the open binary temporary file.
    force : bool, default=False
        Replace an existing destination.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is False.
    KvqOSError
        The folder cannot be written, the disk is full...: the system's error,
        naming ``path``.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    while True:
        # The name comes first: whatever interrupts the work from the moment
        # the file exists, the cleanup below knows what to remove.
        tmp_name = folder / f".{target.name}.{os.urandom(6).hex()}.tmp"
        fd = None
        try:
            fd = os.open(tmp_name, _CREATE, 0o666)
            with os.fdopen(fd, "wb") as fp:
                if isinstance(write, (bytes, bytearray, memoryview)):
                    fp.write(write)
                else:
                    write(fp)
                fp.flush()
                os.fsync(fp.fileno())
            _commit(tmp_name, target, force)
            return
        except FileExistsError as exc:
            if fd is None and not isinstance(exc, OutputExistsError):
                continue  # the name was taken: not ours to remove, try another
            _remove(tmp_name)
            raise
        except KvqOSError:
            _remove(tmp_name)
            raise  # about another file (an input read while writing), named already
        except OSError as exc:
            _remove(tmp_name)
            # Name the output the user gave, not the hidden temporary file, and
            # as a KvqError (a full disk, a read-only folder).
            raise os_error(exc, target) from None
        except BaseException:
            _remove(tmp_name)
            raise


def _commit(tmp_name: Path, target: Path, force: bool) -> None:
    if force:
        os.replace(tmp_name, target)
        return
    # link() fails if the target appeared meanwhile: never overwrite a file
    # that another process created after our check.
    try:
        os.link(tmp_name, target)
    except FileExistsError:
        raise output_exists(target) from None
    except OSError:
        if target.exists():
            raise output_exists(target) from None
        os.replace(tmp_name, target)
    else:
        os.unlink(tmp_name)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _check_before_work(source: object, destination: object, force: bool) -> tuple[Any, ...]:
    """Refuse the output before a long encode or decode; return the inputs it must never replace."""
    inputs = (source,) if is_path(source) else ()
    if is_path(destination):
        check_writable(check_output(destination, force=force, inputs=inputs).parent)
    return inputs


def default_output(source: str, suffix: str) -> str:
    """The output a command writes when none is named: ``source`` with ``suffix``.

    Parameters
    ----------
    source : str
        Input path, or ``-`` (standard input, whose output is standard output).
    suffix : str
        Such as ``".kvq"``.

    Returns
    -------
    str
    """
    if source == "-":
        return "-"
    if os.path.isdir(source):
        raise KvqIsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), source)
    return str(Path(source).with_suffix(suffix))


def write_output(
    destination: PathLike | IO[bytes], content: Callable[[IO[bytes]], None] | bytes, *, force: bool, inputs: tuple[Any, ...] = ()
) -> None:
    """Write to a path atomically (see :func:`atomic_write`), or to an open file as it is.

    Parameters
    ----------
    destination : str, path-like or binary file object
    content : bytes or callable
        The bytes, or a function given the open binary file.
    force : bool
        Replace an existing file.
    inputs : tuple
        Inputs of the same operation; paths among them are never overwritten.
    """
    if not is_path(destination):
        out: Any = _WholeWrites(destination)  # type: ignore[arg-type]  # _is_path narrowed it to a file object
        if isinstance(content, (bytes, bytearray, memoryview)):
            out.write(content)
        else:
            content(out)
        out.flush()
        return
    check_output(destination, force=force, inputs=tuple(i for i in inputs if is_path(i)))
    atomic_write(destination, content, force=force)


def standard_stream(name: str, direction: str, *, force: bool = False) -> Any:
    """A path as given, or the binary standard input or output for ``-``.

    Parameters
    ----------
    name : str
        A path, or ``-``.
    direction : {"in", "out"}
    force : bool, default=False
        Write binary data to a terminal all the same.

    Returns
    -------
    str or binary file object

    Raises
    ------
    KvqError
        The standard stream is closed, or it is a terminal that would get
        binary output.
    """
    import sys

    if name != "-":
        return name
    stream = sys.stdin if direction == "in" else sys.stdout
    which = "input" if direction == "in" else "output"
    if stream is None:
        # Python sets sys.stdin / sys.stdout to None when the descriptor was
        # closed before it started (kvq decode x.kvq -o - >&-).
        raise KvqError(f"standard {which} is closed")
    if direction == "out" and not force and stream.isatty():
        # As gzip does: image bytes on a terminal are never what was meant.
        raise KvqError("will not write binary data to a terminal; redirect standard output, or use -f to force")
    return stream.buffer


class _WholeWrites:
    """A binary stream whose ``write`` writes everything or raises.

    A buffered pipe whose reader has gone can report a short write instead of
    raising (``kvq encode -o - | head -c 10``); callers, Pillow's writers
    among them, ignore the count, so the command would report success for an
    output cut off. Writing the rest raises BrokenPipeError.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            written = self._stream.write(view)
            if written is None:  # a non-blocking stream that is full: refuse rather than spin
                raise BlockingIOError(errno.EAGAIN, "standard output would block")
            view = view[written:]
        return total

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def encode_file(
    source: Any,
    destination: PathLike | IO[bytes] | None,
    options: EncoderOptions | None = None,
    *,
    force: bool = False,
    name: str | None = None,
    format: str | None = None,
    progress: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> Encoded:
    """Encode an image to a ``.kvq`` file, or the quantized image to another format: the one file-level encode.

    The output is checked before the (possibly long) encode and written
    atomically after it, so an existing file or the input itself is never
    replaced by mistake.

    Parameters
    ----------
    source : str, path-like, bytes, binary file object, PIL.Image.Image or ndarray
        An image file (path, its bytes, or an open file read to its end) or
        an image already in memory.
    destination : str, path-like, binary file object or None
        Where the ``.kvq`` file goes; None keeps it in memory only.
    options : EncoderOptions, optional
        When omitted, built from ``kwargs``.
    force : bool, default=False
        Replace an existing destination (never the input).
    name : str, optional
        What to call the input in error messages.
    format : str, optional
        ``"KVQ"``, or a Pillow format name to write the quantized image in
        that format instead (``"PNG"``: an indexed PNG with the palette, and
        the alpha in ``tRNS``, as pngquant writes). Default: from the
        destination's extension, see :func:`kvq.formats.encode_format`.
    progress : callable, optional
        Called with the name of each step as it starts (``"reading"``,
        ``"quantizing"``, ``"writing"``), for a progress display.
    **kwargs
        Encoder options, and ``metadata`` or ``strip``, as for :func:`kvq.encode`.

    Returns
    -------
    Encoded
        The ``.kvq`` file's bytes (whatever format was written), header,
        sizes (``.sizes``) and quality (``.psnr``).

    Raises
    ------
    KvqError (and subclasses)
        :class:`kvq.KvqOSError` (an OSError too) for a file that cannot be read or written.
    """
    fmt = encode_format(destination) if format is None else format
    step = progress or (lambda name: None)
    inputs = _check_before_work(source, destination, force)
    step("reading")
    if is_path(source) or isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
        image = open_image(source, name=name)
    else:
        image = source
    step("quantizing")
    if fmt.upper() != formats.KVQ:
        options = for_image_output(options, kwargs)
    encoded = encode_image(image, options, **kwargs)
    if destination is not None:
        step("writing")
        write_output(destination, _content(encoded, fmt), force=force, inputs=inputs)
    return encoded


def for_image_output(options: EncoderOptions | None, kwargs: dict[str, Any]) -> EncoderOptions:
    """The options of an encode whose output is an image (PNG, GIF ...), not a ``.kvq`` file.

    No ``.kvq`` file is written, so its indices are laid out at fixed width
    rather than entropy coded: the work (and the compiled coder) would be
    thrown away, and with ``quality`` the smallest ``.kvq`` file is not the
    point; the fewest colours are, as pngquant picks them. Encoder options
    are taken out of ``kwargs``.

    Parameters
    ----------
    options : EncoderOptions or None
    kwargs : dict
        Keyword options of :func:`encode_file`; the encoder's are removed.

    Returns
    -------
    EncoderOptions
    """
    from dataclasses import fields, replace

    from .coding import FALLBACK

    if options is None:
        names = {f.name for f in fields(EncoderOptions)}
        options = EncoderOptions.from_kwargs(**{key: kwargs.pop(key) for key in list(kwargs) if key in names})
    return replace(options, coding=FALLBACK.name)


def written_psnr(encoded: Encoded, path: PathLike) -> float:
    """The PSNR (dB) of an image file as written, decoded back, against the encoder's input.

    What a lossy format (JPEG), or Pillow's conversion of an RGBA palette to
    GIF's one transparent entry, keeps of the quantized image is not
    :attr:`Encoded.psnr`: the command prints this instead, for every image
    output but PNG (kvq writes its pixels exactly).

    Parameters
    ----------
    encoded : Encoded
    path : str or path-like
        The file written.

    Returns
    -------
    float
        ``inf`` when the file decodes to the input exactly.
    """
    import numpy as np
    from PIL import Image

    from .metrics import psnr

    original = encoded.original if encoded.original.ndim == 3 else encoded.original[..., None]
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[original.shape[2]]
    with Image.open(path) as image:
        written = np.asarray(image.convert(mode))
    return psnr(original, written.reshape(original.shape))


def measured_psnr(encoded: Encoded, destination: Any) -> float:
    """The PSNR a command reports for its output: of the file as written where its format may lose (:func:`written_psnr`).

    Parameters
    ----------
    encoded : Encoded
    destination : str, path-like or file object

    Returns
    -------
    float
    """
    if is_path(destination) and encode_format(destination) not in (formats.KVQ, "PNG"):
        return written_psnr(encoded, destination)
    return encoded.psnr


def _content(encoded: Encoded, format: str) -> Callable[[IO[bytes]], None] | bytes:
    if format.upper() == formats.KVQ:
        return encoded.data
    from .export import write_image

    # The quantized image is what a decoder of the .kvq file would rebuild,
    # metadata included.
    decoded = Decoded(encoded.header, encoded.palette, encoded.indices, encoded.metadata)

    def write(fp: IO[bytes]) -> None:
        write_image(decoded, fp, format)

    return write


@dataclass(frozen=True)
class DecodedFile:
    """What :func:`decode_file` decoded: the file's header, palette and metadata.

    The indices are not kept: they were read a band of rows at a time, and
    holding them all would cost as much memory again as the output.
    :func:`kvq.decode_indexed` gives them.

    Attributes
    ----------
    header : Header
    palette : ndarray of uint8, shape (K, C)
    metadata : Metadata
        ICC profile, EXIF and resolution, as stored in the file (and written
        to the output unless stripped).
    """

    header: Header
    palette: np.ndarray
    metadata: Metadata


def decode_file(
    source: PathLike | IO[bytes] | bytes,
    destination: PathLike | IO[bytes],
    format: str | None = None,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    force: bool = False,
    strip: bool = False,
    threads: int | None = None,
) -> DecodedFile:
    """Decode a ``.kvq`` file to an image file in any format Pillow writes.

    The file is read a band of rows at a time (:class:`kvq.bands.BandReader`),
    so that a fixed-width file needs memory for the output image and one band
    rather than for the file, every index and every pixel at once. An
    entropy-coded file's index stream cannot be cut into bands: it is decoded
    whole to its indices (1 or 2 bytes a pixel), which are then looked up in
    the palette a band at a time.

    Parameters
    ----------
    source : str, path-like, binary file object or bytes
        The ``.kvq`` file. A path is read as it is needed; a file object
        (standard input) is read whole first, as it may not seek.
    destination : str, path-like or binary file object
        The image file to write.
    format : str, optional
        Pillow format name; default from the destination's extension, PNG
        for a file object.
    max_pixels : int or None, default=178,956,970
        Refuse larger images before allocating pixel memory.
    force : bool, default=False
        Replace an existing destination (never the input).
    strip : bool, default=False
        Leave the file's ICC profile, EXIF and resolution out of the image.
    threads : int, optional
        Threads for a coding that decodes in parallel (coding 2); None: all cores.

    Returns
    -------
    DecodedFile
        The decoded file's header, palette and metadata.

    Raises
    ------
    KvqError (and subclasses)
        :class:`kvq.KvqOSError` (an OSError too) for a file that cannot be read or written.
    """
    from .bands import BandReader
    from .export import write_image

    pixel_limit(max_pixels)  # before a path is opened or a stream read
    fmt = format or decode_format(destination)
    with seekable(source) as fp:
        # The input's header before the output: "not a .kvq file" says more
        # than that the default output of photo.png is photo.png, the input.
        start = fp.tell()
        read_header_from(fp, max_pixels)
        inputs = _check_before_work(source, destination, force)
        fp.seek(start)
        reader = BandReader(fp, max_pixels, threads=threads)
        write_output(destination, lambda out: write_image(reader, out, fmt, strip=strip), force=force, inputs=inputs)
    return DecodedFile(reader.header, reader.palette, reader.metadata)


def save(image: Any, path: PathLike, k: int = 256, *, force: bool = False, **options: Any) -> Header:
    """Encode an image and write it to ``path`` atomically.

    Parameters
    ----------
    image : PIL.Image.Image, numpy.ndarray, str or path-like
        An image, or the path of a file Pillow can open.
    path : str or path-like
        Destination ``.kvq`` file.
    k : int, default=256
    force : bool, default=False
        Replace an existing file.
    **options
        See :class:`EncoderOptions`; also ``metadata`` (a :class:`kvq.Metadata`
        to store instead of the image's own) and ``strip=True`` (store none).

    Returns
    -------
    Header
        The header of the written file.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is False (a FileExistsError too).
    KvqError
        ``path`` is the input image's own file.
    OptionError, UnsupportedImageError, QualityError, ImageTooLargeError
        As :func:`kvq.encode`.
    KvqOSError
        ``KvqFileNotFoundError`` for an input image or an output folder that
        does not exist, ``KvqIsADirectoryError`` for a folder given as
        either, ``KvqPermissionError`` for a folder the file cannot be
        created in; other write errors (a full disk) as KvqOSError itself.
    """
    return encode_file(image, path, force=force, format=formats.KVQ, k=k, **options).header


def load(path: PathLike | IO[bytes], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read and decode a ``.kvq`` file.

    Parameters
    ----------
    path : str, path-like or binary file object
        A decompression bomb is refused from its first 38 bytes, before the
        rest of the file is read.
    max_pixels : int or None, default=178,956,970
        Refuse larger images before allocating pixel memory; None for no limit.

    Returns
    -------
    ndarray of uint8
        See :func:`kvq.decode`, which accepts the same sources (and bytes).

    Raises
    ------
    FormatError (and subclasses), ImageTooLargeError
        As :func:`kvq.decode`.
    OptionError
        ``max_pixels`` neither None nor a positive integer.
    KvqOSError
        A path that cannot be opened: ``KvqFileNotFoundError`` for a missing
        file, ``KvqIsADirectoryError`` for a folder, ``KvqPermissionError``
        (each the built-in OSError of that name too).
    """
    return decode(path, max_pixels)
