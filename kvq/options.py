"""Encoder options, declared, documented and validated in one place.

The same names reach the encoder unchanged from :func:`kvq.encode`, the
``kvq encode`` and ``kvq bench`` commands and ``Image.save(..., format="KVQ")``,
in the way scikit-learn names an estimator's parameters once. Each field of
:class:`EncoderOptions` carries its own constraint and help text as data
(``dataclasses.field`` metadata, like scikit-learn's ``_parameter_constraints``);
validation and every command-line parser are generated from it, so an option
added here appears everywhere without further code.
"""

from __future__ import annotations

import argparse
import numbers
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from . import coding as codings
from .container import MAX_K
from .errors import OptionError

__all__ = [
    "MAX_K", "EncoderOptions", "Interval", "Level", "OptionSpec", "StrOptions", "add_arguments", "command_flags", "from_arguments",
    "k_list", "option", "spec_of",
]  # fmt: skip

COLOR_SPACES = ("rgb", "oklab")
#: Words ``dither`` accepts for its two ends (and ``False``/``True``).
DITHER_WORDS = {"none": 0.0, "off": 0.0, "floyd-steinberg": 1.0, "floyd_steinberg": 1.0, "fs": 1.0, "on": 1.0}
SPEED_RANGE = (1, 10)
#: Palette methods: kvq's own engine, and the textbook's scikit-learn KMeans (kvq.quantize.sklearn_kmeans).
METHODS = ("kvq", "kmeans")


@dataclass(frozen=True)
class Interval:
    """A number between two bounds, as scikit-learn's ``Interval``.

    Parameters
    ----------
    kind : {int, float}
        Integers only, or any real number.
    low, high : int or float
        Bounds; ``high`` is always included.
    low_closed : bool, default=True
        Whether ``low`` itself is allowed.
    noun : str, optional
        What a value is, for messages ("a number of dB").
    range_noun : str, optional
        What an in-range value is, for messages ("a PSNR in dB").
    """

    kind: type
    low: float
    high: float
    low_closed: bool = True
    noun: str = ""
    range_noun: str = ""

    def validate(self, name: str, value: object) -> Any:
        """Return ``value`` as ``kind``, or raise :class:`kvq.OptionError`."""
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise OptionError.about(name, f"must be {self.noun or 'an integer'}, not {value!r}")
            number: float = int(value)
        else:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise OptionError.about(name, f"must be {self.noun or 'a number'}, not {value!r}")
            number = float(value)
        above_low = number >= self.low if self.low_closed else number > self.low
        if not (above_low and number <= self.high):
            shown = f"{number:,}" if self.kind is int else repr(value)
            what = f"{self.range_noun} " if self.range_noun else ""
            raise OptionError.about(name, f"must be {what}between {self.low:,} and {self.high:,}, not {shown}")
        return number

    def metavar(self) -> str:
        """str: the range as a command-line placeholder, such as ``1-10``."""
        return f"{self.low}-{self.high}"


@dataclass(frozen=True)
class StrOptions:
    """One of a set of words, as scikit-learn's ``StrOptions``.

    Parameters
    ----------
    choices : tuple of str, or a callable that returns one
        The canonical values, lower case; a callable is asked at each use
        (the index codings: whatever :mod:`kvq.coding`'s registry holds).
    aliases : mapping of str to str, optional
        Other spellings accepted for a choice.
    booleans : (str, str), optional
        The choices that ``False`` and ``True`` stand for, when a boolean is
        accepted.
    """

    choices: tuple[str, ...] | Callable[[], tuple[str, ...]]
    aliases: Mapping[str, str] = field(default_factory=dict)
    booleans: tuple[str, str] | None = None

    def allowed(self) -> tuple[str, ...]:
        """tuple of str: the canonical values now."""
        return self.choices() if callable(self.choices) else self.choices

    def normalise(self, value: object) -> str:
        """The canonical spelling of ``value`` (unchecked): lower case, aliases resolved."""
        if isinstance(value, bool) and self.booleans is not None:
            return self.booleans[value]
        text = str(value).lower()
        return self.aliases.get(text, text)

    def validate(self, name: str, value: object) -> str:
        """Return the canonical choice for ``value``, or raise :class:`kvq.OptionError`."""
        text = self.normalise(value)
        allowed = self.allowed()
        if text not in allowed:
            raise OptionError.about(name, f"must be one of {', '.join(allowed)}, not {value!r}")
        return text


