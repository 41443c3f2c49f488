"""Pillow plugin: ``Image.open("x.kvq")`` and ``im.save("x.kvq")``.

A thin adapter, modelled on Pillow's ``QoiImagePlugin``: the container's
reader reads the header and palette, the codec decodes and encodes, and
:mod:`kvq.export` decides the Pillow mode of a file (:func:`kvq.export.layout`);
nothing here knows the byte layout.

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

Metadata (spec section 14) is in ``info["icc_profile"]``, ``info["exif"]``
(with JPEG's ``Exif\0\0`` identifier first, as Pillow's JPEG and PNG plugins
give it) and ``info["dpi"]``. Saving keeps an image's own; the ``icc_profile``,
``exif`` and ``dpi`` keywords of ``Image.save`` replace them and ``strip=True``
drops them, as with Pillow's PNG and JPEG.

Saving takes the encoder options of :class:`kvq.EncoderOptions` (``k``,
``seed``, ``quality``, ``color_space``, ``dither``, ``speed``) as keyword
arguments of ``Image.save``; any other keyword but ``transparency``,
``optimize`` and the metadata ones raises :class:`kvq.OptionError`, as
:func:`kvq.encode` does, rather than being silently ignored. A ``P`` image
saved without any option is stored with its own palette and indices, not
quantized again (``transparency`` makes the stored palette RGBA); naming an
option asks for quantization as for any other mode. Either way the EXIF
orientation is applied first.

Two keywords mean something else in Pillow's other formats:

- ``quality`` is kvq's, the same as at every other door: a target PSNR in dB
  (the Kodak photos average 30.5 dB at K = 16 and 41.1 dB at K = 256,
  ``benchmarks/kodak/report.md``), not the 0 to 100 scale of Pillow's JPEG and
  WebP. ``save(..., quality=90)`` asks for 90 dB, which no palette of a photo
  reaches: the :class:`kvq.QualityError` then says what ``quality`` means and
  what the image reached, rather than guessing a conversion between two scales
  that have none.
- ``optimize=True`` asks Pillow's PNG, JPEG and GIF writers for a smaller file
  of the same pixels. kvq always writes the smallest file its coding gives
  (unused entries dropped; the default coding stores fixed width where that
  is smaller), so ``optimize`` is accepted, True or False, and changes no byte.

``Image.verify()`` checks the whole file (every CRC, the chunk order, the
padding and every index) as loading does, without decoding the pixels.
"""

from __future__ import annotations

from dataclasses import fields
from typing import IO, Any

import numpy as np
from PIL import Image, ImageFile, ImagePalette

from . import codec, container
from .bands import BandReader
from .errors import NotKvqError, QualityError, TruncatedError
from .export import layout, raw_bands
from .metadata import Metadata
from .options import EncoderOptions
from .pixels import oriented

FORMAT = "KVQ"
MIME = "image/x-kvq"
EXTENSION = ".kvq"

#: Save keywords passed to the encoder.
OPTION_NAMES = tuple(f.name for f in fields(EncoderOptions))
#: Save keywords about metadata rather than pixels: they never ask for quantization.
METADATA_NAMES = ("icc_profile", "exif", "dpi", "strip")
#: Pillow's keyword for a smaller file of the same pixels, which kvq always writes: accepted, and it changes nothing.
PILLOW_HABITS = ("optimize",)
#: Other save keywords the plugin understands: ``transparency``, a ``P`` image's alpha (an index or per-entry bytes),
#: the metadata ones and Pillow's habits.
OTHER_NAMES = ("transparency", *METADATA_NAMES, *PILLOW_HABITS)


def _accept(prefix: bytes) -> bool:
    return prefix.startswith(container.SIGNATURE)


class KvqImageFile(ImageFile.ImageFile):
    """A ``.kvq`` file opened by Pillow; pixels are decoded on ``load()``."""

    format = FORMAT
    format_description = "K-means palette image"

    def _open(self) -> None:
        assert self.fp is not None
        try:
            # No pixel limit here: Image.open applies MAX_IMAGE_PIXELS to
            # self.size right after _open, with Pillow's warning and error.
            reader = container.Reader(self.fp, max_pixels=None, lazy=True)
        except NotKvqError as exc:
            raise SyntaxError(str(exc)) from exc
        except TruncatedError as exc:
            # OSError, as Pillow raises for a truncated header: ImageFile.Parser
            # reads it as "not enough data yet" and keeps feeding.
            raise OSError(str(exc)) from exc

        header = reader.header
        self._size = (header.width, header.height)
        self._mode, palette_mode, entries = layout(header, reader.palette)
        if entries is not None:
            self.palette = ImagePalette.raw(palette_mode, entries)
            # As Image.putpalette does: raw() leaves the palette's own mode at
            # RGB, which cannot hold an RGBA raw palette.
            self.palette.mode = palette_mode
            if palette_mode == "RGBA":
                self.info["transparency"] = entries[3::4]
        self.info.update(Metadata.from_chunks(reader.ancillary).pillow_info())
        # Offset 0: the decoder reads the whole file with kvq's reader, which
        # checks every chunk again rather than trusting what was read here.
        self.tile = [ImageFile._Tile("kvq", (0, 0, *self._size), 0, (header,))]

    def load_seek(self, pos: int) -> None:
        """Seek the file before ``load()`` hands it to the decoder.

        Defined so that ``ImageFile.Parser`` treats the format as not
        incremental (it checks for this method): kvq's decoder needs the
        whole file, and through a pushed decoder the parser's ``close()``
        hands over the last pieces and never the empty end-of-stream call, so
        a file fed in one piece (every file under 1 KiB in Pillow's own
        1,024-byte loop) could never be told complete. Without a decoder the
        parser collects every byte and, at ``close()``, opens and loads the
        whole, which refuses bytes after INDX as ``Image.open`` does.

        Parameters
        ----------
        pos : int
            Byte offset from the start of the file.
        """
        assert self.fp is not None
        self.fp.seek(pos)

    def verify(self) -> None:
        """Check the whole file as ``load()`` does, without decoding its pixels.

        As with every Pillow image, call it directly after ``Image.open``; the
        image cannot be loaded afterwards.

        Raises
        ------
        kvq.FormatError
            The error ``load()`` would raise (a CRC mismatch, a truncated
            chunk, non-zero padding, an index >= K, bytes after INDX).
        """
        if self.fp is None:
            raise RuntimeError("verify must be called directly after open")
        self.fp.seek(0)
        codec.validate(self.fp, max_pixels=None)
        super().verify()


