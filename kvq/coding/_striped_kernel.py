"""The compiled kernel of index coding 2: one stripe, a coding-1 stream (see :mod:`kvq.coding.striped`).

A stripe of coding 2 is exactly the coding-1 stream of a ``width`` x
``height`` image (``spec/kvq-coding-2.md`` §S4), so this kernel computes what
:func:`kvq.coding._entropy_kernel.run` computes, on coding 1's constants,
tables and counter update (imported, not copied), and ``tests/test_coding2.py``
checks that the two write the same bytes. It differs in what coding 2 adds
and in how it is written for speed:

- it counts decisions and stops at ``max_decisions`` (the work limit of
  rule 40), so a hostile stripe costs time in proportion to its bytes;
- the coder's four registers are locals rather than an array the compiled
  code must store back after every decision, and the decision returns them
  as a tuple: numba keeps them in registers.

With ``decoding`` False it reads ``indices`` and writes ``data``; with it
True it reads ``data`` and fills ``indices``. It returns ``(status, bytes
used, pixel, decisions)``.
"""

import numba
import numpy as np

from .._jit import kernel
from ._entropy_kernel import (
    BIAS_INPUT,
    HASH_MULTIPLIER,
    LEARNING_RATE,
    N_TABLES,
    N_WEIGHT_SETS,
    SEED_LITERAL,
    SEED_MATCH,
    WEIGHT_INIT,
    WEIGHT_LIMIT,
    update,
)

#: Status codes of :func:`run`: coding 1's, and WORK for the work limit.
OK, TRUNCATED, LITERAL, TRAILING, FULL, WORK = 0, 1, 2, 3, 4, 5

m32 = 0xFFFFFFFF


@numba.njit(inline="always")
def _decide(model, weights, ws, c0, c1, c2, x1, x2, x, pos, data, decoding, bit, squash_t, stretch_t, rate_t):
    """One decision of coding 1 (spec E4); bit -1 when the stream runs out."""
    s0 = model[c0]
    s1 = model[c1]
    s2 = model[c2]
    st0 = np.int64(stretch_t[s0 >> 9])
    st1 = np.int64(stretch_t[s1 >> 9])
    st2 = np.int64(stretch_t[s2 >> 9])
    w0 = weights[ws, 0]
    w1 = weights[ws, 1]
    w2 = weights[ws, 2]
    w3 = weights[ws, 3]
    dot = (w0 * st0 + w1 * st1 + w2 * st2 + w3 * BIAS_INPUT) >> 16
    p = np.int64(squash_t[min(max(dot, -2047), 2047) + 2047])
    p = min(max(p, 1), 4095)
    xmid = x1 + ((x2 - x1) >> 12) * p
    if decoding:
        bit = 1 if x <= xmid else 0
    if bit:
        x2 = xmid
    else:
        x1 = xmid + 1
    n = data.shape[0]
    while ((x1 ^ x2) & 0xFF000000) == 0:
        if pos >= n:
            return -1, x1, x2, x, pos
        if decoding:
            x = ((x << 8) & m32) | data[pos]
        else:
            data[pos] = x2 >> 24
        pos += 1
        x1 = (x1 << 8) & m32
        x2 = ((x2 << 8) & m32) | 255
    err = ((bit << 12) - p) * LEARNING_RATE
    weights[ws, 0] = min(max(w0 + ((st0 * err + 0x8000) >> 16), -WEIGHT_LIMIT), WEIGHT_LIMIT)
    weights[ws, 1] = min(max(w1 + ((st1 * err + 0x8000) >> 16), -WEIGHT_LIMIT), WEIGHT_LIMIT)
    weights[ws, 2] = min(max(w2 + ((st2 * err + 0x8000) >> 16), -WEIGHT_LIMIT), WEIGHT_LIMIT)
    weights[ws, 3] = min(max(w3 + ((BIAS_INPUT * err + 0x8000) >> 16), -WEIGHT_LIMIT), WEIGHT_LIMIT)
    model[c0] = update(s0, bit, rate_t)
    model[c1] = update(s1, bit, rate_t)
    model[c2] = update(s2, bit, rate_t)
    return bit, x1, x2, x, pos


