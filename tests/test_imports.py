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


def _probe(code: str) -> dict:
    """Run ``code`` in a fresh interpreter, then report what numba decided and what got imported."""
    probe = (
        f"{code}\n"
        "import json, sys\n"
        "seen = {name: name in sys.modules for name in ('scipy.linalg', 'cffi')}\n"
        "import numba.np.arraymath, scipy.linalg  # still importable afterwards\n"
        "print(json.dumps(dict(seen, blas=numba.np.arraymath._HAVE_BLAS)))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_the_command_starts_numba_without_scipy_linalg_and_cffi(tmp_path, photo_png) -> None:
    """numba's first kernel imports scipy.linalg (a BLAS check) and cffi: about 0.3 s kvq's kernels never use.

    The command (its own process) skips them; the library leaves numba as it would be without kvq.
    """
    import kvq

    out = tmp_path / "photo.kvq"
    command = _probe(f"from kvq.cli import main\nassert main(['encode', {str(photo_png)!r}, '-o', {str(out)!r}, '-q']) == 0")
    # Pillow before 11 imports cffi itself when it is installed: then it is there already, at no cost to kvq.
    pillow_brings_cffi = _probe("import PIL.Image")["cffi"]
    assert command == {"scipy.linalg": False, "cffi": pillow_brings_cffi, "blas": False}
    # The same bytes as the library's encode, where numba starts as usual.
    assert out.read_bytes() == kvq.encode(kvq.open_image(photo_png))
    library = _probe(f"import kvq\nkvq.encode(kvq.open_image({str(photo_png)!r}))")
    assert library["scipy.linalg"] and library["blas"]


def kvq_imports() -> dict[str, set[str]]:
    """Module -> the kvq modules it imports, at module level or inside functions (not under ``if TYPE_CHECKING``)."""
    import ast

    root = REPO / "kvq"
    names = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for module, path in names.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges = graph.setdefault(module, set())
        pending: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
        while pending:
            node = pending.pop()
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                pending.extend(node.orelse)
                continue
            pending.extend(ast.iter_child_nodes(node))
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names if alias.name in names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] + (f".{base}" if base else "")
                for alias in node.names:
                    edges.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in names else base)
        edges &= set(names)
        edges.discard(module)
    return graph


def test_no_import_circles() -> None:
    """No kvq module imports, even lazily inside a function, a module that imports it back, directly or not."""
    graph = kvq_imports()
    assert graph["kvq.report"] >= {"kvq.codec", "kvq.accounting"} and "kvq.codec" not in graph["kvq.accounting"]
    circles = []
    for start in graph:
        path, stack = [start], [iter(sorted(graph[start]))]
        while stack:
            following = next(stack[-1], None)
            if following is None:
                stack.pop()
                path.pop()
            elif following == start:
                circles.append(" -> ".join([*path, start]))
            elif following not in path and following > start:  # each circle once, from its smallest module
                path.append(following)
                stack.append(iter(sorted(graph[following])))
    assert not circles, "\n".join(circles)


def test_submodules_are_attributes_of_a_plain_import_kvq():
    # import kvq is lazy (PEP 562), yet kvq.coding, kvq.container, ... worked before it and must still: a
    # benchmark that did `import kvq; kvq.coding.by_name(...)` failed with AttributeError in a fresh process.
    import subprocess
    import sys

    from conftest import kvq_env

    code = (
        "import kvq\nprint(kvq.coding.by_name('fixed').code, kvq.container.Header.__name__)\n"
        "try:\n    kvq.nope\nexcept AttributeError:\n    print('refused')"
    )
    done = subprocess.run([sys.executable, "-c", code], env=kvq_env(), capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["0", "Header", "refused"], done.stderr