@dataclass(frozen=True)
class Level(Interval):
    """A real number between two bounds that may also be given as a word or a boolean.

    ``False`` stands for ``low`` and ``True`` for ``high``; ``words`` maps
    other spellings (lower case) to numbers.
    """

    words: Mapping[str, float] = field(default_factory=dict)

    def parse(self, value: object) -> object:
        """``value`` as a number when it is a word or numeric text; other values unchanged."""
        if isinstance(value, bool):
            return self.high if value else self.low
        if isinstance(value, str):
            text = value.strip().lower()
            if text in self.words:
                return self.words[text]
            try:
                return float(text)
            except ValueError:
                return value
        return value

    def validate(self, name: str, value: object) -> Any:
        """Return ``value`` as a float, or raise :class:`kvq.OptionError`."""
        number = self.parse(value)
        if isinstance(number, str):
            words = ", ".join(self.words)
            raise OptionError.about(name, f"must be a number from {self.low:g} to {self.high:g} or one of {words}, not {value!r}")
        if isinstance(number, numbers.Real) and number != number:
            raise OptionError.about(name, f"must be a number from {self.low:g} to {self.high:g}, not {value!r}")
        return super().validate(name, number)

    def metavar(self) -> str:
        """str: the range as a command-line placeholder, such as ``0-1``."""
        return f"{self.low:g}-{self.high:g}"


Constraint = Interval | StrOptions


@dataclass(frozen=True)
class OptionSpec:
    """What the command lines and the validation need to know about one option.

    Parameters
    ----------
    help : str
        One line for ``--help``.
    constraint : Interval or StrOptions or None
        Allowed values; None accepts anything.
    flags : tuple of str, optional
        Command-line flags; default ``--name-with-dashes``.
    metavar : str, optional
        Placeholder in ``--help``; default from the constraint.
    optional : bool, default=False
        None is a valid value (the default of an option that is off).
    bench : bool, default=True
        Whether ``kvq bench`` offers it. False for options the suite sets
        itself (``k``, swept) or that would stop a sweep half way (``quality``).
    """

    help: str
    constraint: Constraint | None = None
    flags: tuple[str, ...] = ()
    metavar: str | None = None
    optional: bool = False
    bench: bool = True

    def validate(self, name: str, value: object) -> Any:
        """Return the canonical value, or raise :class:`kvq.OptionError`."""
        if value is None and self.optional:
            return None
        return value if self.constraint is None else self.constraint.validate(name, value)


_SPEC = "kvq"


def option(default: Any, help: str, constraint: Constraint | None = None, **details: Any) -> Any:
    """Declare a field of :class:`EncoderOptions` with its metadata.

    Parameters
    ----------
    default
        The default value.
    help : str
        One line for ``--help``.
    constraint : Interval or StrOptions, optional
    **details
        Other fields of :class:`OptionSpec` (``flags``, ``metavar``,
        ``optional``, ``bench``).

    Returns
    -------
    dataclasses.Field
    """
    return field(default=default, metadata={_SPEC: OptionSpec(help, constraint, **details)})


def spec_of(f: Field[Any]) -> OptionSpec:
    """The :class:`OptionSpec` of a field; a plain field gets one from its default.

    Parameters
    ----------
    f : dataclasses.Field

    Returns
    -------
    OptionSpec
    """
    spec = f.metadata.get(_SPEC)
    if spec is not None:
        return spec
    # A field declared without option(): offer it anyway, typed by its default.
    return OptionSpec(help=f"see kvq.EncoderOptions (default {f.default!r})", optional=f.default is None)


