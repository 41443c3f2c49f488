"""``kvq bench``: the suite's command line (also ``python -m kvq.bench``)."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path

from ..errors import KvqError, message
from ..fileio import OutputExistsError, output_exists
from ..fileio import _commit as commit  # the no-clobber move of every kvq output
from ..options import MAX_K, EncoderOptions, add_arguments, from_arguments, k_list, spec_of
from .peers import PEERS
from .suite import DEFAULT_KS, InputImage, Row, load_images, run_suite

#: Files the suite writes into the output folder (grids are ``grid_<image>.png``).
OUTPUTS = ("report.md", "results.csv", "rd_curves.png", "bits_vs_raw.png")
DEFAULT_OUTPUT = "bench-results"
DEFAULT_GRIDS = 4


def _k_list(text: str) -> list[int]:
    ks = k_list(text)
    if any(not 1 <= k <= MAX_K for k in ks):
        raise argparse.ArgumentTypeError(f"each k must be between 1 and {MAX_K:,}")
    return ks


def _peer_list(text: str) -> list[str]:
    if text.strip().lower() == "none":
        return []
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown peer(s) {', '.join(unknown)}; known: {', '.join(PEERS)}, or none")
    return names


def build_parser(prog: str = "kvq bench") -> argparse.ArgumentParser:
    """The argument parser of ``kvq bench``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Account for every bit of .kvq files against 24·N, the theory N·ceil(log2 K) + 24·K and fixed-width "
            "indices, and compare size and quality with PNG-8, GIF, pngquant, JPEG, and WebP-lossless and JPEG XL "
            "lossless of the same pixels. Writes report.md, results.csv and pictures to the output folder."
        ),
    )
    parser.add_argument(
        "inputs", nargs="*", metavar="IMAGE_OR_FOLDER",
        help="images, or folders of images (default: scikit-learn's sample images china.jpg and flower.jpg)",
    )  # fmt: skip
    parser.add_argument(
        "-k", dest="ks", action="append", type=_k_list, metavar="K[,K...]",
        help=f"palette sizes, comma-separated or repeated (default: {','.join(map(str, DEFAULT_KS))})",
    )  # fmt: skip
    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT, help=f"output folder (default: {DEFAULT_OUTPUT}/)")
    parser.add_argument("-f", "--force", action="store_true", help="replace outputs already in the output folder")
    parser.add_argument(
        "--peers", type=_peer_list, default=list(PEERS), metavar="LIST",
        help=f"comma-separated peers to measure, or none (default: {','.join(PEERS)})",
    )  # fmt: skip
    parser.add_argument(
        "--grids", type=int, default=DEFAULT_GRIDS, metavar="N",
        help=f"draw reconstruction grids for the first N images (default: {DEFAULT_GRIDS}; 0 for none)",
    )  # fmt: skip
    parser.add_argument("--save-files", action="store_true", help="also keep every .kvq and peer file under OUTPUT/files/")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, and no summary line on success")
    add_arguments(parser.add_argument_group("encoder options (as kvq encode)"), bench=True)
    return parser


