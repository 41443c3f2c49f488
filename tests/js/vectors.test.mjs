// The JavaScript decoder (kvq/web/kvq.js) against every vector of spec/vectors/: valid ones decode to exactly their
// .raw pixels, invalid ones are refused with the manifest's rule and offset. Run: node --test tests/js/
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import * as kvq from "../../kvq/web/kvq.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const VECTORS = join(REPO, "spec", "vectors");
const MANIFEST = JSON.parse(readFileSync(join(VECTORS, "manifest.json"), "utf8"));
const read = (name) => new Uint8Array(readFileSync(join(VECTORS, name)));
const stem = (entry) => entry.file.split("/").pop().replace(/\.kvq$/, "");

function refusal(fn) {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof kvq.KvqError, `expected a KvqError, got ${err && err.name}: ${err && err.message}`);
    return err;
  }
  assert.fail("decoded without error");
}

for (const entry of MANIFEST.valid) {
  test(`valid vector ${stem(entry)} decodes to its .raw pixels`, () => {
    const data = read(entry.file);
    const expected = read(entry.pixels);
    assert.equal(data.length, entry.size);
    const image = kvq.decode(data);
    assert.deepEqual(
      [image.width, image.height, image.channels, image.k, image.bits, image.coding, image.size],
      [entry.width, entry.height, entry.channels, entry.k, entry.bits, entry.coding, entry.size],
    );
    assert.ok(image.pixels instanceof Uint8Array);
    assert.equal(image.pixels.length, entry.width * entry.height * entry.channels);
    assert.ok(Buffer.from(image.pixels).equals(Buffer.from(expected)), "pixels differ from the .raw file");
    assert.equal(image.palette.length, entry.k * entry.channels);
    assert.equal(image.indices.length, entry.width * entry.height);
    assert.ok(entry.k <= 256 ? image.indices instanceof Uint8Array : image.indices instanceof Uint16Array);
    // The pixels are the palette looked up at the indices (section 7).
    for (let p = 0; p < image.indices.length; p++) {
      for (let c = 0; c < image.channels; c++) {
        if (image.pixels[p * image.channels + c] !== image.palette[image.indices[p] * image.channels + c]) {
          assert.fail(`pixel ${p} channel ${c} is not its palette entry`);
        }
      }
    }
    if (image.ancillary.length === 0 && image.coding === 0) assert.equal(kvq.fixedWidthSize(image), data.length);
  });
}

for (const entry of MANIFEST.invalid) {
  test(`invalid vector ${stem(entry)} is refused by rule ${entry.rule}`, () => {
    const err = refusal(() => kvq.decode(read(entry.file)));
    assert.equal(err.rule, entry.rule, err.message);
    assert.equal(err.offset, entry.offset, err.message);
    assert.match(err.message, new RegExp(`rule ${entry.rule}\\]$`));
    // Coding 2's messages (rules 30 to 40) and rule 12's are written with kvq's words; the older ones have their own.
    if (entry.rule >= 30 || entry.rule === 12) assert.ok(err.message.includes(entry.message), `"${entry.message}" not in: ${err.message}`);
  });
}

test("every rejection rule of section 10 has a vector: 1 to 25, and coding 2's 30 to 40", () => {
  const rules = [...new Set(MANIFEST.invalid.map((e) => e.rule))].sort((a, b) => a - b);
  const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  assert.deepEqual(rules, [...range(1, 27), ...range(30, 40)]);
});

test("every index coding has valid vectors", () => {
  assert.deepEqual([...new Set(MANIFEST.valid.map((e) => e.coding))].sort(), [0, 1, 2]);
});