def flags_of(f: Field[Any]) -> tuple[str, ...]:
    """tuple of str: the command-line flags of a field."""
    return spec_of(f).flags or ("--" + f.name.replace("_", "-"),)


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
        options always give byte-identical output. kvq's engine
        (``method="kvq"``) makes no random choice, so for it the seed changes
        nothing; for ``method="kmeans"`` it is ``KMeans``'s ``random_state``,
        which picks the k-means++ starting centres, so another seed gives
        another palette.
    quality : float or None, default=None
        Target PSNR in dB over all channels. When set, the encoder writes the
        smallest file, at most ``k`` colours, whose pixels as a decoder
        rebuilds them (dithering included) reach it against the input, the
        PSNR ``kvq encode`` prints (:func:`kvq.codec.decoded_psnr`); at fixed
        width that is the fewest colours. It raises
        :class:`kvq.QualityError` when even ``k`` colours do not.
    color_space : {"rgb", "oklab"}, default="rgb"
        Space in which colours are clustered. Palettes are always stored as
        sRGB bytes.
    dither : float, default=0.0
        Strength of error diffusion when mapping pixels to the palette, 0
        (none: every pixel takes its nearest entry) to 1 (full), as
        libimagequant's dithering level; see :mod:`kvq.quantize.dither`.
        ``False``/``"none"`` mean 0 and ``True``/``"floyd-steinberg"``/``"fs"``
        mean 1.
    speed : int, default=4
        1 (slowest, best palette) to 10 (fastest), like pngquant's ``--speed``.
    coding : {"entropy", "fixed", "striped"}, default="entropy"
        How the indices are stored: the name of an index coding of
        :mod:`kvq.coding`. ``"entropy"``: context-mixing arithmetic coding
        (format 1.1); on the Kodak photos the file is 7.76 to 2.34 times
        smaller than the textbook N * ceil(log2 K) + 24 * K from K = 2 to 256
        (geometric means, ``benchmarks/kodak/report.md``); the encoder stores
        fixed width instead where that is smaller.
        ``"fixed"``: ceil(log2 K) bits per index (format 1.0), the textbook
        N * ceil(log2 K), readable by every 1.x reader.
        ``"striped"``: coding 1 in independent stripes of about 65,536
        pixels (format 1.2), a few per cent larger, decoded on every core and
        readable a band of rows at a time (``kvq.decode(..., rows=)``).
    method : {"kvq", "kmeans"}, default="kvq"
        How the palette is chosen. ``"kvq"``: kvq's own engine
        (:mod:`kvq.quantize`). ``"kmeans"``: the textbook method,
        scikit-learn's ``KMeans`` (k-means++ seeding, ``n_init=1``,
        ``max_iter=300``, ``tol=1e-4``, ``random_state=seed``) on the image's
        distinct colours weighted by their pixel counts
        (``sample_weight``), in ``color_space``, on one thread; its centres
        are rounded to bytes and every pixel takes its nearest entry
        (:mod:`kvq.quantize.sklearn_kmeans`). ``speed`` does not apply to it;
        ``quality``, ``dither`` and ``coding`` do. It is slower and, on
        photos, no better than the engine: ``kvq bench`` shows both.

    Notes
    -----
    Each field is declared with :func:`option`, which records its constraint
    and help text; :meth:`__post_init__` validates every field from that
    record, and :func:`add_arguments` builds command-line options from it.
    """

    k: int = option(
        256, f"largest palette size, 1..{MAX_K} (default 256)", Interval(int, 1, MAX_K),
        flags=("-k", "--colors"), metavar="K", bench=False,
    )  # fmt: skip
    seed: int = option(
        0, "seed of random choices: --method kmeans's starting centres; kvq's engine makes none, so for it the seed "
        "changes nothing (default 0)",
        Interval(int, 0, 2**32 - 1), metavar="SEED",
    )  # fmt: skip
    quality: float | None = option(
        None, "write the smallest file whose decoded PSNR reaches this many dB; an error (exit 99) if K colours cannot",
        Interval(float, 0, 100, low_closed=False, noun="a number of dB", range_noun="a PSNR in dB"),
        metavar="DB", optional=True, bench=False,
    )  # fmt: skip
    color_space: str = option(
        "rgb", "space to cluster in (palette is always stored as sRGB)", StrOptions(COLOR_SPACES)
    )
    dither: float = option(
        0.0, "error diffusion strength, 0 (none, the default) to 1 (full); none and floyd-steinberg mean 0 and 1",
        Level(float, 0.0, 1.0, words=DITHER_WORDS),
    )  # fmt: skip
    speed: int = option(4, "1 slowest/best .. 10 fastest", Interval(int, *SPEED_RANGE))
    coding: str = option(
        codings.DEFAULT,
        "index coding: " + ", ".join(f"{name} ({codings.by_name(name).summary})" for name in codings.names()),
        StrOptions(codings.names),
    )  # fmt: skip
    method: str = option(
        "kvq", "palette method: kvq (its own engine, the default) or kmeans (the textbook: scikit-learn's KMeans, "
        "k-means++ from --seed; slower)", StrOptions(METHODS),
    )  # fmt: skip

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, spec_of(f).validate(f.name, getattr(self, f.name)))

    @classmethod
    def from_kwargs(cls, **kwargs: object) -> EncoderOptions:
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

    def as_dict(self) -> dict[str, Any]:
        """dict: every option by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def add_arguments(
    parser: argparse.ArgumentParser | Any, cls: type[EncoderOptions] = EncoderOptions, *, bench: bool = False
) -> None:
    """Add one command-line option per field of ``cls``.

    Absent options are left out of the parsed namespace, so the dataclass's
    own defaults apply. argparse only checks that a value parses (a number
    where a number is due: otherwise a usage error, exit 2); whether it is
    allowed, a range or a choice alike, is checked by ``cls`` itself, with
    kvq's messages (exit 1), so ``--speed 11`` and ``--dither atkinson`` fail
    the same way.

    Parameters
    ----------
    parser : argparse.ArgumentParser or argument group
    cls : type, default=EncoderOptions
        The options class (a subclass with more fields works the same).
    bench : bool, default=False
        Only the fields offered by ``kvq bench``.
    """
    for f in fields(cls):
        spec = spec_of(f)
        if bench and not spec.bench:
            continue
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": spec.help}
        constraint = spec.constraint
        if isinstance(constraint, Level):
            kwargs["type"] = constraint.parse
            kwargs["metavar"] = constraint.metavar()
        elif isinstance(constraint, StrOptions):
            kwargs["type"] = constraint.normalise
            kwargs["metavar"] = "{" + ",".join(constraint.allowed()) + "}"
        elif isinstance(constraint, Interval):
            kwargs["type"] = constraint.kind
            kwargs["metavar"] = constraint.metavar()
        elif f.default is not MISSING and f.default is not None:
            kwargs["type"] = type(f.default)
        if spec.metavar:
            kwargs["metavar"] = spec.metavar
        parser.add_argument(*flags_of(f), **kwargs)


