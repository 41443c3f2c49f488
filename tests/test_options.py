"""Encoder options are declared once and reach every door: kvq encode, kvq bench, Pillow's save.

These tests walk the fields of ``EncoderOptions`` instead of naming them, so an
option added later is checked without a new test.
"""

from __future__ import annotations

import argparse
import io
from dataclasses import dataclass, fields

import numpy as np
import pytest
from PIL import Image

import kvq
from kvq import codec, options
from kvq.cli import build_parser
from kvq.options import EncoderOptions, Interval, StrOptions, flags_of, option, spec_of

FIELDS = [f.name for f in fields(EncoderOptions)]


def other_value(f) -> object:
    """A valid value of a field that is not its default, from its constraint."""
    constraint = spec_of(f).constraint
    if isinstance(constraint, StrOptions):
        return next(choice for choice in constraint.allowed() if choice != f.default)
    assert isinstance(constraint, Interval), f"{f.name} has no constraint"
    value = constraint.kind(constraint.high)
    return value if value != f.default else constraint.kind(constraint.high - 1)


def field_named(name: str):
    return next(f for f in fields(EncoderOptions) if f.name == name)


@pytest.mark.parametrize("name", FIELDS)
def test_every_option_is_declared_with_help_and_constraint(name):
    spec = spec_of(field_named(name))
    assert spec.help and spec.constraint is not None
    # The default itself passes the constraint, unchanged.
    default = field_named(name).default
    assert spec.validate(name, default) == default


@pytest.mark.parametrize("name", FIELDS)
def test_every_option_reaches_kvq_encode(name):
    f = field_named(name)
    value = other_value(f)
    args = build_parser().parse_args(["encode", "in.png", flags_of(f)[0], str(value)])
    built = options.from_arguments(args)
    assert getattr(built, name) == value
    # Every other option keeps the dataclass's own default.
    assert {n: getattr(built, n) for n in FIELDS if n != name} == {n: getattr(EncoderOptions(), n) for n in FIELDS if n != name}


@pytest.mark.parametrize("name", FIELDS)
def test_every_option_reaches_kvq_bench_unless_the_suite_sets_it(name):
    pytest.importorskip("matplotlib")
    from kvq.bench.cli import build_parser as bench_parser

    f = field_named(name)
    parser = bench_parser()
    dests = {action.dest for action in parser._actions}
    if not spec_of(f).bench:
        # k is swept by the suite's own -k list; quality would stop a sweep half way.
        assert name in ("k", "quality")
        return
    assert name in dests
    value = other_value(f)
    assert getattr(options.from_arguments(parser.parse_args([flags_of(f)[0], str(value)])), name) == value


@pytest.mark.parametrize("name", FIELDS)
def test_every_option_reaches_pillow_save(monkeypatch, name):
    seen = []
    real = codec.encode_image

    def spy(image, opts=None, **kwargs):
        seen.append(opts)
        return real(image, opts, **kwargs)

    monkeypatch.setattr(codec, "encode_image", spy)
    value = other_value(field_named(name))
    image = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    image.save(io.BytesIO(), format="KVQ", **{name: value})
    assert getattr(seen[0], name) == value


def test_validation_messages_name_the_option_and_range():
    with pytest.raises(kvq.OptionError, match="k must be between 1 and 65,536, not 0"):
        EncoderOptions(k=0)
    with pytest.raises(kvq.OptionError, match=r"seed must be an integer, not 1\.5"):
        EncoderOptions(seed=1.5)
    with pytest.raises(kvq.OptionError, match="quality must be a PSNR in dB between 0 and 100, not 0"):
        EncoderOptions(quality=0)
    with pytest.raises(kvq.OptionError, match="quality must be a number of dB, not 'high'"):
        EncoderOptions(quality="high")
    with pytest.raises(kvq.OptionError, match=r"dither must be a number from 0 to 1 or one of none, .*, not 'atkinson'"):
        EncoderOptions(dither="atkinson")
    with pytest.raises(kvq.OptionError, match=r"dither must be between 0\.0 and 1\.0, not 1\.5"):
        EncoderOptions(dither=1.5)
    assert EncoderOptions(dither=True).dither == 1.0 and EncoderOptions(dither="none").dither == 0.0
    assert EncoderOptions(dither="0.5").dither == 0.5
    assert EncoderOptions(dither="FS", color_space="OKLab").as_dict()["color_space"] == "oklab"
    assert EncoderOptions(quality=40).quality == 40.0 and isinstance(EncoderOptions(quality=40).quality, float)


