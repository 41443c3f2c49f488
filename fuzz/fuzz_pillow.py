"""Coverage-guided fuzzing of the Pillow plugin: Image.open(...).load() on .kvq data.

Run (see fuzz/README.md)::

    python fuzz/fuzz_pillow.py fuzz/corpus/pillow fuzz/corpus/seeds -max_total_time=3600

Contract (issue 6): any byte string ends in a loaded image or one of the
exceptions Pillow documents for broken files (OSError, including
UnidentifiedImageError, ValueError, or DecompressionBombError for sizes over
Pillow's limit). Only the kvq plugin is tried, so other formats' plugins are
not fuzzed here. A loaded image must match what kvq.decode makes of the same
bytes, and verify() must refuse exactly what load() refuses (issue 11).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import _common
from _common import (
    MAX_PIXELS,
    GuardedFile,
)

_FORMATS: list[str] = []


def plugin_formats() -> list[str]:
    """Pillow format ids that kvq's plugin registered (empty if there is no plugin)."""
    from PIL import Image

    import kvq

    try:
        kvq.register_pillow()
    except ImportError:
        return []
    Image.init()
    return sorted(fmt for fmt, entry in Image.OPEN.items() if getattr(entry[0], "__module__", "").startswith("kvq"))


def check(data: bytes) -> None:
    """Open and load ``data`` through Pillow; raise on a broken contract."""
    import numpy as np
    from PIL import Image

    import kvq

    if not _FORMATS:
        _FORMATS.extend(plugin_formats())
        if not _FORMATS:
            raise RuntimeError("kvq's Pillow plugin is not available")
    # Above MAX_PIXELS // 2 warns, above MAX_PIXELS is refused: keeps fuzzed sizes small.
    saved_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS // 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # verify() checks what load() checks, without the pixels (issue 11).
            try:
                with Image.open(GuardedFile(data), formats=_FORMATS) as im:
                    im.verify()
                verified = True
            except (OSError, ValueError, Image.DecompressionBombError):
                verified = False
            try:
                with Image.open(GuardedFile(data), formats=_FORMATS) as im:
                    im.load()
                    size, mode = im.size, im.mode
                    converted = np.asarray(im.convert("RGBA" if mode in ("RGBA", "PA", "LA") else "RGB"))
            except (OSError, ValueError, Image.DecompressionBombError):
                if verified:
                    raise AssertionError("verify() passed a file that load() refuses") from None
                return
            if not verified:
                raise AssertionError("verify() refused a file that load() accepts")
    finally:
        Image.MAX_IMAGE_PIXELS = saved_limit
    # Loaded: the library must agree.
    pixels = kvq.decode(data, None)
    h = kvq.read_header(data, None)
    if size != (h.width, h.height):
        raise AssertionError(f"plugin size {size}, header {h.width}x{h.height}")
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    if converted.shape[2] == 4 and pixels.shape[2] == 3:
        converted = converted[:, :, :3]
    if converted.shape[2] == 3 and pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]
    if not np.array_equal(converted, pixels):
        raise AssertionError(f"plugin pixels differ from kvq.decode for {h}")


def test_one_input(data: bytes) -> None:
    check(data)


def main() -> None:
    import atheris

    with atheris.instrument_imports(include=["kvq"]):
        import kvq
        import kvq.bitpack
        import kvq.codec
        import kvq.container
        try:
            import kvq.pillow_plugin  # noqa: F401
        except ImportError:
            sys.exit("kvq.pillow_plugin does not exist yet: nothing to fuzz")
    _FORMATS.extend(plugin_formats())
    _common.start_kernels()
    atheris.Setup(sys.argv, test_one_input, custom_mutator=_common.custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
