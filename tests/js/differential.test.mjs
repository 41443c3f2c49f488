// The JavaScript decoder against kvq's Python decoder on encoder output: photos, grey, RGBA, K from 1 to 65,536,
// wide and tall, in every index coding the Python encoder can write (coding 2 in one stripe and in several). tests/test_js.py writes the files (with kvq.encode) and the pixels
// and indices kvq.decode returns for them into a folder named by KVQ_DIFF_DIR, then runs this file.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import * as kvq from "../../kvq/web/kvq.js";

const DIR = process.env.KVQ_DIFF_DIR;
const manifest = DIR ? JSON.parse(readFileSync(join(DIR, "manifest.json"), "utf8")) : { cases: [], mutated: [] };
const cases = manifest.cases;
const read = (name) => new Uint8Array(readFileSync(join(DIR, name)));

test("differential cases were written", { skip: DIR ? false : "KVQ_DIFF_DIR is not set: run pytest tests/test_js.py" }, () => {
  assert.ok(cases.length > 0);
});

for (const c of cases) {
  test(`${c.name}: the same pixels and indices as kvq.decode`, () => {
    const data = read(c.file);
    const image = kvq.decode(data);
    assert.deepEqual(
      [image.width, image.height, image.channels, image.k, image.bits, image.coding, image.size],
      [c.width, c.height, c.channels, c.k, c.bits, c.coding, data.length],
    );
    assert.ok(Buffer.from(image.pixels).equals(Buffer.from(read(c.pixels))), "pixels differ from kvq.decode");
    // Indices as little-endian u16, whatever K: compare value by value.
    const raw = read(c.indices);
    assert.equal(image.indices.length * 2, raw.length);
    for (let p = 0; p < image.indices.length; p++) {
      const expected = raw[2 * p] | (raw[2 * p + 1] << 8);
      if (image.indices[p] !== expected) assert.fail(`index of pixel ${p}: ${image.indices[p]}, kvq.decode: ${expected}`);
    }
    if (c.coding === 0) assert.equal(kvq.fixedWidthSize(image), data.length);
    // A band of rows, as kvq.decode(rows=) gives it (coding 2 decodes only the stripes that hold it).
    const band = kvq.decode(data, { rows: c.rows });
    assert.ok(Buffer.from(band.pixels).equals(Buffer.from(read(c.band))), `rows ${c.rows} differ from kvq.decode(rows=)`);
  });
}

// Coding-1 streams with bytes changed, cut or added, and coding-2 stripes and stripe tables likewise (INDX's CRC, and
// the stripes' CRCs where a stripe changed, made to match): kvq.decode either decodes them, and so must this decoder,
// to the same pixels, or refuses them by a rule (23 to 25 for coding 1, 32 to 40 for coding 2; tests/test_js.py
// reads it from kvq's message) at an offset this decoder must report too.
// Each is also decoded from its first row alone, as kvq.decode(rows=(0, 1)) does: a coding-2 file then reads stripe 0
// alone, and decodes when only a later stripe is broken.
function sameOutcome(data, options, expected, what) {
  let image;
  try {
    image = kvq.decode(data, options);
  } catch (err) {
    assert.ok(err instanceof kvq.KvqError, String(err));
    assert.ok(expected.error !== undefined, `${what}: refused, kvq.decode decodes it: ${err.message}`);
    assert.equal(err.rule, expected.rule, `${what}: kvq.decode raised ${expected.error}: ${expected.message}; this decoder: ${err.message}`);
    assert.equal(err.offset, expected.offset, `${what}: ${err.message}`);
    return;
  }
  assert.equal(expected.error, undefined, `${what}: decoded, kvq.decode raised ${expected.error} at byte ${expected.offset}`);
  assert.ok(Buffer.from(image.pixels).equals(Buffer.from(read(expected.pixels))), `${what}: pixels differ from kvq.decode`);
}

for (const m of manifest.mutated ?? []) {
  test(`${m.name}: the same outcome as kvq.decode`, () => {
    const data = read(m.file);
    sameOutcome(data, {}, m, "whole");
    sameOutcome(data, { rows: [0, 1] }, m.first_row, "first row");
  });
}
