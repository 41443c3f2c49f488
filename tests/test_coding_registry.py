"""Index codings are plug-ins: one object each, found by coding byte or name; a new one needs no other module's code.

A toy coding (fixed width, deflated) is added to the registry, as coding 2 will be: one line in
``kvq.coding.CODINGS``. Every door then reads its files (decode, validate, ``kvq info``, Pillow's band-wise load,
``kvq decode``) and the encoder writes it, with no change anywhere else.
"""

from __future__ import annotations

import io
import json
import zlib

import numpy as np
import pytest
from PIL import Image

import kvq
from kvq import bitpack, coding, container
from kvq.coding import IndexCoding


class Deflate(IndexCoding):
    """Fixed-width indices, then deflated, as PNG stores its rows; 8 side bits, a trailing marker byte."""

    code = 7
    name = "deflate"
    description = "deflated fixed width"
    summary = "a test's own coding"
    minor = 1
    side_information = "a marker byte"

    def check_length(self, header, length):
        return None if length >= 1 else "INDX is empty"

    def encode(self, indices, k, *, limit=None, threads=None):
        return zlib.compress(bitpack.pack(indices, container.bits_for(k)), 9) + b"\xff"

    def decode(self, body, header, *, rows=None, threads=None):
        try:
            packed = zlib.decompress(bytes(body)[:-1])
        except zlib.error as exc:
            raise kvq.FormatError(f"not deflate data: {exc}", 0) from None
        indices = bitpack.unpack(packed, header.bits, header.n_pixels, header.k).reshape(header.height, header.width)
        return indices if rows is None else indices[rows[0] : rows[1]]

    def side_bits(self, header, index_size):
        return 8


@pytest.fixture
def deflate(monkeypatch):
    monkeypatch.setattr(coding, "CODINGS", (*coding.CODINGS, Deflate()))
    return coding.by_name("deflate")


def test_the_registry_finds_each_coding_by_byte_and_by_name():
    assert [c.code for c in coding.CODINGS] == [0, 1, 2]
    for c in coding.CODINGS:
        assert coding.by_code(c.code) is c and coding.by_name(c.name) is c
    assert coding.names() == ("entropy", "fixed", "striped") and coding.FALLBACK.textbook
    assert coding.known() == "0 (fixed), 1 (entropy), 2 (striped)"
    with pytest.raises(KeyError):
        coding.by_code(3)
    assert kvq.EncoderOptions().coding == coding.DEFAULT


def test_a_coding_added_in_one_line_is_read_and_written_everywhere(deflate, photo, tmp_path):
    from kvq.codec import _assemble
    from kvq.fileio import decode_file
    from kvq.report import describe

    encoded = kvq.encode_image(photo, k=16, coding="fixed")
    data = _assemble(encoded.original.reshape(*photo.shape), encoded.palette, encoded.indices, kvq.Metadata(), "deflate").data
    header = kvq.read_header(data)
    assert (header.coding, header.version) == (7, (1, 1))
    assert len(data) < encoded.sizes.file_bits // 8  # smaller than fixed width: kept
    assert np.array_equal(kvq.decode(data), encoded.pixels())
    assert np.array_equal(kvq.validate(data).counts, np.bincount(encoded.indices.reshape(-1), minlength=header.k))
    report = describe(data, "w.kvq")
    assert "index coding 7 (deflated fixed width)" in report.text() and "8 side bits (a marker byte)" in report.text()
    assert report.sizes.side_bits == 8 and report.sizes.padding_bits == 0 and not report.sizes.matches_theory
    with Image.open(io.BytesIO(data)) as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), encoded.pixels())
    (tmp_path / "w.kvq").write_bytes(data)
    decode_file(tmp_path / "w.kvq", tmp_path / "w.png")
    with Image.open(tmp_path / "w.png") as png:
        assert np.array_equal(np.asarray(png.convert("RGB")), encoded.pixels())
    # Its own length rule, with the container's offset.
    with pytest.raises(kvq.FormatError, match=r"INDX is empty \(at byte"):
        container.parse(data[:38] + container._chunk(b"PLTE", encoded.palette.tobytes()) + container._chunk(b"INDX", b""))
    with pytest.raises(kvq.FormatError, match=r"not deflate data"):
        kvq.decode(data[:38] + container._chunk(b"PLTE", encoded.palette.tobytes()) + container._chunk(b"INDX", b"abc"))


