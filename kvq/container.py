"""The ``.kvq`` v1 container: signature, chunks, CRCs (see ``spec/kvq-v1.md``).

This module only moves bytes: it knows the layout and every rule a reader
must enforce, but nothing about pixels or palettes beyond their sizes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

from . import coding
from .coding.fixed import FixedWidth, fixed_size
from .errors import (
    ChecksumError,
    FormatError,
    ImageTooLargeError,
    NotKvqError,
    TruncatedError,
)

SIGNATURE = b"\x89KVQ\r\n\x1a\n"
VERSION_MAJOR = 1
VERSION_MINOR = 0

HEAD = b"HEAD"
PLTE = b"PLTE"
INDX = b"INDX"

#: The metadata chunk types of spec section 14: ICC profile, EXIF, resolution.
METADATA_TYPES = (b"iccp", b"exif", b"reso")

CHANNELS = (1, 3, 4)
MAX_K = 65536
MAX_CHUNK_LENGTH = 2**32 - 1

#: Ancillary chunk types whose data readers keep and return. Every other
#: ancillary chunk is checked (CRC, framing) and skipped without keeping a
#: byte of it, so a file of millions of tiny chunks costs no memory.
KEPT_ANCILLARY: frozenset[bytes] = frozenset(METADATA_TYPES)

#: Largest piece a lazy reader asks of a file object at once.
_READ_PIECE = 1 << 20

#: Default pixel limit of the decoder: the size at which Pillow refuses an
#: image as a decompression bomb (2 x ``PIL.Image.MAX_IMAGE_PIXELS``).
DEFAULT_MAX_PIXELS = 2 * 89_478_485

_HEAD_FORMAT = ">BBIIBBBBI"
HEAD_LENGTH = struct.calcsize(_HEAD_FORMAT)  # 18
CHUNK_OVERHEAD = 12  # length (4) + type (4) + CRC (4)
HEADER_SIZE = len(SIGNATURE) + CHUNK_OVERHEAD + HEAD_LENGTH  # 38: all a header reader needs
#: Bytes of a file that holds no ancillary chunk, beyond palette and indices.
OVERHEAD = HEADER_SIZE + 2 * CHUNK_OVERHEAD  # 62


def bits_for(k: int) -> int:
    """Bits per index for a palette of ``k`` entries: ceil(log2 k), 0 for k = 1.

    Parameters
    ----------
    k : int
        Palette size, at least 1.

    Returns
    -------
    int
    """
    return (k - 1).bit_length()


@dataclass(frozen=True)
class Header:
    """The fixed facts of a ``.kvq`` image, shared by encoder, decoder, plugin and CLI.

    Attributes
    ----------
    width, height : int
        Image size in pixels, each at least 1.
    channels : int
        1 (grey), 3 (RGB) or 4 (RGBA): bytes per palette entry.
    k : int
        Number of palette entries, 1 to 65,536.
    bits : int
        Bits per index, always ``bits_for(k)``.
    coding : int
        Index coding byte: 0 fixed width, 1 entropy coded (see :mod:`kvq.coding`).
    version : tuple of int
        (major, minor) of the file.
    """

    width: int
    height: int
    channels: int
    k: int
    bits: int
    coding: int = FixedWidth.code
    version: tuple[int, int] = (VERSION_MAJOR, VERSION_MINOR)

    @property
    def n_pixels(self) -> int:
        """int: width x height."""
        return self.width * self.height

    @property
    def palette_size(self) -> int:
        """int: bytes of the palette, k x channels."""
        return self.k * self.channels

    @property
    def fixed_index_size(self) -> int:
        """int: bytes the indices take in fixed width, ceil(N x bits / 8), whatever the coding."""
        return fixed_size(self.n_pixels, self.bits)

    @property
    def fixed_file_size(self) -> int:
        """int: size of a fixed-width file with this header and no ancillary chunk."""
        return OVERHEAD + self.palette_size + self.fixed_index_size

    @property
    def index_size(self) -> int:
        """int: the fixed-width index size.

        .. deprecated:: 1.1
            A coding-1 file's indices have another size; use
            :attr:`fixed_index_size`. Removed in 2.0.
        """
        import warnings

        warnings.warn("Header.index_size is deprecated; use Header.fixed_index_size", DeprecationWarning, stacklevel=2)
        return self.fixed_index_size

    @property
    def file_size(self) -> int:
        """int: the size of a fixed-width file with this header.

        .. deprecated:: 1.1
            Use :attr:`fixed_file_size`. Removed in 2.0.
        """
        import warnings

        warnings.warn("Header.file_size is deprecated; use Header.fixed_file_size", DeprecationWarning, stacklevel=2)
        return self.fixed_file_size

    @property
    def mode(self) -> str:
        """str: Pillow mode of the decoded pixels ("L", "RGB" or "RGBA").

        .. deprecated:: 1.1
            Pillow modes are not part of the format; use
            ``kvq.pixels.pillow_mode(header.channels)``. Removed in 2.0.
        """
        import warnings

        from .pixels import pillow_mode

        warnings.warn("Header.mode is deprecated; use kvq.pixels.pillow_mode(header.channels)", DeprecationWarning, stacklevel=2)
        return pillow_mode(self.channels)


@dataclass
class Container:
    """A parsed file: its header, raw palette and index bytes, and metadata chunks.

    ``ancillary`` holds the first chunk of each type the reader was asked to
    keep (by default the metadata types), in file order; ``skipped`` counts
    the other ancillary chunks. ``index_offset`` is the file offset of the
    first index byte.
    """

    header: Header
    palette: bytes
    indices: memoryview
    ancillary: list[tuple[bytes, bytes]] = field(default_factory=list)
    index_offset: int = 0
    skipped: int = 0


class IndexSource:
    """The INDX data of a file, as an index coding reads it: from memory, or from a seekable file.

    Parameters
    ----------
    data : bytes-like or binary file object
        The INDX data itself, or a seekable file that holds it at ``offset``.
    offset : int
        File offset of the first INDX data byte (errors are rebased by it).
    length : int
        Bytes of INDX data.
    base : int, default=0
        Position in ``data`` (a file) where the ``.kvq`` file starts.
    """

    def __init__(self, data: bytes | memoryview | IO[bytes], offset: int, length: int, base: int = 0) -> None:
        self._data = data
        self.offset = offset
        self.length = length
        self._base = base

    def read(self, start: int, size: int) -> bytes | memoryview:
        """``size`` bytes of the INDX data from ``start`` (a view when in memory).

        Raises
        ------
        TruncatedError
            The file is shorter than it was when its INDX chunk was checked.
        """
        if isinstance(self._data, (bytes, bytearray, memoryview)):
            return memoryview(self._data)[start : start + size]
        self._data.seek(self._base + self.offset + start)
        piece = _read_at_most(self._data, size)
        if len(piece) < size:
            raise _past_the_end(INDX, self.length, self.offset - 8)
        return piece

    def whole(self) -> bytes | memoryview:
        """All of the INDX data."""
        return self.read(0, self.length)


def _chunk(kind: bytes, data: bytes) -> bytes:
    length = struct.pack(">I", len(data))
    return length + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind, zlib.crc32(length))))


def write(header: Header, palette: bytes, indices: bytes, ancillary: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    """Assemble a ``.kvq`` file.

    Parameters
    ----------
    header : Header
    palette : bytes
        ``header.palette_size`` bytes.
    indices : bytes
        The INDX data, coded as ``header.coding`` says.
    ancillary : sequence of (bytes, bytes)
        Optional chunks (type with a lower-case first letter, data) written
        between the header and the palette.

    Returns
    -------
    bytes
    """
    _validate_header(header, 0, None)
    if len(palette) != header.palette_size or coding.by_code(header.coding).check_length(header, len(indices)):
        raise FormatError("palette or index data does not match the header")
    if len(indices) > MAX_CHUNK_LENGTH:
        raise ImageTooLargeError(f"{len(indices):,} bytes of indices do not fit in one chunk (max {MAX_CHUNK_LENGTH:,})")
    head = struct.pack(
        _HEAD_FORMAT,
        header.version[0],
        header.version[1],
        header.width,
        header.height,
        header.channels,
        header.bits,
        header.coding,
        0,
        header.k,
    )
    parts = [SIGNATURE, _chunk(HEAD, head)]
    for kind, data in ancillary:
        if not _is_ancillary(kind):
            raise FormatError(f"chunk type {kind!r} is not an ancillary type")
        parts.append(_chunk(kind, data))
    parts += [_chunk(PLTE, palette), _chunk(INDX, indices)]
    return b"".join(parts)


def _is_ancillary(kind: bytes) -> bool:
    return len(kind) == 4 and kind.isalpha() and kind.isascii() and kind[:1].islower()


def _validate_header(h: Header, offset: int, max_pixels: int | None) -> None:
    # Offsets point at the field inside the HEAD chunk data (file offset 20).
    if h.version[0] != VERSION_MAJOR:
        raise FormatError(f"unsupported major version {h.version[0]} (this reader knows {VERSION_MAJOR})", offset)
    if h.width < 1 or h.height < 1:
        raise FormatError(f"image size {h.width}x{h.height} has a zero dimension", offset + (2 if h.width < 1 else 6))
    # Division, not multiplication, so that a C reader following the same
    # rule cannot overflow; Python's integers only make it harmless here.
    if max_pixels is not None and h.width > max_pixels // h.height:
        raise ImageTooLargeError(
            f"image of {h.width}x{h.height} = {h.n_pixels:,} pixels exceeds the limit of {max_pixels:,} pixels"
        )
    if h.channels not in CHANNELS:
        raise FormatError(f"channels must be 1, 3 or 4, not {h.channels}", offset + 10)
    if not 1 <= h.k <= MAX_K:
        raise FormatError(f"palette size {h.k} is outside 1..{MAX_K}", offset + 14)
    if h.bits != bits_for(h.k):
        raise FormatError(f"bits per index is {h.bits}, but a palette of {h.k} needs {bits_for(h.k)}", offset + 11)
    try:
        coding.by_code(h.coding)
    except KeyError:
        raise FormatError(f"index coding {h.coding} is unknown to this reader, which knows {coding.known()}", offset + 12) from None


def _skip_chunk(fp: IO[bytes], head: bytes, length: int, start: int) -> None:
    """Read past one chunk's data and CRC in blocks, checking them as :func:`_read_chunk` does."""
    kind = head[4:]
    crc = zlib.crc32(head)
    remaining = length
    while remaining:
        block = fp.read(min(remaining, 1 << 20))
        if not block:
            raise _past_the_end(kind, length, start)
        crc = zlib.crc32(block, crc)
        remaining -= len(block)
    tail = _read_at_most(fp, 4)
    if len(tail) < 4:
        raise _past_the_end(kind, length, start)
    (stored,) = struct.unpack(">I", tail)
    if stored != crc:
        raise _crc_mismatch(kind, stored, crc, start + 8 + length)