@kernel(nogil=True)
def run(indices, width, height, k, hb, data, decoding, squash_t, stretch_t, rate_t, max_decisions):
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
    match_shift = 32 - (hb - 2)
    literal_shift = 32 - (hb - block_bits)
    node_shift = 32 - hb
    above_state = np.full(width, 4, dtype=np.uint8)
    row_state = np.full(width, 4, dtype=np.uint8)
    cand = np.zeros(4, dtype=np.int64)
    decisions = np.int64(0)
    x1 = np.int64(0)
    x2 = np.int64(0xFFFFFFFF)
    x = np.int64(0)
    pos = np.int64(0)
    if decoding:
        if data.shape[0] < 4:
            return TRUNCATED, data.shape[0], 0, decisions
        x = (np.int64(data[0]) << 24) | (np.int64(data[1]) << 16) | (np.int64(data[2]) << 8) | np.int64(data[3])
        pos = np.int64(4)
    for y in range(height):
        row = y * width
        for xx in range(width):
            p_index = row + xx
            if y == 0:
                if xx == 0:
                    left = np.int64(0)
                else:
                    left = np.int64(indices[p_index - 1])
                up = left
                up_left = left
                up_right = left
            else:
                up = np.int64(indices[p_index - width])
                if xx == 0:
                    left = up
                    up_left = up
                else:
                    left = np.int64(indices[p_index - 1])
                    up_left = np.int64(indices[p_index - width - 1])
                up_right = np.int64(indices[p_index - width + 1]) if xx + 1 < width else up
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
            state_left = np.int64(row_state[xx - 1]) if xx > 0 else 4
            state_up = np.int64(above_state[xx])
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
                if decisions == max_decisions:
                    return WORK, pos, p_index, decisions
                decisions += 1
                bit, x1, x2, x, pos = _decide(
                    model, weights, i, b0 + i, b1 + i, b2 + i, x1, x2, x, pos, data, decoding,
                    1 if value == cand[i] else 0, squash_t, stretch_t, rate_t,
                )  # fmt: skip
                if bit < 0:
                    return (TRUNCATED if decoding else FULL), pos, p_index, decisions
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
                node = np.int64(1)
                for depth in range(nbits):
                    if node < 256:
                        c0 = l0 + node
                        c1 = l1 + node
                        c2 = l2 + node
                    else:
                        c0 = (((g0 ^ node) * mul) & m32) >> node_shift
                        c1 = size + ((((g1 ^ node) * mul) & m32) >> node_shift)
                        c2 = 2 * size + ((((g2 ^ node) * mul) & m32) >> node_shift)
                    if decisions == max_decisions:
                        return WORK, pos, p_index, decisions
                    decisions += 1
                    bit, x1, x2, x, pos = _decide(
                        model, weights, 4 + depth, c0, c1, c2, x1, x2, x, pos, data, decoding,
                        (value >> (nbits - 1 - depth)) & 1, squash_t, stretch_t, rate_t,
                    )  # fmt: skip
                    if bit < 0:
                        return (TRUNCATED if decoding else FULL), pos, p_index, decisions
                    node = node * 2 + bit
                value = node - (1 << nbits)
                if decoding and value >= k:
                    return LITERAL, pos, p_index, decisions
            if decoding:
                indices[p_index] = value
            row_state[xx] = outcome
        above_state, row_state = row_state, above_state
    if decoding:
        if pos != data.shape[0]:
            return TRAILING, pos, 0, decisions
    else:
        for _ in range(4):
            if pos >= data.shape[0]:
                return FULL, pos, 0, decisions
            data[pos] = x1 >> 24
            x1 = (x1 << 8) & m32
            pos += 1
    return OK, pos, 0, decisions
