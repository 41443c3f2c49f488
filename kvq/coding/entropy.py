"""Index coding 1: context-mixing binary arithmetic coding (``spec/kvq-coding-1.md``).

Every pixel's index is turned into a few yes/no decisions: "is it the same
as this neighbour?" for the distinct neighbours left, up, up-right and
up-left in that order, and, when it is none of them, the bits of the index
itself, most significant first. Each decision's probability comes from three
adaptive counters chosen by contexts of growing order (the neighbours'
equality pattern, then the index above and to the left, then the one up-right
too), mixed in the logistic domain by a small online mixer, and the decision is
coded with a carry-less binary arithmetic coder.

Why this shape (``benchmarks/entropy.py`` has the figures): the neighbour
questions catch the long runs and edges that fixed-width packing pays full
price for; rich contexts win at small K and dilute at large K, and mixing the
three orders takes the best of both at every K. Everything is integer
arithmetic with fixed tables, so the JavaScript decoder (``kvq/web/kvq.js``)
and any independent decoder reproduce it bit for bit.

numba compiles the sequential kernel (:mod:`kvq.coding._entropy_kernel`); it
is imported on first use, so ``import kvq`` and fixed-width files never pay
for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import FormatError, TruncatedError
from .base import IndexCoding

if TYPE_CHECKING:
    from ..container import Header

#: Spec rule 26: the most decisions one INDX byte can hold, ceil(8 / log2(4096 / 4095)) = 22,711. A decision
#: narrows the coder's interval, counted as x2 - x1 + 1 values, to at most 4095/4096 of it (a probability is 1 to
#: 4094 in 1/4096, and the integer rounding keeps it under that), and each byte read widens it 256 times, from 2^32
#: at the start to at least 1 at the end: D decisions of L bytes need D * log2(4096/4095) <= 32 + 8 (L - 4) = 8 L.
#: With K >= 2 every pixel makes at least one decision, so a stream of L bytes holds at most 22,711 L pixels.
DECISIONS_PER_BYTE = 22_711


#: Spec rule 27, the work limit: a stream of L bytes for N pixels may take at most
#: WORK_PER_PIXEL * N + WORK_PER_BYTE * L decisions. Real images take one to two decisions a pixel where they are
#: flat or regular (text, stripes: up to 2.0 a pixel in 0.012 bytes) and pay for more in bytes (a photo at K = 256:
#: 7.3 a pixel in 0.56 bytes); benchmarks/work_limit.py finds none within half of the limit. A file made to take 20
#: decisions a pixel in a few bytes is refused after 4 a pixel, a fifth of its work.
WORK_PER_PIXEL = 4
WORK_PER_BYTE = 64


def work_limit(n_pixels: int, length: int) -> int:
    """The most decisions a coding-1 stream may take (spec rule 27).

    Parameters
    ----------
    n_pixels : int
    length : int
        INDX data bytes.

    Returns
    -------
    int
    """
    return WORK_PER_PIXEL * n_pixels + WORK_PER_BYTE * length


def table_bits(n_pixels: int) -> int:
    """log2 of each context table's size for an image of ``n_pixels``.

    Small images get small tables (less to clear); 2^18 entries at most, which
    keep the three tables (3 MiB) near the processor's caches: larger ones
    compress 0.3 % better and decode 30 % slower (benchmarks/entropy.py).

    Parameters
    ----------
    n_pixels : int

    Returns
    -------
    int
        12 to 18.
    """
    return min(18, max(12, n_pixels.bit_length() + 1))


def _kernel() -> Any:
    # numba costs ~0.3 s to import and compiles (or loads from its cache) on first use:
    # only files that use this coding pay for it.
    from . import _entropy_kernel

    return _entropy_kernel


#: No work limit (the encoder checks its stream's decisions against the limit afterwards).
_NO_LIMIT = 1 << 62


def _index_type(k: int) -> type[np.unsignedinteger[Any]]:
    return np.uint8 if k <= 256 else np.uint16


def encode(indices: np.ndarray, k: int, limit: int | None = None) -> bytes | None:
    """Entropy-code an (H, W) index array.

    Parameters
    ----------
    indices : ndarray of uint8 or uint16, shape (H, W)
        Every value below ``k``.
    k : int
        Palette size, 1 to 65,536.
    limit : int, optional
        Give up and return None once the stream would exceed this many bytes
        (the encoder passes the fixed-width size: no point going past it).

    Returns
    -------
    bytes or None
        None past ``limit``, or when the stream would take more decisions than
        the work limit lets a reader make (:func:`work_limit`, spec rule 27).
    """
    height, width = indices.shape
    n = height * width
    # A writable copy (the kernel is one compiled function for both
    # directions), in the type decoding gives: one compiled kernel per type.
    flat: np.ndarray = np.require(indices, _index_type(k), ["C", "W"]).reshape(-1)
    if limit is None:
        # Worst case: 20 decisions per pixel at under 12.1 bits each, plus the flush.
        limit = 31 * n + 16
    out = np.empty(limit, dtype=np.uint8)
    kernel = _kernel()
    status, used, _, decisions = kernel.run(
        flat, width, height, k, table_bits(n), out, False, _NO_LIMIT, kernel.SQUASH_TABLE, kernel.STRETCH_TABLE, kernel.RATE_TABLE
    )
    if status == kernel.FULL or decisions > work_limit(n, used):
        # Past the work limit every reader refuses the stream (rule 27): the caller stores fixed width.
        return None
    return out[:used].tobytes()


def decode(data: bytes | memoryview, width: int, height: int, k: int, offset: int = 0) -> np.ndarray:
    """Decode an entropy-coded index stream into a flat array of N indices.

    Parameters
    ----------
    data : bytes-like
        The INDX chunk's data.
    width, height, k : int
        From the header (already validated, so N is within the pixel limit).
    offset : int, default=0
        File offset of ``data``, for error messages.

    Returns
    -------
    ndarray of uint8 (k <= 256) or uint16, shape (N,)

    Raises
    ------
    TruncatedError
        The stream ends before the last pixel (rule 23).
    FormatError
        A literal index is K or more (rule 24), bytes remain after the last
        pixel (rule 25), or the stream takes more decisions than the work
        limit (rule 27).
    """
    n = width * height
    # Straight into the returned type: 1 byte a pixel when K <= 256, never 2 then 1.
    out: np.ndarray = np.zeros(n, dtype=_index_type(k))
    if k == 1 and len(data) == 4:
        return out  # no decision to decode (E5): every index is 0
    buf = np.frombuffer(data, dtype=np.uint8).copy()
    kernel = _kernel()
    status, pos, pixel, _ = kernel.run(
        out, width, height, k, table_bits(n), buf, True, work_limit(n, len(buf)),
        kernel.SQUASH_TABLE, kernel.STRETCH_TABLE, kernel.RATE_TABLE,
    )  # fmt: skip
    if status == kernel.WORK:
        raise FormatError(
            f"entropy-coded indices take more than {work_limit(n, len(buf)):,} decisions by pixel {pixel:,} of {n:,},"
            f" the work limit of {WORK_PER_PIXEL} a pixel and {WORK_PER_BYTE} a byte (spec rule 27)",
            offset + pos,
        )
    if status == kernel.TRUNCATED:
        raise TruncatedError(f"entropy-coded indices end early, at pixel {pixel} of {n}", offset + pos)
    if status == kernel.LITERAL:
        raise FormatError(f"entropy-coded literal index at pixel {pixel} is not below K = {k}", offset + pos)
    if status == kernel.TRAILING:
        raise FormatError(f"{len(buf) - pos} bytes after the last entropy-coded index", offset + pos)
    return out


class EntropyCoding(IndexCoding):
    """Coding 1: context-mixing arithmetic coding (format 1.1), decoded by a compiled kernel."""

    code = 1
    name = "entropy"
    description = "entropy coded"
    summary = "smallest, format 1.1"
    minor = 1
    compiled = True
    side_information = "coder flush; the adaptive model sends nothing"

    def check_length(self, header: Header, length: int) -> str | None:
        if length < 4:
            raise TruncatedError(f"entropy-coded indices end early: INDX holds {length} bytes, the coder starts with 4", length)
        if header.k == 1 and length > 4:
            # K = 1 codes no decision (E5): the stream is its 4 flush bytes. Rule 25, known from the length alone,
            # before a pixel is walked (a 17,895,697 x 10 file took 2 s and 207 MB to reach it).
            raise FormatError(f"{length - 4:,} bytes after the last entropy-coded index (K = 1 codes no decision)", 4)
        if header.k >= 2 and header.n_pixels > DECISIONS_PER_BYTE * length:
            # Rule 26, before the kernel walks N pixels (84 bytes declaring 13,000 x 13,000 took 7.5 s and 320 MB).
            raise FormatError(
                f"INDX holds {length:,} bytes, too few for {header.n_pixels:,} pixels: every pixel takes a decision when"
                f" K >= 2, and a coding-1 byte holds at most {DECISIONS_PER_BYTE:,}",
                -8,  # the INDX chunk's start, as rule 18
            )
        return None

    def encode(self, indices: np.ndarray, k: int, *, limit: int | None = None, threads: int | None = None) -> bytes | None:
        return encode(indices, k, limit)

    def decode(
        self, body: bytes | memoryview, header: Header, *, rows: tuple[int, int] | None = None, threads: int | None = None
    ) -> np.ndarray:
        # One sequential stream whose contexts run across rows: decoded whole, then sliced.
        indices = decode(body, header.width, header.height, header.k).reshape(header.height, header.width)
        return indices if rows is None else indices[rows[0] : rows[1]]

    def count(self, body: bytes | memoryview, header: Header) -> np.ndarray:
        if header.k == 1:
            # No decision, nothing to decode: the length rule has checked the whole stream.
            from ..bitpack import check_countable

            check_countable(header.n_pixels)
            return np.array([header.n_pixels], dtype=np.int64)
        return super().count(body, header)

    def side_bits(self, header: Header, index_size: int) -> int:
        # The coder's 4-byte flush; the adaptive model sends nothing.
        return 32

    def start(self) -> None:
        # One kernel type per index type: uint8 (K <= 256) and uint16.
        for k in (2, 257):
            indices = np.zeros((1, 2), dtype=_index_type(k))
            stream = encode(indices, k)
            assert stream is not None
            decode(stream, 2, 1, k)