def _describe(options: EncoderOptions) -> str:
    """The options the suite offers, as text for the report ("seed 0, dither none, ...")."""
    offered = [f for f in fields(options) if spec_of(f).bench]
    return ", ".join(f"{f.name.replace('_', ' ')} {getattr(options, f.name)}" for f in offered)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def main(argv: Sequence[str] | None = None, prog: str = "kvq bench") -> int:
    """Run the suite.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments after ``kvq bench`` (default: ``sys.argv[1:]``).
    prog : str
        Name of the command, for help and the report's command line.

    Returns
    -------
    int
        0 when every file's accounting holds (a fixed-width file is exactly
        the theory plus the fixed overhead and padding; an entropy-coded one
        is exactly overhead, palette and indices); 1 when one does not, or the
        run failed; 2 for a usage error.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on errors
        return int(exc.code or 0)
    # After parsing: --help and usage errors need none of the extra.
    from . import require_extra

    try:
        require_extra()
    except ImportError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    ks = [k for group in (args.ks or [list(DEFAULT_KS)]) for k in group]
    ks = list(dict.fromkeys(ks))
    try:
        options = from_arguments(args)
    except KvqError as exc:
        print(f"{prog}: error: {message(exc)}", file=sys.stderr)
        return 2
    if args.grids < 0:
        print(f"{prog}: error: --grids must be 0 or more", file=sys.stderr)
        return 2

    out = Path(args.output)
    package = Path(__file__).resolve().parent.parent
    if _inside(out.resolve(), package):
        print(f"{prog}: error: will not write into the kvq package ({package}); choose another --output", file=sys.stderr)
        return 2
    if out.exists() and not out.is_dir():
        print(f"{prog}: error: output {out} is not a folder", file=sys.stderr)
        return 1
    if not args.force and _refused(out, OUTPUTS, prog):
        return 1

    started = time.perf_counter()
    try:
        images = load_images(args.inputs)
    except (OSError, ValueError, KvqError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    grid_names = {image.name for image in images[: args.grids]}
    # Every output the run will write, as far as it is known before the run: a grid or a kept file is replaced only
    # with --force, as the report is.
    planned = [f"grid_{name}.png" for name in sorted(grid_names)]
    if args.save_files:
        planned += [f"files/{image.name}_k{k}.kvq" for image in images for k in ks]
    if not args.force and _refused(out, planned, prog):
        return 1
    # The outputs are written into a staging folder and appear in `out` together at the end; a run that fails
    # (an error, Ctrl-C) leaves `out` as it was, so that nothing half-written refuses the next run.
    try:
        with staged(out, force=args.force) as stage:
            command = " ".join([prog, *map(shlex.quote, argv)])
            rows, pictures = _write(args, command, images, ks, options, grid_names, started, stage)
    except OutputExistsError as exc:  # one the checks above could not foresee (a kept peer file), or made meanwhile
        print(f"{prog}: error: {message(exc)}", file=sys.stderr)
        return 1
    bad = [row for row in rows if not row.accounting_holds]
    for row in bad:
        if row.textbook:
            expected = f"theory + overhead + padding is {row.theory_bits + row.overhead_bits + row.padding_bits}"
        else:
            expected = (
                f"overhead + palette + indices is {row.overhead_bits + row.palette_bits + row.index_bits}, "
                f"fixed width would be {row.fixed_file_bits}"
            )
        print(f"{prog}: {row.image} at K={row.k_requested}: {row.coding} file is {row.file_bits} bits, {expected}", file=sys.stderr)
    if not args.quiet:
        print(f"wrote {out / 'report.md'}, {out / 'results.csv'} and {len(pictures)} picture(s) "
              f"({len(rows)} rows, accounting holds: {'all' if not bad else f'{len(bad)} NO'})")  # fmt: skip
    return 1 if bad else 0


def _write(
    args: argparse.Namespace,
    command: str,
    images: list[InputImage],
    ks: list[int],
    options: EncoderOptions,
    grid_names: set[str],
    started: float,
    stage: Path,
) -> tuple[list[Row], list[str]]:
    """Run the suite and write its outputs into ``stage``; return its rows and the pictures' file names."""
    keep = None
    if args.save_files:
        files = stage / "files"
        files.mkdir()

        def keep(name: str, data: bytes) -> None:
            (files / name).write_bytes(data)

    decoded: dict[str, list] = {name: [] for name in grid_names}

    def on_decoded(image, k, result) -> None:
        if image.name in grid_names:
            decoded[image.name].append((k, result.palette, result.indices))

    progress = not (args.no_progress or args.quiet) and _terminal(sys.stderr)
    rows = run_suite(images, ks, options, args.peers, keep, progress=progress, on_decoded=on_decoded)

    from . import figures, report

    report.write_csv(rows, stage / "results.csv")
    pictures = ["rd_curves.png", "bits_vs_raw.png"]
    figures.rd_curves(rows, stage / "rd_curves.png")
    figures.bits_vs_raw(rows, stage / "bits_vs_raw.png")
    for image in images:
        if image.name not in grid_names:
            continue
        by_k = {row.k_requested: row for row in rows if row.image == image.name}
        recon = [(by_k[k], palette, indices) for k, palette, indices in decoded[image.name]]
        name = f"grid_{image.name}.png"
        figures.grid(image.name, image.pixels, recon, stage / name)
        pictures.append(name)
    opts = _describe(options)
    report.write_markdown(
        rows,
        stage / "report.md",
        command=command,
        images=[(i.name, i.source, i.pixels.shape[1], i.pixels.shape[0]) for i in images],
        options=opts,
        figures=pictures,
        seconds=time.perf_counter() - started,
    )
    return rows, pictures


def _refused(out: Path, names: Sequence[str], prog: str) -> bool:
    """Say so and return True when one of ``names`` is already in ``out`` (without --force), in every kvq command's words."""
    for name in names:
        if (out / name).exists():
            print(f"{prog}: error: {message(output_exists(out / name))}", file=sys.stderr)
            return True
    return False


@contextlib.contextmanager
def staged(out: Path, *, force: bool) -> Iterator[Path]:
    """A folder to write a run's outputs into: they appear in ``out`` together when the block ends, and none when it fails.

    A new ``out`` is the staging folder, made beside it and renamed to it; into
    an existing one, whose other files stay as they are, each output is moved
    at the end, replacing a file already there only with ``force``
    (:func:`kvq.fileio.output_exists` otherwise). An error or Ctrl-C removes
    the staging folder, whatever was moved in, and the folders the run made
    above ``out``: the next run finds ``out`` as this one found it.

    Parameters
    ----------
    out : Path
        The output folder.
    force : bool
        Replace outputs already in ``out``.

    Yields
    ------
    Path
        The staging folder: a hidden folder beside ``out``, or inside it when it exists.
    """
    made = [folder for folder in (out, *out.parents) if not folder.exists()]  # deepest first
    home = out.parent if made else out
    home.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkdtemp: its folder is private (0700), and a new out would keep that mode.
    stage = home / f".kvq-bench-partial-{os.getpid()}-{secrets.token_hex(4)}"
    stage.mkdir()
    moved: list[Path] = []
    try:
        yield stage
        if not out.exists():
            with contextlib.suppress(OSError):  # out appeared meanwhile: move the outputs in one by one
                stage.rename(out)
                return
        outputs = sorted(path for path in stage.rglob("*") if path.is_file())
        targets = [out / path.relative_to(stage) for path in outputs]
        if not force:
            for target in targets:
                if target.exists():
                    raise output_exists(target)
        for source, target in zip(outputs, targets, strict=True):
            if not target.parent.exists():
                target.parent.mkdir()  # files/
                made.insert(0, target.parent)
            commit(source, target, force)  # without force, never replaces a file that appeared after the check
            moved.append(target)
        shutil.rmtree(stage)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for target in moved:
            target.unlink(missing_ok=True)
        for folder in made:
            with contextlib.suppress(OSError):  # a folder this run made, now empty
                folder.rmdir()
        raise


def _terminal(stream: object) -> bool:
    """Whether a progress bar may be drawn on ``stream``: a terminal, as the kvq command's own bars (a log file or CI gets none)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())
