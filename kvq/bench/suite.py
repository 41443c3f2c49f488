"""Measure kvq and its peers on images at a list of palette sizes.

One :class:`Row` per image and K holds the bit accounting of the ``.kvq``
file (recomputed from the file itself, through :func:`kvq.breakdown`), its
quality, and every peer's size and quality.

A file's accounting holds when every bit is overhead, palette, indices or
ancillary and, for fixed-width files, the file is exactly the theory plus the
fixed overhead plus the last byte's padding; an entropy-coded file cannot
equal the theory, so for it the fixed-width figure it is measured against
must be exactly theory + padding instead (``SizeBreakdown.accounted``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from .. import Decoded, decode_indexed, open_image
from .. import coding as codings
from ..fileio import encode_file
from ..options import EncoderOptions
from ..paths import IMAGE_SUFFIXES as IMAGE_SUFFIXES  # where it lived before kvq.paths
from ..paths import image_paths
from ..pixels import to_array
from . import peers as peer_codecs
from .quality import delta_e2000, psnr, ssim

#: Palette sizes measured when none are given.
DEFAULT_KS = (2, 16, 64, 256)
#: The sample images bundled with scikit-learn, used when no image is given.
BUNDLED = ("china.jpg", "flower.jpg")
#: What is measured for each peer; CSV columns are ``<peer>_<column>``.
PEER_COLUMNS = ("bytes", "bpp", "psnr", "ssim", "quality", "note", "delta_e2000", "seconds")


@dataclass(frozen=True)
class InputImage:
    """An input image: a name for the report and its pixels (H, W, C)."""

    name: str
    pixels: np.ndarray
    source: str


@dataclass
class Row:
    """Everything measured for one image at one K.

    Attributes are the CSV columns (peers flattened as ``<peer>_bytes``,
    ``<peer>_bpp``, ``<peer>_psnr``, ``<peer>_ssim``, ``<peer>_note``, and
    ``jpeg_quality``; ``<peer>_delta_e2000`` and ``<peer>_seconds`` are
    measured for ``kmeans``, the textbook method, only). Bits are of the
    ``.kvq`` file; ``k`` is the palette size stored (at most
    ``k_requested``: kvq drops unused and duplicate colours), and the theory
    uses it. ``coding`` is the index coding the
    file holds (``"fixed"`` or ``"entropy"``: the encoder stores fixed width
    where that is smaller); ``fixed_file_bits`` is the same file with
    fixed-width indices, and ``side_bits`` the index bits that carry no
    index (the padding, or the entropy coder's flush).
    """

    image: str
    width: int
    height: int
    channels: int
    n_pixels: int
    k_requested: int
    k: int
    bits_per_index: int
    coding: str
    raw_bits: int
    theory_bits: int
    fixed_file_bits: int
    file_bytes: int
    file_bits: int
    overhead_bits: int
    palette_bits: int
    index_bits: int
    padding_bits: int
    side_bits: int
    ancillary_bits: int
    matches_theory: bool
    accounted: bool
    factor_vs_raw: float
    factor_vs_theory_index: float
    bpp: float
    psnr: float
    ssim: float
    delta_e2000: float
    encode_seconds: float
    peers: dict[str, dict] = field(default_factory=dict)

    @property
    def textbook(self) -> bool:
        """bool: the file's indices are at fixed width, the textbook N·ceil(log2 K) (see :class:`kvq.coding.IndexCoding`)."""
        return codings.by_name(self.coding).textbook

    @property
    def accounting_holds(self) -> bool:
        """bool: the check ``kvq bench`` exits on: ``matches_theory`` for a
        fixed-width file, ``accounted`` for one in another coding."""
        return self.matches_theory if self.textbook else self.accounted

    def csv_dict(self) -> dict[str, object]:
        """The row as CSV columns, peers flattened."""
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "peers"}
        for key in peer_codecs.PEERS:
            result = self.peers.get(key, {})
            for column in PEER_COLUMNS:
                out[f"{key}_{column}"] = result.get(column, "")
        return out


def csv_columns() -> list[str]:
    """list of str: the CSV header of ``results.csv``."""
    base = [f.name for f in fields(Row) if f.name != "peers"]
    return base + [f"{key}_{column}" for key in peer_codecs.PEERS for column in PEER_COLUMNS]


