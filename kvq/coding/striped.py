"""Index coding 2: coding 1 in independent stripes of rows (``spec/kvq-coding-2.md``), format 1.2.

The image is cut into stripes of whole rows, about 2^16 pixels each
(:func:`stripe_rows`), and each stripe is coded as its own coding-1 stream, as
if it were an image of its own: the model starts afresh and the rows above it
are outside. INDX starts with a table of every stripe's end offset and CRC-32,
then the streams follow. So a stripe decodes alone: stripes decode on all
cores at once, a band of rows reads and decodes only the stripes that hold it
(the table says where they are, their CRCs check what was read), and a large
file streams a stripe group at a time. The price is the learning each stripe
starts over: about 2 % of the bytes on the Kodak photos
(``benchmarks/results/coding2.md``).

The kernel is :mod:`kvq.coding._striped_kernel` (coding 1's decision on
coding 1's constants, with a work counter); it runs without the GIL, so a
thread pool runs stripes in parallel.
"""

from __future__ import annotations

import functools
import os
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ChecksumError, FormatError, OptionError, TruncatedError
from .base import IndexCoding
from .entropy import table_bits

if TYPE_CHECKING:
    from ..container import Header, IndexSource

#: Pixels a stripe holds at most (its height is this divided by the width, at least one row).
STRIPE_PIXELS = 65536
#: Bytes of a stripe table entry: the stripe's end offset and its CRC-32, each a big-endian u32.
ENTRY_SIZE = 8
#: Rule 35: a stripe of K >= 2 holds at most this many pixels per byte (every pixel costs a decision,
#: every decision at least -log2(4095/4096) bits: at most 22,713 decisions a byte, plus 4 bytes' slack).
PIXELS_PER_BYTE = 65536
#: Rule 40, the work limit of a stripe: at most WORK_PER_PIXEL * N_s + WORK_PER_BYTE * L_s decisions.
WORK_PER_PIXEL = 2
WORK_PER_BYTE = 64
#: The bytes a K = 1 stripe holds: the coder's flush alone (no decision is ever coded).
FLUSH_SIZE = 4


