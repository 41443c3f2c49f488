"""The JavaScript decoder, kvq/web/kvq.js, under Node's built-in test runner.

``tests/js/vectors.test.mjs`` checks it against every spec vector;
``tests/js/differential.test.mjs`` against ``kvq.decode`` on encoder output
written here: photos, grey and RGBA at K from 1 to 65,536, wide and tall, one
stripe and several, each in every index coding, and streams and stripe tables
with bytes changed. Each Node suite is one test here, which fails when any
Node test fails, is skipped or is cancelled.

Without Node the tests skip, except when ``KVQ_REQUIRE_NODE=1`` (``.ci/run``
sets it, after installing Node), where a missing Node fails.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kvq

REPO = Path(__file__).resolve().parent.parent
JS_TESTS = REPO / "tests" / "js"
VECTORS = json.loads((REPO / "spec" / "vectors" / "manifest.json").read_text())


def node() -> str:
    path = shutil.which("node") or shutil.which("nodejs")
    if path is None:
        if os.environ.get("KVQ_REQUIRE_NODE") == "1":
            pytest.fail("KVQ_REQUIRE_NODE=1 but no node on PATH")
        pytest.skip("Node.js is not installed")
    return path


def run_node_suite(name: str, env: dict[str, str] | None = None) -> dict[str, int]:
    """Run one tests/js file with Node's test runner; fail on any failed, skipped or cancelled test."""
    result = subprocess.run(
        [node(), "--test", "--test-reporter=tap", str(JS_TESTS / name)],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=240,
    )
    summary = {key: int(value) for key, value in re.findall(r"^# (pass|fail|skipped|cancelled|todo) (\d+)$", result.stdout, re.M)}
    failures = [line for line in result.stdout.splitlines() if re.match(r"\s*not ok ", line)]
    detail = "\n".join(failures[:20]) + "\n" + result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, f"node --test {name} exited {result.returncode}:\n{detail}"
    assert summary.get("fail", -1) == 0 and summary.get("cancelled", 0) == 0, detail
    assert summary.get("skipped", 0) == 0 and summary.get("todo", 0) == 0, f"node tests were skipped:\n{detail}"
    return summary


def test_js_decoder_on_every_spec_vector():
    summary = run_node_suite("vectors.test.mjs")
    # One test per vector at least; the suite adds its own beyond them.
    assert summary["pass"] >= len(VECTORS["valid"]) + len(VECTORS["invalid"])


def _china(size: tuple[int, int]) -> np.ndarray:
    from sklearn.datasets import load_sample_image

    return np.asarray(Image.fromarray(load_sample_image("china.jpg")).resize(size, Image.Resampling.BOX))


def _logo() -> np.ndarray:
    """97x61 RGBA: a disc with soft edges and a bar on a transparent ground."""
    y, x = np.mgrid[0:61, 0:97].astype(np.float64)
    r = np.hypot(x - 30, y - 30)
    alpha = np.clip((24 - r) * 64, 0, 255)
    image = np.zeros((61, 97, 4), dtype=np.uint8)
    image[..., 0] = np.clip(x * 2.6, 0, 255)
    image[..., 1] = 90
    image[..., 2] = np.clip(255 - y * 4, 0, 255)
    image[..., 3] = alpha
    image[40:52, 55:92] = (20, 20, 20, 200)
    return image


