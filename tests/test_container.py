"""The container: layout, every rejection rule with the offset it reports, header-only reads, the pixel limit."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest

import kvq
from kvq import container
from kvq.container import HEADER_SIZE, OVERHEAD, SIGNATURE, Header
from kvq.errors import ChecksumError, FormatError, ImageTooLargeError, NotKvqError, TruncatedError

from conftest import chunk

PALETTE = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])
INDICES = bytes([0x1A, 0x10])  # 0 1 2 / 2 0 1 at 2 bits
EXAMPLE = Header(3, 2, 3, 3, 2)


def head(width=3, height=2, channels=3, k=3, bits=2, major=1, minor=0, coding=0, flags=0) -> bytes:
    return struct.pack(">BBIIBBBBI", major, minor, width, height, channels, bits, coding, flags, k)


def build(*chunks: bytes) -> bytes:
    return SIGNATURE + b"".join(chunks)


GOOD = build(chunk(b"HEAD", head()), chunk(b"PLTE", PALETTE), chunk(b"INDX", INDICES))
HD, PL, IX = GOOD[8:38], GOOD[38:59], GOOD[59:]


def test_layout_constants():
    assert bytes.fromhex("894B56510D0A1A0A") == SIGNATURE
    assert (container.HEAD_LENGTH, HEADER_SIZE, OVERHEAD) == (18, 38, 62)


def test_writer_output_matches_the_spec_example_byte_for_byte():
    assert container.write(EXAMPLE, PALETTE, INDICES) == GOOD
    assert len(GOOD) == EXAMPLE.fixed_file_size == 62 + 9 + 2
    assert GOOD.hex() == (
        "894b56510d0a1a0a" "00000012" "48454144" "01" "00" "00000003" "00000002" "03" "02" "00" "00" "00000003" "414febc7"
        "00000009" "504c5445" "ff0000" "00ff00" "0000ff" "458785f5"
        "00000002" "494e4458" "1a10" "60c29e0e"
    )


def test_head_field_offsets():
    data = build(chunk(b"HEAD", head(0x01020304, 0x05060708, 4, 40000, 16, minor=7)))
    assert data[16] == 1 and data[17] == 7
    assert data[18:22] == bytes([1, 2, 3, 4]) and data[22:26] == bytes([5, 6, 7, 8])
    assert (data[26], data[27], data[28], data[29]) == (4, 16, 0, 0)
    assert struct.unpack(">I", data[30:34]) == (40000,)
    h = container.parse_header(data, max_pixels=None)
    assert (h.width, h.height, h.channels, h.k, h.bits, h.version) == (0x01020304, 0x05060708, 4, 40000, 16, (1, 7))


REJECTIONS = [
    (b"", NotKvqError, "bad signature", 0),
    (b"GIF89a" + GOOD[6:], NotKvqError, "bad signature", 0),
    (b"\x89KVQ\n" + GOOD[6:], NotKvqError, "bad signature", 0),
    (GOOD[:1], TruncatedError, "inside the signature", 1),
    (GOOD[:7], TruncatedError, "inside the signature", 7),
    (GOOD[:8], TruncatedError, "inside the HEAD chunk", 8),
    (GOOD[:37], TruncatedError, "inside the HEAD chunk", 37),
    (GOOD[:38], TruncatedError, "inside a chunk header", 38),
    (GOOD[:50], TruncatedError, "declares 9 bytes", 38),
    (GOOD[:58], TruncatedError, "declares 9 bytes", 38),
    (GOOD[:59], TruncatedError, "inside a chunk header", 59),
    (GOOD[:71], TruncatedError, "declares 2 bytes", 59),
    (GOOD[:72], TruncatedError, "declares 2 bytes", 59),
    (GOOD[:8] + chunk(b"PLTE", PALETTE) + HD + IX, FormatError, "first chunk must be HEAD", 12),
    (build(chunk(b"HEAD", head() + b"\0"), PL, IX), FormatError, "HEAD chunk is 19 bytes long", 8),
    (build(chunk(b"HEAD", b""), PL, IX), FormatError, "HEAD chunk is 0 bytes long", 8),
    (build(chunk(b"HEAD", head(major=3)), PL, IX), FormatError, "unsupported major version 3", 16),
    (build(chunk(b"HEAD", head(flags=1)), PL, IX), FormatError, "reserved flags byte is 1", 29),
    (build(chunk(b"HEAD", head(width=0)), PL, IX), FormatError, "has a zero dimension", 18),
    (build(chunk(b"HEAD", head(height=0)), PL, IX), FormatError, "has a zero dimension", 22),
    (build(chunk(b"HEAD", head(channels=5)), PL, IX), FormatError, "channels must be 1, 3 or 4, not 5", 26),
    (build(chunk(b"HEAD", head(k=0, bits=0)), PL, IX), FormatError, "palette size 0 is outside 1..65536", 30),
    (build(chunk(b"HEAD", head(k=2**32 - 1, bits=32)), PL, IX), FormatError, "is outside 1..65536", 30),
    (build(chunk(b"HEAD", head(k=4, bits=3)), PL, IX), FormatError, "a palette of 4 needs 2", 27),
    (build(chunk(b"HEAD", head(k=65536, bits=17)), PL, IX), FormatError, "a palette of 65536 needs 16", 27),
    (build(chunk(b"HEAD", head(coding=255)), PL, IX), FormatError, "index coding 255 is unknown", 28),
    (build(HD, chunk(b"a\xe9cd", b""), PL, IX), FormatError, "invalid chunk type", 42),
    (build(HD, PL, chunk(b"tE_t", b""), IX), FormatError, "invalid chunk type", 63),
    (build(HD, chunk(b"Tran", b"x"), PL, IX), FormatError, "unknown critical chunk Tran", 38),
    (build(HD, PL, HD, IX), FormatError, "second HEAD chunk", 59),
    (build(HD, PL, PL, IX), FormatError, "second PLTE chunk", 59),
    (build(HD, IX, PL), FormatError, "INDX chunk before PLTE", 38),
    (build(HD, chunk(b"PLTE", b""), IX), FormatError, "PLTE holds 0 bytes", 38),
    (build(HD, chunk(b"PLTE", PALETTE[:-1]), IX), FormatError, "PLTE holds 8 bytes", 38),
    (build(HD, PL, chunk(b"INDX", b"")), FormatError, "INDX holds 0 bytes, expected 2", 59),
    (build(HD, PL, chunk(b"INDX", INDICES + b"\0")), FormatError, "INDX holds 3 bytes, expected 2", 59),
    (GOOD[:34] + b"\0\0\0\0" + GOOD[38:], ChecksumError, "in chunk HEAD", 34),
    (GOOD[:20] + b"\x01" + GOOD[21:], ChecksumError, "in chunk HEAD", 34),
    (GOOD[:46] + b"\xfe" + GOOD[47:], ChecksumError, "in chunk PLTE", 55),
    (GOOD[:67] + b"\x1b" + GOOD[68:], ChecksumError, "in chunk INDX", 69),
    (build(HD, chunk(b"abcd", b"xyz")[:-1] + b"!", PL, IX), ChecksumError, "in chunk abcd", 49),
    (GOOD + b"\0", FormatError, "1 bytes after the INDX chunk", 73),
    (GOOD + GOOD, FormatError, "73 bytes after the INDX chunk", 73),
]


@pytest.mark.parametrize("data, error, fragment, offset", REJECTIONS, ids=[f"{r[2]} @{r[3]}" for r in REJECTIONS])
def test_rejection_rules_report_their_offset(data, error, fragment, offset):
    with pytest.raises(error) as info:
        container.parse(data)
    assert type(info.value) is error
    assert fragment in str(info.value)
    assert info.value.offset == offset
    assert str(info.value).endswith(f"(at byte {offset})")


def test_crc_covers_the_length_field_unlike_png():
    # A length changed together with a PNG-style CRC (type + data only) must not pass.
    png_crc = HD[:-4] + struct.pack(">I", zlib.crc32(HD[4:-4]))
    with pytest.raises(ChecksumError):
        container.parse(SIGNATURE + png_crc + PL + IX)
    stored = struct.unpack(">I", GOOD[34:38])[0]
    assert stored == zlib.crc32(GOOD[8:34]) != zlib.crc32(GOOD[12:34])


def test_higher_minor_version_is_accepted_and_reported():
    c = container.parse(build(chunk(b"HEAD", head(minor=200)), PL, IX))
    assert c.header.version == (1, 200)
    assert c.palette == PALETTE and bytes(c.indices) == INDICES


def test_unknown_major_version_is_refused_even_with_nonzero_flags():
    # Flags belong to v1: a file of another major version is refused for its version.
    with pytest.raises(FormatError, match="major version 2"):
        container.parse_header(build(chunk(b"HEAD", head(major=2, flags=7))))


def test_ancillary_chunks_are_skipped_or_kept_as_asked():
    data = build(HD, chunk(b"teXt", b"hello"), chunk(b"zzzz", b""), PL, chunk(b"aBCD", b"\x00\xff"), IX)
    c = container.parse(data)
    # By default no unknown chunk is kept, only counted.
    assert (c.ancillary, c.skipped) == ([], 3)
    kept = container.parse(data, keep={b"teXt", b"aBCD"})
    assert (kept.ancillary, kept.skipped) == ([(b"teXt", b"hello"), (b"aBCD", b"\x00\xff")], 1)
    assert (c.header, c.palette, bytes(c.indices)) == (EXAMPLE, PALETTE, INDICES)
    assert c.index_offset == len(data) - 4 - len(INDICES)
    assert data[c.index_offset : c.index_offset + 2] == INDICES


def test_write_parse_round_trip_with_ancillary():
    ancillary = [(b"meTa", b"\x01\x02"), (b"xxxx", b"")]
    data = container.write(EXAMPLE, PALETTE, INDICES, ancillary)
    assert len(data) == EXAMPLE.fixed_file_size + 12 + 2 + 12
    c = container.parse(data, keep={b"meTa", b"xxxx"})
    assert (c.header, c.palette, bytes(c.indices), c.ancillary) == (EXAMPLE, PALETTE, INDICES, ancillary)
    assert isinstance(c.indices, memoryview)  # a view of the file, not a copy


@pytest.mark.parametrize("kind", [b"HEAD", b"Text", b"te t", b"abc", b"abcde"])
def test_writer_refuses_non_ancillary_types(kind):
    with pytest.raises(FormatError):
        container.write(EXAMPLE, PALETTE, INDICES, [(kind, b"")])


def test_writer_refuses_inconsistent_parts():
    with pytest.raises(FormatError):
        container.write(EXAMPLE, PALETTE[:-3], INDICES)
    with pytest.raises(FormatError):
        container.write(EXAMPLE, PALETTE, INDICES + b"\0")
    with pytest.raises(FormatError):
        container.write(Header(3, 2, 3, 3, 1), PALETTE, b"\0")


@pytest.mark.parametrize(
    "k, bits",
    [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (16, 4), (17, 5), (255, 8), (256, 8), (257, 9), (32768, 15), (32769, 16), (65536, 16)],
)
def test_bits_for(k, bits):
    assert container.bits_for(k) == bits


def test_header_sizes():
    h = Header(1001, 3, 4, 300, 9)
    assert (h.n_pixels, h.palette_size, h.fixed_index_size) == (3003, 1200, (3003 * 9 + 7) // 8)
    assert h.fixed_file_size == 62 + 1200 + 3379
    with pytest.warns(DeprecationWarning):  # Pillow modes live in kvq.pixels now
        assert h.mode == "RGBA" and Header(1, 1, 1, 1, 0).mode == "L"


# --- header-only reading ----------------------------------------------------------------------------


class CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.requested: list[int] = []

    def read(self, size=-1):
        self.requested.append(size)
        return super().read(size)


def test_read_header_from_bytes_path_and_file_object(tmp_path):
    import kvq

    path = tmp_path / "x.kvq"
    path.write_bytes(GOOD)
    reader = CountingReader(GOOD)
    results = [kvq.read_header(GOOD), kvq.read_header(memoryview(GOOD)), kvq.read_header(str(path)),
               kvq.read_header(path), kvq.read_header(reader)]
    assert all(h == EXAMPLE for h in results)
    assert reader.requested == [38] and reader.tell() == 38


def test_read_header_needs_only_38_bytes():
    # The rest of the file is not looked at: a header reader on a partial download works.
    assert container.parse_header(GOOD[:38]) == EXAMPLE
    assert container.read_header_from(io.BytesIO(GOOD[:38])) == EXAMPLE
    with pytest.raises(TruncatedError):
        container.read_header_from(io.BytesIO(GOOD[:37]))


# --- the pixel limit --------------------------------------------------------------------------------


def test_pixel_limit_is_inclusive():
    assert container.parse(GOOD, max_pixels=6).header == EXAMPLE
    with pytest.raises(ImageTooLargeError, match="3x2 = 6 pixels exceeds the limit of 5"):
        container.parse(GOOD, max_pixels=5)
    assert container.parse(GOOD, max_pixels=None).header == EXAMPLE


@pytest.mark.parametrize("width, height", [(65535, 65535), (2**32 - 1, 2**32 - 1), (2**32 - 1, 1), (1, 2**32 - 1)])
def test_huge_header_in_tiny_file_is_refused_without_allocating(width, height):
    import kvq

    data = build(chunk(b"HEAD", head(width, height)), PL, IX)
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLargeError):
            kvq.decode(data)
        with pytest.raises(ImageTooLargeError):
            kvq.read_header(io.BytesIO(data))
        # With the limit off, the INDX length check refuses it, still before any pixel memory.
        with pytest.raises(FormatError, match="INDX holds 2 bytes"):
            kvq.decode(data, max_pixels=None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.parametrize("error", [FormatError, TruncatedError, ChecksumError])
def test_format_error_rebased_keeps_class_and_reason(error):
    inner = error("something wrong", 5)
    moved = inner.rebased(100)
    assert type(moved) is error and moved.offset == 105 and moved.reason == "something wrong"
    assert str(moved) == "something wrong (at byte 105)"
    assert error("no offset").rebased(7).offset == 7


def test_the_renamed_header_sizes_still_answer_with_a_deprecation_warning():
    import kvq

    header = kvq.read_header(kvq.encode(np.zeros((3, 5, 3), np.uint8) + np.arange(5, dtype=np.uint8)[None, :, None], k=4))
    with pytest.warns(DeprecationWarning, match="fixed_index_size"):
        assert header.index_size == header.fixed_index_size
    with pytest.warns(DeprecationWarning, match="fixed_file_size"):
        assert header.file_size == header.fixed_file_size


def _verdict(read) -> tuple[str, str]:
    try:
        read()
    except (kvq.KvqError, ValueError) as exc:
        return type(exc).__name__, str(exc)
    return "ok", ""


def _differential_files() -> list[bytes]:
    """Small files for the differential tests: fixed width and entropy coded, with metadata; and an INDX whose
    declared length breaks its coding's length rule and runs past the end of the file."""
    pixels = np.add.outer(np.arange(9), np.arange(7))[..., None].repeat(3, axis=2).astype(np.uint8) * 20
    fixed = kvq.encode(pixels, k=4, coding="fixed")
    palette = np.array([[0, 0, 0], [90, 20, 9], [255, 255, 255]], dtype=np.uint8)
    indices = (np.add.outer(np.arange(12), np.arange(16)) // 3 % 3).astype(np.uint8)
    entropy = kvq.encode_indexed(palette=palette, indices=indices, coding="entropy")
    with_text = fixed[:38] + chunk(b"tEXt", b"note\0a comment") + fixed[38:]
    bad_length = build(chunk(b"HEAD", head()), chunk(b"PLTE", PALETTE), chunk(b"INDX", INDICES, length=7))
    # Its length rule broken and its CRC too, all of its data there: the CRC is checked first.
    bad_crc = build(chunk(b"HEAD", head()), chunk(b"PLTE", PALETTE), chunk(b"INDX", bytes(7))[:-1] + b"?")
    return [fixed, entropy, with_text, bad_length, bad_crc]


def test_every_door_of_the_reader_gives_the_same_verdict_on_every_truncation(tmp_path):
    # The bytes reader and the lazy file reader (Pillow's open, then its load) are one reader and must say the
    # same thing about the same bytes: truncation before a chunk's own rules, as the spec orders them (a lazy
    # open that checked INDX's length rule before finding its data missing gave another error than parse()).
    from kvq.container import Reader, parse

    path = tmp_path / "cut.kvq"
    for data in _differential_files():
        assert kvq.read_header(data)
        for end in range(len(data) + 1):
            cut = data[:end]
            path.write_bytes(cut)
            expected = _verdict(lambda cut=cut: parse(cut))

            def lazy_file(path=path):
                with open(path, "rb") as fp:
                    Reader(fp, lazy=True).indices()

            def eager_file(path=path):
                with open(path, "rb") as fp:
                    Reader(fp).indices()

            doors = {
                "lazy bytes": lambda cut=cut: Reader(cut, lazy=True).indices(),
                "stream": lambda cut=cut: Reader(io.BytesIO(cut)).indices(),
                "lazy file": lazy_file,
                "file": eager_file,
            }
            for door, read in doors.items():
                assert _verdict(read) == expected, (door, end, len(data))
