"""Index coding 1 (entropy coded): round trips, the choice against fixed width, the
spec's reference decoder against kvq's kernel, hostile streams, and every door."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import spec_coding1
from PIL import Image

import kvq
from kvq import coding, container, report
from kvq.coding import entropy

from conftest import REPO, kvq_env, run_kvq_here

KODAK = REPO.parent / "shared" / "kodak"


def _forced(palette: np.ndarray, indices: np.ndarray) -> bytes:
    """A coding-1 file whatever its size (the encoder alone would pick the smaller coding)."""
    k = len(palette)
    stream = entropy.encode(indices.astype(np.uint8 if k <= 256 else np.uint16), k)
    assert stream is not None
    header = container.Header(indices.shape[1], indices.shape[0], palette.shape[1], k, container.bits_for(k), 1, (1, 1))
    return container.write(header, palette.tobytes(), stream)


@pytest.mark.parametrize("k", [1, 2, 3, 16, 64, 256, 257, 4096])
def test_photo_round_trips_exactly_at_every_k(photo, k):
    encoded = kvq.encode_image(photo, k=k)
    assert np.array_equal(kvq.decode(encoded.data), encoded.pixels())
    fixed = kvq.encode_image(photo, k=k, coding="fixed")
    # Same palette and indices; only the index coding differs.
    assert np.array_equal(fixed.indices, encoded.indices)
    assert len(encoded.data) <= len(fixed.data)
    if 2 <= k <= 257:
        assert encoded.header.coding == coding.by_name("entropy").code
        assert encoded.header.version == (1, 1)
    if k == 4096:  # 4,095 colours in 6,144 pixels: nearly every index new, fixed width is smaller
        assert encoded.data == fixed.data
    assert fixed.header.coding == coding.by_name("fixed").code and fixed.header.version == (1, 0)


def test_same_input_same_bytes(photo):
    assert kvq.encode(photo, k=64) == kvq.encode(photo, k=64)
    assert entropy.encode(np.arange(2000, dtype=np.uint16).reshape(40, 50) % 300, 300) == entropy.encode(
        np.arange(2000, dtype=np.uint16).reshape(40, 50) % 300, 300
    )


def test_tiny_and_noise_images_fall_back_to_fixed_width(rng):
    tiny = kvq.encode(np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8), k=2)
    assert kvq.read_header(tiny).coding == coding.by_name("fixed").code  # 1 index byte against the coder's 4 flush bytes
    noise = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    data = kvq.encode_indexed(palette=np.arange(256, dtype=np.uint8).reshape(256, 1), indices=noise)
    header = kvq.read_header(data)
    assert header.coding == coding.by_name("fixed").code and len(data) == header.fixed_file_size
    assert np.array_equal(kvq.decode(data), noise)


@pytest.mark.parametrize(
    ("shape", "k"),
    [((1, 1), 1), ((1, 1), 2), ((1, 9), 3), ((9, 1), 5), ((6, 7), 4), ((12, 10), 16), ((5, 6), 300), ((3, 4), 65536)],
)
def test_reference_decoder_of_the_spec_agrees_with_kvq(shape, k, rng):
    indices = rng.integers(0, k, shape)
    indices[: shape[0] // 2] = indices[0, 0]  # runs as well as noise
    palette = (np.arange(k)[:, None] * np.array([[1, 7, 13]]) % 256).astype(np.uint8)
    data = _forced(palette, indices)
    parsed = container.parse(data)
    reference = spec_coding1.decode_coding_1(bytes(parsed.indices), shape[1], shape[0], k, container.bits_for(k))
    assert reference == indices.reshape(-1).tolist()
    assert np.array_equal(kvq.decode_indexed(data).indices, indices)


def test_reference_decoder_agrees_on_a_photo_encode(photo):
    small = photo[:32, :40]
    for k in (2, 16, 64):
        encoded = kvq.encode_image(small, k=k)
        data = _forced(encoded.palette, encoded.indices)
        h = kvq.read_header(data)
        parsed = container.parse(data)
        assert spec_coding1.decode_coding_1(bytes(parsed.indices), h.width, h.height, h.k, h.bits) == encoded.indices.reshape(-1).tolist()


def test_hostile_streams_decode_or_raise_kvq_errors_in_linear_time(rng):
    header = container.Header(64, 64, 3, 300, 9, 1, (1, 1))
    palette = rng.integers(0, 256, (300, 3), dtype=np.uint8).tobytes()
    outcomes = set()
    for trial in range(60):
        size = int(rng.integers(0, 4)) if trial % 4 == 1 else int(rng.integers(0, 3000))
        stream = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        if trial % 3 == 0:
            stream = bytes(len(stream))  # all zeros: the coder's most skewed input
        data = container.write(header, palette, stream)
        try:
            kvq.decode(data)
            outcomes.add("decoded")
        except kvq.FormatError as exc:
            outcomes.add(type(exc).__name__)
    # Random bytes run out (23), give literals >= K (24) or leave bytes over (25): all refused cleanly.
    assert outcomes <= {"decoded", "TruncatedError", "FormatError"}
    assert "TruncatedError" in outcomes and "FormatError" in outcomes


def test_literal_ge_k_and_trailing_bytes_are_refused():
    palette = np.array([[0, 0, 0], [9, 9, 9], [90, 90, 90], [200, 200, 200]], dtype=np.uint8)
    data = _forced(palette, np.array([[0, 3]]))
    parsed = container.parse(data)
    head3 = container.Header(2, 1, 3, 3, 2, 1, (1, 1))
    with pytest.raises(kvq.FormatError, match="not below K = 3"):
        kvq.decode(container.write(head3, palette[:3].tobytes(), bytes(parsed.indices)))
    with pytest.raises(kvq.FormatError, match="1 bytes after the last entropy-coded index") as info:
        kvq.decode(container.write(parsed.header, parsed.palette, bytes(parsed.indices) + b"\0"))
    assert info.value.offset == parsed.index_offset + len(parsed.indices)


def test_a_1_0_reader_refuses_coding_1_saying_what_it_lacks(photo, monkeypatch):
    data = kvq.encode(photo, k=16)
    monkeypatch.setattr(coding, "CODINGS", (coding.by_name("fixed"),))
    with pytest.raises(kvq.FormatError, match="index coding 1 is unknown to this reader") as info:
        kvq.decode(data)
    assert info.value.offset == 28


def test_fixed_width_files_are_still_version_1_0_byte_for_byte():
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    data = kvq.encode_indexed(palette=palette, indices=np.array([[0, 1, 2], [2, 0, 1]]), coding="fixed")
    # The spec's section 9 worked example, unchanged by version 1.1.
    assert data == (REPO / "spec" / "vectors" / "valid" / "rgb_3x2_k3.kvq").read_bytes()


def test_breakdown_accounts_for_both_codings(photo):
    encoded = kvq.encode_image(photo, k=64)
    fixed = kvq.encode_image(photo, k=64, coding="fixed")
    s, f = encoded.sizes, fixed.sizes
    assert f.matches_theory and f.accounted and not s.matches_theory and s.accounted
    assert s.fixed_file_bits == f.file_bits
    assert s.theory_bits == f.theory_bits == photo.shape[0] * photo.shape[1] * 6 + 24 * 64
    assert s.side_bits == 32 and s.padding_bits == 0
    assert s.file_bits == 8 * len(encoded.data) < f.file_bits
    described = report.describe(encoded.data)
    assert described.as_dict()["bytes"]["indices_fixed_width"] == fixed.header.fixed_index_size
    assert "fixed-width file" in described.text() and "coder flush" in described.text()


def test_breakdown_of_the_file_itself_at_every_input_kind(photo, tmp_path):
    # The README's example passed kvq.read_header(...) of a default (entropy-coded) file: a plain ValueError, since
    # a header does not hold the coded stream's length. The file itself does, as bytes, a path or a file object.
    encoded = kvq.encode_image(photo, k=16)
    path = tmp_path / "x.kvq"
    path.write_bytes(encoded.data)
    with path.open("rb") as fp:
        assert kvq.breakdown(encoded.data) == kvq.breakdown(path) == kvq.breakdown(str(path)) == kvq.breakdown(fp) == encoded.sizes
    with pytest.raises(kvq.OptionError, match=r"kvq.breakdown\(data\)"):
        kvq.breakdown(kvq.read_header(path))
    fixed = kvq.encode_image(photo, k=16, coding="fixed")
    assert kvq.breakdown(fixed.header) == kvq.breakdown(fixed.data) == fixed.sizes
    with pytest.raises(kvq.NotKvqError):
        kvq.breakdown(b"not a kvq file at all, but long enough for a header")


def test_quality_picks_the_k_with_the_fewest_bytes(photo):
    encoded = kvq.encode_image(photo, k=256, quality=30.0)
    assert encoded.psnr >= 30.0
    fewest_colours = kvq.encode_image(photo, k=256, quality=30.0, coding="fixed")
    assert len(encoded.data) <= len(kvq.encode_image(photo, k=fewest_colours.header.k).data)


def test_pillow_saves_both_codings_and_opens_lazily(photo, tmp_path):
    im = Image.fromarray(photo)
    for name in ("entropy", "fixed"):
        path = tmp_path / f"{name}.kvq"
        im.save(path, k=32, coding=name)
        assert kvq.read_header(path).coding == coding.by_name(name).code
        with Image.open(path) as opened:
            assert opened.mode == "P" and opened.size == im.size
            opened.load()
            assert np.array_equal(np.asarray(opened.convert("RGB")), kvq.load(path))
    # A P image saved with only coding= is stored as it is, not quantized again.
    p = im.quantize(16)
    buf = io.BytesIO()
    p.save(buf, "KVQ", coding="fixed")
    assert np.array_equal(kvq.decode_indexed(buf.getvalue()).indices, np.asarray(p))


def test_pillow_open_reads_only_header_and_palette(photo, tmp_path):
    path = tmp_path / "x.kvq"
    path.write_bytes(kvq.encode(photo, k=64))
    parsed = container.parse(path.read_bytes())

    class Counting(io.BytesIO):
        high = 0

        def read(self, *args):
            out = super().read(*args)
            Counting.high = max(Counting.high, self.tell())
            return out

    with Image.open(Counting(path.read_bytes())) as im:
        assert im.size == (photo.shape[1], photo.shape[0])
    assert Counting.high <= parsed.index_offset


def test_cli_coding_option_and_info(photo_png, tmp_path):
    for name in ("fixed", "entropy"):
        out = tmp_path / f"{name}.kvq"
        result = run_kvq_here("encode", photo_png, "-o", out, "-k", "16", "--coding", name, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert kvq.read_header(out).coding == coding.by_name(name).code
    info = run_kvq_here("info", tmp_path / "entropy.kvq", cwd=tmp_path)
    assert info.returncode == 0
    text = info.stdout.decode()
    assert "index coding 1 (entropy coded)" in text and "vs fixed" in text
    bad = run_kvq_here("encode", photo_png, "-o", tmp_path / "x.kvq", "--coding", "huffman", cwd=tmp_path)
    assert bad.returncode == 1 and b"coding must be one of entropy, fixed" in bad.stderr


def test_import_kvq_and_fixed_width_decoding_never_import_numba(example_rgb):
    code = (
        "import sys, kvq, numpy as np\n"
        "data = kvq.encode_indexed(palette=np.eye(3, dtype=np.uint8) * 255, indices=np.array([[0, 1, 2]]), coding='fixed')\n"
        "kvq.decode(data)\n"
        "assert 'numba' not in sys.modules and 'sklearn' not in sys.modules, sorted(m for m in sys.modules if 'numba' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=kvq_env(), timeout=120)


@pytest.mark.skipif(not KODAK.is_dir(), reason="../shared/kodak not present")
def test_kodak_photo_entropy_file_is_smaller_than_png8_of_the_same_pixels():
    photo = np.asarray(Image.open(KODAK / "kodim03.png").convert("RGB"))
    encoded = kvq.encode_image(photo, k=64)
    png = io.BytesIO()
    p = Image.fromarray(encoded.indices.astype(np.uint8), "P")
    p.putpalette(encoded.palette.reshape(-1).tolist())
    p.save(png, "PNG", optimize=True, compress_level=9)
    assert len(encoded.data) < 0.8 * len(png.getvalue())
    assert len(encoded.data) < 0.3 * encoded.sizes.fixed_file_bits / 8


def test_decoding_holds_one_byte_a_pixel_beside_the_model_when_k_is_at_most_256():
    # The kernel decodes straight into the returned uint8 indices: a 2-byte
    # array and its 1-byte copy (3 bytes a pixel) would triple a huge image's
    # index memory. Besides the output, only the context tables (3 x 2^18
    # 4-byte counters at most) and the stream's copy are allowed.
    import tracemalloc

    height, width, k = 1000, 2000, 200
    indices = (np.add.outer(np.arange(height) // 40, np.arange(width) // 40) % k).astype(np.uint8)
    stream = entropy.encode(indices, k)
    entropy.decode(stream, width, height, k)  # compiled before measuring
    tracemalloc.start()
    try:
        decoded = entropy.decode(stream, width, height, k)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert decoded.dtype == np.uint8 and np.array_equal(decoded.reshape(height, width), indices)
    tables = 3 * (1 << entropy.table_bits(indices.size)) * 4
    assert peak <= indices.size + tables + len(stream) + 64 * 1024, peak


def test_k1_with_bytes_after_the_flush_is_refused_before_any_pixel():
    # K = 1 codes no decision: its stream is the 4 flush bytes. More was found only after walking every pixel
    # (17,895,697 x 10 pixels: 2 s and +207 MB before rule 25); the length alone says it, at once.
    import tracemalloc

    header = container.Header(17_895_697, 10, 3, 1, 0, 1, (1, 1))
    data = container.write(header, bytes(3), bytes(14))
    tracemalloc.start()
    try:
        for door in (kvq.decode, kvq.validate, lambda d: Image.open(io.BytesIO(d))):
            with pytest.raises(kvq.FormatError, match="10 bytes after the last entropy-coded index") as info:
                door(data)
            assert info.value.offset == len(data) - 4 - 14 + 4  # the first byte not read (rule 25)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak
    # Exactly the 4 flush bytes: valid, every pixel is entry 0, counted without decoding.
    assert kvq.validate(container.write(header, bytes(3), bytes(4))).counts.tolist() == [178_956_970]


def test_a_stream_too_short_for_its_pixels_is_refused_from_its_length():
    # 84 bytes declaring 13,000 x 13,000 pixels cost kvq decode 7.5 s and 320 MB before rule 23 (spec rule 26).
    import math
    import tracemalloc

    data = (REPO / "spec" / "vectors" / "invalid" / "entropy_13000x13000_in_84_bytes.kvq").read_bytes()
    assert len(data) == 84
    tracemalloc.start()
    try:
        for door in (kvq.decode, kvq.validate, lambda d: Image.open(io.BytesIO(d)), kvq.decode_indexed):
            with pytest.raises(kvq.FormatError, match="too few for 169,000,000 pixels") as info:
                door(data)
            assert info.value.offset == 56  # the INDX chunk's start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak
    # The bound comes from the coder's constants: probabilities 1 to 4094 in 1/4096 (squash's knots).
    kernel = entropy._kernel()
    assert (min(kernel.SQUASH_KNOTS), max(kernel.SQUASH_KNOTS)) == (1, 4094)
    assert math.ceil(8 / math.log2(4096 / 4095)) == entropy.DECISIONS_PER_BYTE
    # The most compressible image, one flat colour, is far inside it: one decision a pixel at the coder's best.
    flat = entropy.encode(np.zeros((600, 800), np.uint8), 2)
    assert flat is not None and 600 * 800 / len(flat) < entropy.DECISIONS_PER_BYTE / 1.9


def test_a_stream_past_the_work_limit_is_refused_and_never_written(photo):
    # A valid stream could take 20 decisions a pixel in a few bytes: 434 KB held a decoder 217 s at the pixel
    # limit. Rule 27 refuses more than 4 N + 64 L decisions; kvq's encoder stores fixed width rather than pass it.
    data = (REPO / "spec" / "vectors" / "invalid" / "entropy_past_the_work_limit.kvq").read_bytes()
    for door in (kvq.decode, kvq.validate, kvq.decode_indexed, lambda d: Image.open(io.BytesIO(d)).load()):
        with pytest.raises(kvq.FormatError, match=r"work limit of 4 a pixel and 64 a byte \(spec rule 27\)"):
            door(data)
    period = np.array([[(x + 3 * y) % 5 for x in range(100)] for y in range(100)], np.uint8)
    written = kvq.encode_indexed(palette=np.arange(5, dtype=np.uint8)[:, None] * 50, indices=period)
    assert kvq.read_header(written).coding == 0  # fixed width, readable everywhere
    assert np.array_equal(kvq.decode(written), period * 50)
    # A photo's stream is far inside the limit.
    encoded = kvq.encode_image(photo, k=256)
    assert encoded.header.coding == 1
    kernel = entropy._kernel()
    n = photo.shape[0] * photo.shape[1]
    out = np.zeros(n, np.uint8)
    stream = np.frombuffer(encoded.data[-4 - encoded.sizes.index_bits // 8 : -4], np.uint8).copy()
    status, _, _, count = kernel.run(
        out, photo.shape[1], photo.shape[0], encoded.header.k, entropy.table_bits(n), stream, True, 1 << 62,
        kernel.SQUASH_TABLE, kernel.STRETCH_TABLE, kernel.RATE_TABLE,
    )
    assert status == kernel.OK and count < entropy.work_limit(n, len(stream)) / 2
