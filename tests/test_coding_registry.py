"""Index codings are plug-ins: one object each, found by coding byte or name; a new one needs no other module's code.

A toy coding (fixed width, deflated) is added to the registry, as coding 2 will be: one line in
``kvq.coding.CODINGS``. Every door then reads its files (decode, validate, ``kvq info``, Pillow's band-wise load,
``kvq decode``) and the encoder writes it, with no change anywhere else.
"""

from __future__ import annotations

import io
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
    with pytest.raises(kvq.FormatError, match=r"index coding 7 is unknown to this reader, which knows 0 \(fixed\), 1 \(entropy\), 2 \(striped\)"):
        kvq.decode(data)