def load_images(inputs: Sequence[str | os.PathLike] | None = None) -> list[InputImage]:
    """Read the images to measure.

    Parameters
    ----------
    inputs : sequence of paths, optional
        Image files and folders (a folder gives its image files, sorted by
        name, not recursively). Empty or None: scikit-learn's bundled sample
        images ``china.jpg`` and ``flower.jpg``.

    Returns
    -------
    list of InputImage
        Names are file stems, made unique with a suffix where they repeat.

    Raises
    ------
    FileNotFoundError, kvq.UnsupportedImageError, ValueError
    """
    images: list[InputImage] = []
    if not inputs:
        from sklearn.datasets import load_sample_image

        for name in BUNDLED:
            images.append(InputImage(Path(name).stem, to_array(load_sample_image(name)), f"sklearn:{name}"))
        return images
    # Every input is checked before the first image is read.
    paths = list(image_paths(inputs, recursive=False))
    seen: dict[str, int] = {}
    for path in paths:
        name = path.stem
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}-{seen[name]}"
        images.append(InputImage(name, to_array(open_image(path)), str(path)))
    return images


def measure(
    image: InputImage,
    k: int,
    options: EncoderOptions,
    want_peers: Iterable[str] = tuple(peer_codecs.PEERS),
    keep: Callable[[str, bytes], None] | None = None,
    on_decoded: Callable[[InputImage, int, Decoded], None] | None = None,
) -> Row:
    """Encode one image at one K with kvq and each peer, and measure.

    Parameters
    ----------
    image : InputImage
    k : int
    options : EncoderOptions
        Encoder options; ``k`` is replaced.
    want_peers : iterable of str
        Peer keys to run (see :data:`kvq.bench.peers.PEERS`).
    keep : callable, optional
        Called as ``keep(filename, data)`` for the ``.kvq`` file and each
        peer's file, to save them.
    on_decoded : callable, optional
        Called as ``on_decoded(image, k, decoded)`` with the decoded file
        (for the reconstruction grids).

    Returns
    -------
    Row
    """
    start = time.perf_counter()
    encoded = encode_file(image.pixels, None, replace(options, k=k))
    seconds = time.perf_counter() - start
    data = encoded.data
    # Measure what a reader gets from the file, not what the encoder holds.
    decoded = decode_indexed(data)
    header = decoded.header
    if not np.array_equal(decoded.pixels(), encoded.pixels()):
        raise AssertionError(f"{image.name} at K={k}: decoding the file does not give the encoded pixels")
    # The suite's measures and peers take (H, W, C) arrays, grey included.
    pixels = decoded.palette[decoded.indices]
    original = image.pixels
    sizes = encoded.sizes
    theory_index_bits = header.n_pixels * header.bits
    row = Row(
        image=image.name,
        width=header.width,
        height=header.height,
        channels=header.channels,
        n_pixels=sizes.n_pixels,
        k_requested=k,
        k=header.k,
        bits_per_index=header.bits,
        coding=codings.by_code(header.coding).name,
        raw_bits=sizes.raw_bits,
        theory_bits=sizes.theory_bits,
        fixed_file_bits=sizes.fixed_file_bits,
        file_bytes=len(data),
        file_bits=sizes.file_bits,
        overhead_bits=sizes.overhead_bits,
        palette_bits=sizes.palette_bits,
        index_bits=sizes.index_bits,
        padding_bits=sizes.padding_bits,
        side_bits=sizes.side_bits,
        ancillary_bits=sizes.ancillary_bits,
        matches_theory=sizes.matches_theory,
        accounted=sizes.accounted,
        factor_vs_raw=sizes.factor,
        factor_vs_theory_index=(sizes.raw_bits / theory_index_bits) if theory_index_bits else math.inf,
        bpp=sizes.bits_per_pixel,
        # The suite's own PSNR, not encoded.psnr: RGBA is measured on premultiplied colour (kvq.bench.quality).
        psnr=psnr(original, pixels),
        ssim=ssim(original, pixels),
        delta_e2000=delta_e2000(original, pixels),
        encode_seconds=seconds,
    )
    if keep is not None:
        keep(f"{image.name}_k{k}.kvq", data)
    if on_decoded is not None:
        on_decoded(image, k, decoded)
    want = set(want_peers)
    measured: list[tuple[np.ndarray, dict]] = []
    quantized = None
    if want & {"png8", "gif"} and k <= 256:
        quantized = peer_codecs.pillow_quantize(original, k)
    for key in peer_codecs.PEERS:
        if key not in want:
            continue
        if key == "png8":
            result = peer_codecs.png8(original, k, quantized)
        elif key == "gif":
            result = peer_codecs.gif(original, k, quantized)
        elif key == "pngquant":
            result = peer_codecs.pngquant(original, k)
        elif key == "kvq_png8":
            result = peer_codecs.kvq_png8(decoded.palette, decoded.indices)
        elif key == "webp":
            result = peer_codecs.webp_lossless(pixels)
        elif key == "jxl":
            result = peer_codecs.jxl_lossless(pixels)
        elif key == "kmeans":
            result = peer_codecs.kvq_kmeans(original, replace(options, k=k))
        else:
            result = peer_codecs.jpeg_matched(original, row.psnr)
        # Peers that decode to pixels already measured (kvq's own as PNG-8,
        # WebP and JPEG XL, GIF of Pillow's PNG-8 palette) reuse those numbers.
        known = [(pixels, row.psnr, row.ssim)] + [(p, m["psnr"], m["ssim"]) for p, m in measured]
        row.peers[key] = _peer_row(result, original, header.n_pixels, known)
        if result.seconds is not None and result.pixels is not None:
            # The textbook method beside kvq's engine: the same measures, the same clock.
            row.peers[key]["delta_e2000"] = delta_e2000(original, result.pixels)
            row.peers[key]["seconds"] = result.seconds
        if result.pixels is not None:
            measured.append((result.pixels, row.peers[key]))
        if keep is not None and result.data is not None:
            suffix = {"gif": "gif", "jpeg": "jpg", "webp": "webp", "jxl": "jxl", "kmeans": "kvq"}.get(key, "png")
            keep(f"{image.name}_k{k}_{key}.{suffix}", result.data)
    return row


