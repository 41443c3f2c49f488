"""The encode/decode API on real data: exact colours, exact sizes, canonical palettes, every input kind."""

from __future__ import annotations

import doctest
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kvq
import kvq.codec
from kvq.codec import compact
from kvq.errors import UnsupportedImageError

REPO = Path(__file__).resolve().parent.parent


def expected_size(channels: int, k: int, n: int) -> int:
    bits = (k - 1).bit_length()
    return 62 + channels * k + (n * bits + 7) // 8


def distinct_colours(rng, k: int, channels: int) -> np.ndarray:
    """``k`` distinct colours; alpha stays above 0, where the quantizer may merge colours."""
    space = 256**channels
    keys = rng.choice(space, size=k, replace=False) if space > 1 << 20 else rng.permutation(space)[:k]
    colours = np.stack([(keys >> (8 * (channels - 1 - ch))) & 0xFF for ch in range(channels)], axis=1)
    colours = colours.astype(np.uint8)
    if channels == 4:
        colours[:, 3] |= 1
        assert len(np.unique(colours, axis=0)) == k or pytest.skip("alpha fix-up merged colours")
    return colours


def image_with_colours(rng, colours: np.ndarray, width: int, height: int) -> np.ndarray:
    k = len(colours)
    labels = np.concatenate([np.arange(k), rng.integers(0, k, size=width * height - k)])
    image = colours[rng.permutation(labels)].reshape(height, width, -1)
    return image[:, :, 0] if colours.shape[1] == 1 else image


def assert_canonical(data: bytes) -> None:
    """No unused and no duplicate palette entries."""
    decoded = kvq.decode_indexed(data)
    k = decoded.header.k
    assert len(np.unique(decoded.palette, axis=0)) == k
    assert np.bincount(decoded.indices.reshape(-1), minlength=k).min() > 0


CASES = [(c, k) for c in (1, 3, 4) for k in (1, 2, 3, 16, 255, 256, 257) if not (c == 1 and k > 256)]


@pytest.mark.parametrize("channels, k", CASES, ids=[f"C{c}-K{k}" for c, k in CASES])
def test_few_colour_images_are_stored_losslessly_at_the_exact_size(rng, channels, k):
    width, height = 23, 13 if k < 257 else 23  # odd sizes: rows do not end on byte boundaries
    image = image_with_colours(rng, distinct_colours(rng, k, channels), width, height)
    data = kvq.encode(image, k=k)
    header = kvq.read_header(data)
    assert (header.width, header.height, header.channels, header.k) == (width, height, channels, k)
    assert header.bits == (k - 1).bit_length()
    assert len(data) == expected_size(channels, k, width * height) == header.file_size
    np.testing.assert_array_equal(kvq.decode(data), image)
    assert_canonical(data)
    # A larger allowance stores only the colours there are.
    assert kvq.encode(image, k=min(65536, 2 * k + 5)) == data


def test_65536_distinct_colours_are_lossless_at_16_bits():
    keys = np.arange(65536, dtype=np.uint32) * 197 % 65536  # a permutation: every colour once
    image = np.stack([keys >> 8, keys & 0xFF, (keys * 7) & 0xFF], axis=1).astype(np.uint8).reshape(256, 256, 3)
    data = kvq.encode(image, k=65536)
    header = kvq.read_header(data)
    assert (header.k, header.bits) == (65536, 16)
    assert len(data) == 62 + 3 * 65536 + 65536 * 2
    np.testing.assert_array_equal(kvq.decode(data), image)


def test_photo_is_quantized_to_a_canonical_palette(photo):
    for k in (2, 16, 200):
        data = kvq.encode(photo, k=k)
        header = kvq.read_header(data)
        assert 1 <= header.k <= k
        assert len(data) == expected_size(3, header.k, photo.shape[0] * photo.shape[1])
        assert_canonical(data)
        decoded = kvq.decode(data)
        assert decoded.shape == photo.shape
        if k == 200:
            mse = np.mean((decoded.astype(float) - photo) ** 2)
            assert 10 * np.log10(255**2 / mse) > 30


def test_encoding_is_deterministic(photo):
    assert kvq.encode(photo, k=37) == kvq.encode(photo, k=37)


def test_encode_image_agrees_with_encode(example_rgb):
    encoded = kvq.encode_image(example_rgb, k=8)
    assert encoded.data == kvq.encode(example_rgb, k=8)
    np.testing.assert_array_equal(encoded.pixels(), example_rgb)
    assert encoded.header == kvq.read_header(encoded.data)


# --- compact and encode_indexed --------------------------------------------------------------------


def test_compact_leaves_a_compact_palette_alone():
    palette = np.array([[9, 9, 9], [1, 2, 3], [0, 0, 0]], dtype=np.uint8)
    indices = np.array([[2, 1], [0, 0]], dtype=np.uint8)
    p, i = compact(palette, indices)
    np.testing.assert_array_equal(p, palette)
    np.testing.assert_array_equal(i, indices)


