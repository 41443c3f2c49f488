"""The ``.kvq`` v1 container: signature, chunks, CRCs (see ``spec/kvq-v1.md``).

This module only moves bytes: it knows the layout and every rule a reader
must enforce, but nothing about pixels or palettes beyond their sizes.
"""

from __future__ import annotations

import numbers
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

from . import coding
from .coding.fixed import FixedWidth, fixed_size
from .errors import (
    ChecksumError,
    FormatError,
    ImageTooLargeError,
    NotKvqError,
    OptionError,
    TruncatedError,
)
from .inputs import can_seek, checked_read

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
#: Reads of a file made exactly as asked, before any read-ahead: a usual file's chunks before INDX (HEAD, the
#: metadata, PLTE) take fewer, so opening it reads no index data; a file of many tiny chunks reads ahead after them.
_EXACT_READS = 8
#: The first read-ahead of a file (doubled on each read, up to _READ_PIECE).
_FIRST_WINDOW = 1 << 16
#: Chunks up to this length are read and checked in one piece.
_SMALL_CHUNK = 1 << 12

#: Default pixel limit of the decoder: the size at which Pillow refuses an
#: image as a decompression bomb (2 x ``PIL.Image.MAX_IMAGE_PIXELS``).
DEFAULT_MAX_PIXELS = 2 * 89_478_485


def pixel_limit(max_pixels: object) -> int | None:
    """``max_pixels`` checked, as every reader takes it: None (no limit) or a positive integer.

    A limit of 0 or less would refuse every image with a message about its
    size, and a string would fail deep in the header check: both are the
    caller's mistake, said as such before any byte is read.

    Parameters
    ----------
    max_pixels : int or None

    Returns
    -------
    int or None

    Raises
    ------
    OptionError
        Anything else: a bool, a float, a string, 0 or a negative number.
    """
    if max_pixels is None:
        return None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, numbers.Integral) or max_pixels < 1:
        raise OptionError.about("max_pixels", f"must be None (no limit) or a positive integer, not {max_pixels!r}")
    return int(max_pixels)

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
    try:
        wrong_length = coding.by_code(header.coding).check_length(header, len(indices))
    except FormatError:
        # A rule of the coding's stream (coding 1's 23, 25, 26): written as given, for test files that break it.
        wrong_length = None
    if len(palette) != header.palette_size or wrong_length:
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
        size = f"image of {h.width}x{h.height} = {h.n_pixels:,} pixels exceeds the limit of {max_pixels:,} pixels"
        raise ImageTooLargeError(f"{size} (max_pixels)").for_command(f"{size} (--max-pixels raises it)")
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


def _past_the_end(kind: bytes, length: int, start: int) -> TruncatedError:
    return TruncatedError(f"chunk {kind.decode()} declares {length:,} bytes but the file ends first", start)


def _crc_mismatch(kind: bytes, stored: int, actual: int, offset: int) -> ChecksumError:
    return ChecksumError(f"CRC-32 mismatch in chunk {kind.decode()}: stored {stored:08x}, computed {actual:08x}", offset)


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
    max_pixels = pixel_limit(max_pixels)
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
    body = data[16 : HEADER_SIZE - 4]
    (stored,) = struct.unpack_from(">I", data, HEADER_SIZE - 4)
    actual = zlib.crc32(body, zlib.crc32(data[8:16]))
    if stored != actual:
        raise _crc_mismatch(HEAD, stored, actual, HEADER_SIZE - 4)
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