def _differential_cases() -> list[tuple[str, np.ndarray, dict]]:
    photo = _china((163, 109))  # odd sizes: no row ends on a byte boundary
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    y, x = np.mgrid[0:256, 0:256]
    every = np.stack([x, y, (x * 7 + y * 13) % 256], axis=-1).astype(np.uint8)  # 65,536 distinct colours
    some = np.ascontiguousarray(every[:200, :200])  # 40,000: 16 bits per index, K not a power of 2
    cases = [(f"photo-k{k}", photo, {"k": k}) for k in (1, 2, 3, 16, 255, 256, 257, 65536)]
    cases += [
        ("photo-k16-dither", photo, {"k": 16, "dither": "floyd-steinberg"}),
        ("photo-k64-oklab", photo, {"k": 64, "color_space": "oklab"}),
        ("distinct-k65536", every, {"k": 65536}),
        ("distinct-40000-k65536", some, {"k": 65536}),
    ]
    cases += [(f"grey-k{k}", grey, {"k": k}) for k in (2, 5, 256, 300)]
    cases += [(f"rgba-k{k}", _logo(), {"k": k}) for k in (1, 3, 17, 300)]
    # Several stripes (kvq-coding-2.md S2): 512 x 384 is 3 stripes of 128 rows; 300 x 220, as in S7, a stripe of 218
    # rows and one of 2 (small enough to change byte by byte); wider than 65,536 pixels, one row a stripe; 2 pixels
    # wide, stripes of 32,768 rows; a tall RGBA logo whose last stripe is shorter.
    big = _china((512, 384))
    small = _china((300, 220))
    small_logo = np.ascontiguousarray(np.tile(_logo(), (4, 4, 1))[:220, :300])
    wide = np.asarray(Image.fromarray(grey).resize((70001, 3), Image.Resampling.NEAREST))
    tall = np.asarray(Image.fromarray(grey).resize((2, 70000), Image.Resampling.NEAREST))
    logo = np.ascontiguousarray(np.tile(_logo(), (14, 4, 1))[:800])  # 388 x 800: 5 stripes of 168 rows, the last 128
    cases += [(f"stripes-photo-k{k}", big, {"k": k}) for k in (2, 16, 256)]
    cases += [("stripes-small-k16", small, {"k": 16}), ("stripes-small-rgba-k300", small_logo, {"k": 300})]
    cases += [("stripes-wide-grey-k4", wide, {"k": 4}), ("stripes-tall-grey-k7", tall, {"k": 7})]
    cases += [(f"stripes-rgba-k{k}", logo, {"k": k}) for k in (1, 9, 300)]
    return cases


#: The entropy codings, by name, and the name each file's label takes.
ENTROPY_CODINGS = {"entropy": "entropy", "striped": "striped"}


def _in_coding(encoded: kvq.Encoded, name: str) -> bytes:
    """The same palette and indices in the coding ``name``, as the encoder writes them, or forced where it would not.

    The encoder stores fixed width when an entropy coding is not smaller (K = 1: 4 flush bytes, and coding 2's table,
    against none); the JS decoder must still read them at K = 1, so such a file is assembled from kvq's own coder.
    """
    from kvq import codec, coding, container

    chosen = coding.by_name(name)
    data = bytes(codec.encode_indexed(palette=encoded.palette, indices=encoded.indices, coding=name))
    if kvq.read_header(data).coding == chosen.code:
        return data
    h = encoded.header
    header = dataclasses.replace(h, coding=chosen.code, version=(h.version[0], chosen.minor))
    body = chosen.encode(encoded.indices, h.k)
    assert body is not None, (name, h)
    return container.write(header, encoded.palette.tobytes(), bytes(body))


