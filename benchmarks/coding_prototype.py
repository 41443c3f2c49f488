"""A lean prototype index coder, to measure how fast a table-lean adaptive design can decode (issue 10's speed goal).

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/coding_prototype.py [--kodak ../shared/kodak] [--ks 16,64,256] [--repeat 9]
        [--sizes benchmarks/results/entropy.csv] [--out benchmarks/results/coding_prototype.md]

Not a kvq coding and not in the format: a measurement. Index coding 1 decodes at 0.04-0.09x WebP-lossless's speed
(goal 0.25x). Would a much leaner design get there? This one does about one coding step a pixel where coding 1
does 2.7 to 7.9 mixed binary decisions:

- the pixel's rank among its distinct neighbours (left, up, up-right, up-left; 4 = escape), as in coding 1, is one
  5-symbol range-coded symbol whose distribution is the average of two adaptive cumulative tables (AV1-style
  shift updates, no division in the model): one for the context (neighbour equality pattern, ranks chosen at the
  left and upper pixels), one hashed from that context and the up and left indices;
- an escaped index is coded as ceil(log2 K) adaptive binary decisions in the context of the upper index.

Encoder and decoder are numba kernels like coding 1's; the decoder keeps the coder's state in locals. For each
Kodak photo and K, kvq's own indices (default options) are coded, decoded back (they must match), and the decode,
file bytes to an RGB array (``palette[indices]``), is timed against Pillow decoding the WebP-lossless file of the
same pixels (``lossless=True, quality=100, method=6``) and against ``kvq.decode`` of the default ``.kvq``,
interleaved, on one thread, process time, medians per photo; a ratio over the photos is the ratio of the mean times.
Sizes add the palette (3 K bytes) and 60 bytes of header to the prototype's stream, and are compared with JPEG XL
(effort 9) and coding 1 as measured by ``benchmarks/entropy.py`` (its CSV).
"""

from __future__ import annotations

import os