def test_a_reader_without_a_coding_refuses_its_files_by_its_byte(deflate, photo):
    from kvq.codec import _assemble

    encoded = kvq.encode_image(photo, k=16, coding="fixed")
    data = _assemble(encoded.original.reshape(*photo.shape), encoded.palette, encoded.indices, kvq.Metadata(), "deflate").data
    coding.CODINGS = coding.CODINGS[:-1]  # the fixture puts the registry back
    known = r"0 \(fixed\), 1 \(entropy\), 2 \(striped\)"
    with pytest.raises(kvq.FormatError, match=rf"index coding 7 is unknown to this reader, which knows {known}"):
        kvq.decode(data)


def test_no_module_outside_kvq_coding_names_or_compares_a_coding():
    # "No other module may branch on a coding": outside kvq/coding/, no code (docstrings aside) spells a coding's
    # name or compares a coding byte; they ask the registry (coding.DEFAULT, by_code, by_name, FALLBACK).
    # The explore page is the one exception: its JavaScript decoder reads the default coding, named as such.
    import ast
    from pathlib import Path

    names = {c.name for c in coding.CODINGS}
    package = Path(kvq.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.parent.name == "coding":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            where = f"{path.relative_to(package)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in docstrings:
                found.append(f"{where} names {node.value!r}")
            elif (
                isinstance(node, ast.Compare)
                and any(isinstance(side, ast.Attribute) and side.attr == "coding" for side in (node.left, *node.comparators))
                and "by_name(ENTROPY_CODING)" not in ast.unparse(node)
            ):
                found.append(f"{where} compares {ast.unparse(node)}")
    assert found == []


def test_a_toy_coding_registered_at_run_time_goes_through_every_door(deflate, photo, tmp_path):
    # "Adding a coding is one module and one registry line": a coding defined here and put in the registry is
    # chosen by name at every door (kvq.encode, the command's --coding, Image.save), stored under its byte,
    # and read back whole, band by band, by kvq info and by Pillow, with nothing else told about it.
    from conftest import run_kvq_here

    expected = kvq.encode_image(photo, k=16)
    data = kvq.encode(photo, k=16, coding="deflate")
    header = kvq.read_header(data)
    assert (header.coding, header.version) == (7, (1, 1))
    assert np.array_equal(kvq.decode(data), expected.pixels())
    assert kvq.EncoderOptions(coding="deflate").coding == "deflate"
    # The command: encode with --coding, info, decode (read band by band).
    Image.fromarray(photo).save(tmp_path / "p.png")
    assert run_kvq_here("encode", "p.png", "-o", "p.kvq", "-k", "16", "--coding", "deflate", "-q", cwd=tmp_path).returncode == 0
    assert (tmp_path / "p.kvq").read_bytes() == data
    info = run_kvq_here("info", "p.kvq", "--json", cwd=tmp_path)
    assert info.returncode == 0 and json.loads(info.stdout)["header"]["coding"] == 7, info.stdout
    assert run_kvq_here("decode", "p.kvq", "-o", "back.png", cwd=tmp_path).returncode == 0
    with Image.open(tmp_path / "back.png") as back:
        assert np.array_equal(np.asarray(back.convert("RGB")), expected.pixels())
    # Pillow: open and load it, and write one.
    with Image.open(io.BytesIO(data)) as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), expected.pixels())
        out = io.BytesIO()
        image.save(out, format="KVQ", coding="deflate")
    assert kvq.read_header(out.getvalue()).coding == 7
    # A reader without it refuses its files by their byte.
    coding.CODINGS = coding.CODINGS[:-1]  # the fixture puts the registry back
    with pytest.raises(kvq.FormatError, match="index coding 7 is unknown"):
        kvq.decode(data)
    with pytest.raises(kvq.OptionError, match="coding must be one of"):
        kvq.encode(photo, k=16, coding="deflate")