def test_an_option_added_later_appears_without_new_code():
    # What adding a field to EncoderOptions gives: validation, a command-line
    # option with its choices, and a name Pillow's save and kvq.encode accept.
    @dataclass(frozen=True)
    class Extended(EncoderOptions):
        coding: str = option("entropy", "index coding", StrOptions(("fixed", "entropy")))

    assert Extended().coding == "entropy" and Extended(coding="FIXED").coding == "fixed"
    with pytest.raises(kvq.OptionError, match=r"coding must be one of fixed, entropy"):
        Extended(coding="huffman")
    parser = argparse.ArgumentParser()
    options.add_arguments(parser, Extended)
    assert options.from_arguments(parser.parse_args(["--coding", "fixed", "-k", "9"]), Extended) == Extended(k=9, coding="fixed")
    assert options.from_arguments(parser.parse_args([]), Extended) == Extended()
    with pytest.raises(kvq.OptionError, match="coding must be one of fixed, entropy"):
        options.from_arguments(parser.parse_args(["--coding", "huffman"]), Extended)
    bench = argparse.ArgumentParser()
    options.add_arguments(bench, Extended, bench=True)
    assert {a.dest for a in bench._actions} >= {"coding", "seed"} and "k" not in {a.dest for a in bench._actions}
    assert Extended.from_kwargs(coding="fixed").coding == "fixed"


def test_a_plain_field_is_offered_too():
    # A field declared without option() still gets a command-line option.
    @dataclass(frozen=True)
    class Plain(EncoderOptions):
        effort: int = 3

    parser = argparse.ArgumentParser()
    options.add_arguments(parser, Plain)
    assert options.from_arguments(parser.parse_args(["--effort", "5"]), Plain).effort == 5


def test_max_k_is_the_format_limit():
    assert options.MAX_K == kvq.container.MAX_K == 2 ** (8 * 2)
    assert spec_of(field_named("k")).constraint.high == options.MAX_K


def test_an_option_error_carries_the_keyword_and_takes_a_commands_flag() -> None:
    with pytest.raises(kvq.OptionError) as caught:
        EncoderOptions(color_space="xyz")
    error = caught.value
    assert (error.option, str(error)) == ("color_space", "color_space must be one of rgb, oklab, not 'xyz'")
    assert kvq.errors.message(error) == str(error)  # the library's wording until a command spells it
    # The command's flags come from the one declaration, as add_arguments makes them.
    flags = options.command_flags()
    assert flags["k"] == "-k/--colors" and flags["color_space"] == "--color-space"
    assert set(flags) == {f.name for f in fields(EncoderOptions)}
    error.spelled(flags)
    assert kvq.errors.message(error) == "--color-space must be one of rgb, oklab, not 'xyz'"
    parser = argparse.ArgumentParser()
    options.add_arguments(parser)
    with pytest.raises(kvq.OptionError) as caught:
        options.from_arguments(parser.parse_args(["-k", "0"]))
    assert kvq.errors.message(caught.value) == "-k/--colors must be between 1 and 65,536, not 0"
    assert str(caught.value) == "k must be between 1 and 65,536, not 0"


def test_a_missed_quality_names_the_keywords_that_reach_it() -> None:
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    with pytest.raises(kvq.QualityError) as caught:
        kvq.encode(image, k=4, quality=60)
    said = str(caught.value)
    assert said.startswith("4 colours reach only ") and "with quality=, or more colours with k=" in said, said
    reachable = float(said.split("ask for at most ")[1].split(" dB")[0])
    assert reachable <= caught.value.achieved
    kvq.encode(image, k=4, quality=reachable)  # the target it offers is reached
