"""Indexed PNG: the smallest file kvq can make of a palette image, measured, not guessed.

Pillow writes a palette image with zlib level 6 and libpng's adaptive row
filters, which suit photographs in RGB and not indices: on kodim03 at K = 16
its file was 1.32 times what zlib level 9 makes of unfiltered rows (49,677
bytes against 37,643).
This writer makes every choice a PNG leaves free and keeps the smallest:

- **palette order**: PNG stores the palette, so any permutation of the entries
  (with the indices renumbered) shows the same image. Deflate finds repeats
  and likes small differences between neighbouring indices; the orders tried
  are kvq's own, by luma, by popularity, by first occurrence in raster order
  and a greedy chain of the entries most often side by side (co-occurrence).
  Entries with alpha below 255 always come first so that ``tRNS`` stops at
  the last of them.
- **bit depth**: 1, 2, 4 or 8 bits an index: the fewest that hold K, or 8,
  whose bytes deflate sometimes compresses better than packed indices.
- **row filters**: one PNG filter for every row (none, sub, up, average,
  Paeth) or one per row chosen by a heuristic (least sum of absolute values,
  least entropy, fewest distinct byte pairs) or by trial (brute force), as
  oxipng's strategies.
- **deflate**: libdeflate (the ``deflate`` package) at level 12, its
  strongest; zlib level 9 where it is missing.

Candidates are ranked with a faster deflate (libdeflate level 9) on bands of
rows spread over the image (a quarter of a megapixel), and only the best few
are compressed whole with the strong one; ``effort`` sets how many.
At ``effort=2`` the result also goes through oxipng (``pip install
"kvq[png]"``) when it is installed, and the smaller file is kept.

The ICC profile, EXIF and resolution are written by Pillow itself (into a
one-pixel PNG whose chunks are copied), so they are stored exactly as
Pillow's own writer stores them. Every choice is deterministic: the same
indices, palette, metadata and effort give the same bytes.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any

import numpy as np

#: Effort levels: 0 fast (kvq's order, no filter, one deflate), 1 the default, 2 the smallest kvq can make.
EFFORTS = (0, 1, 2)
DEFAULT_EFFORT = 1

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_STRATEGIES = ("none", "sub", "up", "average", "paeth", "minsum", "min-entropy", "bigrams", "brute")
# Brute force: each row's filter is the one whose row, after this many rows already chosen, deflates smallest.
_BRUTE_CONTEXT = 2
# Candidates are ranked on bands of this many rows, about this many pixels in all (see _sample).
_SAMPLE_BAND = 32
_SAMPLE_PIXELS = 1 << 18
_ORDERS = ("kvq", "luma", "popularity", "first", "neighbours")
# Rows filtered at once: bounds the int16 temporaries (five filters of a block) to a few MiB.
_BLOCK_BYTES = 1 << 20


def write_png(
    fp: IO[bytes],
    indices: np.ndarray,
    palette: np.ndarray,
    *,
    info: dict[str, Any] | None = None,
    effort: int = DEFAULT_EFFORT,
) -> None:
    """Write a palette image as the smallest indexed PNG this module finds.

    Parameters
    ----------
    fp : binary file object
    indices : ndarray of uint8, shape (H, W)
        Every value below ``len(palette)``.
    palette : ndarray of uint8, shape (K, 3) or (K, 4)
        1 <= K <= 256; RGBA entries give a ``tRNS`` chunk holding the alpha
        of the translucent ones.
    info : dict, optional
        ``icc_profile``, ``exif`` and ``dpi`` as Pillow's ``Image.save``
        takes them; written as Pillow writes them.
    effort : {0, 1, 2}, default=1
        See :data:`EFFORTS`.
    """
    fp.write(encode_png(indices, palette, info=info, effort=effort))


def encode_png(
    indices: np.ndarray,
    palette: np.ndarray,
    *,
    info: dict[str, Any] | None = None,
    effort: int = DEFAULT_EFFORT,
) -> bytes:
    """The bytes :func:`write_png` writes.

    Parameters
    ----------
    indices, palette, info, effort
        See :func:`write_png`.

    Returns
    -------
    bytes
        A complete PNG file.

    Raises
    ------
    ValueError
        An effort not in :data:`EFFORTS`, a palette of more than 256 entries
        or of other than 3 or 4 channels, or an index beyond the palette.
    """
    if effort not in EFFORTS:
        raise ValueError(f"PNG effort must be one of {EFFORTS}, not {effort!r}")
    indices = np.ascontiguousarray(indices, dtype=np.uint8)
    palette = np.asarray(palette, dtype=np.uint8)
    if palette.ndim != 2 or palette.shape[1] not in (3, 4) or not 1 <= len(palette) <= 256:
        raise ValueError(f"an indexed PNG takes 1 to 256 RGB or RGBA entries, not {palette.shape}")
    if indices.ndim != 2 or indices.size == 0:
        raise ValueError(f"indices must be a non-empty (H, W) array, not {indices.shape}")
    if int(indices.max()) >= len(palette):
        raise ValueError(f"an index ({int(indices.max())}) is beyond the {len(palette)}-entry palette")
    k = len(palette)
    depth = bit_depth(k)
    height, width = indices.shape
    if effort == 0:
        orders = {"kvq": translucent_first(palette, np.arange(k))}
        candidates = [("kvq", "none", depth)]
    else:
        orders = palette_orders(indices, palette)
        candidates = _finalists(indices, depth, orders, effort)
    best: bytes | None = None
    best_order, best_depth = orders["kvq"], depth
    for name, strategy, bits in candidates:
        order = orders[name]
        stream = _strong_deflate(filtered_rows(_renumber(indices, order), bits, strategy), effort)
        if best is None or len(stream) < len(best):
            best, best_order, best_depth = stream, order, bits
    assert best is not None
    png = _assemble(width, height, best_depth, palette[best_order], best, info)
    if effort == 2:
        png = _oxipng(png) or png
    return png


def _finalists(indices: np.ndarray, depth: int, orders: dict[str, np.ndarray], effort: int) -> list[tuple[str, str, int]]:
    """(order, strategy, bit depth) of the candidates to compress whole with the strong deflate.

    Effort 1 ranks the orders on unfiltered rows of a sample of the image
    and keeps the best (and a byte an index instead of packed indices where
    that ranks better: on the icons at K = 16, 8% smaller), then compresses
    it unfiltered, and the neighbour
    chain's order with brute-force filters: the faster deflate that ranks
    orders well misjudges brute force (on kodim03 at K = 256 it put brute
    force 9% behind; level 12 made it 2% smaller), and brute force pays only
    where entries often side by side have close numbers (with the order of
    first occurrence it was 14% larger). Effort 2 ranks every combination
    and keeps the best four.
    """
    sample = _sample(indices)
    if effort == 1:
        ranked = sorted((_fast_size(sample, orders[name], "none", depth), name) for name in orders)
        best = ranked[0][1]
        if depth < 8 and _fast_size(sample, orders[best], "none", 8) < ranked[0][0]:
            depth = 8
        # Brute force pays where neighbouring indices are close in value, as the neighbour chain makes them.
        brute = "neighbours" if "neighbours" in orders else best
        return [(best, "none", depth), (brute, "brute", depth)]
    depths = (depth, 8) if depth < 8 else (8,)
    pairs = [(n, s, d) for n in orders for s in _STRATEGIES for d in depths]
    ranked_all = sorted((_fast_size(sample, orders[n], s, d), n, s, d) for n, s, d in pairs)
    return [(n, s, d) for _, n, s, d in ranked_all[:4]]


def _fast_size(indices: np.ndarray, order: np.ndarray, strategy: str, depth: int) -> int:
    return len(_fast_deflate(filtered_rows(_renumber(indices, order), depth, strategy)))


def _sample(indices: np.ndarray) -> np.ndarray:
    """Bands of rows spread over the image, about :data:`_SAMPLE_PIXELS` in all: what candidates are ranked on.

    Deflate works on runs of rows, so whole bands keep what it finds; the
    ranking costs a fraction of the image's deflate.
    """
    height, width = indices.shape
    bands = -(-height // _SAMPLE_BAND)
    keep = max(1, min(bands, _SAMPLE_PIXELS // (_SAMPLE_BAND * width)))
    if keep >= bands:
        return indices
    chosen = np.linspace(0, bands - 1, keep).round().astype(np.int64)
    rows = (chosen[:, None] * _SAMPLE_BAND + np.arange(_SAMPLE_BAND)).ravel()
    return indices[rows[rows < height]]


def bit_depth(k: int) -> int:
    """The fewest bits an index of a PNG palette of ``k`` entries takes: 1, 2, 4 or 8."""
    for depth in (1, 2, 4):
        if k <= 1 << depth:
            return depth
    return 8


def translucent_first(palette: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``order`` with the entries whose alpha is below 255 moved to the front, each group keeping its order.

    ``tRNS`` then ends at the last translucent entry: opaque entries need no
    byte there.
    """
    if palette.shape[1] < 4:
        return order
    opaque = palette[order, 3] == 255
    return np.concatenate([order[~opaque], order[opaque]])


