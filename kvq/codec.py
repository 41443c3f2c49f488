"""The codec core: image -> palette -> indices -> bits -> container, and back.

The CLI, the library API and the Pillow plugin are thin doors onto the
functions here; none of them parses or builds a file on its own.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import IO, Any

import numpy as np

from . import bitpack, container
from .accounting import SizeBreakdown, breakdown
from .container import DEFAULT_MAX_PIXELS, MAX_K, Header
from .errors import FormatError, ImageTooLargeError, OptionError, UnsupportedImageError
from .metrics import psnr
from .options import EncoderOptions

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
    """

    header: Header
    palette: np.ndarray
    indices: np.ndarray

    def pixels(self) -> np.ndarray:
        """Look every index up in the palette.

        Returns
        -------
        ndarray of uint8
            (H, W) for grey images, (H, W, C) otherwise.
        """
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
    """

    data: bytes
    header: Header
    original: np.ndarray
    palette: np.ndarray
    indices: np.ndarray

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
        return breakdown(self.header, len(self.data))

    @cached_property
    def psnr(self) -> float:
        """float: PSNR in dB of the decoded pixels against :attr:`original`; computed on first use."""
        return psnr(self.original, self.pixels())


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
    used = np.bincount(indices.reshape(-1), minlength=k)[:k] > 0
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


def _assemble(original: np.ndarray, palette: np.ndarray, indices: np.ndarray) -> Encoded:
    palette, indices = compact(palette, indices)
    height, width, channels = original.shape
    k = palette.shape[0]
    header = Header(width, height, channels, k, container.bits_for(k))
    if header.index_size > container.MAX_CHUNK_LENGTH:
        raise ImageTooLargeError(f"{width}x{height} image at {header.bits} bits per index exceeds the format's 4 GiB index limit")
    data = container.write(header, palette.tobytes(), bitpack.pack(indices, header.bits))
    return Encoded(data, header, _grey_as_2d(original), palette, indices)


def encode_image(image: Any, options: EncoderOptions | None = None, **kwargs: Any) -> Encoded:
    """Encode an image and keep what the CLI and benchmarks measure.

    Parameters
    ----------
    image : PIL.Image.Image or numpy.ndarray
        See :func:`kvq.pixels.to_array`.
    options : EncoderOptions, optional
        When omitted, built from ``kwargs``.
    **kwargs
        Encoder options (``k``, ``seed``, ``quality``, ``color_space``,
        ``dither``, ``speed``).

    Returns
    -------
    Encoded
    """
    from .pixels import to_array
    from .quantize import quantize

    if options is None:
        options = EncoderOptions.from_kwargs(**kwargs)
    elif kwargs:
        raise OptionError("give either options or keyword options, not both")
    pixels = to_array(image)
    palette, indices = quantize(pixels, options)
    return _assemble(pixels, palette, indices)


def encode(image: Any, k: int = 256, **options: Any) -> bytes:
    """Encode an image as a ``.kvq`` file in memory.

    Parameters
    ----------
    image : PIL.Image.Image or numpy.ndarray
        A Pillow image of any mode, or a uint8 array of shape (H, W),
        (H, W, 1), (H, W, 3) or (H, W, 4).
    k : int, default=256
        Largest palette size, 1 to 65,536.
    **options
        ``seed``, ``quality``, ``color_space``, ``dither``, ``speed``: see
        :class:`kvq.EncoderOptions`.

    Returns
    -------
    bytes

    Raises
    ------
    OptionError, UnsupportedImageError, QualityError, ImageTooLargeError

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
    return encode_image(image, k=k, **options).data


def encode_indexed(*args: np.ndarray, palette: np.ndarray | None = None, indices: np.ndarray | None = None) -> bytes:
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
    original = lookup(palette, indices)
    return _assemble(original, palette, indices.astype(bitpack.index_dtype(len(palette)))).data


def decode_indexed(data: bytes | bytearray | memoryview, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Decoded:
    """Decode a ``.kvq`` file to its header, palette and indices.

    Parameters
    ----------
    data : bytes-like
        The whole file.
    max_pixels : int or None, default=178,956,970
        Refuse larger images before allocating pixel memory; None for no limit.

    Returns
    -------
    Decoded

    Raises
    ------
    FormatError (and subclasses), ImageTooLargeError
    """
    parsed = container.parse(data, max_pixels)
    h = parsed.header
    palette = np.frombuffer(parsed.palette, dtype=np.uint8).reshape(h.k, h.channels)
    try:
        indices = bitpack.unpack(parsed.indices, h.bits, h.n_pixels, h.k)
    except FormatError as exc:
        # Report the offset in the file, not in the index chunk.
        raise exc.rebased(parsed.index_offset) from None
    return Decoded(h, palette, indices.reshape(h.height, h.width))


def decode(data: bytes | bytearray | memoryview, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a ``.kvq`` file to pixels.

    Parameters
    ----------
    data : bytes-like
        The whole file.
    max_pixels : int or None, default=178,956,970
        Refuse larger images before allocating pixel memory; None for no limit.

    Returns
    -------
    ndarray of uint8
        (H, W) for grey, (H, W, 3) for RGB, (H, W, 4) for RGBA: exactly the
        pixels the encoder quantized.

    Raises
    ------
    FormatError (and subclasses), ImageTooLargeError
    """
    return decode_indexed(data, max_pixels).pixels()


def read_header(
    source: bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes], max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Header:
    """Read a file's header without decoding pixels.

    Parameters
    ----------
    source : bytes-like, path or binary file object
        Only the first 38 bytes are read.
    max_pixels : int or None

    Returns
    -------
    Header
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return container.parse_header(source, max_pixels)
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fp:
            return container.read_header_from(fp, max_pixels)
    return container.read_header_from(source, max_pixels)