def test_compact_drops_unused_and_merges_duplicates_in_order_of_first_appearance():
    palette = np.array([[5], [7], [5], [9], [7], [1]], dtype=np.uint8)  # 0 = 2, 1 = 4, 5 unused
    indices = np.array([[4, 2, 3], [0, 1, 4]], dtype=np.uint16)
    p, i = compact(palette, indices)
    np.testing.assert_array_equal(p, [[5], [7], [9]])
    np.testing.assert_array_equal(i, [[1, 0, 2], [0, 1, 1]])
    assert i.dtype == np.uint8
    np.testing.assert_array_equal(p[i], palette[indices])


def test_compact_across_the_uint8_boundary():
    palette = np.repeat(np.arange(256, dtype=np.uint8), 2)[:, None]  # 512 entries, each colour twice
    indices = np.arange(512, dtype=np.uint16).reshape(16, 32)
    p, i = compact(palette, indices)
    assert p.shape == (256, 1) and i.dtype == np.uint8
    np.testing.assert_array_equal(p[i], palette[indices])


def test_encode_indexed_stores_the_given_palette_order(example_rgb):
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    data = kvq.encode_indexed(palette=palette, indices=np.array([[0, 1, 2], [2, 0, 1]]))
    assert isinstance(data, bytes)
    assert data == (REPO / "spec" / "vectors" / "valid" / "rgb_3x2_k3.kvq").read_bytes()
    decoded = kvq.decode_indexed(data)
    np.testing.assert_array_equal(decoded.palette, palette)
    np.testing.assert_array_equal(decoded.pixels(), example_rgb)


def test_encode_indexed_drops_unused_and_duplicate_entries():
    palette = np.array([[1, 1, 1, 255], [2, 2, 2, 255], [1, 1, 1, 255], [3, 3, 3, 0]], dtype=np.uint8)
    indices = np.array([[0, 2, 1, 1, 2]])
    data = kvq.encode_indexed(palette=palette, indices=indices)
    decoded = kvq.decode_indexed(data)
    assert decoded.header.k == 2 and len(data) == expected_size(4, 2, 5)
    np.testing.assert_array_equal(decoded.pixels(), palette[indices])


@pytest.mark.parametrize(
    "indices, palette",
    [
        (np.array([[0, 3]]), np.zeros((3, 3), np.uint8)),
        (np.array([[0, -1]]), np.zeros((3, 3), np.uint8)),
        (np.array([0, 1]), np.zeros((3, 3), np.uint8)),
        (np.zeros((0, 4), int), np.zeros((3, 3), np.uint8)),
        (np.array([[0.0]]), np.zeros((3, 3), np.uint8)),
        (np.array([[0]]), np.zeros((3, 2), np.uint8)),
        (np.array([[0]]), np.zeros((0, 3), np.uint8)),
        (np.array([[0]]), np.zeros((65537, 1), np.uint8)),
        (np.array([[0]]), np.zeros((3, 3), np.int16)),
    ],
)
def test_encode_indexed_refuses_bad_input(indices, palette):
    with pytest.raises(UnsupportedImageError):
        kvq.encode_indexed(palette=palette, indices=indices)


def test_encode_indexed_old_positional_order_still_works_and_warns():
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    indices = np.array([[0, 1, 2], [2, 0, 1]])
    with pytest.warns(DeprecationWarning, match="palette=..., indices="):
        old = kvq.encode_indexed(indices, palette)
    with pytest.warns(DeprecationWarning):
        assert kvq.encode_indexed(indices, palette=palette) == old
    assert old == kvq.encode_indexed(palette=palette, indices=indices) == kvq.encode_indexed(indices=indices, palette=palette)
    with pytest.raises(TypeError):
        kvq.encode_indexed(palette=palette)


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 3), (5, 7, 4)])
def test_encoded_and_decoded_pixels_have_one_shape(shape):
    # Grey is (H, W) everywhere a user gets pixels: kvq.decode, Decoded, Encoded.
    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    encoded = kvq.encode_image(image, k=4)
    decoded = kvq.decode_indexed(encoded.data)
    expected = (5, 7) if len(shape) == 2 or shape[2] == 1 else shape
    assert encoded.pixels().shape == decoded.pixels().shape == kvq.decode(encoded.data).shape == expected
    assert encoded.original.shape == expected
    assert np.array_equal(encoded.original, image.reshape(expected))


def test_header_mode_is_deprecated_but_still_answers():
    header = kvq.read_header(kvq.encode(np.zeros((2, 2, 4), np.uint8), k=1))
    with pytest.warns(DeprecationWarning):
        assert header.mode == "RGBA"


