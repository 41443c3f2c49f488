"""The compiled kernel of index coding 1 (see :mod:`kvq.coding.entropy` and `spec/kvq-coding-1.md`).

One function runs both directions, so encoder and decoder cannot drift apart:
with ``decoding`` False it reads ``indices`` and writes ``data``; with it True
it reads ``data`` and fills ``indices``. It returns ``(status, bytes used,
pixel, decisions)``, with the status codes below; decoding stops with WORK once
more than ``max_decisions`` decisions were made (spec rule 27).
"""

import numba
import numpy as np

from .._jit import kernel

# Every constant of the coder is defined here, in the kernel's own file: the
# compiled code holds them, and numba's cache is keyed on this file (and on
# kvq's own modules it imports: kvq._jit), so a changed constant is always
# compiled in (tests/test_kernels.py).

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

#: Status codes of :func:`run`: WORK, more decisions than the caller's limit (spec rule 27).
OK, TRUNCATED, LITERAL, TRAILING, FULL, WORK = 0, 1, 2, 3, 4, 5

m32 = 0xFFFFFFFF


@numba.njit(inline="always")
def code_bit(model, weights, ws, c0, c1, c2, coder, data, decoding, bit, squash_t, stretch_t, rate_t):
    """Mix the three counters, code one decision, update; -1 when the stream runs out."""
    s0 = model[c0]
    s1 = model[c1]
    s2 = model[c2]
    st0 = np.int64(stretch_t[s0 >> 9])
    st1 = np.int64(stretch_t[s1 >> 9])
    st2 = np.int64(stretch_t[s2 >> 9])
    dot = (weights[ws, 0] * st0 + weights[ws, 1] * st1 + weights[ws, 2] * st2 + weights[ws, 3] * BIAS_INPUT) >> 16
    p = np.int64(squash_t[min(max(dot, -2047), 2047) + 2047])
    p = min(max(p, 1), 4095)
    x1 = coder[0]
    x2 = coder[1]
    xmid = x1 + ((x2 - x1) >> 12) * p
    if decoding:
        bit = 1 if coder[2] <= xmid else 0
    if bit:
        x2 = xmid
    else:
        x1 = xmid + 1
    while ((x1 ^ x2) & 0xFF000000) == 0:
        pos = coder[3]
        if pos >= data.shape[0]:
            return -1
        if decoding:
            coder[2] = ((coder[2] << 8) & m32) | data[pos]
        else:
            data[pos] = x2 >> 24
        coder[3] = pos + 1
        x1 = (x1 << 8) & m32
        x2 = ((x2 << 8) & m32) | 255
    coder[0] = x1
    coder[1] = x2
    err = ((bit << 12) - p) * LEARNING_RATE
    weights[ws, 0] = min(max(weights[ws, 0] + ((st0 * err + 0x8000) >> 16), -WEIGHT_LIMIT), WEIGHT_LIMIT)
    weights[ws, 1] = min(max(weights[ws, 1] + ((st1 * err + 0x8000) >> 16), -WEIGHT_LIMIT), WEIGHT_LIMIT)
    weights[ws, 2] = min(max(weights[ws, 2] + ((st2 * err + 0x8000) >> 16), -WEIGHT_LIMIT), WEIGHT_LIMIT)
    weights[ws, 3] = min(max(weights[ws, 3] + ((BIAS_INPUT * err + 0x8000) >> 16), -WEIGHT_LIMIT), WEIGHT_LIMIT)
    model[c0] = update(s0, bit, rate_t)
    model[c1] = update(s1, bit, rate_t)
    model[c2] = update(s2, bit, rate_t)
    return bit

@numba.njit(inline="always")
def update(state, bit, rate_t):
    """A counter is probability << 5 | updates (0 to COUNTER_LIMIT)."""
    p = np.int64(state >> 5)
    n = np.int64(state & 31)
    r = np.int64(rate_t[n])
    if bit:
        p += ((65536 - p) * r) >> 16
    else:
        p -= (p * r) >> 16
    if n < COUNTER_LIMIT:
        n += 1
    return np.uint32((p << 5) | n)

