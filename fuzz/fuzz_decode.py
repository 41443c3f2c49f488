"""Coverage-guided fuzzing of kvq's decoder: kvq.decode, decode_indexed, read_header.

Run (see fuzz/README.md)::

    python fuzz/fuzz_decode.py fuzz/corpus/decode fuzz/seeds -max_total_time=3600

The contract checked (issue 6): any byte string ends in a decoded image or a
:class:`kvq.KvqError`; anything else (IndexError, struct.error, TypeError,
MemoryError, ZeroDivisionError, a hang) is a crash. A successful decode must
also agree with its own header.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import _common
from _common import MAX_PIXELS, GuardedFile


def check(data: bytes) -> None:
    """Decode ``data`` every way the library offers; raise on a broken contract."""
    import numpy as np

    import kvq
    import kvq.container

    try:
        header = kvq.read_header(data, MAX_PIXELS)
    except kvq.KvqError:
        header = None
    try:
        from_file = kvq.read_header(io.BytesIO(data), MAX_PIXELS)
    except kvq.KvqError:
        from_file = None
    if header != from_file:
        raise AssertionError(f"read_header disagrees on bytes and file: {header} vs {from_file}")
    try:
        decoded = kvq.decode_indexed(data, MAX_PIXELS)
    except kvq.KvqError:
        decoded = None
    try:
        pixels = kvq.decode(data, MAX_PIXELS)
    except kvq.KvqError:
        pixels = None
    if (decoded is None) != (pixels is None):
        raise AssertionError("decode and decode_indexed disagree on whether the file is valid")
    # validate() makes every check decode makes, without the pixels: the same
    # verdict, the same error (issue 11), and pixel counts that add up.
    try:
        checked = kvq.validate(data, MAX_PIXELS)
        verdict = None
    except kvq.KvqError as exc:
        checked, verdict = None, (type(exc), str(exc))
    try:
        kvq.decode_indexed(data, MAX_PIXELS)
        expected_verdict = None
    except kvq.KvqError as exc:
        expected_verdict = (type(exc), str(exc))
    if verdict != expected_verdict:
        raise AssertionError(f"validate says {verdict}, decode {expected_verdict}")
    if checked is not None and decoded is not None:
        counts = np.bincount(decoded.indices.reshape(-1), minlength=decoded.header.k)
        if not np.array_equal(checked.counts, counts):
            raise AssertionError("validate counts pixels per entry differently from the decoded indices")
    # The reader on a file object (the Pillow plugin's, kvq decode's) must
    # agree with the reader on bytes, read the palette the decoder reads, and
    # never request more than READ_LIMIT bytes at once.
    try:
        lazy = kvq.container.Reader(GuardedFile(data), MAX_PIXELS)
    except kvq.KvqError as exc:
        lazy, lazy_verdict = None, (type(exc), str(exc))
    else:
        lazy_verdict = None
    # The same reader for bytes and for files: the same verdict, the same error.
    try:
        kvq.container.parse(data, MAX_PIXELS)
        parse_verdict = None
    except kvq.KvqError as exc:
        parse_verdict = (type(exc), str(exc))
    if lazy_verdict != parse_verdict:
        raise AssertionError(f"the reader on a file says {lazy_verdict}, on bytes {parse_verdict}")
    if decoded is None:
        return
    if lazy is None or lazy.palette != decoded.palette.tobytes():
        raise AssertionError("the reader on a file disagrees with the decoder")
    h = decoded.header
    if header != h:
        raise AssertionError(f"read_header gave {header}, the decoder {h}")
    expected = (h.height, h.width) if h.channels == 1 else (h.height, h.width, h.channels)
    if pixels.shape != expected or pixels.dtype != np.uint8:
        raise AssertionError(f"decoded {pixels.shape} {pixels.dtype} for header {h}")
    if decoded.palette.shape != (h.k, h.channels) or int(decoded.indices.max(initial=0)) >= h.k:
        raise AssertionError("palette shape or index range inconsistent with the header")
    # Coding 2: a band of rows (its stripes alone) is those rows of the whole, on any number of threads.
    for rows, threads in (((0, 1), 1), ((h.height // 2, h.height), 2), ((0, h.height), 2)):
        band = kvq.decode(data, MAX_PIXELS, rows=rows, threads=threads)
        if not np.array_equal(band, pixels[rows[0] : rows[1]]):
            raise AssertionError(f"rows {rows} on {threads} threads differ from the whole image's")


def check_threads(data: bytes) -> None:
    """One verdict whatever the threads: the same error (the lowest failing stripe's) or the same pixels."""
    import numpy as np

    import kvq

    outcomes = []
    for threads in (1, 2):
        try:
            outcomes.append(kvq.decode(data, MAX_PIXELS, threads=threads))
        except kvq.KvqError as exc:
            outcomes.append((type(exc), str(exc)))
    arrays = [isinstance(o, np.ndarray) for o in outcomes]
    if arrays[0] != arrays[1]:
        same = False
    else:
        same = np.array_equal(outcomes[0], outcomes[1]) if arrays[0] else outcomes[0] == outcomes[1]
    if not same:
        raise AssertionError(f"threads=1 and threads=2 disagree: {outcomes[0]!r:.200} vs {outcomes[1]!r:.200}")


def test_one_input(data: bytes) -> None:
    check(data)
    check_threads(data)


def main() -> None:
    import atheris

    with atheris.instrument_imports(include=["kvq"]):
        import kvq
        import kvq.bitpack
        import kvq.codec
        import kvq.container  # noqa: F401
    _common.start_kernels()
    atheris.Setup(sys.argv, test_one_input, custom_mutator=_common.custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
