"""``kvq decode`` and Pillow's ``load()`` decode by row bands: the whole decode's pixels and metadata, in less memory.

A fixed-width file is read a band of rows at a time, so memory beyond the output is one band. An entropy-coded
file's index stream is decoded whole (it cannot be cut), but its palette lookup is still done a band at a time.
Memory is what numpy and Python allocate (``tracemalloc``); Pillow's own image buffer, the output, is not traced.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

import kvq
from kvq import bands
from kvq.cli import main
from kvq.fileio import decode_file


def _icc_profile() -> bytes:
    try:
        from PIL import ImageCms

        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    except ImportError:
        return struct.pack(">I", 132) + bytes(32) + b"acsp" + bytes(92)


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "kvq-band-test"  # Make
    return exif.tobytes()


META = kvq.Metadata(icc_profile=_icc_profile(), exif=_exif(), dpi=(300.0, 150.0))
MODES = {(16, 1): "L", (16, 3): "P", (16, 4): "P", (300, 3): "RGB", (300, 4): "RGBA"}


def _palette(k: int, channels: int) -> np.ndarray:
    # Distinct entries (none merged away), every byte used.
    entries = np.arange(k)
    columns = [entries % 256, (entries // 256) * 97 + 3, (entries * 37) % 251, 255 - entries % 200][:channels]
    if channels == 1:
        columns = [(entries * 13) % 256]
    return np.stack(columns, axis=1).astype(np.uint8)


def _indices(k: int, height: int, width: int, seed: int) -> np.ndarray:
    """Diagonal stripes with noise: photo-like enough for the entropy coder, every entry used (at 203 x 61 too)."""
    rng = np.random.default_rng(seed)
    stripes = np.add.outer(3 * np.arange(height), np.arange(width)) // 2
    return (stripes + rng.integers(0, 3, (height, width))) % k


def _file(k: int, channels: int, coding: str, height: int = 203, width: int = 61, metadata: kvq.Metadata = META) -> bytes:
    return kvq.encode_indexed(
        palette=_palette(k, channels), indices=_indices(k, height, width, k + channels), metadata=metadata, coding=coding
    )


@pytest.fixture
def small_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2,000 pixels: 32 rows of a 61-pixel-wide image, so 203 rows make 7 bands, the last of 11 rows.
    monkeypatch.setattr(bands, "BAND_PIXELS", 2000)


@pytest.fixture
def counted_bands(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first row of every band any BandReader hands out."""
    rows: list[int] = []
    original = bands.BandReader.bands

    def counting(self: bands.BandReader, band_pixels: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        for row, band in original(self, band_pixels):
            rows.append(row)
            yield row, band

    monkeypatch.setattr(bands.BandReader, "bands", counting)
    return rows


def _as_mode(im: Image.Image, channels: int) -> np.ndarray:
    return np.asarray(im.convert({1: "L", 3: "RGB", 4: "RGBA"}[channels]))


@pytest.mark.parametrize("coding", ["fixed", "entropy"])
@pytest.mark.parametrize(("k", "channels"), list(MODES))
def test_pillow_load_by_bands_is_the_whole_decode(k, channels, coding, small_bands, counted_bands) -> None:
    data = _file(k, channels, coding)
    whole = kvq.decode_indexed(data)
    assert whole.header.coding == (0 if coding == "fixed" else 1)
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.mode == MODES[k, channels]
        if im.mode == "P":
            assert np.array_equal(np.asarray(im), whole.indices)
        assert np.array_equal(_as_mode(im, channels), whole.pixels())
        for key, value in META.pillow_info().items():
            assert im.info[key] == value, key
    assert counted_bands == list(range(0, 203, 32))


@pytest.mark.parametrize("coding", ["fixed", "entropy"])
@pytest.mark.parametrize(("k", "channels"), list(MODES))
def test_decode_file_by_bands_is_the_whole_decode(k, channels, coding, tmp_path, small_bands, counted_bands) -> None:
    data = _file(k, channels, coding)
    whole = kvq.decode_indexed(data)
    result = decode_file(data, tmp_path / "out.png")
    assert (result.header, result.metadata) == (whole.header, META)
    assert np.array_equal(result.palette, whole.palette)
    assert counted_bands == list(range(0, 203, 32))
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == ("P" if k <= 256 else MODES[k, channels])  # PNG-8 whenever the palette fits
        assert np.array_equal(_as_mode(im, channels), whole.pixels())
        assert im.info["icc_profile"] == META.icc_profile
        assert im.getexif()[0x010F] == "kvq-band-test"
        assert im.info["dpi"] == pytest.approx(META.dpi, rel=1e-3)  # PNG stores pixels per metre


@pytest.mark.parametrize("strip", [False, True])
@pytest.mark.parametrize("suffix", ["png", "tif", "jpg"])
def test_kvq_decode_by_bands_keeps_or_strips_metadata(suffix, strip, tmp_path, small_bands, counted_bands) -> None:
    source = tmp_path / "in.kvq"
    source.write_bytes(_file(300, 3, "fixed"))
    target = tmp_path / f"out.{suffix}"
    assert main(["decode", str(source), "-o", str(target), "-q", *(["--strip"] if strip else [])]) == 0
    assert counted_bands == list(range(0, 203, 32))
    with Image.open(target) as im:
        if suffix != "jpg":  # lossy
            assert np.array_equal(np.asarray(im.convert("RGB")), kvq.decode(source))
        assert ("icc_profile" in im.info) is not strip
        assert (im.getexif().get(0x010F) == "kvq-band-test") is not strip
        if not strip:
            assert im.info["icc_profile"] == META.icc_profile
            assert im.info["dpi"] == pytest.approx(META.dpi, rel=1e-3)  # PNG stores pixels per metre


def test_the_incremental_parser_reads_by_bands_too(small_bands, counted_bands) -> None:
    data = _file(16, 4, "fixed")
    parser = ImageFile.Parser()
    for start in range(0, len(data), 1000):
        parser.feed(data[start : start + 1000])
    im = parser.close()
    assert np.array_equal(np.asarray(im.convert("RGBA")), kvq.decode(data))
    assert counted_bands == list(range(0, 203, 32))


def _peak(work: Callable[[], object]) -> int:
    """Peak bytes numpy and Python allocate during ``work()``, beyond what they held before."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _pillow_load(path: Path) -> Callable[[], object]:
    def load() -> None:
        with Image.open(path) as im:
            im.load()

    return load


@pytest.fixture(scope="module")
def big_fixed(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """4096 x 4096 fixed-width files, K = 256 (opens as P) and K = 300 (opens as RGB): 16 megapixels each."""
    folder = tmp_path_factory.mktemp("big")
    files = {}
    for k in (256, 300):
        files[k] = folder / f"k{k}.kvq"
        files[k].write_bytes(_file(k, 3, "fixed", height=4096, width=4096, metadata=kvq.Metadata()))
    return files


@pytest.mark.parametrize("door", ["pillow", "decode_file", "kvq decode"])
@pytest.mark.parametrize("k", [256, 300])
def test_memory_beyond_the_output_is_one_band(door, k, big_fixed, tmp_path, monkeypatch) -> None:
    # A whole decode of a 16-megapixel file holds the file (16 or 18 MiB) and every index (16 or 32 MiB), and at
    # K = 300 every pixel again (48 MiB) beside Pillow's image. By bands of 256 Ki pixels: a few MiB (a band's
    # indices, its pixels and the lookup's temporaries, about 25 bytes a band pixel; 1 MiB read at a time for the CRC).
    monkeypatch.setattr(bands, "BAND_PIXELS", 1 << 18)
    path = big_fixed[k]
    n = 4096 * 4096
    work: Callable[[], object]
    if door == "pillow":
        work = _pillow_load(path)
    elif door == "decode_file":
        work = lambda: decode_file(path, tmp_path / "out.bmp")  # noqa: E731 - BMP: no compressor's own buffers
    else:
        work = lambda: main(["decode", str(path), "-o", str(tmp_path / "out.bmp"), "-q"])  # noqa: E731
    peak = _peak(work)
    assert peak < n // 2, f"{peak / 2**20:.1f} MiB traced while decoding 16 megapixels"


def test_an_entropy_coded_file_is_looked_up_a_band_at_a_time(tmp_path, monkeypatch) -> None:
    """Coding 1 is decoded whole to its indices (2 bytes a pixel at K = 300), never to all of its RGBA pixels (4)."""
    monkeypatch.setattr(bands, "BAND_PIXELS", 1 << 16)
    height = width = 1024
    data = _file(300, 4, "entropy", height=height, width=width, metadata=kvq.Metadata())
    assert kvq.read_header(data).coding == 1
    path = tmp_path / "big.kvq"
    path.write_bytes(data)
    kvq.decode(data)  # the coder's kernel loaded before measuring
    # The index stream's own decode (the file, the coder's copy of it and tables, the index array) is the floor;
    # a band of 64 Ki pixels looked up is a quarter of a megabyte, a whole lookup 4 MiB and its temporaries.
    bound = _peak(lambda: kvq.decode_indexed(data)) + 4 * height * width // 4
    for work in (_pillow_load(path), lambda: decode_file(path, tmp_path / "out.tif", force=True)):
        peak = _peak(work)
        assert peak < bound, f"{peak / 2**20:.2f} MiB traced, bound {bound / 2**20:.2f} MiB"
    # The whole decode needs more than the bound.
    assert _peak(lambda: kvq.decode(data)) > bound
