"""`.ci/run` and `.ci/system-packages`: a system package CI needs and cannot install fails the run, loudly.

The scripts run with ``PATH`` holding only stub commands, so nothing is installed and nothing else runs.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")


def stubs(folder: Path, **commands: str) -> Path:
    """A folder of executables, each a bash script with the given body."""
    folder.mkdir(exist_ok=True)
    for name, body in commands.items():
        path = folder / name.replace("_", "-")
        path.write_text(f"#!{BASH}\n{body}\n")
        path.chmod(0o755)
    return folder


def run(script: Path, path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BASH, str(script)], env={"PATH": str(path), **env}, capture_output=True, text=True, timeout=60, cwd=script.parent.parent
    )


@pytest.mark.parametrize(
    ("apt", "user", "ci", "status", "says"),
    [
        ("exit 0", "0", "true", 0, "installing chromium-driver"),  # apt-get installs it (the stub makes chromedriver)
        ("exit 0", "0", "", 10, "chromium-driver missing, not installed here"),  # not CI: nothing installed, skip
        ("exit 100", "0", "true", 1, "cannot install chromium-driver, which the tests need on CI: apt-get"),
        ("exit 0", "1000", "true", 1, "cannot install chromium-driver, which the tests need on CI: not root"),
        ("true", "0", "true", 1, "still missing after apt-get installed chromium-driver"),  # apt-get "succeeds", nothing came
    ],
)
def test_system_packages_fail_loudly_on_ci_when_a_package_cannot_be_installed(tmp_path, apt, user, ci, status, says):
    bin_ = tmp_path / "bin"
    install = f'[ "$1" = install ] && printf "#!{BASH}\\n" > "{bin_}/chromedriver" && chmod +x "{bin_}/chromedriver"; ' + apt
    stubs(bin_, node="exit 0", chromium="exit 0", id=f"echo {user}", apt_get=install if apt == "exit 0" else apt)
    result = run(REPO / ".ci" / "system-packages", bin_, CI=ci)
    assert result.returncode == status, result.stderr
    assert says in result.stderr
    assert result.stderr.count("\n") <= 2  # one line, or "installing" and none after


def test_ci_run_stops_before_any_work_when_the_system_packages_fail(tmp_path):
    # Before, .ci/run read any failure of .ci/system-packages as "not a CI machine" and ran the suite with the
    # browser and Node tests skipped.
    (tmp_path / ".ci").mkdir()
    shutil.copy(REPO / ".ci" / "run", tmp_path / ".ci" / "run")
    stubs(tmp_path / ".ci", system_packages="echo 'cannot install chromium' >&2; exit 1")
    bin_ = stubs(tmp_path / "bin", mktemp=f"touch {tmp_path}/work-started; exit 1", dirname=f"echo {tmp_path}/.ci")
    result = run(tmp_path / ".ci" / "run", bin_, CI="true")
    assert result.returncode == 1
    assert "the system packages the tests need are not installed" in result.stderr.splitlines()[-1]
    assert not (tmp_path / "work-started").exists()
