"""The JavaScript decoder, kvq/web/kvq.js, under Node's built-in test runner.

``tests/js/vectors.test.mjs`` checks it against every spec vector;
``tests/js/differential.test.mjs`` against ``kvq.decode`` on encoder output
written here: photos, grey and RGBA at K from 1 to 65,536, each in both index
codings. Each Node suite is one test here, which fails when
any Node test fails, is skipped or is cancelled.

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
from kvq.explore import entropy_file

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
    return cases


def _coding_1(encoded: kvq.Encoded, options: kvq.EncoderOptions) -> bytes:
    """The same palette and indices entropy coded, as the encoder writes them, or forced where it would not.

    The encoder stores fixed width when coding 1 is not smaller (K = 1: 4 flush bytes against none); the JS
    decoder must still read coding 1 at K = 1, so such a file is assembled from kvq's own entropy coder.
    """
    from kvq import container
    from kvq.coding import entropy  # its kernel needs numba: loaded only when a test runs

    data = entropy_file(encoded, options)
    if data is not None and kvq.read_header(data).coding == 1:
        return data
    h = encoded.header
    header = dataclasses.replace(h, coding=1, version=(h.version[0], 1))
    return container.write(header, encoded.palette.tobytes(), bytes(entropy.encode(encoded.indices, h.k)))


@pytest.fixture(scope="module")
def differential_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("kvq-js-differential")
    manifest = []
    for name, image, options in _differential_cases():
        chosen = kvq.EncoderOptions(**options, coding="fixed")
        encoded = kvq.encode_image(image, chosen)
        files = [(name, encoded.data), (f"{name}-entropy", _coding_1(encoded, chosen))]
        for label, data in files:
            decoded = kvq.decode_indexed(data)
            h = decoded.header
            (folder / f"{label}.kvq").write_bytes(data)
            (folder / f"{label}.raw").write_bytes(decoded.pixels().tobytes())
            (folder / f"{label}.idx").write_bytes(decoded.indices.astype("<u2").tobytes())
            manifest.append(
                {
                    "name": label, "file": f"{label}.kvq", "pixels": f"{label}.raw", "indices": f"{label}.idx",
                    "width": h.width, "height": h.height, "channels": h.channels, "k": h.k, "bits": h.bits,
                    "coding": h.coding,
                }
            )
    mutated = _mutated_streams(folder)
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
            file = _with_indx(data, new_body)
            entry = {"name": f"{name}-{label}", "file": f"{name}-{label}.kvq"}
            (folder / entry["file"]).write_bytes(file)
            try:
                pixels = kvq.decode(file)
            except kvq.FormatError as err:
                entry.update(error=type(err).__name__, offset=err.offset, message=str(err))
            else:
                entry["pixels"] = f"{name}-{label}.raw"
                (folder / entry["pixels"]).write_bytes(pixels.tobytes())
            out.append(entry)
    return out


def test_differential_cases_cover_what_the_issue_asks(differential_dir):
    cases = json.loads((differential_dir / "manifest.json").read_text())["cases"]
    assert {c["coding"] for c in cases} == {0, 1}
    for coding in (0, 1):
        chosen = [c for c in cases if c["coding"] == coding]
        assert {1, 2, 3, 257, 65536} <= {c["k"] for c in chosen}, coding
        assert {c["channels"] for c in chosen} == {1, 3, 4}, coding
        assert {c["bits"] for c in chosen} >= {0, 1, 2, 4, 8, 9, 16}, coding
        # Grey and RGBA each at a small K and at their widest literal: 8 bits for grey (at most 256 levels), more
        # than 8 for RGBA (where coding 1 hashes the literal's contexts).
        for channels, widest in ((1, 8), (4, 9)):
            bits = {c["bits"] for c in chosen if c["channels"] == channels}
            assert min(bits) <= 2 and max(bits) >= widest, (coding, channels, bits)


def test_mutated_streams_reach_every_coding_1_rule(differential_dir):
    mutated = json.loads((differential_dir / "manifest.json").read_text())["mutated"]
    outcomes = {m.get("error", "decoded") for m in mutated}
    assert outcomes == {"TruncatedError", "FormatError", "decoded"}
    # Rule 24 (a literal not below K) and rule 25 (bytes left over) both.
    assert {"below K" in m["message"] for m in mutated if m.get("error") == "FormatError"} == {True, False}


def test_js_decoder_matches_kvq_decode_on_encoder_output(differential_dir):
    manifest = json.loads((differential_dir / "manifest.json").read_text())
    summary = run_node_suite("differential.test.mjs", {"KVQ_DIFF_DIR": str(differential_dir)})
    assert summary["pass"] == len(manifest["cases"]) + len(manifest["mutated"]) + 1
