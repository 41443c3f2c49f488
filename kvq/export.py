"""A decoded ``.kvq`` file as a Pillow image, and written in any format Pillow writes.

``kvq decode`` and ``kvq encode -o x.png`` write through :func:`write_image`:
PNG keeps the palette, WebP is lossless, the metadata goes wherever the format
has room for it. :func:`layout` is the one mapping from a ``.kvq`` file to a
Pillow mode and palette; the Pillow plugin (:mod:`kvq.pillow_plugin`) opens
files with it, so an opened file and an exported one agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import numpy as np
from PIL import Image

from . import codec
from .bands import BandReader
from .container import Header
from .errors import KvqError
from .pixels import pillow_mode
from .pngwrite import DEFAULT_EFFORT, write_png


def layout(header: Header, palette: bytes, *, indexed: bool = True, grey_indexed: bool = False) -> tuple[str, str, bytes | None]:
    """How a ``.kvq`` file maps to a Pillow image: the one place that decides it.

    Parameters
    ----------
    header : Header
    palette : bytes
        The stored palette, ``header.palette_size`` bytes.
    indexed : bool, default=True
        Palettes of at most 256 entries give mode ``P`` (as the plugin opens
        files); False gives the pixels' own mode always.
    grey_indexed : bool, default=False
        Grey files with an indexed mode become ``P`` too, with a grey RGB
        palette (the smallest exact PNG); by default they are ``L``.

    Returns
    -------
    mode : str
        ``P``, ``L``, ``RGB`` or ``RGBA``.
    palette_mode : str
        Raw mode of ``palette`` for ``ImagePalette.raw`` or ``putpalette``
        (``RGB`` or ``RGBA``); empty when the mode is not ``P``.
    palette : bytes or None
        The palette in that raw mode; for RGBA palettes the alpha bytes are
        also ``info["transparency"]``, as PNG's tRNS. None when not ``P``.
    """
    if not indexed or header.k > 256 or (header.channels == 1 and not grey_indexed):
        return pillow_mode(header.channels), "", None
    if header.channels == 1:
        return "P", "RGB", np.frombuffer(palette, dtype=np.uint8).repeat(3).tobytes()
    return "P", pillow_mode(header.channels), bytes(palette)


def _raw_pixels(decoded: codec.Decoded, mode: str) -> np.ndarray:
    # P images take the indices as they are; the others the looked-up pixels.
    return decoded.indices if mode == "P" else decoded.pixels()


def to_pillow(decoded: codec.Decoded, *, indexed: bool = True, grey_indexed: bool = False) -> Image.Image:
    """A decoded file as a Pillow image, with the modes the plugin opens it in.

    Parameters
    ----------
    decoded : kvq.Decoded
    indexed, grey_indexed : bool
        See :func:`layout`.

    Returns
    -------
    PIL.Image.Image
        With the file's metadata in ``info``, as the plugin opens it.
    """
    mode, palette_mode, palette = layout(
        decoded.header, decoded.palette.tobytes(), indexed=indexed, grey_indexed=grey_indexed
    )
    image = Image.fromarray(_raw_pixels(decoded, mode))
    if palette is not None:
        image.putpalette(palette, rawmode=palette_mode)  # turns the L image into P
        if palette_mode == "RGBA":
            image.info["transparency"] = palette[3::4]
    image.info.update(decoded.metadata.pillow_info())
    return image


def raw_bands(reader: BandReader, mode: str) -> Iterator[tuple[int, np.ndarray]]:
    """A file's rows, a band at a time, as the raw data of a Pillow image of ``mode``.

    The one mapping from a file's indices to a Pillow mode's raw data when
    decoding by bands (:func:`to_pillow` is the same for a whole decode).

    Parameters
    ----------
    reader : kvq.bands.BandReader
    mode : str
        ``P`` takes the indices as they are; the other modes the pixels
        looked up in the palette, one band at a time.

    Yields
    ------
    row : int
        The band's first row.
    raw : ndarray of uint8, C-contiguous
        (rows, width) or (rows, width, channels).
    """
    for row, indices in reader.bands():
        yield row, np.ascontiguousarray(indices if mode == "P" else codec.lookup(reader.palette, indices))


def image_from_bands(reader: BandReader, *, indexed: bool = True, grey_indexed: bool = False) -> Image.Image:
    """Build the Pillow image of an open file band by band.

    Memory is the image and one band for a fixed-width file; for an
    entropy-coded one (coding 1, decoded whole, see :mod:`kvq.bands`) also
    its indices.

    Parameters
    ----------
    reader : kvq.bands.BandReader
    indexed, grey_indexed : bool
        See :func:`layout`.

    Returns
    -------
    PIL.Image.Image
        The image :func:`to_pillow` makes from the whole decoded file, pixels
        and ``info`` (metadata, transparency) alike.
    """
    header = reader.header
    mode, palette_mode, palette = layout(header, reader.palette.tobytes(), indexed=indexed, grey_indexed=grey_indexed)
    image = Image.new(mode, (header.width, header.height))
    if palette is not None:
        image.putpalette(palette, rawmode=palette_mode)
        if palette_mode == "RGBA":
            image.info["transparency"] = palette[3::4]
    for row, raw in raw_bands(reader, mode):
        # A view of the band, pasted as raw values (P into P copies indices).
        band = Image.frombuffer(mode, (header.width, len(raw)), raw, "raw", mode, 0, 1)
        image.paste(band, (0, row))
    image.info.update(reader.metadata.pillow_info())
    return image


def _indices(source: codec.Decoded | BandReader) -> np.ndarray:
    """Every index of the file, (H, W) uint8; read band by band from an open file."""
    if not isinstance(source, BandReader):
        return source.indices
    out = np.empty((source.header.height, source.header.width), dtype=np.uint8)
    for row, indices in source.bands():
        out[row : row + len(indices)] = indices
    return out


def _refuse_a_loss(header: Header, palette: np.ndarray, upper: str) -> None:
    """Refuse a GIF or BMP that could not hold the file's pixels exactly, rather than let Pillow change them.

    GIF holds at most 256 colours, and one fully transparent index rather than an alpha per colour (so a palette of
    opaque entries and one clear one, as an icon's, is kept); Pillow's BMP reader reads no alpha. Pillow would
    quantize or drop it silently (a 1,000-colour file as a 249-colour GIF).
    """
    name = {"GIF": "GIF", "BMP": "BMP"}.get(upper)
    if name is None:
        return
    if name == "GIF" and header.k > 256:
        raise KvqError(f"GIF holds at most 256 colours, not the {header.k:,} of this image: write PNG, or quantize to k=256 or fewer")
    if header.channels != 4:
        return
    alpha = np.asarray(palette).reshape(header.k, 4)[:, 3]
    if name == "GIF" and _gif_transparency(alpha) is not None:
        return
    if not bool((alpha == 255).all()):
        held = "one fully transparent colour at most" if name == "GIF" else "no alpha"
        raise KvqError(f"{name} keeps {held}, and this image's palette has more: write PNG (or TIFF)")


def _gif_transparency(alpha: np.ndarray) -> int | None:
    """The one entry a GIF can make transparent: the palette's only alpha-0 entry when all others are opaque."""
    clear = np.flatnonzero(alpha == 0)
    if len(clear) == 1 and bool(((alpha == 0) | (alpha == 255)).all()):
        return int(clear[0])
    return None


def write_image(
    source: codec.Decoded | BandReader, fp: IO[bytes], format: str, *, strip: bool = False, png_effort: int = DEFAULT_EFFORT
) -> None:
    """Write a decoded file in a format Pillow writes, losing nothing it need not.

    PNG keeps the palette (PNG-8, grey included), written by
    :mod:`kvq.pngwrite`, which makes a smaller file than Pillow's writer;
    GIF, BMP (1 or 4 bits a pixel up to 16 entries, :mod:`kvq.bmp`; else 8)
    and TIFF keep it for opaque palettes, and an RGBA file whose palette is not
    opaque goes to TIFF as RGBA pixels; WebP is written lossless; JPEG has no
    lossless mode. What GIF or BMP cannot hold exactly (more than 256 colours
    in a GIF, alpha in either) is refused, never approximated. The ICC profile, EXIF and resolution
    go wherever the format has room for them: PNG, JPEG and TIFF keep all
    three, WebP the profile and EXIF, BMP the resolution.

    Parameters
    ----------
    source : kvq.Decoded or kvq.bands.BandReader
        A whole decoded file, or an open one, read a band of rows at a time
        (see :func:`image_from_bands`).
    fp : binary file object
    format : str
        Pillow format name.
    strip : bool, default=False
        Write no metadata.
    png_effort : {0, 1, 2}, default=1
        How hard :mod:`kvq.pngwrite` works for a smaller indexed PNG.

    Raises
    ------
    KvqError
        Pillow cannot write the image in that format, or a GIF or BMP could not hold its pixels exactly.
    """
    upper = format.upper()
    header = source.header
    _refuse_a_loss(header, source.palette, upper)
    # BMP and TIFF hold a palette too, without alpha; an RGBA palette goes to TIFF as RGBA pixels.
    indexed = upper == "PNG" or (upper in ("GIF", "BMP", "TIFF") and header.channels != 4)
    # Pillow's writers take metadata as save keywords (PNG reads only the ICC
    # profile from info); stripping must also clear what info holds.
    metadata = {} if strip else source.metadata.pillow_info()
    if upper == "PNG":
        _, palette_mode, palette = layout(source.header, source.palette.tobytes(), grey_indexed=True)
        if palette is not None:
            entries = np.frombuffer(palette, dtype=np.uint8).reshape(-1, len(palette_mode))
            write_png(fp, _indices(source), entries, info=metadata, effort=png_effort)
            return
    if upper in ("GIF", "BMP") and header.channels == 4 and header.k <= 256:
        # An RGBA palette _refuse_a_loss let through (opaque, or one clear entry in a GIF): the RGB palette and
        # the indices as they are.
        image = Image.fromarray(_indices(source))
        image.putpalette(np.ascontiguousarray(source.palette[:, :3]).tobytes())
        image.info.update(source.metadata.pillow_info())
        if upper == "GIF" and (clear := _gif_transparency(source.palette[:, 3])) is not None:
            image.info["transparency"] = clear
    elif isinstance(source, BandReader):
        image = image_from_bands(source, indexed=indexed, grey_indexed=True)
    else:
        image = to_pillow(source, indexed=indexed, grey_indexed=True)
    if upper == "BMP" and image.mode == "RGBA":
        image = image.convert("RGB")  # opaque (_refuse_a_loss): the same pixels, which BMP then keeps exactly
    if strip:
        for key in ("icc_profile", "exif", "dpi"):
            image.info.pop(key, None)
    if upper == "BMP" and image.mode == "P" and source.header.k <= 16:
        # Pillow writes 8 bits a pixel; 1 or 4 are enough (kvq.bmp).
        from .bmp import write_palette_bmp

        colours = np.asarray((image.getpalette() or [])[: 3 * source.header.k], dtype=np.uint8).reshape(-1, 3)
        write_palette_bmp(np.asarray(image), colours, fp, dpi=metadata.get("dpi"))
        return
    try:
        # A decoder should not add loss the user did not choose.
        image.save(fp, format=format, **metadata, **({"lossless": True} if upper == "WEBP" else {}))
    except BrokenPipeError:
        raise  # the reader of standard output went away: the CLI's exit 141, not a writer's failure
    except (OSError, ValueError, KeyError) as exc:
        raise KvqError(f"cannot write {format}: {exc}") from None
