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
from . import IndexCoding

if TYPE_CHECKING:
    from ..container import Header

# The 33 knots of the squash function, in 12-bit probability units, from
# lpaq1: squash(d) = 4096 / (1 + e^(-d/256)) sampled at d = -2048, -1920, ..., 2048.
SQUASH_KNOTS = (
    1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047,
    2549, 2994, 3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089,
    4092, 4093, 4094,
)

#: Multiplier of the context hash (2^32 / golden ratio).
HASH_MULTIPLIER = 0x9E3779B1
#: Hash seeds of the two kinds of decision: neighbour matches and literal bits.
SEED_MATCH = 0x6A09E667
SEED_LITERAL = 0xBB67AE85
#: A counter's adaptation rate stops slowing down after this many updates.
COUNTER_LIMIT = 30
#: Initial mixer weight of each of the three counters (16.16 fixed point);
#: the bias input starts at 0.
WEIGHT_INIT = 22000
#: Mixer learning rate.
LEARNING_RATE = 6
#: Bias input of the mixer.
BIAS_INPUT = 256
#: Weights are kept within +-WEIGHT_LIMIT so every sum fits 53-bit doubles.
WEIGHT_LIMIT = 1 << 24
#: Weight sets: one per candidate rank (0-3) and one per literal bit depth (0-15).
N_WEIGHT_SETS = 20
#: Number of context tables (orders 0, 1, 2).
N_TABLES = 3


def squash(d: int) -> int:
    """12-bit probability of the logistic value ``d`` (256 units per nat).

    Parameters
    ----------
    d : int

    Returns
    -------
    int
        0 to 4095.
    """
    if d > 2047:
        return 4095
    if d < -2047:
        return 0
    w = d & 127
    i = (d >> 7) + 16
    return (SQUASH_KNOTS[i] * (128 - w) + SQUASH_KNOTS[i + 1] * w + 64) >> 7


def _tables() -> tuple[np.ndarray, np.ndarray]:
    squash_table = np.array([squash(d) for d in range(-2047, 2048)], dtype=np.int32)
    stretch_table = np.empty(4096, dtype=np.int32)
    # stretch is squash's inverse: the smallest d whose squash reaches p.
    pi = 0
    for x in range(-2047, 2048):
        v = squash(x)
        stretch_table[pi : v + 1] = x
        pi = max(pi, v + 1)
    stretch_table[pi:] = 2047
    return squash_table, stretch_table


SQUASH_TABLE, STRETCH_TABLE = _tables()
#: rate[n] for a counter updated n times (n capped at COUNTER_LIMIT).
RATE_TABLE = np.array([65536 // (n + 2) for n in range(COUNTER_LIMIT + 1)], dtype=np.int32)


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


# Kernel status codes (kvq/_entropy_kernel.py returns them).
_OK, _TRUNCATED, _LITERAL, _TRAILING, _FULL = 0, 1, 2, 3, 4


def _kernel() -> Any:
    # numba costs ~0.3 s to import and compiles (or loads from its cache) on first use:
    # only files that use this coding pay for it.
    from ._entropy_kernel import run

    return run


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
    status, used, _ = _kernel()(
        flat, width, height, k, table_bits(n), out, False, SQUASH_TABLE, STRETCH_TABLE, RATE_TABLE
    )
    if status == _FULL:
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
        A literal index is K or more (rule 24), or bytes remain after the last
        pixel (rule 25).
    """
    n = width * height
    # Straight into the returned type: 1 byte a pixel when K <= 256, never 2 then 1.
    out: np.ndarray = np.zeros(n, dtype=_index_type(k))
    buf = np.frombuffer(data, dtype=np.uint8).copy()
    status, pos, pixel = _kernel()(
        out, width, height, k, table_bits(n), buf, True, SQUASH_TABLE, STRETCH_TABLE, RATE_TABLE
    )
    if status == _TRUNCATED:
        raise TruncatedError(f"entropy-coded indices end early, at pixel {pixel} of {n}", offset + pos)
    if status == _LITERAL:
        raise FormatError(f"entropy-coded literal index at pixel {pixel} is not below K = {k}", offset + pos)
    if status == _TRAILING:
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

    def encode(self, indices: np.ndarray, k: int, *, limit: int | None = None, threads: int | None = None) -> bytes | None:
        return encode(indices, k, limit)

    def decode(
        self, body: bytes | memoryview, header: Header, *, rows: tuple[int, int] | None = None, threads: int | None = None
    ) -> np.ndarray:
        # One sequential stream whose contexts run across rows: decoded whole, then sliced.
        indices = decode(body, header.width, header.height, header.k).reshape(header.height, header.width)
        return indices if rows is None else indices[rows[0] : rows[1]]

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
