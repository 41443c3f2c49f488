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

Where numba's internals differ from those the key is added through, kvq's
kernels are not cached on disk (compiled once per process) rather than
cached under a key that misses their sources; a warning says so, once.

The first compile after an install takes a while; :func:`on_compile` lets
the ``kvq`` command say so, once, when it happens. The library itself prints
nothing.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import inspect
import warnings
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


#: What kvq's cache class overrides or relies on in numba's FunctionCache, with their parameters.
_NUMBA_INTERNALS = {
    "__init__": ("self", "py_func"),
    "_index_key": ("self", "sig", "codegen"),
    "load_overload": ("self", "sig", "target_context"),
}
_warned = False


def _cache_class() -> type | None:
    """numba's per-function cache with kvq's key; None where numba's internals differ from those it was written for.

    The key is added by overriding private methods of numba's
    ``FunctionCache``. On a numba whose internals differ, an override could
    be silently skipped, and a cache keyed on the kernel's own file alone
    would load stale kernels: there kvq's kernels are not cached on disk at
    all (compiled once per process), and :func:`kernel` warns once.
    """
    try:
        from numba.core.caching import FunctionCache
    except ImportError:
        return None
    for name, parameters in _NUMBA_INTERNALS.items():
        method = getattr(FunctionCache, name, None)
        try:
            if not callable(method) or tuple(inspect.signature(method).parameters) != parameters:
                return None
        except (TypeError, ValueError):
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


def _keyed_cache(dispatcher: Any, py_func: Callable[..., Any]) -> Any:
    """kvq's cache for ``dispatcher``, or None (no disk cache, warned once) where numba's internals differ."""
    global _warned
    cache = None
    # numba keeps a dispatcher's cache in ``_cache``, a NullCache when caching is off; kvq replaces that one.
    if _CACHE is not None and type(getattr(dispatcher, "_cache", None)).__name__ == "NullCache":
        try:
            cache = _CACHE(py_func)
        except Exception:  # noqa: BLE001 - numba refuses a cache here (no writable place for it): none
            cache = None
        if cache is not None and getattr(cache, "_py_func", None) is not py_func:
            cache = None
    if cache is None and not _warned:
        _warned = True
        import numba

        warnings.warn(
            f"kvq cannot key numba {numba.__version__}'s on-disk cache on its kernels' sources (numba's internals differ"
            " from those kvq was written for): kvq's kernels are compiled in every process and not cached",
            RuntimeWarning,
            stacklevel=3,
        )
    return cache


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
        cache = _keyed_cache(dispatcher, py_func)
        if cache is not None:
            dispatcher._cache = cache
        return dispatcher

    return compiled if function is None else compiled(function)
