"""Issue 11: every real image in, every door the same (the library and the Pillow plugin).

Messy real-world inputs (corrupt EXIF, transparency in a palette or a tRNS
colour, formats Pillow cannot decode, late decompression bombs), hostile files
through Pillow's other entry points (ImageFile.Parser, verify), and the
sources and options every door accepts. The command line's side is in
``test_cli_doors.py``.
"""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

import kvq
from kvq import container

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors"


def _photo(height: int = 48, width: int = 64) -> np.ndarray:
    from sklearn.datasets import load_sample_image

    return np.ascontiguousarray(load_sample_image("china.jpg")[100 : 100 + height, 200 : 200 + width])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# ------------------------------------------------------------ files people have


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Cam"
    return exif.tobytes()  # b"Exif\0\0" + a big-endian TIFF directory


def jpeg_with_app1(payload: bytes) -> bytes:
    """A real JPEG (a photo crop) with ``payload`` as its APP1 (EXIF) segment."""
    buf = io.BytesIO()
    Image.fromarray(_photo()).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def _frames(count: int = 3) -> list[Image.Image]:
    photo = _photo(24, 32)
    # Distinct frames: the first is the photo, the others its colours turned.
    return [Image.fromarray(np.roll(photo, shift, axis=2)) for shift in range(count)]


def _mpo_with_previews(path: Path) -> None:
    """A camera-style MPO: the photo and a second JPEG marked "Large Thumbnail" (a preview, not another picture)."""
    first, second = _frames(2)
    first.save(path, format="MPO", save_all=True, append_images=[second])
    data = bytearray(path.read_bytes())
    tiff = data.index(b"MPF\0") + 4  # the MP index is a little TIFF directory
    endian = "<" if data[tiff : tiff + 2] == b"II" else ">"
    directory = tiff + struct.unpack_from(endian + "L", data, tiff + 4)[0]
    for number in range(struct.unpack_from(endian + "H", data, directory)[0]):
        tag, _, _, offset = struct.unpack_from(endian + "HHLL", data, directory + 2 + 12 * number)
        if tag == 0xB002:  # MP entries, 16 bytes each; the second entry's type becomes Large Thumbnail (VGA)
            struct.pack_into(endian + "L", data, tiff + offset + 16, 0x010001)
    path.write_bytes(bytes(data))


FRAME_FILES = {
    "animated.gif": {"format": "GIF", "duration": 100, "loop": 0},
    "animated.png": {"format": "PNG", "duration": 100},
    "animated.webp": {"format": "WEBP", "lossless": True},
    "pages.tif": {"format": "TIFF"},
}


@pytest.mark.parametrize("name", sorted(FRAME_FILES))
def test_a_file_of_several_frames_warns_that_only_the_first_is_encoded(tmp_path: Path, name: str) -> None:
    frames = _frames()
    path = tmp_path / name
    frames[0].save(path, save_all=True, append_images=frames[1:], **FRAME_FILES[name])
    with Image.open(path) as image:
        assert image.n_frames == 3
        image.load()
        first = image.copy()
    note = r"^the image has 3 frames \(an animation or pages\); only the first is encoded$"
    with pytest.warns(kvq.pixels.FramesDroppedWarning, match=note):
        data = kvq.encode_image(kvq.open_image(path), k=256).data
    with pytest.warns(kvq.pixels.FramesDroppedWarning):
        kvq.save(path, tmp_path / "saved.kvq")
    # What is encoded is the first frame, as Pillow shows the file.
    assert np.array_equal(kvq.decode(data), kvq.decode(kvq.encode(first, k=256)))


def test_a_single_frame_and_a_camera_jpeg_with_previews_do_not_warn(tmp_path: Path) -> None:
    import warnings

    _frames(1)[0].save(tmp_path / "one.gif")
    _mpo_with_previews(tmp_path / "camera.jpg")
    with Image.open(tmp_path / "camera.jpg") as image:
        assert image.format == "MPO" and image.n_frames == 2  # Pillow counts the preview as a frame
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("one.gif", "camera.jpg"):
            kvq.open_image(tmp_path / name)


