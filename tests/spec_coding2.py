"""Index coding 2 as spec/kvq-coding-2.md writes it (sections S2 to S5 and S8), transcribed.

Independent of kvq: each stripe goes to the coding-1 transcription of ``spec_coding1``, with the work limit of §S4
counted here around its ``decide`` (the transcription's ``trace`` hook reports every pixel's decisions), and the
table rules applied in the order of §S5.
"""

from __future__ import annotations

import zlib

import spec_coding1


class Rejected(Exception):
    def __init__(self, rule: int) -> None:
        super().__init__(rule)
        self.rule = rule


def reject(rule: int):
    raise Rejected(rule)


class _Counted(list):
    """A ``trace`` list that rejects (rule 40) once a pixel's decisions take the stripe past its work limit."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.count = limit, 0

    def append(self, item) -> None:
        self.count += len(item[5])
        if self.count > self.limit:
            reject(40)


def check_lengths(n: int, W: int, H: int, K: int) -> None:
    """Rules 30 and 31, from INDX's length alone."""
    h = max(1, 65536 // W)
    S = (H + h - 1) // h
    if n < 8 * S:
        reject(30)
    if (K >= 2 and 65536 * (n - 8 * S) < W * H) or (K == 1 and n != 12 * S):
        reject(31)


def decode_coding_2(data: bytes, W: int, H: int, K: int, bits: int) -> list[int]:
    h = max(1, 65536 // W)
    S = (H + h - 1) // h
    n = len(data)
    check_lengths(n, W, H, K)
    E = [int.from_bytes(data[8 * i : 8 * i + 4], "big") for i in range(S)]
    C = [int.from_bytes(data[8 * i + 4 : 8 * i + 8], "big") for i in range(S)]
    B = [8 * S] + E[:-1]
    for i in range(S):
        if E[i] < B[i]:
            reject(32)
        if E[i] > n:
            reject(33)
    if E[S - 1] != n:
        reject(34)
    rows = [min(H, (i + 1) * h) - i * h for i in range(S)]
    for i in range(S):
        L, N = E[i] - B[i], W * rows[i]
        if (K >= 2 and 65536 * L < N) or (K == 1 and L != 4):
            reject(35)
    idx: list[int] = []
    for i in range(S):
        stream = data[B[i] : E[i]]
        if zlib.crc32(stream) != C[i]:
            reject(36)
        counted = _Counted(2 * W * rows[i] + 64 * len(stream))
        try:
            idx += spec_coding1.decode_coding_1(stream, W, rows[i], K, bits, trace=counted)
        except spec_coding1.Rejected as exc:
            # Rules 23 to 25 within a stripe are 37 to 39. A pixel whose own decisions pass the work limit before
            # the stream runs out is rule 40 in kvq; the trace hook sees a pixel only once it is whole, so this
            # transcription counts the failing pixel's decisions only for the vectors, which never straddle.
            reject({23: 37, 24: 38, 25: 39}[exc.rule])
    return idx
