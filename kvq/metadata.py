"""Colour profile, EXIF and resolution: the metadata that rides beside the pixels.

The codec core stores pixels; this module turns what a Pillow image carries
(``info["icc_profile"]``, ``info["exif"]``, ``info["dpi"]``) into the three
ancillary chunks of spec section 14 (``iccp``, ``exif``, ``reso``) and back.
It knows the chunks' layouts and nothing of the container around them.

kvq stores pixels the way they are shown: the encoder applies the EXIF
Orientation (:mod:`kvq.pixels`), so the EXIF it keeps has its Orientation set
to 1, or viewers would turn the image a second time.
"""

from __future__ import annotations

import math
import struct
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import OptionError
from .pixels import orientation

if TYPE_CHECKING:  # Pillow is imported lazily: the numpy path does not need it.
    from PIL import Image

ICCP = b"iccp"
EXIF = b"exif"
RESO = b"reso"

#: JPEG's APP1 identifier, which Pillow puts before the TIFF structure in ``info["exif"]``.
EXIF_PREFIX = b"Exif\x00\x00"
_TIFF_HEADERS = (b"II*\x00", b"MM\x00*")
_ORIENTATION = 0x0112
#: Smallest ICC profile: its 128-byte header and a 4-byte tag count.
_ICC_MIN = 132
_ICC_SIGNATURE = b"acsp"  # bytes 36-39 of every ICC profile
#: ``reso`` stores thousandths of a dot per inch in a u32.
_RESO_SCALE = 1000
_RESO_MAX = 2**32 - 1

_UNSTORABLE = {
    "icc_profile": "icc_profile must be an ICC profile: bytes, at least 132 of them, 'acsp' at byte 36",
    "exif": "exif must be a TIFF structure: II*\\0 or MM\\0* (after an optional Exif\\0\\0), then the offset of IFD0",
    "dpi": f"dpi must be two numbers above 0 and at most {_RESO_MAX / _RESO_SCALE:,}",
}


