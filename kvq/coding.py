"""Index codings, one place each, keyed by the header's ``coding`` byte.

The container knows only that INDX holds the indices; how they are coded is
decided here, by the coding byte of the header (spec §4):

- 0, ``"fixed"``: fixed-width packing at ceil(log2 K) bits per index
  (:mod:`kvq.bitpack`, spec §6), the textbook N * ceil(log2 K);
- 1, ``"entropy"``: context-mixing arithmetic coding (:mod:`kvq.entropy`,
  spec §7), defined by format version 1.1.

Every part of kvq that needs to know a coding's rules (the INDX length rule,
the decoder, the encoder and the bit accounting) asks this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import FormatError

FIXED = 0
ENTROPY = 1


@dataclass(frozen=True)
class IndexCoding:
    """One index coding.

    Attributes
    ----------
    code : int
        The header's ``coding`` byte.
    name : str
        Its name in options and on the command line.
    description : str
        For reports.
    minor : int
        The minor format version that defines it; files that use it are
        written with this minor version.
    """

    code: int
    name: str
    description: str
    minor: int


CODINGS = {
    FIXED: IndexCoding(FIXED, "fixed", "fixed width", 0),
    ENTROPY: IndexCoding(ENTROPY, "entropy", "entropy coded", 1),
}
#: Coding byte by option name.
BY_NAME = {c.name: c.code for c in CODINGS.values()}


def describe(code: int) -> str:
    """str: a coding byte's description, for reports ("unknown" when undefined)."""
    coding = CODINGS.get(code)
    return coding.description if coding else "unknown"


def fixed_size(n_pixels: int, bits: int) -> int:
    """Bytes of ``n_pixels`` indices packed at ``bits`` bits each: ceil(N * bits / 8).

    Parameters
    ----------
    n_pixels, bits : int

    Returns
    -------
    int
    """
    return (n_pixels * bits + 7) // 8


def check_length(code: int, length: int, n_pixels: int, bits: int) -> str | None:
    """Why an INDX chunk of ``length`` bytes cannot hold the indices, or None.

    Parameters
    ----------
    code : int
        The header's coding byte (already validated).
    length : int
        INDX data bytes.
    n_pixels, bits : int
        From the header.

    Returns
    -------
    str or None
        The complaint (spec rule 18), or None when the length is possible.
    """
    if code == FIXED:
        expected = fixed_size(n_pixels, bits)
        if length != expected:
            return f"INDX holds {length:,} bytes, expected {expected:,}"
    # Coding 1 has no length rule of its own: the decoder finds where the
    # stream ends (rules 23 and 25).
    return None


def encode(code: int, indices: np.ndarray, k: int, bits: int) -> bytes | None:
    """Code an (H, W) index array with coding ``code``.

    Parameters
    ----------
    code : int
    indices : ndarray of uint8 or uint16, shape (H, W)
    k, bits : int
        Palette size and ceil(log2 k).

    Returns
    -------
    bytes or None
        None when coding 1 would not be smaller than fixed width (the
        encoder then stores fixed width).
    """
    if code == FIXED:
        from . import bitpack

        return bitpack.pack(indices, bits)
    from . import entropy

    stream = entropy.encode(indices, k, limit=fixed_size(indices.size, bits))
    return stream


def decode(code: int, body: bytes | memoryview, width: int, height: int, k: int, bits: int) -> np.ndarray:
    """Decode INDX data to a flat array of ``width * height`` indices.

    Parameters
    ----------
    code : int
    body : bytes-like
        The INDX chunk's data (its length already checked by :func:`check_length`).
    width, height, k, bits : int
        From the header.

    Returns
    -------
    ndarray of uint8 (k <= 256) or uint16, shape (N,)

    Raises
    ------
    FormatError
        With the offset inside ``body``; the caller rebases it to the file.
    """
    if code == FIXED:
        from . import bitpack

        return bitpack.unpack(body, bits, width * height, k)
    if code == ENTROPY:
        from . import entropy

        return entropy.decode(body, width, height, k)
    raise FormatError(f"unknown index coding {code}", 0)