def palette_orders(indices: np.ndarray, palette: np.ndarray) -> dict[str, np.ndarray]:
    """The palette orders worth trying, each a permutation (``order[i]`` = the entry stored at position ``i``).

    Parameters
    ----------
    indices : ndarray of uint8, shape (H, W)
    palette : ndarray of uint8, shape (K, C)

    Returns
    -------
    dict of str to ndarray of int64
        Keyed by :data:`_ORDERS`; duplicates (the same permutation under two
        names) are left out, keeping the first name.
    """
    k = len(palette)
    counts = np.bincount(indices.ravel(), minlength=k)
    luma = palette[:, :3].astype(np.int64) @ np.array([299, 587, 114])
    _, first_seen = np.unique(indices.ravel(), return_index=True)
    first = np.full(k, indices.size, dtype=np.int64)
    first[np.unique(indices.ravel())] = first_seen
    raw = {
        "kvq": np.arange(k),
        "luma": np.argsort(luma, kind="stable"),
        "popularity": np.argsort(-counts, kind="stable"),
        "first": np.argsort(first, kind="stable"),
        "neighbours": _neighbour_chain(indices, counts),
    }
    out: dict[str, np.ndarray] = {}
    seen: set[bytes] = set()
    for name in _ORDERS:
        order = translucent_first(palette, raw[name].astype(np.int64))
        key = order.tobytes()
        if key not in seen:
            seen.add(key)
            out[name] = order
    return out