def stripe_rows(width: int) -> int:
    """Rows per stripe for an image ``width`` pixels wide: max(1, 65536 // width).

    Parameters
    ----------
    width : int

    Returns
    -------
    int
    """
    return max(1, STRIPE_PIXELS // width)


def stripe_count(width: int, height: int) -> int:
    """Stripes of a ``width`` x ``height`` image: ceil(height / stripe_rows(width)).

    Parameters
    ----------
    width, height : int

    Returns
    -------
    int
    """
    return -(-height // stripe_rows(width))


def work_limit(n_pixels: int, length: int) -> int:
    """Most decisions a stripe of ``n_pixels`` in ``length`` bytes may take (rule 40).

    Parameters
    ----------
    n_pixels, length : int

    Returns
    -------
    int
    """
    return WORK_PER_PIXEL * n_pixels + WORK_PER_BYTE * length


def cores() -> int:
    """int: the cores this process may run on (its CPU affinity where the system has one)."""
    counter = getattr(os, "process_cpu_count", None)  # Python 3.13
    if counter is not None:
        return int(counter() or 1)
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def threads_for(threads: int | None) -> int:
    """The threads a ``threads=`` option asks for: None all cores, else at least 1.

    Parameters
    ----------
    threads : int or None

    Returns
    -------
    int

    Raises
    ------
    OptionError
        Not None or a positive integer.
    """
    if threads is None:
        return cores()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise OptionError(f"threads must be a positive integer or None (all cores), not {threads!r}")
    return int(threads)


def _kernel() -> Any:
    # numba's import and first compile are paid only by files that use this coding.
    from . import _striped_kernel

    return _striped_kernel


def _entropy_tables() -> Any:
    from . import _entropy_kernel

    return _entropy_kernel


def _index_type(k: int) -> type[np.unsignedinteger[Any]]:
    return np.uint8 if k <= 256 else np.uint16


@dataclass(frozen=True)
class Table:
    """A checked stripe table: where each stripe's stream lies in the INDX data.

    Attributes
    ----------
    rows : int
        Rows per stripe (the last may have fewer).
    starts, ends : ndarray of int64, shape (S,)
        Stripe ``i`` is INDX data bytes ``starts[i]`` to ``ends[i]`` (exclusive).
    crcs : ndarray of uint32, shape (S,)
    """

    rows: int
    starts: np.ndarray
    ends: np.ndarray
    crcs: np.ndarray

    @property
    def count(self) -> int:
        """int: the number of stripes."""
        return len(self.ends)

    def span(self, stripe: int, height: int) -> tuple[int, int]:
        """(first row, end row) of ``stripe`` in an image of ``height`` rows."""
        return stripe * self.rows, min(height, (stripe + 1) * self.rows)


def read_table(table: bytes | memoryview, header: Header, length: int) -> Table:
    """Check a stripe table (rules 32 to 35) and say where every stripe lies.

    Parameters
    ----------
    table : bytes-like
        The first 8 * S bytes of the INDX data.
    header : Header
    length : int
        Bytes of INDX data (rules 30 and 31 already checked).

    Returns
    -------
    Table

    Raises
    ------
    FormatError
        Offsets inside the INDX data.
    """
    width, height, k = header.width, header.height, header.k
    rows = stripe_rows(width)
    count = stripe_count(width, height)
    entries = np.frombuffer(table, dtype=">u4", count=2 * count).reshape(count, 2)
    ends = entries[:, 0].astype(np.int64)
    starts = np.empty(count, dtype=np.int64)
    starts[0] = ENTRY_SIZE * count
    starts[1:] = ends[:-1]
    # Rules 32 and 33 in table order: the first entry that breaks either is reported.
    bad = np.flatnonzero((ends < starts) | (ends > length))
    if bad.size:
        i = int(bad[0])
        if ends[i] < starts[i]:
            raise FormatError(
                f"stripe {i} ends at byte {ends[i]:,} of INDX, before it starts ({starts[i]:,}): the stripe table is not in order",
                ENTRY_SIZE * i,
            )
        raise FormatError(f"stripe {i} ends at byte {ends[i]:,}, past the {length:,} bytes of INDX", ENTRY_SIZE * i)
    if ends[-1] != length:
        raise FormatError(f"{length - int(ends[-1]):,} bytes of INDX after the last stripe", int(ends[-1]))
    sizes = ends - starts
    stripe_pixels = np.full(count, rows * width, dtype=np.int64)
    stripe_pixels[-1] = (height - (count - 1) * rows) * width
    if k == 1:
        bad = np.flatnonzero(sizes != FLUSH_SIZE)
        why = f"holds {{size:,}} bytes; with K = 1 a stripe is its {FLUSH_SIZE}-byte flush alone"
    else:
        # Python integers: N_s can pass 2^63 / 65536 only in a file no pixel limit bounds.
        bad = np.flatnonzero([n > PIXELS_PER_BYTE * s for n, s in zip(stripe_pixels.tolist(), sizes.tolist(), strict=True)])
        why = f"holds {{size:,}} bytes, too few for its {{pixels:,}} pixels (at most {PIXELS_PER_BYTE:,} a byte)"
    if bad.size:
        i = int(bad[0])
        raise FormatError(f"stripe {i} " + why.format(size=int(sizes[i]), pixels=int(stripe_pixels[i])), ENTRY_SIZE * i)
    return Table(rows, starts, ends, entries[:, 1].astype(np.uint32))


def _decode_stripe(stream: bytes | memoryview, out: np.ndarray, width: int, rows: int, k: int, start: int, crc: int, stripe: int) -> None:
    """Check one stripe's CRC (rule 36) and decode it into ``out`` (rules 37 to 40); offsets in the INDX data."""
    actual = zlib.crc32(stream)
    if actual != crc:
        raise ChecksumError(f"CRC-32 mismatch in stripe {stripe}: stored {crc:08x}, computed {actual:08x}", ENTRY_SIZE * stripe + 4)
    # A writable copy: the kernel is compiled once, for the writable buffer encoding fills.
    buf = np.frombuffer(stream, dtype=np.uint8).copy()
    kernel, tables = _kernel(), _entropy_tables()
    n = width * rows
    status, pos, pixel, _ = kernel.run(
        out, width, rows, k, table_bits(n), buf, True, tables.SQUASH_TABLE, tables.STRETCH_TABLE, tables.RATE_TABLE,
        work_limit(n, len(buf)),
    )  # fmt: skip
    if status == kernel.TRUNCATED:
        raise TruncatedError(f"stripe {stripe} ends early, at its pixel {pixel} of {n}", start + len(buf))
    if status == kernel.LITERAL:
        raise FormatError(f"literal index in stripe {stripe} at its pixel {pixel} is not below K = {k}", start + pos)
    if status == kernel.TRAILING:
        raise FormatError(f"{len(buf) - pos} bytes after the last index of stripe {stripe}", start + pos)
    if status == kernel.WORK:
        raise FormatError(
            f"stripe {stripe} needs more than {work_limit(n, len(buf)):,} decisions (the work limit of {n:,} pixels in {len(buf):,} bytes)",
            start + pos,
        )


def _run_all(jobs: list[Callable[[], None]], threads: int) -> None:
    """Run every job, on up to ``threads`` threads; raise the error of the first job (in list order) that fails."""
    if threads <= 1 or len(jobs) <= 1:
        for job in jobs:
            job()
        return
    with ThreadPoolExecutor(min(threads, len(jobs))) as pool:
        futures = [pool.submit(job) for job in jobs]
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error


def _decode_range(
    read: Callable[[int, int], bytes | memoryview], header: Header, table: Table, first: int, last: int, threads: int
) -> np.ndarray:
    """Stripes ``first`` to ``last`` (inclusive) decoded into one (rows, W) array; bytes read in order, decoded in parallel."""
    width, height, k = header.width, header.height, header.k
    top, _ = table.span(first, height)
    _, bottom = table.span(last, height)
    out = np.empty((bottom - top) * width, dtype=_index_type(k))
    jobs: list[Callable[[], None]] = []
    for i in range(first, last + 1):
        y0, y1 = table.span(i, height)
        start, end = int(table.starts[i]), int(table.ends[i])
        # Read here, in stripe order (a file object is not shared between threads); decoded by the pool.
        stream = read(start, end - start)
        target = out[(y0 - top) * width : (y1 - top) * width]
        jobs.append(functools.partial(_decode_stripe, stream, target, width, y1 - y0, k, start, int(table.crcs[i]), i))
    _run_all(jobs, threads)
    return out.reshape(bottom - top, width)


def _encode_stripe(stripe: np.ndarray, k: int, limit: int) -> bytes | None:
    rows, width = stripe.shape
    n = rows * width
    flat: np.ndarray = np.require(stripe, _index_type(k), ["C", "W"]).reshape(-1)
    # Worst case: 20 decisions per pixel at under 12.1 bits each, plus the flush.
    out = np.empty(min(limit, 31 * n + 16), dtype=np.uint8)
    kernel, tables = _kernel(), _entropy_tables()
    status, used, _, decisions = kernel.run(
        flat, width, rows, k, table_bits(n), out, False, tables.SQUASH_TABLE, tables.STRETCH_TABLE, tables.RATE_TABLE,
        work_limit(n, len(out)),
    )  # fmt: skip
    # A stream a decoder would refuse (rule 40, known only once its length is) is never written.
    if status != kernel.OK or decisions > work_limit(n, used):
        return None
    return out[:used].tobytes()


def encode(indices: np.ndarray, k: int, limit: int | None = None, threads: int | None = None) -> bytes | None:
    """Code an (H, W) index array as coding 2's INDX data.

    Parameters
    ----------
    indices : ndarray of uint8 or uint16, shape (H, W)
    k : int
    limit : int, optional
        Give up (None) rather than write more bytes.
    threads : int, optional
        None: all cores.

    Returns
    -------
    bytes or None
        None also when a stripe would break the work limit (rule 40); the
        caller then stores another coding.
    """
    height, width = indices.shape
    rows = stripe_rows(width)
    count = stripe_count(width, height)
    head = ENTRY_SIZE * count
    budget = (31 * height * width + 16 * count) if limit is None else limit - head
    if budget < FLUSH_SIZE * count:
        return None
    stripes = [indices[y : y + rows] for y in range(0, height, rows)]
    streams: list[bytes | None] = [None] * count

    def job(i: int) -> Callable[[], None]:
        def run() -> None:
            streams[i] = _encode_stripe(stripes[i], k, budget)

        return run

    _run_all([job(i) for i in range(count)], threads_for(threads))
    if any(stream is None for stream in streams):
        return None
    done = [stream for stream in streams if stream is not None]
    ends = np.cumsum([len(stream) for stream in done]) + head
    if limit is not None and ends[-1] > limit:
        return None
    table = np.empty((count, 2), dtype=">u4")
    table[:, 0] = ends
    table[:, 1] = [zlib.crc32(stream) for stream in done]
    return table.tobytes() + b"".join(done)


class StripedCoding(IndexCoding):
    """Coding 2: coding 1 in independent stripes of about 2^16 pixels (format 1.2), decoded in parallel."""

    code = 2
    name = "striped"
    description = "entropy coded in stripes"
    summary = "entropy coded in parallel stripes, format 1.2"
    minor = 2
    compiled = True
    streams = True
    partial = True
    side_information = "stripe table (8 bytes a stripe) and each stripe's coder flush"

    def check_length(self, header: Header, length: int) -> str | None:
        count = stripe_count(header.width, header.height)
        head = ENTRY_SIZE * count
        if length < head:
            return f"INDX holds {length:,} bytes, too few for the table of its {count:,} stripes ({head:,} bytes)"
        if header.k == 1:
            if length != head + FLUSH_SIZE * count:
                return f"INDX holds {length:,} bytes; with K = 1 its {count:,} stripes take exactly {head + FLUSH_SIZE * count:,}"
        elif header.n_pixels > PIXELS_PER_BYTE * (length - head):
            return f"INDX holds {length:,} bytes, too few for {header.n_pixels:,} pixels in {count:,} stripes"
        return None

    def table(self, read: Callable[[int, int], bytes | memoryview], header: Header, length: int) -> Table:
        """The checked stripe table of INDX data read through ``read(start, size)``.

        Parameters
        ----------
        read : callable
        header : Header
        length : int

        Returns
        -------
        Table
        """
        return read_table(read(0, ENTRY_SIZE * stripe_count(header.width, header.height)), header, length)

    def encode(self, indices: np.ndarray, k: int, *, limit: int | None = None, threads: int | None = None) -> bytes | None:
        return encode(indices, k, limit, threads)

    def decode(
        self, body: bytes | memoryview, header: Header, *, rows: tuple[int, int] | None = None, threads: int | None = None
    ) -> np.ndarray:
        view = memoryview(body).cast("B")
        return self.read_rows(lambda start, size: view[start : start + size], len(view), header, rows, threads=threads)

    def read_rows(
        self,
        read: Callable[[int, int], bytes | memoryview],
        length: int,
        header: Header,
        rows: tuple[int, int] | None = None,
        *,
        threads: int | None = None,
    ) -> np.ndarray:
        # Only the table and the stripes holding the rows are read; each stripe's CRC checks what was.
        y0, y1 = (0, header.height) if rows is None else rows
        table = self.table(read, header, length)
        first, last = y0 // table.rows, (y1 - 1) // table.rows
        out = _decode_range(read, header, table, first, last, threads_for(threads))
        top = first * table.rows
        return out[y0 - top : y1 - top]

    def count(self, body: bytes | memoryview, header: Header) -> np.ndarray:
        # Stripe group by stripe group: checking a file never holds all its indices.
        from ..bitpack import count_values

        view = memoryview(body).cast("B")
        counts = np.zeros(header.k, dtype=np.int64)
        for _, indices in self._groups(lambda start, size: view[start : start + size], len(view), header, 1 << 20, None):
            counts += count_values(indices, header.k)
        return counts

    def bands(self, source: IndexSource, header: Header, band_rows: int, *, threads: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        try:
            yield from self._groups(source.read, source.length, header, band_rows * header.width, threads)
        except FormatError as exc:
            raise exc.rebased(source.offset) from None

    def _groups(
        self, read: Callable[[int, int], bytes | memoryview], length: int, header: Header, group_pixels: int, threads: int | None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, indices) of consecutive stripe groups of about ``group_pixels``, at least one stripe per core."""
        table = self.table(read, header, length)
        workers = threads_for(threads)
        per_group = max(workers, group_pixels // (table.rows * header.width))
        for first in range(0, table.count, per_group):
            last = min(table.count, first + per_group) - 1
            yield first * table.rows, _decode_range(read, header, table, first, last, workers)

    def layout(self, header: Header) -> dict[str, int]:
        return {"stripes": stripe_count(header.width, header.height), "stripe_rows": stripe_rows(header.width)}

    def side_bits(self, header: Header, index_size: int) -> int:
        # The table, and each stripe's 4-byte flush; the adaptive model sends nothing.
        count = stripe_count(header.width, header.height)
        return 8 * ENTRY_SIZE * count + 8 * FLUSH_SIZE * count

    def start(self) -> None:
        # One kernel type per index type: uint8 (K <= 256) and uint16.
        from ..container import Header, bits_for

        for k in (2, 257):
            indices = np.zeros((1, 2), dtype=_index_type(k))
            stream = encode(indices, k, threads=1)
            assert stream is not None
            self.decode(stream, Header(2, 1, 3, k, bits_for(k), self.code, (1, self.minor)), threads=1)
