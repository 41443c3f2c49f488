"""The file verbs: one file-level encode and decode under the CLI, kvq.save and the bench."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import kvq
from kvq.container import OVERHEAD
from kvq.fileio import decode_file, encode_file
from kvq.metrics import psnr


def test_encode_file_reports_header_sizes_and_psnr(photo, tmp_path):
    target = tmp_path / "p.kvq"
    encoded = encode_file(photo, target, k=16, seed=2, coding="fixed")
    data = target.read_bytes()
    assert data == encoded.data == kvq.encode(photo, k=16, seed=2, coding="fixed")
    assert encoded.header == kvq.read_header(data)
    assert encoded.sizes == kvq.breakdown(encoded.header, len(data))
    assert encoded.sizes.file_bits == 8 * (OVERHEAD + 3 * 16 + (photo.shape[0] * photo.shape[1] * 4 + 7) // 8)
    assert encoded.psnr == psnr(photo, kvq.decode(data))


def test_encode_file_sources_give_the_same_bytes(photo, tmp_path):
    png = tmp_path / "in.png"
    Image.fromarray(photo).save(png)
    expected = encode_file(photo, None, k=8).data
    assert encode_file(png, None, k=8).data == expected
    assert encode_file(png.read_bytes(), None, k=8).data == expected
    assert encode_file(io.BytesIO(png.read_bytes()), None, k=8).data == expected
    out = io.BytesIO()
    encode_file(str(png), out, k=8)
    assert out.getvalue() == expected


def test_encode_file_never_overwrites_without_force(photo, tmp_path):
    target = tmp_path / "p.kvq"
    target.write_bytes(b"precious")
    with pytest.raises(kvq.OutputExistsError):
        encode_file(photo, target, k=4)
    assert target.read_bytes() == b"precious"
    encode_file(photo, target, k=4, force=True)
    assert kvq.read_header(target).k == 4


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_decode_file_png_is_exact_and_indexed(tmp_path, channels):
    rng = np.random.default_rng(channels)
    image = rng.integers(0, 256, (20, 30, channels), dtype=np.uint8)
    palette = np.unique(image.reshape(-1, channels), axis=0)[:16]
    indices = rng.integers(0, len(palette), (20, 30))
    data = kvq.encode_indexed(palette=palette, indices=indices)
    header = decode_file(data, tmp_path / "out.png")
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == "P"  # PNG-8 keeps the palette, grey included
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
        assert np.array_equal(np.asarray(im.convert(mode)), kvq.decode(data))
    assert header.header == kvq.read_header(data)


def test_decode_file_unknown_extension_is_a_kvq_error(tmp_path):
    data = kvq.encode(np.zeros((2, 2, 3), np.uint8), k=1)
    with pytest.raises(kvq.KvqError, match="unknown image extension"):
        decode_file(data, tmp_path / "out.xyz")
    assert list(tmp_path.iterdir()) == []


def test_outputs_and_manifests_get_the_permissions_of_any_new_file(tmp_path):
    # 0o666 less the umask, as the system gives a new file; never a temporary file's 0o600.
    import os

    from kvq import fileio
    from kvq.manifest import ManifestWriter

    old = os.umask(0o027)
    try:
        fileio.atomic_write(tmp_path / "x.kvq", b"data")
        with ManifestWriter(tmp_path / "m.csv", "encode"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "x.kvq").stat().st_mode & 0o777 == (tmp_path / "m.csv").stat().st_mode & 0o777 == 0o640


def test_a_file_that_cannot_be_opened_is_a_kvq_error_and_the_builtin_one(photo, tmp_path, read_only_folder):
    # The README says every error kvq raises is a KvqError: a missing file, a folder and a read-only folder were
    # the bare built-in errors. They stay subclasses of those, so `except OSError` code keeps working.
    missing = tmp_path / "missing.kvq"
    cases = [
        (lambda: kvq.decode(missing), kvq.KvqFileNotFoundError, FileNotFoundError),
        (lambda: kvq.validate(str(missing)), kvq.KvqFileNotFoundError, FileNotFoundError),
        (lambda: kvq.read_header(tmp_path), kvq.KvqIsADirectoryError, IsADirectoryError),
        (lambda: kvq.load(tmp_path), kvq.KvqIsADirectoryError, IsADirectoryError),
        (lambda: kvq.encode(tmp_path / "missing.png"), kvq.KvqFileNotFoundError, FileNotFoundError),
        (lambda: kvq.save(photo, read_only_folder / "x.kvq"), kvq.KvqOSError, OSError),
    ]
    for call, ours, builtin in cases:
        with pytest.raises(ours) as caught:
            call()
        assert isinstance(caught.value, kvq.KvqError) and isinstance(caught.value, builtin)
        named = str(caught.value.filename)
        assert named.endswith(("missing.kvq", "missing.png", tmp_path.name, read_only_folder.name)), named
    # The folder is named (refused before the encode), never a hidden temporary file, and none is left.
    assert list(read_only_folder.iterdir()) == []


def test_encode_takes_a_path_as_decode_save_and_load_do(photo, tmp_path):
    png = tmp_path / "in.png"
    Image.fromarray(photo).save(png, dpi=(300, 300))
    expected = kvq.encode(Image.open(png), k=8)
    assert kvq.encode(png, k=8) == kvq.encode(str(png), k=8) == expected
    assert kvq.decode_indexed(expected).metadata.dpi == pytest.approx((300, 300), rel=1e-3)
    with pytest.raises(kvq.OptionError):  # the options are checked before the file is read
        kvq.encode(tmp_path / "missing.png", k=0)
