"""The figures the standard write-ups of k-means image compression publish, recomputed through kvq.

The write-ups (the k-means colour-compression exercise of the classic
machine-learning courses and the tutorials that follow it) take a
227×303 photo, N = 68,781 pixels, 24 bits each:

- K = 2: 68,781 index bits (1 per pixel) plus 2 × 24 = 48 palette bits,
  "about 4 %" of the 1,650,744 bits of the original;
- K = 16, 32, 64, 128: compression factors 6, 4.8, 4 and 3.43 on the
  indices (24 / ceil(log2 K));
- 256, 16 and 4 colours: 3×, 6× and 12× on the raw pixel data.

Each figure is checked exactly on real ``.kvq`` files, and so is kvq's only
addition to them: the spec's fixed overhead of 62 bytes plus the padding of
the last index byte. This module needs only kvq's core install.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import kvq
from kvq import OVERHEAD, breakdown

HEIGHT, WIDTH = 227, 303
N = 68_781
RAW_BITS = 1_650_744

#: Exact .kvq file sizes for a 227×303 RGB image with a full palette of K:
#: 62 + 3·K + ceil(N·b / 8) bytes.
FILE_BYTES = {2: 8_666, 4: 17_270, 16: 34_501, 32: 43_147, 64: 51_840, 128: 60_630, 256: 69_611}


def china_crop() -> np.ndarray:
    """A real photo: the top-left 227×303 of scikit-learn's china.jpg."""
    from sklearn.datasets import load_sample_image

    return np.ascontiguousarray(load_sample_image("china.jpg")[:HEIGHT, :WIDTH])


def exactly_k_colours(k: int) -> np.ndarray:
    """A 227×303 image using exactly k distinct colours, every one of them."""
    rng = np.random.default_rng(k)
    palette = np.zeros((k, 3), dtype=np.uint8)
    codes = rng.choice(2**24, size=k, replace=False)
    for ch in range(3):
        palette[:, ch] = (codes >> (8 * ch)) & 0xFF
    labels = rng.permutation(np.arange(N) % k)
    return palette[labels].reshape(HEIGHT, WIDTH, 3)


@pytest.fixture(scope="module")
def china() -> np.ndarray:
    image = china_crop()
    assert image.shape == (HEIGHT, WIDTH, 3)
    return image


_cache: dict[tuple[str, int], kvq.Encoded] = {}


def encoded(source: str, k: int) -> kvq.Encoded:
    """The .kvq encoding of one of the two 227×303 images at K, with a full palette."""
    if (source, k) not in _cache:
        image = china_crop() if source == "china" else exactly_k_colours(k)
        result = kvq.encode_image(image, k=k, coding="fixed")  # the published figures are fixed width
        # The published figures assume every one of the K colours is used.
        assert result.header.k == k, f"{source} at K={k} stored only {result.header.k} colours"
        assert (kvq.decode(result.data) == result.pixels()).all()
        _cache[(source, k)] = result
    return _cache[(source, k)]


SOURCES = ["china", "synthetic"]


def test_the_image_size():
    assert HEIGHT * WIDTH == N == 68_781
    assert 24 * N == RAW_BITS == 1_650_744


@pytest.mark.parametrize("source", SOURCES)
def test_two_colours_take_about_four_percent(source):
    result = encoded(source, 2)
    sizes = breakdown(result.header, len(result.data))
    assert result.header.bits == 1
    assert sizes.n_pixels == N
    assert sizes.raw_bits == RAW_BITS
    assert N * result.header.bits == 68_781  # index bits
    assert sizes.palette_bits == 48  # 2 colours × 24 bits
    assert sizes.theory_bits == 68_781 + 48 == 68_829
    assert round(100 * Fraction(sizes.theory_bits, sizes.raw_bits)) == 4  # "about 4 %"
    assert f"{sizes.theory_bits / sizes.raw_bits:.2%}" == "4.17%"
    # The file adds the 62-byte overhead and 3 bits of padding, and is still about 4 %.
    assert sizes.padding_bits == 3
    assert sizes.file_bits == 68_829 + 8 * 62 + 3 == 8 * 8_666
    assert round(100 * Fraction(sizes.file_bits, sizes.raw_bits)) == 4


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("k", "published"),
    [(16, Fraction(6)), (32, Fraction("4.8")), (64, Fraction(4)), (128, Fraction("3.43"))],
)
def test_compression_factors_on_the_indices(source, k, published):
    result = encoded(source, k)
    sizes = breakdown(result.header, len(result.data))
    factor = Fraction(sizes.raw_bits, N * result.header.bits)
    assert factor == Fraction(24, math.ceil(math.log2(k)))
    if published.denominator <= 5:  # 6, 4.8 and 4 are exact
        assert factor == published
    else:  # 24/7 = 3.4285..., published to two decimals
        assert round(float(factor), 2) == float(published)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("k", "published"), [(256, 3), (16, 6), (4, 12)])
def test_factors_on_raw_pixel_data(source, k, published):
    result = encoded(source, k)
    sizes = breakdown(result.header, len(result.data))
    assert Fraction(sizes.raw_bits, N * result.header.bits) == published


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("k", sorted(FILE_BYTES))
def test_kvq_adds_only_the_spec_overhead(source, k):
    result = encoded(source, k)
    header = result.header
    sizes = breakdown(header, len(result.data))
    b = header.bits
    assert b == math.ceil(math.log2(k))
    assert sizes.palette_bits == 24 * k
    assert sizes.theory_bits == N * b + 24 * k
    assert len(result.data) == FILE_BYTES[k] == OVERHEAD + 3 * k + math.ceil(N * b / 8)
    assert OVERHEAD == 62
    assert sizes.overhead_bits == 8 * 62
    assert sizes.index_bits == 8 * math.ceil(N * b / 8)
    assert 0 <= sizes.padding_bits <= 7
    assert sizes.ancillary_bits == 0
    assert sizes.file_bits == sizes.theory_bits + 8 * 62 + sizes.padding_bits
    assert sizes.matches_theory
