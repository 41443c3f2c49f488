"""What users would pick instead of kvq, at the same palette size K.

Every peer takes the image kvq saw (an (H, W, C) uint8 array) and returns the
bytes it would store and the pixels a reader gets back, or a note saying why
it does not apply:

- ``png8``: Pillow's own quantizer (median cut; fast octree for RGBA), no
  dithering, saved as PNG with ``optimize=True``.
- ``gif``: the same Pillow-quantized image saved as GIF (``optimize=True``).
- ``pngquant``: the ``pngquant`` program, ``--nofs --speed 1 K``, when it is on
  PATH.
- ``kvq_png8``: kvq's own palette and indices saved as PNG-8 (``optimize=True``):
  the same pixels as the ``.kvq`` file, with PNG's deflate instead of fixed-width
  bit packing.
- ``webp``: kvq's decoded pixels saved as WebP-lossless (Pillow:
  ``lossless=True, quality=100, method=6``, its smallest): the same pixels
  in the best general-purpose lossless format browsers read.
- ``jxl``: kvq's decoded pixels saved as JPEG XL lossless at effort 9
  (``imagecodecs.jpegxl_encode``; core Pillow has no JPEG XL plugin).
- ``jpeg``: Pillow JPEG at the lowest quality 1..95 whose PSNR reaches
  kvq's, found by bisection, with 4:2:0 or 4:4:4 chroma, whichever is smaller.
- ``kmeans``: a ``.kvq`` file with the same options but the textbook palette
  method, ``method="kmeans"`` (scikit-learn's ``KMeans``,
  :mod:`kvq.quantize.sklearn_kmeans`), timed as kvq's own encode is: what
  kvq's engine adds to the method the tutorials use.

``kvq_png8``, ``webp`` and ``jxl`` store exactly what the ``.kvq`` file
stores (WebP drops the colour of fully transparent pixels, which no viewer
shows), so they compare the index coding alone, not the palette.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from ..metrics import psnr
from ..options import EncoderOptions
from ..pixels import pillow_mode

#: Peer keys in report order, with their display names.
PEERS = {
    "png8": "PNG-8 (Pillow)",
    "pngquant": "pngquant",
    "gif": "GIF (Pillow)",
    "kvq_png8": "kvq palette as PNG-8",
    "webp": "WebP-lossless of kvq's pixels",
    "jxl": "JPEG XL lossless of kvq's pixels",
    "jpeg": "JPEG at kvq's PSNR",
    "kmeans": "kvq, scikit-learn KMeans palette",
}
#: Peers that store the ``.kvq`` file's own decoded pixels, losslessly.
SAME_PIXELS = ("kvq_png8", "webp", "jxl")

JPEG_QUALITIES = (1, 95)
PNGQUANT_TIMEOUT_S = 300
#: Pillow's WebP settings for its smallest lossless file.
WEBP_LOSSLESS = {"lossless": True, "quality": 100, "method": 6}
#: The longest side a WebP image may have.
WEBP_MAX_SIDE = 16383
#: JPEG XL effort: 9, libjxl's slowest setting without its expert options.
JXL_EFFORT = 9


@dataclass(frozen=True)
class PeerResult:
    """One peer's encoding of one image at one K.

    Attributes
    ----------
    data : bytes or None
        The file the peer writes; None when the peer does not apply.
    pixels : ndarray or None
        What a reader decodes, shape (H, W, C) like the original.
    note : str
        Why the peer was skipped, or a detail (the JPEG quality).
    quality : int or None
        JPEG quality setting, for the ``jpeg`` peer.
    seconds : float or None
        Time of the encode, for the ``kmeans`` peer (measured as kvq's own).
    """

    data: bytes | None
    pixels: np.ndarray | None = None
    note: str = ""
    quality: int | None = None
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        """bool: the peer produced a file."""
        return self.data is not None


def skipped(note: str) -> PeerResult:
    """A peer that does not apply, with the reason.

    Parameters
    ----------
    note : str

    Returns
    -------
    PeerResult
    """
    return PeerResult(None, None, note)


def to_pil(pixels: np.ndarray) -> Image.Image:
    """An (H, W, C) uint8 array as a Pillow image of mode L, RGB or RGBA."""
    channels = pixels.shape[2]
    return Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, pillow_mode(channels))


def read_back(data: bytes, channels: int) -> np.ndarray:
    """Decode a peer's file with Pillow to an (H, W, C) uint8 array."""
    with Image.open(io.BytesIO(data)) as im:
        array = np.asarray(im.convert(pillow_mode(channels)))
    return array[:, :, None] if array.ndim == 2 else array


def _save(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def pillow_quantize(pixels: np.ndarray, k: int) -> Image.Image:
    """Pillow's K-colour palette image, without dithering."""
    method = Image.Quantize.FASTOCTREE if pixels.shape[2] == 4 else Image.Quantize.MEDIANCUT
    return to_pil(pixels).quantize(k, method=method, dither=Image.Dither.NONE)


def png8(pixels: np.ndarray, k: int, quantized: Image.Image | None = None) -> PeerResult:
    """PNG-8 through Pillow's quantizer, ``optimize=True``."""
    if k > 256:
        return skipped("PNG-8 holds at most 256 colours")
    quantized = quantized if quantized is not None else pillow_quantize(pixels, k)
    data = _save(quantized, "PNG", optimize=True)
    return PeerResult(data, read_back(data, pixels.shape[2]))


def gif(pixels: np.ndarray, k: int, quantized: Image.Image | None = None) -> PeerResult:
    """GIF of Pillow's quantized image, ``optimize=True``."""
    if k > 256:
        return skipped("GIF holds at most 256 colours")
    if pixels.shape[2] == 4:
        return skipped("GIF has only 1-bit transparency")
    quantized = quantized if quantized is not None else pillow_quantize(pixels, k)
    data = _save(quantized, "GIF", optimize=True)
    return PeerResult(data, read_back(data, pixels.shape[2]))


def pngquant_path() -> str | None:
    """str or None: the pngquant program on PATH."""
    return shutil.which("pngquant")


def pngquant_version() -> str | None:
    """str or None: ``pngquant --version``'s first line."""
    exe = pngquant_path()
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def pngquant(pixels: np.ndarray, k: int) -> PeerResult:
    """``pngquant --nofs --speed 1 K -`` on the image, reading stdin."""
    exe = pngquant_path()
    if exe is None:
        return skipped("pngquant not installed")
    if not 2 <= k <= 256:
        return skipped("pngquant takes 2 to 256 colours")
    source = _save(to_pil(pixels), "PNG", compress_level=1)
    try:
        done = subprocess.run(
            [exe, "--nofs", "--speed", "1", str(k), "-"],
            input=source,
            capture_output=True,
            timeout=PNGQUANT_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return skipped(f"pngquant failed: {exc}")
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        return skipped(f"pngquant exit {done.returncode}" + (f": {message[-1]}" if message else ""))
    return PeerResult(done.stdout, read_back(done.stdout, pixels.shape[2]))


def kvq_png8(palette: np.ndarray, indices: np.ndarray) -> PeerResult:
    """kvq's own palette and indices saved as PNG-8, ``optimize=True``."""
    k, channels = palette.shape
    if k > 256:
        return skipped("PNG-8 holds at most 256 colours")
    image = Image.fromarray(indices.astype(np.uint8, copy=False), "P")
    if channels == 1:
        image.putpalette(np.repeat(palette, 3, axis=1).tobytes(), "RGB")
    elif channels == 3:
        image.putpalette(palette.tobytes(), "RGB")
    else:
        image.putpalette(palette.tobytes(), "RGBA")
    data = _save(image, "PNG", optimize=True)
    return PeerResult(data, read_back(data, channels))


def webp_lossless(pixels: np.ndarray) -> PeerResult:
    """WebP-lossless of exactly ``pixels`` (Pillow, ``lossless=True, quality=100, method=6``).

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, C)
        kvq's decoded pixels.

    Returns
    -------
    PeerResult
        Skipped when Pillow was built without WebP, or the image is larger
        than WebP's 16,383 pixels a side.
    """
    from PIL import features

    if not features.check("webp"):
        return skipped("Pillow was built without WebP")
    if max(pixels.shape[:2]) > WEBP_MAX_SIDE:
        return skipped(f"WebP holds at most {WEBP_MAX_SIDE:,} pixels a side")
    data = _save(to_pil(pixels), "WEBP", **WEBP_LOSSLESS)
    return PeerResult(data, read_back(data, pixels.shape[2]))


def jxl_lossless(pixels: np.ndarray) -> PeerResult:
    """JPEG XL lossless of exactly ``pixels`` at effort 9 (``imagecodecs.jpegxl_encode``).

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, C)
        kvq's decoded pixels.

    Returns
    -------
    PeerResult
        Skipped with a note when imagecodecs (or its JPEG XL codec) is missing.
    """
    try:
        import imagecodecs
    except ImportError:
        return skipped("imagecodecs not installed")
    codec = getattr(imagecodecs, "JPEGXL", None)
    if codec is None or not getattr(codec, "available", True):
        return skipped("imagecodecs was built without JPEG XL")
    channels = pixels.shape[2]
    data = bytes(imagecodecs.jpegxl_encode(pixels[:, :, 0] if channels == 1 else pixels, lossless=True, effort=JXL_EFFORT))
    return PeerResult(data, jxl_read_back(data, channels))


def jxl_read_back(data: bytes, channels: int) -> np.ndarray:
    """Decode a JPEG XL file with imagecodecs to an (H, W, C) uint8 array."""
    import imagecodecs

    array = np.asarray(imagecodecs.jpegxl_decode(data))
    return array.reshape(*array.shape[:2], channels)


def jpeg_matched(pixels: np.ndarray, target_psnr: float) -> PeerResult:
    """JPEG at the lowest quality whose PSNR reaches ``target_psnr``.

    Both of Pillow's usual chroma layouts are tried, 4:2:0 (its default) and
    4:4:4; the smaller file that reaches the target wins. For each, PSNR grows
    with the quality setting (not strictly at every step, so bisection finds a
    quality that reaches the target with the one below it missing it: the
    lowest for a monotone curve).

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, C)
    target_psnr : float
        kvq's PSNR at this K, in dB.

    Returns
    -------
    PeerResult
        ``quality`` is the setting used and ``note`` the chroma subsampling;
        skipped when even quality 95 falls short in both layouts.
    """
    channels = pixels.shape[2]
    if channels == 4:
        return skipped("JPEG has no alpha")
    if not np.isfinite(target_psnr):
        return skipped("kvq is lossless here")
    image = to_pil(pixels)
    layouts = {"4:2:0": 2, "4:4:4": 0} if channels == 3 else {"grey": None}
    best: PeerResult | None = None
    for name, subsampling in layouts.items():
        found = _jpeg_bisect(image, pixels, target_psnr, subsampling)
        if found is not None and (best is None or best.data is None or len(found[0]) < len(best.data)):
            data, decoded, quality = found
            best = PeerResult(data, decoded, "" if subsampling is None else name, quality)
    if best is None:
        return skipped(f"even quality {JPEG_QUALITIES[1]} falls short of kvq's PSNR")
    return best


def _jpeg_bisect(
    image: Image.Image, pixels: np.ndarray, target: float, subsampling: int | None
) -> tuple[bytes, np.ndarray, int] | None:
    cache: dict[int, tuple[bytes, np.ndarray, float]] = {}
    params = {} if subsampling is None else {"subsampling": subsampling}

    def at(quality: int) -> tuple[bytes, np.ndarray, float]:
        if quality not in cache:
            data = _save(image, "JPEG", quality=quality, **params)
            decoded = read_back(data, pixels.shape[2])
            cache[quality] = (data, decoded, psnr(pixels, decoded))
        return cache[quality]

    low, high = JPEG_QUALITIES
    if at(high)[2] < target:
        return None
    while low < high:
        mid = (low + high) // 2
        if at(mid)[2] >= target:
            high = mid
        else:
            low = mid + 1
    data, decoded, _ = at(high)
    return data, decoded, high


def kvq_kmeans(pixels: np.ndarray, options: EncoderOptions) -> PeerResult:
    """The same image and options through kvq with the textbook palette method, ``method="kmeans"``, timed.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, C)
    options : EncoderOptions
        kvq's own options at this K; only the method changes.

    Returns
    -------
    PeerResult
        The ``.kvq`` file, its decoded pixels (H, W, C) and the encode's
        seconds; skipped when kvq's own rows already use the method.
    """
    from .. import decode_indexed
    from ..fileio import encode_file

    if options.method == "kmeans":
        return skipped("kvq's own rows already use method kmeans")
    start = time.perf_counter()
    encoded = encode_file(pixels, None, replace(options, method="kmeans"))
    seconds = time.perf_counter() - start
    decoded = decode_indexed(encoded.data)
    return PeerResult(encoded.data, decoded.palette[decoded.indices], seconds=seconds)
