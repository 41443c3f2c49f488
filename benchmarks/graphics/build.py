"""Rebuild the graphics benchmark set from public packages, byte for byte.

Run from the repository root (needs Python >= 3.11, network access to PyPI and npm, ``npm`` and Chromium)::

    python benchmarks/graphics/build.py                       # -> benchmarks/graphics/images/ (git-ignored)
    python benchmarks/graphics/build.py --out DIR              # elsewhere
    python benchmarks/graphics/build.py --only 'icon/*'        # a subset, by file name pattern

The set is for benchmarks only: nothing in the test suite reads it. What it holds, where each image
comes from and under which licence is in ``SOURCES.md`` beside this file and, per image, in
``manifest.json`` in the output folder.

How it stays the same from run to run and from machine to machine:

- **Sources** are files of exact releases on PyPI (``pip download``) and npm (``npm pack``), kept in a
  cache folder (``--cache``, default ``benchmarks/graphics/.cache/``, git-ignored). Each archive's
  sha256 is written in ``SOURCES`` below and checked after every download and before every use; a
  platform-specific wheel is named by its full file name (``--platform``, ``--python-version``), so
  it is the same file whatever machine downloads it. Files read from the pinned rendering packages
  themselves (matplotlib's sample data, Pygments' source) are checked one by one.
- **Renderers** run in a virtual environment that this script makes in the cache with the exact
  versions of ``requirements.txt`` (numpy, Pillow, matplotlib, Pygments, Python-Markdown, Rich,
  resvg-py, pyxel), installed with ``--no-deps`` so that nothing else is resolved; then the script runs
  itself again inside it. Web pages are rendered by headless Chromium with fonts from npm packages
  (Inter, JetBrains Mono, Source Serif 4) rather than the system's.
- **Images** are written as PNG by Pillow with no metadata. The sha256 of every file and of its
  pixels is checked against ``lock.json``; a mismatch fails the build (exit 1) and names the image
  and whether only the PNG compression or the pixels changed. After a deliberate change (a new source,
  a new recipe, a new Chromium), ``--update-lock`` writes the new hashes; commit them with the change.
  Chromium is the one renderer that comes from the system: its version is in the manifest, and
  another version is expected to change the screenshots' pixels.

Exit status: 0 when every image was made and matches the lock, 1 when a source or an image does not
match its hash or a recipe fails (each is named on standard error), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import venv
import weakref
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_OUT = HERE / "images"
DEFAULT_CACHE = HERE / ".cache"
LOCK = HERE / "lock.json"
REQUIREMENTS = HERE / "requirements.txt"
#: Set in the environment of the second run, inside the pinned virtual environment.
IN_ENV = "KVQ_GRAPHICS_IN_ENV"
#: The set is meant to be benchmarked in minutes: no image above about 2 megapixels.
MAX_PIXELS = 2_100_000


class BuildError(Exception):
    """A source or an image that does not match its recorded hash, or a recipe that failed."""


# --------------------------------------------------------------------------------------------------
# Sources


@dataclass(frozen=True)
class Source:
    """One pinned source: a release archive on PyPI or npm, or files of a pinned installed package.

    Parameters
    ----------
    key : str
        Short name the recipes use.
    kind : {"pypi", "npm", "installed"}
        ``pypi``: ``pip download`` of ``name==version``, the file ``filename``; ``npm``: ``npm pack``
        of ``name@version``; ``installed``: files of a package installed from ``requirements.txt``.
    name, version : str
        The release.
    sha256 : str
        Of the archive (``pypi``, ``npm``); empty for ``installed``.
    licence : str
        The licence of what is used from it, as its authors state it.
    filename : str
        The archive's file name (``pypi``: also selects a platform's wheel or an sdist).
    files : Mapping[str, str]
        ``installed`` only: path inside the package -> sha256.
    """

    key: str
    kind: str
    name: str
    version: str
    sha256: str
    licence: str
    filename: str = ""
    files: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How the manifest names the source: registry, name and version."""
        sep = "@" if self.kind == "npm" else "=="
        registry = {"pypi": "PyPI", "npm": "npm", "installed": "PyPI"}[self.kind]
        return f"{registry} {self.name}{sep}{self.version}"


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks (some archives are tens of megabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_tags(filename: str) -> list[str]:
    """``pip download`` options that select exactly this wheel file, whatever machine runs pip.

    Only data files are read from a compiled wheel, so any platform's would do; naming its tags (from the
    file name, PEP 427) keeps the file, and so its sha256, the same on every machine.
    """
    python_tag, abi_tag, platform_tag = filename[: -len(".whl")].split("-")[-3:]
    if platform_tag == "any":
        return []  # a pure-Python wheel is the same file everywhere
    first = python_tag.split(".")[0]  # cp311 -> CPython 3.11
    options = [opt for plat in platform_tag.split(".") for opt in ("--platform", plat)]
    options += ["--python-version", f"{first[2]}.{first[3:]}", "--implementation", first[:2]]
    return options + [opt for abi in abi_tag.split(".") for opt in ("--abi", abi)]


def _quiet(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, raising BuildError with its output when it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-8:]
        raise BuildError(f"{' '.join(cmd[:4])} ... failed (exit {proc.returncode}):\n  " + "\n  ".join(tail))
    return proc


def download(source: Source, cache: Path) -> Path:
    """Bring a pypi/npm source's archive into ``cache`` (once) and check its sha256.

    Raises
    ------
    BuildError
        The download failed, or the file's sha256 is not the recorded one (the file is then removed,
        so that the next run downloads it again rather than trusting it).
    """
    folder = cache / source.kind
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / source.filename
    if not path.exists():
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            if source.kind == "pypi":
                cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d", tmp]
                if source.filename.endswith(".whl"):
                    cmd += ["--only-binary=:all:", *wheel_tags(source.filename)]
                else:
                    cmd += ["--no-binary=:all:"]
                _quiet(cmd + [f"{source.name}=={source.version}"])
            else:
                _quiet(["npm", "pack", "--silent", "--pack-destination", tmp, f"{source.name}@{source.version}"])
            got = Path(tmp) / source.filename
            if not got.exists():
                found = ", ".join(sorted(p.name for p in Path(tmp).iterdir())) or "nothing"
                raise BuildError(f"{source.label}: expected {source.filename}, the registry gave {found}")
            got.replace(path)
    digest = sha256_file(path)
    if digest != source.sha256:
        path.unlink()
        raise BuildError(f"{source.label}: {source.filename} has sha256 {digest}, expected {source.sha256}")
    return path


class Archive:
    """Read members of a verified wheel, sdist or npm tarball, by path inside it."""

    def __init__(self, source: Source, path: Path):
        self.source = source
        self.path = path
        self._unpacked: Path | None = None
        if path.suffix in (".whl", ".zip"):
            self._zip: zipfile.ZipFile | None = zipfile.ZipFile(path)
            self._names = self._zip.namelist()
        else:
            # A gzipped tar cannot seek: reading members one by one would decompress the archive again for
            # each (seconds for devicon's 59 MB). Unpack it once into a private folder instead.
            self._zip = None
            self._unpacked = Path(tempfile.mkdtemp(prefix="kvq-graphics-tar-"))
            weakref.finalize(self, shutil.rmtree, self._unpacked, True)
            with tarfile.open(path, "r:gz") as tar:
                members = [m for m in tar.getmembers() if m.isfile()]
                unsafe = [m.name for m in members if m.name.startswith("/") or ".." in Path(m.name).parts]
                if unsafe:
                    raise BuildError(f"{source.label}: unsafe member paths in {path.name}: {unsafe[:3]}")
                if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4: refuse links, devices, odd modes too
                    tar.extractall(self._unpacked, members=members, filter="data")
                else:
                    tar.extractall(self._unpacked, members=members)
            self._names = [m.name for m in members]

    def names(self) -> list[str]:
        """Every member's path."""
        return list(self._names)

    def read(self, member: str) -> bytes:
        """The bytes of one member.

        Raises
        ------
        BuildError
            No such member.
        """
        try:
            if self._zip is not None:
                return self._zip.read(member)
            if member not in self._names:
                raise KeyError(member)
            assert self._unpacked is not None
            return (self._unpacked / member).read_bytes()
        except KeyError:
            raise BuildError(f"{self.source.label}: no {member} in {self.path.name}") from None

    def extract(self, prefix: str, dest: Path) -> Path:
        """Write every member under ``prefix`` below ``dest`` (keeping the relative paths); return ``dest``."""
        members = [n for n in self.names() if n.startswith(prefix) and not n.endswith("/")]
        if not members:
            raise BuildError(f"{self.source.label}: nothing under {prefix} in {self.path.name}")
        for name in members:
            rel = Path(name[len(prefix) :].lstrip("/"))
            if rel.is_absolute() or ".." in rel.parts:
                raise BuildError(f"{self.source.label}: unsafe member path {name}")
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.read(name))
        return dest


