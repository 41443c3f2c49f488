"""The graphics set's builder (benchmarks/graphics/build.py): manifest, source and image checks on a tiny fake source.

The set itself is never built here (it downloads packages and runs Chromium); these tests run the builder's
own logic on a fake npm tarball already in the cache, so nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


def load_builder():
    spec = importlib.util.spec_from_file_location("graphics_build", REPO / "benchmarks" / "graphics" / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["graphics_build"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


gb = load_builder()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def fake(tmp_path: Path):
    """A cache holding a verified npm tarball with one 6x4 RGBA sprite, its Source, and two recipes."""
    rgba = np.zeros((4, 6, 4), dtype=np.uint8)
    rgba[1:3, 1:5] = (200, 40, 10, 255)
    rgba[0, 0] = (0, 0, 255, 128)
    sprite = png_bytes(Image.fromarray(rgba, "RGBA"))
    cache = tmp_path / "cache"
    (cache / "npm").mkdir(parents=True)
    tgz = cache / "npm" / "fake-sprites-1.0.0.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        info = tarfile.TarInfo("package/sprite.png")
        info.size = len(sprite)
        tar.addfile(info, io.BytesIO(sprite))
    digest = hashlib.sha256(tgz.read_bytes()).hexdigest()
    source = gb.Source("fake", "npm", "fake-sprites", "1.0.0", digest, "CC0-1.0", "fake-sprites-1.0.0.tgz")

    def sprite_as_is(ctx):
        return Image.open(io.BytesIO(ctx["fake"].read("package/sprite.png")))

    def sprite_opaque(ctx):
        return sprite_as_is(ctx).convert("RGB")

    recipes = [
        gb.Recipe("pixelart/sprite.png", ("fake",), "CC0-1.0", "the sprite as is", sprite_as_is, group="sprite"),
        gb.Recipe("pixelart/sprite-opaque.png", ("fake",), "CC0-1.0", "the sprite on black", sprite_opaque),
    ]
    return cache, {"fake": source}, recipes, rgba


def run(fake, tmp_path: Path, **kwargs):
    cache, sources, recipes, _ = fake
    return gb.build(recipes, sources, tmp_path / "out", cache, tmp_path / "lock.json", log=lambda _: None, **kwargs)


def test_manifest_lists_every_image_with_its_source_licence_and_hashes(fake, tmp_path):
    manifest = run(fake, tmp_path, update_lock=True)
    out = tmp_path / "out"
    assert json.loads((out / "manifest.json").read_text()) == manifest
    first, second = manifest["images"]
    assert first["file"] == "pixelart/sprite.png"
    assert (first["category"], first["width"], first["height"], first["mode"]) == ("pixelart", 6, 4, "RGBA")
    assert first["source"] == ["npm fake-sprites@1.0.0"]
    assert (first["licence"], first["made"], first["group"]) == ("CC0-1.0", "the sprite as is", "sprite")
    data = (out / first["file"]).read_bytes()
    assert first["sha256"] == hashlib.sha256(data).hexdigest() and first["bytes"] == len(data)
    assert np.array_equal(np.asarray(Image.open(out / first["file"])), fake[3])
    # An image with no translucent pixel is stored as RGB, so the set has the two modes only.
    assert (second["mode"], "group" in second) == ("RGB", False)
    assert Image.open(out / second["file"]).mode == "RGB"
    assert manifest["sources"]["fake"]["sha256"] == fake[1]["fake"].sha256
    lock = json.loads((tmp_path / "lock.json").read_text())["images"]
    assert lock["pixelart/sprite.png"] == {"sha256": first["sha256"], "pixels_sha256": first["pixels_sha256"]}


def test_a_second_build_is_byte_identical_and_matches_the_lock(fake, tmp_path):
    run(fake, tmp_path, update_lock=True)
    before = {p.name: p.read_bytes() for p in (tmp_path / "out" / "pixelart").iterdir()}
    run(fake, tmp_path)  # raises on any difference from the lock
    after = {p.name: p.read_bytes() for p in (tmp_path / "out" / "pixelart").iterdir()}
    assert before == after


def test_an_image_that_differs_from_the_lock_fails_the_build_and_says_how(fake, tmp_path):
    run(fake, tmp_path, update_lock=True)
    lock_path = tmp_path / "lock.json"
    lock = json.loads(lock_path.read_text())
    lock["images"]["pixelart/sprite.png"]["sha256"] = "0" * 64
    lock["images"]["pixelart/sprite-opaque.png"] = {"sha256": "0" * 64, "pixels_sha256": "0" * 64}
    lock_path.write_text(json.dumps(lock))
    with pytest.raises(gb.BuildError) as err:
        run(fake, tmp_path)
    message = str(err.value)
    assert "2 of 2 images failed" in message
    assert "pixelart/sprite.png: same pixels, different PNG bytes" in message
    assert "pixelart/sprite-opaque.png: different pixels" in message
    # The manifest is still written, for the images that were made.
    assert len(json.loads((tmp_path / "out" / "manifest.json").read_text())["images"]) == 2


def test_a_new_recipe_not_in_the_lock_fails_until_the_lock_is_updated(fake, tmp_path):
    with pytest.raises(gb.BuildError, match="not in the lock"):
        run(fake, tmp_path)
    run(fake, tmp_path, update_lock=True)
    run(fake, tmp_path)


def test_a_source_whose_sha256_differs_is_refused_and_removed_from_the_cache(fake, tmp_path):
    cache = fake[0]
    tgz = cache / "npm" / "fake-sprites-1.0.0.tgz"
    tgz.write_bytes(tgz.read_bytes() + b"\0")
    with pytest.raises(gb.BuildError, match=r"npm fake-sprites@1\.0\.0: fake-sprites-1\.0\.0\.tgz has sha256 [0-9a-f]{64}, expected"):
        run(fake, tmp_path, update_lock=True)
    assert not tgz.exists()
    assert not (tmp_path / "lock.json").exists()


def test_a_recipe_that_raises_is_named_and_the_others_are_still_made(fake, tmp_path):
    cache, sources, recipes, _ = fake

    def broken(ctx):
        ctx["fake"].read("package/missing.png")

    recipes = [gb.Recipe("icon/broken.png", ("fake",), "CC0-1.0", "reads a member that is not there", broken), *recipes]
    with pytest.raises(gb.BuildError, match=r"icon/broken\.png: npm fake-sprites@1\.0\.0: no package/missing\.png"):
        gb.build(recipes, sources, tmp_path / "out", cache, tmp_path / "lock.json", update_lock=True, log=lambda _: None)
    assert (tmp_path / "out" / "pixelart" / "sprite.png").exists()


def test_an_image_over_the_size_limit_is_refused(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(gb, "MAX_PIXELS", 23)
    with pytest.raises(gb.BuildError, match=r"6x4 is over 23 pixels"):
        run(fake, tmp_path, update_lock=True)


def test_tile_repeats_the_image_n_by_n():
    spec = importlib.util.spec_from_file_location("graphics_tile", REPO / "benchmarks" / "graphics" / "tile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rgba = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    tiled = np.asarray(module.tile(Image.fromarray(rgba, "RGBA"), 4))
    assert tiled.shape == (8, 12, 4)
    for ty in range(4):
        for tx in range(4):
            assert np.array_equal(tiled[ty * 2 : (ty + 1) * 2, tx * 3 : (tx + 1) * 3], rgba)


def test_a_partial_build_keeps_the_other_images_in_the_manifest(fake, tmp_path):
    cache, sources, recipes, _ = fake
    run(fake, tmp_path, update_lock=True)
    gb.build(recipes[1:], sources, tmp_path / "out", cache, tmp_path / "lock.json", log=lambda _: None)
    files = [e["file"] for e in json.loads((tmp_path / "out" / "manifest.json").read_text())["images"]]
    assert sorted(files) == ["pixelart/sprite-opaque.png", "pixelart/sprite.png"]