class KvqDecoder(ImageFile.PyDecoder):
    """Decode a ``.kvq`` file into the image a band of rows at a time.

    ``ImageFile.load`` honours ``_pulls_fd`` and lets the decoder read the
    file itself: :class:`kvq.bands.BandReader` checks it and hands it over a
    band of rows at a time, so loading a fixed-width file needs memory for
    the image and one band (an entropy-coded one also holds its indices; see
    :mod:`kvq.bands`). ``ImageFile.Parser`` never pushes pieces to it (see
    :meth:`KvqImageFile.load_seek`). Errors are raised, never returned as an
    error code, so that ``ImageFile.LOAD_TRUNCATED_IMAGES`` cannot turn a
    corrupt file into a partly black image.
    """

    _pulls_fd = True

    def init(self, args: tuple[Any, ...]) -> None:
        (self._header,) = args

    def decode(self, buffer: Any) -> tuple[int, int]:
        """Decode the whole file from ``self.fd``.

        Parameters
        ----------
        buffer : bytes-like
            Ignored: the decoder pulls from ``self.fd``.

        Returns
        -------
        (int, int)
            ``(-1, 0)``: done.
        """
        if self.fd is None:
            raise OSError("the .kvq decoder reads the whole file and cannot be fed pieces")
        # The tile's offset is 0: the reader checks the file from its
        # signature on rather than trusting what _open read.
        self.fd.seek(0)
        self._load(BandReader(self.fd, max_pixels=None))
        return -1, 0

    def _load(self, reader: BandReader) -> None:
        if reader.header != self._header:
            raise OSError("the .kvq file changed between open and load")
        state = self.state
        top, height = state.yoff, state.ysize
        try:
            # The palette of a P image was set at open.
            for row, raw in raw_bands(reader, self.mode):
                # set_as_raw fills the state's extents: point them at this band.
                state.yoff, state.ysize = top + row, len(raw)
                # A flat view, not tobytes(): saves a copy of the band (Pillow
                # takes any buffer, though its stubs say bytes).
                self.set_as_raw(raw.data.cast("B"), self.mode)  # type: ignore[arg-type]
        finally:
            state.yoff, state.ysize = top, height


def _palette_of(im: Image.Image, transparency: Any) -> np.ndarray:
    """The (K, 3) or (K, 4) uint8 palette of a ``P`` image.

    Parameters
    ----------
    im : PIL.Image.Image
        Mode ``P``. Alpha comes from ``transparency`` or from an RGBA palette.
    transparency : int, bytes or None
        The save keyword or ``im.info`` entry: one transparent index, or one
        alpha byte per entry.

    Returns
    -------
    ndarray of uint8
    """
    rgb = np.frombuffer(bytes(im.getpalette("RGB") or ()), dtype=np.uint8).reshape(-1, 3)
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
    # Every keyword but the plugin's own goes to EncoderOptions, which refuses
    # unknown names exactly as kvq.encode does (a misspelled "colors=16" must
    # not silently give K = 256).
    options = {name: value for name, value in im.encoderinfo.items() if name not in OTHER_NAMES}
    metadata = Metadata() if im.encoderinfo.get("strip") else Metadata.from_image(im, im.encoderinfo)
    # The coding says how to store, not how to quantize: a P image saved with
    # coding= alone is still kept as it is.
    store = {name: value for name, value in options.items() if name != "coding"}
    if im.mode == "P" and not store:
        # The same OptionError for a bad coding, and the option's own default for none.
        coding = EncoderOptions.from_kwargs(**options).coding
        transparency = im.encoderinfo.get("transparency", im.info.get("transparency"))
        # Turned as kvq.encode turns any image (transpose keeps the palette).
        upright = oriented(im)
        palette = _palette_of(upright, transparency)
        data = codec.encode_indexed(palette=palette, indices=np.asarray(upright), metadata=metadata, coding=coding)
    else:
        chosen = EncoderOptions.from_kwargs(**options)
        try:
            data = codec.encode_image(im, chosen, metadata=metadata).data
        except QualityError as exc:
            # Through Pillow, quality=90 is a JPEG habit: say what kvq's quality is.
            raise QualityError(
                f"{exc}; kvq's quality is a target PSNR in dB, not the 0 to 100 scale of Pillow's JPEG and WebP; "
                f"ask for a PSNR the image can reach, or leave quality out and choose the palette size with k= "
                f"(now {chosen.k})",
                exc.achieved,
            ) from None
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
