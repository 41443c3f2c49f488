"""The manifest of a batch: one row per file, written so that it is never half there.

Rows are streamed to a temporary file beside the manifest as results arrive
(a million-file batch does not keep its rows in memory) and the file is
renamed into place when the batch ends, including a batch ended by Ctrl-C,
whose manifest then lists the files finished so far. A write that fails (a
full disk) removes the temporary file and names the manifest in its error.

Formats, chosen by the suffix:

- ``.csv``: a header row with :data:`kvq.batch.COLUMNS`, then one row per file.
  ``psnr`` is ``inf`` for a lossless file; empty cells are unknown values.
- ``.json``: ``{"kvq_manifest": 1, "operation": ..., "files": [{...}, ...],
  "summary": {"done": n, "skipped": n, "failed": n}}``; ``psnr`` is null
  when lossless or unknown (JSON has no infinity), and ``lossless`` says which.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .batch import COLUMNS, DONE, FAILED, SKIPPED, FileResult
from .errors import KvqError
from .fileio import create_temporary

#: Suffixes of the manifest formats.
FORMATS = (".csv", ".json")
_JSON_MARK = "kvq_manifest"


def check_manifest_path(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Refuse a manifest path with an unknown suffix, or one that would replace a file that is not a manifest.

    Parameters
    ----------
    path : str or path-like
    force : bool, default=False
        Replace whatever file is there.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    KvqError
    """
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise KvqError(f"manifest {target}: name it .csv or .json")
    if target.is_dir():
        raise KvqError(f"manifest {target} is a directory")
    if target.exists() and not force and not _is_manifest(target):
        error = KvqError(f"manifest {target} exists and is not a kvq manifest (force=True replaces it)")
        raise error.for_command(f"manifest {target} exists and is not a kvq manifest (-f/--force replaces it)")
    return target


def _is_manifest(path: Path) -> bool:
    """A previous run's manifest may be replaced: resuming a batch writes it again."""
    try:
        with open(path, encoding="utf-8") as fp:
            start = fp.read(200)
    except (OSError, UnicodeDecodeError):
        return False
    if path.suffix.lower() == ".csv":
        # The first columns only: a manifest from a kvq that had fewer columns is a manifest too.
        return start.startswith(",".join(COLUMNS[:4]) + ",")
    return start.lstrip().startswith("{") and f'"{_JSON_MARK}"' in start


class ManifestWriter:
    """Write a batch's manifest row by row, atomically.

    Parameters
    ----------
    path : str or path-like
        ``.csv`` or ``.json``; checked by :func:`check_manifest_path`.
    operation : str
        ``"encode"`` or ``"decode"`` (JSON only).
    force : bool, default=False

    Examples
    --------
    >>> with ManifestWriter("out.csv", "encode") as manifest:      # doctest: +SKIP
    ...     for result in kvq.batch.encode_files(["photos"], "out"):
    ...         manifest.add(result)
    """

    def __init__(self, path: str | os.PathLike, operation: str, *, force: bool = False) -> None:
        self.path = check_manifest_path(path, force=force)
        self.operation = operation
        self.counts = {DONE: 0, SKIPPED: 0, FAILED: 0}
        self._json = self.path.suffix.lower() == ".json"
        folder = self.path.parent if str(self.path.parent) else Path(".")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            # Named after the manifest: "kodim01.png: File exists" said nothing of --manifest kodim01.png/m.csv.
            raise type(exc)(exc.errno, f"its folder cannot be made ({exc.strerror})", f"manifest {self.path}") from None
        # Named after the manifest in its errors, not after the hidden temporary file.
        fd, self._tmp = create_temporary(self.path)
        self._fp: IO[str] = os.fdopen(fd, "w", encoding="utf-8", newline="")
        with self._naming_the_manifest():
            if self._json:
                self._fp.write(f'{{"{_JSON_MARK}": 1, "operation": {json.dumps(operation)}, "files": [')
            else:
                self._csv = csv.writer(self._fp)
                self._csv.writerow(COLUMNS)

    @contextlib.contextmanager
    def _naming_the_manifest(self) -> Iterator[None]:
        """A write that fails (a full disk) removes the temporary file and names the manifest."""
        try:
            yield
        except OSError as exc:
            self.discard()
            raise type(exc)(exc.errno, exc.strerror, f"manifest {self.path}") from None

    def add(self, result: FileResult) -> None:
        """Append one file's row.

        Parameters
        ----------
        result : FileResult
        """
        self.counts[result.status] += 1
        row = result.as_dict()
        with self._naming_the_manifest():
            if self._json:
                psnr = row["psnr"]
                row["lossless"] = psnr is not None and math.isinf(psnr)
                row["psnr"] = psnr if psnr is not None and math.isfinite(psnr) else None
                separator = "" if sum(self.counts.values()) == 1 else ","
                self._fp.write(f"{separator}\n  {json.dumps(row)}")
            else:
                self._csv.writerow(["" if row[c] is None else _cell(row[c]) for c in COLUMNS])

    def close(self) -> Path:
        """Finish the file and rename it into place.

        Returns
        -------
        pathlib.Path
            The manifest's path.
        """
        with self._naming_the_manifest():
            if self._json:
                self._fp.write(f'\n], "summary": {json.dumps(self.counts)}}}\n')
            self._fp.flush()
            os.fsync(self._fp.fileno())
            self._fp.close()
            os.replace(self._tmp, self.path)
        return self.path

    def discard(self) -> None:
        """Remove the temporary file without writing the manifest."""
        # Closing flushes what is buffered: on a full disk that fails too, and the file goes all the same.
        with contextlib.suppress(OSError):
            self._fp.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        # Ctrl-C still writes what was done; an error in kvq itself does not
        # leave a manifest that would look complete.
        if kind is None or issubclass(kind, KeyboardInterrupt):
            self.close()
        else:
            self.discard()


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.6g}"
    return value


def read_manifest(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a manifest back as one dict per file (for scripts and tests).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    list of dict
        CSV values are strings, as written; JSON values typed.
    """
    text = Path(path).read_text(encoding="utf-8")
    if Path(path).suffix.lower() == ".json":
        return list(json.loads(text)["files"])
    return list(csv.DictReader(io.StringIO(text)))
