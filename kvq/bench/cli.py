"""``kvq bench``: the suite's command line (also ``python -m kvq.bench``)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from ..errors import KvqError, message
from ..options import MAX_K, EncoderOptions, add_arguments, from_arguments, k_list, spec_of
from .peers import PEERS
from .suite import DEFAULT_KS, load_images, run_suite

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
    parser.add_argument("-f", "--force", action="store_true", help="overwrite a report already in the output folder")
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
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not args.force:
        print(f"{prog}: error: {out / existing[0]} exists; use --force to overwrite", file=sys.stderr)
        return 1

    started = time.perf_counter()
    try:
        images = load_images(args.inputs)
    except (OSError, ValueError, KvqError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)

    keep = None
    if args.save_files:
        files = out / "files"
        files.mkdir(exist_ok=True)

        def keep(name: str, data: bytes) -> None:
            (files / name).write_bytes(data)

    grid_names = {image.name for image in images[: args.grids]}
    decoded: dict[str, list] = {name: [] for name in grid_names}

    def on_decoded(image, k, result) -> None:
        if image.name in grid_names:
            decoded[image.name].append((k, result.palette, result.indices))

    progress = not (args.no_progress or args.quiet) and _terminal(sys.stderr)
    rows = run_suite(images, ks, options, args.peers, keep, progress=progress, on_decoded=on_decoded)

    from . import figures, report

    report.write_csv(rows, out / "results.csv")
    pictures = ["rd_curves.png", "bits_vs_raw.png"]
    figures.rd_curves(rows, out / "rd_curves.png")
    figures.bits_vs_raw(rows, out / "bits_vs_raw.png")
    for image in images:
        if image.name not in grid_names:
            continue
        by_k = {row.k_requested: row for row in rows if row.image == image.name}
        recon = [(by_k[k], palette, indices) for k, palette, indices in decoded[image.name]]
        name = f"grid_{image.name}.png"
        figures.grid(image.name, image.pixels, recon, out / name)
        pictures.append(name)
    opts = _describe(options)
    command = " ".join([prog, *map(shlex.quote, argv)])
    report.write_markdown(
        rows,
        out / "report.md",
        command=command,
        images=[(i.name, i.source, i.pixels.shape[1], i.pixels.shape[0]) for i in images],
        options=opts,
        figures=pictures,
        seconds=time.perf_counter() - started,
    )
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


def _terminal(stream: object) -> bool:
    """Whether a progress bar may be drawn on ``stream``: a terminal, as the kvq command's own bars (a log file or CI gets none)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())
