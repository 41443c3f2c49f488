"""Metadata (spec section 14): ICC profile, EXIF and resolution kept through the library, the CLI and Pillow."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageOps

import kvq
from kvq import container
from kvq.cli import main

MAKE, ORIENTATION = 0x010F, 0x0112


def _icc_profile() -> bytes:
    """A real sRGB profile from LittleCMS when Pillow has it, else a bare 132-byte profile header."""
    try:
        from PIL import ImageCms

        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    except ImportError:
        return struct.pack(">I", 132) + bytes(32) + b"acsp" + bytes(92)


ICC = _icc_profile()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[MAKE] = "kvq-test"
    exif[ORIENTATION] = orientation
    return exif.tobytes()


def _pixels() -> np.ndarray:
    """24 x 40 RGB with 12 colours in an asymmetric layout, so that any turn or flip shows."""
    y, x = np.mgrid[0:24, 0:40]
    palette = np.array([[(37 * i) % 256, (91 * i) % 256, (53 * i + 7) % 256] for i in range(12)], dtype=np.uint8)
    return palette[(x // 10 + 4 * (y // 8)) % 12]


def _image_file(tmp_path, fmt: str = "PNG", orientation: int = 6, suffix: str = "png"):
    path = tmp_path / f"in.{suffix}"
    Image.fromarray(_pixels()).save(path, fmt, exif=_exif(orientation), icc_profile=ICC, dpi=(300, 300))
    return path


def _orientation(exif: bytes) -> int:
    parsed = Image.Exif()
    parsed.load(exif)
    return parsed.get(ORIENTATION, 1)


def _turned() -> np.ndarray:
    # Orientation 6: the camera was turned; viewers turn the pixels 90 degrees clockwise.
    return np.rot90(_pixels(), k=-1)


# --- the library door -----------------------------------------------------------------------------------------------


def test_library_keeps_profile_exif_and_dpi(tmp_path):
    with Image.open(_image_file(tmp_path)) as im:
        data = kvq.encode(im, k=16)
        original_exif = im.info["exif"]
    decoded = kvq.decode_indexed(data)
    assert decoded.metadata.icc_profile == ICC
    assert decoded.metadata.dpi == pytest.approx((300, 300), abs=1e-3)  # PNG stores pixels per metre
    stored = decoded.metadata.exif
    assert stored.startswith((b"II*\x00", b"MM\x00*"))
    # kvq.decode still returns pixels, turned the way the EXIF said.
    assert np.array_equal(kvq.decode(data), _turned())
    # The Orientation is reset to 1 in place: every other byte of the EXIF is kept.
    assert _orientation(stored) == 1
    original = original_exif.removeprefix(b"Exif\x00\x00")
    assert len(stored) == len(original)
    assert sum(a != b for a, b in zip(stored, original, strict=True)) == 1  # the low byte of the SHORT: 6 -> 1
    parsed = Image.Exif()
    parsed.load(stored)
    assert parsed[MAKE] == "kvq-test"


def test_save_from_a_path_keeps_metadata_and_strip_drops_it(tmp_path):
    source = _image_file(tmp_path)
    kvq.save(source, tmp_path / "kept.kvq", k=16)
    data = (tmp_path / "kept.kvq").read_bytes()
    assert kvq.container.parse(data).ancillary  # the metadata chunks
    assert kvq.decode_indexed(data).metadata.icc_profile == ICC
    kvq.save(source, tmp_path / "stripped.kvq", k=16, strip=True)
    stripped = (tmp_path / "stripped.kvq").read_bytes()
    assert kvq.container.parse(stripped).ancillary == []  # nothing beyond palette, indices and the fixed overhead
    assert kvq.decode_indexed(stripped).metadata == kvq.Metadata()
    assert np.array_equal(kvq.decode(stripped), kvq.decode(data))


def test_strip_gives_the_bytes_of_an_image_without_metadata(tmp_path):
    with Image.open(_image_file(tmp_path, orientation=1)) as im:
        stripped = kvq.encode(im, k=16, strip=True)
    assert stripped == kvq.encode(_pixels(), k=16)


def test_metadata_beside_an_array_and_its_errors():
    pixels = _pixels()
    data = kvq.encode(pixels, k=16, metadata=kvq.Metadata(icc_profile=ICC, dpi=(72, 96.5)))
    assert kvq.decode_indexed(data).metadata == kvq.Metadata(icc_profile=ICC, dpi=(72.0, 96.5))
    assert np.array_equal(kvq.decode(data), pixels)
    with pytest.raises(kvq.OptionError, match="not both"):
        kvq.encode(pixels, metadata=kvq.Metadata(dpi=(72, 72)), strip=True)
    with pytest.raises(kvq.OptionError, match=r"kvq\.Metadata"):
        kvq.encode(pixels, metadata={"dpi": (72, 72)})
    with pytest.raises(kvq.OptionError, match="ICC profile"):
        kvq.Metadata(icc_profile=b"not a profile")
    with pytest.raises(kvq.OptionError, match="TIFF structure"):
        kvq.Metadata(exif=b"Exif\x00\x00JUNK")
    with pytest.raises(kvq.OptionError, match="dpi"):
        kvq.Metadata(dpi=(0, 72))
    with pytest.raises(kvq.OptionError, match="dpi"):
        kvq.Metadata(dpi=(float("nan"), 72))


def test_same_input_same_bytes(tmp_path):
    path = _image_file(tmp_path)
    with Image.open(path) as a, Image.open(path) as b:
        assert kvq.encode(a, k=16) == kvq.encode(b, k=16)


def test_metadata_chunks_follow_the_spec_layout():
    exif = _exif(1).removeprefix(b"Exif\x00\x00")
    chunks = kvq.Metadata(icc_profile=ICC, exif=b"Exif\x00\x00" + exif, dpi=(300, 72.0004)).chunks()
    assert chunks == [(b"iccp", ICC), (b"exif", exif), (b"reso", struct.pack(">II", 300_000, 72_000))]
    # Written between HEAD and PLTE, in that order.
    metadata = kvq.Metadata.from_chunks(chunks)
    data = kvq.encode_indexed(palette=np.zeros((1, 3), np.uint8), indices=np.zeros((2, 2), np.uint8), metadata=metadata)
    kinds, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    assert kinds == [b"HEAD", b"iccp", b"exif", b"reso", b"PLTE", b"INDX"]


def test_reader_keeps_only_the_first_metadata_chunk_of_each_type_and_no_other_ancillary():
    base = kvq.encode_indexed(palette=np.zeros((1, 3), np.uint8), indices=np.zeros((2, 2), np.uint8))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return container._chunk(kind, body)

    first, second = chunk(b"reso", struct.pack(">II", 1000, 2000)), chunk(b"reso", struct.pack(">II", 7, 7))
    extra = first + chunk(b"teXt", b"x" * 100) * 50 + second
    data = base[:38] + extra + base[38:]
    parsed = container.parse(data)
    assert parsed.ancillary == [(b"reso", struct.pack(">II", 1000, 2000))]
    assert kvq.decode_indexed(data).metadata == kvq.Metadata(dpi=(1.0, 2.0))


def test_corrupt_exif_is_kept_as_it_is_and_not_applied(tmp_path):
    # IFD0's one entry, an Orientation of 6, has a type (99) that no TIFF reader knows.
    corrupt = b"MM\x00*" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", ORIENTATION, 99, 1, 6, 0) + bytes(4)
    image = Image.fromarray(_pixels())
    image.info["exif"] = b"Exif\x00\x00" + corrupt
    data = kvq.encode(image, k=16)
    assert kvq.decode_indexed(data).metadata.exif == corrupt
    assert np.array_equal(kvq.decode(data), _pixels())


@pytest.mark.parametrize(
    "exif",
    [b"II", b"II*\x00", b"MM\x00*" + struct.pack(">I", 4000) + bytes(8), b"II*\x00" + struct.pack("<I", 4) + bytes(4)],
    ids=["cut-header", "no-ifd-offset", "ifd-past-the-end", "ifd-inside-the-header"],
)
def test_exif_without_a_reachable_ifd0_is_not_stored(exif):
    image = Image.fromarray(_pixels())
    image.info["exif"] = b"Exif\x00\x00" + exif
    assert kvq.encode(image, k=16) == kvq.encode(_pixels(), k=16)
    with pytest.raises(kvq.OptionError, match="TIFF structure"):
        kvq.Metadata(exif=exif)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("kind", [3, 4])
def test_reset_orientation_patches_short_and_long_in_place(order, kind):
    from kvq.metadata import reset_orientation

    mark = b"II*\x00" if order == "<" else b"MM\x00*"
    value = struct.pack(order + ("HH" if kind == 3 else "I"), *((8, 0) if kind == 3 else (8,)))
    tiff = mark + struct.pack(order + "IH", 8, 1) + struct.pack(order + "HHI", ORIENTATION, kind, 1) + value + bytes(4)
    patched = reset_orientation(tiff)
    assert len(patched) == len(tiff) and _orientation(patched) == 1
    assert sum(a != b for a, b in zip(patched, tiff, strict=True)) == 1


def test_reset_orientation_without_the_tag_or_with_unreadable_exif():
    from kvq.metadata import reset_orientation

    no_tag = _exif(1).removeprefix(b"Exif\x00\x00")
    parsed = Image.Exif()
    parsed.load(no_tag)
    del parsed[ORIENTATION]
    without = parsed.tobytes().removeprefix(b"Exif\x00\x00")
    assert reset_orientation(without) == without
    # Orientation stored as three SHORTs (not a single value): rewritten by Pillow, still 1.
    entry = struct.pack(">HHII", ORIENTATION, 3, 2, 26)  # two SHORTs, stored at offset 26
    odd = b"MM\x00*" + struct.pack(">IH", 8, 1) + entry + bytes(4) + struct.pack(">HH", 6, 6)
    assert _orientation(reset_orientation(odd)) == 1


# --- the Pillow door ------------------------------------------------------------------------------------------------


def test_pillow_save_and_open_keep_metadata(tmp_path):
    with Image.open(_image_file(tmp_path, "JPEG", suffix="jpg")) as im:
        assert im.info["dpi"] == (300, 300)
        buf = io.BytesIO()
        im.save(buf, "KVQ", k=16)
    buf.seek(0)
    with Image.open(buf) as kv:
        assert kv.info["icc_profile"] == ICC
        assert kv.info["dpi"] == (300.0, 300.0)
        assert kv.info["exif"].startswith(b"Exif\x00\x00")
        assert kv.getexif()[ORIENTATION] == 1 and kv.getexif()[MAKE] == "kvq-test"
        assert kv.size == (24, 40)  # turned on encoding
        # Opening it as any viewer does turns nothing a second time.
        assert ImageOps.exif_transpose(kv).size == (24, 40)


def test_pillow_save_keywords_and_strip():
    image = Image.fromarray(_pixels())
    buf = io.BytesIO()
    image.save(buf, "KVQ", icc_profile=ICC, dpi=(72, 96), exif=_exif(1))
    with Image.open(io.BytesIO(buf.getvalue())) as kv:
        assert (kv.info["icc_profile"], kv.info["dpi"]) == (ICC, (72.0, 96.0))
        assert kv.getexif()[MAKE] == "kvq-test"
    image.info["icc_profile"] = ICC
    stripped = io.BytesIO()
    image.save(stripped, "KVQ", strip=True)
    with Image.open(io.BytesIO(stripped.getvalue())) as kv:
        assert not {"icc_profile", "exif", "dpi"} & set(kv.info)
    with pytest.raises(kvq.OptionError, match="ICC profile"):
        image.save(io.BytesIO(), "KVQ", icc_profile=b"junk")


def test_pillow_save_of_a_p_image_keeps_metadata():
    image = Image.fromarray(_pixels()).quantize(12)
    image.info.update(icc_profile=ICC, dpi=(150, 150))
    buf = io.BytesIO()
    image.save(buf, "KVQ")
    with Image.open(io.BytesIO(buf.getvalue())) as kv:
        assert kv.mode == "P"
        assert (kv.info["icc_profile"], kv.info["dpi"]) == (ICC, (150.0, 150.0))


# --- the CLI door ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, suffix", [("PNG", "png"), ("JPEG", "jpg")])
def test_cli_encode_and_decode_keep_metadata(tmp_path, fmt, suffix, capsys):
    source = _image_file(tmp_path, fmt, suffix=suffix)
    assert main(["encode", str(source), "-o", str(tmp_path / "x.kvq"), "-k", "16"]) == 0
    assert main(["decode", str(tmp_path / "x.kvq"), "-o", str(tmp_path / "out.png")]) == 0
    assert main(["decode", str(tmp_path / "x.kvq"), "-o", str(tmp_path / "out.jpg")]) == 0
    for name in ("out.png", "out.jpg"):
        with Image.open(tmp_path / name) as out:
            assert out.info["icc_profile"] == ICC, name
            assert out.info["dpi"] == pytest.approx((300, 300), abs=0.01), name
            assert out.getexif()[ORIENTATION] == 1 and out.getexif()[MAKE] == "kvq-test", name
            assert out.size == (24, 40) and ImageOps.exif_transpose(out).size == (24, 40), name
    with Image.open(tmp_path / "out.png") as out:
        if fmt == "PNG":
            assert np.array_equal(np.asarray(out.convert("RGB")), _turned())


def test_cli_strip(tmp_path, capsys):
    source = _image_file(tmp_path)
    assert main(["encode", str(source), "-o", str(tmp_path / "s.kvq"), "-k", "16", "--strip"]) == 0
    data = (tmp_path / "s.kvq").read_bytes()
    assert kvq.container.parse(data).ancillary == []
    assert main(["encode", str(source), "-o", str(tmp_path / "m.kvq"), "-k", "16"]) == 0
    assert main(["decode", str(tmp_path / "m.kvq"), "-o", str(tmp_path / "s.png"), "--strip"]) == 0
    with Image.open(tmp_path / "s.png") as out:
        assert not {"icc_profile", "exif", "dpi"} & set(out.info)
    # The pixels stay turned: stripping drops the EXIF, not the orientation already applied.
    assert np.array_equal(kvq.decode(data), _turned())


def test_pillow_save_of_a_turned_p_image_resets_the_orientation():
    image = Image.fromarray(_pixels()).quantize(12)
    image.info["exif"] = _exif(6)
    buf = io.BytesIO()
    image.save(buf, "KVQ")
    with Image.open(io.BytesIO(buf.getvalue())) as kv:
        assert kv.mode == "P" and kv.size == (24, 40)
        assert kv.getexif()[ORIENTATION] == 1 and kv.getexif()[MAKE] == "kvq-test"
        assert np.array_equal(np.asarray(kv.convert("RGB")), _turned())


def test_cli_encode_to_another_format_keeps_metadata_unless_stripped(tmp_path, capsys):
    source = _image_file(tmp_path, "JPEG", suffix="jpg")
    assert main(["encode", str(source), "-o", str(tmp_path / "q.png"), "-k", "16"]) == 0
    with Image.open(tmp_path / "q.png") as out:
        assert out.info["icc_profile"] == ICC and out.size == (24, 40)
        assert out.getexif()[ORIENTATION] == 1 and out.getexif()[MAKE] == "kvq-test"
    assert main(["encode", str(source), "-o", str(tmp_path / "s.png"), "-k", "16", "--strip"]) == 0
    with Image.open(tmp_path / "s.png") as out:
        assert not {"icc_profile", "exif", "dpi"} & set(out.info)


def test_the_72_dpi_pillow_makes_up_for_a_jpeg_is_not_stored(tmp_path):
    # A JPEG with EXIF but no resolution anywhere: Pillow's reader says dpi (72, 72) all the same.
    path = tmp_path / "no-dpi.jpg"
    Image.fromarray(_pixels()).save(path, "JPEG", exif=_exif(1))
    with Image.open(path) as im:
        assert im.info["dpi"] == (72, 72)
        assert kvq.decode_indexed(kvq.encode(im, k=16)).metadata.dpi is None
    # A resolution the file does state is kept: JFIF's density, or EXIF's XResolution.
    Image.fromarray(_pixels()).save(path, "JPEG", exif=_exif(1), dpi=(150, 150))
    with Image.open(path) as im:
        assert kvq.decode_indexed(kvq.encode(im, k=16)).metadata.dpi == (150.0, 150.0)
    exif = Image.Exif()
    exif.load(_exif(1))
    exif[0x011A], exif[0x011B], exif[0x0128] = 240.0, 240.0, 2
    Image.fromarray(_pixels()).save(path, "JPEG", exif=exif.tobytes())
    with Image.open(path) as im:
        assert kvq.decode_indexed(kvq.encode(im, k=16)).metadata.dpi == (240.0, 240.0)
