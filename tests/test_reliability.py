"""Issue 6: the decoder under hostile input, and writers under SIGKILL and concurrency.

- memory bounded by the declared image size, checked against the caller's
  limit before any allocation;
- time linear in the file size (many tiny chunks, zero-length chunks);
- every input the fuzzers ever crashed on (``fuzz/regressions/``) replayed;
- the atheris harnesses run for half a minute (a minute in CI: the smoke run);
- ``kvq encode`` / ``kvq decode`` killed with SIGKILL leave the old output
  intact and never a half-written file at the output path;
- parallel encodes of one image give byte-identical files.
"""

from __future__ import annotations

import io
import os
import resource
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import kvq
from kvq import container

from conftest import chunk, kvq_command, kvq_env

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
REGRESSIONS = FUZZ / "regressions"
sys.path.insert(0, str(FUZZ))


def head(width: int, height: int, channels: int = 3, k: int = 1) -> bytes:
    """Signature and a valid HEAD chunk: the 38-byte header."""
    body = struct.pack(">BBIIBBBBI", 1, 0, width, height, channels, container.bits_for(k), 0, 0, k)
    return container.SIGNATURE + chunk(b"HEAD", body)


# --------------------------------------------------------------------- memory


def test_header_bomb_is_refused_before_any_allocation():
    data = head(60000, 60000)
    assert len(data) == container.HEADER_SIZE == 38
    tracemalloc.start()
    try:
        for call in (kvq.read_header, kvq.decode, kvq.decode_indexed):
            with pytest.raises(kvq.ImageTooLargeError):
                call(data)
        with pytest.raises(kvq.ImageTooLargeError):
            kvq.read_header(io.BytesIO(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak:,} bytes allocated refusing a 38-byte header"


def test_complete_one_colour_bomb_is_refused():
    # K = 1 needs no index bytes: 66 bytes would otherwise decode to 10.8 GB.
    data = head(60000, 60000, 3, 1) + chunk(b"PLTE", b"\x01\x02\x03") + chunk(b"INDX", b"")
    tracemalloc.start()
    try:
        with pytest.raises(kvq.ImageTooLargeError):
            kvq.decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    # The same file at a size within the limit decodes to exactly what it declares.
    small = head(300, 200, 3, 1) + chunk(b"PLTE", b"\x01\x02\x03") + chunk(b"INDX", b"")
    assert kvq.decode(small).shape == (200, 300, 3)


def test_caller_limit_is_exact():
    data = head(100, 100, 1, 1) + chunk(b"PLTE", b"\x07") + chunk(b"INDX", b"")
    assert kvq.decode(data, max_pixels=10_000).shape == (100, 100)
    for limit in (9_999, 1):
        with pytest.raises(kvq.ImageTooLargeError):
            kvq.decode(data, max_pixels=limit)
        with pytest.raises(kvq.ImageTooLargeError):
            kvq.read_header(data, max_pixels=limit)


def test_widest_header_does_not_overflow():
    # 2**32-1 on both sides: the limit check divides, never multiplies into overflow.
    data = head(2**32 - 1, 2**32 - 1)
    with pytest.raises(kvq.ImageTooLargeError):
        kvq.read_header(data)


def test_huge_indx_length_in_tiny_file_is_truncation():
    data = head(4, 4, 3, 2) + chunk(b"PLTE", bytes(6)) + struct.pack(">I", 2**32 - 1) + b"INDX" + bytes(8)
    tracemalloc.start()
    try:
        with pytest.raises(kvq.TruncatedError):
            kvq.decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_huge_ancillary_length_is_not_allocated_by_the_lazy_reader():
    """Regression: the lazy reader (then read_palette_from) passed a 4 GiB chunk length from the file to fp.read().

    BufferedReader.read(n) allocates n bytes before reading, so a 58-byte file
    made Image.open(path) allocate 4 GiB (MemoryError under a memory limit).
    """
    data = head(2, 2, 3, 1) + struct.pack(">I", 0xFFFFFFF0) + b"tEXt" + bytes(20)
    requested = []

    class Recording(io.BytesIO):
        def read(self, size=-1):
            requested.append(size)
            return super().read(size)

    for lazy in (True, False):  # Pillow's open; kvq decode's reader
        requested.clear()
        with pytest.raises(kvq.TruncatedError):
            container.Reader(Recording(data), lazy=lazy)
        assert max(requested) <= 1 << 20, requested


def test_huge_ancillary_length_under_memory_limit(tmp_path):
    """The same file through Image.open(path) in a process limited to 1.5 GB of address space."""
    pytest.importorskip("kvq.pillow_plugin")
    path = tmp_path / "bomb.kvq"
    path.write_bytes(head(2, 2, 3, 1) + struct.pack(">I", 0xFFFFFFF0) + b"tEXt" + bytes(20))
    script = (
        "import sys, kvq\n"
        "from PIL import Image\n"
        "try:\n"
        f"    Image.open({str(path)!r}).load()\n"
        "except (OSError, ValueError) as exc:\n"
        "    print('refused:', type(exc).__name__)\n"
    )

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))

    env = kvq_env()
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env, preexec_fn=limit, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().startswith("refused: OSError")


