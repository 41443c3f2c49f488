"""The numpy quantizer of small images (kvq.quantize.small): no compiled kernels, the engine's quality, fixed bytes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from kvq.metrics import psnr
from kvq.options import EncoderOptions
from kvq.quantize import quantize, uses_kernels
from kvq.quantize.small import SMALL_WORK, quantize_small

from conftest import kvq_env


@pytest.fixture(scope="module")
def thumb() -> np.ndarray:
    from sklearn.datasets import load_sample_image

    return np.ascontiguousarray(load_sample_image("china.jpg")[::4, ::4][:96, :128])  # a photo, 12,288 pixels


def _blurred_psnr(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.ndimage import gaussian_filter

    return psnr(gaussian_filter(a.astype(np.float64), (1, 1, 0)), gaussian_filter(b.astype(np.float64), (1, 1, 0)))


def test_the_path_depends_on_pixels_times_k_only() -> None:
    assert not uses_kernels((128, 128), EncoderOptions(k=64))
    assert not uses_kernels((256, 256), EncoderOptions(k=16))
    assert uses_kernels((128, 128), EncoderOptions(k=256))
    assert uses_kernels((512, 768), EncoderOptions(k=16))
    assert uses_kernels((16, 16), EncoderOptions(k=16, method="kmeans"))
    assert 128 * 128 * 64 <= SMALL_WORK < 128 * 128 * 256


@pytest.mark.parametrize("k", [16, 64])
def test_palette_close_to_the_engines(thumb: np.ndarray, k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    small = quantize(thumb, EncoderOptions(k=k))
    monkeypatch.setattr("kvq.quantize.small.SMALL_WORK", 0)
    engine = quantize(thumb, EncoderOptions(k=k))
    assert len(small[0]) == k
    assert psnr(thumb, np.take(*small, axis=0)) >= psnr(thumb, np.take(*engine, axis=0)) - 0.3


@pytest.mark.parametrize("k", [8, 32])
def test_dithering_pays_after_a_blur(thumb: np.ndarray, k: int) -> None:
    plain = np.take(*quantize_small(thumb, EncoderOptions(k=k)), axis=0)
    dithered = np.take(*quantize_small(thumb, EncoderOptions(k=k, dither=1.0)), axis=0)
    assert _blurred_psnr(thumb, dithered) > _blurred_psnr(thumb, plain) + 0.3
    assert psnr(thumb, plain) - psnr(thumb, dithered) < 1.5


def test_labels_are_the_nearest_stored_entries(thumb: np.ndarray) -> None:
    palette, indices = quantize_small(thumb, EncoderOptions(k=16))
    d = ((thumb[..., None, :].astype(np.int64) - palette.astype(np.int64)) ** 2).sum(-1)
    np.testing.assert_array_equal(indices, d.argmin(-1))
    assert len(np.unique(palette, axis=0)) == len(palette) == len(np.unique(indices))


def test_transparent_pixels_share_one_entry_and_take_no_error() -> None:
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (40, 40, 4), dtype=np.uint8)
    rgba[:, :20, 3] = 0
    rgba[:, 20:, 3] = 255
    palette, indices = quantize_small(rgba, EncoderOptions(k=16, dither=1.0))
    assert (palette[indices[:, :20]] == 0).all()
    assert (palette[indices[:, 20:], 3] == 255).all()


def test_kvq_png_on_an_icon_imports_no_numba_and_gives_the_same_bytes_twice(tmp_path) -> None:
    icon = tmp_path / "icon.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (128, 128, 4), dtype=np.uint8)).save(icon)
    script = (
        "import sys, kvq.cli\n"
        f"rc = kvq.cli.main(['png', '64', {str(icon)!r}, '-o', sys.argv[1]])\n"
        "print(__import__('json').dumps([rc, sorted(m for m in ('numba', 'sklearn', 'scipy') if m in sys.modules)]))\n"
    )
    outputs = []
    for name in ("a.png", "b.png"):
        run = subprocess.run([sys.executable, "-c", script, str(tmp_path / name)], capture_output=True, text=True, env=kvq_env())
        assert json.loads(run.stdout.strip().splitlines()[-1]) == [0, []], run.stderr
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]


def test_import_kvq_is_light_and_keeps_the_public_api() -> None:
    code = (
        "import sys, json, kvq\n"
        "light = sorted(m for m in ('numba', 'sklearn', 'bitarray', 'kvq.codec', 'kvq.container') if m in sys.modules)\n"
        "from PIL import Image\n"
        "api = all(hasattr(kvq, name) for name in kvq.__all__)\n"
        "print(json.dumps([light, api, 'KVQ' in Image.OPEN]))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=kvq_env())
    assert json.loads(run.stdout.strip().splitlines()[-1]) == [[], True, True], run.stderr