test("the worked example of section 9: header, palette and indices", () => {
  const image = kvq.decode(read("valid/rgb_3x2_k3.kvq"));
  assert.deepEqual([...image.palette], [255, 0, 0, 0, 255, 0, 0, 0, 255]);
  assert.deepEqual([...image.indices], [0, 1, 2, 2, 0, 1]);
  assert.equal(image.codingName, "fixed-width");
  assert.equal(kvq.crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

test("readHeader needs only the first 38 bytes", () => {
  const data = read("valid/rgba_40x20_k600.kvq");
  const header = kvq.readHeader(data.subarray(0, kvq.HEADER_SIZE));
  assert.deepEqual([header.width, header.height, header.channels, header.k, header.bits], [40, 20, 4, 600, 10]);
  assert.equal(refusal(() => kvq.readHeader(data.subarray(0, 37))).rule, 2);
});

test("the pixel limit is checked from the header (rule 8) and can be turned off", () => {
  const data = read("valid/rgb_31x29_k16.kvq");
  const err = refusal(() => kvq.decode(data, { maxPixels: 31 * 29 - 1 }));
  assert.equal(err.rule, 8);
  assert.equal(err.offset, null);
  assert.equal(kvq.decode(data, { maxPixels: 31 * 29 }).width, 31);
  // With no limit, a 73-byte file claiming 65535 x 65535 pixels is refused by its INDX length, not allocated.
  assert.equal(refusal(() => kvq.decode(read("invalid/too_large.kvq"), { maxPixels: null })).rule, 18);
});

test("a K = 1 header claiming more pixels than memory holds is refused, not allocated", () => {
  // 65535 x 65535 RGBA at K = 1 is a valid 66-byte file with an empty INDX; with no pixel limit it needs 16 GiB.
  const file = kvqFile({ width: 65535, height: 65535, channels: 4, k: 1, palette: [1, 2, 3, 4], indx: [] });
  assert.equal(refusal(() => kvq.decode(file, { maxPixels: null })).rule, 8);
});

test("index codings come from the table keyed by the coding byte; an unknown one is rule 12", () => {
  assert.deepEqual([...kvq.INDEX_CODINGS.keys()], [0, 1, 2]);
  assert.equal(kvq.readHeader(read("valid/entropy_4x2_k3.kvq")).codingName, "entropy-coded");
  assert.equal(kvq.readHeader(read("valid/striped_grey_300x220_k3.kvq")).codingName, "entropy-coded in stripes");
  const data = read("invalid/coding_3.kvq");
  assert.equal(refusal(() => kvq.decode(data)).rule, 12);
  // coding_3.kvq holds fixed-width indices under coding byte 3: a decoder registered under 3 is the one used.
  const fixed = kvq.INDEX_CODINGS.get(0);
  kvq.INDEX_CODINGS.set(3, { ...fixed, name: "registered" });
  try {
    const image = kvq.decode(data);
    assert.equal(image.coding, 3);
    assert.equal(image.codingName, "registered");
  } finally {
    kvq.INDEX_CODINGS.delete(3);
  }
});

test("the worked example of kvq-coding-1.md section E8", () => {
  const data = read("valid/entropy_4x2_k3.kvq");
  const image = kvq.decode(data);
  assert.deepEqual([image.width, image.height, image.k, image.bits, image.coding, image.minor], [4, 2, 3, 2, 1, 1]);
  assert.deepEqual([...image.indices], [0, 0, 1, 1, 0, 2, 2, 1]);
  const indx = chunks(data).find((c) => c.type === "INDX");
  assert.deepEqual([...indx.data], [0x39, 0x2e, 0xf4, 0x4e, 0x0f]);
});

// Coding-1 streams changed below INDX's CRC (re-computed), to reach rules 23 to 25 themselves.
const ENTROPY_VALID = MANIFEST.valid.filter((e) => e.coding === 1);

test("coding 1: an INDX of 0 to 3 bytes is rule 23 at the end of the INDX data", () => {
  for (const entry of ENTROPY_VALID) {
    const data = read(entry.file);
    const indx = chunks(data).find((c) => c.type === "INDX");
    for (let length = 0; length < 4; length++) {
      const err = refusal(() => kvq.decode(withIndx(data, indx.data.subarray(0, length))));
      assert.deepEqual([err.rule, err.offset], [23, indx.dataOffset + length], `${entry.file}, ${length} bytes`);
    }
  }
});

test("coding 1: the stream less its last byte is rule 23; with one more byte, rule 25 at that byte", () => {
  for (const entry of ENTROPY_VALID) {
    const data = read(entry.file);
    const indx = chunks(data).find((c) => c.type === "INDX");
    const n = indx.data.length;
    // The decoder reads the stream to its last byte (section E6): one byte less runs out there.
    const short = refusal(() => kvq.decode(withIndx(data, indx.data.subarray(0, n - 1))));
    assert.deepEqual([short.rule, short.offset], [23, indx.dataOffset + n - 1], entry.file);
    for (const extra of [0x00, 0x5a, 0xff]) {
      const long = refusal(() => kvq.decode(withIndx(data, Uint8Array.of(...indx.data, extra))));
      assert.deepEqual([long.rule, long.offset], [25, indx.dataOffset + n], entry.file);
    }
  }
});

test("coding 1: every change to a stream's bytes decodes to indices below K or is refused by rule 23, 24 or 25", () => {
  const seen = new Set();
  for (const entry of ENTROPY_VALID) {
    const data = read(entry.file);
    const indx = chunks(data).find((c) => c.type === "INDX");
    for (let i = 0; i < Math.min(indx.data.length, 64); i++) {
      for (const delta of [1, 0x10, 0x80, 0xff]) {
        const bytes = indx.data.slice();
        bytes[i] ^= delta;
        let image;
        try {
          image = kvq.decode(withIndx(data, bytes));
        } catch (err) {
          assert.ok(err instanceof kvq.KvqError, `${entry.file} byte ${i}: ${err}`);
          assert.ok([23, 24, 25].includes(err.rule), `${entry.file} byte ${i}: ${err.message}`);
          assert.ok(err.offset >= indx.dataOffset && err.offset <= indx.dataOffset + bytes.length, err.message);
          seen.add(err.rule);
          continue;
        }
        assert.ok(image.indices.every((v) => v < image.k), `${entry.file} byte ${i}: an index not below K`);
        seen.add("decoded");
      }
    }
  }
  // Each outcome happens: the checks are reached, not only the CRC.
  assert.deepEqual([...seen].sort(), [23, 24, 25, "decoded"].sort());
});

test("coding 1: K = 1 codes no decision; its stream is exactly 4 bytes, whatever they hold", () => {
  const base = { width: 300, height: 200, channels: 3, k: 1, palette: [9, 8, 7], coding: 1 };
  const image = kvq.decode(kvqFile({ ...base, indx: [0xde, 0xad, 0xbe, 0xef] }));
  assert.equal(image.indices.length, 60000);
  assert.ok(image.indices.every((v) => v === 0));
  assert.deepEqual([...image.pixels.subarray(-3)], [9, 8, 7]);
  const file = kvqFile({ ...base, indx: [0, 0, 0, 0, 0] });
  const err = refusal(() => kvq.decode(file));
  assert.deepEqual([err.rule, err.offset], [25, chunks(file).find((c) => c.type === "INDX").dataOffset + 4]);
});

test("coding 1: a few bytes claiming millions of pixels are refused from INDX's length (rule 26)", () => {
  // At most 4095/4096 per decision, so each pixel costs a little of the stream: 8 bytes cannot hold 4 million,
  // nor more than 22,711 x 8 pixels; a stream that holds that many runs out (rule 23).
  const file = kvqFile({ width: 2048, height: 2048, channels: 1, k: 2, palette: [0, 255], indx: [0, 0, 0, 0, 0, 0, 0, 0], coding: 1 });
  const err = refusal(() => kvq.decode(file));
  assert.deepEqual([err.rule, err.offset], [26, chunks(file).find((c) => c.type === "INDX").dataOffset - 8]);
  const within = kvqFile({ width: 22711, height: 8, channels: 1, k: 2, palette: [0, 255], indx: [0, 0, 0, 0, 0, 0, 0, 0], coding: 1 });
  assert.equal(refusal(() => kvq.decode(within)).rule, 23);
});

// Coding 2 (kvq-coding-2.md): stripes changed below their CRCs and INDX's (re-computed), to reach rules 32 to 40.
const STRIPED_VALID = MANIFEST.valid.filter((e) => e.coding === 2);

test("coding 2: the worked example of kvq-coding-2.md section S7", () => {
  const data = read("valid/striped_grey_300x220_k3.kvq");
  const image = kvq.decode(data);
  assert.deepEqual([image.width, image.height, image.k, image.bits, image.coding, image.minor], [300, 220, 3, 2, 2, 2]);
  for (let y = 0; y < 220; y++) {
    for (let x = 0; x < 300; x++) {
      const block = (y >= 100 && y < 120 && x >= 100 && x < 200) || (y === 217 && x === 299) || (y === 218 && x < 10);
      const expected = block ? 2 : x < 150 ? 0 : 1;
      if (image.indices[y * 300 + x] !== expected) assert.fail(`index at (${x}, ${y}): ${image.indices[y * 300 + x]}`);
    }
  }
  const { dataOffset, table, streams } = stripes(data);
  assert.equal(dataOffset, 61);
  assert.deepEqual(table, [{ end: 40, crc: 0xdda693e5 }, { end: 50, crc: 0x1b3f76af }]);
  assert.deepEqual(streams.map((b) => b.length), [24, 10]);
  assert.deepEqual(streams.map((b) => kvq.crc32(b)), [0xdda693e5, 0x1b3f76af]);
  assert.deepEqual([...streams[1].subarray(0, 4)], [0xa2, 0xcd, 0x94, 0x59]);
});

test("coding 2: each stripe cut short is rule 37 at its end; lengthened, rule 39 at the first byte not read", () => {
  let checked = 0;
  for (const entry of STRIPED_VALID.filter((e) => e.k > 1)) {
    const data = read(entry.file);
    const { dataOffset, streams } = stripes(data);
    for (let i = 0; i < streams.length; i++) {
      const start = 8 * streams.length + streams.slice(0, i).reduce((n, b) => n + b.length, 0);
      const n = streams[i].length;
      // The decoder reads a stripe to its last byte (§E6): one byte less runs out there; 1 to 3 bytes cannot start.
      for (const length of [1, 2, 3, n - 1]) {
        const cut = streams.map((b, j) => (j === i ? b.subarray(0, length) : b));
        const err = refusal(() => kvq.decode(withStripes(data, cut)));
        assert.deepEqual([err.rule, err.offset], [37, dataOffset + start + length], `${entry.file} stripe ${i}, ${length} bytes`);
      }
      for (const extra of [0x00, 0x5a, 0xff]) {
        const long = streams.map((b, j) => (j === i ? Uint8Array.of(...b, extra) : b));
        const err = refusal(() => kvq.decode(withStripes(data, long)));
        assert.deepEqual([err.rule, err.offset], [39, dataOffset + start + n], `${entry.file} stripe ${i}`);
      }
      checked++;
    }
  }
  assert.ok(checked >= 5);
});

test("coding 2: every change to a stripe's bytes decodes to indices below K or is refused by rule 37, 38, 39 or 40", () => {
  const seen = new Set();
  for (const entry of STRIPED_VALID.filter((e) => e.k > 1)) {
    const data = read(entry.file);
    const { dataOffset, streams } = stripes(data);
    for (let i = 0; i < streams.length; i++) {
      const start = dataOffset + 8 * streams.length + streams.slice(0, i).reduce((n, b) => n + b.length, 0);
      for (let at = 0; at < Math.min(streams[i].length, 48); at++) {
        for (const delta of [1, 0x10, 0x80, 0xff]) {
          const changed = streams.map((b) => b.slice());
          changed[i][at] ^= delta;
          let image;
          try {
            image = kvq.decode(withStripes(data, changed));
          } catch (err) {
            assert.ok(err instanceof kvq.KvqError, `${entry.file} stripe ${i} byte ${at}: ${err}`);
            assert.ok([37, 38, 39, 40].includes(err.rule), `${entry.file} stripe ${i} byte ${at}: ${err.message}`);
            // Within the stripe changed, or at its end.
            assert.ok(err.offset >= start && err.offset <= start + streams[i].length, err.message);
            seen.add(err.rule);
            continue;
          }
          assert.ok(image.indices.every((v) => v < image.k), `${entry.file} stripe ${i} byte ${at}: an index not below K`);
          seen.add("decoded");
        }
      }
    }
  }
  // Each outcome happens but rule 40, which random changes rarely reach (its vector does).
  assert.deepEqual([...seen].sort(), [37, 38, 39, "decoded"].sort());
});

test("coding 2: a changed stripe with its table CRC left as it was is rule 36 at that CRC", () => {
  const data = read("valid/striped_grey_300x220_k3.kvq");
  const { dataOffset, streams } = stripes(data);
  for (let i = 0; i < streams.length; i++) {
    const changed = streams.map((b) => b.slice());
    changed[i][changed[i].length - 1] ^= 1;
    const err = refusal(() => kvq.decode(withStripes(data, changed, { keepCrc: true })));
    assert.deepEqual([err.rule, err.offset], [36, dataOffset + 8 * i + 4]);
  }
});

test("coding 2: rows decode to exactly those rows of the whole image, in every coding", () => {
  for (const entry of MANIFEST.valid) {
    const data = read(entry.file);
    const whole = kvq.decode(data);
    const h = entry.height;
    const stripeRows = Math.max(1, Math.floor(65536 / entry.width));
    const spans = [[0, h], [0, 1], [h - 1, h], [Math.floor(h / 3), Math.ceil((2 * h) / 3)]];
    if (stripeRows < h) spans.push([stripeRows - 1, stripeRows + 1], [stripeRows, h]);
    for (const [y0, y1] of spans) {
      if (!(y0 < y1)) continue;
      const part = kvq.decode(data, { rows: [y0, y1] });
      const rowBytes = entry.width * entry.channels;
      assert.deepEqual(part.rows, [y0, y1]);
      assert.equal(part.height, h, "height is the image's");
      assert.ok(Buffer.from(part.pixels).equals(Buffer.from(whole.pixels.subarray(y0 * rowBytes, y1 * rowBytes))), `${entry.file} rows ${y0}..${y1}`);
      assert.deepEqual([...part.indices], [...whole.indices.subarray(y0 * entry.width, y1 * entry.width)]);
    }
  }
});

test("coding 2: rows read only their stripes, checked by their own CRCs, not INDX's CRC or what follows INDX", () => {
  const data = read("valid/striped_grey_300x220_k3.kvq");
  const { dataOffset, streams } = stripes(data);
  // Stripe 1 broken, INDX's CRC left as it was: the whole file is rule 19; rows of stripe 0 decode.
  const broken = data.slice();
  broken[dataOffset + 16 + streams[0].length] ^= 0xff;
  assert.equal(refusal(() => kvq.decode(broken)).rule, 19);
  const top = kvq.decode(broken, { rows: [0, 218] });
  assert.ok(Buffer.from(top.pixels).equals(Buffer.from(kvq.decode(data).pixels.subarray(0, 218 * 300))));
  for (const rows of [[218, 220], [217, 219], [0, 220]]) {
    const err = refusal(() => kvq.decode(broken, { rows }));
    assert.deepEqual([err.rule, err.offset], [36, dataOffset + 12], String(rows));
  }
  // A byte after INDX (rule 22) and INDX's CRC are a whole decode's to check.
  const longer = Uint8Array.of(...data, 0);
  assert.equal(refusal(() => kvq.decode(longer)).rule, 22);
  assert.equal(kvq.decode(longer, { rows: [100, 120] }).indices[150], 2);
  // INDX's framing must still be there, and the table is checked whole.
  assert.equal(refusal(() => kvq.decode(data.subarray(0, data.length - 5), { rows: [0, 1] })).rule, 2);
  const unsorted = read("invalid/striped_unsorted.kvq");
  assert.equal(refusal(() => kvq.decode(unsorted, { rows: [0, 1] })).rule, 32);
  // Codings 0 and 1 decode and check every row.
  const fixed = read("valid/rgb_31x29_k16.kvq");
  const bad = fixed.slice();
  bad[bad.length - 1] ^= 1;
  assert.equal(refusal(() => kvq.decode(bad, { rows: [0, 1] })).rule, 19);
});

test("rows outside the image or not two integers are a RangeError, not a file's fault", () => {
  const data = read("valid/striped_grey_300x220_k3.kvq");
  for (const rows of [[0, 0], [5, 4], [-1, 3], [0, 221], [0.5, 2], [0], "0,1", [0, "1"]]) {
    assert.throws(() => kvq.decode(data, { rows }), RangeError, JSON.stringify(rows));
  }
});

test("coding 2: a header claiming more pixels than its INDX can hold is refused from INDX's length (rules 30, 31)", () => {
  // 65535 x 65535 with the pixel limit off: one row a stripe, 65,535 stripes; nothing the size of the image is made.
  const base = { width: 65535, height: 65535, channels: 1, k: 2, palette: [0, 255], coding: 2 };
  const table = 8 * 65535;
  for (const [length, rule] of [[table - 1, 30], [table + 1, 31]]) {
    const file = kvqFile({ ...base, indx: new Uint8Array(length) });
    const err = refusal(() => kvq.decode(file, { maxPixels: null }));
    assert.deepEqual([err.rule, err.offset], [rule, chunks(file).find((c) => c.type === "INDX").start]);
  }
  // K = 1: 12 bytes a stripe exactly, and 4 billion pixels of 12 bytes are refused for memory, not allocated.
  const huge = { width: 2 ** 32 - 1, height: 1, channels: 4, k: 1, palette: [1, 2, 3, 4], coding: 2 };
  const flush = Uint8Array.of(0, 0, 0, 12, 0, 0, 0, 0, 1, 2, 3, 4);
  new DataView(flush.buffer).setUint32(4, kvq.crc32(flush, 8));
  assert.equal(refusal(() => kvq.decode(kvqFile({ ...huge, indx: flush }), { maxPixels: null })).rule, 8);
  assert.equal(refusal(() => kvq.decode(kvqFile({ ...huge, indx: flush.subarray(0, 11) }), { maxPixels: null })).rule, 31);
});

test("every single-byte change and every truncation of a small file is refused", () => {
  const files = ["valid/rgb_3x2_k3.kvq", "valid/rgba_13x7_k2.kvq", "valid/grey_1x37_k5.kvq"];
  const striped = ["valid/striped_grey_300x220_k3.kvq", "valid/striped_1x1_k1.kvq", "valid/striped_rgb_64x48_k16.kvq"];
  for (const name of [...files, "valid/entropy_4x2_k3.kvq", "valid/entropy_grey_1x50_k5.kvq", ...striped]) {
    const data = read(name);
    for (let i = 0; i < data.length; i++) {
      for (const delta of [1, 0x80, 0xff]) {
        const bad = data.slice();
        bad[i] ^= delta;
        refusal(() => kvq.decode(bad));
      }
    }
    for (let n = 0; n < data.length; n++) {
      const rule = refusal(() => kvq.decode(data.subarray(0, n))).rule;
      assert.ok(rule === 1 || rule === 2, `prefix of ${n} bytes: rule ${rule}`);
    }
  }
});

test("decode accepts an ArrayBuffer and a DataView", () => {
  const data = read("valid/rgb_3x2_k3.kvq");
  const copy = data.slice().buffer;
  assert.equal(kvq.decode(copy).width, 3);
  assert.equal(kvq.decode(new DataView(copy)).height, 2);
  assert.throws(() => kvq.decode("not bytes"), TypeError);
});

test("bitsFor is ceil(log2 K)", () => {
  const cases = [[1, 0], [2, 1], [3, 2], [4, 2], [5, 3], [129, 8], [256, 8], [257, 9], [32768, 15], [32769, 16], [65536, 16]];
  for (const [k, bits] of cases) assert.equal(kvq.bitsFor(k), bits, `K = ${k}`);
});

// The chunks of a file (section 3): type, start, data and the data's offset.
function chunks(file) {
  const out = [];
  for (let at = kvq.SIGNATURE.length; at < file.length; ) {
    const length = new DataView(file.buffer, file.byteOffset + at).getUint32(0);
    const type = new TextDecoder().decode(file.subarray(at + 4, at + 8));
    out.push({ type, start: at, dataOffset: at + 8, data: file.subarray(at + 8, at + 8 + length) });
    at += 12 + length;
  }
  return out;
}

// The same file with other INDX data (and INDX's CRC computed for it).
function withIndx(file, data) {
  const indx = chunks(file).find((c) => c.type === "INDX");
  const out = new Uint8Array(indx.dataOffset + data.length + 4);
  out.set(file.subarray(0, indx.start));
  const view = new DataView(out.buffer);
  view.setUint32(indx.start, data.length);
  out.set(file.subarray(indx.start + 4, indx.start + 8), indx.start + 4);
  out.set(data, indx.dataOffset);
  view.setUint32(indx.dataOffset + data.length, kvq.crc32(out, indx.start, indx.dataOffset + data.length));
  return out;
}

// Coding 2's INDX (kvq-coding-2.md §S3): its data offset in the file, its table, and each stripe's stream.
function stripes(file) {
  const indx = chunks(file).find((c) => c.type === "INDX");
  const view = new DataView(indx.data.buffer, indx.data.byteOffset, indx.data.byteLength);
  const count = Math.ceil(kvq.readHeader(file).height / Math.max(1, Math.floor(65536 / kvq.readHeader(file).width)));
  const table = [];
  const streams = [];
  for (let i = 0, start = 8 * count; i < count; i++) {
    table.push({ end: view.getUint32(8 * i), crc: view.getUint32(8 * i + 4) });
    streams.push(indx.data.subarray(start, table[i].end));
    start = table[i].end;
  }
  return { dataOffset: indx.dataOffset, table, streams };
}

// The same coding-2 file with other stripe streams: a table made for them (their CRCs too, unless keepCrc).
function withStripes(file, streams, { keepCrc = false } = {}) {
  const old = stripes(file).table;
  const size = 8 * streams.length + streams.reduce((n, b) => n + b.length, 0);
  const data = new Uint8Array(size);
  const view = new DataView(data.buffer);
  for (let i = 0, at = 8 * streams.length; i < streams.length; i++) {
    data.set(streams[i], at);
    at += streams[i].length;
    view.setUint32(8 * i, at);
    view.setUint32(8 * i + 4, keepCrc ? old[i].crc : kvq.crc32(streams[i]));
  }
  return withIndx(file, data);
}

// A minimal writer for hand-made files, following sections 3 to 6.
function kvqFile({ width, height, channels, k, palette, indx, coding = 0 }) {
  const chunk = (type, data) => {
    const out = new Uint8Array(12 + data.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    view.setUint32(8 + data.length, kvq.crc32(out, 0, 8 + data.length));
    return out;
  };
  const head = new Uint8Array(18);
  const view = new DataView(head.buffer);
  head[0] = 1;
  head[1] = coding; // the minor version that brought the coding
  view.setUint32(2, width);
  view.setUint32(6, height);
  head[10] = channels;
  head[11] = kvq.bitsFor(k);
  head[12] = coding;
  view.setUint32(14, k);
  const parts = [kvq.SIGNATURE, chunk("HEAD", head), chunk("PLTE", Uint8Array.from(palette)), chunk("INDX", Uint8Array.from(indx))];
  const file = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    file.set(part, at);
    at += part.length;
  }
  return file;
}