# One thread for everything timed, set before numpy, numba or Pillow load their thread pools.
os.environ["NUMBA_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import io
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import kvq
from kvq.options import EncoderOptions
from kvq.quantize import quantize

TOP = 1 << 24  # the range is renormalised below 2^24, a byte at a time
RANK_RATE = 5  # cumulative tables move 1/32 of the way to each symbol seen
LITERAL_RATE = 4  # binary literal decisions 1/16
HASH = 0x9E3779B1


@numba.njit(inline="always")
def _neighbours(indices, p, x, y, width):  # type: ignore[no-untyped-def]
    """left, up, up-left, up-right with coding 1's edge rules (`spec/kvq-coding-1.md` §E5)."""
    if y == 0:
        if x == 0:
            return 0, 0, 0, 0
        left = np.int64(indices[p - 1])
        return left, left, left, left
    up = np.int64(indices[p - width])
    if x == 0:
        left = up
        up_left = up
    else:
        left = np.int64(indices[p - 1])
        up_left = np.int64(indices[p - width - 1])
    up_right = np.int64(indices[p - width + 1]) if x + 1 < width else up
    return left, up, up_left, up_right


@numba.njit(inline="always")
def _candidates(cand, left, up, up_left, up_right):  # type: ignore[no-untyped-def]
    cand[0] = left
    n = 1
    if up != left:
        cand[n] = up
        n += 1
    if up_right != left and up_right != up:
        cand[n] = up_right
        n += 1
    if up_left != left and up_left != up and up_left != up_right:
        cand[n] = up_left
        n += 1
    return n


@numba.njit(inline="always")
def _contexts(left, up, up_left, up_right, state_left, state_up, hash_bits):  # type: ignore[no-untyped-def]
    pattern = (
        (1 if left == up else 0) | (2 if left == up_left else 0) | (4 if left == up_right else 0)
        | (8 if up == up_left else 0) | (16 if up == up_right else 0) | (32 if up_left == up_right else 0)
    )  # fmt: skip
    plain = (pattern * 5 + state_left) * 5 + state_up
    hashed = ((((plain * HASH) ^ up) * HASH ^ left) * HASH) & 0xFFFFFFFF
    return plain, hashed >> (32 - hash_bits)


@numba.njit(inline="always")
def _adapt(cdf_a, cdf_b, a, b, symbol):  # type: ignore[no-untyped-def]
    for i in range(1, 5):
        if i <= symbol:
            cdf_a[a, i] -= cdf_a[a, i] >> RANK_RATE
            cdf_b[b, i] -= cdf_b[b, i] >> RANK_RATE
        else:
            cdf_a[a, i] += (32768 - cdf_a[a, i]) >> RANK_RATE
            cdf_b[b, i] += (32768 - cdf_b[b, i]) >> RANK_RATE


@numba.njit(inline="always")
def _bound(cdf_a, cdf_b, a, b, i):  # type: ignore[no-untyped-def]
    """Cumulative frequency of symbols below i, out of 4096; every symbol keeps at least 1."""
    return (((cdf_a[a, i] + cdf_b[b, i]) >> 1) * 4091 >> 15) + i


@numba.njit(inline="always")
def _shift_low(state, out):  # type: ignore[no-untyped-def]
    """LZMA's carry-propagating byte output; state = low, range, cache, pending, position."""
    low = state[0]
    if low < 0xFF000000 or low >= (1 << 32):
        carry = low >> 32
        byte = state[2]
        while True:
            out[state[4]] = (byte + carry) & 0xFF
            state[4] += 1
            byte = 0xFF
            state[3] -= 1
            if state[3] == 0:
                break
        state[2] = (low >> 24) & 0xFF
    state[3] += 1
    state[0] = (low & 0x00FFFFFF) << 8


def _tables(k: int, hash_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    bits = max(1, int(k - 1).bit_length())
    start = np.array([(32768 * i) // 5 for i in range(6)], dtype=np.int32)
    return (
        np.tile(start, (1600, 1)),
        np.tile(start, (1 << hash_bits, 1)),
        np.full((k, 1 << bits), 2048, dtype=np.int32),
        bits,
    )


@numba.njit(cache=True)
def _encode(indices, width, height, hash_bits, nbits, cdf_a, cdf_b, literal, out):  # type: ignore[no-untyped-def]
    above = np.full(width, 4, dtype=np.uint8)
    row = np.full(width, 4, dtype=np.uint8)
    cand = np.zeros(4, dtype=np.int64)
    state = np.zeros(5, dtype=np.int64)
    state[1] = 0xFFFFFFFF
    state[3] = 1
    for y in range(height):
        for x in range(width):
            p = y * width + x
            left, up, up_left, up_right = _neighbours(indices, p, x, y, width)
            n = _candidates(cand, left, up, up_left, up_right)
            a, b = _contexts(left, up, up_left, up_right, np.int64(row[x - 1]) if x > 0 else 4, np.int64(above[x]), hash_bits)
            value = np.int64(indices[p])
            symbol = 4
            for i in range(n):
                if cand[i] == value:
                    symbol = i
                    break
            r = state[1] >> 12
            low = _bound(cdf_a, cdf_b, a, b, symbol)
            state[0] += r * low
            state[1] = r * (_bound(cdf_a, cdf_b, a, b, symbol + 1) - low)
            while state[1] < TOP:
                _shift_low(state, out)
                state[1] = (state[1] << 8) & 0xFFFFFFFF
            _adapt(cdf_a, cdf_b, a, b, symbol)
            if symbol == 4:
                node = 1
                for d in range(nbits):
                    probability = literal[up, node]
                    bound = (state[1] >> 12) * probability
                    bit = (value >> (nbits - 1 - d)) & 1
                    if bit:
                        state[1] = bound
                        literal[up, node] = probability + ((4096 - probability) >> LITERAL_RATE)
                    else:
                        state[0] += bound
                        state[1] -= bound
                        literal[up, node] = probability - (probability >> LITERAL_RATE)
                    while state[1] < TOP:
                        _shift_low(state, out)
                        state[1] = (state[1] << 8) & 0xFFFFFFFF
                    node = node * 2 + bit
            row[x] = symbol
        above, row = row, above
    for _ in range(5):
        _shift_low(state, out)
    return state[4]


@numba.njit(cache=True)
def _decode(indices, width, height, hash_bits, nbits, cdf_a, cdf_b, literal, data):  # type: ignore[no-untyped-def]
    above = np.full(width, 4, dtype=np.uint8)
    row = np.full(width, 4, dtype=np.uint8)
    cand = np.zeros(4, dtype=np.int64)
    code = np.uint32(0)
    for i in range(5):
        code = np.uint32((np.uint64(code) << np.uint64(8)) | np.uint64(data[i]))
    span = np.uint32(0xFFFFFFFF)
    pos = 5
    for y in range(height):
        for x in range(width):
            p = y * width + x
            left, up, up_left, up_right = _neighbours(indices, p, x, y, width)
            _candidates(cand, left, up, up_left, up_right)
            a, b = _contexts(left, up, up_left, up_right, np.int64(row[x - 1]) if x > 0 else 4, np.int64(above[x]), hash_bits)
            r = span >> np.uint32(12)
            target = min(code // r, np.uint32(4095))
            symbol = 4
            low = np.uint32(0)
            high = np.uint32(4096)
            for i in range(1, 6):
                bound = np.uint32(_bound(cdf_a, cdf_b, a, b, i))
                if bound > target:
                    symbol = i - 1
                    high = bound
                    break
                low = bound
            code -= r * low
            span = r * (high - low)
            while span < TOP:
                code = np.uint32((np.uint64(code) << np.uint64(8)) | np.uint64(data[pos]))
                pos += 1
                span = np.uint32(np.uint64(span) << np.uint64(8))
            _adapt(cdf_a, cdf_b, a, b, symbol)
            if symbol < 4:
                value = cand[symbol]
            else:
                node = 1
                for _ in range(nbits):
                    probability = literal[up, node]
                    bound = (span >> np.uint32(12)) * np.uint32(probability)
                    if code < bound:
                        span = bound
                        literal[up, node] = probability + ((4096 - probability) >> LITERAL_RATE)
                        node = node * 2 + 1
                    else:
                        code -= bound
                        span -= bound
                        literal[up, node] = probability - (probability >> LITERAL_RATE)
                        node = node * 2
                    while span < TOP:
                        code = np.uint32((np.uint64(code) << np.uint64(8)) | np.uint64(data[pos]))
                        pos += 1
                        span = np.uint32(np.uint64(span) << np.uint64(8))
                value = node - (1 << nbits)
            indices[p] = value
            row[x] = symbol
        above, row = row, above
    return pos


def encode(indices: np.ndarray, k: int, hash_bits: int = 16) -> bytes:
    """The prototype's stream for an (H, W) index array of a K-entry palette."""
    height, width = indices.shape
    cdf_a, cdf_b, literal, bits = _tables(k, hash_bits)
    out = np.zeros(indices.size * 2 + 64, dtype=np.uint8)
    used = _encode(np.ascontiguousarray(indices).reshape(-1), width, height, hash_bits, bits, cdf_a, cdf_b, literal, out)
    return out[:used].tobytes()


def decode(data: bytes, width: int, height: int, k: int, hash_bits: int = 16) -> np.ndarray:
    """The (H, W) uint8/uint16 index array back from :func:`encode`'s stream (no error checking: a measurement)."""
    cdf_a, cdf_b, literal, bits = _tables(k, hash_bits)
    indices = np.empty(width * height, dtype=np.uint8 if k <= 256 else np.uint16)
    stream = np.frombuffer(data + bytes(8), dtype=np.uint8)  # the decoder may look a few bytes past the end
    _decode(indices, width, height, hash_bits, bits, cdf_a, cdf_b, literal, stream)
    return indices.reshape(height, width)


def main() -> None:
    from coding_study import arguments, inputs

    args = arguments(__doc__.splitlines()[0], "benchmarks/results/coding_prototype.md", repeat=True)
    photos, measured = inputs(args)
    if not photos:
        return
    lines = [
        "# A lean adaptive index coder: how fast it decodes, how small it codes (issue 10's speed goal)",
        "",
        f"Command: `PYTHONPATH=. python benchmarks/coding_prototype.py`; {len(photos)} Kodak photos, kvq's default options,",
        "one thread, process time, medians of interleaved runs per photo. Decode: file bytes to an RGB array.",
        "Sizes: mean bytes of the whole file; JPEG XL (effort 9) and coding 1 from `benchmarks/results/entropy.csv`.",
        "",
        "| K | prototype bytes | vs JPEG XL | coding 1 bytes | vs JPEG XL | prototype decode vs WebP | coding 1 decode vs WebP |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k in (int(x) for x in args.ks.split(",")):
        sizes, jxl, coding1, times = [], [], [], {"prototype": [], "webp": [], "coding 1": []}
        for photo in photos:
            pixels = np.asarray(Image.open(photo).convert("RGB"))
            palette, indices = quantize(pixels, EncoderOptions(k=k))
            height, width = indices.shape
            stream = encode(indices, len(palette))
            if not np.array_equal(decode(stream, width, height, len(palette)), indices):
                raise SystemExit(f"{photo.name} K={k}: the prototype does not decode its own stream")
            buffer = io.BytesIO()
            Image.fromarray(palette[indices]).save(buffer, "WEBP", lossless=True, quality=100, method=6)
            webp = buffer.getvalue()
            default = kvq.encode(pixels, k=k)
            runs = {
                "prototype": lambda s=stream, w=width, h=height, p=palette: p[decode(s, w, h, len(p))],
                "webp": lambda b=webp: np.asarray(Image.open(io.BytesIO(b)).convert("RGB")),
                "coding 1": lambda d=default: kvq.decode(d),
            }
            seconds: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.repeat):
                for name, run in runs.items():
                    start = time.process_time()
                    run()
                    seconds[name].append(time.process_time() - start)
            for name in runs:
                times[name].append(statistics.median(seconds[name]))
            sizes.append(len(stream) + 3 * len(palette) + 60)
            row = measured[(photo.stem, k)]
            jxl.append(float(row["jxl_bytes"]))
            coding1.append(float(row["kvq_bytes"]))
        mean_jxl = statistics.mean(jxl)
        webp_time = sum(times["webp"])
        lines.append(
            f"| {k} | {statistics.mean(sizes):,.0f} | {statistics.mean(sizes) / mean_jxl:.3f} | {statistics.mean(coding1):,.0f}"
            f" | {statistics.mean(coding1) / mean_jxl:.3f} | {webp_time / sum(times['prototype']):.3f}x"
            f" | {webp_time / sum(times['coding 1']):.3f}x |"
        )
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
