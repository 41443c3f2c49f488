"""The dependency floors of pyproject.toml are real: `.ci/run` runs the suite with every one pinned (`.ci/floors.py`),
and each floor covers what kvq uses."""

from __future__ import annotations

import importlib.util
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+, as the floors run
from packaging.version import Version  # noqa: E402 - pytest's own dependency

REPO = Path(__file__).resolve().parent.parent

#: What sets a floor above the lowest release with Python 3.11 wheels, and where kvq needs it.
NEEDS = {
    "pillow": ("10.2", "PIL.ImageFile._Tile (kvq.pillow_plugin)"),
    "scikit-learn": ("1.3", "sklearn.cluster.kmeans_plusplus(sample_weight=...) (kvq.quantize)"),
    # The fuzz harnesses' instrumentation: 2.3.0 on Python 3.11 returns the inner value of `a > (b if c else d)`.
    "atheris": ("3.0", "correct instrumentation of comparisons on Python 3.11 (tests/test_reliability.py fuzzing)"),
}


def _floors_module():
    spec = importlib.util.spec_from_file_location("floors", REPO / ".ci" / "floors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_dependency_is_pinned_at_its_floor():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    names = {re.split(r"[\s;\[<>=~]", r, maxsplit=1)[0].lower() for r in requirements}
    names.discard("kvq")
    pinned = _floors_module().floors()
    assert set(pinned) == names
    for requirement in project["dependencies"]:
        name, floor = requirement.split(">=")
        assert pinned[name.lower()] == floor


def test_floors_cover_what_kvq_uses():
    pinned = _floors_module().floors()
    for name, (needed, why) in NEEDS.items():
        assert Version(pinned[name]) >= Version(needed), f"{name} {pinned[name]} lacks {why}"


def test_a_dependency_without_a_floor_is_refused(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["numpy>=1.24", "pillow"]\n')
    with pytest.raises(ValueError, match="'pillow' has no floor"):
        _floors_module().floors(pyproject)
    pyproject.write_text(
        '[project]\nname = "x"\ndependencies = ["scipy>=1.9.2"]\n[project.optional-dependencies]\nb = ["scipy>=1.10"]\n'
    )
    with pytest.raises(ValueError, match="two floors"):
        _floors_module().floors(pyproject)


def test_installed_versions_meet_the_floors():
    for name, floor in _floors_module().floors().items():
        try:
            installed = version(name)
        except PackageNotFoundError:  # an extra that is not installed here, or atheris off Linux
            continue
        assert Version(installed) >= Version(floor), f"{name} {installed} is below the floor {floor}"
