"""The benchmark is fair: RGBA quality on what is visible, ratios summarised by geometric means, charts that name
their reference."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("skimage")
pytest.importorskip("tqdm")

from kvq.bench import figures, quality, report
from kvq.bench.suite import InputImage, measure
from kvq.options import EncoderOptions


def _logo() -> np.ndarray:
    """A 32 x 48 logo: an opaque disc and a soft edge on a transparent background whose colour is noise."""
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:32, 0:48]
    r = np.hypot(y - 16, x - 24)
    alpha = np.clip((14 - r) * 64, 0, 255).astype(np.uint8)
    rgba = rng.integers(0, 256, (32, 48, 4), dtype=np.uint8)  # the colour of invisible pixels: anything
    rgba[r < 12, :3] = (200, 30, 60)
    rgba[..., 3] = alpha
    return rgba


def test_transparent_pixels_colour_does_not_count():
    logo = _logo()
    cleaned = logo.copy()
    cleaned[logo[..., 3] == 0, :3] = 0  # what a codec may do: make invisible pixels black
    assert (logo[..., 3] == 0).sum() > 500
    assert quality.psnr(logo, cleaned) == math.inf
    assert quality.ssim(logo, cleaned) == 1.0
    assert quality.delta_e2000(logo, cleaned) == 0.0


def test_rgba_psnr_is_on_premultiplied_colour():
    original = np.array([[[100, 100, 100, 255], [100, 100, 100, 51], [9, 9, 9, 0]]], dtype=np.uint8)
    decoded = np.array([[[110, 100, 100, 255], [110, 100, 100, 51], [200, 0, 50, 0]]], dtype=np.uint8)
    # Per sample: 10 (opaque), 10 x 51/255 = 2 (a fifth visible), 0 (invisible); 12 samples in all.
    mse = (10.0**2 + 2.0**2) / 12
    assert quality.psnr(original, decoded) == pytest.approx(10 * math.log10(255**2 / mse))
    # A change of alpha counts even where the colour is the same.
    faded = original.copy()
    faded[0, 0, 3] = 245
    assert math.isfinite(quality.psnr(original, faded))


def test_opaque_images_are_measured_as_before():
    from kvq.metrics import psnr as plain_psnr

    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    assert quality.psnr(a, b) == plain_psnr(a, b)


def test_the_row_of_an_rgba_logo_scores_its_visible_pixels():
    row = measure(InputImage("logo", _logo(), "test"), 16, EncoderOptions(), want_peers=())
    # Straight RGBA would score the noise behind the disc: about 10 dB.
    assert row.psnr > 25


def _rows() -> list:
    rng = np.random.default_rng(2)
    rgb = InputImage("rgb", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), "test")
    base = measure(rgb, 4, EncoderOptions(), want_peers=())
    rows = []
    for name, factor, peer_bytes in (("a", 2.0, 100), ("b", 2.0, 100), ("c", 200.0, 1)):
        peer = {"bytes": peer_bytes, "bpp": 1.0, "psnr": 30.0, "ssim": 0.9}
        rows.append(dataclasses.replace(base, image=name, factor_vs_raw=factor, file_bytes=100, peers={"png8": peer}))
    return rows


def test_ratios_are_summarised_by_geometric_means():
    (summary,) = report.summarise(_rows())
    # One extreme image (factor 200, 100 times the peer) moves the mean of ratios from 2 to 68 and from 1 to 34.
    assert summary.factor == pytest.approx((2 * 2 * 200) ** (1 / 3))
    assert summary.ratio["png8"] == (pytest.approx(100 ** (1 / 3)), 3)
    # kvq ÷ peer summarises as the inverse of peer ÷ kvq.
    flipped = [
        dataclasses.replace(r, file_bytes=r.peers["png8"]["bytes"], peers={"png8": {**r.peers["png8"], "bytes": 100}})
        for r in _rows()
    ]
    assert report.summarise(flipped)[0].ratio["png8"][0] == pytest.approx(1 / summary.ratio["png8"][0])


def _legend(rows, tmp_path, monkeypatch) -> list[str]:
    import matplotlib.figure

    seen = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: seen.append(fig))
    figures.bits_vs_raw(rows, tmp_path / "bits.png")
    (fig,) = seen
    left = fig.axes[0]
    return [t.get_text() for t in left.get_legend().get_texts()] + [left.get_title()]


def test_bits_chart_names_its_reference(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    rgb, rgba = (
        measure(InputImage(name, rng.integers(0, 256, (16, 16, c), dtype=np.uint8), "t"), 4, EncoderOptions(), ())
        for name, c in (("rgb", 3), ("rgba", 4))
    )
    assert "uncompressed (24·N)" in _legend([rgb], tmp_path, monkeypatch)
    only_rgba = _legend([rgba], tmp_path, monkeypatch)
    assert "uncompressed (32·N)" in only_rgba and ".kvq palette (32·K)" in only_rgba
    mixed = _legend([rgb, rgba], tmp_path, monkeypatch)
    assert not any("24·N" in text or "24·K" in text for text in mixed), mixed
    assert "uncompressed (8·C·N, mean 28 bpp)" in mixed
    assert "Bits of a .kvq file against 8·C·N and the theory" in mixed
