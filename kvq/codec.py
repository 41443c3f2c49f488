"""The codec core: image -> palette -> indices -> bits -> container, and back.

The CLI, the library API and the Pillow plugin are thin doors onto the
functions here; none of them parses or builds a file on its own.
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from . import bitpack, coding, container, inputs
from .accounting import SizeBreakdown, breakdown
from .coding.fixed import fixed_size
from .container import DEFAULT_MAX_PIXELS, MAX_K, Header
from .errors import FormatError, ImageTooLargeError, OptionError, QualityError, UnsupportedImageError
from .inputs import checked_read
from .memory import allocating
from .metadata import Metadata
from .metrics import psnr
from .options import EncoderOptions

#: What every decoding function accepts as a file: its bytes, a path or a binary file object (see kvq.inputs).
Source = inputs.Source

#: Pixels looked up per block: take() converts its indices to intp (8 bytes
#: each), and blocks keep that copy small.
_LOOKUP_BLOCK = 1 << 20


def _grey_as_2d(pixels: np.ndarray) -> np.ndarray:
    # Grey pixels handed to users are (H, W), as kvq.decode and Pillow's "L" give them.
    return pixels.reshape(pixels.shape[:2]) if pixels.shape[2] == 1 else pixels


@dataclass(frozen=True)
class Decoded:
    """A decoded file before the palette lookup.

    Attributes
    ----------
    header : Header
    palette : ndarray of uint8, shape (K, C)
    indices : ndarray, shape (H, W)
        uint8 when K <= 256, else uint16.
    metadata : Metadata
        ICC profile, EXIF and resolution, when the file holds them.
    """

    header: Header
    palette: np.ndarray
    indices: np.ndarray
    metadata: Metadata = field(default_factory=Metadata)

    def pixels(self) -> np.ndarray:
        """Look every index up in the palette.

        Returns
        -------
        ndarray of uint8
            (H, W) for grey images, (H, W, C) otherwise.

        Raises
        ------
        ImageTooLargeError
            The pixels do not fit in memory.
        """
        with allocating(self.header, self.header.n_pixels * self.header.channels):
            return _grey_as_2d(lookup(self.palette, self.indices))


@dataclass(frozen=True)
class Encoded:
    """What the encoder produced, with what the ``kvq`` command reports about it.

    Attributes
    ----------
    data : bytes
        The ``.kvq`` file.
    header : Header
    original : ndarray of uint8
        The input after mode conversion (what the quantizer saw): (H, W) for
        grey images, (H, W, C) otherwise, as :meth:`pixels`.
    palette : ndarray of uint8, shape (K, C)
    indices : ndarray, shape (H, W)
    metadata : Metadata
        What the file keeps beside the pixels.
    index_size : int or None
        Bytes of the INDX chunk's data, when the encoder knows it (else
        :attr:`sizes` reads it from :attr:`data`).
    """

    data: bytes
    header: Header
    original: np.ndarray
    palette: np.ndarray
    indices: np.ndarray
    metadata: Metadata = field(default_factory=Metadata)
    index_size: int | None = None

    def pixels(self) -> np.ndarray:
        """What a decoder will rebuild, exactly :func:`decode`'s array.

        Returns
        -------
        ndarray of uint8
            (H, W) for grey images, (H, W, C) otherwise.
        """
        return _grey_as_2d(lookup(self.palette, self.indices))

    @property
    def sizes(self) -> SizeBreakdown:
        """SizeBreakdown: where the file's bits go (see :func:`kvq.breakdown`)."""
        index_size = self.index_size
        if index_size is None:  # made elsewhere: read it back (a full parse, CRCs included)
            index_size = len(container.parse(self.data, max_pixels=None).indices)
        return breakdown(self.header, len(self.data), index_size)

    @cached_property
    def psnr(self) -> float:
        """float: PSNR in dB of the decoded pixels against :attr:`original`; computed on first use."""
        return decoded_psnr(self.original, self.palette, self.indices)


