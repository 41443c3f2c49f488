"""Index codings: one object per coding, found by the header's coding byte or by name.

The container knows only that INDX holds the indices; how they are coded is
decided by the header's ``coding`` byte (spec §4), and everything a coding
means lives in its own module, as one :class:`IndexCoding` object:

- 0, ``"fixed"``: fixed-width packing at ceil(log2 K) bits per index
  (:mod:`kvq.coding.fixed`, spec §6), the textbook N * ceil(log2 K);
- 1, ``"entropy"``: context-mixing arithmetic coding
  (:mod:`kvq.coding.entropy`, ``spec/kvq-coding-1.md``), format 1.1;
- 2, ``"striped"``: coding 1 in independent stripes of rows, decoded in
  parallel and readable a stripe at a time (:mod:`kvq.coding.striped`,
  ``spec/kvq-coding-2.md``), format 1.2.

Every other module asks a coding object (its length rule, encoder, decoder,
check, band reader, side bits, kernels) and never branches on a coding byte.
Adding a coding is its module(s) (a subclass of :class:`IndexCoding`, from
:mod:`kvq.coding.base`), one line in :data:`CODINGS`, its spec and its test
vectors.
"""

from __future__ import annotations

from .base import IndexCoding
from .entropy import EntropyCoding
from .fixed import FixedWidth
from .striped import StripedCoding

__all__ = ["CODINGS", "DEFAULT", "FALLBACK", "IndexCoding", "by_code", "by_name", "known", "names"]

#: Every index coding this reader knows. Adding one is one line here.
CODINGS: tuple[IndexCoding, ...] = (FixedWidth(), EntropyCoding(), StripedCoding())
#: The encoder's default coding (the ``coding`` option's default).
DEFAULT = "entropy"

#: What the encoder stores when a coding gives up (its encode returns None, as
#: coding 1 does when it would not be smaller): fixed width, which every 1.x
#: reader reads.
FALLBACK: IndexCoding = next(coding for coding in CODINGS if coding.textbook)


def by_code(code: int) -> IndexCoding:
    """The coding of a header's coding byte.

    Parameters
    ----------
    code : int

    Returns
    -------
    IndexCoding

    Raises
    ------
    KeyError
        No coding has that byte (the container refuses such a header first, with the spec's message).
    """
    for coding in CODINGS:
        if coding.code == code:
            return coding
    raise KeyError(code)


def by_name(name: str) -> IndexCoding:
    """The coding of an option name (``"fixed"``, ``"entropy"``).

    Parameters
    ----------
    name : str

    Returns
    -------
    IndexCoding

    Raises
    ------
    KeyError
    """
    for coding in CODINGS:
        if coding.name == name:
            return coding
    raise KeyError(name)


def names() -> tuple[str, ...]:
    """tuple of str: the codings' option names, the default first, then by coding byte."""
    return (DEFAULT, *(coding.name for coding in CODINGS if coding.name != DEFAULT))


def known() -> str:
    """str: every coding byte and name this reader knows, for messages ("0 (fixed), 1 (entropy)")."""
    return ", ".join(f"{coding.code} ({coding.name})" for coding in CODINGS)