def _past_the_end(kind: bytes, length: int, start: int) -> TruncatedError:
    return TruncatedError(f"chunk {kind.decode()} declares {length:,} bytes but the file ends first", start)


def _crc_mismatch(kind: bytes, stored: int, actual: int, offset: int) -> ChecksumError:
    return ChecksumError(f"CRC-32 mismatch in chunk {kind.decode()}: stored {stored:08x}, computed {actual:08x}", offset)


def _read_chunk(data: memoryview, offset: int) -> tuple[bytes, memoryview, int]:
    """Read one chunk at ``offset``; return its type, data and the next offset."""
    end = len(data)
    if end - offset < CHUNK_OVERHEAD:
        raise TruncatedError("file ends inside a chunk header", offset)
    (length,) = struct.unpack_from(">I", data, offset)
    kind = bytes(data[offset + 4 : offset + 8])
    if not (kind.isascii() and kind.isalpha()):
        raise FormatError(f"invalid chunk type {kind!r}", offset + 4)
    if length > end - offset - CHUNK_OVERHEAD:
        raise _past_the_end(kind, length, offset)
    body = data[offset + 8 : offset + 8 + length]
    (stored,) = struct.unpack_from(">I", data, offset + 8 + length)
    actual = zlib.crc32(body, zlib.crc32(data[offset : offset + 8]))
    if stored != actual:
        raise _crc_mismatch(kind, stored, actual, offset + 8 + length)
    return kind, body, offset + CHUNK_OVERHEAD + length


