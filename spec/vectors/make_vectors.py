"""Build the ``.kvq`` v1 test vectors: ``valid/``, ``invalid/`` and ``manifest.json``.

    python spec/vectors/make_vectors.py          # rewrite the committed files
    python spec/vectors/make_vectors.py --check  # exit 1 if they differ

Every byte is a function of this script alone: pixels and palettes come from
integer formulas, not from a random generator whose stream could change
between numpy versions, so the output never changes unless the script does.
Files that kvq's encoder would write are made with ``kvq.encode_indexed``;
the others (decoder-only cases and every invalid file) are assembled here
byte by byte, so that a bug in kvq's writer cannot hide in its own vectors.
"""

from __future__ import annotations

import itertools
import json
import math
import struct
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # run from a checkout without installing

import numpy as np  # noqa: E402

import kvq  # noqa: E402

SIGNATURE = b"\x89KVQ\r\n\x1a\n"


# --- byte-level helpers, independent of kvq.container --------------------------------------------


def chunk(kind: bytes, data: bytes, *, crc: int | None = None) -> bytes:
    length = struct.pack(">I", len(data))
    if crc is None:
        crc = zlib.crc32(length + kind + data)
    return length + kind + data + struct.pack(">I", crc)


def head(width, height, channels, k, bits=None, *, major=1, minor=0, coding=0, flags=0) -> bytes:
    if bits is None:
        bits = (k - 1).bit_length() if k >= 1 else 0
    return struct.pack(">BBIIBBBBI", major, minor, width, height, channels, bits, coding, flags, k)


def pack_indices(indices, bits: int, padding: int = 0) -> bytes:
    """MSB-first fixed-width packing, written out bit by bit as the spec states it."""
    acc, n = 0, 0
    for value in indices:
        acc = (acc << bits) | value
        n += bits
    pad = (-n) % 8
    acc = (acc << pad) | (padding & ((1 << pad) - 1))
    return acc.to_bytes((n + pad) // 8, "big") if n else b""


# --- deterministic content -----------------------------------------------------------------------


def palette_for(k: int, channels: int) -> np.ndarray:
    """``k`` distinct colours from a full-period LCG over 8*channels bits."""
    modulus = 1 << (8 * channels)
    assert k <= modulus
    x, out = 0x2545F491 % modulus, []
    for _ in range(k):
        # a = 1 (mod 4) and c odd: full period, so no colour repeats within k <= modulus.
        x = (x * 1103515245 + 12345) % modulus
        out.append([(x >> (8 * (channels - 1 - ch))) & 0xFF for ch in range(channels)])
    return np.array(out, dtype=np.uint8).reshape(k, channels)


def indices_for(width: int, height: int, k: int) -> np.ndarray:
    """Every entry used once before any repeats: (a*i + c) mod k with gcd(a, k) = 1."""
    n = width * height
    assert n >= k
    a = next(p for p in (7919, 7907, 7901) if math.gcd(p, k) == 1)
    flat = [(a * i + 3) % k for i in range(n)]
    return np.array(flat, dtype=np.uint16 if k > 256 else np.uint8).reshape(height, width)


# The worked example of the spec (section 9): 3x2 RGB, K = 3.
EXAMPLE_PALETTE = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
EXAMPLE_INDICES = np.array([[0, 1, 2], [2, 0, 1]], dtype=np.uint8)


def example_chunks(**head_fields) -> list[bytes]:
    """HEAD, PLTE, INDX of the worked example, with HEAD fields overridable."""
    fields = dict(width=3, height=2, channels=3, k=3)
    fields.update(head_fields)
    return [
        chunk(b"HEAD", head(**fields)),
        chunk(b"PLTE", EXAMPLE_PALETTE.tobytes()),
        chunk(b"INDX", pack_indices(EXAMPLE_INDICES.reshape(-1).tolist(), 2)),
    ]


def file_of(chunks: list[bytes]) -> bytes:
    return SIGNATURE + b"".join(chunks)


# Metadata (spec section 14), built byte by byte. The profile is a bare 132-byte ICC header with no tags: a reader
# returns the bytes, it does not interpret them.
ICC_PROFILE = (
    struct.pack(">I4sI4s4s4s", 132, b"kvq ", 0x04300000, b"mntr", b"RGB ", b"XYZ ")
    + bytes(12)  # creation date and time: none
    + b"acsp"
    + bytes(88)
    + struct.pack(">I", 0)  # tag count
)
# Big-endian TIFF, IFD0 with Make = "kvq" and Orientation = 1 (SHORT).
EXIF_TIFF = (
    b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 2)
    + struct.pack(">HHI4s", 0x010F, 2, 4, b"kvq\x00")
    + struct.pack(">HHIHH", 0x0112, 3, 1, 1, 0)
    + struct.pack(">I", 0)
)  # fmt: skip
RESO_300_150 = struct.pack(">II", 300_000, 150_500)

