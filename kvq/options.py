"""Encoder options, defined and validated in one place.

The same names reach the encoder unchanged from :func:`kvq.encode`, the
``kvq encode`` command and ``Image.save(..., format="KVQ")``, in the way
scikit-learn names an estimator's parameters once.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, fields

from .errors import OptionError

#: Largest palette the format can hold (16-bit indices).
MAX_K = 65536

COLOR_SPACES = ("rgb", "oklab")
DITHER_MODES = ("none", "floyd-steinberg")
SPEED_RANGE = (1, 10)


@dataclass(frozen=True)
class EncoderOptions:
    """Everything that decides the bytes of an encoded ``.kvq`` file.

    Parameters
    ----------
    k : int, default=256
        Largest palette size, 1 to 65,536. The stored palette holds only the
        colours actually used, so it may be smaller.
    seed : int, default=0
        Seed of every random choice the quantizer makes; the same image and
        options always give byte-identical output.
    quality : float or None, default=None
        Target PSNR in dB over all channels. When set, the encoder uses the
        fewest colours (at most ``k``) whose PSNR reaches it, and raises
        :class:`kvq.QualityError` when even ``k`` colours do not.
    color_space : {"rgb", "oklab"}, default="rgb"
        Space in which colours are clustered. Palettes are always stored as
        sRGB bytes.
    dither : {"none", "floyd-steinberg"} or bool, default="none"
        Error diffusion when mapping pixels to the palette. ``True`` means
        ``"floyd-steinberg"`` (raster order: serpentine order admits no
        vectorised schedule, see :mod:`kvq.dither`).
    speed : int, default=4
        1 (slowest, best palette) to 10 (fastest), like pngquant's ``--speed``.
    """

    k: int = 256
    seed: int = 0
    quality: float | None = None
    color_space: str = "rgb"
    dither: str = "none"
    speed: int = 4

    def __post_init__(self) -> None:
        _check_int("k", self.k, 1, MAX_K)
        _check_int("seed", self.seed, 0, 2**32 - 1)
        _check_int("speed", self.speed, *SPEED_RANGE)
        if self.quality is not None:
            if isinstance(self.quality, bool) or not isinstance(self.quality, numbers.Real):
                raise OptionError(f"quality must be a number of dB, not {self.quality!r}")
            if not 0 < float(self.quality) <= 100:
                raise OptionError(f"quality must be a PSNR in dB between 0 and 100, not {self.quality!r}")
            object.__setattr__(self, "quality", float(self.quality))
        space = str(self.color_space).lower()
        if space not in COLOR_SPACES:
            raise OptionError(f"color_space must be one of {', '.join(COLOR_SPACES)}, not {self.color_space!r}")
        object.__setattr__(self, "color_space", space)
        dither = self.dither
        if isinstance(dither, bool):
            dither = "floyd-steinberg" if dither else "none"
        dither = str(dither).lower()
        if dither in ("fs", "floyd_steinberg"):
            dither = "floyd-steinberg"
        if dither not in DITHER_MODES:
            raise OptionError(f"dither must be one of {', '.join(DITHER_MODES)}, not {self.dither!r}")
        object.__setattr__(self, "dither", dither)

    @classmethod
    def from_kwargs(cls, **kwargs: object) -> "EncoderOptions":
        """Build options from keyword arguments, rejecting unknown names.

        Parameters
        ----------
        **kwargs
            Any of the fields of :class:`EncoderOptions`.

        Returns
        -------
        EncoderOptions
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise OptionError(f"unknown encoder option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**kwargs)  # type: ignore[arg-type]


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise OptionError(f"{name} must be an integer, not {value!r}")
    if not low <= int(value) <= high:
        raise OptionError(f"{name} must be between {low:,} and {high:,}, not {int(value):,}")
