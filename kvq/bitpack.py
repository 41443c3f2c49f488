"""Fixed-width index packing (index coding 0): most significant bit first,
no row padding, the last byte zero-padded.

bitarray does the bit-level work for every width. numpy fast paths give the
same bytes and indices (``tests/test_bitpack.py`` proves it for every width)
in less time (``benchmarks/bitpack.py``): whole-byte widths (8 and 16 bits)
are a plain byte view; widths below 8 pack and unpack each run of 8 indices,
which fills exactly ``bits`` bytes, as one 64-bit word; widths 9 to 15
unpack index ``j`` of every such run at once, through a strided view that
reads the 4 bytes holding it as one big-endian 32-bit word.
"""

from __future__ import annotations

import numpy as np
from bitarray import bitarray

from .errors import FormatError, ImageTooLargeError

# Pixels handled per block: a multiple of 8, so every block but the last
# starts on a byte boundary, and small enough that the one-byte-per-bit
# scratch buffers stay around 16 MB whatever the image size.
_BLOCK = 1 << 20

#: The most pixels a count holds (int64). Only a K = 1 file, whose indices take no bytes, can declare more
#: ((2^32 - 1)^2 at most): refused as too large to count, rather than overflowing numpy's integers.
MAX_COUNT = 2**63 - 1


def check_countable(count: int) -> None:
    """Refuse a pixel count that numpy's int64 counts cannot hold.

    Parameters
    ----------
    count : int

    Raises
    ------
    ImageTooLargeError
        ``count`` > 2^63 - 1, whatever ``max_pixels`` says.
    """
    if count > MAX_COUNT:
        raise ImageTooLargeError(f"{count:,} pixels are more than kvq counts (2^63 - 1), with or without a pixel limit")


def index_dtype(k: int) -> np.dtype:
    """Smallest unsigned dtype that holds indices below ``k``.

    Parameters
    ----------
    k : int

    Returns
    -------
    numpy.dtype
        uint8 for k <= 256, else uint16.
    """
    return np.dtype(np.uint8 if k <= 256 else np.uint16)


def pack(indices: np.ndarray, bits: int, *, fast: bool = True) -> bytes:
    """Pack indices at ``bits`` bits each.

    Parameters
    ----------
    indices : ndarray of unsigned int
        Any shape; packed in C (row-major) order. Every value must be < 2**bits.
    bits : int
        0 to 16. With 0 the result is empty.
    fast : bool, default=True
        Use a numpy path for widths of 1 to 8 and 16 bits; False forces bitarray.

    Returns
    -------
    bytes
        ceil(indices.size * bits / 8) bytes.
    """
    flat = np.ascontiguousarray(indices).reshape(-1)
    if bits == 0:
        return b""
    if fast and bits == 8:
        return flat.astype(np.uint8, copy=False).tobytes()
    if fast and bits == 16:
        return flat.astype(">u2").tobytes()
    if fast and bits < 8:
        whole = flat.size - flat.size % 8
        head = b"".join(_pack_words(flat[start : min(start + _BLOCK, whole)], bits) for start in range(0, whole, _BLOCK))
        return head + pack(flat[whole:], bits, fast=False)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint16)
    out = bitarray(endian="big")
    for start in range(0, flat.size, _BLOCK):
        block = flat[start : start + _BLOCK].astype(np.uint16, copy=False)
        # One byte per bit, most significant first: bitarray.pack turns any
        # non-zero byte into a 1 bit.
        out.pack(((block[:, None] >> shifts) & 1).astype(np.uint8).tobytes())
    return out.tobytes()


def _pack_words(block: np.ndarray, bits: int) -> bytes:
    # block.size is a multiple of 8: each group of 8 indices becomes one
    # big-endian 64-bit word whose low 8*bits bits are the packed group.
    groups = block.reshape(-1, 8).astype(np.uint64)
    words = np.zeros(groups.shape[0], dtype=np.uint64)
    for j in range(8):
        words |= groups[:, j] << np.uint64(bits * (7 - j))
    return words.astype(">u8").view(np.uint8).reshape(-1, 8)[:, 8 - bits :].tobytes()


