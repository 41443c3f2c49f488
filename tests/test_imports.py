"""What each entry point imports: ``import kvq`` and the command's start-up stay light.

Importing scikit-learn costs about 0.8 s, scipy.spatial about 0.45 s and numba
about 0.5 s: more than encoding a photo. Each test runs a fresh interpreter
and lists the heavy packages it ended up with.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

HEAVY = ("sklearn", "scipy", "numba", "dask", "distributed", "tqdm", "matplotlib", "skimage")


def loaded_after(code: str) -> set[str]:
    """Run ``code`` in a fresh interpreter; return the heavy top-level packages it imported."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1])) & set(HEAVY)


@pytest.mark.parametrize(
    "code",
    [
        "import kvq",
        "import kvq.cli; kvq.cli.build_parser()",
        "import kvq.batch, kvq.manifest, kvq.progress, kvq.bands",
    ],
)
def test_entry_points_import_nothing_heavy(code: str) -> None:
    assert loaded_after(code) == set()


def test_decoding_imports_nothing_heavy(tmp_path, photo) -> None:
    """A fixed-width file decodes on numpy alone (an entropy-coded one needs the numba kernel)."""
    import kvq

    path = tmp_path / "photo.kvq"
    path.write_bytes(kvq.encode(photo, k=64, coding="fixed"))
    code = f"import kvq, PIL.Image; kvq.load({str(path)!r}); PIL.Image.open({str(path)!r}).load()"
    assert loaded_after(code) == set()


def test_encoding_a_photo_never_imports_scikit_learn(tmp_path, photo) -> None:
    """scikit-learn's import alone (about 0.8 s) cost more than encoding a Kodak photo."""
    import numpy as np

    source = tmp_path / "photo.npy"
    np.save(source, photo)
    code = f"import numpy as np, kvq; kvq.encode(np.load({str(source)!r}), k=64)"
    assert "sklearn" not in loaded_after(code)