def test_a_batch_records_the_dropped_frames_per_file_and_verbose_shows_them(tmp_path: Path) -> None:
    from conftest import run_kvq_here

    frames = _frames()
    folder = tmp_path / "in"
    folder.mkdir()
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], loop=0)
    frames[0].save(folder / "still.png")
    result = run_kvq_here("encode", folder, "-o", tmp_path / "out", "--manifest", tmp_path / "run.json", "-v", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    note = "the image has 3 frames (an animation or pages); only the first is encoded"
    assert f"kvq: warning: {folder / 'animated.gif'}: {note}" in result.stderr.decode()
    rows = {Path(row["source"]).name: row for row in json.loads((tmp_path / "run.json").read_text())["files"]}
    assert rows["animated.gif"]["warnings"] == note
    assert not rows["still.png"]["warnings"]
    # One file: -v shows it, and without -v a success prints nothing on standard error.
    shown = run_kvq_here("encode", folder / "animated.gif", "-o", tmp_path / "one.kvq", "-v", cwd=tmp_path)
    assert shown.returncode == 0 and shown.stderr.decode() == f"kvq: warning: {note}\n"
    quiet = run_kvq_here("encode", folder / "animated.gif", "-o", tmp_path / "two.kvq", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == b""


@pytest.mark.parametrize("cut", [8, 10], ids=["bad-tiff-header", "truncated-directory"])
def test_jpeg_with_corrupt_exif_is_encoded(tmp_path: Path, cut: int) -> None:
    # Cut 8 made Pillow raise SyntaxError ("not a TIFF file"), cut 10 struct.error.
    path = tmp_path / "camera.jpg"
    path.write_bytes(jpeg_with_app1(_exif_rotated()[:cut]))
    with Image.open(path) as im:
        stored = np.asarray(im.convert("RGB"))
    expected = kvq.encode(stored, k=8)
    # The unreadable orientation is ignored: the pixels as stored.
    assert kvq.encode(kvq.open_image(path), k=8) == expected
    assert kvq.save(path, tmp_path / "camera.kvq", k=8).k == 8
    assert (tmp_path / "camera.kvq").read_bytes() == expected


def _rgba_photo() -> np.ndarray:
    rgba = np.concatenate([_photo(), np.full((48, 64, 1), 255, np.uint8)], axis=2)
    rgba[:, :20, 3] = 0  # a transparent margin and a half-transparent band
    rgba[:, 20:30, 3] = 128
    return rgba


def visible(rgba: np.ndarray) -> np.ndarray:
    """The encoder stores every fully transparent pixel as (0, 0, 0, 0): compare what shows."""
    return np.where(rgba[..., 3:] == 0, 0, rgba)


def test_p_image_with_rgba_palette_keeps_alpha_through_every_door(tmp_path: Path) -> None:
    quantized = Image.fromarray(_rgba_photo()).quantize(16)  # the usual way to make one
    assert quantized.mode == "P" and quantized.palette.mode == "RGBA" and "transparency" not in quantized.info
    expected = visible(np.asarray(quantized.convert("RGBA")))
    assert len(np.unique(expected.reshape(-1, 4), axis=0)) <= 16  # so K = 16 is exact
    assert set(np.unique(expected[..., 3])) >= {0, 255}

    assert np.array_equal(visible(kvq.decode(kvq.encode(quantized, k=16))), expected)
    kvq.save(quantized, tmp_path / "lib.kvq", k=16)
    assert np.array_equal(visible(kvq.load(tmp_path / "lib.kvq")), expected)
    for options in ({"k": 16}, {}):
        buf = io.BytesIO()
        quantized.save(buf, "KVQ", **options)
        assert np.array_equal(visible(kvq.decode(buf.getvalue())), expected), options


def _png(image: Image.Image, **params: object) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "PNG", **params)
    buf.seek(0)
    return Image.open(buf)


def test_grey_and_rgb_png_with_trns_colour_keep_their_transparency() -> None:
    photo = _photo()
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    level = int(grey[10, 10])
    decoded = kvq.decode(kvq.encode(_png(Image.fromarray(grey), transparency=level), k=256))
    assert decoded.shape == (48, 64, 4)
    assert np.array_equal(decoded[..., 3] == 0, grey == level)
    assert np.array_equal(decoded[..., 0][grey != level], grey[grey != level])

    colour = tuple(int(v) for v in photo[5, 5])
    rgb = kvq.decode(kvq.encode(_png(Image.fromarray(photo), transparency=colour), k=4096))
    assert rgb.shape == (48, 64, 4)
    assert np.array_equal(rgb[..., 3] == 0, (photo == colour).all(axis=2))


def _png16(grey: np.ndarray, transparent: int) -> Image.Image:
    """A 16-bit grey PNG with a tRNS level, written here: Pillow 10.2 (the floor) cannot write one, Pillow 13 can."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = grey.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in grey)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0))
    data += chunk(b"tRNS", struct.pack(">H", transparent)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return Image.open(io.BytesIO(data))


def test_16_bit_grey_png_with_trns_keeps_its_transparency() -> None:
    wide = (np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 21).astype(np.uint16)
    level = int(wide[3, 7])
    decoded = kvq.decode(kvq.encode(_png16(wide, level), k=4096))
    assert decoded.shape == (48, 64, 4)
    assert np.array_equal(decoded[..., 3] == 0, wide == level)  # one exact 16-bit level, not a rounded one


def dds(pfflags: int, fourcc: int = 0) -> bytes:
    """A 4x4 DDS header with the given pixel format (what Pillow reads before the pixels)."""
    header = struct.pack("<6I", 0x1007, 4, 4, 16, 0, 0) + bytes(44) + struct.pack("<4I", 32, pfflags, fourcc, 32) + bytes(36)
    return b"DDS " + struct.pack("<I", 124) + header + bytes(64)


def test_format_pillow_identifies_but_cannot_decode(tmp_path: Path) -> None:
    path = tmp_path / "texture.dds"
    path.write_bytes(dds(pfflags=0))  # no pixel-format flag Pillow implements
    with pytest.raises(kvq.UnsupportedImageError, match=r"texture\.dds: cannot read image: Unknown pixel format flags 0"):
        kvq.open_image(path)
    with pytest.raises(kvq.UnsupportedImageError, match="Unknown pixel format flags"):
        kvq.save(path, tmp_path / "t.kvq")
    # BLP raises NotImplementedError only when the pixels are loaded.
    blp = b"BLP1" + struct.pack("<iIIIi", 7, 0, 4, 4, 5) + bytes(4) + bytes(128)
    with Image.open(io.BytesIO(blp)) as im, pytest.raises(kvq.UnsupportedImageError, match="cannot read image: Unsupported BLP"):
        kvq.encode(im, k=4)
    assert not (tmp_path / "t.kvq").exists()


def icns_bomb() -> bytes:
    """An ICNS whose directory says 128x128 but whose PNG frame is 20000x20000: the size shows only on load."""
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
    png += _png_chunk(b"IDAT", zlib.compress(bytes(100))) + _png_chunk(b"IEND", b"")
    entry = b"ic07" + struct.pack(">I", 8 + len(png)) + png
    return b"icns" + struct.pack(">I", 8 + len(entry)) + entry


def test_decompression_bomb_found_at_load_is_a_kvq_error(tmp_path: Path) -> None:
    with Image.open(io.BytesIO(icns_bomb())) as im:
        assert im.size == (128, 128)
        with pytest.raises(kvq.ImageTooLargeError, match="decompression bomb"):
            kvq.encode(im, k=4)
    path = tmp_path / "icon.icns"
    path.write_bytes(icns_bomb())
    with pytest.raises(kvq.ImageTooLargeError, match=r"icon\.icns: cannot read image"):
        kvq.save(path, tmp_path / "icon.kvq")
    assert not (tmp_path / "icon.kvq").exists()


def test_saving_a_p_image_without_options_applies_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    indexed = Image.fromarray(_photo()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    with _png(indexed, exif=exif) as im:
        assert im.mode == "P" and im.getexif()[0x0112] == 6
        upright = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        assert upright.shape == (64, 48, 3)
        for options in ({}, {"k": 16}):
            buf = io.BytesIO()
            im.save(buf, "KVQ", **options)
            assert np.array_equal(kvq.decode(buf.getvalue()), upright), options


# ------------------------------------------------------- hostile files, Pillow


def _valid() -> bytes:
    return kvq.encode(_photo(), k=16)


def test_parser_refuses_bytes_after_indx_whatever_the_feed() -> None:
    data = _valid()
    for piece in (1, 7, len(data)):
        parser = ImageFile.Parser()
        for start in range(0, len(data), piece):
            parser.feed(data[start : start + piece])
        # The declared end was reached exactly: more bytes must still be refused.
        with pytest.raises((OSError, ValueError)):
            parser.feed(b"\x00")
            parser.close()
    # And the same file alone still parses, in 1-byte pieces.
    parser = ImageFile.Parser()
    for byte in data:
        parser.feed(bytes([byte]))
    assert np.array_equal(np.asarray(parser.close().convert("RGB")), kvq.decode(data))


def _corruptions() -> dict[str, bytes]:
    """Files whose header and palette are fine (Image.open succeeds) but load() fails."""
    data = bytearray(_valid())
    bad_crc = bytearray(data)
    bad_crc[-1] ^= 1
    cases = {"indx-crc": bytes(bad_crc), "truncated-indx": bytes(data[:-10]), "trailing-bytes": bytes(data) + b"\x00"}
    # An index >= K and non-zero padding, with correct CRCs: rebuild the INDX chunk.
    odd = kvq.encode_indexed(palette=np.array([[0, 0, 0], [9, 9, 9], [200, 1, 1]], np.uint8), indices=np.array([[0, 1, 2]]))
    body = bytearray(odd[-5:-4])  # 3 pixels x 2 bits = 6 bits, 2 padding bits
    assert len(odd) == 62 + 9 + 1

    def with_indx(payload: bytes) -> bytes:
        return odd[:-13] + container._chunk(container.INDX, payload)

    cases["padding"] = with_indx(bytes([body[0] | 0x01]))
    cases["index-ge-k"] = with_indx(bytes([0b00011100]))  # indices 0, 1, 3 with K = 3
    return cases


@pytest.mark.parametrize("case", ["indx-crc", "truncated-indx", "trailing-bytes", "padding", "index-ge-k"])
def test_verify_checks_the_whole_file(tmp_path: Path, case: str) -> None:
    data = _corruptions()[case]
    with pytest.raises(kvq.FormatError) as decoding:
        kvq.decode(data)
    path = tmp_path / f"{case}.kvq"
    path.write_bytes(data)
    with Image.open(path) as im, pytest.raises(kvq.FormatError) as verifying:
        im.verify()
    assert str(verifying.value) == str(decoding.value)
    with pytest.raises(kvq.FormatError) as validating:
        kvq.validate(data)
    assert str(validating.value) == str(decoding.value)


def test_verify_passes_a_valid_file_without_decoding_its_pixels(tmp_path: Path) -> None:
    # 4000 x 4000 at 1 bit: 2 MB of indices, which decoding would turn into 16 MB.
    header = container.Header(4000, 4000, 3, 2, 1)
    rng = np.random.default_rng(0)
    data = container.write(header, bytes([0, 0, 0, 255, 255, 255]), rng.integers(0, 256, header.fixed_index_size, np.uint8).tobytes())
    path = tmp_path / "big.kvq"
    path.write_bytes(data)
    with Image.open(path) as im:
        tracemalloc.start()
        try:
            im.verify()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 2 * len(data) + (8 << 20), peak
    with pytest.raises(RuntimeError), Image.open(path) as im:
        im.load()
        im.verify()  # as Pillow's own plugins: only directly after open
    counts = kvq.validate(path).counts
    assert counts.sum() == 16_000_000 and counts.tolist() == np.bincount(
        np.unpackbits(np.frombuffer(data[-4 - header.fixed_index_size : -4], np.uint8)), minlength=2
    ).tolist()


def test_validate_raises_what_decode_raises_for_every_invalid_vector() -> None:
    manifest = json.loads((VECTORS / "manifest.json").read_text())
    for entry in manifest["invalid"]:
        data = (VECTORS / entry["file"]).read_bytes()
        with pytest.raises(kvq.KvqError) as decoding:
            kvq.decode(data)
        with pytest.raises(kvq.KvqError) as validating:
            kvq.validate(data)
        assert (type(validating.value), str(validating.value)) == (type(decoding.value), str(decoding.value)), entry["file"]


def test_skipped_ancillary_chunks_are_not_kept_in_memory() -> None:
    valid = kvq.encode_indexed(palette=np.array([[0, 0, 0], [9, 9, 9]], np.uint8), indices=np.array([[0, 1], [1, 0]]))
    n = 10_000
    data = valid[:38] + container._chunk(b"aaAa", b"") * n + valid[38:]  # 120 kB of empty chunks
    for reader in (
        lambda: container.parse(data),
        lambda: Image.open(io.BytesIO(data)),
        lambda: kvq.validate(data),
    ):
        tracemalloc.start()
        try:
            reader()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # Keeping a (type, data) pair per chunk cost about 1 MB here.
        assert peak < 256 << 10, peak
    assert container.parse(data).skipped == n


# ----------------------------------------------------------- the doors agree


def test_every_decoding_function_takes_bytes_paths_and_file_objects(tmp_path: Path) -> None:
    data = _valid()
    path = tmp_path / "x.kvq"
    path.write_bytes(data)
    expected = kvq.decode(data)
    for source in (path, str(path), bytearray(data), memoryview(data)):
        assert np.array_equal(kvq.decode(source), expected)
        assert np.array_equal(kvq.load(source), expected)
        assert kvq.read_header(source) == kvq.read_header(data)
        assert kvq.decode_indexed(source).header.k == 16
        assert kvq.validate(source).counts.sum() == 48 * 64
    for function in (kvq.decode, kvq.load, kvq.read_header, kvq.decode_indexed, kvq.validate):
        with open(path, "rb") as fp:
            function(fp)
        with open(path, "rb") as fp:
            assert np.array_equal(kvq.load(fp), expected)
    # A bomb is refused from its header, before the rest of the file is read.
    with open(path, "rb") as fp:
        with pytest.raises(kvq.ImageTooLargeError):
            kvq.load(fp, max_pixels=100)
        assert fp.tell() == container.HEADER_SIZE


@pytest.mark.parametrize("name", ["decode", "load", "read_header", "decode_indexed", "validate"])
def test_wrong_source_is_a_kvq_error_naming_what_is_accepted(tmp_path: Path, name: str) -> None:
    function = getattr(kvq, name)
    with pytest.raises(kvq.KvqError, match="bytes, a path or a binary file object"):
        function(12)
    (tmp_path / "x.kvq").write_bytes(_valid())
    with open(tmp_path / "x.kvq") as text, pytest.raises(kvq.KvqError, match="binary file object"):
        function(text)


@pytest.mark.parametrize("options", [{"colors": 16}, {"k": 16, "sead": 3}, {"compress_level": 9}])
def test_pillow_save_refuses_unknown_options_as_kvq_encode_does(tmp_path: Path, options: dict) -> None:
    photo = _photo()
    with pytest.raises(kvq.OptionError) as library:
        kvq.encode(photo, **options)
    for image in (Image.fromarray(photo), Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)):
        with pytest.raises(kvq.OptionError) as plugin:
            image.save(tmp_path / "x.kvq", **options)
        assert str(plugin.value) == str(library.value)
        assert not (tmp_path / "x.kvq").exists()
    # transparency is the plugin's own keyword, not an encoder option.
    indexed = Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    indexed.save(tmp_path / "t.kvq", transparency=0)
    assert kvq.read_header(tmp_path / "t.kvq").channels == 4


def test_opening_a_file_streams_past_a_large_unknown_chunk(tmp_path: Path) -> None:
    # An ancillary chunk nobody keeps, 32 MiB, before the palette: Pillow's lazy open checks its CRC as it
    # reads past, holding a block at a time, and still reports a damaged one as kvq.decode does.
    from conftest import chunk

    pixels = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)
    data = kvq.encode(pixels, k=8)
    big = chunk(b"zzZz", bytes(range(256)) * (1 << 17))
    path = tmp_path / "big.kvq"
    path.write_bytes(data[:38] + big + data[38:])  # right after the 38-byte signature and HEAD
    tracemalloc.start()
    try:
        with Image.open(path) as im:
            assert im.size == (64, 48)
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    with Image.open(path) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), kvq.decode(data))
    damaged = bytearray(path.read_bytes())
    damaged[38 + 8 + 12345] ^= 1
    with pytest.raises(kvq.ChecksumError) as by_kvq:
        kvq.decode(bytes(damaged))
    path.write_bytes(bytes(damaged))
    with pytest.raises(kvq.ChecksumError) as by_pillow:
        Image.open(path)
    assert str(by_pillow.value) == str(by_kvq.value)
    path.write_bytes(bytes(damaged[: 38 + 8 + 1000]))
    with pytest.raises(OSError, match="chunk zzZz declares 33,554,432 bytes but the file ends first"):
        Image.open(path)  # OSError, as Pillow's own plugins raise for a truncated file


def test_a_folder_or_a_missing_path_is_the_same_os_error_at_every_door(tmp_path: Path) -> None:
    # decode said KvqIsADirectoryError for a folder while encode and open_image said UnsupportedImageError, and save
    # a bare KvqError for a missing output folder: one rule now, the built-in OSError's subclass of the same name.
    image = _photo(4, 4)
    folder = tmp_path / "adir"
    folder.mkdir()
    cases = [
        (lambda: kvq.encode(folder), kvq.KvqIsADirectoryError, folder),
        (lambda: kvq.open_image(folder), kvq.KvqIsADirectoryError, folder),
        (lambda: kvq.decode(folder), kvq.KvqIsADirectoryError, folder),
        (lambda: kvq.open_image(tmp_path / "missing.png"), kvq.KvqFileNotFoundError, tmp_path / "missing.png"),
        (lambda: kvq.save(image, tmp_path / "nodir" / "x.kvq"), kvq.KvqFileNotFoundError, tmp_path / "nodir"),
        (lambda: kvq.save(image, folder), kvq.KvqIsADirectoryError, folder),
    ]
    for call, kind, named in cases:
        with pytest.raises(kind) as caught:
            call()
        assert isinstance(caught.value, kvq.KvqOSError) and caught.value.filename == str(named)
    assert not (tmp_path / "nodir").exists() and list(folder.iterdir()) == []


@pytest.mark.parametrize("limit", ["x", -1, 0, True, 1.5, 10.0])
def test_max_pixels_is_none_or_a_positive_integer_at_every_door(tmp_path: Path, limit: object) -> None:
    from kvq import batch, fileio

    data = kvq.encode(_photo(4, 4), k=4)
    (tmp_path / "a.kvq").write_bytes(data)
    calls = [
        lambda: kvq.decode(data, max_pixels=limit),
        lambda: kvq.decode_indexed(data, max_pixels=limit),
        lambda: kvq.validate(data, max_pixels=limit),
        lambda: kvq.read_header(data, max_pixels=limit),
        lambda: kvq.load(tmp_path / "a.kvq", max_pixels=limit),
        lambda: fileio.decode_file(data, tmp_path / "a.png", max_pixels=limit),
        # Checked before the path is opened: the caller's mistake is the answer, not the file's.
        lambda: kvq.decode(tmp_path / "missing.kvq", max_pixels=limit),
        lambda: container.Reader(io.BytesIO(data), max_pixels=limit),
    ]
    for call in calls:
        with pytest.raises(kvq.OptionError, match=r"^max_pixels must be None \(no limit\) or a positive integer, not "):
            call()
    # A batch refuses it at the call, once, rather than failing every file with it.
    with pytest.raises(kvq.OptionError, match=r"^max_pixels must be None"):
        batch.decode_files([tmp_path / "a.kvq"], tmp_path / "out", max_pixels=limit)
    assert not (tmp_path / "out").exists()
    assert kvq.decode(data, max_pixels=16).shape == kvq.decode(data, max_pixels=np.int64(16)).shape == (4, 4, 3)


def test_the_docstrings_say_what_the_functions_accept_and_raise() -> None:
    import inspect
    from dataclasses import fields as fields_of

    from kvq import codec, fileio

    for function in (codec.encode, codec.encode_image):
        for f in fields_of(kvq.EncoderOptions):
            assert f"{f.name} : " in inspect.getdoc(function), (function.__name__, f.name)
    for function in (kvq.decode, kvq.decode_indexed, kvq.validate, kvq.read_header, kvq.load, kvq.open_image, kvq.save):
        doc = inspect.getdoc(function)
        assert "\nRaises\n------\n" in doc and "KvqOSError" in doc and "KvqFileNotFoundError" in doc, function.__name__
    for function in (kvq.decode, kvq.decode_indexed, kvq.validate, kvq.read_header, kvq.load):
        assert "OptionError" in inspect.getdoc(function), function.__name__
    assert "max_pixels : int or None, default=178,956,970" in inspect.getdoc(kvq.read_header)
    assert "OutputExistsError" in inspect.getdoc(fileio.save)
    assert "is a directory, not an image" not in inspect.getdoc(kvq.open_image)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    errors = readme[readme.index("Every error kvq raises is a `kvq.KvqError`") :][:2000]
    assert "`OutputExistsError`" in errors
