"""Index coding 1 as spec/kvq-coding-1.md writes it (sections E2 and E9), transcribed.

Pure Python and deliberately independent of kvq: the tables are built from the
spec's text, not imported, so a test that compares this with kvq's numba kernel
checks the spec as much as the code. ``trace`` collects each pixel's decisions
for the worked example (section E8).
"""

from __future__ import annotations

SQUASH_KNOTS = [1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047,
                2549, 2994, 3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094]  # fmt: skip


def squash(d: int) -> int:
    i, w = (d >> 7) + 16, d & 127
    return (SQUASH_KNOTS[i] * (128 - w) + SQUASH_KNOTS[i + 1] * w + 64) >> 7


STRETCH = [0] * 4096
_pi = 0
for _x in range(-2047, 2048):
    _v = squash(_x)
    for _j in range(_pi, _v + 1):
        STRETCH[_j] = _x
    _pi = max(_pi, _v + 1)
for _j in range(_pi, 4096):
    STRETCH[_j] = 2047
RATE = [65536 // (n + 2) for n in range(31)]


class Rejected(Exception):
    def __init__(self, rule: int) -> None:
        super().__init__(rule)
        self.rule = rule


def reject(rule: int):
    raise Rejected(rule)


def decode_coding_1(data: bytes, W: int, H: int, K: int, bits: int, trace: list | None = None) -> list[int]:
    N = W * H
    hb = min(18, max(12, N.bit_length() + 1)); SIZE = 1 << hb; M = 0xFFFFFFFF  # noqa: E702
    if len(data) < 4: reject(23)  # noqa: E701
    if K >= 2 and 22711 * len(data) < N: reject(26)  # noqa: E701
    x1, x2, x, pos = 0, M, int.from_bytes(data[:4], "big"), 4
    T = [32768 << 5] * (3 * SIZE)
    Wt = [[22000, 22000, 22000, 0] for _ in range(20)]
    steps: list = []

    work, limit = 0, 4 * N + 64 * len(data)  # rule 27

    def decide(s, c0, c1, c2):
        nonlocal x1, x2, x, pos, work
        work += 1
        st = [STRETCH[T[c] >> 9] for c in (c0, c1, c2)] + [256]
        dot = sum(w * v for w, v in zip(Wt[s], st, strict=True)) >> 16
        p = min(max(squash(min(max(dot, -2047), 2047)), 1), 4095)
        xmid = x1 + ((x2 - x1) >> 12) * p
        bit = 1 if x <= xmid else 0
        if bit: x2 = xmid  # noqa: E701
        else: x1 = xmid + 1  # noqa: E701
        while ((x1 ^ x2) & 0xFF000000) == 0:
            if pos == len(data): reject(23)  # noqa: E701
            x1, x2 = (x1 << 8) & M, ((x2 << 8) & M) | 255
            x = ((x << 8) & M) | data[pos]; pos += 1  # noqa: E702
        err = ((bit << 12) - p) * 6
        Wt[s] = [min(max(w + ((v * err + 0x8000) >> 16), -(1 << 24)), 1 << 24) for w, v in zip(Wt[s], st, strict=True)]
        for c in (c0, c1, c2):
            prob, n = T[c] >> 5, T[c] & 31
            prob = prob + (((65536 - prob) * RATE[n]) >> 16) if bit else prob - ((prob * RATE[n]) >> 16)
            T[c] = (prob << 5) | min(n + 1, 30)
        steps.append((s, bit, p))
        return bit

    idx, above, row = [0] * N, [4] * W, [4] * W
    for y in range(H):
        for xx in range(W):
            p = y * W + xx
            if y == 0:
                L = U = UL = UR = idx[p - 1] if xx else 0
            else:
                U = idx[p - W]
                L, UL = (idx[p - 1], idx[p - W - 1]) if xx else (U, U)
                UR = idx[p - W + 1] if xx + 1 < W else U
            pattern = (L == U) | (L == UL) << 1 | (L == UR) << 2 | (U == UL) << 3 | (U == UR) << 4 | (UL == UR) << 5
            cand: list[int] = []
            for c in (L, U, UR, UL):
                if c not in cand: cand.append(c)  # noqa: E701
            sl, su = (row[xx - 1] if xx else 4), above[xx]
            a = (pattern * 5 + sl) * 5 + su
            h0 = ((0x6A09E667 ^ a) * 0x9E3779B1) & M
            h1 = ((((h0 ^ U) * 0x9E3779B1) & M ^ L) * 0x9E3779B1) & M
            h2 = ((h1 ^ UR) * 0x9E3779B1) & M
            b = [(h0 >> (34 - hb)) * 4, SIZE + (h1 >> (34 - hb)) * 4, 2 * SIZE + (h2 >> (34 - hb)) * 4]
            steps.clear()
            outcome = 4
            for i in range(len(cand)):
                if (i == len(cand) - 1 and len(cand) == K) or decide(i, b[0] + i, b[1] + i, b[2] + i):
                    outcome = i; break  # noqa: E702
            if outcome < 4:
                value = cand[outcome]
            else:
                B = min(bits, 8)
                g0 = ((0xBB67AE85 ^ U) * 0x9E3779B1) & M
                g1 = ((g0 ^ L) * 0x9E3779B1) & M
                g2 = ((g1 ^ UR) * 0x9E3779B1) & M
                lb = [(g >> (32 - hb + B)) << B for g in (g0, g1, g2)]
                node = 1
                for depth in range(bits):
                    if node < 256:
                        c3 = [lb[0] + node, SIZE + lb[1] + node, 2 * SIZE + lb[2] + node]
                    else:
                        c3 = [j * SIZE + ((((g ^ node) * 0x9E3779B1) & M) >> (32 - hb)) for j, g in enumerate((g0, g1, g2))]
                    node = node * 2 + decide(4 + depth, *c3)
                value = node - (1 << bits)
                if value >= K: reject(24)  # noqa: E701
            idx[p] = value
            row[xx] = outcome
            if work > limit: reject(27)  # noqa: E701
            if trace is not None:
                trace.append(((xx, y), (L, U, UR, UL), pattern, list(cand), (sl, su), list(steps), value, outcome))
        above, row = row, above
    if pos != len(data): reject(25)  # noqa: E701
    return idx
