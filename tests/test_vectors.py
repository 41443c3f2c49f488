"""The spec's test vectors: kvq against each of them, the spec's own pseudo-code decoder against each of them, and
the generator script reproducing the committed bytes."""

from __future__ import annotations

import importlib.util
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import spec_coding1
import spec_coding2

import kvq

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())


def _id(entry: dict) -> str:
    return entry["file"].split("/")[-1].removesuffix(".kvq")


@pytest.mark.parametrize("entry", MANIFEST["valid"], ids=_id)
def test_valid_vector_decodes_to_its_pixels(entry):
    data = (VECTORS / entry["file"]).read_bytes()
    expected = (VECTORS / entry["pixels"]).read_bytes()
    assert len(data) == entry["size"]
    assert len(expected) == entry["width"] * entry["height"] * entry["channels"]

    pixels = kvq.decode(data)
    shape = (entry["height"], entry["width"]) + ((entry["channels"],) if entry["channels"] > 1 else ())
    assert pixels.shape == shape and pixels.dtype == np.uint8
    assert pixels.tobytes() == expected

    header = kvq.read_header(data)
    assert (header.width, header.height, header.channels, header.k, header.bits) == (
        entry["width"], entry["height"], entry["channels"], entry["k"], entry["bits"],
    )
    assert header.coding == entry["coding"]
    if entry["encoder_output"] and header.coding == 0:  # kvq writes no chunk beyond the fixed overhead but the metadata it is given
        metadata = entry["metadata"]
        extra = sum(12 + len(bytes.fromhex(metadata[key])) for key in ("icc_profile", "exif") if key in metadata)
        extra += 12 + 8 if "dpi" in metadata else 0
        index_bytes = -(-entry["width"] * entry["height"] * entry["bits"] // 8)
        assert len(data) == 62 + entry["channels"] * entry["k"] + index_bytes + extra


@pytest.mark.parametrize("entry", [e for e in MANIFEST["valid"] if e["encoder_output"]], ids=_id)
def test_encoder_output_vectors_are_what_the_encoder_writes(entry):
    # Re-encoding the decoded palette and indices must give the same bytes: kvq's writer is canonical.
    data = (VECTORS / entry["file"]).read_bytes()
    decoded = kvq.decode_indexed(data)
    name = kvq.coding.by_code(decoded.header.coding).name
    encoded = kvq.encode_indexed(palette=decoded.palette, indices=decoded.indices, metadata=decoded.metadata, coding=name)
    assert encoded == data


def _manifest_metadata(metadata: kvq.Metadata) -> dict:
    out: dict = {}
    if metadata.icc_profile is not None:
        out["icc_profile"] = metadata.icc_profile.hex()
    if metadata.exif is not None:
        out["exif"] = metadata.exif.hex()
    if metadata.dpi is not None:
        out["dpi"] = list(metadata.dpi)
    return out


@pytest.mark.parametrize("entry", MANIFEST["valid"], ids=_id)
def test_valid_vector_metadata(entry):
    data = (VECTORS / entry["file"]).read_bytes()
    assert _manifest_metadata(kvq.decode_indexed(data).metadata) == entry["metadata"]
    assert spec_metadata(data) == entry["metadata"]


def test_metadata_vectors_are_there():
    with_metadata = {_id(e): sorted(e["metadata"]) for e in MANIFEST["valid"] if e["metadata"]}
    assert with_metadata == {
        "rgb_3x2_k3_metadata": ["dpi", "exif", "icc_profile"],
        "rgb_3x2_k3_metadata_ignored": ["icc_profile"],
    }


@pytest.mark.parametrize("entry", MANIFEST["invalid"], ids=_id)
def test_invalid_vector_is_refused(entry):
    data = (VECTORS / entry["file"]).read_bytes()
    error = getattr(kvq, entry["error"])
    with pytest.raises(error) as info:
        kvq.decode(data)
    assert type(info.value) is error
    assert entry["message"] in str(info.value)
    assert getattr(info.value, "offset", None) == entry["offset"]
    if entry["offset"] is not None:
        assert str(info.value).endswith(f"(at byte {entry['offset']})")


def test_every_rejection_rule_has_a_vector():
    # 26 and 27 are coding 1's limits; coding 2 has 30 to 40.
    assert sorted({e["rule"] for e in MANIFEST["invalid"]}) == [*range(1, 28), *range(30, 41)]


# --- the pseudo-code decoder of spec section 12, transcribed, as an independent implementation ----


class Rejected(Exception):
    def __init__(self, rule: int) -> None:
        super().__init__(rule)
        self.rule = rule


SIGNATURE = bytes.fromhex("894B56510D0A1A0A")


def _u32(f: bytes, at: int) -> int:
    return struct.unpack_from(">I", f, at)[0]


def spec_decode(f: bytes, max_pixels: int = 178_956_970):
    def reject(rule):
        raise Rejected(rule)

    if len(f) == 0 or f[:8] != SIGNATURE[: len(f)]:
        reject(1)
    if len(f) < 8:
        reject(2)
    if len(f) >= 16 and f[12:16] != b"HEAD":
        reject(3)
    if len(f) < 38:
        reject(2)
    if _u32(f, 8) != 18:
        reject(4)
    if _u32(f, 34) != zlib.crc32(f[8:34]):
        reject(19)
    major, w, h, c, bits, coding, flags, k = f[16], _u32(f, 18), _u32(f, 22), f[26], f[27], f[28], f[29], _u32(f, 30)
    if major != 1:
        reject(5)
    if flags != 0:
        reject(6)
    if w == 0 or h == 0:
        reject(7)
    if w > max_pixels // h:
        reject(8)
    if c not in (1, 3, 4):
        reject(9)
    if not 1 <= k <= 65536:
        reject(10)
    if bits != (k - 1).bit_length():
        reject(11)
    if coding not in (0, 1, 2):
        reject(12)
    pos, palette = 38, None
    while True:
        if len(f) - pos < 12:
            reject(2)
        length, kind = _u32(f, pos), f[pos + 4 : pos + 8]
        if not all(65 <= b <= 90 or 97 <= b <= 122 for b in kind):
            reject(13)
        if length > len(f) - pos - 12:
            reject(2)
        data = f[pos + 8 : pos + 8 + length]
        if _u32(f, pos + 8 + length) != zlib.crc32(f[pos : pos + 8 + length]):
            reject(19)
        pos += 12 + length
        if 97 <= kind[0] <= 122:
            continue
        if kind == b"PLTE":
            if palette is not None:
                reject(15)
            if length != k * c:
                reject(17)
            palette = [data[i * c : i * c + c] for i in range(k)]
        elif kind == b"INDX":
            if palette is None:
                reject(16)
            if coding == 0 and length != -(-w * h * bits // 8):
                reject(18)
            if coding == 2:
                try:
                    spec_coding2.check_lengths(length, w, h, k)
                except spec_coding2.Rejected as exc:
                    reject(exc.rule)
            if pos != len(f):
                reject(22)
            break
        elif kind == b"HEAD":
            reject(15)
        else:
            reject(14)
    if coding == 1:
        try:
            indices = spec_coding1.decode_coding_1(bytes(data), w, h, k, bits)
        except spec_coding1.Rejected as exc:
            reject(exc.rule)
        return w, h, c, b"".join(palette[i] for i in indices)
    if coding == 2:
        try:
            indices = spec_coding2.decode_coding_2(bytes(data), w, h, k, bits)
        except spec_coding2.Rejected as exc:
            reject(exc.rule)
        return w, h, c, b"".join(palette[i] for i in indices)
    stream = int.from_bytes(data, "big")
    pad = len(data) * 8 - w * h * bits
    if stream & ((1 << pad) - 1):
        reject(20)
    pixels = bytearray()
    for p in range(w * h):
        index = (stream >> (len(data) * 8 - (p + 1) * bits)) & ((1 << bits) - 1)
        if index >= k:
            reject(21)
        pixels += palette[index]
    return w, h, c, bytes(pixels)


def spec_metadata(f: bytes) -> dict:
    """Section 14, transcribed: the first chunk of each type counts, and one that breaks its layout is ignored."""
    pos, first = 38, {}
    while pos < len(f):
        length, kind = _u32(f, pos), f[pos + 4 : pos + 8]
        first.setdefault(kind, f[pos + 8 : pos + 8 + length])
        pos += 12 + length
    out: dict = {}
    icc, exif, reso = first.get(b"iccp"), first.get(b"exif"), first.get(b"reso")
    if icc is not None and len(icc) >= 132 and icc[36:40] == b"acsp":
        out["icc_profile"] = icc.hex()
    if exif is not None and len(exif) >= 8 and exif[:4] in (b"II*\x00", b"MM\x00*"):
        ifd = int.from_bytes(exif[4:8], "little" if exif[:2] == b"II" else "big")
        if 8 <= ifd <= len(exif) - 2:
            out["exif"] = exif.hex()
    if reso is not None and len(reso) == 8 and _u32(reso, 0) and _u32(reso, 4):
        out["dpi"] = [_u32(reso, 0) / 1000, _u32(reso, 4) / 1000]
    return out


@pytest.mark.parametrize("entry", MANIFEST["valid"], ids=_id)
def test_spec_pseudocode_decodes_valid_vector(entry):
    w, h, c, pixels = spec_decode((VECTORS / entry["file"]).read_bytes())
    assert (w, h, c) == (entry["width"], entry["height"], entry["channels"])
    assert pixels == (VECTORS / entry["pixels"]).read_bytes()


@pytest.mark.parametrize("entry", MANIFEST["invalid"], ids=_id)
def test_spec_pseudocode_rejects_invalid_vector_by_its_rule(entry):
    with pytest.raises(Rejected) as info:
        spec_decode((VECTORS / entry["file"]).read_bytes())
    assert info.value.rule == entry["rule"]


# --- the generator -------------------------------------------------------------------------------


def _generator():
    spec = importlib.util.spec_from_file_location("make_vectors", VECTORS / "make_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_reproduces_committed_vectors_exactly():
    built = _generator().build()
    on_disk = {
        str(p.relative_to(VECTORS)): p.read_bytes()
        for d in ("valid", "invalid")
        for p in sorted((VECTORS / d).iterdir())
    }
    on_disk["manifest.json"] = (VECTORS / "manifest.json").read_bytes()
    assert sorted(built) == sorted(on_disk)
    assert [p for p in built if built[p] != on_disk[p]] == []


def test_vectors_stay_small():
    # Coding 2's vectors of two stripes have more than 65,536 pixels each (grey: a byte a pixel of raw pixels).
    assert sum(len(b) for b in _generator().build().values()) < 400_000


def index_of(data: bytes, p: int, bits: int) -> int:
    """Section 12's byte-at-a-time reader, transcribed."""
    value = 0
    for j in range(p * bits, p * bits + bits):
        value = (value << 1) | ((data[j // 8] >> (7 - j % 8)) & 1)
    return value


@pytest.mark.parametrize("entry", [e for e in MANIFEST["valid"] if e["width"] * e["height"] <= 4096 and e["coding"] == 0], ids=_id)
def test_spec_byte_reader_reads_every_index(entry):
    data = (VECTORS / entry["file"]).read_bytes()
    decoded = kvq.decode_indexed(data)
    body = data[-4 - decoded.header.fixed_index_size : -4]
    indices = [index_of(body, p, entry["bits"]) for p in range(entry["width"] * entry["height"])]
    assert indices == decoded.indices.reshape(-1).tolist()


@pytest.mark.parametrize("entry", MANIFEST["invalid"] + MANIFEST["valid"], ids=_id)
def test_one_reader_for_bytes_and_files_gives_one_verdict(entry):
    """The container's reader on a file object (kvq decode, Pillow's load) and on bytes: the same error, or none."""
    import io

    from kvq import container

    data = (VECTORS / entry["file"]).read_bytes()

    def verdict(source, **options):
        try:
            container.Reader(source, **options).indices()
        except kvq.KvqError as exc:
            return type(exc), str(exc)
        return None

    on_bytes = verdict(data)
    assert verdict(io.BytesIO(data)) == verdict(io.BytesIO(data), in_memory=True) == on_bytes
    if on_bytes is not None:
        assert "error" in entry
    lazy = verdict(io.BytesIO(data), lazy=True)  # Pillow's open: INDX's rule before its data and CRC
    assert lazy == on_bytes or (on_bytes is not None and lazy is not None)