class _Bytes:
    """A ``.kvq`` file's bytes as the reader reads them: from memory, or from a seekable binary file.

    ``read`` gives fewer bytes than asked only at the end of the file; in
    memory it gives views, so nothing is copied. From a file, the first
    reads are exactly what is asked (opening a usual file reads no index
    data); after those it reads ahead into a window (64 KiB, doubling up to
    1 MiB as the reads go on), so that a file of a million tiny chunks costs
    a few dozen reads of the file, not three a chunk.
    """

    def __init__(self, data: memoryview | IO[bytes]) -> None:
        self._data = data
        self._window = memoryview(b"")
        self._window_at = 0
        self._window_size = _FIRST_WINDOW
        self._reads = 0
        if isinstance(data, memoryview):
            self._base, self.size = 0, len(data)
        else:
            self._base = data.tell()
            self.size = data.seek(0, 2) - self._base

    @property
    def in_memory(self) -> bool:
        return isinstance(self._data, memoryview)

    def read(self, offset: int, size: int) -> bytes | memoryview:
        if isinstance(self._data, memoryview):
            return self._data[offset : offset + size]
        at = offset - self._window_at
        if at >= 0 and at + size <= len(self._window):
            return self._window[at : at + size]
        if size > _READ_PIECE:
            self._data.seek(self._base + offset)
            return _read_at_most(self._data, size)
        self._reads += 1
        self._data.seek(self._base + offset)
        if self._reads <= _EXACT_READS:
            return _read_at_most(self._data, size)
        # Read ahead from here: the window's bytes before ``offset`` were
        # handed out already (the reader walks forward).
        self._window = memoryview(_read_at_most(self._data, max(size, self._window_size)))
        self._window_at = offset
        self._window_size = min(2 * self._window_size, _READ_PIECE)
        return self._window[:size]

    def blocks(self, offset: int, size: int, kind: bytes, start: int) -> Iterator[bytes | memoryview]:
        """``size`` bytes from ``offset``, a block at a time; TruncatedError (for chunk ``kind`` at ``start``) when the file ends first."""
        if isinstance(self._data, memoryview):
            if offset + size > len(self._data):
                raise _past_the_end(kind, size, start)
            yield self._data[offset : offset + size]
            return
        while size:
            piece = self.read(offset, min(size, _READ_PIECE))
            if not piece:  # the file shrank since it was measured
                raise _past_the_end(kind, size, start)
            yield piece
            offset += len(piece)
            size -= len(piece)


class IndexSource:
    """The INDX data of a checked file, as an index coding reads it: in memory, or from a seekable file.

    Made by :meth:`Reader.indices` once the INDX chunk's length, CRC and the
    end of the file are checked.

    Attributes
    ----------
    offset : int
        File offset of the first INDX data byte; a coding's errors, counted
        from the start of the INDX data, are rebased by it.
    length : int
        Bytes of INDX data.
    """

    def __init__(self, data: _Bytes, offset: int, length: int) -> None:
        self._data = data
        self.offset = offset
        self.length = length

    def read(self, start: int, size: int) -> bytes | memoryview:
        """``size`` bytes of the INDX data from ``start`` (a view when in memory).

        Raises
        ------
        TruncatedError
            The file is shorter than when it was checked.
        """
        if self._data.in_memory:
            return self._data.read(self.offset + start, size)
        return b"".join(self._data.blocks(self.offset + start, size, INDX, self.offset - 8))

    def whole(self) -> bytes | memoryview:
        """All of the INDX data (a view when in memory)."""
        return self.read(0, self.length)


class _ChunkOrder:
    """The chunk-order rules of the spec, applied one chunk at a time."""

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
        if kind[0] >= 0x61:  # a lower-case first letter: ancillary (the walk has checked the four are letters)
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
            try:
                problem = coding.by_code(h.coding).check_length(h, length)
            except FormatError as exc:
                # A coding's own rule with its offset in the INDX data (coding 1's rules 23 and 25 at K = 1).
                raise exc.rebased(start + 8) from None
            if problem:
                raise FormatError(problem, start)
            return True
        if kind == HEAD:
            raise FormatError("second HEAD chunk", start)
        raise FormatError(f"unknown critical chunk {kind.decode()}", start)

    def wants(self, kind: bytes) -> bool:
        """Whether a chunk's data is kept: PLTE, and the first ancillary chunk of each kept type."""
        return kind == PLTE or (kind in self.keep_types and all(kind != kept for kept, _ in self.ancillary))

    def keep(self, kind: bytes, body: bytes | memoryview | None) -> None:
        """Keep the data of a checked PLTE or wanted ancillary chunk; count the others."""
        if kind == PLTE and body is not None:
            self.palette = bytes(body)
        elif body is not None and self.wants(kind):
            # Only the first of each type counts (spec section 14), which also
            # bounds memory whatever the number of chunks.
            self.ancillary.append((kind, bytes(body)))
        else:
            self.skipped += 1