def _neighbour_chain(indices: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """A greedy chain through the entries: start at the most used, then always the unvisited entry most often beside the last.

    Entries often side by side get numbers one apart, which is what the sub
    and up filters and deflate's literal codes profit from.
    """
    k = len(counts)
    pairs = np.concatenate(
        [
            indices[:, 1:].ravel().astype(np.int64) * k + indices[:, :-1].ravel(),
            indices[1:, :].ravel().astype(np.int64) * k + indices[:-1, :].ravel(),
        ]
    )
    together = np.bincount(pairs, minlength=k * k).reshape(k, k).astype(np.float64)
    together += together.T
    np.fill_diagonal(together, -1.0)
    order = [int(np.argmax(counts))]
    visited = np.zeros(k, dtype=bool)
    visited[order[0]] = True
    for _ in range(k - 1):
        row = together[order[-1]].copy()
        row[visited] = -2.0
        # Ties (an entry never beside the last) go to the lowest index: argmax is deterministic.
        nxt = int(np.argmax(row))
        order.append(nxt)
        visited[nxt] = True
    return np.array(order, dtype=np.int64)


def _renumber(indices: np.ndarray, order: np.ndarray) -> np.ndarray:
    position = np.empty(len(order), dtype=np.uint8)
    position[order] = np.arange(len(order))
    return position[indices]


def pack_rows(indices: np.ndarray, depth: int) -> np.ndarray:
    """Pack each row of indices at ``depth`` bits, most significant bits first, rows padded to a byte.

    Returns
    -------
    ndarray of uint8, shape (H, ceil(W * depth / 8))
    """
    if depth == 8:
        return indices
    per_byte = 8 // depth
    height, width = indices.shape
    padded = np.zeros((height, -(-width // per_byte) * per_byte), dtype=np.uint8)
    padded[:, :width] = indices
    groups = padded.reshape(height, -1, per_byte)
    out = np.zeros(groups.shape[:2], dtype=np.uint8)
    for j in range(per_byte):
        out |= groups[:, :, j] << np.uint8(8 - depth * (j + 1))
    return out


def filtered_rows(indices: np.ndarray, depth: int, strategy: str) -> bytes:
    """The data a PNG deflates: each packed row after its filter-type byte, filtered by ``strategy``.

    Parameters
    ----------
    indices : ndarray of uint8, shape (H, W)
    depth : int
        Bits an index.
    strategy : str
        One of :data:`_STRATEGIES`: a filter for every row, or a per-row
        choice by a heuristic.

    Returns
    -------
    bytes
        H * (1 + ceil(W * depth / 8)) bytes.
    """
    packed = pack_rows(indices, depth)
    height, row_bytes = packed.shape
    out = np.empty((height, row_bytes + 1), dtype=np.uint8)
    if strategy == "none":
        out[:, 0] = 0
        out[:, 1:] = packed
        return out.tobytes()
    block = max(1, _BLOCK_BYTES // row_bytes)
    chosen: list[bytes] = []  # the last rows chosen, for "brute"
    for top in range(0, height, block):
        bottom = min(height, top + block)
        above = packed[top - 1] if top > 0 else np.zeros(row_bytes, dtype=np.uint8)
        filters = _filters(packed[top:bottom], above)
        if strategy == "brute":
            choice = _brute(filters, chosen)
        else:
            choice = _choose(filters, strategy)
        out[top:bottom, 0] = choice
        out[top:bottom, 1:] = filters[choice, np.arange(bottom - top)]
    return out.tobytes()


def _brute(filters: np.ndarray, chosen: list[bytes]) -> np.ndarray:
    """Each row's filter by trial: the one whose row deflates smallest after the rows chosen before it.

    oxipng's "brute" strategy; a fast deflate (level 1) measures. ``chosen``
    carries the last rows from one block to the next.
    """
    squeeze = _raw_deflate_fast()
    choice = np.empty(filters.shape[1], dtype=np.intp)
    for y in range(filters.shape[1]):
        context = b"".join(chosen[-_BRUTE_CONTEXT:])
        rows = [bytes([f]) + filters[f, y].tobytes() for f in range(5)]
        sizes = [len(squeeze(context + row)) for row in rows]
        best = int(np.argmin(sizes))
        choice[y] = best
        chosen.append(rows[best])
        del chosen[:-_BRUTE_CONTEXT]
    return choice


def _filters(rows: np.ndarray, above: np.ndarray) -> np.ndarray:
    """The five PNG filters of ``rows`` (one byte a pixel, as every palette PNG filters), shape (5, H, N)."""
    r = rows.astype(np.int16)
    up = np.vstack([above[None, :].astype(np.int16), r[:-1]])
    left = np.zeros_like(r)
    left[:, 1:] = r[:, :-1]
    upper_left = np.zeros_like(r)
    upper_left[:, 1:] = up[:, :-1]
    p = left + up - upper_left
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upper_left)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upper_left))
    out = np.stack([r, r - left, r - up, r - (left + up) // 2, r - paeth])
    return (out & 0xFF).astype(np.uint8)


def _choose(filters: np.ndarray, strategy: str) -> np.ndarray:
    """The filter type of each row (shape (H,)) that ``strategy`` picks."""
    height = filters.shape[1]
    fixed = {"none": 0, "sub": 1, "up": 2, "average": 3, "paeth": 4}
    if strategy in fixed:
        return np.full(height, fixed[strategy], dtype=np.intp)
    if strategy == "minsum":
        # libpng's heuristic: bytes read as signed, least sum of magnitudes.
        score = np.abs(filters.view(np.int8).astype(np.int32)).sum(axis=2).astype(np.float64)
    elif strategy == "min-entropy":
        score = np.stack([_row_entropy(f) for f in filters])
    elif strategy == "bigrams":
        pairs = (filters[:, :, :-1].astype(np.uint16) << 8) | filters[:, :, 1:]
        pairs.sort(axis=2)
        score = (np.diff(pairs, axis=2) != 0).sum(axis=2).astype(np.float64)
    else:
        raise ValueError(f"unknown filter strategy {strategy!r}")
    return np.argmin(score, axis=0)


def _row_entropy(rows: np.ndarray) -> np.ndarray:
    """Shannon entropy (bits) of each row's byte histogram, times its length."""
    height, n = rows.shape
    counts = np.bincount((np.arange(height)[:, None] * 256 + rows).ravel(), minlength=256 * height).reshape(height, 256)
    p = counts / n
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(counts * np.where(p > 0, np.log2(p), 0.0)).sum(axis=1)


def _libdeflate() -> Any:
    try:
        import deflate
    except ImportError:
        return None
    return deflate


def _raw_deflate_fast() -> Callable[[bytes], bytes]:
    lib = _libdeflate()
    if lib is not None:
        return lambda data: lib.deflate_compress(data, 1)
    return lambda data: zlib.compress(data, 1)


def _fast_deflate(data: bytes) -> bytes:
    # libdeflate 9 ranks candidates as level 12 does far more often than 6 (whose greedy parsing misjudges long
    # runs: on a chart it put unfiltered rows last, which level 12 made the smallest) at a fifth of 12's time.
    lib = _libdeflate()
    return lib.zlib_compress(data, 9) if lib is not None else zlib.compress(data, 6)


def _strong_deflate(data: bytes, effort: int) -> bytes:
    lib = _libdeflate()
    if lib is not None:
        return bytes(lib.zlib_compress(data, 12 if effort > 0 else 9))
    if effort == 0:
        return zlib.compress(data, 9)
    streams = []
    for strategy in (zlib.Z_DEFAULT_STRATEGY, zlib.Z_FILTERED):
        compressor = zlib.compressobj(9, zlib.DEFLATED, 15, 9, strategy)
        streams.append(compressor.compress(data) + compressor.flush())
    return min(streams, key=len)


def _oxipng(png: bytes) -> bytes | None:
    """oxipng's strongest preset (``-o max``) on ``png``, keeping every chunk; None when oxipng is not installed."""
    try:
        import oxipng
    except ImportError:
        return None
    out = bytes(oxipng.optimize_from_memory(png, level=6, strip=oxipng.StripChunks.none()))
    return out if len(out) < len(png) else None


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _chunks(png: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, whole chunk bytes) of each chunk of a PNG."""
    at = len(_SIGNATURE)
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        yield png[at + 4 : at + 8], png[at : at + 12 + length]
        at += 12 + length


def _metadata_chunks(info: dict[str, Any] | None) -> tuple[bytes, bytes]:
    """The metadata chunks Pillow writes for ``info``: (those before PLTE, those after it)."""
    if not info:
        return b"", b""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("P", (1, 1)).save(buffer, "PNG", **info)
    before: list[bytes] = []
    after: list[bytes] = []
    seen_palette = False
    for kind, chunk in _chunks(buffer.getvalue()):
        if kind in (b"PLTE", b"tRNS"):
            seen_palette = True
        elif kind not in (b"IHDR", b"IDAT", b"IEND"):
            (after if seen_palette else before).append(chunk)
    return b"".join(before), b"".join(after)


def _assemble(width: int, height: int, depth: int, palette: np.ndarray, stream: bytes, info: dict[str, Any] | None) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, depth, 3, 0, 0, 0)
    before, after = _metadata_chunks(info)
    parts = [_SIGNATURE, _chunk(b"IHDR", header), before, _chunk(b"PLTE", palette[:, :3].tobytes())]
    if palette.shape[1] == 4:
        translucent = int((palette[:, 3] < 255).sum())  # first in the palette: see translucent_first
        if translucent:
            parts.append(_chunk(b"tRNS", palette[:translucent, 3].tobytes()))
    parts += [after, _chunk(b"IDAT", stream), _chunk(b"IEND", b"")]
    return b"".join(parts)


#: For tests and benchmarks: every filter strategy and palette order by name.
STRATEGIES: tuple[str, ...] = _STRATEGIES
ORDERS: tuple[str, ...] = _ORDERS