# --- input conversions -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape, channels", [((4, 5), 1), ((4, 5, 1), 1), ((4, 5, 3), 3), ((4, 5, 4), 4),
                                             ((1, 1), 1), ((1, 1, 3), 3), ((1, 9, 3), 3), ((9, 1, 4), 4)])
def test_numpy_shapes(rng, shape, channels):
    image = rng.integers(1, 256, size=shape, dtype=np.uint8)
    data = kvq.encode(image, k=65536)
    decoded = kvq.decode(data)
    assert kvq.read_header(data).channels == channels
    np.testing.assert_array_equal(decoded, image.reshape(decoded.shape))


def test_non_contiguous_array(rng):
    image = rng.integers(0, 4, size=(10, 12, 3), dtype=np.uint8)[::2, ::-3]
    np.testing.assert_array_equal(kvq.decode(kvq.encode(image)), image)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((4, 4), np.uint16),
        np.zeros((4, 4, 3), np.float32),
        np.zeros((4, 4, 3), bool),
        np.zeros((4, 4, 2), np.uint8),
        np.zeros((4, 4, 5), np.uint8),
        np.zeros((4,), np.uint8),
        np.zeros((2, 4, 4, 3), np.uint8),
        np.zeros((0, 4, 3), np.uint8),
        np.zeros((4, 0), np.uint8),
        [[0, 1], [2, 3]],
        b"not an image",
    ],
    ids=lambda x: f"{type(x).__name__}-{getattr(x, 'dtype', '')}-{getattr(x, 'shape', '')}",
)
def test_unsupported_inputs(image):
    with pytest.raises(UnsupportedImageError):
        kvq.encode(image)


def _round_trip(im: Image.Image) -> np.ndarray:
    return kvq.decode(kvq.encode(im, k=65536))


def test_pillow_modes_L_and_1():
    grey = np.array([[0, 50, 255], [7, 7, 128]], dtype=np.uint8)
    np.testing.assert_array_equal(_round_trip(Image.fromarray(grey, "L")), grey)
    bilevel = Image.fromarray(grey > 100).convert("1")
    np.testing.assert_array_equal(_round_trip(bilevel), np.where(grey > 100, 255, 0))


def test_pillow_mode_LA_becomes_RGBA():
    la = np.array([[[10, 255], [200, 128]], [[0, 1], [99, 77]]], dtype=np.uint8)
    out = _round_trip(Image.fromarray(la, "LA"))
    assert out.shape == (2, 2, 4)
    np.testing.assert_array_equal(out[..., :3], np.repeat(la[..., :1], 3, axis=2))
    np.testing.assert_array_equal(out[..., 3], la[..., 1])


def test_pillow_mode_P_without_and_with_transparency():
    im = Image.new("P", (3, 2))
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    im.putdata([0, 1, 2, 2, 1, 0])
    rgb = _round_trip(im)
    assert rgb.shape == (2, 3, 3)
    np.testing.assert_array_equal(rgb[0], [[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    im.info["transparency"] = 1
    rgba = _round_trip(im)
    assert rgba.shape == (2, 3, 4)
    np.testing.assert_array_equal(rgba[0, 0], [255, 0, 0, 255])
    assert rgba[0, 1, 3] == 0 and rgba[1, 1, 3] == 0


def test_pillow_mode_I16_is_scaled_not_clipped():
    wide = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    im = Image.fromarray(wide)
    assert im.mode == "I;16"
    out = _round_trip(im)
    np.testing.assert_array_equal(out, [[0, 1, 128, 255]])


def test_pillow_mode_CMYK_becomes_RGB():
    im = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # no cyan, full magenta and yellow: red
    out = _round_trip(im)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out, np.broadcast_to(np.array(im.convert("RGB"))[0, 0], (2, 2, 3)))


def test_pillow_mode_RGBA(rng):
    rgba = rng.integers(1, 256, size=(5, 7, 4), dtype=np.uint8)
    np.testing.assert_array_equal(_round_trip(Image.fromarray(rgba, "RGBA")), rgba)


def test_exif_orientation_is_applied(rng):
    pixels = rng.integers(0, 256, size=(2, 3, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", exif=exif)
    with Image.open(io.BytesIO(buffer.getvalue())) as im:
        out = _round_trip(im)
    np.testing.assert_array_equal(out, np.rot90(pixels, k=-1))


# --- imports and docs ------------------------------------------------------------------------------


def test_import_and_decode_do_not_import_sklearn(tmp_path):
    path = tmp_path / "x.kvq"
    path.write_bytes((REPO / "spec" / "vectors" / "valid" / "rgb_19x17_k257.kvq").read_bytes())
    code = (
        "import sys, kvq\n"
        f"kvq.decode(open({str(path)!r}, 'rb').read()); kvq.load({str(path)!r}); kvq.read_header({str(path)!r})\n"
        "from PIL import Image\n"
        f"Image.open({str(path)!r}).load()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("module", [kvq, kvq.codec], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