def decoded_psnr(original: np.ndarray, palette: np.ndarray, indices: np.ndarray) -> float:
    """PSNR in dB of the pixels a decoder rebuilds from ``palette`` and ``indices``, against ``original``.

    What :attr:`Encoded.psnr` reports and what a ``quality`` target must reach (:func:`reaches`).

    Parameters
    ----------
    original : ndarray of uint8
        The input, (H, W) or (H, W, C).
    palette : ndarray of uint8, shape (K, C)
    indices : ndarray, shape (H, W)

    Returns
    -------
    float
        ``inf`` when lossless.
    """
    return psnr(original.reshape(*indices.shape, -1), lookup(palette, indices))


def lookup(palette: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Replace every index by its palette entry.

    Parameters
    ----------
    palette : ndarray of uint8, shape (K, C)
    indices : ndarray of unsigned int, shape (H, W)

    Returns
    -------
    ndarray of uint8, shape (H, W, C), C-contiguous
    """
    channels = palette.shape[1]
    flat = indices.reshape(-1)
    out = np.empty((flat.size, channels), dtype=np.uint8)
    table: np.ndarray
    target: np.ndarray
    if channels == 4:
        # One 32-bit gather per pixel is several times faster than gathering
        # four separate bytes (benchmarks/pillow_open.py).
        table, target = np.ascontiguousarray(palette).view(np.uint32).reshape(-1), out.view(np.uint32).reshape(-1)
    elif channels == 1:
        table, target = np.ascontiguousarray(palette[:, 0]), out.reshape(-1)
    else:
        table, target = palette, out
    # take() is about twice as fast as fancy indexing (blocks: see _LOOKUP_BLOCK).
    for start in range(0, flat.size, _LOOKUP_BLOCK):
        stop = start + _LOOKUP_BLOCK
        np.take(table, flat[start:stop], axis=0, out=target[start:stop])
    return out.reshape(*indices.shape, channels)


def compact(palette: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop unused and duplicate palette entries and renumber the indices.

    Entries keep their order of first appearance in the palette, so a palette
    that is already compact comes back unchanged.

    Parameters
    ----------
    palette : ndarray of uint8, shape (K, C)
    indices : ndarray of unsigned int
        Any shape, values < K.

    Returns
    -------
    palette : ndarray of uint8, shape (K', C)
    indices : ndarray, same shape as the input, dtype for K'
    """
    k, channels = palette.shape
    used = bitpack.count_values(indices, k) > 0
    keys = np.zeros(k, dtype=np.uint32)
    for ch in range(channels):
        keys = (keys << 8) | palette[:, ch]
    # Unused entries get a key no colour can have, so they never merge with used ones.
    keys = np.where(used, keys.astype(np.int64), -1)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.sort(first[np.unique(inverse[used])])
    if order.size == k:
        return palette, indices.astype(bitpack.index_dtype(k), copy=False)
    new_number = np.full(k, -1, dtype=np.int64)
    new_number[order] = np.arange(order.size)
    # Every used entry maps to the first entry with its colour.
    remap = new_number[first[inverse]]
    new_indices = remap.astype(bitpack.index_dtype(order.size))[indices]
    return palette[order], new_indices


def _assemble(
    original: np.ndarray, palette: np.ndarray, indices: np.ndarray, metadata: Metadata, coding_name: str = coding.DEFAULT
) -> Encoded:
    palette, indices = compact(palette, indices)
    height, width, channels = original.shape
    k = palette.shape[0]
    bits = container.bits_for(k)
    chosen = coding.by_name(coding_name)
    fixed = fixed_size(indices.size, bits)
    # No coding need go past fixed width's size: one that would gives up (None).
    body = chosen.encode(indices, k, limit=fixed)
    if chosen is not coding.FALLBACK and (body is None or len(body) >= fixed):
        # Not smaller (tiny or noise-like images): fixed width is, and every 1.x reader reads it.
        chosen = coding.FALLBACK
        body = chosen.encode(indices, k)
    assert body is not None
    if len(body) > container.MAX_CHUNK_LENGTH:
        raise ImageTooLargeError(f"{width}x{height} image at {bits} bits per index exceeds the format's 4 GiB index limit")
    version = (container.VERSION_MAJOR, chosen.minor)
    header = Header(width, height, channels, k, bits, chosen.code, version)
    data = container.write(header, palette.tobytes(), body, metadata.chunks())
    return Encoded(data, header, _grey_as_2d(original), palette, indices, metadata, index_size=len(body))


def reaches(quality: float, target: float) -> bool:
    """Whether a PSNR reaches a ``quality`` target: the one definition, for every door.

    ``quality`` is :func:`decoded_psnr` (:attr:`Encoded.psnr`): the PSNR of
    the pixels a decoder rebuilds from the file, dithering included, against
    the input, the number ``kvq encode`` prints.

    Parameters
    ----------
    quality, target : float
        dB.

    Returns
    -------
    bool
    """
    return quality >= target


def _short_of(options: EncoderOptions, achieved: float) -> QualityError:
    """The QualityError of ``options.k`` colours reaching only ``achieved`` dB, naming the options that would change that.

    Worded twice: with the keyword arguments for the library, with the flags for the command (the options'
    own declaration spells them), as the command's messages name what it was given.
    """
    import math

    from .options import command_flags

    assert options.quality is not None
    # Rounded down, so that the target offered is one these colours reach.
    reachable = math.floor(achieved * 100) / 100
    shortfall = f"{options.k} colours reach only {reachable:.2f} dB PSNR, short of the requested {options.quality:.2f} dB"

    def remedy(names: dict[str, str]) -> str:
        more = f", or more colours with {names['k']}" if options.k < MAX_K else ""
        return f"{shortfall}: ask for at most {reachable:.2f} dB with {names['quality']}{more}"

    error = QualityError(remedy({"quality": "quality=", "k": "k="}), achieved)
    error.for_command(remedy(command_flags()))
    return error


def _encode_for_quality(pixels: np.ndarray, options: EncoderOptions, metadata: Metadata) -> Encoded:
    """``quality``: the smallest file, at most ``k`` colours, whose decoded pixels reach the target (:func:`reaches`).

    The fewest colours that reach it come first, by bisection on K (a larger
    palette never reaches less, up to the quantizer's noise). Then, since bytes
    do not follow K once the indices are entropy coded (a few more colours can
    make smoother index fields that code smaller), larger palettes up to ``k``
    on a half-octave grid, keeping the smallest file that reaches the target
    and stopping once files grow 5 % past it; at fixed width the fewest
    colours are the fewest bytes, and the climb ends within a step or two.
    """
    from dataclasses import replace

    from .quantize import quantize

    target = options.quality
    assert target is not None
    plain = replace(options, quality=None)

    def attempt(k: int) -> tuple[np.ndarray, np.ndarray, float]:
        palette, indices = quantize(pixels, replace(plain, k=k))
        return palette, indices, decoded_psnr(pixels, palette, indices)

    def encoded(palette: np.ndarray, indices: np.ndarray) -> Encoded:
        return _assemble(pixels, palette, indices, metadata, options.coding)

    fewest = attempt(options.k)
    if not reaches(fewest[2], target):
        raise _short_of(options, fewest[2])
    lo, hi = 0, options.k  # attempt(lo) misses (or lo == 0), attempt(hi) reaches
    while hi - lo > 1:
        mid = (lo + hi) // 2
        tried_mid = attempt(mid)
        if reaches(tried_mid[2], target):
            hi, fewest = mid, tried_mid
        else:
            lo = mid
    # Only now a file: the bisection needs the PSNR alone, not the coded indices.
    best = encoded(fewest[0], fewest[1])
    tried = {hi, best.header.k}
    candidate = best.header.k
    while True:
        candidate = min(options.k, max(candidate + 1, round(candidate * 2**0.5)))
        if candidate in tried:
            break
        tried.add(candidate)
        palette, indices, quality = attempt(candidate)
        larger = encoded(palette, indices)
        if reaches(quality, target) and len(larger.data) < len(best.data):
            best = larger
        elif len(larger.data) >= len(best.data) * 1.05:
            # Sizes grow with K from here on; no need to climb further.
            break
    return best


def metadata_for(image: Any, metadata: Metadata | None = None, strip: bool = False) -> Metadata:
    """What the encoder stores beside the pixels of ``image``.

    Parameters
    ----------
    image : PIL.Image.Image, numpy.ndarray or None
        An image :func:`kvq.pixels.to_array` accepts.
    metadata : Metadata, optional
        Stored as given. When omitted: a Pillow image's own ICC profile, EXIF
        and resolution (:meth:`Metadata.from_image`); nothing for an array.
    strip : bool, default=False
        Store nothing.

    Returns
    -------
    Metadata

    Raises
    ------
    OptionError
        Both ``metadata`` and ``strip=True``, or ``metadata`` of the wrong type.
    """
    if metadata is not None:
        if strip:
            raise OptionError("give metadata or strip=True, not both")
        if not isinstance(metadata, Metadata):
            raise OptionError(f"metadata must be a kvq.Metadata, not {type(metadata).__name__}")
        return metadata
    if strip or image is None or isinstance(image, np.ndarray):
        return Metadata()
    return Metadata.from_image(image)


def encode_image(
    image: Any,
    options: EncoderOptions | None = None,
    *,
    metadata: Metadata | None = None,
    strip: bool = False,
    **kwargs: Any,
) -> Encoded:
    """Encode an image and keep what the CLI and benchmarks measure.

    Parameters
    ----------
    image : PIL.Image.Image, numpy.ndarray, str or path-like
        See :func:`kvq.pixels.to_array`; a path is opened with
        :func:`kvq.open_image` (its metadata kept, as of a Pillow image).
    options : EncoderOptions, optional
        When omitted, built from ``kwargs``.
    metadata : Metadata, optional
        ICC profile, EXIF and resolution to store; by default a Pillow
        image's own (see :func:`metadata_for`).
    strip : bool, default=False
        Store no metadata.
    **kwargs
        Encoder options, each as :class:`kvq.EncoderOptions` describes it
        (every field of it is accepted, and no other name):

        k : int, default=256
        seed : int, default=0
        quality : float or None, default=None
        color_space : {"rgb", "oklab"}, default="rgb"
        dither : float, str or bool, default=0.0
        speed : int, default=4
        coding : {"entropy", "fixed", "striped"}, default="entropy"
        method : {"kvq", "kmeans"}, default="kvq"

    Returns
    -------
    Encoded

    Raises
    ------
    OptionError
        An unknown option, or a value out of range; ``options`` given with
        ``kwargs`` as well.
    UnsupportedImageError, QualityError, ImageTooLargeError
    KvqOSError
        A path that cannot be opened (``KvqFileNotFoundError``,
        ``KvqIsADirectoryError``, ``KvqPermissionError``).
    """
    from .pixels import open_image, to_array
    from .quantize import quantize

    if options is None:
        options = EncoderOptions.from_kwargs(**kwargs)
    elif kwargs:
        raise OptionError("give either options or keyword options, not both")
    if inputs.is_path(image):
        # As decode, save and load take a path: the options are checked first, before any reading.
        image = open_image(image)
    pixels = to_array(image)
    kept = metadata_for(image, metadata, strip)
    if options.quality is not None:
        return _encode_for_quality(pixels, options, kept)
    palette, indices = quantize(pixels, options)
    return _assemble(pixels, palette, indices, kept, options.coding)


def encode(image: Any, k: int = 256, *, metadata: Metadata | None = None, strip: bool = False, **options: Any) -> bytes:
    """Encode an image as a ``.kvq`` file in memory.

    Parameters
    ----------
    image : PIL.Image.Image, numpy.ndarray, str or path-like
        A Pillow image of any mode, a uint8 array of shape (H, W),
        (H, W, 1), (H, W, 3) or (H, W, 4), or the path of an image file
        Pillow reads (its ICC profile, EXIF and resolution kept).
    k : int, default=256
        Largest palette size, 1 to 65,536.
    metadata : Metadata, optional
        ICC profile, EXIF and resolution to store. By default a Pillow
        image's own are kept (its EXIF Orientation reset to 1, as the pixels
        are stored turned); an array has none.
    strip : bool, default=False
        Store no metadata, as ``kvq encode --strip``.
    **options
        The other encoder options (every field of :class:`kvq.EncoderOptions`
        but ``k``, and no other name):

        seed : int, default=0
        quality : float or None, default=None
        color_space : {"rgb", "oklab"}, default="rgb"
        dither : float, str or bool, default=0.0
        speed : int, default=4
        coding : {"entropy", "fixed", "striped"}, default="entropy"
        method : {"kvq", "kmeans"}, default="kvq"
            Each as :class:`kvq.EncoderOptions` describes it.

    Returns
    -------
    bytes

    Raises
    ------
    OptionError, UnsupportedImageError, QualityError, ImageTooLargeError
    KvqOSError
        A path that cannot be opened (``KvqFileNotFoundError``,
        ``KvqIsADirectoryError``, ``KvqPermissionError``).

    Examples
    --------
    >>> import numpy as np, kvq
    >>> image = np.zeros((2, 3, 3), dtype=np.uint8)
    >>> data = kvq.encode(image, k=16)
    >>> len(data)  # overhead + one RGB entry, no index bytes
    65
    >>> kvq.decode(data).shape
    (2, 3, 3)
    """
    return encode_image(image, k=k, metadata=metadata, strip=strip, **options).data


def encode_indexed(
    *args: np.ndarray,
    palette: np.ndarray | None = None,
    indices: np.ndarray | None = None,
    metadata: Metadata | None = None,
    coding: str = coding.DEFAULT,
) -> bytes:
    """Store an already-indexed image as it is, without quantizing again.

    Call it with keywords, ``encode_indexed(palette=..., indices=...)``, in
    the order every other function takes them. The positional form of
    version 1.0, ``encode_indexed(indices, palette)``, still works but warns
    (``DeprecationWarning``); it goes in 2.0.

    Parameters
    ----------
    palette : ndarray of uint8, shape (K, C)
        C is 1, 3 or 4; K at most 65,536.
    indices : ndarray of unsigned int, shape (H, W)
        Palette index of every pixel.
    metadata : Metadata, optional
        ICC profile, EXIF and resolution to store beside them.
    coding : {"entropy", "fixed", "striped"}, default="entropy"
        Index coding, as :class:`kvq.EncoderOptions`' ``coding``.

    Returns
    -------
    bytes
        Unused and duplicate entries are dropped, as in every ``.kvq`` file.

    Examples
    --------
    >>> import numpy as np, kvq
    >>> palette = np.array([[255, 0, 0], [0, 0, 255]], dtype=np.uint8)
    >>> data = kvq.encode_indexed(palette=palette, indices=np.array([[0, 1], [1, 1]]))
    >>> kvq.decode(data)[0, 1].tolist()
    [0, 0, 255]
    """
    if args:
        if len(args) > 2 or (len(args) == 2 and (palette is not None or indices is not None)):
            raise TypeError("encode_indexed takes palette= and indices= by keyword")
        warnings.warn(
            "encode_indexed(indices, palette) is deprecated; call encode_indexed(palette=..., indices=...)",
            DeprecationWarning,
            stacklevel=2,
        )
        indices = args[0]
        if len(args) == 2:
            palette = args[1]
    if palette is None or indices is None:
        raise TypeError("encode_indexed needs both palette= and indices=")
    indices = np.asarray(indices)
    palette = np.asarray(palette)
    if palette.dtype != np.uint8 or palette.ndim != 2 or palette.shape[1] not in (1, 3, 4) or not 1 <= len(palette) <= MAX_K:
        raise UnsupportedImageError(f"palette must be a (K, C) uint8 array with C in 1, 3, 4 and 1 <= K <= {MAX_K}")
    if indices.ndim != 2 or indices.size == 0 or indices.dtype.kind not in "ui":
        raise UnsupportedImageError("indices must be a non-empty (H, W) integer array")
    if indices.min() < 0 or indices.max() >= len(palette):
        raise UnsupportedImageError(f"indices must be in 0..{len(palette) - 1}")
    from .options import spec_of

    coding_name = spec_of(EncoderOptions.__dataclass_fields__["coding"]).validate("coding", coding)
    kept = metadata_for(None, metadata)
    original = lookup(palette, indices)
    return _assemble(original, palette, indices.astype(bitpack.index_dtype(len(palette))), kept, coding_name).data


def validate_indices(header: Header, body: bytes | memoryview) -> np.ndarray:
    """Check a file's index data exactly as decoding does, without building the image.

    Parameters
    ----------
    header : Header
    body : bytes-like
        The data of the INDX chunk.

    Returns
    -------
    ndarray of int64, shape (K,)
        How many pixels use each palette entry.

    Raises
    ------
    FormatError
        The error decoding raises; its offset is relative to ``body``.
    ImageTooLargeError
        A coding that must decode the indices to check them cannot hold them in memory.
    """
    return coding.by_code(header.coding).count(body, header)


@dataclass(frozen=True)
class Validated:
    """A file that passed every check decoding makes, and how its palette is used.

    Attributes
    ----------
    parsed : kvq.container.Container
        Header, palette and index bytes (a view of the file), kept ancillary chunks.
    counts : ndarray of int64, shape (K,)
        Pixels per palette entry.
    size : int
        The file's size in bytes.
    """

    parsed: container.Container
    counts: np.ndarray
    size: int

    @property
    def header(self) -> Header:
        """Header: the file's header."""
        return self.parsed.header

    @property
    def palette(self) -> np.ndarray:
        """ndarray of uint8, shape (K, C): the palette."""
        h = self.parsed.header
        return np.frombuffer(self.parsed.palette, dtype=np.uint8).reshape(h.k, h.channels)


def validate(source: Source, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Validated:
    """Check a whole ``.kvq`` file as :func:`decode` does, without decoding its pixels.

    Memory use does not grow with the image: the indices are checked and
    counted in blocks.

    Parameters
    ----------
    source : bytes-like, str, path-like or binary file object
    max_pixels : int or None, default=178,956,970

    Returns
    -------
    Validated

    Raises
    ------
    FormatError (and subclasses), ImageTooLargeError
        The same error, with the same message and offset, that :func:`decode`
        raises for the same file.
    OptionError
        ``max_pixels`` neither None nor a positive integer.
    KvqOSError
        A path that cannot be opened: ``KvqFileNotFoundError`` for a missing
        file, ``KvqIsADirectoryError`` for a folder, ``KvqPermissionError``
        (each the built-in OSError of that name too).
    KvqError
        ``source`` is none of the accepted kinds.
    """
    container.pixel_limit(max_pixels)  # before a path is opened or a stream read
    with inputs.opened(source) as data:
        parsed = container.Reader(data, max_pixels, in_memory=True).container()
    try:
        counts = validate_indices(parsed.header, parsed.indices)
    except FormatError as exc:
        # Report the offset in the file, not in the index chunk.
        raise exc.rebased(parsed.index_offset) from None
    return Validated(parsed, counts, parsed.index_offset + len(parsed.indices) + 4)


def _row_range(rows: Any, header: Header) -> tuple[int, int]:
    """``rows`` checked against ``header``: (y0, y1) with 0 <= y0 < y1 <= height."""
    try:
        y0, y1 = (int(operator.index(value)) for value in rows)
    except (TypeError, ValueError):
        raise OptionError(f"rows must be a pair of integers (y0, y1), not {rows!r}") from None
    if not 0 <= y0 < y1 <= header.height:
        raise OptionError(f"rows ({y0}, {y1}) are not within the image's {header.height} rows (0 <= y0 < y1 <= {header.height})")
    return y0, y1


def decode_indexed(
    source: Source,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    *,
    rows: tuple[int, int] | None = None,
    threads: int | None = None,
) -> Decoded:
    """Decode a ``.kvq`` file to its header, palette and indices.

    Parameters
    ----------
    source : bytes-like, str, path-like or binary file object
        The whole file, or where to read it.
    max_pixels : int or None, default=178,956,970
        Refuse larger images before allocating pixel memory; None for no limit.
    rows : (int, int), optional
        Decode only rows ``y0`` to ``y1`` (exclusive), 0 <= y0 < y1 <= height.
        A coding-2 file (``"striped"``) then reads and decodes only the
        stripes that hold them, checking each by its own CRC; INDX's CRC,
        which covers every stripe, is not checked, nor the stripes not read.
        Other codings decode every row and check everything.
    threads : int, optional
        Threads a coding that decodes in parallel may use (coding 2); None
        means all the cores this process may use.

    Returns
    -------
    Decoded
        ``indices`` has ``y1 - y0`` rows when ``rows`` is given.

    Raises
    ------
    FormatError (and subclasses), ImageTooLargeError
        ImageTooLargeError also when the indices do not fit in memory,
        whatever ``max_pixels``.
    OptionError
        ``max_pixels`` neither None nor a positive integer, ``rows`` outside
        the image, or ``threads`` not a positive integer.
    KvqOSError
        A path that cannot be opened: ``KvqFileNotFoundError`` for a missing
        file, ``KvqIsADirectoryError`` for a folder, ``KvqPermissionError``
        (each the built-in OSError of that name too).
    KvqError
        ``source`` is none of the accepted kinds.
    """
    container.pixel_limit(max_pixels)  # before a path is opened or a stream read
    if threads is not None:
        from .coding.striped import threads_for

        threads_for(threads)
    with inputs.opened(source) as data:
        if rows is None:
            parsed = container.Reader(data, max_pixels, in_memory=True).container()
            h = parsed.header
            try:
                with allocating(h, h.n_pixels * bitpack.index_dtype(h.k).itemsize):
                    indices = coding.by_code(h.coding).decode(parsed.indices, h, threads=threads)
            except FormatError as exc:
                # Report the offset in the file, not in the index chunk.
                raise exc.rebased(parsed.index_offset) from None
            ancillary, raw_palette = parsed.ancillary, parsed.palette
        else:
            reader = container.Reader(data, max_pixels, lazy=True)
            h = reader.header
            span = _row_range(rows, h)
            chosen = coding.by_code(h.coding)
            indices_source = reader.unchecked_indices() if chosen.partial else reader.indices()
            try:
                with allocating(h, (span[1] - span[0]) * h.width * bitpack.index_dtype(h.k).itemsize):
                    indices = chosen.read_rows(indices_source.read, indices_source.length, h, span, threads=threads)
            except FormatError as exc:
                raise exc.rebased(indices_source.offset) from None
            ancillary, raw_palette = reader.ancillary, reader.palette
    palette = np.frombuffer(raw_palette, dtype=np.uint8).reshape(h.k, h.channels)
    return Decoded(h, palette, indices, Metadata.from_chunks(ancillary))


def decode(
    source: Source,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    *,
    rows: tuple[int, int] | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """Decode a ``.kvq`` file to pixels.

    Parameters
    ----------
    source : bytes-like, str, path-like or binary file object
        The whole file, or where to read it.
    max_pixels : int or None, default=178,956,970
        Refuse larger images before allocating pixel memory; None for no limit.
    rows : (int, int), optional
        Only rows ``y0`` to ``y1`` (exclusive): see :func:`decode_indexed`.
    threads : int, optional
        Threads for a coding that decodes in parallel; None: all cores.

    Returns
    -------
    ndarray of uint8
        (H, W) for grey, (H, W, 3) for RGB, (H, W, 4) for RGBA: exactly the
        pixels the encoder quantized (``y1 - y0`` rows with ``rows``).

    Raises
    ------
    FormatError (and subclasses), ImageTooLargeError
        ImageTooLargeError also when the pixels do not fit in memory,
        whatever ``max_pixels``: never MemoryError.
    OptionError
        ``max_pixels`` neither None nor a positive integer, ``rows`` outside
        the image, or ``threads`` not a positive integer.
    KvqOSError
        A path that cannot be opened: ``KvqFileNotFoundError`` for a missing
        file, ``KvqIsADirectoryError`` for a folder, ``KvqPermissionError``
        (each the built-in OSError of that name too).
    KvqError
        ``source`` is none of the accepted kinds.
    """
    return decode_indexed(source, max_pixels, rows=rows, threads=threads).pixels()


def read_header(source: Source, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Header:
    """Read a file's header without decoding pixels.

    Parameters
    ----------
    source : bytes-like, str, path-like or binary file object
        Only the first 38 bytes are read.
    max_pixels : int or None, default=178,956,970
        Refuse a header that declares more pixels; None for no limit.

    Returns
    -------
    Header

    Raises
    ------
    FormatError (and subclasses)
        The 38 bytes are not a valid signature and HEAD chunk.
    ImageTooLargeError
        The header declares more than ``max_pixels`` pixels.
    OptionError
        ``max_pixels`` neither None nor a positive integer.
    KvqOSError
        A path that cannot be opened: ``KvqFileNotFoundError`` for a missing
        file, ``KvqIsADirectoryError`` for a folder, ``KvqPermissionError``
        (each the built-in OSError of that name too).
    KvqError
        ``source`` is none of the accepted kinds.
    """
    container.pixel_limit(max_pixels)  # before a path is opened or a stream read
    with inputs.opened(source) as data:
        head = data[: container.HEADER_SIZE] if isinstance(data, memoryview) else checked_read(data, container.HEADER_SIZE)
    return container.parse_header(head, max_pixels)
