// kvq.js: a decoder for the .kvq image format, version 1.2 (spec/kvq-v1.md), every
// index coding: 0, fixed width, 1, entropy coded (spec/kvq-coding-1.md), and 2,
// entropy coded in stripes (spec/kvq-coding-2.md).
//
// Written from the spec alone, as a second implementation that proves it: it
// shares no code with the Python package. An ES module with no dependencies;
// it runs in every current browser and in Node.
//
//   import { decode } from "./kvq.js";
//   const image = decode(bytes);   // bytes: a Uint8Array holding the whole file
//   image.width, image.height, image.channels, image.k, image.palette,
//   image.indices, image.pixels    // pixels: width * height * channels bytes
//   decode(bytes, { rows: [y0, y1] }).pixels   // rows y0 to y1 - 1 only: a
//                                  // coding-2 file decodes only their stripes
//
// A file that breaks the spec throws a KvqError whose `rule` is the number of
// the rule it breaks (section 10 of the spec) and whose `offset` is the byte
// the spec's table names (null for rule 8), as kvq's Python decoder reports.

/** The 8 bytes every .kvq file starts with (section 2). */
export const SIGNATURE = Uint8Array.of(0x89, 0x4b, 0x56, 0x51, 0x0d, 0x0a, 0x1a, 0x0a);

/** Signature and the framing of HEAD, PLTE and INDX: bytes in every file beyond palette and indices (section 8). */
export const OVERHEAD = 62;

/** Bytes a reader needs to know an image's size, channels and palette size (section 4). */
export const HEADER_SIZE = 38;

/** The default pixel limit (section 11): where Pillow refuses a decompression bomb. */
export const DEFAULT_MAX_PIXELS = 178956970;

/** Largest palette the format holds. */
export const MAX_K = 65536;

/** A file the decoder refuses: `rule` is the spec's rule number (section 10), `offset` the byte it names or null. */
export class KvqError extends Error {
  constructor(rule, message, offset = null) {
    super(`${message}${offset === null ? "" : ` (at byte ${offset})`} [kvq spec rule ${rule}]`);
    this.name = "KvqError";
    this.rule = rule;
    this.offset = offset;
  }
}

