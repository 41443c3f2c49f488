"""The Pillow plugin, exercised only through Pillow's public API and real Pillow clients.

kvq's own functions appear only as the reference: the pixels, palette and
bytes that the plugin must reproduce.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, UnidentifiedImageError

import kvq

MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _indexed(k: int, channels: int, seed: int) -> bytes:
    """A random indexed image with ``k`` distinct entries, every one used."""
    rng = np.random.default_rng(seed)
    # Distinct entries: spread a permutation of colour numbers over the channels.
    numbers = rng.choice(256**channels if channels < 4 else 2**31, size=k, replace=False)
    palette = ((numbers[:, None] >> (8 * np.arange(channels)[::-1])) & 0xFF).astype(np.uint8)
    if channels == 4:
        palette[:3, 3] = (0, 128, 255)  # transparent, half and opaque entries for sure
    indices = rng.permutation(np.resize(np.arange(k), 40 * 50)).reshape(40, 50)
    return kvq.encode_indexed(palette=palette, indices=indices)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, photo: np.ndarray) -> dict[str, Path]:
    """One file per opening mode, named by case."""
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    cases = {
        "rgb_p": kvq.encode(photo, k=64),
        "rgba_p": _indexed(40, 4, 1),
        "grey": kvq.encode(grey, k=32),
        "rgb_big": _indexed(300, 3, 2),
        "rgba_big": _indexed(300, 4, 3),
    }
    root = tmp_path_factory.mktemp("kvq")
    paths = {}
    for name, data in cases.items():
        paths[name] = root / f"{name}.kvq"
        paths[name].write_bytes(data)
    return paths


# name -> (mode, has transparency)
EXPECTED = {
    "rgb_p": ("P", False),
    "rgba_p": ("P", True),
    "grey": ("L", False),
    "rgb_big": ("RGB", False),
    "rgba_big": ("RGBA", False),
}
CASES = sorted(EXPECTED)


def _rgb_mode(data: bytes) -> str:
    return MODES[kvq.read_header(data).channels]


def _pixels(im: Image.Image, mode: str) -> np.ndarray:
    return np.asarray(im if im.mode == mode else im.convert(mode))


@pytest.mark.parametrize("case", CASES)
def test_open_reports_format_size_mode(files: dict[str, Path], case: str) -> None:
    data = files[case].read_bytes()
    header = kvq.read_header(data)
    with Image.open(files[case]) as im:
        assert im.format == "KVQ"
        assert im.size == (header.width, header.height)
        assert im.mode == EXPECTED[case][0]
        assert ("transparency" in im.info) == EXPECTED[case][1]
        assert im.get_format_mimetype() == "image/x-kvq"


@pytest.mark.parametrize("case", CASES)
def test_pixels_are_exactly_kvq_decode(files: dict[str, Path], case: str) -> None:
    data = files[case].read_bytes()
    expected = kvq.decode(data)
    with Image.open(files[case]) as im:
        assert np.array_equal(_pixels(im, _rgb_mode(data)), expected)
    # The same from a file object that Pillow did not open itself.
    im = Image.open(io.BytesIO(data))
    assert np.array_equal(_pixels(im, _rgb_mode(data)), expected)


@pytest.mark.parametrize("case", ["rgb_p", "rgba_p"])
def test_p_mode_gives_stored_palette_and_indices(files: dict[str, Path], case: str) -> None:
    decoded = kvq.decode_indexed(files[case].read_bytes())
    with Image.open(files[case]) as im:
        k = decoded.header.k
        assert im.getpalette()[: 3 * k] == decoded.palette[:, :3].ravel().tolist()
        assert np.array_equal(np.asarray(im), decoded.indices)
        if decoded.header.channels == 4:
            assert im.getpalette("RGBA")[: 4 * k] == decoded.palette.ravel().tolist()
            assert im.info["transparency"] == decoded.palette[:, 3].tobytes()


def test_rgba_transparency_survives_png(files: dict[str, Path], tmp_path: Path) -> None:
    expected = kvq.decode(files["rgba_p"].read_bytes())
    with Image.open(files["rgba_p"]) as im:
        im.save(tmp_path / "out.png")
    with Image.open(tmp_path / "out.png") as png:
        assert png.mode == "P" and "transparency" in png.info
        assert np.array_equal(np.asarray(png.convert("RGBA")), expected)


@pytest.mark.parametrize("case", CASES)
def test_convert_thumbnail_and_save_png(files: dict[str, Path], case: str, tmp_path: Path) -> None:
    data = files[case].read_bytes()
    mode = _rgb_mode(data)
    with Image.open(files[case]) as im:
        assert np.array_equal(np.asarray(im.convert(mode)), kvq.decode(data))
        im.thumbnail((16, 16))
        assert max(im.size) == 16
        thumb = _pixels(im, mode)
        im.save(tmp_path / "thumb.png")
    with Image.open(tmp_path / "thumb.png") as png:
        assert np.array_equal(_pixels(png, mode), thumb)


def test_open_is_lazy_and_corrupt_index_data_raises(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, photo: np.ndarray
) -> None:
    data = bytearray(files["rgb_p"].read_bytes())
    data[-5] ^= 0xFF  # last index byte: only a full decode can notice
    path = tmp_path / "corrupt.kvq"
    path.write_bytes(data)
    with Image.open(path) as im:  # header and palette are intact
        assert im.size == (photo.shape[1], photo.shape[0])
        with pytest.raises((OSError, ValueError), match="CRC-32 mismatch in chunk INDX"):
            im.load()
    # Not even Pillow's "load what you can" switch may yield a black image.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with Image.open(path) as im:
        with pytest.raises((OSError, ValueError), match="CRC-32 mismatch"):
            im.load()
        with pytest.raises((OSError, ValueError)):
            np.asarray(im)  # a second attempt fails too


@pytest.mark.parametrize("truncated_images", [False, True])
def test_truncated_file_raises_on_load(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, truncated_images: bool) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", truncated_images)
    data = files["rgba_big"].read_bytes()[:-100]
    im = Image.open(io.BytesIO(data))
    assert im.mode == "RGBA"
    with pytest.raises((OSError, ValueError), match=r"INDX declares .* but the file ends first"):
        im.load()


def test_truncated_header_raises_oserror_with_kvq_message(files: dict[str, Path]) -> None:
    data = files["rgb_p"].read_bytes()
    with pytest.raises(OSError, match="file ends inside the HEAD chunk"):
        Image.open(io.BytesIO(data[:30]))
    with pytest.raises(OSError, match=r"chunk PLTE declares .* but the file ends first"):
        Image.open(io.BytesIO(data[:60]))


def test_non_kvq_files_go_to_other_plugins(tmp_path: Path) -> None:
    png = io.BytesIO()
    Image.new("RGB", (3, 2), (1, 2, 3)).save(png, format="PNG")
    png.seek(0)
    with Image.open(png) as im:
        assert im.format == "PNG"
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(b"\x89KVQ"))  # too short to be anything


def test_garbage_after_signature_raises_kvq_error() -> None:
    from kvq.container import SIGNATURE

    with pytest.raises(ValueError, match="first chunk must be HEAD"):
        Image.open(io.BytesIO(SIGNATURE + b"\0" * 40))


def test_corrupt_header_raises_kvq_error(files: dict[str, Path]) -> None:
    data = bytearray(files["rgb_p"].read_bytes())
    data[20] ^= 1  # inside the HEAD chunk: CRC mismatch
    with pytest.raises(ValueError, match="CRC-32 mismatch in chunk HEAD"):
        Image.open(io.BytesIO(bytes(data)))


def _bomb(width: int, height: int) -> bytes:
    # K = 1 needs no index bits: a valid file of 63 bytes for any size.
    from kvq import container

    header = kvq.Header(width, height, 1, 1, 0)
    return container.write(header, b"\x80", b"")


def test_decompression_bomb_refused_at_open(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(_bomb(100_000, 100_000)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(_bomb(100, 100)))
    with pytest.warns(Image.DecompressionBombWarning):
        Image.open(io.BytesIO(_bomb(40, 40)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        im = Image.open(io.BytesIO(_bomb(100, 100)))
        assert np.asarray(im).max() == 0x80


@pytest.mark.parametrize("case", CASES)
def test_incremental_parser(files: dict[str, Path], case: str) -> None:
    data = files[case].read_bytes()
    parser = ImageFile.Parser()
    for start in range(0, len(data), 997):
        parser.feed(data[start : start + 997])
    im = parser.close()
    assert im.format == "KVQ" and im.mode == EXPECTED[case][0]
    assert np.array_equal(_pixels(im, _rgb_mode(data)), kvq.decode(data))


@pytest.mark.parametrize("coding", ["entropy", "fixed"])
def test_parser_fed_a_whole_file_in_one_piece(photo: np.ndarray, coding: str) -> None:
    # Pillow's own loop feeds 1,024 bytes at a time, so a file under 1 KiB arrives in one piece, and many callers
    # feed the whole file at once: both gave "image was incomplete" (the decoder never saw the end of the stream).
    small = kvq.encode(photo[:24, :24], k=8, coding=coding)
    large = kvq.encode(photo, k=16, coding=coding)
    assert len(small) < 1024 < len(large)
    for data in (small, large):
        parser = ImageFile.Parser()
        parser.feed(data)
        im = parser.close()
        assert im.format == "KVQ"
        assert np.array_equal(np.asarray(im.convert("RGB")), kvq.decode(data))


def test_incremental_parser_reports_truncation(files: dict[str, Path]) -> None:
    data = files["rgb_p"].read_bytes()[:-50]
    parser = ImageFile.Parser()
    for start in range(0, len(data), 4096):
        parser.feed(data[start : start + 4096])
    # Pillow's own words for a short image, or kvq's for a short chunk.
    with pytest.raises((OSError, ValueError), match=r"file ends first|image was incomplete"):
        parser.close()


def test_save_with_options_matches_kvq_encode(tmp_path: Path, photo: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="KVQ", k=16, seed=3, speed=8, dither=True)
    assert buf.getvalue() == kvq.encode(photo, k=16, seed=3, speed=8, dither=True)
    # The extension picks the format.
    Image.fromarray(photo).save(tmp_path / "x.kvq", k=8)
    assert (tmp_path / "x.kvq").read_bytes() == kvq.encode(photo, k=8)
    with pytest.raises(kvq.OptionError):
        Image.fromarray(photo).save(io.BytesIO(), format="KVQ", k=0)


@pytest.mark.parametrize("optimize", [True, False])
def test_optimize_is_accepted_and_changes_no_byte(photo: np.ndarray, optimize: bool) -> None:
    # Pillow users ask PNG, JPEG and GIF for a smaller file of the same pixels with optimize=True; kvq always
    # writes its smallest, so the keyword is accepted and the bytes are those of the same save without it.
    rgb = Image.fromarray(photo)
    indexed = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    for image, options in ((rgb, {"k": 16}), (indexed, {}), (indexed, {"k": 8})):
        plain, optimized = io.BytesIO(), io.BytesIO()
        image.save(plain, format="KVQ", **options)
        image.save(optimized, format="KVQ", optimize=optimize, **options)
        assert optimized.getvalue() == plain.getvalue(), options
    # A P image saved with optimize alone is still kept as it is, not quantized again.
    kept = kvq.decode_indexed(_saved(indexed, optimize=optimize))
    assert np.array_equal(kept.indices, np.asarray(indexed))


def _saved(image: Image.Image, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="KVQ", **options)
    return buf.getvalue()


def test_pillow_quality_habit_gets_what_kvq_quality_means(photo: np.ndarray) -> None:
    # save("x.kvq", quality=90) is a JPEG habit; kvq's quality is a PSNR in dB at every door, so the error says so.
    with pytest.raises(kvq.QualityError) as caught:
        Image.fromarray(photo).save(io.BytesIO(), format="KVQ", quality=90)
    message = str(caught.value)
    assert "kvq's quality is a target PSNR in dB, not the 0 to 100 scale of Pillow's JPEG and WebP" in message
    assert "k= (now 256)" in message
    assert caught.value.achieved < 90
    # The same keyword, reachable, is exactly kvq.encode's quality.
    target = round(caught.value.achieved) - 4
    assert _saved(Image.fromarray(photo), quality=target) == kvq.encode(photo, quality=target)
    # An image of few colours is stored losslessly, which reaches any PSNR, 90 dB included.
    few = photo // 128 * 128
    assert np.array_equal(kvq.decode(_saved(Image.fromarray(few), quality=90)), few)


def test_p_image_keeps_its_palette_and_indices(photo: np.ndarray) -> None:
    p = Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    indices = np.asarray(p)
    assert len(np.unique(indices)) == 16  # every entry used, so nothing is compacted away
    buf = io.BytesIO()
    p.save(buf, format="KVQ")
    buf.seek(0)
    with Image.open(buf) as im:
        assert im.mode == "P"
        assert np.array_equal(np.asarray(im), indices)
        assert im.getpalette()[:48] == p.getpalette()[:48]


def test_p_image_with_transparency_index_stores_rgba_palette() -> None:
    p = Image.new("P", (4, 2))
    p.putpalette([0, 0, 0, 10, 20, 30, 200, 100, 50])
    p.putdata([0, 1, 2, 1, 0, 1, 2, 1])
    buf = io.BytesIO()
    p.save(buf, format="KVQ", transparency=1)
    decoded = kvq.decode_indexed(buf.getvalue())
    assert decoded.palette.tolist() == [[0, 0, 0, 255], [10, 20, 30, 0], [200, 100, 50, 255]]
    buf.seek(0)
    with Image.open(buf) as im:
        assert im.info["transparency"] == b"\xff\x00\xff"


@pytest.mark.parametrize("case", CASES)
def test_round_trip_save_open_in_every_mode(files: dict[str, Path], case: str) -> None:
    data = files[case].read_bytes()
    buf = io.BytesIO()
    with Image.open(files[case]) as im:
        # More than 256 entries open as RGB/RGBA; a large enough k keeps every colour.
        im.save(buf, format="KVQ", **({"k": 65536} if im.mode in ("RGB", "RGBA") else {}))
    original = kvq.decode(data)
    if EXPECTED[case][0] == "P":
        assert buf.getvalue() == data  # same palette, same indices, same bytes
    else:
        # Saved through the quantizer: exactly what kvq.encode makes of the same pixels.
        assert buf.getvalue() == kvq.encode(original, k=65536 if im.mode != "L" else 256)
    buf.seek(0)
    with Image.open(buf) as again:
        assert again.mode == EXPECTED[case][0]
        got = _pixels(again, _rgb_mode(data))
    if case == "rgba_big":
        # The quantizer stores every fully transparent pixel as (0, 0, 0, 0);
        # a P image's palette is stored as it is.
        visible = original[..., 3] > 0
        assert np.array_equal(got[visible], original[visible])
        assert (got[~visible] == 0).all()
    else:
        assert np.array_equal(got, original)


def test_registration() -> None:
    assert Image.registered_extensions()[".kvq"] == "KVQ"
    assert Image.MIME["KVQ"] == "image/x-kvq"
    kvq.register_pillow()
    kvq.register_pillow()
    assert Image.ID.count("KVQ") == 1


@pytest.mark.parametrize("case", CASES)
def test_imageio_reads_kvq(files: dict[str, Path], case: str) -> None:
    import imageio.v3 as iio

    expected = kvq.decode(files[case].read_bytes())
    assert np.array_equal(iio.imread(files[case]), expected)


@pytest.mark.parametrize("case", CASES)
def test_matplotlib_reads_kvq(files: dict[str, Path], case: str) -> None:
    import matplotlib.image as mpimg

    expected = kvq.decode(files[case].read_bytes())
    got = mpimg.imread(files[case])
    # Pillow-read formats come back as uint8; matplotlib turns P images into RGBA.
    assert got.dtype == np.uint8
    if EXPECTED[case][0] == "P" and expected.shape[-1] == 3:
        assert (got[..., 3] == 255).all()
        got = got[..., :3]
    assert np.array_equal(got, expected)