class Installed:
    """Files of a pinned installed package, each checked against its recorded sha256 on read."""

    def __init__(self, source: Source):
        self.source = source

    def path(self, member: str) -> Path:
        """The checked file's path."""
        if member not in self.source.files:
            raise BuildError(f"{self.source.label}: {member} is not a recorded file of the source")
        import importlib

        package = importlib.import_module(self.source.name.lower().replace("-", "_"))
        base = Path(package.__file__).parent
        path = base / member
        if not path.exists():
            raise BuildError(f"{self.source.label}: no {member} in {base}")
        digest = sha256_file(path)
        if digest != self.source.files[member]:
            raise BuildError(f"{self.source.label}: {member} has sha256 {digest}, expected {self.source.files[member]}")
        return path

    def read(self, member: str) -> bytes:
        """The checked file's bytes."""
        return self.path(member).read_bytes()


# --------------------------------------------------------------------------------------------------
# Recipes, the lock and the manifest


@dataclass(frozen=True)
class Recipe:
    """How one image of the set is made.

    Parameters
    ----------
    file : str
        Path in the output folder, ``<category>/<name>.png``.
    sources : tuple of str
        Keys of the sources it reads.
    licence : str
        The image's licence (that of the content it shows).
    made : str
        One line: how it is made from the sources.
    make : callable
        ``make(ctx) -> PIL.Image.Image`` (mode RGB or RGBA).
    group : str, optional
        Images that are one subject at several sizes share a group (the icon sets).
    """

    file: str
    sources: tuple[str, ...]
    licence: str
    made: str
    make: Callable[[Any], Any]
    group: str | None = None

    @property
    def category(self) -> str:
        """The folder part of ``file``."""
        return self.file.split("/", 1)[0]


