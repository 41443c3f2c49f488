"""kvq's compiled kernels: numba's on-disk cache, keyed on all the code a kernel is made of.

numba caches a compiled function beside its source file and checks only that
file for changes. A kernel that calls a kernel of another module, or reads a
constant of another module, would keep running the code it was compiled with
after that module changed (numba documents the limitation): whoever tunes a
coder or the quantizer would measure the old one. Every kvq kernel is declared
with :func:`kernel`, which adds to numba's cache key a digest of the kernel's
own module and of every kvq module it imports, recursively: a change anywhere
in that code compiles the kernel again, and a fresh clone and a developer's
checkout run the same code.

The first compile after an install takes a while; :func:`on_compile` lets
the ``kvq`` command say so, once, when it happens. The library itself prints
nothing.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from numba import njit

__all__ = ["kernel", "on_compile", "sources_of"]

#: Called once, with the kernel's name, before the first kernel of this process is compiled rather than loaded.
_announce: Callable[[str], None] | None = None
_announced = False


def on_compile(callback: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """Have ``callback(name)`` called before the first kernel of this process is compiled (not loaded from the cache).

    Parameters
    ----------
    callback : callable or None
        Given the kernel's qualified name; None removes it.

    Returns
    -------
    callable or None
        The callback it replaces.
    """
    global _announce, _announced
    previous, _announce, _announced = _announce, callback, False
    return previous


def sources_of(module: str) -> tuple[Path, ...]:
    """The source files of ``module`` and of every kvq module it imports, recursively.

    Read from the import statements of the sources (those under ``if
    TYPE_CHECKING`` too), without importing them.

    Parameters
    ----------
    module : str
        Such as ``"kvq.quantize.lloyd"``.

    Returns
    -------
    tuple of pathlib.Path
        Sorted.
    """
    seen: dict[str, Path] = {}
    _collect(module, seen)
    return tuple(sorted(seen.values()))


def _collect(module: str, seen: dict[str, Path]) -> None:
    if module in seen or not (module == "kvq" or module.startswith("kvq.")):
        return
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return
    path = Path(spec.origin)
    seen[module] = path
    package = module if spec.submodule_search_locations is not None else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                _collect(alias.name, seen)
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level else node.module or ""
            _collect(base, seen)
            for alias in node.names:
                # "from . import fixed" names a module, "from .nearest import DIMS" a name in one.
                _collect_if_module(f"{base}.{alias.name}", seen)


def _collect_if_module(name: str, seen: dict[str, Path]) -> None:
    parent = name.rpartition(".")[0]
    parent_spec = importlib.util.find_spec(parent) if parent.startswith("kvq") else None
    if parent_spec is not None and parent_spec.submodule_search_locations is not None:
        _collect(name, seen)


@functools.cache
def _digest(module: str) -> str:
    hasher = hashlib.sha256()
    for path in sources_of(module):
        hasher.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return hasher.hexdigest()


def _cache_class() -> type | None:
    """numba's per-function cache with kvq's key; None where numba's internals differ (then kernels are not cached)."""
    try:
        from numba.core.caching import FunctionCache
    except ImportError:  # pragma: no cover - every numba kvq supports has it
        return None
    if not callable(getattr(FunctionCache, "_index_key", None)):  # pragma: no cover
        return None

    class SourceKeyedCache(FunctionCache):
        """numba's cache, its index key extended with the digest of the kernel's kvq sources."""

        def _index_key(self, sig: Any, codegen: Any) -> Any:
            return (*super()._index_key(sig, codegen), _digest(self._py_func.__module__))

        def load_overload(self, sig: Any, target_context: Any) -> Any:
            global _announced
            found = super().load_overload(sig, target_context)
            if found is None and _announce is not None and not _announced:
                _announced = True
                _announce(self._py_func.__qualname__)
            return found

    return SourceKeyedCache


_CACHE = _cache_class()


def kernel(function: Callable[..., Any] | None = None, **options: Any) -> Any:
    """``numba.njit`` with kvq's cache: ``@kernel`` or ``@kernel(nogil=True)``.

    Parameters
    ----------
    function : callable, optional
    **options
        numba's ``njit`` options (``cache`` is kvq's to set).

    Returns
    -------
    numba dispatcher, or a decorator
    """

    def compiled(py_func: Callable[..., Any]) -> Any:
        dispatcher = njit(**options)(py_func)
        if _CACHE is not None:
            dispatcher._cache = _CACHE(py_func)
        return dispatcher

    return compiled if function is None else compiled(function)
