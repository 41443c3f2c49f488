"""Index coding 2 (``spec/kvq-coding-2.md``): stripes of coding-1 streams, at every door, against hostile input."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import spec_coding2
from PIL import Image

import kvq
from kvq import container
from kvq.bands import BandReader
from kvq.coding import entropy, striped
from kvq.container import Header, bits_for

CODING = striped.StripedCoding()


def smooth(width: int, height: int, k: int) -> np.ndarray:
    """Runs, edges and new values, as photos have (every value below k)."""
    y, x = np.mgrid[0:height, 0:width]
    field = (x + 2 * y + 3 * np.sin(x / 3.0) * np.cos(y / 4.0)) / max(1, width + 2 * height) * k
    return np.clip(field.astype(np.int64), 0, k - 1).astype(np.uint8 if k <= 256 else np.uint16)


def header_of(indices: np.ndarray, k: int, channels: int = 3) -> Header:
    height, width = indices.shape
    return Header(width, height, channels, k, bits_for(k), striped.StripedCoding.code, (1, 2))


def file_of(indices: np.ndarray, k: int) -> bytes:
    """A coding-2 file of these indices whatever fixed width would take (the encoder could store fixed width)."""
    palette = (np.arange(k * 3) % 256).astype(np.uint8).reshape(k, 3)
    body = striped.encode(indices, k, threads=1)
    assert body is not None
    return container.write(header_of(indices, k), palette.tobytes(), body)


def stripe_bodies(body: bytes, header: Header) -> list[bytes]:
    table = CODING.table(lambda start, size: body[start : start + size], header, len(body))
    return [body[int(s) : int(e)] for s, e in zip(table.starts, table.ends, strict=True)]


def chunk(kind: bytes, data: bytes) -> bytes:
    framed = struct.pack(">I", len(data)) + kind + data
    return framed + struct.pack(">I", zlib.crc32(framed))


def with_indx(data: bytes, indx: bytes) -> bytes:
    """The file with its INDX data replaced and INDX's CRC made right: only coding 2's own checks can object."""
    return data[: data.rindex(b"INDX") - 4] + chunk(b"INDX", indx)


SHAPES = [
    (1, 1, 2),
    (1, 1, 1),
    (5, 3, 1),
    (64, 48, 2),
    (64, 48, 16),
    (40, 30, 256),
    (40, 30, 300),
    (70000, 1, 4),  # wider than a stripe: one row a stripe
    (70000, 3, 4),  # three stripes of one row
    (1, 70000, 3),  # one column: h = 65536, a second stripe of 4464 rows
    (256, 512, 16),  # exactly two stripes of 256 rows
    (256, 257, 16),  # one row over: a last stripe of one row
    (300, 220, 3),
]


@pytest.mark.parametrize(("width", "height", "k"), SHAPES)
def test_round_trip_and_every_stripe_is_a_coding_1_stream(width, height, k):
    indices = smooth(width, height, k) if k > 1 else np.zeros((height, width), np.uint8)
    header = header_of(indices, k)
    body = striped.encode(indices, k, threads=1)
    assert body is not None
    assert CODING.check_length(header, len(body)) is None
    assert np.array_equal(CODING.decode(body, header, threads=1), indices)
    rows = striped.stripe_rows(width)
    streams = stripe_bodies(body, header)
    assert len(streams) == striped.stripe_count(width, height) == -(-height // rows)
    for i, stream in enumerate(streams):
        # spec S4: stripe i is exactly coding 1's stream of its rows as an image of their own
        assert stream == entropy.encode(indices[i * rows : (i + 1) * rows], k)
    assert CODING.side_bits(header, len(body)) == 8 * 8 * len(streams) + 32 * len(streams)


def test_transcribed_spec_decoder_agrees():
    for width, height, k in [(300, 220, 3), (17, 9, 5), (1, 1, 1), (40, 30, 300)]:
        indices = smooth(width, height, k) if k > 1 else np.zeros((height, width), np.uint8)
        body = striped.encode(indices, k, threads=1)
        assert spec_coding2.decode_coding_2(body, width, height, k, bits_for(k)) == indices.reshape(-1).tolist()


def test_encoder_picks_it_and_writes_format_1_2_deterministically():
    image = np.stack([smooth(300, 230, 16) * 16] * 3, axis=-1).astype(np.uint8)
    first = kvq.encode(image, k=16, coding="striped")
    assert first == kvq.encode(image, k=16, coding="striped")
    header = kvq.read_header(first)
    assert (header.coding, header.version) == (2, (1, 2))
    assert np.array_equal(kvq.decode(first), image)
    indices = smooth(300, 230, 16)
    assert striped.encode(indices, 16, threads=1) == striped.encode(indices, 16, threads=2)


def test_threads_give_the_same_pixels_and_are_checked():
    data = file_of(smooth(256, 700, 16), 16)
    one = kvq.decode(data, threads=1)
    assert np.array_equal(one, kvq.decode(data, threads=2)) and np.array_equal(one, kvq.decode(data))
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(kvq.OptionError):
            kvq.decode(data, threads=bad)


@pytest.mark.parametrize("rows", [(0, 1), (0, 256), (255, 257), (300, 700), (699, 700), (0, 700), (10, 11)])
def test_rows_decode_only_those_rows(rows):
    indices = smooth(256, 700, 16)
    data = file_of(indices, 16)
    full = kvq.decode(data)
    assert np.array_equal(kvq.decode(data, rows=rows), full[rows[0] : rows[1]])
    assert np.array_equal(kvq.decode_indexed(io.BytesIO(data), rows=rows).indices, indices[rows[0] : rows[1]])


class CountingFile(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        piece = super().read(size)
        self.bytes_read += len(piece)
        return piece


def test_rows_read_only_the_table_and_their_stripes():
    indices = smooth(256, 1024, 64)  # 4 stripes of 256 rows
    data = file_of(indices, 64)
    header = kvq.read_header(data)
    body = data[data.rindex(b"INDX") + 4 : -4]
    sizes = [len(stream) for stream in stripe_bodies(body, header)]
    fp = CountingFile(data)
    assert np.array_equal(kvq.decode_indexed(fp, rows=(600, 610)).indices, indices[600:610])
    before_indx = data.rindex(b"INDX") + 4
    assert fp.bytes_read <= before_indx + 8 * 4 + sizes[2] + 64
    assert fp.bytes_read < len(data) - max(sizes[0], sizes[1], sizes[3])


def test_rows_partial_decode_checks_the_stripes_it_reads():
    indices = smooth(256, 512, 16)
    data = file_of(indices, 16)
    body = data[data.rindex(b"INDX") + 4 : -4]
    damaged = bytearray(body)
    damaged[-3] ^= 0x40  # inside stripe 1
    # INDX's CRC is wrong now, which only a reader of every byte sees; the stripe's own CRC catches it.
    bad = data[: data.rindex(b"INDX") + 4] + bytes(damaged) + data[-4:]
    assert np.array_equal(kvq.decode(bad, rows=(0, 256)), kvq.decode(data, rows=(0, 256)))
    with pytest.raises(kvq.ChecksumError, match="stripe 1"):
        kvq.decode(bad, rows=(256, 300))
    with pytest.raises(kvq.ChecksumError, match="chunk INDX"):
        kvq.decode(bad)


@pytest.mark.parametrize("rows", [(0, 0), (5, 3), (-1, 2), (0, 701), (1.5, 3), "ab", None])
def test_rows_out_of_the_image_are_an_option_error(rows):
    data = file_of(smooth(16, 700, 4), 4)
    if rows is None:
        assert kvq.decode(data, rows=rows).shape == (700, 16, 3)
        return
    with pytest.raises(kvq.OptionError):
        kvq.decode(data, rows=rows)


def test_bands_stream_stripe_groups_and_count_matches():
    indices = smooth(300, 900, 32)
    data = file_of(indices, 32)
    reader = BandReader(io.BytesIO(data), threads=2)
    got = list(reader.bands(band_pixels=300 * 218))
    assert [row for row, _ in got] == [0, 436, 872]  # two stripes a group (one per thread)
    assert np.array_equal(np.concatenate([band for _, band in got]), indices)
    assert np.array_equal(kvq.validate(data).counts, np.bincount(indices.reshape(-1), minlength=32))


def test_cli_and_pillow_doors(tmp_path):
    indices = smooth(300, 500, 16)
    data = file_of(indices, 16)
    path = tmp_path / "a.kvq"
    path.write_bytes(data)
    expected = kvq.decode(data)
    with Image.open(path) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), expected)
    out = tmp_path / "a.png"
    done = subprocess.run(
        [sys.executable, "-m", "kvq", "decode", str(path), "-o", str(out), "--threads", "2"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    with Image.open(out) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), expected)
    info = subprocess.run([sys.executable, "-m", "kvq", "info", str(path)], capture_output=True, text=True)
    assert "stripes     3 of 218 rows (the last 64)" in info.stdout
    assert "+ 288 side bits" in info.stdout
    bad = subprocess.run([sys.executable, "-m", "kvq", "decode", str(path), "-o", str(out), "-f", "--threads", "0"], capture_output=True)
    assert bad.returncode == 2
    im = Image.fromarray(expected)
    buffer = io.BytesIO()
    im.save(buffer, "KVQ", k=16, coding="striped")
    assert kvq.read_header(buffer.getvalue()).coding == 2


def test_every_single_byte_change_and_truncation_is_refused():
    data = file_of(smooth(300, 220, 3), 3)  # two stripes in about a hundred bytes
    for at in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            changed = bytearray(data)
            changed[at] ^= flip
            with pytest.raises(kvq.KvqError):
                kvq.decode(bytes(changed))
    for size in range(len(data)):
        with pytest.raises(kvq.KvqError):
            kvq.decode(data[:size])


def test_every_change_inside_indx_is_refused_by_coding_2_itself():
    data = file_of(smooth(300, 220, 3), 3)
    body = data[data.rindex(b"INDX") + 4 : -4]
    for at in range(len(body)):
        for flip in (0x01, 0x80, 0xFF):
            changed = bytearray(body)
            changed[at] ^= flip
            with pytest.raises(kvq.KvqError):
                kvq.decode(with_indx(data, bytes(changed)))
    for size in range(len(body)):
        with pytest.raises(kvq.KvqError):
            kvq.decode(with_indx(data, body[:size]))


def test_hostile_tables_are_refused_cleanly():
    data = file_of(smooth(256, 1024, 8), 8)
    body = data[data.rindex(b"INDX") + 4 : -4]
    rng = np.random.default_rng(20)
    for _ in range(300):
        table = bytearray(body[:32])
        for _ in range(int(rng.integers(1, 4))):
            entry = int(rng.integers(0, 4))
            value = int(rng.choice([0, 1, 8, 31, 32, len(body) - 1, len(body), len(body) + 1, 2**32 - 1, rng.integers(0, 2**32)]))
            struct.pack_into(">I", table, 8 * entry + int(rng.integers(0, 2)) * 4, value)
        hostile = bytes(table) + body[32:]
        if hostile == body:
            continue
        with pytest.raises(kvq.KvqError):
            kvq.decode(with_indx(data, hostile))


def test_the_lowest_failing_stripe_is_reported_whatever_the_threads():
    indices = smooth(256, 1024, 8)
    data = file_of(indices, 8)
    body = bytearray(data[data.rindex(b"INDX") + 4 : -4])
    body[8 * 1 + 4] ^= 1  # stripe 1's CRC
    body[8 * 3 + 4] ^= 1  # stripe 3's CRC
    bad = with_indx(data, bytes(body))
    for threads in (1, 2, 4):
        with pytest.raises(kvq.ChecksumError, match="stripe 1"):
            kvq.decode(bad, threads=threads)


def test_a_huge_claim_is_refused_from_the_lengths_before_any_allocation():
    import tracemalloc

    count = striped.stripe_count(65536, 65536)  # 65,536 stripes of one row
    body = struct.pack(">II", 8 * count, 0) * count  # every stripe empty: no stream byte for 2^32 pixels
    head = struct.pack(">BBIIBBBBI", 1, 2, 65536, 65536, 3, 4, 2, 0, 16)
    hostile = container.SIGNATURE + chunk(b"HEAD", head) + chunk(b"PLTE", bytes(48)) + chunk(b"INDX", body)
    tracemalloc.start()
    try:
        with pytest.raises(kvq.FormatError, match="too few for 4,294,967,296 pixels"):
            kvq.decode(hostile, max_pixels=None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(hostile) + (1 << 20)


def test_a_stripe_past_the_work_limit_is_not_written():
    y, x = np.mgrid[0:256, 0:256]
    pattern = (((x + y) % 3 + 3 * ((x // 2 + y) % 2)) % 8).astype(np.uint8)  # no pixel matches a neighbour: 4.5 decisions each
    assert striped.encode(pattern, 8, threads=1) is None
    palette = (np.arange(24) * 10).astype(np.uint8).reshape(8, 3)
    data = kvq.encode_indexed(palette=palette, indices=pattern, coding="striped")
    assert kvq.read_header(data).coding == 0  # fixed width instead: every file kvq writes is one it reads
    assert np.array_equal(kvq.decode_indexed(data).indices, pattern)
