"""Fixed-width index packing (index coding 0): most significant bit first,
no row padding, the last byte zero-padded.

bitarray does the bit-level work for every width; whole-byte widths (8 and
16 bits) take a numpy fast path whose bytes ``tests/test_bitpack.py`` proves
identical to bitarray's.
"""

from __future__ import annotations

import numpy as np
from bitarray import bitarray

from .errors import FormatError

# Pixels handled per block: a multiple of 8, so every block but the last
# starts on a byte boundary, and small enough that the one-byte-per-bit
# scratch buffers stay around 16 MB whatever the image size.
_BLOCK = 1 << 20


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
        Use the numpy path for 8 and 16 bits; False forces bitarray.

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
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint16)
    out = bitarray(endian="big")
    for start in range(0, flat.size, _BLOCK):
        block = flat[start : start + _BLOCK].astype(np.uint16, copy=False)
        # One byte per bit, most significant first: bitarray.pack turns any
        # non-zero byte into a 1 bit.
        out.pack(((block[:, None] >> shifts) & 1).astype(np.uint8).tobytes())
    return out.tobytes()


def unpack(data: bytes | memoryview, bits: int, count: int, k: int, *, fast: bool = True) -> np.ndarray:
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
        Use the numpy path for 8 and 16 bits; False forces bitarray.

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
    if k < (1 << bits):
        bad = np.flatnonzero(out >= k)
        if bad.size:
            first = int(bad[0])
            raise FormatError(f"index {int(out[first])} of pixel {first:,} is >= palette size {k}", first * bits // 8)
    return out