@pytest.fixture(scope="module")
def differential_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("kvq-js-differential")
    manifest = []
    for name, image, options in _differential_cases():
        chosen = kvq.EncoderOptions(**options, coding="fixed")
        encoded = kvq.encode_image(image, chosen)
        files = [(name, encoded.data)] + [(f"{name}-{label}", _in_coding(encoded, coding)) for coding, label in ENTROPY_CODINGS.items()]
        for label, data in files:
            decoded = kvq.decode_indexed(data)
            h = decoded.header
            (folder / f"{label}.kvq").write_bytes(data)
            (folder / f"{label}.raw").write_bytes(decoded.pixels().tobytes())
            (folder / f"{label}.idx").write_bytes(decoded.indices.astype("<u2").tobytes())
            # A band of 3 rows across the first stripe boundary (coding 2 reads only its stripes; the others decode all).
            y0 = max(0, min(h.height - 3, max(1, 65536 // h.width) - 1))
            rows = (y0, min(h.height, y0 + 3))
            (folder / f"{label}.band.raw").write_bytes(kvq.decode(data, rows=rows).tobytes())
            manifest.append(
                {
                    "name": label,
                    "file": f"{label}.kvq",
                    "pixels": f"{label}.raw",
                    "indices": f"{label}.idx",
                    "width": h.width,
                    "height": h.height,
                    "channels": h.channels,
                    "k": h.k,
                    "bits": h.bits,
                    "coding": h.coding,
                    "rows": rows,
                    "band": f"{label}.band.raw",
                }
            )
    mutated = _mutated_streams(folder) + _mutated_stripes(folder)
    (folder / "manifest.json").write_text(json.dumps({"cases": manifest, "mutated": mutated}))
    return folder


def _with_indx(data: bytes, body: bytes) -> bytes:
    """``data`` with other INDX data, INDX's CRC made for it (INDX is last: 12 bytes of framing + data)."""
    start = len(data) - 12 - _indx_length(data)
    head = struct.pack(">I", len(body)) + b"INDX" + body
    return data[:start] + head + struct.pack(">I", zlib.crc32(head))


def _indx_length(data: bytes) -> int:
    """INDX's data length: the last chunk, found by walking the chunks from HEAD."""
    at = 8
    while True:
        length = struct.unpack(">I", data[at : at + 4])[0]
        if at + 12 + length == len(data):
            return length
        at += 12 + length


def _outcome(file: bytes, folder: Path, entry: dict) -> dict:
    """``entry`` with what kvq.decode makes of ``file``, whole and its first row alone (``entry["first_row"]``).

    Each is its pixels (written beside it), or its error, rule and offset. A coding-2 file's first row reads stripe 0
    alone, checked by its own CRC: it decodes when only another stripe is broken.
    """
    (folder / entry["file"]).write_bytes(file)
    stem = entry["file"].removesuffix(".kvq")
    entry["first_row"] = {}
    for outcome, rows, raw in ((entry, None, f"{stem}.raw"), (entry["first_row"], (0, 1), f"{stem}.row.raw")):
        try:
            pixels = kvq.decode(file, rows=rows)
        except kvq.FormatError as err:
            rule = _rule(type(err).__name__, str(err), kvq.read_header(file).coding)
            outcome.update(error=type(err).__name__, rule=rule, offset=err.offset, message=str(err))
        else:
            outcome["pixels"] = raw
            (folder / raw).write_bytes(pixels.tobytes())
    return entry


def _mutated_streams(folder: Path) -> list[dict]:
    """Coding-1 files with bytes of their stream changed, cut or added, and what kvq.decode makes of each.

    The CRC is made to match, so that rules 23 to 25 themselves are reached: the JS decoder must then fail the same
    way at the same offset, or decode the same pixels.
    """
    out = []
    for name in ("photo-k16-entropy", "photo-k257-entropy", "grey-k5-entropy", "rgba-k300-entropy"):
        data = (folder / f"{name}.kvq").read_bytes()
        body = data[len(data) - 4 - _indx_length(data) : -4]
        n = len(body)
        variants = [(f"cut-{m}", body[:m]) for m in (0, 3, 4, n // 2, n - 1)] + [("extra", body + b"\x00")]
        for at in sorted({*range(0, n, max(1, n // 40)), n - 5, n - 1}):
            for delta in (0x01, 0x5A, 0xFF):
                changed = bytearray(body)
                changed[at] ^= delta
                variants.append((f"byte{at}^{delta:02x}", bytes(changed)))
        for label, new_body in variants:
            out.append(_outcome(_with_indx(data, new_body), folder, {"name": f"{name}-{label}", "file": f"{name}-{label}.kvq"}))
    return out


def _stripes(body: bytes, count: int) -> list[bytes]:
    """Coding 2's INDX data cut into its stripes' streams, by its table (kvq-coding-2.md S3)."""
    ends = [8 * count] + [struct.unpack_from(">I", body, 8 * i)[0] for i in range(count)]
    return [body[ends[i] : ends[i + 1]] for i in range(count)]


def _table(streams: list[bytes]) -> bytes:
    """Coding 2's INDX data for these streams: a table of their ends and CRC-32s, then the streams."""
    end, table = 8 * len(streams), b""
    for stream in streams:
        end += len(stream)
        table += struct.pack(">II", end, zlib.crc32(stream))
    return table + b"".join(streams)


def _mutated_stripes(folder: Path) -> list[dict]:
    """Coding-2 files with a stripe changed, cut or lengthened (the table and every CRC made to match), and with
    bytes of the table itself changed (INDX's CRC made to match), and what kvq.decode makes of each.

    The stripe changes reach rules 37 to 39 (and 35, a stripe cut to nothing); the table changes rules 32 to 36.
    """
    out = []
    for name in ("stripes-small-k16-striped", "stripes-small-rgba-k300-striped", "grey-k5-striped"):
        data = (folder / f"{name}.kvq").read_bytes()
        h = kvq.read_header(data)
        count = -(-h.height // max(1, 65536 // h.width))
        body = data[len(data) - 4 - _indx_length(data) : -4]
        streams = _stripes(body, count)
        variants = []
        for i in sorted({0, count // 2, count - 1}):
            stream = streams[i]
            n = len(stream)
            changed = [(f"s{i}-cut-{m}", stream[:m]) for m in (0, 3, n // 2, n - 1)] + [(f"s{i}-extra", stream + b"\x00")]
            for at in sorted({*range(0, n, max(1, n // 12)), n - 1}):
                for delta in (0x01, 0x5A, 0xFF):
                    flipped = bytearray(stream)
                    flipped[at] ^= delta
                    changed.append((f"s{i}-byte{at}^{delta:02x}", bytes(flipped)))
            for label, new_stream in changed:
                variants.append((label, _table([new_stream if j == i else s for j, s in enumerate(streams)])))
        for at in range(min(8 * count, 24)):
            for delta in (0x01, 0x80):
                flipped = bytearray(body)
                flipped[at] ^= delta
                variants.append((f"table{at}^{delta:02x}", bytes(flipped)))
        for label, new_body in variants:
            out.append(_outcome(_with_indx(data, new_body), folder, {"name": f"{name}-{label}", "file": f"{name}-{label}.kvq"}))
    return out


def test_differential_cases_cover_what_the_issue_asks(differential_dir):
    cases = json.loads((differential_dir / "manifest.json").read_text())["cases"]
    assert {c["coding"] for c in cases} == {0, 1, 2}
    for coding in (0, 1, 2):
        chosen = [c for c in cases if c["coding"] == coding]
        assert {1, 2, 3, 257, 65536} <= {c["k"] for c in chosen}, coding
        assert {c["channels"] for c in chosen} == {1, 3, 4}, coding
        assert {c["bits"] for c in chosen} >= {0, 1, 2, 4, 8, 9, 16}, coding
        # Grey and RGBA each at a small K and at their widest literal: 8 bits for grey (at most 256 levels), more
        # than 8 for RGBA (where coding 1 hashes the literal's contexts).
        for channels, widest in ((1, 8), (4, 9)):
            bits = {c["bits"] for c in chosen if c["channels"] == channels}
            assert min(bits) <= 2 and max(bits) >= widest, (coding, channels, bits)
    # Coding 2 in one stripe and in several, for each number of channels; wider than a stripe's 65,536 pixels (one
    # row a stripe), and narrow and tall.
    striped = [c for c in cases if c["coding"] == 2]
    stripes = {c["name"]: -(-c["height"] // max(1, 65536 // c["width"])) for c in striped}
    assert {1, 3, 5} <= set(stripes.values())
    assert {c["channels"] for c in striped if stripes[c["name"]] > 1} == {1, 3, 4}
    assert any(c["width"] > 65536 for c in striped) and any(c["height"] > 65536 for c in striped)


def test_mutated_streams_reach_every_coding_1_and_2_rule(differential_dir):
    mutated = json.loads((differential_dir / "manifest.json").read_text())["mutated"]
    by_coding = {
        1: [m for m in mutated if "-entropy-" in m["name"]],
        2: [m for m in mutated if "-striped-" in m["name"]],
    }
    assert len(by_coding[1]) + len(by_coding[2]) == len(mutated)
    for coding, chosen in by_coding.items():
        assert {m.get("error", "decoded") for m in chosen} >= {"TruncatedError", "FormatError", "decoded"}, coding
    # Rule 24 (a literal not below K) and rule 25 (bytes left over) both.
    assert {"below K" in m["message"] for m in by_coding[1] if m.get("error") == "FormatError"} == {True, False}
    # Coding 2: rules 32 to 39 each (40 is its vector's: random changes do not reach it).
    rules = {m["rule"] for m in by_coding[2] if "error" in m}
    assert rules >= set(range(32, 40)), rules
    # A first row decodes where a later stripe alone is broken (and INDX's CRC, which a partial decode leaves alone).
    assert any("error" in m and "error" not in m["first_row"] for m in by_coding[2])


def _rule(error: str, message: str, coding: int) -> int:
    """The spec rule of a kvq error on a coding-1 or coding-2 stream, from its class and message."""
    if coding == 1:
        return {"TruncatedError": 23}.get(error) or (24 if "below K" in message else 25)
    if error == "ChecksumError":
        return 36 if "stripe" in message else 19
    if error == "TruncatedError":
        return 37
    fragments = {
        "too few for the table": 30, "pixels in": 31, "stripes take exactly": 31, "before it starts": 32, "past the": 33,
        "after the last stripe": 34, "too few for its": 35, "flush alone": 35, "not below K": 38,
        "after the last index": 39, "decisions (the work limit": 40,
    }  # fmt: skip
    found = {rule for fragment, rule in fragments.items() if fragment in message}
    assert len(found) == 1, message
    return found.pop()


def test_js_decoder_matches_kvq_decode_on_encoder_output(differential_dir):
    manifest = json.loads((differential_dir / "manifest.json").read_text())
    summary = run_node_suite("differential.test.mjs", {"KVQ_DIFF_DIR": str(differential_dir)})
    assert summary["pass"] == len(manifest["cases"]) + len(manifest["mutated"]) + 1