def encode_png(image: Any) -> tuple[bytes, str, str]:
    """The set's PNG bytes for a Pillow image, with the image's mode and its pixels' sha256.

    RGBA images whose alpha is opaque everywhere are stored as RGB, palette and grey images as RGB
    or RGBA, so that every file of the set is one of the two modes. No metadata is written (Pillow
    writes no time stamp), so the bytes depend only on the pixels and on Pillow's zlib.
    """
    from PIL import Image

    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if ("transparency" in image.info or "A" in image.getbands()) else "RGB")
    if image.mode == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
        image = image.convert("RGB")
    clean = Image.frombytes(image.mode, image.size, image.tobytes())
    buf = io.BytesIO()
    clean.save(buf, format="PNG", compress_level=9)
    header = f"{clean.mode} {clean.width} {clean.height}\n".encode()
    return buf.getvalue(), clean.mode, sha256_bytes(header + clean.tobytes())


def load_lock(path: Path) -> dict[str, dict[str, str]]:
    """The recorded hashes, ``{file: {"sha256": ..., "pixels_sha256": ...}}`` (empty when absent)."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return dict(data.get("images", {}))


def check_against_lock(entry: Mapping[str, Any], lock: Mapping[str, Mapping[str, str]]) -> str | None:
    """None when the image matches its locked hashes, else a sentence saying how it differs."""
    want = lock.get(entry["file"])
    if want is None:
        return "not in the lock (new recipe? run with --update-lock and commit lock.json)"
    if want.get("sha256") == entry["sha256"]:
        return None
    if want.get("pixels_sha256") == entry["pixels_sha256"]:
        return "same pixels, different PNG bytes (another zlib in Pillow?)"
    return "different pixels (another renderer version, source or recipe?)"


def build(
    recipes: Iterable[Recipe],
    sources: Mapping[str, Source],
    out: Path,
    cache: Path,
    lock_path: Path,
    update_lock: bool = False,
    context_factory: Callable[[dict[str, Any], Path], Any] | None = None,
    environment: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Make every recipe's image in ``out``, check them against the lock, write ``manifest.json``.

    Parameters
    ----------
    recipes : iterable of Recipe
        What to make.
    sources : mapping of str to Source
        Every source the recipes name, by key.
    out, cache : pathlib.Path
        Output folder (made if absent) and download cache.
    lock_path : pathlib.Path
        ``lock.json``: read to check; written (merged) with ``update_lock``.
    update_lock : bool
        Record the new hashes instead of failing on a difference.
    context_factory : callable, optional
        ``factory(opened_sources, work_dir) -> ctx`` for the recipes; default: a dict of the opened
        sources.
    environment : mapping, optional
        Versions of the renderers, recorded in the manifest.
    log : callable
        Where progress lines go.

    Returns
    -------
    dict
        The manifest written.

    Raises
    ------
    BuildError
        A source failed its check, a recipe failed, an image is too large, or (without
        ``update_lock``) an image differs from the lock; the manifest is still written for the rest.
    """
    recipes = list(recipes)
    names = [r.file for r in recipes]
    if len(set(names)) != len(names):
        raise BuildError("two recipes write the same file")
    needed = sorted({key for r in recipes for key in r.sources})
    unknown = [key for key in needed if key not in sources]
    if unknown:
        raise BuildError(f"recipes name unknown sources: {', '.join(unknown)}")
    opened: dict[str, Any] = {}
    for key in needed:
        source = sources[key]
        if source.kind == "installed":
            opened[key] = Installed(source)
        else:
            log(f"source {source.label}")
            opened[key] = Archive(source, download(source, cache))
    out.mkdir(parents=True, exist_ok=True)
    lock = load_lock(lock_path)
    entries: list[dict[str, Any]] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kvq-graphics-") as tmp:
        ctx = context_factory(opened, Path(tmp)) if context_factory else opened
        for recipe in recipes:
            started = time.perf_counter()
            try:
                image = recipe.make(ctx)
                data, mode, pixels = encode_png(image)
            except BuildError as exc:
                problems.append(f"{recipe.file}: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - one broken recipe must not hide the state of the others
                problems.append(f"{recipe.file}: {type(exc).__name__}: {exc}")
                continue
            width, height = image.size
            if width * height > MAX_PIXELS:
                problems.append(f"{recipe.file}: {width}x{height} is over {MAX_PIXELS:,} pixels")
                continue
            target = out / recipe.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            entry = {
                "file": recipe.file,
                "category": recipe.category,
                "width": width,
                "height": height,
                "mode": mode,
                "bytes": len(data),
                "sha256": sha256_bytes(data),
                "pixels_sha256": pixels,
                "source": [sources[key].label for key in recipe.sources],
                "licence": recipe.licence,
                "made": recipe.made,
            }
            if recipe.group:
                entry["group"] = recipe.group
            entries.append(entry)
            verdict = None if update_lock else check_against_lock(entry, lock)
            if verdict:
                problems.append(f"{recipe.file}: {verdict}")
            log(f"{'MISMATCH' if verdict else 'ok':8} {recipe.file} {width}x{height} {mode} ({time.perf_counter() - started:.1f} s)")
    # A partial build (--only) keeps the entries of the images it did not remake, so that the manifest
    # always lists every image in the folder.
    made = {e["file"] for e in entries}
    manifest_path = out / "manifest.json"
    old_sources: dict[str, Any] = {}
    if manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text())
            entries += [e for e in old["images"] if e["file"] not in made and (out / e["file"]).exists()]
            old_sources = dict(old.get("sources", {}))
        except (ValueError, KeyError, TypeError):
            pass  # an unreadable manifest is replaced by this build's
    manifest = {
        "about": "The graphics benchmark set of kvq, made by benchmarks/graphics/build.py; see benchmarks/graphics/SOURCES.md.",
        "environment": dict(environment or {}),
        "sources": old_sources
        | {
            key: {
                "label": sources[key].label,
                "file": sources[key].filename,
                "sha256": sources[key].sha256,
                "files": dict(sources[key].files),
                "licence": sources[key].licence,
            }
            for key in needed
        },
        "images": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if update_lock:
        merged = dict(lock)
        merged.update({e["file"]: {"sha256": e["sha256"], "pixels_sha256": e["pixels_sha256"]} for e in entries})
        lock_path.write_text(json.dumps({"images": dict(sorted(merged.items()))}, indent=1) + "\n")
    if problems:
        raise BuildError(f"{len(problems)} of {len(recipes)} images failed:\n  " + "\n  ".join(problems))
    return manifest


# --------------------------------------------------------------------------------------------------
# The pinned environment


def ensure_environment(cache: Path) -> Path:
    """The pinned virtual environment's Python, made (once per requirements.txt) in ``cache``."""
    requirements = REQUIREMENTS.read_bytes()
    env = cache / f"env-{sha256_bytes(requirements + sys.version.encode())[:12]}"
    python = env / "bin" / "python"
    marker = env / "installed"
    if not marker.exists():
        shutil.rmtree(env, ignore_errors=True)
        print(f"making the pinned environment {env} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(env)
        _quiet([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "-r", str(REQUIREMENTS)])
        marker.write_text("ok\n")
    return python


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: benchmarks/graphics/images/)")
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help="downloads and the pinned environment (default: benchmarks/graphics/.cache/)"
    )
    parser.add_argument(
        "--only", action="append", default=[], metavar="PATTERN", help="make only the files that match (fnmatch, e.g. 'icon/*'); repeatable"
    )
    parser.add_argument("--update-lock", action="store_true", help="record the images' hashes in lock.json instead of checking them")
    parser.add_argument(
        "--chromium", default=None, help="the Chromium binary (default: chromium, chromium-browser or google-chrome on PATH)"
    )
    parser.add_argument(
        "--no-env",
        action="store_true",
        help="render with this Python's packages instead of the pinned environment (the lock will likely not match)",
    )
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: see the module docstring."""
    args = parse_args(argv)
    if sys.version_info < (3, 11):
        print("build.py: needs Python 3.11 or later (the pinned renderers do)", file=sys.stderr)
        return 2
    args.out = args.out.resolve()
    args.cache = args.cache.resolve()
    if not (args.no_env or os.environ.get(IN_ENV)):
        try:
            python = ensure_environment(args.cache)
        except BuildError as exc:
            print(f"build.py: {exc}", file=sys.stderr)
            return 1
        cmd = [str(python), str(Path(__file__).resolve()), *(argv if argv is not None else sys.argv[1:])]
        cmd += ["--out", str(args.out), "--cache", str(args.cache)]
        return subprocess.call(cmd, env={**os.environ, IN_ENV: "1"})

    sys.path.insert(0, str(HERE))
    # recipes.py imports this file as "build": let that be this very module, so that its BuildError is ours.
    sys.modules.setdefault("build", sys.modules[__name__])
    import recipes as recipe_module

    chosen = [r for r in recipe_module.RECIPES if not args.only or any(fnmatch.fnmatch(r.file, p) for p in args.only)]
    if args.list:
        for r in chosen:
            print(f"{r.file:48} {r.licence:28} {r.made}")
        return 0
    if not chosen:
        print(f"build.py: no recipe matches {args.only}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        chromium = recipe_module.find_chromium(args.chromium)
        environment = recipe_module.environment(chromium)
        environment["python"] = platform.python_version()
        build(
            chosen,
            recipe_module.SOURCES,
            args.out,
            args.cache,
            LOCK,
            update_lock=args.update_lock,
            context_factory=lambda opened, work: recipe_module.Context(opened, work, chromium),
            environment=environment,
        )
    except BuildError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 1
    print(f"{len(chosen)} images in {args.out} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
