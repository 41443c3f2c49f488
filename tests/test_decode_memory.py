"""kvq.decode raises kvq's own error, never MemoryError, whatever a file claims (spec sections 10 and 11).

A K = 1 file has no index data, so 66 bytes can claim (2^32 - 1)^2 RGBA pixels; only the pixel limit bounds it.
With the limit off, kvq still refuses what cannot fit in memory, as ImageTooLargeError.
"""

from __future__ import annotations

import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import kvq
from kvq import codec, memory

REPO = Path(__file__).resolve().parent.parent


def _chunk(kind: bytes, data: bytes) -> bytes:
    length = struct.pack(">I", len(data))
    return length + kind + data + struct.pack(">I", zlib.crc32(length + kind + data))


def k1_file(width: int, height: int, channels: int = 4) -> bytes:
    """A valid K = 1 file: header, one palette entry, empty INDX."""
    head = struct.pack(">BBIIBBBBI", 1, 0, width, height, channels, 0, 0, 0, 1)
    return b"\x89KVQ\r\n\x1a\n" + _chunk(b"HEAD", head) + _chunk(b"PLTE", bytes(range(channels))) + _chunk(b"INDX", b"")


def test_a_k1_file_is_bounded_by_the_pixel_limit():
    data = k1_file(65535, 65535)
    assert len(data) == 66
    with pytest.raises(kvq.ImageTooLargeError, match="exceeds the limit"):
        kvq.decode(data)


@pytest.mark.parametrize("width, height", [(2**32 - 1, 2**32 - 1), (2**32 - 1, 2**20)])
def test_with_the_limit_off_more_than_memory_is_refused_before_allocating(width, height):
    # (2^32 - 1)^2 x 4 bytes is beyond any machine and beyond numpy (which raised a bare ValueError).
    with pytest.raises(kvq.ImageTooLargeError, match=f"{width}x{height} image"):
        kvq.decode(k1_file(width, height), max_pixels=None)
    with pytest.raises(kvq.ImageTooLargeError):
        kvq.decode_indexed(k1_file(width, height), max_pixels=None)


def test_the_bound_is_the_machines_memory(monkeypatch):
    monkeypatch.setattr(memory, "physical_memory", lambda: 30_000)
    # 100 x 100 RGBA: 10,000 bytes of indices fit, 40,000 bytes of pixels do not.
    decoded = kvq.decode_indexed(k1_file(100, 100), max_pixels=None)
    with pytest.raises(kvq.ImageTooLargeError, match="needs 40,000 bytes, more than this machine's 30,000 bytes"):
        decoded.pixels()
    monkeypatch.setattr(memory, "physical_memory", lambda: None)  # not reported: numpy's own bound
    assert kvq.decode(k1_file(100, 100), max_pixels=None).shape == (100, 100, 4)


def test_a_failed_allocation_is_reported_as_kvq_error(monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(codec, "lookup", no_memory)
    with pytest.raises(kvq.ImageTooLargeError, match="not enough memory to decode the 300x200 image"):
        kvq.decode(k1_file(300, 200))


def test_under_an_address_space_limit_the_66_byte_file_gives_kvq_error(tmp_path):
    """65535 x 65535 RGBA at K = 1 with the limit off, in a process limited to 1.5 GB: 17 GB of pixels asked for."""
    path = tmp_path / "k1.kvq"
    path.write_bytes(k1_file(65535, 65535))
    script = (
        "import sys, kvq\n"
        "try:\n"
        f"    kvq.decode(open({str(path)!r}, 'rb').read(), max_pixels=None)\n"
        "except kvq.KvqError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120, preexec_fn=limit
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ImageTooLargeError ") and "65535x65535 image" in result.stdout, result.stdout


def test_validating_an_entropy_coded_file_refuses_a_huge_claim_as_kvqs_error(monkeypatch):
    # validate() (kvq info, Pillow's verify()) decodes a coding-1 stream to check it: the indices it
    # would hold are bounded like decoding's, never a bare MemoryError.
    from kvq import container

    header = container.Header(width=400_000, height=400_000, channels=3, k=3, bits=2, coding=1, version=(1, 1))
    # Enough stream for the pixels (rule 26 allows 22,711 a byte), so that only memory stands in the way.
    data = container.write(header, bytes(9), bytes(-(-header.n_pixels // 22_711)))
    monkeypatch.setattr(memory, "physical_memory", lambda: 1 << 30)
    with pytest.raises(kvq.ImageTooLargeError, match="400000x400000 image"):
        codec.validate(data, max_pixels=None)


def test_a_strided_buffer_is_refused_as_kvqs_error():
    import numpy as np

    data = np.frombuffer(k1_file(4, 4) * 2, dtype=np.uint8)[::2]
    with pytest.raises(kvq.KvqError, match="contiguous"):
        kvq.decode(data)


def test_more_pixels_than_int64_counts_is_kvqs_error_at_every_door(tmp_path, monkeypatch):
    # 65 bytes declaring K = 1 and (2^32 - 1)^2 RGBA pixels: validate(max_pixels=None), Pillow's verify() and
    # kvq info raised OverflowError from numpy's int64 counts ("internal error" in the command).
    from PIL import Image

    from conftest import one_error_line, run_kvq_here

    data = k1_file(2**32 - 1, 2**32 - 1)
    with pytest.raises(kvq.ImageTooLargeError, match=r"more than kvq counts \(2\^63 - 1\)"):
        kvq.validate(data, max_pixels=None)
    import io

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Pillow's own limit off: verify() is kvq's
    with Image.open(io.BytesIO(data)) as im, pytest.raises(kvq.ImageTooLargeError):
        im.verify()
    (tmp_path / "huge.kvq").write_bytes(data)
    assert "more than kvq counts" in one_error_line(run_kvq_here("info", "huge.kvq", cwd=tmp_path), 1)
    # Just under it, the count is exact.
    assert kvq.validate(k1_file(2**31, 2**31), max_pixels=None).counts.tolist() == [2**62]