class Reader:
    """A ``.kvq`` file opened for reading: the one reader of the format, for bytes and for files alike.

    Opening reads and checks the signature, HEAD and every chunk (keeping the
    palette and the metadata chunks asked for, checking the others as they
    stream past, the index data included); :meth:`indices` hands the index
    data to the index coding. Nothing proportional to the image is allocated, and a file object is
    never asked for more than 1 MiB at once.

    Checks come in the order of spec §10, for every door: signature, HEAD;
    then, chunk after chunk, its framing (2), type letters (13), its data
    present (2), its CRC (19) and the rule of its type (14 to 18); after
    INDX, nothing (22).

    Parameters
    ----------
    source : bytes-like or binary file object
        The whole file, or a file positioned at its start. A file that can
        seek is read lazily; one that cannot (a pipe) is read whole once its
        header has passed, so a decompression bomb is refused from 38 bytes.
    max_pixels : int or None, default=178,956,970
        Refuse larger images from the header; None for no limit.
    keep : set of bytes, default=KEPT_ANCILLARY
        Ancillary chunk types whose data to keep; the others are checked and skipped.
    in_memory : bool, default=False
        Read a file whole once its header has passed (for a decoder that
        needs every byte anyway: one read instead of two passes).
    lazy : bool, default=False
        Stop at INDX's framing and length rule, leaving its data, CRC and
        the file's end to :meth:`indices`: opening reads no index data, and a
        file can be opened before all of it has arrived (Pillow's lazy
        ``Image.open`` and its ``ImageFile.Parser``).

    Attributes
    ----------
    header : Header
    palette : bytes
    ancillary : list of (bytes, bytes)
        The first chunk of each kept type before INDX, in file order.
    skipped : int
        Ancillary chunks checked and not kept.
    index_offset : int
        File offset of the first INDX data byte.
    index_length : int
        Bytes of INDX data, as its chunk declares.
    file_size : int
        The file's size in bytes, as it must be: INDX's chunk ends it.

    Raises
    ------
    FormatError (and subclasses), ImageTooLargeError
    """

    def __init__(
        self,
        source: bytes | bytearray | memoryview | IO[bytes],
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        keep: frozenset[bytes] | set[bytes] = KEPT_ANCILLARY,
        *,
        in_memory: bool = False,
        lazy: bool = False,
    ) -> None:
        pixel_limit(max_pixels)  # before a pipe's header is consumed
        data: memoryview | IO[bytes]
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = memoryview(source).cast("B")
            head = bytes(data[:HEADER_SIZE])
        else:
            seekable = can_seek(source)
            base = source.tell() if seekable else 0
            head = _read_at_most(source, HEADER_SIZE)
            data = source
        self.header = parse_header(head, max_pixels)
        if not isinstance(data, memoryview):
            if in_memory or not seekable:
                data = memoryview(head + checked_read(data))
            else:
                data.seek(base)
        self._bytes = _Bytes(data)
        self._source: IndexSource | None = None
        order = _ChunkOrder(self.header, keep)
        end, offset = self._bytes.size, HEADER_SIZE
        while True:
            start = offset
            if end - start < CHUNK_OVERHEAD:
                raise TruncatedError("file ends inside a chunk header", start)
            framing = bytes(self._bytes.read(start, 8))
            (length,) = struct.unpack(">I", framing[:4])
            kind = framing[4:]
            if not (kind.isascii() and kind.isalpha()):
                raise FormatError(f"invalid chunk type {kind!r}", start + 4)
            if lazy and kind == INDX:
                try:
                    order.check(kind, length, start)
                except FormatError:
                    # A broken INDX gets the verdict of the whole walk below, whose rules come first:
                    # its data present, then its CRC, then its length rule.
                    if length > end - start - CHUNK_OVERHEAD:
                        raise _past_the_end(kind, length, start) from None
                    self._checked(framing, start, length, keep=False)
                    raise
                break
            if length > end - start - CHUNK_OVERHEAD:
                raise _past_the_end(kind, length, start)
            # Kept data is what a valid file can hold: a PLTE of another length is refused below.
            wanted = kind != INDX and order.wants(kind) and (kind != PLTE or length == self.header.palette_size)
            body = self._checked(framing, start, length, keep=wanted)
            if order.check(kind, length, start):
                break
            order.keep(kind, body)
            offset = start + CHUNK_OVERHEAD + length
        assert order.palette is not None  # check() refuses INDX before PLTE
        self.palette: bytes = order.palette
        self.ancillary = order.ancillary
        self.skipped = order.skipped
        self.index_offset = start + 8
        self.index_length = length
        self.file_size = start + CHUNK_OVERHEAD + length
        if not lazy:
            self._finish()

    def _checked(self, framing: bytes, start: int, length: int, *, keep: bool) -> bytes | memoryview | None:
        """A chunk's data, streamed through its CRC and kept only when asked (a view when in memory)."""
        kind = framing[4:]
        if length <= _SMALL_CHUNK:
            # Framing, data and CRC in one read (a view of memory or of the read-ahead window).
            whole = self._bytes.read(start, CHUNK_OVERHEAD + length)
            if len(whole) < CHUNK_OVERHEAD + length:
                raise _past_the_end(kind, length, start)
            crc = zlib.crc32(whole[: 8 + length])
            (stored,) = struct.unpack_from(">I", whole, 8 + length)
            if stored != crc:
                raise _crc_mismatch(kind, stored, crc, start + 8 + length)
            return whole[8 : 8 + length] if keep else None
        crc = zlib.crc32(framing)
        pieces = []
        for piece in self._bytes.blocks(start + 8, length, kind, start):
            crc = zlib.crc32(piece, crc)
            if keep:
                pieces.append(piece)
        tail = self._bytes.read(start + 8 + length, 4)
        if len(tail) < 4:
            raise _past_the_end(kind, length, start)
        (stored,) = struct.unpack(">I", tail)
        if stored != crc:
            raise _crc_mismatch(kind, stored, crc, start + 8 + length)
        if not keep:
            return None
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _finish(self) -> None:
        """After INDX's CRC: nothing may follow it (rule 22)."""
        extra = self._bytes.size - self.file_size
        if extra:
            raise FormatError(f"{extra:,} bytes after the INDX chunk, which must be last", self.file_size)
        self._source = IndexSource(self._bytes, self.index_offset, self.index_length)

    def indices(self) -> IndexSource:
        """The INDX data, for the index coding to read; opened ``lazy``, its data, CRC and the file's end are checked here.

        Returns
        -------
        IndexSource

        Raises
        ------
        TruncatedError, ChecksumError, FormatError
        """
        if self._source is None:
            start, length = self.index_offset - 8, self.index_length
            if length > self._bytes.size - start - CHUNK_OVERHEAD:
                raise _past_the_end(INDX, length, start)
            self._checked(struct.pack(">I", length) + INDX, start, length, keep=False)
            self._finish()
        assert self._source is not None
        return self._source

    def unchecked_indices(self) -> IndexSource:
        """The INDX data without checking its CRC or the file's end: for a coding that reads only part of it.

        Such a coding checks what it reads by its own CRCs (``IndexCoding.partial``).

        Returns
        -------
        IndexSource

        Raises
        ------
        TruncatedError
            The file ends before the INDX data does.
        """
        if self._source is not None:
            return self._source
        start, length = self.index_offset - 8, self.index_length
        if length > self._bytes.size - start - CHUNK_OVERHEAD:
            raise _past_the_end(INDX, length, start)
        return IndexSource(self._bytes, self.index_offset, length)

    def container(self) -> Container:
        """Container: the whole file, its indices checked (:meth:`indices`) and given as a view (in memory only)."""
        source = self.indices()
        view = source.whole()
        return Container(self.header, self.palette, memoryview(view), self.ancillary, self.index_offset, self.skipped)


def parse(
    data: bytes | bytearray | memoryview,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    keep: frozenset[bytes] | set[bytes] = KEPT_ANCILLARY,
) -> Container:
    """Validate a whole ``.kvq`` file's chunks and split it into its parts (see :class:`Reader`).

    Nothing here allocates memory proportional to the image or to the number
    of chunks: the returned indices are a view of ``data``. The index data
    itself is checked by its index coding (:func:`kvq.codec.validate_indices`).

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
    FormatError (and subclasses), ImageTooLargeError
    """
    return Reader(data, max_pixels, keep).container()


def _read_at_most(fp: IO[bytes], size: int) -> bytes:
    """Read up to ``size`` bytes, allocating no more than the file actually holds.

    ``BufferedReader.read(n)`` allocates ``n`` bytes before reading, so a
    chunk length taken from the file (up to 4 GiB) must not reach it directly.
    """
    pieces = []
    while size > 0:
        piece = checked_read(fp, min(size, _READ_PIECE))
        if not piece:
            break
        pieces.append(piece)
        size -= len(piece)
    return b"".join(pieces)