@dataclass(frozen=True)
class Metadata:
    """What a ``.kvq`` file keeps beside its pixels; every field is optional.

    Parameters
    ----------
    icc_profile : bytes, optional
        An ICC colour profile, byte for byte (at least 132 bytes, ``acsp`` at
        byte 36).
    exif : bytes, optional
        EXIF as a TIFF structure (``II*\\0`` or ``MM\\0*``, then the offset of
        IFD0, at least 8 and leaving room for its entry count). Pillow's
        form, with JPEG's ``Exif\\0\\0`` identifier in front, is accepted and
        stored without it.
    dpi : (float, float), optional
        Horizontal and vertical resolution in dots per inch, each above 0 and
        at most 4,294,967.295; stored to a thousandth.

    Raises
    ------
    OptionError
        A field that the spec's layout cannot hold.

    Examples
    --------
    >>> from kvq import Metadata
    >>> chunks = Metadata(dpi=(300, 72.5)).chunks()
    >>> chunks  # 300,000 and 72,500 thousandths of a dot per inch
    [(b'reso', b'\\x00\\x04\\x93\\xe0\\x00\\x01\\x1b4')]
    >>> Metadata.from_chunks(chunks).dpi
    (300.0, 72.5)
    """

    icc_profile: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.icc_profile is not None:
            if not isinstance(self.icc_profile, (bytes, bytearray)) or not _valid_icc(self.icc_profile):
                raise OptionError(_UNSTORABLE["icc_profile"])
            object.__setattr__(self, "icc_profile", bytes(self.icc_profile))
        if self.exif is not None:
            exif = _tiff_of(self.exif)
            if exif is None:
                raise OptionError(_UNSTORABLE["exif"])
            object.__setattr__(self, "exif", exif)
        if self.dpi is not None:
            reso = _reso_of(self.dpi)
            if reso is None:
                raise OptionError(f"{_UNSTORABLE['dpi']}, not {self.dpi!r}")
            object.__setattr__(self, "dpi", (reso[0] / _RESO_SCALE, reso[1] / _RESO_SCALE))

    @property
    def empty(self) -> bool:
        """bool: no field is set."""
        return self.icc_profile is None and self.exif is None and self.dpi is None

    def chunks(self) -> list[tuple[bytes, bytes]]:
        """The ancillary chunks of spec section 14, in the order kvq writes them.

        Returns
        -------
        list of (bytes, bytes)
            (type, data) pairs: ``iccp``, ``exif``, ``reso``, each when set.
        """
        out = []
        if self.icc_profile is not None:
            out.append((ICCP, self.icc_profile))
        if self.exif is not None:
            out.append((EXIF, self.exif))
        if self.dpi is not None:
            reso = _reso_of(self.dpi)
            assert reso is not None  # checked in __post_init__
            out.append((RESO, struct.pack(">II", *reso)))
        return out

    @classmethod
    def from_chunks(cls, chunks: list[tuple[bytes, bytes]]) -> Metadata:
        """Read metadata from a file's ancillary chunks, as spec section 14 says.

        The first chunk of each type counts; a chunk whose data breaks its
        layout is ignored, never an error: metadata cannot make a file invalid.

        Parameters
        ----------
        chunks : list of (bytes, bytes)
            (type, data) pairs in file order; types other than the three are skipped.

        Returns
        -------
        Metadata
        """
        found: dict[bytes, bytes] = {}
        for kind, data in chunks:
            found.setdefault(kind, bytes(data))
        icc = found.get(ICCP)
        exif = found.get(EXIF)
        reso = found.get(RESO)
        dpi = None
        if reso is not None and len(reso) == 8:
            x, y = struct.unpack(">II", reso)
            if x and y:
                dpi = (x / _RESO_SCALE, y / _RESO_SCALE)
        return cls(
            icc_profile=icc if icc is not None and _valid_icc(icc) else None,
            exif=exif if exif is not None and _valid_tiff(exif) else None,
            dpi=dpi,
        )

    @classmethod
    def from_image(cls, image: Image.Image, overrides: Mapping[str, Any] | None = None) -> Metadata:
        """The metadata of a Pillow image, as kvq's encoder stores it.

        Reads ``info["icc_profile"]``, ``info["exif"]`` and ``info["dpi"]``
        (``overrides``, Pillow's save keywords of the same names, win).
        A value in ``info`` that the chunks cannot hold (a truncated profile,
        EXIF that is not a TIFF structure, a zero resolution) is left out; one
        in ``overrides`` raises OptionError. When the image's
        EXIF Orientation is applied to its pixels (any value but 1 that
        Pillow can read), the stored EXIF says 1.

        Parameters
        ----------
        image : PIL.Image.Image
        overrides : mapping, optional
            ``icc_profile``, ``exif`` (bytes or ``PIL.Image.Exif``) and
            ``dpi``, as given to ``Image.save``.

        Returns
        -------
        Metadata

        Raises
        ------
        OptionError
            An override that cannot be stored.
        """
        info = dict(image.info)
        if "dpi" in info and not _dpi_is_real(image):
            del info["dpi"]
        names = ("icc_profile", "exif", "dpi")
        given = {key: overrides[key] for key in names if overrides and overrides.get(key) is not None}
        info.update(given)
        icc = info.get("icc_profile")
        icc = bytes(icc) if isinstance(icc, (bytes, bytearray)) and _valid_icc(icc) else None
        exif = _exif_bytes(info.get("exif"))
        reso = _reso_of(info.get("dpi"))
        for key, value in (("icc_profile", icc), ("exif", exif), ("dpi", reso)):
            if key in given and value is None:
                # What the caller asked for explicitly is stored or refused, never dropped.
                raise OptionError(_UNSTORABLE[key])
        if exif is not None and orientation(image) != 1:
            # kvq.pixels turns the pixels by this same orientation.
            exif = reset_orientation(exif)
        dpi = None if reso is None else (reso[0] / _RESO_SCALE, reso[1] / _RESO_SCALE)
        return cls(icc_profile=icc, exif=exif, dpi=dpi)

    def pillow_info(self) -> dict[str, Any]:
        """The fields as Pillow names them in ``Image.info`` and takes as ``Image.save`` keywords.

        Returns
        -------
        dict
            ``icc_profile`` (bytes), ``exif`` (bytes with the ``Exif\\0\\0``
            identifier, as Pillow's JPEG and PNG plugins give it) and ``dpi``
            ((float, float)), each only when set.
        """
        out: dict[str, Any] = {}
        if self.icc_profile is not None:
            out["icc_profile"] = self.icc_profile
        if self.exif is not None:
            out["exif"] = EXIF_PREFIX + self.exif
        if self.dpi is not None:
            out["dpi"] = self.dpi
        return out


