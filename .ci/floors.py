"""Print pip constraints that pin every dependency of pyproject.toml to its floor.

    python .ci/floors.py > floors.txt          # numpy==1.24, pillow==10.2, ...
    pip install ".[test]" -c floors.txt --only-binary "$(python .ci/floors.py --names)"

`.ci/run` installs kvq with these constraints in a second fresh environment and runs the suite there, so that every
floor pyproject.toml declares is one the suite has passed with. Every dependency, core and extra, must declare a
floor (``>=``, ``~=`` or ``==``); one without is an error, since "any version" cannot be tested.
Needs Python 3.11 (tomllib); standard library only, as it runs before anything is installed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)")
_FLOOR = re.compile(r"(>=|~=|==)\s*([0-9][A-Za-z0-9.+!-]*)")


def floors(pyproject: Path = PYPROJECT) -> dict[str, str]:
    """Map each dependency of ``pyproject`` (core and every extra) to its lowest allowed version.

    Parameters
    ----------
    pyproject : Path

    Returns
    -------
    dict of str to str
        Normalised names (lower case, ``-`` for ``_`` and ``.``) to versions, sorted by name.

    Raises
    ------
    ValueError
        A dependency without a floor, or two different floors for one name.
    """
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    own = _normalise(project["name"])
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    out: dict[str, str] = {}
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        if match is None:
            raise ValueError(f"cannot read the requirement {requirement!r}")
        name = _normalise(match.group(1))
        if name == own:  # "kvq[bench]": the project's own extras, listed on their own
            continue
        found = _FLOOR.findall(match.group(3))
        if not found:
            raise ValueError(f"{requirement!r} has no floor (>=, ~= or ==): give the lowest version that passes")
        version = found[0][1]
        if out.get(name, version) != version:
            raise ValueError(f"{name} has two floors, {out[name]} and {version}")
        out[name] = version
    return dict(sorted(out.items()))


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(argv: list[str]) -> int:
    pinned = floors()
    if "--names" in argv:
        print(",".join(pinned))
    else:
        print("\n".join(f"{name}=={version}" for name, version in pinned.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
