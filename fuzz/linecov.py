"""Line coverage of kvq's decoding modules by a fuzz corpus, without coverage.py.

    python fuzz/linecov.py decode fuzz/corpus/decode [more folders...]
    python fuzz/linecov.py pillow fuzz/corpus/pillow

Replays every file through the harness's ``check`` under ``sys.settrace`` and
prints, per module, the executed lines out of the lines that hold code, and the
lines never reached (function by function).
"""

from __future__ import annotations

import sys
import types
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

MODULES = ("container.py", "bitpack.py", "codec.py", "pillow_plugin.py")


def code_lines(path: Path) -> dict[int, str]:
    """Lines holding code of every function in ``path``, mapped to the function's name."""
    code = compile(path.read_text(), str(path), "exec")
    lines: dict[int, str] = {}

    def walk(co: types.CodeType) -> None:
        for _, _, line in co.co_lines():
            if line is not None and co.co_name != "<module>" and line != co.co_firstlineno:
                lines.setdefault(line, co.co_qualname)
        for const in co.co_consts:
            if isinstance(const, types.CodeType):
                walk(const)

    walk(code)
    return lines


def main() -> None:
    which, folders = sys.argv[1], sys.argv[2:]
    harness = __import__("fuzz_decode" if which == "decode" else "fuzz_pillow")
    import kvq

    root = Path(kvq.__file__).parent
    hit: dict[str, set[int]] = defaultdict(set)

    def tracer(frame, event, arg):
        name = frame.f_code.co_filename
        if name.startswith(str(root)) and Path(name).name in MODULES:
            hit[Path(name).name].add(frame.f_lineno)
            return tracer
        return None

    files = [p for f in folders for p in Path(f).iterdir() if p.is_file()]
    sys.settrace(tracer)
    try:
        for path in files:
            harness.check(path.read_bytes())
    finally:
        sys.settrace(None)
    print(f"{len(files)} inputs replayed through fuzz_{which}.check")
    for module in MODULES:
        path = root / module
        if not path.exists():
            continue
        lines = code_lines(path)
        covered = {line for line in lines if line in hit[module]}
        print(f"{module:18s} {len(covered):4d} / {len(lines):4d} lines ({100 * len(covered) / max(len(lines), 1):.0f} %)")
        missed = defaultdict(list)
        for line in sorted(set(lines) - covered):
            missed[lines[line]].append(line)
        for func, nums in missed.items():
            print(f"    not reached in {func}: {nums}")


if __name__ == "__main__":
    main()