def _unpack_words(raw: np.ndarray, bits: int, out: np.ndarray) -> None:
    # Inverse of _pack_words: raw holds whole groups (bits bytes each).
    groups = raw.reshape(-1, bits)
    padded = np.zeros((groups.shape[0], 8), dtype=np.uint8)
    padded[:, 8 - bits :] = groups
    words = padded.view(">u8").reshape(-1).astype(np.uint64)
    mask = np.uint64((1 << bits) - 1)
    fields = out.reshape(-1, 8)
    for j in range(8):
        fields[:, j] = (words >> np.uint64(bits * (7 - j))) & mask


def _unpack_wide(raw: np.ndarray, first_byte: int, bits: int, out: np.ndarray) -> None:
    # out.size is a multiple of 8 and raw holds at least 3 bytes after the
    # last group. Index j of a group starts j * bits bits in: the 32-bit
    # big-endian word at its first byte holds all of it (at most 7 + 15 bits).
    groups = out.size // 8
    mask = np.uint32((1 << bits) - 1)
    fields = out.reshape(-1, 8)
    for j in range(8):
        offset = j * bits
        words = np.ndarray((groups,), dtype=">u4", buffer=raw, offset=first_byte + offset // 8, strides=(bits,))
        fields[:, j] = (words >> np.uint32(32 - offset % 8 - bits)) & mask


def unpack(data: bytes | memoryview | np.ndarray, bits: int, count: int, k: int, *, fast: bool = True) -> np.ndarray:
    """Unpack ``count`` indices of ``bits`` bits and check each is below ``k``.

    Parameters
    ----------
    data : bytes-like
        Exactly ceil(count * bits / 8) bytes.
    bits : int
        0 to 16.
    count : int
        Number of indices.
    k : int
        Palette size; every index must be below it.
    fast : bool, default=True
        Use a numpy path (every width but 0); False forces bitarray.

    Returns
    -------
    ndarray, shape (count,)
        uint8 for k <= 256, else uint16.

    Raises
    ------
    FormatError
        An index is >= k, or the padding bits of the last byte are not zero.
        The offset given is relative to the start of ``data``.
    """
    dtype = index_dtype(k)
    if bits == 0:
        return np.zeros(count, dtype=dtype)
    raw = np.frombuffer(data, dtype=np.uint8)
    if fast and bits == 8:
        out = raw.astype(dtype, copy=True)
    elif fast and bits == 16:
        out = raw.view(">u2").astype(dtype)
    elif fast and bits < 8:
        out = np.empty(count, dtype=dtype)
        whole = count - count % 8
        for start in range(0, whole, _BLOCK):
            stop = min(start + _BLOCK, whole)
            _unpack_words(raw[start * bits // 8 : stop * bits // 8], bits, out[start:stop])
        # The last partial group and its padding rule go through bitarray.
        tail = whole * bits // 8
        try:
            out[whole:] = unpack(raw[tail:], bits, count - whole, 1 << bits, fast=False)
        except FormatError as exc:
            raise exc.rebased(tail) from None
    elif fast and 8 < bits < 16 and count >= 16:
        out = np.empty(count, dtype=dtype)
        # A field's 4-byte read runs up to 3 bytes past its group, so the
        # last whole group goes with the tail.
        whole = (count // 8 - 1) * 8
        for start in range(0, whole, _BLOCK):
            stop = min(start + _BLOCK, whole)
            _unpack_wide(raw, start * bits // 8, bits, out[start:stop])
        tail = whole * bits // 8
        try:
            out[whole:] = unpack(raw[tail:], bits, count - whole, 1 << bits, fast=False)
        except FormatError as exc:
            raise exc.rebased(tail) from None
    else:
        out = np.empty(count, dtype=dtype)
        bytes_per_block = _BLOCK * bits // 8
        for i, start in enumerate(range(0, count, _BLOCK)):
            n = min(_BLOCK, count - start)
            chunk = bitarray(endian="big")
            chunk.frombytes(raw[i * bytes_per_block : i * bytes_per_block + (n * bits + 7) // 8].tobytes())
            bitmap = np.frombuffer(chunk.unpack(), dtype=np.uint8)
            if bitmap[n * bits :].any():
                raise FormatError("padding bits after the last index are not zero", len(raw) - 1)
            bitmap = bitmap[: n * bits].reshape(n, bits)
            values = np.zeros(n, dtype=np.uint16)
            for column in range(bits):
                values <<= 1
                values |= bitmap[:, column]
            out[start : start + n] = values
    check_below(out, k, bits)
    return out


def check_below(indices: np.ndarray, k: int, bits: int, first: int = 0) -> None:
    """Refuse the first index that is not below ``k``: the one place that words spec rule 21.

    Parameters
    ----------
    indices : ndarray of unsigned int
        Consecutive indices in stream order (any shape).
    k : int
        Palette size.
    bits : int
        Bits per index; the error's offset is the byte holding the bad index.
    first : int, default=0
        Pixel number of the first of ``indices`` in the image.

    Raises
    ------
    FormatError
        Its offset counted from the start of the index data.
    """
    if k >= (1 << bits):  # no value of this width can reach k
        return
    flat = indices.reshape(-1)
    bad = np.flatnonzero(flat >= k)
    if bad.size:
        pixel = first + int(bad[0])
        raise FormatError(f"index {int(flat[bad[0]])} of pixel {pixel:,} is >= palette size {k}", pixel * bits // 8)


def count_values(indices: np.ndarray, k: int) -> np.ndarray:
    """How many times each value below ``k`` occurs in ``indices``, block by block.

    np.bincount converts its input to intp (8 bytes a value): blocks keep that
    copy small whatever the image size.

    Parameters
    ----------
    indices : ndarray of unsigned int
        Any shape; values of ``k`` or more are not counted.
    k : int

    Returns
    -------
    ndarray of int64, shape (k,)
    """
    flat = indices.reshape(-1)
    counts = np.zeros(k, dtype=np.int64)
    for start in range(0, flat.size, _BLOCK):
        counts += np.bincount(flat[start : start + _BLOCK], minlength=k)[:k]
    return counts


def tally(data: bytes | memoryview, bits: int, count: int, k: int) -> np.ndarray:
    """Check packed indices as :func:`unpack` does and count each value, block by block.

    Memory stays bounded whatever the image size: no array of ``count``
    indices is ever built, so a whole file can be validated (and its palette
    use counted) without the memory of decoding it.

    Parameters
    ----------
    data : bytes-like
        Exactly ceil(count * bits / 8) bytes.
    bits : int
        0 to 16.
    count : int
        Number of indices.
    k : int
        Palette size; every index must be below it.

    Returns
    -------
    ndarray of int64, shape (k,)
        How many indices take each value.

    Raises
    ------
    FormatError
        Exactly the error :func:`unpack` raises for the same data: the padding
        first, then the first index >= k in stream order. The offset is
        relative to the start of ``data``.
    ImageTooLargeError
        ``count`` is more than an int64 holds (a K = 1 file can declare so
        many pixels in 65 bytes).
    """
    check_countable(count)
    if bits == 0:
        return np.array([count], dtype=np.int64)
    raw = memoryview(data).cast("B")
    padding = 8 * len(raw) - count * bits
    if padding and raw[-1] & ((1 << padding) - 1):
        raise FormatError("padding bits after the last index are not zero", len(raw) - 1)
    width = 1 << bits
    counts = np.zeros(width, dtype=np.int64)
    # _BLOCK is a multiple of 8, so every block starts on a byte boundary.
    for start in range(0, count, _BLOCK):
        n = min(_BLOCK, count - start)
        first = start * bits // 8
        block = unpack(raw[first : first + (n * bits + 7) // 8], bits, n, width)
        seen = np.bincount(block, minlength=width)
        if seen[k:].any():
            check_below(block, k, bits, first=start)
        counts += seen
    return counts[:k]
