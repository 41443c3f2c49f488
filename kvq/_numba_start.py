"""Starting numba in the ``kvq`` command without two optional imports that cost more than encoding a photo.

The first compiled kernel a process runs, compiled or loaded from numba's
cache, makes numba register every typing and lowering module it has. Two of
them import large optional packages for features kvq's kernels never use:

- ``numba.np.arraymath`` checks for a BLAS by importing ``scipy.linalg``
  (with scipy's array-API layer, ``numpy.f2py`` and ``numpy.testing``): about
  0.2 s of CPU on an idle machine, twice that on a busy one. numba only uses
  the answer to pick BLAS or a plain loop for ``np.dot``-like reductions in
  jitted code; kvq's kernels have none.
- ``numba.core.typing.cffi_utils`` imports cffi when it is installed, which
  builds pycparser's C lexer: about 0.1 s. It lets jitted code call cffi
  functions; kvq's kernels call none.

:func:`start` registers numba's modules with both imports failing, so numba
records "no BLAS, no cffi" for the process. It is called only by the ``kvq``
command, in its own process (and so in the batch workers it forks), never by
the library: a program that imports kvq keeps numba exactly as it would be
without kvq. Both packages stay importable afterwards (scipy's ``cKDTree``,
used for palettes of thousands of entries, included).
"""

from __future__ import annotations

import sys

#: Imported by numba's registration only for features kvq does not use.
SKIPPED = ("scipy.linalg.cython_blas", "cffi")


def start() -> None:
    """Import numba and register its typing and lowering modules, skipping :data:`SKIPPED`.

    Does nothing when numba has already registered them (its first kernel
    ran before). A skipped module that is already imported stays as it is:
    it costs nothing more (Pillow before 11 imports cffi itself).
    """
    skipped = [name for name in SKIPPED if name not in sys.modules]
    if "numba.np.arraymath" in sys.modules or not skipped:
        return
    # A None entry in sys.modules makes "import name" raise ImportError at
    # once, before any parent package is imported: numba's own fallbacks
    # (no BLAS, no cffi) then apply.
    for name in skipped:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()  # and its typing context
    except Exception:  # noqa: BLE001 - a numba whose internals differ: start it the usual way, on first use
        pass
    finally:
        for name in skipped:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