def _dpi_is_real(image: Image.Image) -> bool:
    """False for the 72 dpi Pillow's JPEG reader makes up when a file with EXIF states no resolution."""
    info = image.info
    # format is None once an image is copied (kvq.open_image copies), so a
    # JPEG is also known by its EXIF, its lack of a JFIF density, and 72 dpi.
    if (
        image.format not in (None, "JPEG", "MPO")
        or "exif" not in info
        or info.get("jfif_unit") in (1, 2)
        or tuple(info["dpi"]) != (72, 72)
    ):
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return 0x011A in image.getexif()  # XResolution
    except Exception:  # noqa: BLE001 - unreadable EXIF states nothing
        return False


def _valid_icc(data: bytes | bytearray) -> bool:
    return len(data) >= _ICC_MIN and bytes(data[36:40]) == _ICC_SIGNATURE


def _valid_tiff(data: bytes) -> bool:
    """Spec section 14: a TIFF header, and an IFD0 offset that leaves room for IFD0's entry count."""
    if len(data) < 8 or data[:4] not in _TIFF_HEADERS:
        return False
    (ifd,) = struct.unpack_from("<I" if data[:2] == b"II" else ">I", data, 4)
    return 8 <= ifd <= len(data) - 2


def _tiff_of(data: Any) -> bytes | None:
    """The TIFF structure of EXIF given with or without ``Exif\\0\\0``; None if it is not one."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return None
    data = bytes(data)
    if data.startswith(EXIF_PREFIX):
        data = data[len(EXIF_PREFIX) :]
    return data if _valid_tiff(data) else None


def _exif_bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, (bytes, bytearray, memoryview)):
        from PIL import Image

        if not isinstance(value, Image.Exif):
            return None
        try:
            value = value.tobytes()
        except Exception:  # noqa: BLE001 - Pillow raises many kinds on odd tags; unstorable EXIF is left out
            return None
    return _tiff_of(value)


def _reso_of(dpi: Any) -> tuple[int, int] | None:
    """``dpi`` as two u32 thousandths of a dot per inch; None when it cannot be stored."""
    try:
        x, y = (float(v) for v in dpi)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not all(math.isfinite(v) for v in (x, y)):
        return None
    out = (round(x * _RESO_SCALE), round(y * _RESO_SCALE))
    return out if all(1 <= v <= _RESO_MAX for v in out) else None


def reset_orientation(tiff: bytes) -> bytes | None:
    """EXIF with its Orientation tag set to 1, every other byte unchanged.

    The value is patched in place, so maker notes and other data addressed by
    absolute offsets stay valid. EXIF whose Orientation entry is not a single
    SHORT or LONG is rewritten by Pillow instead.

    Parameters
    ----------
    tiff : bytes
        A TIFF structure (``II*\\0`` or ``MM\\0*`` first).

    Returns
    -------
    bytes or None
        None when neither way works: such EXIF is better dropped than stored
        with an orientation that would turn the image twice.
    """
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is not None and len(tiff) >= 8:
        (ifd,) = struct.unpack_from(order + "I", tiff, 4)
        if ifd + 2 <= len(tiff):
            (count,) = struct.unpack_from(order + "H", tiff, ifd)
            for i in range(count):
                at = ifd + 2 + 12 * i
                if at + 12 > len(tiff):
                    break
                tag, kind, n = struct.unpack_from(order + "HHI", tiff, at)
                if tag != _ORIENTATION:
                    continue
                if n == 1 and kind in (3, 4):  # SHORT or LONG, left-justified in the value field
                    value = struct.pack(order + ("H" if kind == 3 else "I"), 1)
                    return tiff[: at + 8] + value + tiff[at + 8 + len(value) :]
                break
            else:
                if ifd + 2 + 12 * count <= len(tiff):
                    return tiff  # no Orientation in IFD0: nothing to reset
    return _reset_with_pillow(tiff)


def _reset_with_pillow(tiff: bytes) -> bytes | None:
    from PIL import Image

    try:
        exif = Image.Exif()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exif.load(tiff)
        exif[_ORIENTATION] = 1
        return _tiff_of(exif.tobytes())
    except Exception:  # noqa: BLE001 - Pillow raises many kinds on corrupt EXIF
        return None
