"""Shared pieces of the kvq fuzz harnesses: seeds, the CRC-fixing mutator, limits.

Every ``.kvq`` chunk carries a CRC-32, so almost every blind mutation of a
valid file stops at the first CRC check. The custom mutator below lets
libFuzzer mutate as usual and then, most of the time, recomputes the CRC of
every chunk it can still walk, so the fuzzer also reaches the code behind the
checksums (header validation, chunk order, palette and index checks,
unpacking). Inputs are always decoded exactly as stored, so a crash file
reproduces on its own.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

#: Pixel limit passed to every decoder call: a fuzzed header may legitimately
#: declare a large image of one colour (K = 1 needs no index bytes), and the
#: fuzzer must not spend its memory allocating such images.
MAX_PIXELS = 1 << 18

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "spec" / "vectors"


#: Largest read a reader may request: Python's BufferedReader.read(n)
#: allocates n bytes first, so a length taken from the file must never reach it.
READ_LIMIT = 1 << 20


class GuardedFile(io.BytesIO):
    """A file that fails the run when asked for more bytes than READ_LIMIT at once."""

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size > READ_LIMIT:
            raise AssertionError(f"read({size:,}) requested: an unchecked size from the file")
        return super().read(size)


def start_kernels() -> None:
    """Compile, or load from numba's cache, the index codings' kernels before libFuzzer's per-input clock runs.

    Compiling the entropy coder's kernel takes seconds, more on a busy machine: inside the first input that
    needs it, libFuzzer's per-input limit would kill the run, and the kernel would never reach the cache.
    """
    from kvq import coding

    for index_coding in coding.CODINGS:
        index_coding.start()


def fix_crcs(data: bytes) -> bytes:
    """Recompute the CRC of every complete chunk after the 8-byte signature."""
    out = bytearray(data)
    offset = 8
    while offset + 12 <= len(out):
        (length,) = struct.unpack_from(">I", out, offset)
        end = offset + 8 + length
        if end + 4 > len(out):
            break
        # kvq's CRC covers length, type and data (PNG's leaves out the length).
        struct.pack_into(">I", out, end, zlib.crc32(out[offset:end]))
        offset = end + 4
    return bytes(out)


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    """libFuzzer's own mutation, then CRCs fixed in 7 of 8 cases."""
    import atheris

    rng = random.Random(seed)
    mutated = atheris.Mutate(data, max_size)
    if rng.random() < 0.875:
        mutated = fix_crcs(mutated)[:max_size]
    return mutated


def generated_seeds() -> dict[str, bytes]:
    """Small valid files: every channel count, index widths 0..10, every index coding, ancillary chunks."""
    import numpy as np

    from kvq import container
    from kvq.codec import encode_indexed
    from kvq.coding import entropy, striped

    rng = np.random.default_rng(0)
    seeds = {}
    for channels in (1, 3, 4):
        for k in (1, 2, 3, 5, 9, 17, 33, 65, 129, 257, 513):
            if channels == 1 and k > 256:
                continue
            n = max(k, 6)
            width = min(n, 7)
            height = -(-n // width)
            # k distinct colours: palette entry i spells i in its first channels.
            palette = np.zeros((k, channels), dtype=np.uint8)
            palette[:, -1] = np.arange(k) & 0xFF
            if channels > 1:
                palette[:, -2] = np.arange(k) >> 8
            indices = np.concatenate([np.arange(k), rng.integers(0, k, width * height - k)])
            indices = rng.permutation(indices).reshape(height, width)
            seeds[f"c{channels}_k{k}_{width}x{height}.kvq"] = encode_indexed(palette=palette, indices=indices, coding="fixed")
            # The same image in index coding 1, forced (fixed width is smaller at this size),
            # so that the fuzzer starts inside the entropy decoder too.
            stream = entropy.encode(indices.astype(np.uint16), k)
            head = container.Header(width, height, channels, k, container.bits_for(k), 1, (1, 1))
            seeds[f"entropy_c{channels}_k{k}_{width}x{height}.kvq"] = container.write(head, palette.tobytes(), stream or b"")
            # And in index coding 2 (one stripe at this size; spec/vectors has files of two).
            body = striped.encode(indices.astype(np.uint16), k, threads=1)
            head = container.Header(width, height, channels, k, container.bits_for(k), 2, (1, 2))
            seeds[f"striped_c{channels}_k{k}_{width}x{height}.kvq"] = container.write(head, palette.tobytes(), body or b"")
    # Ancillary chunks (one empty), and a 1x1 image.
    header = container.Header(3, 2, 3, 2, 1)
    seeds["ancillary.kvq"] = container.write(
        header, bytes(range(6)), b"\x50", [(b"tEXt", b"comment=fuzz"), (b"zzZz", b"")]
    )
    seeds["1x1.kvq"] = encode_indexed(palette=np.array([[7, 8, 9, 10]], dtype=np.uint8), indices=np.zeros((1, 1), dtype=np.uint8))
    return seeds


def vector_files() -> list[Path]:
    """Every file under spec/vectors/ that looks like a .kvq file (valid or not)."""
    if not VECTORS.is_dir():
        return []
    return sorted(p for p in VECTORS.rglob("*") if p.is_file() and p.suffix == ".kvq")


def write_seeds(folder: Path) -> int:
    """Fill ``folder`` with the generated seeds and spec/vectors/*.kvq; return the count."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for name, data in generated_seeds().items():
        (folder / name).write_bytes(data)
        count += 1
    for path in vector_files():
        rel = path.relative_to(VECTORS).as_posix().replace("/", "__")
        (folder / f"vector__{rel}").write_bytes(path.read_bytes())
        count += 1
    return count


if __name__ == "__main__":  # python fuzz/_common.py DIR: write the seed corpus
    import sys

    sys.path.insert(0, str(ROOT))
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "fuzz" / "seeds")
    print(f"{write_seeds(target)} seeds written to {target}")
