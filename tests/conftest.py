"""Shared fixtures. Keep this file small and additive: several test files use it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
KODAK = REPO.parent / "shared" / "kodak"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240607)


@pytest.fixture
def example_rgb() -> np.ndarray:
    """The spec's worked example: 3x2 RGB, red/green/blue, indices 0 1 2 / 2 0 1."""
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    return palette[np.array([[0, 1, 2], [2, 0, 1]])]


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photo, downscaled to 192x128 so that encoding it stays fast; skipped when absent."""
    path = KODAK / "kodim01.png"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((192, 128), Image.Resampling.BOX))
