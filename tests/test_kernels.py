"""Compiled kernels run the code of their sources, however numba's on-disk cache was filled.

numba checks only a kernel's own file for changes; kvq keys the cache on every kvq module a kernel is made of
(``kvq._jit``). Each test copies the package, compiled kernels included, as a developer's checkout holds it, changes
the source there and runs a probe in a fresh interpreter, comparing the compiled kernels with their own Python source
(``py_func``), which always runs the code as written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PROBE = r"""
import json
import numpy as np
from kvq import _jit
compiled = []
_jit.on_compile(compiled.append)
from kvq.coding import _entropy_kernel as kernel, entropy
from kvq.quantize.lloyd import _assign
from kvq.quantize.nearest import Nearest

rng = np.random.default_rng(0)
indices = (np.add.outer(np.arange(24), np.arange(32)) // 5 % 7).astype(np.uint8)
stream = entropy.encode(indices, 7)
out = np.empty(31 * indices.size + 16, dtype=np.uint8)
flat = indices.reshape(-1).copy()
status, used, _, _ = kernel.run.py_func(
    flat, 32, 24, 7, entropy.table_bits(flat.size), out, False, 1 << 62, kernel.SQUASH_TABLE, kernel.STRETCH_TABLE,
    kernel.RATE_TABLE,
)
# A kernel of lloyd.py that calls nearest.py's search for the nearest centre.
centres, points = rng.random((40, 4)), rng.random((400, 4))
table = Nearest(centres).table

def labels(function):
    found = np.empty(400, dtype=np.int64)
    function(points, *table, np.zeros(400, dtype=np.int64), found, np.empty(400), np.empty(400))
    return found.tolist()

print(json.dumps({
    "stream": stream.hex(), "source_stream": out[:used].tobytes().hex(),
    "labels": labels(_assign), "source_labels": labels(_assign.py_func), "compiled": compiled,
}))
"""


def probe(root: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.slow
def test_a_changed_constant_or_callee_is_compiled_in_at_once(tmp_path):
    # The checkout's compiled kernels come along (copy2 keeps the files' times), as in a developer's tree.
    shutil.copytree(REPO / "kvq", tmp_path / "kvq")
    before = probe(tmp_path)
    assert before["stream"] == before["source_stream"] and before["labels"] == before["source_labels"]
    # A coder constant (in the kernel's own file), and the distance a kernel of another module calls.
    edit(tmp_path / "kvq" / "coding" / "_entropy_kernel.py", "LEARNING_RATE = 6", "LEARNING_RATE = 2")
    edit(tmp_path / "kvq" / "quantize" / "nearest.py", "return a * a + b * b", "return 4.0 * a * a + b * b")
    after = probe(tmp_path)
    assert after["stream"] != before["stream"] and after["stream"] == after["source_stream"]
    assert after["labels"] != before["labels"] and after["labels"] == after["source_labels"]
    assert after["compiled"], "the first compile of a process is announced"
    # Compiled once: the next process loads it from the cache, and says nothing.
    assert probe(tmp_path) == {**after, "compiled": []}


def test_a_kernels_sources_are_its_module_and_the_kvq_modules_it_imports():
    from kvq import _jit

    def sources(module: str) -> set[str]:
        return {path.relative_to(REPO / "kvq").as_posix() for path in _jit.sources_of(module)}

    assert sources("kvq.quantize.swap") == {"_jit.py", *(f"quantize/{name}.py" for name in ("swap", "initialise", "lloyd", "nearest"))}
    # Coding 1's kernel is self-contained: its constants are its own.
    assert sources("kvq.coding._entropy_kernel") == {"_jit.py", "coding/_entropy_kernel.py"}


WARM = r"""
import json, sys
import numba
import numpy as np
import kvq
from kvq.options import EncoderOptions
from kvq.quantize import start

def signatures():
    found = {}
    for name, module in list(sys.modules.items()):
        if name.startswith("kvq"):
            for attr, value in vars(module).items():
                if isinstance(value, numba.core.registry.CPUDispatcher):
                    found[f"{name}.{attr}"] = sorted(map(str, value.signatures))
    return found

options = json.loads(sys.argv[1])
start(EncoderOptions(**options))
before = signatures()
from sklearn.datasets import load_sample_image
photo = np.ascontiguousarray(load_sample_image("china.jpg")[100:196, 200:296])
images = [photo, photo[..., :1].copy(), np.dstack([photo, np.where(photo[..., 1] > 90, 255, 0).astype(np.uint8)])]
for pixels in images:
    for k in (2, 16, 124, 125, 126, 255, 256, 257, 300):
        kvq.quantize.quantize(pixels, EncoderOptions(**{**options, "k": min(k, options.get("k", 256))}))
after = signatures()
new = {name: sorted(set(sigs) - set(before.get(name, []))) for name, sigs in after.items()}
print(json.dumps({name: sigs for name, sigs in new.items() if sigs}))
"""


@pytest.mark.parametrize("options", [{}, {"dither": 1.0, "color_space": "oklab", "k": 300}])
def test_after_start_no_encode_of_a_photo_compiles_a_kernel(options):
    # kvq.quantize.start warms the kernels before any clock: the first file of a batch, at any K up to the options'
    # (above 124 colours too, where a small warm-up image would be encoded losslessly and cluster nothing), in grey,
    # RGB or RGBA, must find every specialisation it runs already compiled (or loaded), never compile one itself.
    result = subprocess.run([sys.executable, "-c", WARM, json.dumps(options)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {}


def _double(x):
    return 2 * x


@pytest.mark.parametrize("change", ["no FunctionCache", "no _index_key", "another _index_key", "no dispatcher._cache"])
def test_a_numba_whose_caching_internals_differ_gets_uncached_kernels_and_one_warning(monkeypatch, change):
    # kvq keys numba's cache through private internals; on a numba where they differ the kernels must not be
    # cached under numba's own key (which misses the kvq modules a kernel is made of): not cached at all, said once.
    import warnings

    import numba.core.caching as caching

    from kvq import _jit

    class Renamed:  # a FunctionCache from another numba
        def __init__(self, py_func):
            self._py_func = py_func

        def _index_key(self, sig, codegen, extra):
            return ()

        def load_overload(self, sig, target_context):
            return None

    if change == "no FunctionCache":
        monkeypatch.delattr(caching, "FunctionCache")
    elif change == "no _index_key":
        monkeypatch.delattr(caching.Cache, "_index_key")
    elif change == "another _index_key":
        monkeypatch.setattr(caching, "FunctionCache", Renamed)
    else:
        from numba import njit

        class Dispatcher:  # a dispatcher that keeps its cache elsewhere
            def __init__(self, function):
                self.function = function

            def __call__(self, *args):
                return self.function(*args)

        monkeypatch.setattr(_jit, "njit", lambda **options: lambda f: Dispatcher(njit(**options)(f)))
    monkeypatch.setattr(_jit, "_CACHE", _jit._cache_class())
    monkeypatch.setattr(_jit, "_warned", False)
    assert (_jit._CACHE is None) == (change != "no dispatcher._cache")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = _jit.kernel(_double), _jit.kernel(nogil=True)(_double)
    assert len(caught) == 1 and "kvq's kernels are compiled in every process and not cached" in str(caught[0].message)
    assert first(21) == second(21) == 42
    for dispatcher in (first, second):
        assert type(getattr(dispatcher, "_cache", caching.NullCache())).__name__ == "NullCache"


def test_kvqs_own_cache_is_used_on_this_numba():
    from kvq import _jit
    from kvq.quantize.lloyd import _assign

    assert _jit._CACHE is not None and isinstance(_assign._cache, _jit._CACHE)