#: What a reader of spec section 14 returns for each vector that has metadata (others: nothing).
METADATA = {
    "rgb_3x2_k3_metadata": {"icc_profile": ICC_PROFILE.hex(), "exif": EXIF_TIFF.hex(), "dpi": [300.0, 150.5]},
    "rgb_3x2_k3_metadata_ignored": {"icc_profile": ICC_PROFILE.hex()},
}


# --- the vectors ---------------------------------------------------------------------------------


ENTROPY_EXAMPLE = np.array([[0, 0, 1, 1], [0, 2, 2, 1]], dtype=np.uint8)


def smooth_indices(width: int, height: int, k: int) -> np.ndarray:
    """A quantized diagonal ramp with a wave: runs, edges and new values, as photos have."""
    y, x = np.mgrid[0:height, 0:width]
    field = (x + 2 * y + 3 * np.sin(x / 3.0) * np.cos(y / 4.0)) / max(1, width + 2 * height) * k
    return np.clip(field.astype(np.int64), 0, k - 1).astype(np.uint8 if k <= 256 else np.uint16)


def entropy_file(palette: np.ndarray, indices: np.ndarray, *, k: int | None = None, extra: bytes = b"") -> bytes:
    """A coding-1 file, whatever fixed width would take (the encoder would pick the smaller)."""
    from kvq.coding import entropy

    k = len(palette) if k is None else k
    stream = entropy.encode(indices, len(palette))
    assert stream is not None
    height, width = indices.shape
    return file_of(
        [
            chunk(b"HEAD", head(width, height, palette.shape[1], k, minor=1, coding=1)),
            chunk(b"PLTE", palette[:k].tobytes()),
            chunk(b"INDX", stream + extra),
        ]
    )


def unlimited_stream(indices: np.ndarray, k: int) -> bytes:
    """The coding-1 stream of ``indices`` however many decisions it takes (kvq's encoder stops at rule 27's limit)."""
    from kvq.coding import entropy

    kernel = entropy._kernel()
    height, width = indices.shape
    n = width * height
    out = np.empty(31 * n + 16, dtype=np.uint8)
    status, used, _, _ = kernel.run(
        np.require(indices, entropy._index_type(k), ["C", "W"]).reshape(-1).copy(), width, height, k, entropy.table_bits(n), out, False,
        1 << 62, kernel.SQUASH_TABLE, kernel.STRETCH_TABLE, kernel.RATE_TABLE,
    )
    assert status == kernel.OK
    return out[:used].tobytes()


def unlimited_entropy_file(indices: np.ndarray, k: int) -> bytes:
    """A coding-1 file of ``indices`` however many decisions its stream takes."""
    height, width = indices.shape
    return file_of([chunk(b"HEAD", head(width, height, 1, k, minor=1, coding=1)), chunk(b"PLTE", bytes(range(k))),
                    chunk(b"INDX", unlimited_stream(indices, k))])


