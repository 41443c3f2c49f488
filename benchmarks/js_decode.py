"""kvq.js, the JavaScript decoder, on coding 1 and coding 2 files of the same pixels: decode time and a band of rows.

Usage (from the repository root; needs Node.js)::

    PYTHONPATH=. python benchmarks/js_decode.py [--kodak ../shared/kodak] [--ks 16,64,256] [--repeat 5]
        [--out benchmarks/results/js_decode.md]

For every photo and K, kvq quantizes once and the same palette and indices are stored as coding 1
(``coding="entropy"``) and coding 2 (``coding="striped"``). One Node process (the one a page's decode would run in:
kvq.js has no threads, so coding 2's stripes decode one after another) then decodes each file ``--repeat`` times,
the two codings interleaved, and the 100-row band of the middle of the photo from the coding-2 file with
``decode(bytes, {rows: [y, y + 100]})``, which decodes only the stripes that hold it. Reported per K: ns per pixel
(best of ``--repeat`` per photo, averaged over the photos; ``performance.now()``), coding 2 over coding 1, and the
band's time over the whole coding-2 decode. Every decode is checked against ``kvq.decode``'s pixels first.

Timings on a shared machine are noisy: the ratios come from one run, each photo's two codings interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
from PIL import Image

import kvq

DEFAULT_KODAK = "../shared/kodak"
DEFAULT_OUT = "benchmarks/results/js_decode.md"
BAND = 100

# Run by Node with the folder of files as its argument: for each case, both codings interleaved, best of `repeat`.
NODE_SCRIPT = r"""
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
const [dir, kvqPath] = process.argv.slice(1);
const kvq = await import(pathToFileURL(kvqPath));
const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
const out = [];
for (const c of manifest.cases) {
  const files = { c1: readFileSync(join(dir, c.c1)), c2: readFileSync(join(dir, c.c2)) };
  const expected = readFileSync(join(dir, c.pixels));
  const rowBytes = c.width * c.channels;
  for (const key of ["c1", "c2"]) {
    if (!Buffer.from(kvq.decode(files[key]).pixels).equals(expected)) throw new Error(`${c.c1}: ${key} differs`);
  }
  const band = kvq.decode(files.c2, { rows: [c.y, c.y + c.band] }).pixels;
  if (!Buffer.from(band).equals(expected.subarray(c.y * rowBytes, (c.y + c.band) * rowBytes))) throw new Error(`${c.c2}: band differs`);
  const best = { c1: Infinity, c2: Infinity, band: Infinity };
  for (let r = 0; r < manifest.repeat; r++) {
    for (const key of ["c1", "c2", "band"]) {
      const t0 = performance.now();
      if (key === "band") kvq.decode(files.c2, { rows: [c.y, c.y + c.band] });
      else kvq.decode(files[key]);
      best[key] = Math.min(best[key], performance.now() - t0);
    }
  }
  out.push({ ...c, ms: best });
}
console.log(JSON.stringify(out));
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kodak", default=DEFAULT_KODAK)
    parser.add_argument("--ks", default="16,64,256")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        raise SystemExit("js_decode.py needs Node.js")
    ks = [int(k) for k in args.ks.split(",")]
    photos = sorted(Path(args.kodak).glob("*.png"))
    if not photos:
        raise SystemExit(f"no PNG files in {args.kodak}")
    with tempfile.TemporaryDirectory(prefix="kvq-js-decode-") as folder:
        cases = []
        sizes: dict[int, list[tuple[int, int]]] = {k: [] for k in ks}
        for photo in photos:
            with Image.open(photo) as image:
                pixels = np.asarray(image.convert("RGB"))
            for k in ks:
                encoded = kvq.encode_image(pixels, kvq.EncoderOptions(k=k, coding="fixed"))
                palette, indices = encoded.palette, encoded.indices
                files = {name: kvq.encode_indexed(palette=palette, indices=indices, coding=name) for name in ("entropy", "striped")}
                assert [kvq.read_header(files[n]).coding for n in ("entropy", "striped")] == [1, 2]
                stem = f"{photo.stem}-k{k}"
                for name, data in files.items():
                    (Path(folder) / f"{stem}-{name}.kvq").write_bytes(data)
                (Path(folder) / f"{stem}.raw").write_bytes(kvq.decode(files["entropy"]).tobytes())
                sizes[k].append((len(files["entropy"]), len(files["striped"])))
                h, w = pixels.shape[:2]
                cases.append({
                    "photo": photo.name, "k": k, "width": w, "height": h, "channels": 3, "y": (h - BAND) // 2, "band": BAND,
                    "c1": f"{stem}-entropy.kvq", "c2": f"{stem}-striped.kvq", "pixels": f"{stem}.raw",
                })  # fmt: skip
        (Path(folder) / "manifest.json").write_text(json.dumps({"cases": cases, "repeat": args.repeat}))
        result = subprocess.run(
            [node, "--input-type=module", "-e", NODE_SCRIPT, folder, str(ROOT / "kvq" / "web" / "kvq.js")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
        load = os.getloadavg()[0]
    rows = json.loads(result.stdout)
    lines = [
        "# kvq.js on coding 1 and coding 2 files of the same pixels",
        "",
        f"`PYTHONPATH=. python benchmarks/js_decode.py --repeat {args.repeat}`: {len(photos)} Kodak photos "
        f"({rows[0]['width']} x {rows[0]['height']} or turned), Node {version}, {platform.machine()}, "
        f"Python {platform.python_version()}, kvq {kvq.__version__}, {os.cpu_count()} cores, load average {load:.1f} when "
        "the decodes ended. One thread (kvq.js decodes stripes one after another). Best of the repeats per photo, the "
        "codings interleaved; means over the photos. On a shared machine the ratios, from one run, are the figures to "
        "read.",
        "",
        "| K | coding 1 bytes | coding 2 bytes | coding 1 ns/pixel | coding 2 ns/pixel | coding 2 / coding 1 time "
        f"| {BAND}-row band, ms | band / whole coding 2 |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for k in ks:
        chosen = [r for r in rows if r["k"] == k]
        n = [r["width"] * r["height"] for r in chosen]
        c1 = np.mean([r["ms"]["c1"] * 1e6 / p for r, p in zip(chosen, n, strict=True)])
        c2 = np.mean([r["ms"]["c2"] * 1e6 / p for r, p in zip(chosen, n, strict=True)])
        ratio = np.mean([r["ms"]["c2"] / r["ms"]["c1"] for r in chosen])
        band = np.mean([r["ms"]["band"] for r in chosen])
        share = np.mean([r["ms"]["band"] / r["ms"]["c2"] for r in chosen])
        b1, b2 = (np.mean([s[i] for s in sizes[k]]) for i in (0, 1))
        lines.append(f"| {k} | {b1:,.0f} | {b2:,.0f} | {c1:.1f} | {c2:.1f} | {ratio:.3f} | {band:.1f} | {share:.3f} |")
    lines += [
        "",
        f"The middle {BAND}-row band of each photo lies in 2 stripes: 170 of 512 rows decoded when it is 768 pixels wide "
        "(stripes of 85 rows), 256 of 768 when it is 512 wide (stripes of 128 rows).",
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