def positive_int(text: str) -> int:
    """argparse's type for a count or limit of 1 or more (``--threads``, ``--max-pixels``).

    Parameters
    ----------
    text : str

    Returns
    -------
    int

    Raises
    ------
    argparse.ArgumentTypeError
        Not a whole number of 1 or more: a usage error (status 2) naming the flag.
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, not {text!r}")
    return value


def k_list(text: str) -> list[int]:
    """Parse a command line's list of palette sizes: ``2,16,64`` or ``2 16 64``.

    An argparse ``type``: only the syntax is checked here (a usage error);
    each command checks the range with its own message.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of int
    """
    try:
        ks = [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"k must be whole numbers, like 2,16,64,256, not {text!r}") from None
    if not ks:
        raise argparse.ArgumentTypeError("no k given")
    return ks


def from_arguments(args: argparse.Namespace, cls: type[EncoderOptions] = EncoderOptions, **fixed: Any) -> EncoderOptions:
    """Build options from a namespace parsed with :func:`add_arguments`.

    Parameters
    ----------
    args : argparse.Namespace
    cls : type, default=EncoderOptions
    **fixed
        Options set by the command itself.

    Returns
    -------
    EncoderOptions

    Raises
    ------
    OptionError
    """
    given = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    try:
        return cls.from_kwargs(**{**given, **fixed})
    except OptionError as exc:
        # The values came from the flags add_arguments made of the same declaration: name those (-k/--colors, not k).
        raise exc.spelled(command_flags(cls)) from None


def command_flags(cls: type[EncoderOptions] = EncoderOptions) -> dict[str, str]:
    """The command-line spelling of each option, as :func:`add_arguments` declares it.

    Parameters
    ----------
    cls : type, default=EncoderOptions

    Returns
    -------
    dict of str to str
        ``"/"``-joined flags by field name: ``{"k": "-k/--colors", "color_space": "--color-space", ...}``.
    """
    return {f.name: "/".join(flags_of(f)) for f in fields(cls)}
