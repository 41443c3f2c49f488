"""Pillow plugin: ``Image.open("x.kvq")`` and ``im.save("x.kvq")``.

A thin adapter, modelled on Pillow's ``QoiImagePlugin``: the container module
reads the header and palette, the codec decodes and encodes; nothing here
knows the byte layout.

Modes
-----
=========================  =========================================================
File                       Pillow image
=========================  =========================================================
RGB palette, K <= 256      ``P``, palette as stored
RGBA palette, K <= 256     ``P``, palette as stored, ``info["transparency"]`` holds
                           one alpha byte per entry (as PNG's tRNS)
grey palette, any K        ``L``: the pixel values, exactly ``kvq.decode``'s array
RGB / RGBA palette, K>256  ``RGB`` / ``RGBA``
=========================  =========================================================

Grey opens as ``L`` rather than ``P`` so that ``numpy.asarray(im)`` is the
grey image users expect and equals ``kvq.decode``; the grey palette itself is
not exposed.

Saving takes the encoder options of :class:`kvq.EncoderOptions` (``k``,
``seed``, ``quality``, ``color_space``, ``dither``, ``speed``) as keyword
arguments of ``Image.save``. A ``P`` image saved without any of them is stored
with its own palette and indices, not quantized again (``transparency`` makes
the stored palette RGBA); naming an option asks for quantization as for any
other mode.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import fields
from typing import IO, Any

import numpy as np
from PIL import Image, ImageFile, ImagePalette

from . import codec, container
from .bands import BandReader
from .container import Header
from .errors import KvqError, NotKvqError, TruncatedError
from .options import EncoderOptions
from .pixels import pillow_mode

FORMAT = "KVQ"
MIME = "image/x-kvq"
EXTENSION = ".kvq"

#: Save keywords passed to the encoder; other ``Image.save`` keywords are ignored, as every Pillow plugin does.
OPTION_NAMES = tuple(f.name for f in fields(EncoderOptions))


def _accept(prefix: bytes) -> bool:
    return prefix.startswith(container.SIGNATURE)


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
    """
    mode, palette_mode, palette = layout(
        decoded.header, decoded.palette.tobytes(), indexed=indexed, grey_indexed=grey_indexed
    )
    image = Image.fromarray(_raw_pixels(decoded, mode))
    if palette is not None:
        image.putpalette(palette, rawmode=palette_mode)  # turns the L image into P
        if palette_mode == "RGBA":
            image.info["transparency"] = palette[3::4]
    return image


def raw_bands(reader: BandReader, mode: str) -> Iterator[tuple[int, np.ndarray]]:
    """A file's rows, a band at a time, as the raw data of a Pillow image of ``mode``.

    Parameters
    ----------
    reader : kvq.bands.BandReader
    mode : str
        ``P`` takes the indices as they are; the other modes the looked-up pixels.

    Yields
    ------
    row : int
    raw : ndarray of uint8, C-contiguous
        ``rows`` x width (x channels).
    """
    for row, indices in reader.bands():
        yield row, np.ascontiguousarray(indices if mode == "P" else codec.lookup(reader.palette, indices))


def image_from_bands(reader: BandReader, *, indexed: bool = True, grey_indexed: bool = False) -> Image.Image:
    """Build the Pillow image of a file band by band: memory for the image and one band.

    Parameters
    ----------
    reader : kvq.bands.BandReader
    indexed, grey_indexed : bool
        See :func:`layout`.

    Returns
    -------
    PIL.Image.Image
        As :func:`to_pillow` makes it from the whole decoded file.
    """
    header = reader.header
    mode, palette_mode, palette = layout(header, reader.palette.tobytes(), indexed=indexed, grey_indexed=grey_indexed)
    image = Image.new(mode, (header.width, header.height))
    if palette is not None:
        image.putpalette(palette, rawmode=palette_mode)
        if palette_mode == "RGBA":
            image.info["transparency"] = palette[3::4]
    for row, raw in raw_bands(reader, mode):
        band = Image.frombuffer(mode, (header.width, len(raw)), raw, "raw", mode, 0, 1)
        image.paste(band, (0, row))
    return image


def write_image(source: codec.Decoded | BandReader, fp: IO[bytes], format: str) -> None:
    """Write a decoded file in a format Pillow writes, losing nothing it need not.

    PNG keeps the palette (PNG-8, grey included: the smallest exact file
    Pillow can write); WebP is written lossless; JPEG has no lossless mode.

    Parameters
    ----------
    source : kvq.Decoded or kvq.bands.BandReader
        A whole decoded file, or an open one read a band of rows at a time
        (memory for the output image and one band).
    fp : binary file object
    format : str
        Pillow format name.

    Raises
    ------
    KvqError
        Pillow cannot write the image in that format.
    """
    upper = format.upper()
    if isinstance(source, BandReader):
        image = image_from_bands(source, indexed=upper == "PNG", grey_indexed=True)
    else:
        image = to_pillow(source, indexed=upper == "PNG", grey_indexed=True)
    try:
        # A decoder should not add loss the user did not choose.
        image.save(fp, format=format, **({"lossless": True} if upper == "WEBP" else {}))
    except (OSError, ValueError, KeyError) as exc:
        raise KvqError(f"cannot write {format}: {exc}") from None


