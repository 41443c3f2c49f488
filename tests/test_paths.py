"""The folder walker shared by the bench suite and batch runs."""

from __future__ import annotations

import os

import pytest

from kvq.paths import image_paths, walk_images


@pytest.fixture()
def tree(tmp_path):
    for name in ("b.png", "a.JPG", "notes.txt", "sub/c.png", "sub/deeper/d.tif", "sub2/e.kvq", "z.webp"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    return tmp_path


def names(paths, root):
    return [str(p.relative_to(root)) for p in paths]


def test_walk_is_sorted_files_first_then_sub_folders(tree):
    assert names(walk_images(tree), tree) == ["a.JPG", "b.png", "z.webp", "sub/c.png", "sub/deeper/d.tif", "sub2/e.kvq"]
    assert names(walk_images(tree, recursive=False), tree) == ["a.JPG", "b.png", "z.webp"]
    assert names(walk_images(tree, suffixes=(".PNG",)), tree) == ["b.png", "sub/c.png"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_walk_does_not_follow_folder_links(tree):
    (tree / "sub" / "loop").symlink_to(tree, target_is_directory=True)
    (tree / "link.png").symlink_to(tree / "b.png")
    found = names(walk_images(tree), tree)
    assert "link.png" in found and not any(name.startswith("sub/loop") for name in found)


def test_image_paths_takes_files_as_given_and_refuses_missing_or_empty(tree):
    assert names(image_paths([tree / "notes.txt", tree / "sub"]), tree) == ["notes.txt", "sub/c.png", "sub/deeper/d.tif"]
    with pytest.raises(FileNotFoundError, match="nope"):
        list(image_paths([tree / "nope"]))
    with pytest.raises(ValueError, match="holds no image files"):
        list(image_paths([tree / "empty"]))