def parse_header(data: bytes | bytearray | memoryview, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Header:
    """Validate the signature and HEAD chunk at the start of ``data``.

    Parameters
    ----------
    data : bytes-like
        At least the first :data:`HEADER_SIZE` (38) bytes of a file.
    max_pixels : int or None
        Refuse images with more pixels; None for no limit.

    Returns
    -------
    Header

    Raises
    ------
    NotKvqError, TruncatedError, ChecksumError, FormatError, ImageTooLargeError
    """
    data = memoryview(data).cast("B")
    if bytes(data[: len(SIGNATURE)]) != SIGNATURE[: len(data)] or len(data) == 0:
        raise NotKvqError("not a .kvq file (bad signature)", 0)
    if len(data) < len(SIGNATURE):
        raise TruncatedError("file ends inside the signature", len(data))
    if len(data) >= 16 and bytes(data[12:16]) != HEAD:
        raise FormatError(f"first chunk must be HEAD, not {bytes(data[12:16])!r}", 12)
    if len(data) < HEADER_SIZE:
        raise TruncatedError("file ends inside the HEAD chunk", len(data))
    (length,) = struct.unpack_from(">I", data, 8)
    if length != HEAD_LENGTH:
        raise FormatError(f"HEAD chunk is {length} bytes long, expected {HEAD_LENGTH}", 8)
    _, body, _ = _read_chunk(data[:HEADER_SIZE], 8)
    major, minor, width, height, channels, bits, code, flags, k = struct.unpack(_HEAD_FORMAT, body)
    if major == VERSION_MAJOR and flags != 0:
        raise FormatError(f"reserved flags byte is {flags}, must be 0", 8 + 8 + 13)
    header = Header(width, height, channels, k, bits, code, (major, minor))
    _validate_header(header, 16, max_pixels)
    return header


def read_header_from(fp: IO[bytes], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Header:
    """Read and validate only the first :data:`HEADER_SIZE` bytes of an open file.

    Parameters
    ----------
    fp : binary file object
        Positioned at the start of the file.
    max_pixels : int or None

    Returns
    -------
    Header
    """
    return parse_header(fp.read(HEADER_SIZE), max_pixels)


class _ChunkOrder:
    """The chunk-order rules of the spec, applied one chunk at a time.

    Shared by :func:`parse` (a whole file in memory) and
    :func:`read_palette_from` (a lazily read file), so both readers enforce
    exactly the same rules.
    """

    def __init__(self, header: Header, keep: frozenset[bytes] | set[bytes]) -> None:
        self.header = header
        self.keep_types = keep
        self.palette: bytes | None = None
        self.ancillary: list[tuple[bytes, bytes]] = []
        self.skipped = 0

    def check(self, kind: bytes, length: int, start: int) -> bool:
        """Check a chunk's type and length at its position; True when it is INDX.

        Raises
        ------
        FormatError
        """
        h = self.header
        if _is_ancillary(kind):
            return False
        if kind == PLTE:
            if self.palette is not None:
                raise FormatError("second PLTE chunk", start)
            if length != h.palette_size:
                raise FormatError(
                    f"PLTE holds {length:,} bytes, expected {h.k} entries x {h.channels} = {h.palette_size:,}", start
                )
            return False
        if kind == INDX:
            if self.palette is None:
                raise FormatError("INDX chunk before PLTE", start)
            problem = coding.by_code(h.coding).check_length(h, length)
            if problem:
                raise FormatError(problem, start)
            return True
        if kind == HEAD:
            raise FormatError("second HEAD chunk", start)
        raise FormatError(f"unknown critical chunk {kind.decode()}", start)

    def wants(self, kind: bytes) -> bool:
        """Whether an ancillary chunk of this type is kept (the first of a kept type)."""
        return kind in self.keep_types and all(kind != kept for kept, _ in self.ancillary)

    def keep(self, kind: bytes, body: memoryview) -> None:
        """Keep the data of a checked PLTE or wanted ancillary chunk; count the others."""
        if kind == PLTE:
            self.palette = bytes(body)
        elif self.wants(kind):
            # Only the first of each type counts (spec section 14), which also
            # bounds memory whatever the number of chunks.
            self.ancillary.append((kind, bytes(body)))
        else:
            self.skipped += 1


def parse(
    data: bytes | bytearray | memoryview,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    keep: frozenset[bytes] | set[bytes] = KEPT_ANCILLARY,
) -> Container:
    """Validate a whole ``.kvq`` file's chunks and split it into its parts.

    Nothing here allocates memory proportional to the image or to the number
    of chunks: the returned indices are a view of ``data``. The index data
    itself is checked by :func:`kvq.codec.validate_indices`.

    Parameters
    ----------
    data : bytes-like
        The complete file.
    max_pixels : int or None
        Refuse images with more pixels; None for no limit.
    keep : set of bytes, default=KEPT_ANCILLARY
        Ancillary chunk types whose data to return; the others are skipped.

    Returns
    -------
    Container

    Raises
    ------
    FormatError (or a subclass), ImageTooLargeError
    """
    data = memoryview(data).cast("B")
    header = parse_header(data, max_pixels)
    order = _ChunkOrder(header, keep)
    offset = HEADER_SIZE
    while True:
        start = offset
        kind, body, offset = _read_chunk(data, offset)
        if not order.check(kind, len(body), start):
            order.keep(kind, body)
            continue
        if offset != len(data):
            raise FormatError(f"{len(data) - offset:,} bytes after the INDX chunk, which must be last", offset)
        assert order.palette is not None  # check() refuses INDX before PLTE
        return Container(header, order.palette, body, order.ancillary, start + 8, order.skipped)


def _read_at_most(fp: IO[bytes], size: int) -> bytes:
    """Read up to ``size`` bytes, allocating no more than the file actually holds.

    ``BufferedReader.read(n)`` allocates ``n`` bytes before reading, so a
    chunk length taken from the file (up to 4 GiB) must not reach it directly.
    """
    pieces = []
    while size > 0:
        piece = fp.read(min(size, _READ_PIECE))
        if not piece:
            break
        pieces.append(piece)
        size -= len(piece)
    return b"".join(pieces)


def read_palette_from(
    fp: IO[bytes], header: Header, keep: frozenset[bytes] | set[bytes] = KEPT_ANCILLARY
) -> tuple[bytes, list[tuple[bytes, bytes]], int, int]:
    """Read the chunks between the header and the index data of an open file.

    For lazy readers (the Pillow plugin), which need the palette at open time
    but must not read the indices yet. Every chunk read is checked as
    :func:`parse` checks it; of the INDX chunk only the declared length is
    checked, its data and CRC are left to :func:`parse` when the file is decoded.

    Parameters
    ----------
    fp : binary file object
        Positioned just after the header (at byte :data:`HEADER_SIZE`).
    header : Header
        As returned by :func:`read_header_from` for the same file.
    keep : set of bytes, default=KEPT_ANCILLARY
        Ancillary chunk types whose data to return; the others are skipped.

    Returns
    -------
    palette : bytes
        ``header.palette_size`` bytes.
    ancillary : list of (bytes, bytes)
        The first chunk of each kept type before INDX, in file order.
    index_offset : int
        File offset of the first index byte; the file is
        ``index_offset + index_length + 4`` bytes long.
    index_length : int
        Bytes of INDX data, as its chunk declares.

    Raises
    ------
    TruncatedError, ChecksumError, FormatError
    """
    order = _ChunkOrder(header, keep)
    offset = HEADER_SIZE
    while True:
        start = offset
        head = fp.read(8)
        if len(head) < 8:
            raise TruncatedError("file ends inside a chunk header", offset)
        (length,) = struct.unpack(">I", head[:4])
        kind = head[4:]
        if kind.isascii() and kind.isalpha() and order.check(kind, length, start):
            assert order.palette is not None
            return order.palette, order.ancillary, start + 8, length
        if kind.isascii() and kind.isalpha() and _is_ancillary(kind) and not order.wants(kind):
            # A chunk nobody keeps is checked as it streams past: opening a
            # file must not hold a large unknown chunk in memory.
            _skip_chunk(fp, head, length, start)
            order.skipped += 1
            offset = start + CHUNK_OVERHEAD + length
            continue
        # A file object cannot be sliced like parse()'s buffer: read this one
        # chunk whole and let _read_chunk check it with the same rules.
        chunk = memoryview(head + _read_at_most(fp, length + 4))
        try:
            kind, body, _ = _read_chunk(chunk, 0)
        except FormatError as exc:
            raise exc.rebased(start) from None
        offset = start + CHUNK_OVERHEAD + length
        order.keep(kind, body)