class KvqImageFile(ImageFile.ImageFile):
    """A ``.kvq`` file opened by Pillow; pixels are decoded on ``load()``."""

    format = FORMAT
    format_description = "K-means palette image"

    def _open(self) -> None:
        assert self.fp is not None
        try:
            # No pixel limit here: Image.open applies MAX_IMAGE_PIXELS to
            # self.size right after _open, with Pillow's warning and error.
            header = container.read_header_from(self.fp, max_pixels=None)
            palette, _, index_offset = container.read_palette_from(self.fp, header)
        except NotKvqError as exc:
            raise SyntaxError(str(exc)) from exc
        except TruncatedError as exc:
            # OSError, as Pillow raises for a truncated header: ImageFile.Parser
            # reads it as "not enough data yet" and keeps feeding.
            raise OSError(str(exc)) from exc

        self._size = (header.width, header.height)
        self._mode, palette_mode, entries = layout(header, palette)
        if entries is not None:
            self.palette = ImagePalette.raw(palette_mode, entries)
            # As Image.putpalette does: raw() leaves the palette's own mode at
            # RGB, which cannot hold an RGBA raw palette.
            self.palette.mode = palette_mode
            if palette_mode == "RGBA":
                self.info["transparency"] = entries[3::4]
        file_size = index_offset + header.index_size + 4
        # Offset 0: the decoder hands the whole file to kvq's codec, which
        # checks every chunk again rather than trusting what was read here.
        self.tile = [ImageFile._Tile("kvq", (0, 0, *self._size), 0, (header, file_size))]


class KvqDecoder(ImageFile.PyDecoder):
    """Decode a ``.kvq`` file: by row bands from a file, whole from pushed pieces.

    ``ImageFile.load`` honours ``_pulls_fd`` and lets the decoder read the
    file itself: :class:`kvq.bands.BandReader` checks it and hands it over a
    band of rows at a time, so loading needs memory for the image and one
    band. ``ImageFile.Parser`` ignores ``_pulls_fd`` and pushes pieces, which
    are collected until the file is complete and decoded whole. Errors are
    raised, never returned as an error code, so that
    ``ImageFile.LOAD_TRUNCATED_IMAGES`` cannot turn a corrupt file into a
    partly black image.
    """

    _pulls_fd = True

    def init(self, args: tuple[Any, ...]) -> None:
        self._header, self._file_size = args
        self._pieces = bytearray()

    def decode(self, buffer: Any) -> tuple[int, int]:
        """Decode once the whole file is available.

        Parameters
        ----------
        buffer : bytes-like
            Ignored when pulling from ``self.fd``; otherwise the next piece.

        Returns
        -------
        (int, int)
            ``(len(buffer), 0)`` while waiting for more, ``(-1, 0)`` when done.
        """
        if self.fd is not None:
            self.fd.seek(0)
            self._load(BandReader(self.fd, max_pixels=None))
            return -1, 0
        piece = bytes(buffer)
        self._pieces += piece
        if piece and len(self._pieces) < self._file_size:
            return len(piece), 0
        # Complete, or fed b"" at the end (Parser.close): a short file
        # then raises kvq's TruncatedError from the reader.
        self._load(BandReader(io.BytesIO(bytes(self._pieces)), max_pixels=None))
        return -1, 0

    def _load(self, reader: BandReader) -> None:
        if reader.header != self._header:
            raise OSError("the .kvq file changed between open and load")
        state = self.state
        top, height = state.yoff, state.ysize
        try:
            for row, raw in raw_bands(reader, self.mode):
                # set_as_raw fills the state's extents: point them at this band.
                state.yoff, state.ysize = top + row, len(raw)
                # A flat view, not tobytes(): saves a copy of the band (Pillow
                # takes any buffer, though its stubs say bytes).
                self.set_as_raw(memoryview(raw).cast("B"), self.mode)  # type: ignore[arg-type]
        finally:
            state.yoff, state.ysize = top, height


def _palette_of(im: Image.Image) -> np.ndarray:
    """The (K, 3) or (K, 4) uint8 palette of a ``P`` image.

    Parameters
    ----------
    im : PIL.Image.Image
        Mode ``P``. Alpha comes from ``transparency`` (save keyword or
        ``im.info``; an index or per-entry bytes) or from an RGBA palette.

    Returns
    -------
    ndarray of uint8
    """
    rgb = np.frombuffer(bytes(im.getpalette("RGB") or ()), dtype=np.uint8).reshape(-1, 3)
    transparency = im.encoderinfo.get("transparency", im.info.get("transparency"))
    if transparency is None:
        if im.palette is None or im.palette.mode != "RGBA":
            return rgb
        alpha = np.frombuffer(bytes(im.getpalette("RGBA") or ()), dtype=np.uint8)[3::4]
    else:
        alpha = np.full(len(rgb), 255, dtype=np.uint8)
        if isinstance(transparency, int):
            if transparency < len(rgb):
                alpha[transparency] = 0
        else:
            given = np.frombuffer(bytes(transparency), dtype=np.uint8)[: len(rgb)]
            alpha[: len(given)] = given
    return np.concatenate([rgb, alpha[:, None]], axis=1)


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    options = {name: im.encoderinfo[name] for name in OPTION_NAMES if name in im.encoderinfo}
    if im.mode == "P" and not options:
        data = codec.encode_indexed(palette=_palette_of(im), indices=np.asarray(im))
    else:
        data = codec.encode_image(im, EncoderOptions.from_kwargs(**options)).data
    fp.write(data)


def register() -> None:
    """Register the ``KVQ`` format with Pillow.

    Safe to call any number of times: every registration replaces its own
    earlier entry.
    """
    Image.register_open(FORMAT, KvqImageFile, _accept)
    Image.register_decoder("kvq", KvqDecoder)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)
