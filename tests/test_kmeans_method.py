"""The textbook method, ``method="kmeans"``: scikit-learn's KMeans on the colour histogram, through every door.

The reference in each test is scikit-learn itself, called here as the tutorials call it; kvq's result must be exactly
its palette rounded to bytes, with every pixel on its nearest entry.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kvq
from kvq.quantize.sklearn_kmeans import KMEANS_SETTINGS

from conftest import kvq_env
from conftest import run_kvq_here as run


def textbook_palette(pixels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """KMeans on the distinct colours weighted by their counts, its centres rounded to bytes, as rows sorted."""
    from sklearn.cluster import KMeans

    colours, counts = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0, return_counts=True)
    model = KMeans(n_clusters=k, random_state=seed, **KMEANS_SETTINGS).fit(colours.astype(float), sample_weight=counts)
    rounded = np.clip(np.rint(model.cluster_centers_), 0, 255).astype(np.uint8)
    return np.unique(rounded, axis=0)


def nearest_entries(pixels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    flat = pixels.reshape(-1, palette.shape[1]).astype(np.int64)
    distances = ((flat[:, None, :] - palette[None, :, :].astype(np.int64)) ** 2).sum(axis=2)
    return distances.min(axis=1)


@pytest.mark.parametrize("k", [2, 16, 64])
def test_the_palette_is_scikit_learns_kmeans(photo: np.ndarray, k: int) -> None:
    decoded = kvq.decode_indexed(kvq.encode(photo, k=k, method="kmeans", seed=7))
    stored = np.unique(decoded.palette, axis=0)
    # Entries nobody's nearest are dropped, as in every .kvq file; every stored one is a rounded KMeans centre.
    expected = textbook_palette(photo, k, 7)
    assert {tuple(row) for row in stored} <= {tuple(row) for row in expected}
    # The dropped ones are nobody's nearest: the stored palette is as close to every pixel as all the centres.
    assert np.array_equal(nearest_entries(photo, stored), nearest_entries(photo, expected))
    # Every pixel is on its nearest stored entry (squared distance; ties may take either equal entry).
    pixels = decoded.palette[decoded.indices]
    gap = ((photo.astype(np.int64) - pixels) ** 2).sum(axis=2).reshape(-1)
    assert np.array_equal(gap, nearest_entries(photo, decoded.palette))


def test_the_seed_is_kmeans_random_state(photo: np.ndarray) -> None:
    once = kvq.encode(photo, k=16, method="kmeans", seed=1)
    assert kvq.encode(photo, k=16, method="kmeans", seed=1) == once
    # Another seed, other k-means++ starting centres, another palette, as scikit-learn gives.
    assert {kvq.encode(photo, k=16, method="kmeans", seed=seed) for seed in (1, 2, 3)} != {once}
    assert not np.array_equal(textbook_palette(photo, 16, 1), textbook_palette(photo, 16, 2))
    # kvq's own engine draws no random numbers: the seed changes nothing there.
    assert kvq.encode(photo, k=16, seed=1) == kvq.encode(photo, k=16, seed=2)


def test_same_bytes_whatever_the_number_of_threads(tmp_path: Path, photo: np.ndarray) -> None:
    source = tmp_path / "photo.npy"
    np.save(source, photo)
    code = f"import sys, numpy as np, kvq; sys.stdout.buffer.write(kvq.encode(np.load({str(source)!r}), k=64, method='kmeans'))"
    here = kvq.encode(photo, k=64, method="kmeans")
    for threads in ("1", "2", "4"):
        env = {**kvq_env(), "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True).stdout == here


def test_every_door_gives_the_same_file(tmp_path: Path, photo: np.ndarray, photo_png: Path) -> None:
    library = kvq.encode(photo, k=16, method="kmeans", seed=5)
    result = run("encode", photo_png, "-o", tmp_path / "cli.kvq", "-k", "16", "--method", "kmeans", "--seed", "5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cli.kvq").read_bytes() == library
    saved = io.BytesIO()
    Image.fromarray(photo).save(saved, format="KVQ", k=16, method="kmeans", seed=5)
    assert saved.getvalue() == library
    # A P image saved with method= is quantized again, as with any other encoder option.
    indexed = Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    again = io.BytesIO()
    indexed.save(again, format="KVQ", k=16, method="kmeans", seed=5)
    assert again.getvalue() == kvq.encode(indexed, k=16, method="kmeans", seed=5)


def test_quality_dither_transparency_and_the_method_name(photo: np.ndarray) -> None:
    # quality picks the smallest file reaching the PSNR, with KMeans palettes.
    reached = kvq.encode_image(photo, k=64, quality=30, method="kmeans")
    assert reached.psnr >= 30 and reached.header.k <= 64
    # Dithering maps pixels to the same palette.
    plain = kvq.decode_indexed(kvq.encode(photo, k=8, method="kmeans"))
    dithered = kvq.decode_indexed(kvq.encode(photo, k=8, method="kmeans", dither=1))
    assert {tuple(r) for r in dithered.palette} <= {tuple(r) for r in plain.palette}
    assert not np.array_equal(plain.indices, dithered.indices)
    # Fully transparent pixels keep an entry of their own, (0, 0, 0, 0), as with the engine.
    rgba = np.dstack([photo, np.where(np.arange(photo.shape[1]) < 20, 0, 255).astype(np.uint8)[None, :].repeat(photo.shape[0], 0)])
    back = kvq.decode(kvq.encode(rgba, k=8, method="kmeans"))
    assert (back[:, :20] == 0).all() and (back[:, 20:, 3] == 255).all()
    with pytest.raises(kvq.OptionError, match="method must be one of kvq, kmeans, not 'sklearn'"):
        kvq.encode(photo, method="sklearn")


def test_scikit_learn_is_imported_only_for_the_method(tmp_path: Path, photo: np.ndarray) -> None:
    source = tmp_path / "photo.npy"
    np.save(source, photo)
    probe = "import sys, numpy as np, kvq; kvq.encode(np.load({!r}), k=16{}); print('sklearn' in sys.modules)"
    for extra, imported in (("", "False"), (", method='kmeans'", "True")):
        out = subprocess.run(
            [sys.executable, "-c", probe.format(str(source), extra)], env=kvq_env(), capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == imported, extra