function reject(rule, message, offset = null) {
  throw new KvqError(rule, message, offset);
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let i = 0; i < 8; i++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * CRC-32 of ISO-HDLC (zlib's, PNG's) over bytes[start, end).
 * @param {Uint8Array} bytes
 * @param {number} [start]
 * @param {number} [end]
 * @returns {number} unsigned 32-bit
 */
export function crc32(bytes, start = 0, end = bytes.length) {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function u32(bytes, offset) {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0;
}

/** ceil(log2 k): bits per index for a palette of k entries, 0 for k = 1. */
export function bitsFor(k) {
  return k <= 1 ? 0 : 32 - Math.clz32(k - 1);
}

function isLetter(b) {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

function typeName(bytes, offset) {
  let s = "";
  for (let i = 0; i < 4; i++) {
    const b = bytes[offset + i];
    s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return s;
}

function asBytes(bytes) {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new TypeError("decode() takes a Uint8Array or an ArrayBuffer");
}

// ---------------------------------------------------------------------------
// Index codings, keyed by HEAD's coding byte (offset 28). Each one is
//   name:         what `kvq info` and the page call it
//   checkLength:  (length, header, chunkStart) => nothing, or throws: the
//                 rules on INDX's length alone (18 for coding 0, 30 and 31 for
//                 coding 2), checked before INDX's data is read
//   partial:      true when decode reads only the rows it is asked for and
//                 checks them by CRCs of its own, so that INDX's CRC and the
//                 file's end need not be checked for a partial decode
//   decode:       (data, header, dataOffset, rows) => indices, one per pixel
//                 of rows [y0, y1) (every row when rows is null): Uint8Array
//                 when K <= 256, else Uint16Array. data is INDX's data,
//                 dataOffset its offset in the file (for error offsets).
// A coding byte missing from this table is refused by rule 12.
// ---------------------------------------------------------------------------

/** Coding 0, fixed-width packing (section 6): the INDX length implied by the header. */
function fixedWidthLength(header) {
  const bitCount = BigInt(header.width) * BigInt(header.height) * BigInt(header.bits);
  return (bitCount + 7n) / 8n;
}

/** Coding 0, fixed-width packing (section 6): `bits` bits per index, MSB first, no row padding. */
function decodeFixedWidth(data, header, dataOffset) {
  const { bits, k } = header;
  const n = header.width * header.height;
  const indices = k <= 256 ? new Uint8Array(n) : new Uint16Array(n);
  if (bits === 0) return indices; // K = 1: every pixel is entry 0, INDX is empty
  const pad = data.length * 8 - n * bits; // 0..7 once the length has been checked
  if (pad > 0 && (data[data.length - 1] & ((1 << pad) - 1)) !== 0) {
    reject(20, "padding bit after the last index is 1", dataOffset + data.length - 1);
  }
  if (bits === 8) {
    indices.set(data.subarray(0, n));
  } else if (bits === 16) {
    for (let p = 0, i = 0; p < n; p++, i += 2) indices[p] = (data[i] << 8) | data[i + 1];
  } else {
    // A bit accumulator: at most bits - 1 + 8 <= 23 bits are held at once.
    const mask = (1 << bits) - 1;
    let acc = 0;
    let held = 0;
    let p = 0;
    for (let i = 0; p < n; i++) {
      acc = (acc << 8) | data[i];
      held += 8;
      while (held >= bits && p < n) {
        held -= bits;
        indices[p++] = (acc >>> held) & mask;
      }
      acc &= (1 << held) - 1;
    }
  }
  if (k < 1 << bits) {
    // Only a palette whose size is not a power of 2 leaves room for a bad index.
    for (let p = 0; p < n; p++) {
      if (indices[p] >= k) {
        reject(21, `index ${indices[p]} of pixel ${p} is not less than K = ${k}`, dataOffset + Math.floor((p * bits) / 8));
      }
    }
  }
  return indices;
}

// ---------------------------------------------------------------------------
// Coding 1, entropy coded (spec/kvq-coding-1.md, format 1.1): a binary
// arithmetic coder driven by three hashed adaptive counters mixed in the
// logistic domain. Section numbers E1 to E9 below are that document's.
//
// Everything is exact integer arithmetic in doubles or int32: the coder's
// x1, x2, x are unsigned 32-bit values held as non-negative doubles; the mixer
// dot product can reach about 2^37 and is floored by division, never by `>>`.
// ---------------------------------------------------------------------------

const HASH_MULTIPLIER = 0x9e3779b1;
const SEED_MATCH = 0x6a09e667;
const SEED_LITERAL = 0xbb67ae85;
const COUNTER_LIMIT = 30;
const WEIGHT_INIT = 22000;
const LEARNING_RATE = 6;
const BIAS_INPUT = 256;
// Rule 26: ceil(8 / log2(4096 / 4095)), the most decisions one byte of stream holds (kvq-coding-1.md §E7).
const DECISIONS_PER_BYTE = 22711;
// Rule 27: the work limit, WORK_PER_PIXEL × N + WORK_PER_BYTE × L decisions (kvq-coding-1.md §E7).
const WORK_PER_PIXEL = 4;
const WORK_PER_BYTE = 64;
const WEIGHT_LIMIT = 1 << 24;
const N_WEIGHT_SETS = 20;
const SQUASH_KNOTS = [
  1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047,
  2549, 2994, 3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094,
];

/** squash(d) of §E2 for d = -2047..2047 (`>>` and `&` on small ints are the spec's floor and two's complement). */
function squashOf(d) {
  const i = (d >> 7) + 16;
  const w = d & 127;
  return (SQUASH_KNOTS[i] * (128 - w) + SQUASH_KNOTS[i + 1] * w + 64) >> 7;
}

// Tables built once at load, in the order §E2 gives: squash as a lookup by
// d + 2047, its inverse STRETCH by 12-bit probability, RATE by update count.
const SQUASH = (() => {
  const table = new Int32Array(4095);
  for (let d = -2047; d <= 2047; d++) table[d + 2047] = squashOf(d);
  return table;
})();

const STRETCH = (() => {
  const table = new Int32Array(4096);
  let pi = 0;
  for (let x = -2047; x <= 2047; x++) {
    const v = SQUASH[x + 2047];
    for (let j = pi; j <= v; j++) table[j] = x;
    pi = Math.max(pi, v + 1);
  }
  for (let j = pi; j <= 4095; j++) table[j] = 2047;
  return table;
})();

const RATE = (() => {
  const table = new Int32Array(COUNTER_LIMIT + 1);
  for (let n = 0; n <= COUNTER_LIMIT; n++) table[n] = Math.floor(65536 / (n + 2));
  return table;
})();

/** hb of §E2: log2 of each context table's size, from N = width x height. */
function tableBits(n) {
  let length = 0; // bitlength(n), by halving: n may exceed 2^32 when the pixel limit is off
  for (let t = n; t >= 1; t = Math.floor(t / 2)) length++;
  return Math.min(18, Math.max(12, length + 1));
}

/** Coding 1 (kvq-coding-1.md §E3 to §E6): decode the indices; rules 23 to 25. */
function decodeEntropy(data, header, dataOffset) {
  const { width, height, k, bits } = header;
  const n = width * height;
  const end = data.length;
  if (end < 4) reject(23, `entropy-coded indices end early: INDX holds ${end} bytes, the coder starts with 4`, dataOffset + end);
  // K = 1 codes no decision (§E5): the stream is the 4 flush bytes alone, known from the length before anything
  // proportional to the image is allocated.
  if (k === 1 && end !== 4) reject(25, `${end - 4} bytes after the last entropy-coded index`, dataOffset + 4);
  // Rule 26 (§E7): with K >= 2 every pixel takes a decision, and one byte holds at most 22,711 of them.
  if (k >= 2 && n > DECISIONS_PER_BYTE * end) {
    reject(26, `INDX holds ${end} bytes, too few for ${n} pixels (at most ${DECISIONS_PER_BYTE} a byte)`, dataOffset - 8);
  }
  const indices = k <= 256 ? new Uint8Array(n) : new Uint16Array(n);
  if (k === 1) return indices;
  decodeStream(data, dataOffset, width, height, k, bits, indices, 0, new Int32Array(3 * 2 ** tableBits(n)), Infinity, null);
  return indices;
}

/**
 * One coding-1 stream (§E3 to §E6) of a `width` x `height` image, its first 4 bytes already known to be there and
 * K >= 2: its indices go to indices[outStart ..]. `counters` holds at least 3 x 2^hb entries (filled here). A stream of
 * coding 2 is one stripe (kvq-coding-2.md §S4): `stripe` is its number, and its rules 37 to 40 replace coding 1's
 * 23 to 25; `maxDecisions` is its work limit (Infinity for coding 1). `dataOffset` is the stream's file offset.
 */
function decodeStream(data, dataOffset, width, height, k, bits, indices, outStart, counters, maxDecisions, stripe) {
  const end = data.length;
  const striped = stripe !== null;
  const early = striped ? 37 : 23;
  const where = striped ? ` of stripe ${stripe}` : "";
  const n = width * height;
  const hb = tableBits(n);
  const size = 2 ** hb;
  const matchShift = 34 - hb;
  const literalShift = 32 - hb;
  const literalBits = bits < 8 ? bits : 8;
  const top = 2 ** bits;

  // §E3: the decoder state. A counter is prob * 32 + n (below 2^21); W[4s .. 4s + 3] is weight set s.
  const T = counters;
  T.fill(32768 * 32, 0, 3 * size);
  const W = new Int32Array(4 * N_WEIGHT_SETS);
  for (let s = 0; s < N_WEIGHT_SETS; s++) W.fill(WEIGHT_INIT, 4 * s, 4 * s + 3);
  let x1 = 0;
  let x2 = 0xffffffff;
  let x = u32(data, 0);
  let pos = 4;
  // §E5: outcome rows; 4 is "coded as a literal", and stands for "no pixel" before the first row.
  let above = new Uint8Array(width).fill(4);
  let row = new Uint8Array(width).fill(4);
  // Rule 27 (§E7): at most WORK_PER_PIXEL decisions a pixel and WORK_PER_BYTE a byte of stream, counted after each pixel.
  const workLimit = striped ? Infinity : WORK_PER_PIXEL * n + WORK_PER_BYTE * end;
  let decisions = 0;
  const last = outStart + width * height;
  for (let y = 0, p = outStart; p < last; y++) {
    for (let xx = 0; xx < width; xx++, p++) {
      let L, U, UL, UR;
      if (y === 0) {
        L = xx > 0 ? indices[p - 1] : 0;
        U = L;
        UL = L;
        UR = L;
      } else {
        U = indices[p - width];
        if (xx > 0) {
          L = indices[p - 1];
          UL = indices[p - width - 1];
        } else {
          L = U;
          UL = U;
        }
        UR = xx + 1 < width ? indices[p - width + 1] : U;
      }
      const pattern =
        (L === U ? 1 : 0) | (L === UL ? 2 : 0) | (L === UR ? 4 : 0) | (U === UL ? 8 : 0) | (U === UR ? 16 : 0) | (UL === UR ? 32 : 0);
      // The distinct neighbours in the order L, U, UR, UL, in four variables: no array per pixel.
      const cand0 = L;
      let cand1 = 0;
      let cand2 = 0;
      let cand3 = 0;
      let nc = 1;
      if (U !== L) {
        cand1 = U;
        nc = 2;
      }
      if (UR !== L && UR !== U) {
        if (nc === 1) cand1 = UR;
        else cand2 = UR;
        nc++;
      }
      if (UL !== L && UL !== U && UL !== UR) {
        if (nc === 1) cand1 = UL;
        else if (nc === 2) cand2 = UL;
        else cand3 = UL;
        nc++;
      }
      const ctx = (pattern * 5 + (xx > 0 ? row[xx - 1] : 4)) * 5 + above[xx];
      const h0 = Math.imul(SEED_MATCH ^ ctx, HASH_MULTIPLIER) >>> 0;
      const h1 = Math.imul(Math.imul(h0 ^ U, HASH_MULTIPLIER) ^ L, HASH_MULTIPLIER) >>> 0;
      const h2 = Math.imul(h1 ^ UR, HASH_MULTIPLIER) >>> 0;
      const b0 = (h0 >>> matchShift) * 4;
      const b1 = size + (h1 >>> matchShift) * 4;
      const b2 = 2 * size + (h2 >>> matchShift) * 4;

      // The pixel's decisions: match i = 0 .. nc - 1 (depth < 0), then the literal's
      // bits (depth = 0 .. bits - 1). One loop with one decision site, so that the
      // coder state stays in local variables (a helper function would keep it in
      // a closure: about a third slower on photos).
      let outcome = 4;
      let value = 0;
      let i = 0;
      let depth = -1;
      let node = 1;
      let g0 = 0;
      let g1 = 0;
      let g2 = 0;
      let l0 = 0;
      let l1 = 0;
      let l2 = 0;
      for (;;) {
        let s, c0, c1, c2;
        if (depth < 0) {
          if (i === nc - 1 && nc === k) {
            outcome = i; // every palette entry is a candidate: the last one needs no decision
            break;
          }
          if (i < nc) {
            s = i;
            c0 = b0 + i;
            c1 = b1 + i;
            c2 = b2 + i;
          } else {
            depth = 0; // no match: the literal follows (bits >= 1 here, since K >= 2)
            g0 = Math.imul(SEED_LITERAL ^ U, HASH_MULTIPLIER) >>> 0;
            g1 = Math.imul(g0 ^ L, HASH_MULTIPLIER) >>> 0;
            g2 = Math.imul(g1 ^ UR, HASH_MULTIPLIER) >>> 0;
            l0 = (g0 >>> (literalShift + literalBits)) << literalBits;
            l1 = size + ((g1 >>> (literalShift + literalBits)) << literalBits);
            l2 = 2 * size + ((g2 >>> (literalShift + literalBits)) << literalBits);
          }
        }
        if (depth >= 0) {
          if (depth === bits) {
            value = node - top;
            if (value >= k) {
              reject(striped ? 38 : 24, `literal index ${value} of pixel ${p - outStart}${where} is not below K = ${k}`, dataOffset + pos);
            }
            break;
          }
          s = 4 + depth;
          if (node < 256) {
            c0 = l0 + node;
            c1 = l1 + node;
            c2 = l2 + node;
          } else {
            c0 = Math.imul(g0 ^ node, HASH_MULTIPLIER) >>> literalShift;
            c1 = size + (Math.imul(g1 ^ node, HASH_MULTIPLIER) >>> literalShift);
            c2 = 2 * size + (Math.imul(g2 ^ node, HASH_MULTIPLIER) >>> literalShift);
          }
        }

        // §E4: one decision with weight set s and counters T[c0], T[c1], T[c2]; coding 2 counts them (§S4).
        if (decisions === maxDecisions) {
          reject(40, `stripe ${stripe} needs more than ${count3(maxDecisions)} decisions (its work limit, §S4)`, dataOffset + pos);
        }
        decisions++;
        const t0 = T[c0];
        const t1 = T[c1];
        const t2 = T[c2];
        const st0 = STRETCH[t0 >> 9];
        const st1 = STRETCH[t1 >> 9];
        const st2 = STRETCH[t2 >> 9];
        const w = 4 * s;
        // Up to about 2^37 in magnitude: exact in a double, and floored by division, not `>>`.
        const dot = Math.floor((W[w] * st0 + W[w + 1] * st1 + W[w + 2] * st2 + W[w + 3] * BIAS_INPUT) / 65536);
        let q = SQUASH[(dot < -2047 ? -2047 : dot > 2047 ? 2047 : dot) + 2047];
        if (q < 1) q = 1;
        else if (q > 4095) q = 4095;
        // x1, x2, x are unsigned 32-bit values held as doubles; xmid < x2 < 2^32.
        const xmid = x1 + ((x2 - x1) >>> 12) * q;
        let bit;
        if (x <= xmid) {
          bit = 1;
          x2 = xmid;
        } else {
          bit = 0;
          x1 = xmid + 1;
        }
        while (((x1 ^ x2) >>> 24) === 0) {
          if (pos === end) {
            reject(early, striped ? `stripe ${stripe} ends early: the coder needs a byte after its last` : "entropy-coded indices end early: the coder needs a byte after the last", dataOffset + end);
          }
          x1 = (x1 << 8) >>> 0;
          x2 = ((x2 << 8) | 255) >>> 0;
          x = ((x << 8) | data[pos++]) >>> 0;
        }
        // |st x err| <= 2047 x 24570 < 2^31: int32 arithmetic and `>>` are exact here.
        const err = ((bit << 12) - q) * LEARNING_RATE;
        let v = W[w] + ((st0 * err + 0x8000) >> 16);
        W[w] = v < -WEIGHT_LIMIT ? -WEIGHT_LIMIT : v > WEIGHT_LIMIT ? WEIGHT_LIMIT : v;
        v = W[w + 1] + ((st1 * err + 0x8000) >> 16);
        W[w + 1] = v < -WEIGHT_LIMIT ? -WEIGHT_LIMIT : v > WEIGHT_LIMIT ? WEIGHT_LIMIT : v;
        v = W[w + 2] + ((st2 * err + 0x8000) >> 16);
        W[w + 2] = v < -WEIGHT_LIMIT ? -WEIGHT_LIMIT : v > WEIGHT_LIMIT ? WEIGHT_LIMIT : v;
        v = W[w + 3] + ((BIAS_INPUT * err + 0x8000) >> 16);
        W[w + 3] = v < -WEIGHT_LIMIT ? -WEIGHT_LIMIT : v > WEIGHT_LIMIT ? WEIGHT_LIMIT : v;
        T[c0] = updateCounter(t0, bit);
        T[c1] = updateCounter(t1, bit);
        T[c2] = updateCounter(t2, bit);

        if (depth < 0) {
          if (bit === 1) {
            outcome = i;
            break;
          }
          i++;
        } else {
          node = node * 2 + bit;
          depth++;
        }
      }
      if (outcome === 0) value = cand0;
      else if (outcome === 1) value = cand1;
      else if (outcome === 2) value = cand2;
      else if (outcome === 3) value = cand3;
      indices[p] = value;
      row[xx] = outcome;
      if (decisions > workLimit) {
        reject(27, `entropy-coded indices take more than ${workLimit} decisions by pixel ${p} of ${n}, the work limit`, dataOffset + pos);
      }
    }
    const done = row;
    row = above;
    above = done;
  }
  // §E6: the 4 flush bytes are the last the decoder reads; nothing may follow them.
  if (pos !== end) {
    reject(striped ? 39 : 25, `${end - pos} bytes after the last ${striped ? `index of stripe ${stripe}` : "entropy-coded index"}`, dataOffset + pos);
  }
}

/** A counter after one decision (§E4): prob moves toward the bit at RATE[n]; n counts updates up to COUNTER_LIMIT. */
function updateCounter(counter, bit) {
  let prob = counter >> 5;
  const n = counter & 31;
  // (65536 - prob) x RATE[n] can reach 2^31: an unsigned shift.
  if (bit) prob += ((65536 - prob) * RATE[n]) >>> 16;
  else prob -= (prob * RATE[n]) >>> 16;
  return prob * 32 + (n < COUNTER_LIMIT ? n + 1 : COUNTER_LIMIT);
}

// ---------------------------------------------------------------------------
// Coding 2, entropy coded in stripes (spec/kvq-coding-2.md, format 1.2):
// the image cut into stripes of whole rows, each a coding-1 stream of its own,
// after a table of each stream's end offset and CRC-32. Section numbers S1 to
// S9 below are that document's.
// ---------------------------------------------------------------------------

/** A count with thousands separators, as kvq's messages write it. */
const count3 = (n) => n.toLocaleString("en-US");

const STRIPE_PIXELS = 65536;
const ENTRY_SIZE = 8;
const PIXELS_PER_BYTE = 65536;
// Rule 40: a stripe's own work limit (kvq-coding-2.md §S4).
const STRIPE_WORK_PER_PIXEL = 2;
const STRIPE_WORK_PER_BYTE = 64;

/**
 * Rows per stripe and the number of stripes of a coding-2 image (kvq-coding-2.md §S2).
 * @param {{width:number, height:number}} header
 * @returns {{rows:number, count:number}}  h = max(1, 65536 // width), S = ceil(height / h)
 */
export function stripeGeometry(header) {
  const rows = Math.max(1, Math.floor(STRIPE_PIXELS / header.width));
  return { rows, count: Math.ceil(header.height / rows) };
}

/**
 * Rules 30 and 31 (§S5), from INDX's length alone: checked where coding 0 checks rule 18, before INDX's data is read.
 * W x H may pass 2^53 with no pixel limit; it is then far above 65536 x len (len < 2^32), so the comparison in
 * doubles still decides rightly.
 */
function checkStripedLength(length, header, chunkStart) {
  const { count } = stripeGeometry(header);
  const table = ENTRY_SIZE * count;
  if (length < table) reject(30, `INDX holds ${length} bytes, too few for the table of its ${count} stripes`, chunkStart);
  if (header.k === 1) {
    if (length !== 12 * count) reject(31, `INDX holds ${length} bytes; with K = 1 its ${count} stripes take exactly ${12 * count}`, chunkStart);
  } else if (header.width * header.height > PIXELS_PER_BYTE * (length - table)) {
    reject(31, `INDX holds ${count3(length)} bytes, too few for ${count3(header.width * header.height)} pixels in ${count3(count)} stripes`, chunkStart);
  }
}

/**
 * Coding 2 (§S3 to §S5): the table checked whole (rules 32 to 35), then the stripes holding rows y0 to y1 - 1
 * decoded in stripe order, each checked by its CRC (36) and its stream (37 to 40). Returns the indices of rows
 * y0 to y1 - 1 only; rows defaults to every row. Rules 30 and 31 are checkStripedLength's, already passed.
 */
function decodeStriped(data, header, dataOffset, rows = null) {
  const { width, height, k, bits } = header;
  const { rows: h, count } = stripeGeometry(header);
  const len = data.length;
  const end = new Uint32Array(count); // 4 x S bytes, at most half of INDX by rule 30
  for (let i = 0, start = ENTRY_SIZE * count; i < count; i++) {
    const e = u32(data, ENTRY_SIZE * i);
    if (e < start) reject(32, `stripe ${i} ends at INDX byte ${e}, before it starts at ${start}`, dataOffset + ENTRY_SIZE * i);
    if (e > len) reject(33, `stripe ${i} ends at INDX byte ${e}, past the ${len} bytes of INDX`, dataOffset + ENTRY_SIZE * i);
    end[i] = e;
    start = e;
  }
  if (end[count - 1] < len) reject(34, `${len - end[count - 1]} bytes of INDX after the last stripe`, dataOffset + end[count - 1]);
  for (let i = 0; i < count; i++) {
    const length = end[i] - (i === 0 ? ENTRY_SIZE * count : end[i - 1]);
    const pixels = width * (Math.min(height, (i + 1) * h) - i * h);
    if (k === 1 ? length !== 4 : pixels > PIXELS_PER_BYTE * length) {
      const why = k === 1 ? "with K = 1 a stripe is its 4-byte flush alone" : `too few for its ${count3(pixels)} pixels`;
      reject(35, `stripe ${i} holds ${length} bytes: ${why}`, dataOffset + ENTRY_SIZE * i);
    }
  }
  const [y0, y1] = rows ?? [0, height];
  const first = Math.floor(y0 / h);
  const stop = Math.floor((y1 - 1) / h) + 1; // one past the last stripe needed
  const top = first * h;
  const n = (Math.min(height, stop * h) - top) * width;
  // Allocated only now that rules 31 and 35 tie the pixels to INDX's bytes.
  const indices = k <= 256 ? new Uint8Array(n) : new Uint16Array(n);
  // Counters for the largest stripe (the first, or the only one), refilled for each.
  const counters = k === 1 ? null : new Int32Array(3 * 2 ** tableBits(width * Math.min(h, height)));
  for (let i = first; i < stop; i++) {
    const start = i === 0 ? ENTRY_SIZE * count : end[i - 1];
    const stream = data.subarray(start, end[i]);
    if (crc32(stream) !== u32(data, ENTRY_SIZE * i + 4)) reject(36, `CRC-32 mismatch in stripe ${i}`, dataOffset + ENTRY_SIZE * i + 4);
    if (k === 1) continue; // 4 flush bytes (rule 35) and no decision: every index is 0
    const stripeRows = Math.min(height, (i + 1) * h) - i * h;
    // Rule 37 for a stream too short for the coder's first 4 bytes; the work limit cannot be 0 here.
    if (stream.length < 4) reject(37, `stripe ${i} ends early: it holds ${stream.length} bytes, the coder starts with 4`, dataOffset + end[i]);
    const limit = STRIPE_WORK_PER_PIXEL * width * stripeRows + STRIPE_WORK_PER_BYTE * stream.length;
    decodeStream(stream, dataOffset + start, width, stripeRows, k, bits, indices, (i * h - top) * width, counters, limit, i);
  }
  return rows === null ? indices : indices.subarray((y0 - top) * width, (y1 - top) * width);
}

/** The index codings this decoder knows, keyed by HEAD's coding byte. */
export const INDEX_CODINGS = new Map([
  [0, { name: "fixed-width", checkLength: checkFixedWidthLength, partial: false, decode: wholeThenRows(decodeFixedWidth) }],
  // The stream's length is whatever the coder took; rules 23 and 25 check it while decoding.
  [1, { name: "entropy-coded", checkLength: () => {}, partial: false, decode: wholeThenRows(decodeEntropy) }],
  [2, { name: "entropy-coded in stripes", checkLength: checkStripedLength, partial: true, decode: decodeStriped }],
]);

/** Rule 18 (section 10): coding 0's INDX length is the header's. */
function checkFixedWidthLength(length, header, chunkStart) {
  const expected = fixedWidthLength(header);
  if (BigInt(length) !== expected) reject(18, `INDX length ${length} is not the ${expected} bytes the header implies`, chunkStart);
}

/** A coding that decodes every row, whatever rows are asked: decoded and checked whole, then cut. */
function wholeThenRows(decodeAll) {
  return (data, header, dataOffset, rows = null) => {
    const indices = decodeAll(data, header, dataOffset);
    return rows === null ? indices : indices.subarray(rows[0] * header.width, rows[1] * header.width);
  };
}

/**
 * Read and check HEAD: the first 38 bytes (rules 1 to 12 of section 10).
 * @param {Uint8Array|ArrayBuffer} bytes  the file, or at least its first 38 bytes
 * @param {{maxPixels?: number|null}} [options]  maxPixels: refuse larger images (rule 8); null for no limit
 * @returns {{major:number, minor:number, width:number, height:number, channels:number, bits:number,
 *            coding:number, codingName:string, flags:number, k:number}}
 */
export function readHeader(bytes, { maxPixels = DEFAULT_MAX_PIXELS } = {}) {
  const f = asBytes(bytes);
  const head = Math.min(f.length, 8);
  for (let i = 0; i < head; i++) if (f[i] !== SIGNATURE[i]) reject(1, "not a .kvq file: bad signature", 0);
  if (f.length === 0) reject(1, "not a .kvq file: empty", 0);
  if (f.length < 8) reject(2, `file ends inside the signature, after ${f.length} bytes`, f.length);
  if (f.length >= 16 && typeName(f, 12) !== "HEAD") reject(3, `first chunk is "${typeName(f, 12)}", not HEAD`, 12);
  if (f.length < HEADER_SIZE) reject(2, `file ends inside HEAD, after ${f.length} bytes`, f.length);
  if (u32(f, 8) !== 18) reject(4, `HEAD length is ${u32(f, 8)}, not 18`, 8);
  if (u32(f, 34) !== crc32(f, 8, 34)) reject(19, "HEAD CRC mismatch", 34);
  const header = {
    major: f[16],
    minor: f[17],
    width: u32(f, 18),
    height: u32(f, 22),
    channels: f[26],
    bits: f[27],
    coding: f[28],
    flags: f[29],
    k: u32(f, 30),
  };
  if (header.major !== 1) reject(5, `major version ${header.major} is not 1`, 16);
  if (header.flags !== 0) reject(6, `flags are ${header.flags}, not 0`, 29);
  if (header.width === 0) reject(7, "width is 0", 18);
  if (header.height === 0) reject(7, "height is 0", 22);
  // By division, as the spec asks, so that no product is formed (section 11).
  if (maxPixels !== null && maxPixels !== undefined && header.width > Math.floor(maxPixels / header.height)) {
    reject(8, `${header.width} x ${header.height} image exceeds the limit of ${maxPixels} pixels`);
  }
  if (header.channels !== 1 && header.channels !== 3 && header.channels !== 4) {
    reject(9, `channels is ${header.channels}, not 1, 3 or 4`, 26);
  }
  if (header.k < 1 || header.k > MAX_K) reject(10, `K is ${header.k}, not 1 to 65536`, 30);
  if (header.bits !== bitsFor(header.k)) reject(11, `bits is ${header.bits}; K = ${header.k} needs ${bitsFor(header.k)}`, 27);
  const coding = INDEX_CODINGS.get(header.coding);
  if (coding === undefined) {
    // Named as kvq-v1.md section 4 asks of a reader that lacks a coding: which it has.
    const known = [...INDEX_CODINGS].map(([code, c]) => `${code} (${c.name})`).join(", ");
    reject(12, `index coding ${header.coding} is unknown to this reader, which knows ${known}`, 28);
  }
  header.codingName = coding.name;
  return header;
}

/**
 * Decode a .kvq file, or some of its rows.
 * @param {Uint8Array|ArrayBuffer} bytes  the whole file
 * @param {{maxPixels?: number|null, rows?: [number, number]|null}} [options]
 *   maxPixels: refuse larger images (rule 8); null for no limit.
 *   rows: [y0, y1], decode rows y0 to y1 - 1 only (0 <= y0 < y1 <= height). A coding-2 file then decodes only the
 *   stripes that hold them, each checked by its own CRC; INDX's CRC, which covers every stripe, is not checked, nor
 *   the stripes not decoded, nor what follows INDX (kvq-coding-2.md §S5). Other codings decode and check every row.
 * @returns {{width:number, height:number, channels:number, k:number, bits:number, coding:number,
 *            codingName:string, major:number, minor:number, size:number, rows:[number, number],
 *            palette:Uint8Array, indices:Uint8Array|Uint16Array, pixels:Uint8Array,
 *            ancillary:Array<{type:string, offset:number, length:number}>}}
 *   width and height are the image's; rows the rows decoded, [0, height] for a whole decode. palette: K * channels
 *   bytes; indices: one per pixel of those rows, row-major; pixels: width * (y1 - y0) * channels bytes, row-major,
 *   channels interleaved (section 7).
 * @throws {KvqError} with the rule the file breaks
 * @throws {RangeError} rows that are not two integers with 0 <= y0 < y1 <= height
 */
export function decode(bytes, { maxPixels = DEFAULT_MAX_PIXELS, rows = null } = {}) {
  const f = asBytes(bytes);
  const header = readHeader(f, { maxPixels });
  const { width, height, channels, k } = header;
  const coding = INDEX_CODINGS.get(header.coding);
  // A partial decode of a coding that checks its own parts leaves INDX's CRC and the file's end alone.
  const partial = rows !== null && rows !== undefined && coding.partial;
  const ancillary = [];
  let palette = null;
  let index = null;
  let pos = HEADER_SIZE;
  for (;;) {
    const start = pos;
    if (f.length - start < 12) {
      reject(2, palette === null ? "file ends before PLTE and INDX" : "file ends before INDX", start);
    }
    const length = u32(f, start);
    for (let i = 4; i < 8; i++) {
      if (!isLetter(f[start + i])) reject(13, `chunk type "${typeName(f, start + 4)}" is not 4 ASCII letters`, start + 4);
    }
    const type = typeName(f, start + 4);
    if (partial && type === "INDX") {
      // INDX's rules from its framing first, then only that its data is there (as kvq's lazy reader does).
      if (palette === null) reject(16, "INDX before PLTE", start);
      coding.checkLength(length, header, start);
      if (length > f.length - start - 12) reject(2, `file ends inside chunk ${type} of ${length} bytes`, start);
      index = { data: f.subarray(start + 8, start + 8 + length), offset: start + 8 };
      break;
    }
    if (length > f.length - start - 12) reject(2, `file ends inside chunk ${type} of ${length} bytes`, start);
    const crcAt = start + 8 + length;
    if (u32(f, crcAt) !== crc32(f, start, crcAt)) reject(19, `chunk ${type} CRC mismatch`, crcAt);
    pos = crcAt + 4;
    const data = f.subarray(start + 8, crcAt);
    if (f[start + 4] >= 0x61) {
      ancillary.push({ type, offset: start, length }); // ancillary: skipped once its CRC is checked
      continue;
    }
    if (type === "PLTE") {
      if (palette !== null) reject(15, "second PLTE chunk", start);
      if (length !== k * channels) reject(17, `PLTE length ${length} is not K x channels = ${k * channels}`, start);
      palette = data.slice(); // a copy, aligned for 32-bit reads
    } else if (type === "INDX") {
      if (palette === null) reject(16, "INDX before PLTE", start);
      coding.checkLength(length, header, start);
      if (pos !== f.length) reject(22, `${f.length - pos} bytes after INDX`, pos);
      index = { data, offset: start + 8 };
      break;
    } else if (type === "HEAD") {
      reject(15, "second HEAD chunk", start);
    } else {
      reject(14, `unknown critical chunk ${type}`, start);
    }
  }
  const span = rows === null || rows === undefined ? null : rowRange(rows, height);
  const n = width * (span === null ? height : span[1] - span[0]);
  // Only now is anything proportional to the image allocated (section 11); a
  // K = 1 file of 65 bytes may still claim more pixels than memory holds.
  if (!Number.isSafeInteger(n * channels)) reject(8, `${width} x ${height} image is too large for this decoder`);
  let indices;
  let pixels;
  try {
    indices = coding.decode(index.data, header, index.offset, span);
    pixels = new Uint8Array(n * channels);
  } catch (err) {
    if (err instanceof RangeError) reject(8, `${width} x ${height} image is too large for this decoder's memory`);
    throw err;
  }
  lookup(palette, channels, indices, pixels);
  return { ...header, size: f.length, rows: span ?? [0, height], palette, indices, pixels, ancillary };
}

/** rows checked against the image's height: [y0, y1] with 0 <= y0 < y1 <= height. */
function rowRange(rows, height) {
  const [y0, y1] = Array.isArray(rows) && rows.length === 2 ? rows : [NaN, NaN];
  if (!Number.isInteger(y0) || !Number.isInteger(y1) || y0 < 0 || y0 >= y1 || y1 > height) {
    throw new RangeError(`rows must be [y0, y1] with 0 <= y0 < y1 <= ${height}, not ${JSON.stringify(rows)}`);
  }
  return [y0, y1];
}

function lookup(palette, channels, indices, pixels) {
  const n = indices.length;
  if (channels === 4) {
    // One 32-bit copy per pixel; both views share the platform's byte order.
    const table = new Uint32Array(palette.buffer, palette.byteOffset, palette.length / 4);
    const out = new Uint32Array(pixels.buffer, pixels.byteOffset, n);
    for (let p = 0; p < n; p++) out[p] = table[indices[p]];
  } else if (channels === 3) {
    for (let p = 0, o = 0; p < n; p++, o += 3) {
      const e = indices[p] * 3;
      pixels[o] = palette[e];
      pixels[o + 1] = palette[e + 1];
      pixels[o + 2] = palette[e + 2];
    }
  } else {
    for (let p = 0; p < n; p++) pixels[p] = palette[indices[p]];
  }
}

/**
 * The file size the spec gives for an image with this header and coding 0 and no ancillary chunks (section 8).
 * @param {{width:number, height:number, channels:number, k:number, bits:number}} header
 * @returns {number} bytes
 */
export function fixedWidthSize(header) {
  return OVERHEAD + header.channels * header.k + Number(fixedWidthLength(header));
}