def test_plugin_refuses_bomb_before_load():
    pytest.importorskip("kvq.pillow_plugin")
    from PIL import Image

    data = head(60000, 60000, 3, 1) + chunk(b"PLTE", b"\x01\x02\x03") + chunk(b"INDX", b"")
    tracemalloc.start()
    try:
        with pytest.raises(Image.DecompressionBombError):
            Image.open(io.BytesIO(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


# ----------------------------------------------------------------------- time


@pytest.mark.timeout(60)
def test_many_tiny_chunks_parse_in_linear_time(monkeypatch):
    # About 1 MB of empty 12-byte ancillary chunks, then a valid palette and indices.
    valid = kvq.encode_indexed(palette=np.array([[0, 0, 0], [9, 9, 9]], dtype=np.uint8), indices=np.array([[0, 1], [1, 0]]))
    empty = chunk(b"aaAa", b"")
    n = (1 << 20) // len(empty)
    data = valid[:38] + empty * n + valid[38:]
    parsed = container.parse(data)
    assert parsed.skipped == n
    assert kvq.decode(data).shape == (2, 2, 3)
    # Linear time, counted rather than timed: the parser checks every byte's
    # CRC exactly once (the CRC covers all but the signature and the CRC fields
    # themselves), so it never walks back over chunks it has read.
    hashed = []

    def counting_crc32(data, value=0):
        hashed.append(len(data))
        return zlib.crc32(data, value)

    monkeypatch.setattr(container, "zlib", type("Zlib", (), {"crc32": staticmethod(counting_crc32)}))
    for m in (n // 4, n):
        hashed.clear()
        blob = valid[:38] + empty * m + valid[38:]
        container.parse(blob)
        assert sum(hashed) == len(blob) - len(container.SIGNATURE) - 4 * (m + 3), m
    # Without INDX the walk ends at the end of the file.
    with pytest.raises(kvq.TruncatedError):
        kvq.decode(valid[:38] + empty * n)


@pytest.mark.timeout(60)
def test_many_tiny_chunks_in_a_file_cost_a_few_reads_not_three_a_chunk():
    # The lazy reader of a file (Pillow's open, kvq decode of a path) asked the file for each chunk's framing, data
    # and CRC in turn: three reads (and seeks) per chunk, 300,000 for a 1.2 MB file of 100,000 empty chunks, where
    # the bytes reader slices memory. It reads ahead now: each byte of the file comes from the file about once.
    valid = kvq.encode_indexed(palette=np.array([[0, 0, 0], [9, 9, 9]], dtype=np.uint8), indices=np.array([[0, 1], [1, 0]]))
    empty = chunk(b"aaAa", b"")
    n = 100_000
    data = valid[:38] + empty * n + valid[38:]
    returned = []

    class Recording(io.BytesIO):
        def read(self, size=-1):
            piece = super().read(size)
            returned.append(len(piece))
            return piece

    for lazy in (True, False):
        returned.clear()
        reader = container.Reader(Recording(data), lazy=lazy)
        assert reader.skipped == n
        reader.indices()
        assert len(returned) <= container._EXACT_READS + 4 + len(data) // (1 << 16), len(returned)
        assert sum(returned) <= len(data) + len(returned) * (container.CHUNK_OVERHEAD + container._SMALL_CHUNK)


@pytest.mark.timeout(60)
def test_large_ancillary_chunk_is_fine():
    valid = kvq.encode_indexed(palette=np.array([[0], [255]], dtype=np.uint8), indices=np.array([[0, 1]]))
    data = valid[:38] + chunk(b"zzzz", bytes(8 << 20)) + valid[38:]
    assert kvq.decode(data).shape == (1, 2)


# ---------------------------------------------------------------------- fuzz


def regression_inputs() -> list[Path]:
    return sorted(p for p in REGRESSIONS.glob("*") if p.is_file() and p.name != "README.md")


@pytest.mark.parametrize("path", regression_inputs(), ids=lambda p: p.name)
def test_fuzz_regressions(path):
    """Every input a fuzzer crashed on, replayed through both harnesses' checks."""
    import fuzz_decode

    data = path.read_bytes()
    fuzz_decode.check(data)
    try:
        import kvq.pillow_plugin  # noqa: F401
    except ImportError:
        return
    import fuzz_pillow

    fuzz_pillow.check(data)


def test_crc_fixing_mutator_matches_the_format():
    """Regression (harness): fix_crcs once computed PNG-style CRCs (type + data only),
    so the fuzzer never got a mutated file past the checksums."""
    import _common

    for data in _common.generated_seeds().values():
        assert _common.fix_crcs(data) == data
        broken = bytearray(data)
        broken[26] = 2  # channels = 2, CRC now wrong
        with pytest.raises(kvq.ChecksumError):
            kvq.decode(bytes(broken))
        with pytest.raises(kvq.FormatError, match="channels"):
            kvq.decode(_common.fix_crcs(bytes(broken)))


def test_harness_checks_accept_seeds_and_garbage():
    import _common
    import fuzz_decode

    inputs = list(_common.generated_seeds().values()) + [b"", b"\x89KVQ", bytes(100), os.urandom(200)]
    inputs += [p.read_bytes() for p in _common.vector_files()]
    for data in inputs:
        fuzz_decode.check(data)
        fuzz_decode.check(_common.fix_crcs(data[:50]))
    try:
        import kvq.pillow_plugin  # noqa: F401
    except ImportError:
        return
    import fuzz_pillow

    for data in inputs:
        fuzz_pillow.check(data)


# Half a minute keeps a plain `pytest` under 3 minutes on 2 cores; .ci/run asks for 60.
FUZZ_SECONDS = int(os.environ.get("KVQ_FUZZ_SECONDS", "30"))


@pytest.mark.slow
@pytest.mark.timeout(FUZZ_SECONDS * 3 + 120)
def test_fuzz_smoke(tmp_path):
    """CI's short fuzzing run: both harnesses at once (one core each) for FUZZ_SECONDS."""
    pytest.importorskip("atheris")
    import _common

    seeds = tmp_path / "seeds"
    _common.write_seeds(seeds)
    harnesses = ["fuzz_decode.py"]
    try:
        import kvq.pillow_plugin  # noqa: F401

        harnesses.append("fuzz_pillow.py")
    except ImportError:
        pass
    # Linux carries a process's peak RSS (ru_maxrss, which libFuzzer's -rss_limit_mb reads) through fork and
    # exec: a fuzzer started by a pytest process that has grown to 1 GB starts "over" a 1 GB limit. The
    # limit is therefore this process's peak plus the 1 GB a harness may use on its own.
    rss_limit_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 + 1024
    procs = {}
    for name in harnesses:
        work = tmp_path / name
        (work / "corpus").mkdir(parents=True)
        log = open(work / "log", "wb")  # noqa: SIM115 - closed when its process ends, below
        args = [
            sys.executable, str(FUZZ / name), str(work / "corpus"), str(seeds),
            # The kernels are compiled before the fuzzing starts (_common.start_kernels), so libFuzzer's
            # per-input clock times decoding only: its own 10 s default holds on a busy 2-core machine
            # (checked beside two CPU-bound processes); an input that needs that long is a bug to look at.
            f"-max_total_time={FUZZ_SECONDS}", "-timeout=10", f"-rss_limit_mb={rss_limit_mb}", "-max_len=8192",
            "-print_final_stats=1", f"-artifact_prefix={work}/",
        ]  # fmt: skip
        procs[name] = (subprocess.Popen(args, cwd=work, stdout=log, stderr=subprocess.STDOUT, env=kvq_env()), log, work)
    failures = []
    for name, (proc, log, work) in procs.items():
        try:
            status = proc.wait(timeout=FUZZ_SECONDS * 2 + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            status = "hung"
        log.close()
        text = (work / "log").read_text(errors="replace")
        crashes = sorted(p.name for p in work.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-", "leak-")))
        if status != 0 or crashes or "stat::number_of_executed_units" not in text:
            failures.append(f"{name}: exit {status}, artifacts {crashes}\n{text[-3000:]}")
    assert not failures, "\n\n".join(failures)


# --------------------------------------------------------- atomic output


def test_failed_write_leaves_old_output_and_no_temp_file(tmp_path):
    from kvq.fileio import atomic_write

    target = tmp_path / "out.kvq"
    target.write_bytes(b"old")

    def half(fp):
        fp.write(b"half of a file")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError):
        atomic_write(target, half, force=True)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.kvq"]
    with pytest.raises(kvq.OutputExistsError):
        atomic_write(target, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.kvq"]
    atomic_write(target, b"new", force=True)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.kvq"]


def noise_png(path: Path, size: int, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def check_no_partial(folder: Path, output: Path, old: bytes, decode_new) -> None:
    """The output is the old file or a complete new one; nothing else visible is left."""
    current = output.read_bytes()
    if current != old:
        decode_new(output)  # a replaced output must be complete and valid
    # A SIGKILLed process cannot delete its temporary file: the atomic-rename
    # design may leave a hidden ".NAME.*.tmp" beside the output, never at it.
    for p in folder.iterdir():
        assert p.name in {output.name, "in.png", "in.kvq"} or (
            p.name.startswith(f".{output.name}.") and p.name.endswith(".tmp")
        ), p.name


def kill_after(command: list[str], cwd: Path, delay: float, output: Path, old: bytes) -> subprocess.Popen:
    """Run ``command`` and SIGKILL it after ``delay`` seconds, with ``old`` at ``output`` each time.

    A run that ends before its kill tests nothing, so it is run again with
    half the delay; the caller asserts that the kill landed.
    """
    for _ in range(6):
        output.write_bytes(old)
        proc = subprocess.Popen(command, cwd=cwd, env=kvq_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return proc
        delay /= 2
    pytest.fail(f"{command} always finished before it could be killed")


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("delay", [0.3, 1.0, 1.8, 2.6])
def test_sigkill_during_encode_keeps_old_output(tmp_path, delay):
    # 1200x1200: about 3 s of `kvq encode` on an idle 2-core machine, so that even the latest kill lands
    # mid-encode; a smaller image finished first, and the retry at half the delay added its own wait.
    source = noise_png(tmp_path / "in.png", 1200)
    output = tmp_path / "out.kvq"
    old = b"old output, not a kvq file"
    proc = kill_after(kvq_command("encode", source, "-o", output, "-k", "64", "--force"), tmp_path, delay, output, old)
    assert proc.returncode == -signal.SIGKILL
    check_no_partial(tmp_path, output, old, lambda p: kvq.load(p))


@pytest.fixture(scope="module")
def slow_to_decode() -> bytes:
    """A 1500x1500 file of 4,000 colours: seconds to decode and write as TIFF (encoded once, for every delay)."""
    rng = np.random.default_rng(1)
    palette = rng.integers(0, 256, (4000, 3), dtype=np.uint8)
    return kvq.encode_indexed(palette=palette, indices=rng.integers(0, 4000, (1500, 1500)))


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("delay", [0.4, 0.9, 1.4])
def test_sigkill_during_decode_keeps_old_output(tmp_path, delay, slow_to_decode):
    from PIL import Image

    (tmp_path / "in.kvq").write_bytes(slow_to_decode)
    output = tmp_path / "out.tif"
    old = b"old output"
    proc = kill_after(kvq_command("decode", tmp_path / "in.kvq", "-o", output, "--force"), tmp_path, delay, output, old)
    assert proc.returncode == -signal.SIGKILL

    def decode_new(p):
        with Image.open(p) as im:
            im.load()
            assert im.size == (1500, 1500)

    check_no_partial(tmp_path, output, old, decode_new)


# ----------------------------------------------------------- determinism


def _encode_file(path: str) -> bytes:
    return kvq.encode_image(kvq.open_image(path), k=32, seed=3).data


@pytest.mark.timeout(180)
def test_parallel_library_encodes_are_identical(tmp_path):
    source = str(noise_png(tmp_path / "in.png", 160, seed=5))
    with ProcessPoolExecutor(4) as pool:
        outputs = list(pool.map(_encode_file, [source] * 4))
    assert len(set(outputs)) == 1
    assert outputs[0] == _encode_file(source)


@pytest.mark.timeout(180)
def test_parallel_cli_encodes_are_identical(tmp_path):
    source = noise_png(tmp_path / "in.png", 64, seed=6)
    procs = [
        subprocess.Popen(kvq_command("encode", source, "-o", tmp_path / f"out{i}.kvq", "-k", "16", "--seed", "3"),
                         cwd=tmp_path, env=kvq_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for i in range(4)
    ]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    outputs = {(tmp_path / f"out{i}.kvq").read_bytes() for i in range(4)}
    assert len(outputs) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"] + [f"out{i}.kvq" for i in range(4)]