def _peer_row(result: peer_codecs.PeerResult, original: np.ndarray, n_pixels: int, known: list) -> dict:
    if result.data is None or result.pixels is None:
        return {"note": result.note}
    for pixels, known_psnr, known_ssim in known:
        if np.array_equal(pixels, result.pixels):
            quality = (known_psnr, known_ssim)
            break
    else:
        quality = (psnr(original, result.pixels), ssim(original, result.pixels))
    return {
        "bytes": len(result.data),
        "bpp": 8 * len(result.data) / n_pixels,
        "psnr": quality[0],
        "ssim": quality[1],
        "quality": result.quality if result.quality is not None else "",
        "note": result.note,
    }


def run_suite(
    images: Sequence[InputImage],
    ks: Sequence[int] = DEFAULT_KS,
    options: EncoderOptions | None = None,
    want_peers: Iterable[str] = tuple(peer_codecs.PEERS),
    keep: Callable[[str, bytes], None] | None = None,
    progress: bool = True,
    on_decoded: Callable[[InputImage, int, Decoded], None] | None = None,
) -> list[Row]:
    """Measure every image at every K, with a progress bar on stderr.

    Parameters
    ----------
    images : sequence of InputImage
    ks : sequence of int
    options : EncoderOptions, optional
        Encoder options other than ``k`` (seed, speed, colour space, dither).
    want_peers : iterable of str
    keep : callable, optional
        See :func:`measure`.
    progress : bool, default=True
        Show a tqdm progress bar on stderr.
    on_decoded : callable, optional
        See :func:`measure`.

    Returns
    -------
    list of Row
        Ordered by image, then K.
    """
    from tqdm import tqdm

    options = options or EncoderOptions()
    want = tuple(want_peers)
    # Load the compiled kernels (and scikit-learn, for the kmeans peer) before any encode is timed: the first
    # row would pay for them. A small gradient with more colours than K runs every stage.
    warm = np.arange(3 * 32 * 32, dtype=np.uint8).reshape(32, 32, 3)
    for method in dict.fromkeys((options.method, "kmeans" if "kmeans" in want else options.method)):
        encode_file(warm, None, replace(options, k=4, method=method))
    rows: list[Row] = []
    tasks = [(image, k) for image in images for k in ks]
    with tqdm(total=len(tasks), disable=not progress, unit="encode", desc="kvq bench") as bar:
        for image, k in tasks:
            bar.set_postfix_str(f"{image.name} K={k}")
            rows.append(measure(image, k, options, want, keep, on_decoded))
            bar.update()
    return rows