@kernel(nogil=True)
def run(indices, width, height, k, hb, data, decoding, max_decisions, squash_t, stretch_t, rate_t):
    mul = HASH_MULTIPLIER
    size = 1 << hb
    model = np.full(N_TABLES * size, 32768 << 5, dtype=np.uint32)
    weights = np.empty((N_WEIGHT_SETS, 4), dtype=np.int64)
    for s in range(N_WEIGHT_SETS):
        weights[s, 0] = WEIGHT_INIT
        weights[s, 1] = WEIGHT_INIT
        weights[s, 2] = WEIGHT_INIT
        weights[s, 3] = 0
    nbits = 0
    while (1 << nbits) < k:
        nbits += 1
    block_bits = min(nbits, 8)
    # Match decisions: a block of 4 counters (one per rank) per context.
    match_shift = 32 - (hb - 2)
    # Literal bits: a block of 2^block_bits counters (the top of the tree) per context.
    literal_shift = 32 - (hb - block_bits)
    node_shift = 32 - hb
    above_state = np.full(width, 4, dtype=np.uint8)
    row_state = np.full(width, 4, dtype=np.uint8)
    cand = np.zeros(4, dtype=np.int64)
    decisions = np.int64(0)
    coder = np.zeros(4, dtype=np.int64)  # x1, x2, x, next byte
    coder[1] = 0xFFFFFFFF
    if decoding:
        if data.shape[0] < 4:
            return TRUNCATED, data.shape[0], 0, 0
        coder[2] = (np.int64(data[0]) << 24) | (np.int64(data[1]) << 16) | (np.int64(data[2]) << 8) | np.int64(data[3])
        coder[3] = 4
    for y in range(height):
        for x in range(width):
            p_index = y * width + x
            # Neighbours, with the edge rules of spec §E5.
            if y == 0:
                if x == 0:
                    left = np.int64(0)
                    up = np.int64(0)
                    up_left = np.int64(0)
                    up_right = np.int64(0)
                else:
                    left = np.int64(indices[p_index - 1])
                    up = left
                    up_left = left
                    up_right = left
            else:
                up = np.int64(indices[p_index - width])
                if x == 0:
                    left = up
                    up_left = up
                else:
                    left = np.int64(indices[p_index - 1])
                    up_left = np.int64(indices[p_index - width - 1])
                up_right = np.int64(indices[p_index - width + 1]) if x + 1 < width else up
            pattern = (
                (1 if left == up else 0)
                | (2 if left == up_left else 0)
                | (4 if left == up_right else 0)
                | (8 if up == up_left else 0)
                | (16 if up == up_right else 0)
                | (32 if up_left == up_right else 0)
            )
            cand[0] = left
            n_cand = 1
            if up != left:
                cand[n_cand] = up
                n_cand += 1
            if up_right != left and up_right != up:
                cand[n_cand] = up_right
                n_cand += 1
            if up_left != left and up_left != up and up_left != up_right:
                cand[n_cand] = up_left
                n_cand += 1
            state_left = np.int64(row_state[x - 1]) if x > 0 else 4
            state_up = np.int64(above_state[x])
            value = np.int64(0) if decoding else np.int64(indices[p_index])
            a = (pattern * 5 + state_left) * 5 + state_up
            h0 = ((SEED_MATCH ^ a) * mul) & m32
            h1 = ((h0 ^ up) * mul) & m32
            h1 = ((h1 ^ left) * mul) & m32
            h2 = ((h1 ^ up_right) * mul) & m32
            b0 = (h0 >> match_shift) << 2
            b1 = size + ((h1 >> match_shift) << 2)
            b2 = 2 * size + ((h2 >> match_shift) << 2)
            outcome = 4
            for i in range(n_cand):
                if i == n_cand - 1 and n_cand == k:
                    # Every palette entry is a candidate: the last one is implied.
                    outcome = i
                    break
                bit = code_bit(model, weights, i, b0 + i, b1 + i, b2 + i, coder, data, decoding,
                               1 if value == cand[i] else 0, squash_t, stretch_t, rate_t)
                decisions += 1
                if bit < 0:
                    return (TRUNCATED if decoding else FULL), coder[3], p_index, decisions
                if bit:
                    outcome = i
                    break
            if outcome < 4:
                value = cand[outcome]
            else:
                g0 = ((SEED_LITERAL ^ up) * mul) & m32
                g1 = ((g0 ^ left) * mul) & m32
                g2 = ((g1 ^ up_right) * mul) & m32
                l0 = (g0 >> literal_shift) << block_bits
                l1 = size + ((g1 >> literal_shift) << block_bits)
                l2 = 2 * size + ((g2 >> literal_shift) << block_bits)
                node = 1
                for depth in range(nbits):
                    if node < 256:
                        c0 = l0 + node
                        c1 = l1 + node
                        c2 = l2 + node
                    else:
                        c0 = (((g0 ^ node) * mul) & m32) >> node_shift
                        c1 = size + ((((g1 ^ node) * mul) & m32) >> node_shift)
                        c2 = 2 * size + ((((g2 ^ node) * mul) & m32) >> node_shift)
                    bit = code_bit(model, weights, 4 + depth, c0, c1, c2, coder, data, decoding,
                                   (value >> (nbits - 1 - depth)) & 1, squash_t, stretch_t, rate_t)
                    decisions += 1
                    if bit < 0:
                        return (TRUNCATED if decoding else FULL), coder[3], p_index, decisions
                    node = node * 2 + bit
                value = node - (1 << nbits)
                if decoding and value >= k:
                    return LITERAL, coder[3], p_index, decisions
            if decoding:
                indices[p_index] = value
            row_state[x] = outcome
            if decisions > max_decisions:
                # Spec rule 27: checked after each pixel, so at most 20 decisions past the limit.
                return WORK, coder[3], p_index, decisions
        above_state, row_state = row_state, above_state
    pos = coder[3]
    if decoding:
        if pos != data.shape[0]:
            return TRAILING, pos, 0, decisions
    else:
        x1 = coder[0]
        for _ in range(4):
            if pos >= data.shape[0]:
                return FULL, pos, 0, decisions
            data[pos] = x1 >> 24
            x1 = (x1 << 8) & m32
            pos += 1
    return OK, pos, 0, decisions