def stripe_rows(width: int) -> int:
    """kvq-coding-2.md section S2: rows per stripe."""
    return max(1, 65536 // width)


def stripe_streams(indices: np.ndarray, k: int) -> list[bytes]:
    """Each stripe's coding-1 stream (kvq-coding-2.md section S4), coded by coding 1's encoder on the stripe alone."""
    rows = stripe_rows(indices.shape[1])
    # Unlimited: coding 2's own work limit (rule 40) is what its invalid vector tests.
    return [unlimited_stream(indices[y : y + rows], k) for y in range(0, indices.shape[0], rows)]


def stripe_data(
    streams: list[bytes], *, ends: list[int] | None = None, crcs: list[int] | None = None, extra: bytes = b""
) -> bytes:
    """INDX data of coding 2 (section S3) built here byte by byte: the table of end offsets and CRC-32s, then the streams."""
    count = len(streams)
    if ends is None:
        ends = list(itertools.accumulate((len(stream) for stream in streams), initial=8 * count))[1:]
    if crcs is None:
        crcs = [zlib.crc32(stream) for stream in streams]
    return b"".join(struct.pack(">II", end, crc) for end, crc in zip(ends, crcs, strict=True)) + b"".join(streams) + extra


def striped_file(palette: np.ndarray, indices: np.ndarray, *, k: int | None = None, data: bytes | None = None) -> bytes:
    """A coding-2 file of ``indices`` (or of the INDX ``data`` given), whatever fixed width would take."""
    k = len(palette) if k is None else k
    height, width = indices.shape
    if data is None:
        data = stripe_data(stripe_streams(indices, len(palette)))
    return file_of(
        [
            chunk(b"HEAD", head(width, height, palette.shape[1], k, minor=2, coding=2)),
            chunk(b"PLTE", palette[:k].tobytes()),
            chunk(b"INDX", data),
        ]
    )


#: The worked example of kvq-coding-2.md section S7: 300 x 220 grey, K = 3, so h = 218 and S = 2 (the last stripe 2 rows).
STRIPED_PALETTE = np.array([[0], [128], [255]], dtype=np.uint8)


def striped_example() -> np.ndarray:
    indices = np.zeros((220, 300), dtype=np.uint8)
    indices[:, 150:] = 1
    indices[100:120, 100:200] = 2
    indices[217, 299] = 2
    indices[218, :10] = 2
    return indices


def dither_indices(width: int, height: int) -> np.ndarray:
    """Every pixel differs from its four neighbours, in a pattern a model learns: many decisions, few bytes (rule 40)."""
    y, x = np.mgrid[0:height, 0:width]
    return ((x % 5) + 5 * (y % 2)).astype(np.uint8)


def valid_vectors() -> list[tuple[str, bytes, np.ndarray, str, bool]]:
    """(name, file, expected pixels (H, W, C), note, written by kvq's encoder)."""
    out = []

    def encoded(name, width, height, channels, k, note):
        palette = palette_for(k, channels)
        indices = indices_for(width, height, k)
        out.append((name, kvq.encode_indexed(palette=palette, indices=indices, coding="fixed"), palette[indices], note, True))

    encoded("grey_1x1_k1", 1, 1, 1, 1, "smallest file: K = 1, bits 0, empty INDX")
    encoded("rgb_5x3_k1", 5, 3, 3, 1, "one colour: bits 0, INDX holds 0 bytes")
    encoded("rgba_13x7_k2", 13, 7, 4, 2, "bits 1; 91 index bits, 5 padding bits")
    out.append(
        (
            "rgb_3x2_k3",
            kvq.encode_indexed(palette=EXAMPLE_PALETTE, indices=EXAMPLE_INDICES, coding="fixed"),
            EXAMPLE_PALETTE[EXAMPLE_INDICES],
            "the worked example of the spec, byte for byte",
            True,
        )
    )
    encoded("grey_1x37_k5", 1, 37, 1, 5, "one column; bits 3")
    encoded("rgb_23x1_k7", 23, 1, 3, 7, "one row; bits 3, 69 index bits")
    encoded("grey_9x5_k16", 9, 5, 1, 16, "bits 4; 45 pixels end mid-byte")
    encoded("rgb_31x29_k16", 31, 29, 3, 16, "bits 4; odd width, rows not byte-aligned")
    encoded("rgba_17x15_k255", 17, 15, 4, 255, "bits 8 with K < 256: index 255 would be invalid")
    encoded("rgb_16x16_k256", 16, 16, 3, 256, "bits 8, every index value used")
    encoded("rgb_19x17_k257", 19, 17, 3, 257, "bits 9: indices straddle byte boundaries")
    encoded("rgba_40x20_k600", 40, 20, 4, 600, "bits 10, straight alpha")

    # Index coding 1 (kvq-coding-1.md). kvq's encoder writes coding 1 where it is
    # smaller than fixed width; the small ones are forced, so decoders see
    # every path of the coding (literals, the implied last candidate, nodes >= 256).
    def entropy(name, palette, indices, note):
        data = entropy_file(palette, indices)
        by_encoder = kvq.encode_indexed(palette=palette, indices=indices) == data
        out.append((name, data, palette[indices], note, by_encoder))

    entropy("entropy_4x2_k3", EXAMPLE_PALETTE, ENTROPY_EXAMPLE, "coding 1: the worked example of kvq-coding-1.md section E8")
    entropy("entropy_1x1_k1", palette_for(1, 3), np.zeros((1, 1), np.uint8), "coding 1, K = 1: no decision, only the 4 flush bytes")
    entropy("entropy_rgb_64x48_k16", palette_for(16, 3), smooth_indices(64, 48, 16), "coding 1, bits 4, a smooth field")
    entropy("entropy_grey_1x50_k5", palette_for(5, 1), smooth_indices(1, 50, 5), "coding 1, one column: UR is U")
    entropy("entropy_rgba_40x30_k300", palette_for(300, 4), smooth_indices(40, 30, 300), "coding 1, bits 9: nodes >= 256 hashed")
    entropy("entropy_grey_7x5_k65536", (np.arange(65536) & 0xFF).astype(np.uint8).reshape(65536, 1),
            (np.arange(35, dtype=np.int64).reshape(5, 7) * 1871 % 65536).astype(np.uint16), "coding 1, K = 65536, bits 16")
    entropy("entropy_rgb_2x2_k4_implied", palette_for(4, 3), np.array([[0, 1], [2, 3]], np.uint8),
            "coding 1: at (1,1) the four candidates are all K entries, the last is implied")

    # Index coding 2 (kvq-coding-2.md): a stripe table, then one coding-1 stream per stripe. Images of more than
    # one stripe have more than 65,536 pixels: grey keeps their raw pixels small.
    def striped(name, palette, indices, note):
        data = striped_file(palette, indices)
        by_encoder = kvq.encode_indexed(palette=palette, indices=indices, coding="striped") == data
        out.append((name, data, palette[indices], note, by_encoder))

    striped("striped_grey_300x220_k3", STRIPED_PALETTE, striped_example(),
            "coding 2: the worked example of kvq-coding-2.md section S7, two stripes of 218 and 2 rows")
    striped("striped_rgb_64x48_k16", palette_for(16, 3), smooth_indices(64, 48, 16), "coding 2, one stripe, bits 4")
    striped("striped_1x1_k1", palette_for(1, 3), np.zeros((1, 1), np.uint8),
            "coding 2, K = 1: one stripe, its table entry and its 4 flush bytes")
    striped("striped_rgba_40x30_k300", palette_for(300, 4), smooth_indices(40, 30, 300), "coding 2, bits 9, one stripe")
    striped("striped_grey_1x65600_k2", STRIPED_PALETTE[:2], (np.arange(65600) // 700 % 2).astype(np.uint8).reshape(65600, 1),
            "coding 2, one column: h = 65536, a second stripe of 64 rows")

    out.append(
        (
            "rgb_3x2_k3_metadata",
            kvq.encode_indexed(
                palette=EXAMPLE_PALETTE,
                indices=EXAMPLE_INDICES,
                metadata=kvq.Metadata(icc_profile=ICC_PROFILE, exif=EXIF_TIFF, dpi=(300, 150.5)),
                coding="fixed",
            ),
            EXAMPLE_PALETTE[EXAMPLE_INDICES],
            "the worked example with an ICC profile, EXIF and 300 x 150.5 dpi (section 14)",
            True,
        )
    )

    # Decoder-only cases: files kvq's encoder never writes but every decoder must accept.
    chunks = example_chunks()
    out.append(
        (
            "rgb_3x2_k3_minor9",
            file_of([chunk(b"HEAD", head(3, 2, 3, 3, minor=9))] + chunks[1:]),
            EXAMPLE_PALETTE[EXAMPLE_INDICES],
            "version 1.9: a higher minor version is read as 1.0",
            False,
        )
    )
    out.append(
        (
            "rgb_3x2_k3_ancillary",
            file_of(
                chunks[:1]
                + [chunk(b"teXt", b"an ancillary chunk no reader knows"), chunk(b"zzzz", b"")]
                + chunks[1:2]
                + [chunk(b"aFTr", bytes(range(20)))]
                + chunks[2:]
            ),
            EXAMPLE_PALETTE[EXAMPLE_INDICES],
            "three unknown ancillary chunks (one empty, one between PLTE and INDX), all skipped",
            False,
        )
    )
    out.append(
        (
            "rgb_3x2_k3_metadata_ignored",
            file_of(
                chunks[:1]
                + [
                    chunk(b"iccp", ICC_PROFILE),
                    chunk(b"exif", b"Exif\x00\x00" + EXIF_TIFF),
                    chunk(b"reso", RESO_300_150[:6]),
                    chunk(b"iCCP", b"not one of kvq's types"),
                ]
                + chunks[1:2]
                + [chunk(b"iccp", ICC_PROFILE[:-4] + b"\x00\x00\x00\x01"), chunk(b"reso", RESO_300_150)]
                + chunks[2:]
            ),
            EXAMPLE_PALETTE[EXAMPLE_INDICES],
            "metadata a reader ignores: EXIF with JPEG's Exif\\0\\0 first, a 6-byte reso (the first reso counts,"
            " so the valid one after PLTE is ignored too), a second iccp, and iCCP (unknown type)",
            False,
        )
    )
    palette = np.array([[10, 20, 30], [40, 50, 60], [10, 20, 30], [70, 80, 90]], dtype=np.uint8)
    indices = np.array([[0, 2, 0, 1], [1, 2, 2, 0]], dtype=np.uint8)
    out.append(
        (
            "rgb_4x2_k4_dup_unused",
            file_of(
                [
                    chunk(b"HEAD", head(4, 2, 3, 4)),
                    chunk(b"PLTE", palette.tobytes()),
                    chunk(b"INDX", pack_indices(indices.reshape(-1).tolist(), 2)),
                ]
            ),
            palette[indices],
            "entry 2 duplicates entry 0 and entry 3 is unused: allowed, though kvq never writes it",
            False,
        )
    )
    grey = (np.arange(65536) & 0xFF).astype(np.uint8).reshape(65536, 1)
    indices = np.array([[0, 65535, 256], [40000, 1, 65280]], dtype=np.uint16)
    out.append(
        (
            "grey_3x2_k65536",
            file_of(
                [
                    chunk(b"HEAD", head(3, 2, 1, 65536)),
                    chunk(b"PLTE", grey.tobytes()),
                    chunk(b"INDX", pack_indices(indices.reshape(-1).tolist(), 16)),
                ]
            ),
            grey[indices],
            "K = 65536, bits 16 (the largest); the grey palette repeats every 256 entries",
            False,
        )
    )
    return out


def invalid_vectors() -> list[tuple[str, bytes, int, str, str, int | None, str]]:
    """(name, file, rule, error class, message fragment, offset, note)."""
    base = example_chunks()
    good = file_of(base)
    hd, pl, ix = base
    idx = EXAMPLE_INDICES.reshape(-1).tolist()
    v = []

    def add(name, data, rule, error, message, offset, note):
        v.append((name, data, rule, error, message, offset, note))

    def with_head(**fields):
        return file_of(example_chunks(**fields))

    def flip(data: bytes, at: int) -> bytes:
        return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]

    add("empty", b"", 1, "NotKvqError", "bad signature", 0, "zero bytes")
    add("png_signature", b"\x89PNG\r\n\x1a\n" + good[8:], 1, "NotKvqError", "bad signature", 0, "a PNG signature")
    add("newline_translated", good.replace(b"\r\n", b"\n"), 1, "NotKvqError", "bad signature", 0,
        "CR LF turned into LF by a text-mode copy")
    add("seven_bit", bytes(b & 0x7F for b in good), 1, "NotKvqError", "bad signature", 0, "bit 7 stripped")

    add("truncated_signature", good[:5], 2, "TruncatedError", "inside the signature", 5, "5 bytes")
    add("truncated_head", good[:30], 2, "TruncatedError", "inside the HEAD chunk", 30, "ends in HEAD")
    add("truncated_after_head", good[:38], 2, "TruncatedError", "inside a chunk header", 38, "no PLTE, no INDX")
    add("truncated_plte", good[:50], 2, "TruncatedError", "declares 9 bytes", 38, "ends in PLTE data")
    add("missing_indx", good[:59], 2, "TruncatedError", "inside a chunk header", 59, "ends after PLTE")
    add("truncated_indx", good[:-1], 2, "TruncatedError", "declares 2 bytes", 59, "last CRC byte missing")

    add("first_chunk_not_head", file_of([chunk(b"teXt", b"x")] + base), 3, "FormatError",
        "first chunk must be HEAD", 12, "an ancillary chunk before HEAD")
    add("head_length_19", file_of([chunk(b"HEAD", head(3, 2, 3, 3) + b"\0"), pl, ix]), 4, "FormatError",
        "HEAD chunk is 19 bytes long", 8, "HEAD one byte too long")
    add("head_length_17", SIGNATURE + chunk(b"HEAD", head(3, 2, 3, 3)[:17]) + pl + ix, 4, "FormatError",
        "HEAD chunk is 17 bytes long", 8, "HEAD one byte too short")
    add("major_version_2", with_head(major=2), 5, "FormatError", "unsupported major version 2", 16, "")
    add("major_version_0", with_head(major=0), 5, "FormatError", "unsupported major version 0", 16, "")
    add("flags_nonzero", with_head(flags=0x80), 6, "FormatError", "reserved flags byte is 128", 29, "")
    add("zero_width", with_head(width=0), 7, "FormatError", "zero dimension", 18, "")
    add("zero_height", with_head(height=0), 7, "FormatError", "zero dimension", 22, "")
    add("too_large", with_head(width=65535, height=65535), 8, "ImageTooLargeError", "exceeds the limit", None,
        "header claims 65535x65535 in a 73-byte file: refused from the header, before any allocation")
    add("channels_2", with_head(channels=2), 9, "FormatError", "channels must be 1, 3 or 4, not 2", 26, "")
    add("channels_0", with_head(channels=0), 9, "FormatError", "channels must be 1, 3 or 4, not 0", 26, "")
    add("k_zero", with_head(k=0, bits=0), 10, "FormatError", "palette size 0 is outside", 30, "")
    add("k_65537", with_head(k=65537, bits=17), 10, "FormatError", "palette size 65537 is outside", 30, "")
    add("bits_too_many", with_head(bits=8), 11, "FormatError", "bits per index is 8", 27, "K = 3 needs 2")
    add("bits_too_few", with_head(bits=1), 11, "FormatError", "bits per index is 1", 27, "K = 3 needs 2")
    add("bits_k1", with_head(k=1, bits=1), 11, "FormatError", "bits per index is 1", 27, "K = 1 needs 0")
    add("coding_3", with_head(coding=3), 12, "FormatError", "index coding 3 is unknown", 28, "")
    add("coding_255", with_head(coding=255), 12, "FormatError", "index coding 255 is unknown", 28, "")
    add("chunk_type_digit", file_of([hd, chunk(b"te5t", b""), pl, ix]), 13, "FormatError",
        "invalid chunk type", 42, "a digit in a chunk type")
    add("chunk_type_space", file_of([hd, pl, chunk(b"IND ", b""), ix]), 13, "FormatError",
        "invalid chunk type", 63, "a space in a chunk type")
    add("unknown_critical", file_of([hd, chunk(b"ZZZZ", b""), pl, ix]), 14, "FormatError",
        "unknown critical chunk ZZZZ", 38, "upper-case first letter: must be understood")
    add("duplicate_head", file_of([hd, hd, pl, ix]), 15, "FormatError", "second HEAD chunk", 38, "")
    add("duplicate_plte", file_of([hd, pl, pl, ix]), 15, "FormatError", "second PLTE chunk", 59, "")
    add("indx_before_plte", file_of([hd, ix, pl]), 16, "FormatError", "INDX chunk before PLTE", 38, "")
    add("no_plte", file_of([hd, ix]), 16, "FormatError", "INDX chunk before PLTE", 38, "")
    add("plte_short", file_of([hd, chunk(b"PLTE", EXAMPLE_PALETTE.tobytes()[:8]), ix]), 17, "FormatError",
        "PLTE holds 8 bytes", 38, "")
    add("plte_long", file_of([hd, chunk(b"PLTE", EXAMPLE_PALETTE.tobytes() + b"\0\0\0"), ix]), 17,
        "FormatError", "PLTE holds 12 bytes", 38, "an extra entry beyond K")
    add("indx_short", file_of([hd, pl, chunk(b"INDX", pack_indices(idx, 2)[:1])]), 18, "FormatError",
        "INDX holds 1 bytes, expected 2", 59, "")
    add("indx_long", file_of([hd, pl, chunk(b"INDX", pack_indices(idx, 2) + b"\0")]), 18, "FormatError",
        "INDX holds 3 bytes, expected 2", 59, "a whole zero byte of padding too many")
    add("crc_head", flip(good, 36), 19, "ChecksumError", "CRC-32 mismatch in chunk HEAD", 34, "")
    add("crc_head_data", flip(good, 21), 19, "ChecksumError", "CRC-32 mismatch in chunk HEAD", 34,
        "width changed to 2 without updating the CRC")
    add("crc_plte_data", flip(good, 50), 19, "ChecksumError", "CRC-32 mismatch in chunk PLTE", 55, "")
    add("crc_indx_data", flip(good, 68), 19, "ChecksumError", "CRC-32 mismatch in chunk INDX", 69, "")
    add("crc_ancillary", file_of([hd, chunk(b"teXt", b"abc", crc=0), pl, ix]), 19, "ChecksumError",
        "CRC-32 mismatch in chunk teXt", 49, "ancillary chunks are checked too")
    add("crc_png_style", SIGNATURE + b"".join(c[:-4] + struct.pack(">I", zlib.crc32(c[4:-4])) for c in base),
        19, "ChecksumError", "CRC-32 mismatch in chunk HEAD", 34, "CRC over type and data only, as PNG does")
    add("padding_nonzero", file_of([hd, pl, chunk(b"INDX", pack_indices(idx, 2, padding=1))]), 20, "FormatError",
        "padding bits after the last index are not zero", 68, "the last of 4 padding bits set")
    bad = idx.copy()
    bad[4] = 3
    add("index_equals_k", file_of([hd, pl, chunk(b"INDX", pack_indices(bad, 2))]), 21, "FormatError",
        "index 3 of pixel 4 is >= palette size 3", 68, "")
    palette = palette_for(257, 3)
    indices = indices_for(19, 17, 257).reshape(-1).tolist()
    indices[300] = 511
    add("index_ge_k_bits9", file_of([chunk(b"HEAD", head(19, 17, 3, 257)), chunk(b"PLTE", palette.tobytes()),
        chunk(b"INDX", pack_indices(indices, 9))]), 21, "FormatError", "index 511 of pixel 300 is >= palette size 257",
        38 + 12 + 771 + 8 + 300 * 9 // 8, "bits 9, K = 257")
    # Index coding 1 (kvq-coding-1.md section E7).
    photo = entropy_file(palette_for(16, 3), smooth_indices(64, 48, 16))
    indx_at = photo.rindex(b"INDX") - 4  # INDX chunk start
    stream = photo[indx_at + 8 : -4]
    add("entropy_indx_3_bytes", file_of([chunk(b"HEAD", head(3, 2, 3, 3, minor=1, coding=1)), pl, chunk(b"INDX", b"\0\0\0")]),
        23, "TruncatedError", "entropy-coded indices end early", 70, "fewer than the 4 bytes the coder starts with")
    add("entropy_indx_empty", file_of([chunk(b"HEAD", head(3, 2, 3, 3, minor=1, coding=1)), pl, chunk(b"INDX", b"")]),
        23, "TruncatedError", "entropy-coded indices end early", 67, "an empty coding-1 INDX")
    add("entropy_truncated_stream", photo[:indx_at] + chunk(b"INDX", stream[: len(stream) // 2]), 23, "TruncatedError",
        "entropy-coded indices end early", indx_at + 8 + len(stream) // 2, "half the stream: the decoder runs out")
    add("entropy_literal_ge_k", entropy_file(palette_for(4, 3), np.array([[0, 3]], np.uint8), k=3), 24, "FormatError",
        "is not below K = 3", 71, "a one-row image coded with K = 4, declared K = 3: the literal 3 is >= K")
    add("entropy_trailing_in_indx", entropy_file(palette_for(16, 3), smooth_indices(64, 48, 16), extra=b"\0"), 25,
        "FormatError", "bytes after the last entropy-coded index", indx_at + 8 + len(stream), "one byte more than the decoder reads")
    add("entropy_k1_trailing", file_of([chunk(b"HEAD", head(3, 2, 3, 1, minor=1, coding=1)), chunk(b"PLTE", bytes(3)),
        chunk(b"INDX", bytes(5))]), 25, "FormatError", "1 bytes after the last entropy-coded index", 65,
        "K = 1 codes no decision: its stream is the 4 flush bytes, known from INDX's length")
    add("entropy_too_short_for_its_pixels", file_of([chunk(b"HEAD", head(90845, 1, 3, 2, minor=1, coding=1)),
        chunk(b"PLTE", palette_for(2, 3).tobytes()), chunk(b"INDX", bytes(4))]), 26, "FormatError",
        "too few for 90,845 pixels", 56, "22,711 x 4 + 1 pixels in 4 bytes: one pixel more than the bound")
    add("entropy_13000x13000_in_84_bytes", file_of([chunk(b"HEAD", head(13000, 13000, 3, 2, minor=1, coding=1)),
        chunk(b"PLTE", palette_for(2, 3).tobytes()), chunk(b"INDX", bytes(16))]), 26, "FormatError",
        "too few for 169,000,000 pixels", 56, "refused from INDX's length, before 169 million pixels are walked")
    period = np.array([[(x + 3 * y) % 5 for x in range(100)] for y in range(100)], np.uint8)
    add("entropy_past_the_work_limit", unlimited_entropy_file(period, 5), 27, "FormatError", "the work limit", 97,
        "K = 5, each pixel unlike its 4 distinct neighbours: 7 decisions a pixel, all predictable, in a few bytes")


    # Index coding 2 (kvq-coding-2.md section S5). INDX's own CRC is always right: only coding 2's rules break.
    example = striped_example()
    streams = stripe_streams(example, 3)
    s0, s1 = len(streams[0]), len(streams[1])
    d = 38 + 12 + 3 + 8  # INDX data start (D) of a coding-2 file with a 3-entry grey palette and no ancillary chunk

    def striped_bad(name, data, rule, error, message, offset, note, *, k=3, indices=example, palette=STRIPED_PALETTE):
        add(name, striped_file(palette, indices, k=k, data=data), rule, error, message, offset, note)

    striped_bad("striped_indx_short_for_table", stripe_data(streams)[:15], 30, "FormatError",
                "too few for the table of its 2 stripes", d - 8, "15 bytes: the table of 2 stripes takes 16")
    striped_bad("striped_indx_short_for_pixels", stripe_data([b"\0", b""]), 31, "FormatError", "too few for 66,000 pixels",
                d - 8, "one stream byte for 66,000 pixels: more than 65,536 a byte")
    one_colour = {"k": 1, "palette": STRIPED_PALETTE[:1], "indices": np.zeros((220, 300), np.uint8)}
    striped_bad("striped_k1_wrong_length", stripe_data([bytes(4), bytes(5)]), 31, "FormatError",
                "with K = 1 its 2 stripes take exactly 24", d - 2 - 8,
                "K = 1: every stripe is 4 flush bytes (a 1-entry palette: INDX starts 2 bytes earlier)", **one_colour)
    striped_bad("striped_unsorted", stripe_data(streams, ends=[16 + s0 + s1, 16 + s0]), 32, "FormatError", "before it starts",
                d + 8, "end offsets swapped: stripe 1 ends before stripe 0 does")
    striped_bad("striped_end_in_table", stripe_data(streams, ends=[8, 16 + s0 + s1]), 32, "FormatError", "before it starts",
                d, "stripe 0 ends inside the table")
    striped_bad("striped_end_past_indx", stripe_data(streams, ends=[16 + s0 + s1 + 1, 16 + s0 + s1]), 33, "FormatError",
                "past the", d, "stripe 0 ends one byte past INDX")
    striped_bad("striped_bytes_after_last", stripe_data(streams, extra=b"\0"), 34, "FormatError",
                "1 bytes of INDX after the last stripe", d + 16 + s0 + s1, "one byte after the last stripe that no table entry covers")
    striped_bad("striped_empty_stripe", stripe_data([b"", streams[0] + streams[1]], crcs=[0, 0]), 35, "FormatError",
                "too few for its 65,400 pixels", d, "stripe 0 is empty, stripe 1 holds both streams")
    striped_bad("striped_k1_stripe_5_bytes", stripe_data([bytes(5), bytes(3)]), 35, "FormatError",
                "with K = 1 a stripe is its 4-byte flush", d - 2, "K = 1: 5 and 3 bytes, 8 in all", **one_colour)
    striped_bad("striped_crc", stripe_data(streams, crcs=[zlib.crc32(streams[0]), zlib.crc32(streams[1]) ^ 1]), 36,
                "ChecksumError", "CRC-32 mismatch in stripe 1", d + 12, "stripe 1's stored CRC-32 is off by one bit")
    short = streams[0][: s0 // 2]
    striped_bad("striped_ends_early", stripe_data([short, streams[1]]), 37, "TruncatedError", "stripe 0 ends early",
                d + 16 + len(short), "half of stripe 0's stream, the table and CRCs made to match")
    striped_bad("striped_ends_late", stripe_data([streams[0] + b"\0", streams[1]]), 39, "FormatError",
                "bytes after the last index of stripe 0", d + 16 + s0, "stripe 0 one byte longer than its stream")
    literal = np.array([[0, 3]], np.uint8)
    lit_stream = stripe_streams(literal, 4)
    add("striped_literal_ge_k", striped_file(palette_for(4, 3), literal, k=3, data=stripe_data(lit_stream)), 38, "FormatError",
        "is not below K = 3", 38 + 12 + 9 + 8 + 8 + 4, "a one-row image coded with K = 4, declared K = 3: the literal 3 is >= K")
    dither = dither_indices(64, 48)
    dither_streams = stripe_streams(dither, 10)
    dd = 38 + 12 + 30 + 8
    worked = striped_file(palette_for(10, 3), dither, data=stripe_data(dither_streams))
    limit = 2 * 64 * 48 + 64 * len(dither_streams[0])
    offset = dd + 8 + 4 + kvq_work_position(dither, 10, limit)  # the decoder reads 4 bytes before its first decision
    add("striped_work_limit", worked, 40, "FormatError", "needs more than", offset,
        f"every pixel a literal of a learned pattern: more than 2 N + 64 L = {limit:,} decisions in {len(dither_streams[0])} bytes")
    add("trailing_byte", good + b"\0", 22, "FormatError", "1 bytes after the INDX chunk", 73, "")
    add("chunk_after_indx", good + chunk(b"teXt", b""), 22, "FormatError", "12 bytes after the INDX chunk", 73,
        "even an ancillary chunk")
    return v


def kvq_work_position(indices: np.ndarray, k: int, limit: int) -> int:
    """Where (stream position) coding 1's encoder is when its decision count reaches ``limit``: rule 40's offset."""
    from kvq.coding import _entropy_kernel as tables
    from kvq.coding import _striped_kernel, entropy

    flat = np.ascontiguousarray(indices, dtype=np.uint8).reshape(-1).copy()
    out = np.empty(31 * flat.size + 16, dtype=np.uint8)
    status, pos, _, _ = _striped_kernel.run(flat, indices.shape[1], indices.shape[0], k, entropy.table_bits(flat.size), out, False,
                                            tables.SQUASH_TABLE, tables.STRETCH_TABLE, tables.RATE_TABLE, limit)  # fmt: skip
    assert status == _striped_kernel.WORK
    return int(pos)


def build() -> dict[str, bytes]:
    """Every file of this folder that the script owns, by path relative to it."""
    files: dict[str, bytes] = {}
    manifest: dict = {
        "format": "kvq",
        "spec": "../kvq-v1.md",
        "pixels": "raw bytes, row-major, channels interleaved (grey; R,G,B; R,G,B,A), no header",
        "valid": [],
        "invalid": [],
    }
    for name, data, pixels, note, by_encoder in valid_vectors():
        height, width, channels = pixels.shape
        k = struct.unpack_from(">I", data, 30)[0]
        files[f"valid/{name}.kvq"] = data
        files[f"valid/{name}.raw"] = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
        manifest["valid"].append(
            {
                "file": f"valid/{name}.kvq",
                "pixels": f"valid/{name}.raw",
                "width": width,
                "height": height,
                "channels": channels,
                "k": k,
                "bits": (k - 1).bit_length(),
                "coding": data[28],
                "size": len(data),
                "encoder_output": by_encoder,
                "metadata": METADATA.get(name, {}),
                "note": note,
            }
        )
    for name, data, rule, error, message, offset, note in invalid_vectors():
        files[f"invalid/{name}.kvq"] = data
        manifest["invalid"].append(
            {
                "file": f"invalid/{name}.kvq",
                "rule": rule,
                "error": error,
                "message": message,
                "offset": offset,
                "note": note,
            }
        )
    files["manifest.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
    return files


def main(argv: list[str]) -> int:
    files = build()
    if "--check" in argv:
        stale = [p for p, data in files.items() if not (HERE / p).is_file() or (HERE / p).read_bytes() != data]
        extra = [
            str(p.relative_to(HERE))
            for d in ("valid", "invalid")
            for p in sorted((HERE / d).glob("*"))
            if str(p.relative_to(HERE)) not in files
        ]
        for p in stale + extra:
            print(f"differs: {p}")
        return 1 if stale or extra else 0
    for d in ("valid", "invalid"):
        (HERE / d).mkdir(exist_ok=True)
        for p in (HERE / d).glob("*"):
            if f"{d}/{p.name}" not in files:
                p.unlink()
    for p, data in files.items():
        (HERE / p).write_bytes(data)
    print(f"wrote {len(files)} files, {sum(map(len, files.values())):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
