"""kvq's indexed PNG writer (kvq.pngwrite): exact pixels, the smallest bit depth, tRNS trimmed, same bytes every run."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import kvq
from kvq import pngwrite
from kvq.cli import main
from kvq.options import EncoderOptions
from kvq.quantize import quantize


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, each CRC checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        assert struct.unpack(">I", png[at + 8 + length : at + 12 + length])[0] == zlib.crc32(kind + data)
        out.append((kind, data))
        at += 12 + length
    return out


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        assert im.mode == "P"
        return np.asarray(im.convert("RGBA"))


def _rgba(palette: np.ndarray, indices: np.ndarray) -> np.ndarray:
    if palette.shape[1] == 3:
        palette = np.concatenate([palette, np.full((len(palette), 1), 255, dtype=np.uint8)], axis=1)
    return palette[indices]


@pytest.fixture(scope="module")
def quantized() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """A 128 x 96 crop of china.jpg quantized at K = 2, 3, 5, 16, 17 and 256 (every bit depth and its edges)."""
    from sklearn.datasets import load_sample_image

    photo = np.ascontiguousarray(load_sample_image("china.jpg")[80:176, 180:308])
    return {k: quantize(photo, EncoderOptions(k=k)) for k in (2, 3, 5, 16, 17, 256)}


@pytest.mark.parametrize("k, depth", [(2, 1), (3, 2), (5, 4), (16, 4), (17, 8), (256, 8)])
@pytest.mark.parametrize("effort", pngwrite.EFFORTS)
def test_pixels_exact_and_bit_depth_the_smallest_or_a_byte(quantized, k, depth, effort) -> None:
    palette, indices = quantized[k]
    png = pngwrite.encode_png(indices, palette, effort=effort)
    kinds = [kind for kind, _ in _chunks(png)]
    assert kinds == [b"IHDR", b"PLTE", b"IDAT", b"IEND"]  # opaque: no tRNS
    ihdr = _chunks(png)[0][1]
    # Effort 0 packs the indices; the others may find a byte an index smaller (deflate works on bytes).
    assert struct.unpack(">IIBB", ihdr[:10]) in {(128, 96, depth, 3), (128, 96, 8 if effort else depth, 3)}
    assert np.array_equal(_pixels(png), _rgba(palette, indices))


@pytest.mark.parametrize("order", pngwrite.ORDERS)
@pytest.mark.parametrize("strategy", pngwrite.STRATEGIES)
@pytest.mark.parametrize("k", [5, 256])
def test_every_order_and_filter_strategy_decodes_to_the_same_image(quantized, order, strategy, k) -> None:
    palette, indices = quantized[k]
    permutation = pngwrite.palette_orders(indices, palette).get(order)
    if permutation is None:
        pytest.skip(f"order {order} repeats an earlier one here")
    assert sorted(permutation) == list(range(len(palette)))
    position = np.empty(len(palette), dtype=np.uint8)
    position[permutation] = np.arange(len(palette))
    depth = 8 if strategy == "paeth" else pngwrite.bit_depth(len(palette))
    stream = zlib.compress(pngwrite.filtered_rows(position[indices], depth, strategy))
    png = pngwrite._assemble(indices.shape[1], indices.shape[0], depth, palette[permutation], stream, None)
    assert np.array_equal(_pixels(png), _rgba(palette, indices))


def test_same_bytes_every_time(quantized) -> None:
    palette, indices = quantized[16]
    for effort in pngwrite.EFFORTS:
        first = pngwrite.encode_png(indices, palette, effort=effort, info={"dpi": (300, 300)})
        assert pngwrite.encode_png(indices.copy(), palette.copy(), effort=effort, info={"dpi": (300, 300)}) == first


def test_trns_holds_only_the_translucent_entries_which_come_first() -> None:
    # 10 entries, three of them translucent and not at the start of kvq's palette.
    palette = np.array([[10 * i, 255 - 20 * i, 7 * i, 255] for i in range(10)], dtype=np.uint8)
    palette[[2, 5, 9], 3] = [0, 128, 200]
    indices = (np.add.outer(np.arange(20), np.arange(30)) % 10).astype(np.uint8)
    for effort in pngwrite.EFFORTS:
        png = pngwrite.encode_png(indices, palette, effort=effort)
        assert np.array_equal(_pixels(png), palette[indices])
        if effort == 2:
            continue  # oxipng's file, when smaller, has its own palette order
        chunks = dict(_chunks(png))
        assert sorted(chunks[b"tRNS"]) == [0, 128, 200]
        stored = np.frombuffer(chunks[b"PLTE"], dtype=np.uint8).reshape(-1, 3)
        assert sorted(map(tuple, stored[:3])) == sorted(map(tuple, palette[[2, 5, 9], :3]))


def test_metadata_chunks_as_pillow_writes_them(quantized) -> None:
    palette, indices = quantized[16]
    info = {"icc_profile": b"\0" * 128, "exif": b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00", "dpi": (150, 150)}
    png = pngwrite.encode_png(indices, palette, info=info)
    kinds = [kind for kind, _ in _chunks(png)]
    assert kinds.index(b"iCCP") < kinds.index(b"PLTE") < kinds.index(b"IDAT")
    assert b"pHYs" in kinds and b"eXIf" in kinds
    with Image.open(io.BytesIO(png)) as im:
        assert im.info["icc_profile"] == info["icc_profile"]
        assert im.info["dpi"] == pytest.approx((150, 150), rel=1e-3)  # PNG stores pixels per metre


def test_smaller_than_pillows_png_of_the_same_pixels(quantized) -> None:
    for k in (16, 256):
        palette, indices = quantized[k]
        image = Image.fromarray(indices)
        image.putpalette(palette.tobytes())
        pillow = io.BytesIO()
        image.save(pillow, "PNG")
        default, most = (len(pngwrite.encode_png(indices, palette, effort=e)) for e in (1, 2))
        assert most <= default < len(pillow.getvalue())


def test_bad_arguments_are_refused() -> None:
    indices = np.zeros((2, 2), dtype=np.uint8)
    with pytest.raises(ValueError, match="effort"):
        pngwrite.encode_png(indices, np.zeros((1, 3), dtype=np.uint8), effort=3)
    with pytest.raises(ValueError, match="1 to 256"):
        pngwrite.encode_png(indices, np.zeros((257, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="beyond"):
        pngwrite.encode_png(indices + 1, np.zeros((1, 3), dtype=np.uint8))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_encode_and_decode_to_png_give_kvqs_pixels(tmp_path, photo, channels) -> None:
    pixels = photo if channels == 3 else photo[..., :1].copy() if channels == 1 else np.dstack([photo, photo[..., 1]])
    source = tmp_path / "in.png"
    Image.fromarray(pixels.squeeze() if channels == 1 else pixels).save(source)
    assert main(["encode", str(source), "-o", str(tmp_path / "q.kvq"), "-k", "16", "-q"]) == 0
    assert main(["encode", str(source), "-o", str(tmp_path / "q.png"), "-k", "16", "-q"]) == 0
    assert main(["decode", str(tmp_path / "q.kvq"), "-o", str(tmp_path / "d.png"), "-q"]) == 0
    expected = kvq.decode(tmp_path / "q.kvq")
    for name in ("q.png", "d.png"):
        with Image.open(tmp_path / name) as im:
            assert im.mode == "P"
            mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
            assert np.array_equal(np.asarray(im.convert(mode)).reshape(expected.shape), expected)
    assert (tmp_path / "q.png").read_bytes() == (tmp_path / "d.png").read_bytes()
