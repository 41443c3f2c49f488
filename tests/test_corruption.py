"""Issue 6: every single-byte change and every truncation of a valid file is detected.

Exhaustive, not sampled: for tiny files (5x3 pixels, K = 1, 2, 5 and 9, each
channel count) every offset is replaced by each of the 255 other byte values,
and every proper prefix is decoded. Each must raise a :class:`kvq.FormatError`
(CRC, truncation or structure), never decode to an image and never raise
anything else.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

import kvq
from kvq import container

CHANNELS = (1, 3, 4)
KS = (1, 2, 5, 9)


def tiny_file(channels: int, k: int, coding: int = 0) -> bytes:
    """A 5x3 image with exactly ``k`` distinct colours, its indices in ``coding``.

    Coding 1 is forced (kvq's encoder stores such tiny images in fixed width,
    which is smaller), so that the entropy decoder meets every corruption too.
    """
    rng = np.random.default_rng(1000 * channels + k)
    palette = np.zeros((k, channels), dtype=np.uint8)
    palette[:, 0] = np.arange(k) * 17 + 3  # distinct, so compact() keeps all k
    if channels > 1:
        palette[:, 1:] = rng.integers(0, 256, (k, channels - 1))
    indices = np.concatenate([np.arange(k), rng.integers(0, k, 15 - k)])
    indices = rng.permutation(indices).reshape(3, 5)
    if coding == 1:
        from kvq.coding import entropy

        header = container.Header(5, 3, channels, k, container.bits_for(k), 1, (1, 1))
        stream = entropy.encode(indices.astype(np.uint8), k)
        assert stream is not None
        return container.write(header, palette.tobytes(), stream)
    data = kvq.encode_indexed(palette=palette, indices=indices, coding="fixed")
    h = kvq.read_header(data)
    assert (h.width, h.height, h.channels, h.k) == (5, 3, channels, k)
    assert len(data) == h.fixed_file_size
    return data


CASES = [(c, k, coding) for coding in (0, 1) for c in CHANNELS for k in KS]
IDS = [f"coding{coding}-c{c}-k{k}" for c, k, coding in CASES]


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def valid(request) -> bytes:
    return tiny_file(*request.param)


def _must_fail(data: bytes, what: str) -> None:
    try:
        kvq.decode(data)
    except kvq.FormatError:
        return
    except Exception as exc:  # noqa: BLE001 - any other type is a contract violation
        pytest.fail(f"{what}: {type(exc).__name__}: {exc}")
    pytest.fail(f"{what}: decoded without error")


def test_valid_files_decode(valid):
    assert kvq.decode(valid).shape[:2] == (3, 5)


def test_every_single_byte_change_is_detected(valid):
    buf = bytearray(valid)
    missed = []
    for offset in range(len(valid)):
        original = buf[offset]
        for value in range(256):
            if value == original:
                continue
            buf[offset] = value
            data = bytes(buf)
            try:
                kvq.decode(data)
            except kvq.FormatError:
                pass
            except Exception as exc:  # noqa: BLE001 - any other type is a contract violation
                pytest.fail(f"byte {offset} = {value:#04x}: {type(exc).__name__}: {exc}")
            else:
                missed.append((offset, value))
        buf[offset] = original
    assert not missed, f"{len(missed)} undetected single-byte changes, first {missed[:5]}"


def test_every_header_byte_change_is_detected_by_read_header(valid):
    # The header reader sees only the first 38 bytes; a change there must not pass it.
    buf = bytearray(valid[: container.HEADER_SIZE])
    for offset in range(len(buf)):
        original = buf[offset]
        for value in range(256):
            if value == original:
                continue
            buf[offset] = value
            with pytest.raises(kvq.FormatError):
                kvq.read_header(bytes(buf))
            with pytest.raises(kvq.FormatError):
                kvq.read_header(io.BytesIO(bytes(buf)))
        buf[offset] = original


def test_every_truncation_is_detected(valid):
    for length in range(len(valid)):
        _must_fail(valid[:length], f"truncated to {length} bytes")
    for length in range(container.HEADER_SIZE):
        with pytest.raises(kvq.FormatError):
            kvq.read_header(valid[:length])


def test_trailing_bytes_are_detected(valid):
    for extra in (b"\x00", b"\xff" * 12, valid):
        _must_fail(valid + extra, f"{len(extra)} trailing bytes")


def test_every_bit_flip_in_a_larger_file_is_detected():
    # 1 bit per index (K = 2) over 20x20 pixels: 50 index bytes, every bit flipped.
    rng = np.random.default_rng(7)
    data = kvq.encode_indexed(palette=np.array([[0, 0, 0], [255, 255, 255]], dtype=np.uint8), indices=rng.integers(0, 2, (20, 20)))
    buf = bytearray(data)
    for offset in range(len(data)):
        for bit in range(8):
            buf[offset] ^= 1 << bit
            _must_fail(bytes(buf), f"bit {bit} of byte {offset}")
            buf[offset] ^= 1 << bit


def test_single_byte_changes_through_pillow_plugin():
    """The plugin must reject the same changes with OSError or ValueError."""
    pytest.importorskip("kvq.pillow_plugin")
    from PIL import Image

    data = tiny_file(3, 5)
    buf = bytearray(data)
    for offset in range(len(data)):
        for value in (buf[offset] ^ 0x01, buf[offset] ^ 0xFF):
            original = buf[offset]
            buf[offset] = value
            try:
                with Image.open(io.BytesIO(bytes(buf))) as im:
                    im.load()
            except (OSError, ValueError, SyntaxError):
                pass
            except Exception as exc:  # noqa: BLE001 - any other type is a contract violation
                pytest.fail(f"byte {offset} = {value:#04x}: {type(exc).__name__}: {exc}")
            else:
                pytest.fail(f"byte {offset} = {value:#04x}: Pillow loaded a corrupt file")
            finally:
                buf[offset] = original
    for length in range(len(data)):
        with pytest.raises((OSError, ValueError, SyntaxError)), Image.open(io.BytesIO(data[:length])) as im:
            im.load()
