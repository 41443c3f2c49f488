// The page of `kvq explore`: an image at several palette sizes K, decoded here from the embedded .kvq files by
// kvq.js. Loaded by the page's bootstrap as `start(kvq, data)`; `data` is what kvq/explore.py embeds:
//   { name, generator, options, max_pixels (number | null), original: { png (base64), width, height, channels } | null,
//     entries: [{ label, name, k, file (base64 .kvq), coding_sizes: { [coding byte]: bytes } }] }
//   coding_sizes: by coding byte, the size of the file the encoder writes from the same palette and indices in the
//   file's own entropy coding and in the encoder's default one; the page charts them beside the fixed-width size it
//   computes from the header.
// Nothing here touches the network. Names from the data or from dropped files only ever reach the page as text.

const MAX_SCALE = 64; // one image pixel as 64 x 64 screen pixels
// Zoom steps: whole numbers of screen pixels per image pixel from 1 up, so that every zoomed pixel is the same size.
const LEVELS = [1 / 8, 1 / 6, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64];
const WHEEL_STEP = 60; // wheel delta (pixels) per zoom step
const MAX_SWATCHES = 256;
const HIGHLIGHT_FADE = 0.86; // how far the pixels of other entries fade towards the background on a swatch hover
// The most pixels a file may declare before the page decodes it, when the data does not say (kvq explore's
// --max-pixels default): each decoded image costs the page 4 bytes a pixel, and a dropped file is anyone's.
const PAGE_MAX_PIXELS = 16777216;
// The bar of each entropy coding's file, by coding byte.
const CODING_COLOURS = { 1: "var(--entropy)", 2: "var(--striped)" };

let kvq;
const state = {
  name: "",
  maxPixels: PAGE_MAX_PIXELS,
  entries: [],
  current: -1,
  original: null,
  view: { scale: 1, x: 0, y: 0, fitted: true },
  timings: [],
  highlighted: -1,
};
const $ = (id) => document.getElementById(id);

/**
 * Build the page from the embedded data.
 * @param {object} kvqModule  the decoder module, kvq.js
 * @param {object} data  what kvq explore embedded
 */
export async function start(kvqModule, data) {
  kvq = kvqModule;
  state.name = data.name || "";
  if (data.max_pixels !== undefined) state.maxPixels = data.max_pixels;
  const api = { state, timings: state.timings, ready: false, allDecoded: false, show, openFiles };
  window.kvqExplore = api;
  for (const e of data.entries) {
    state.entries.push({ label: e.label, name: e.name, requestedK: e.k ?? null, bytes: fromBase64(e.file), codingSizes: e.coding_sizes ?? {} });
  }
  $("footer-made").textContent = data.generator ? `Made by ${data.generator}${data.options ? ` (${data.options})` : ""}.` : "";
  wireControls();
  if (data.original) {
    try {
      const o = data.original;
      const png = await decodePNG(fromBase64(o.png));
      state.original = { ...png, imageData: toImageData(png.pixels, png.channels, png.width, png.height) };
    } catch (err) {
      $("original-empty").textContent = `The original could not be shown: ${err.message}`;
    }
  }
  $("views").classList.toggle("single", !data.original);
  describeImage();
  rebuildTicks();
  if (state.entries.length) {
    const first = closestTo(16);
    $("k-slider").value = String(first);
    show(first);
  } else {
    $("subtitle").textContent = "Drop a .kvq file on this page to view it.";
  }
  api.ready = true;
  // Decode the rest while the page is idle, so that moving the slider only draws.
  for (let i = 0; i < state.entries.length; i++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    try {
      const entry = load(i);
      if (!entry.swatches) entry.swatches = buildSwatches(entry);
    } catch (err) {
      // Shown when the entry is selected; a bad entry must not stop the others.
    }
    fillRow(i);
  }
  api.allDecoded = true;
}

// ---------------------------------------------------------------- data

function fromBase64(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Decode the PNG kvq explore writes: 8-bit grey, RGB or RGBA, not interlaced. */
async function decodePNG(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idat = [];
  let ihdr = null;
  for (let pos = 8; pos + 8 <= bytes.length; ) {
    const length = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (type === "IHDR") ihdr = { width: view.getUint32(pos + 8), height: view.getUint32(pos + 12), depth: bytes[pos + 16], type: bytes[pos + 17], interlace: bytes[pos + 20] };
    else if (type === "IDAT") idat.push(bytes.subarray(pos + 8, pos + 8 + length));
    else if (type === "IEND") break;
    pos += 12 + length;
  }
  const channels = ihdr && { 0: 1, 2: 3, 6: 4 }[ihdr.type];
  if (!channels || ihdr.depth !== 8 || ihdr.interlace !== 0) throw new Error("unexpected PNG layout");
  if (typeof DecompressionStream === "undefined") throw new Error("this browser has no DecompressionStream");
  const stream = new Blob(idat).stream().pipeThrough(new DecompressionStream("deflate"));
  const raw = new Uint8Array(await new Response(stream).arrayBuffer());
  const { width, height } = ihdr;
  const stride = width * channels;
  if (raw.length !== height * (stride + 1)) throw new Error("PNG data has the wrong length");
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    const up = row - stride; // only read when y > 0
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? out[row + i - channels] : 0;
      const b = y > 0 ? out[up + i] : 0;
      const c = i >= channels && y > 0 ? out[up + i - channels] : 0;
      let predictor = 0;
      if (filter === 1) predictor = a;
      else if (filter === 2) predictor = b;
      else if (filter === 3) predictor = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error(`PNG filter ${filter}`);
      out[row + i] = (raw[src + i] + predictor) & 0xff;
    }
  }
  return { width, height, channels, pixels: out };
}

/** Canvas pixels (RGBA, straight alpha) from grey, RGB or RGBA bytes. */
function toImageData(pixels, channels, width, height) {
  const n = width * height;
  const rgba = new Uint8ClampedArray(n * 4);
  if (channels === 4) rgba.set(pixels);
  else {
    for (let p = 0, i = 0, o = 0; p < n; p++, i += channels, o += 4) {
      rgba[o] = pixels[i];
      rgba[o + 1] = pixels[i + (channels === 3 ? 1 : 0)];
      rgba[o + 2] = pixels[i + (channels === 3 ? 2 : 0)];
      rgba[o + 3] = 255;
    }
  }
  return new ImageData(rgba, width, height);
}

/** RGBA of every palette entry, as one 32-bit word each (in the platform's byte order, as ImageData holds it). */
function rgbaTable(image) {
  const { k, channels, palette } = image;
  const bytes = new Uint8Array(k * 4);
  for (let e = 0; e < k; e++) {
    const s = e * channels;
    bytes[e * 4] = palette[s];
    bytes[e * 4 + 1] = palette[s + (channels === 1 ? 0 : 1)];
    bytes[e * 4 + 2] = palette[s + (channels === 1 ? 0 : 2)];
    bytes[e * 4 + 3] = channels === 4 ? palette[s + 3] : 255;
  }
  return { bytes, words: new Uint32Array(bytes.buffer) };
}

/** Decode entry i once and keep what the page shows; returns the entry. */
function load(i) {
  const entry = state.entries[i];
  if (entry.image) return entry;
  if (entry.error) throw entry.error;
  const t0 = performance.now();
  let image;
  try {
    // The header is checked against the limit before any pixel memory is taken (rule 8).
    image = kvq.decode(entry.bytes, { maxPixels: state.maxPixels });
  } catch (err) {
    entry.error = err;
    throw err;
  }
  entry.decodeMs = performance.now() - t0;
  const n = image.width * image.height;
  const table = rgbaTable(image);
  const rgba = new Uint8ClampedArray(n * 4);
  const words = new Uint32Array(rgba.buffer);
  const counts = new Uint32Array(image.k);
  const idx = image.indices;
  for (let p = 0; p < n; p++) {
    const e = idx[p];
    words[p] = table.words[e];
    counts[e]++;
  }
  entry.imageData = new ImageData(rgba, image.width, image.height);
  entry.table = table;
  entry.counts = counts;
  entry.psnr = psnr(image);
  // The decoded pixels were needed for the PSNR only; palette and indices stay for the inspector.
  entry.image = { ...image, pixels: null };
  return entry;
}

/** PSNR in dB over every sample, as kvq.metrics.psnr; null when there is no original of the same shape. */
function psnr(image) {
  const o = state.original;
  if (!o || o.width !== image.width || o.height !== image.height || o.channels !== image.channels) return null;
  const a = o.pixels;
  const b = image.pixels;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    sum += d * d;
  }
  return sum === 0 ? Infinity : 10 * Math.log10((255 * 255 * a.length) / sum);
}

function closestTo(k) {
  let best = 0;
  state.entries.forEach((e, i) => {
    if (e.requestedK !== null && Math.abs(Math.log2(e.requestedK / k)) < Math.abs(Math.log2((state.entries[best].requestedK ?? 1) / k))) best = i;
  });
  return best;
}

// ---------------------------------------------------------------- formatting

const int = (n) => Math.round(n).toLocaleString("en-US");
const fixed = (x, digits) => x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const kinds = { 1: "grey", 3: "RGB", 4: "RGBA" };
const hex = (bytes, at, channels) => {
  const v = channels === 1 ? [bytes[at], bytes[at], bytes[at]] : [bytes[at], bytes[at + 1], bytes[at + 2]];
  return `#${v.map((x) => x.toString(16).padStart(2, "0")).join("")}${channels === 4 ? ` α ${bytes[at + 3]}` : ""}`;
};

function bytesText(n) {
  if (n < 1024) return `${int(n)} B`;
  if (n < 1024 * 1024) return `${fixed(n / 1024, 1)} KiB`;
  return `${fixed(n / 1024 / 1024, 2)} MiB`;
}

function compact(n) {
  if (n < 1000) return String(n);
  if (n < 1e6) return `${fixed(n / 1e3, n < 1e4 ? 1 : 0)}k`;
  return `${fixed(n / 1e6, n < 1e7 ? 1 : 0)}M`;
}

function psnrText(entry) {
  if (entry.psnr === null || entry.psnr === undefined) return "–";
  return entry.psnr === Infinity ? "∞" : `${fixed(entry.psnr, 2)} dB`;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "style") Object.assign(node.style, value);
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/** Where the bits of an image go: the figures of the chart and the table. */
function accounting(entry) {
  const h = entry.image;
  const n = h.width * h.height;
  const entryBits = 8 * h.channels;
  const fixedBytes = kvq.fixedWidthSize(h);
  return {
    n,
    entryBits,
    raw: entryBits * n,
    theory: n * h.bits + entryBits * h.k,
    file: 8 * h.size,
    fixed: 8 * fixedBytes,
    // Each entropy coding's file: this one where it is in that coding, else the size the page was given.
    coded: [...kvq.INDEX_CODINGS.keys()]
      .filter((code) => code !== 0)
      .map((code) => ({ code, own: h.coding === code, bits: h.coding === code ? 8 * h.size : 8 * (entry.codingSizes[code] ?? NaN) }))
      .filter((c) => Number.isFinite(c.bits)),
    stripes: h.coding === 2 ? kvq.stripeGeometry(h).count : 0,
    indexBits: n * h.bits,
    padding: 8 * Math.ceil((n * h.bits) / 8) - n * h.bits,
    ancillary: 8 * h.ancillary.reduce((sum, c) => sum + 12 + c.length, 0),
  };
}

// ---------------------------------------------------------------- showing an entry

/** Show entry i: image, numbers, chart, palette. */
function show(i) {
  const entry = state.entries[i];
  try {
    load(i);
  } catch (err) {
    toast(`${entry.name}: ${err.message}`);
    return;
  }
  state.current = i;
  state.highlighted = -1;
  const image = entry.image;
  const o = state.original;
  const sameSize = o && o.width === image.width && o.height === image.height;

  const decoded = $("canvas-decoded");
  if (decoded.width !== image.width || decoded.height !== image.height) {
    decoded.width = image.width;
    decoded.height = image.height;
  }
  decoded.getContext("2d").putImageData(entry.imageData, 0, 0);
  $("view-decoded").classList.toggle("alpha", image.channels === 4);
  for (const id of ["view-original", "view-decoded"]) $(id).style.aspectRatio = `${image.width} / ${image.height}`;
  drawOriginal(image);

  const requested = entry.requestedK;
  $("k-big").textContent = int(image.k);
  $("k-small").textContent =
    requested !== null && requested !== image.k ? `of ${int(requested)} asked: ${int(image.k)} used` : `${image.bits} bit${image.bits === 1 ? "" : "s"} per index`;
  $("decoded-title").textContent = requested !== null ? `K = ${int(image.k)}` : entry.name;
  const note = $("decoded-note");
  note.replaceChildren(
    `${image.codingName} · decoded here in ${fixed(entry.decodeMs, 1)} ms · `,
    el("a", { href: "#", onclick: (ev) => download(ev, entry) }, "download .kvq"),
  );
  $("original-note").textContent = o ? (sameSize ? "" : `${int(o.width)} × ${int(o.height)}`) : "";

  const a = accounting(entry);
  $("m-psnr").textContent = psnrText(entry);
  $("m-psnr-note").textContent =
    entry.psnr === null ? "no original of this size to compare" : entry.psnr === Infinity ? "lossless: every pixel exact" : "against the original, computed here";
  $("m-size").textContent = bytesText(image.size);
  $("m-size-note").textContent = `${int(image.size)} bytes`;
  $("m-bpp").textContent = fixed(a.file / a.n, a.file / a.n < 10 ? 3 : 2);
  $("m-bpp-note").textContent = `of ${a.entryBits} uncompressed`;
  $("m-ratio").textContent = `${fixed(a.raw / a.file, a.raw / a.file < 100 ? 2 : 0)}×`;
  $("m-ratio-note").textContent = `${fixed((100 * a.file) / a.raw, 2)} % of the ${a.entryBits}·N bits`;

  drawBars(entry, a);
  drawPalette(entry);
  for (const [j, button] of [...$("ticks").children].entries()) button.classList.toggle("on", j === i);
  for (const [j, row] of [...$("table").children].entries()) row.classList.toggle("on", j === i);
  if ($("k-slider").value !== String(i)) $("k-slider").value = String(i);
  if (state.view.fitted) fit();
  else applyView();
  fillRow(i);
}

function drawOriginal(image) {
  const view = $("view-original");
  const o = state.original;
  if (!o) {
    view.classList.add("none");
    if (!$("original-empty").textContent) $("original-empty").textContent = "This page holds no original image.";
    return;
  }
  view.classList.remove("none");
  view.classList.toggle("alpha", o.channels === 4);
  const canvas = $("canvas-original");
  if (canvas.width !== o.width || canvas.height !== o.height) {
    canvas.width = o.width;
    canvas.height = o.height;
    canvas.getContext("2d").putImageData(o.imageData, 0, 0);
  }
  if (o.width !== image.width || o.height !== image.height) {
    $("original-note").textContent = `${int(o.width)} × ${int(o.height)}, not this file's size`;
  }
}

function drawBars(entry, a) {
  const e = `${a.entryBits}`;
  const rows = [
    ["Uncompressed", `${e}·N`, a.raw, "var(--raw)"],
    ["Textbook palette", `N·⌈log₂K⌉ + ${e}·K`, a.theory, "var(--theory)"],
    [entry.image.coding === 0 ? ".kvq file" : ".kvq, fixed-width", entry.image.coding === 0 ? "fixed-width indices" : "computed from the header", a.fixed, "var(--fixed)"],
  ];
  for (const c of a.coded) {
    rows.push([`.kvq, ${kvq.INDEX_CODINGS.get(c.code).name}`, c.own ? "this file" : "same palette and indices", c.bits, CODING_COLOURS[c.code] ?? "var(--entropy)"]);
  }
  const bars = $("bars");
  bars.replaceChildren();
  for (const [name, formula, bits, colour] of rows) {
    const share = bits / a.raw;
    const width = Math.max(share * 100, 0.4);
    const figure = el("span", { class: "figure num" }, `${int(bits)} bits`, el("span", { style: { color: "var(--muted)" } }, `  ${fixed(100 * share, share < 0.1 ? 2 : 1)} %`));
    if (share > 0.62) Object.assign(figure.style, { right: `${100 - width + 1}%`, color: "var(--ink)" });
    else figure.style.left = `calc(${width}% + 8px)`;
    bars.append(
      el("div", { class: "name" }, name, el("small", {}, formula)),
      el("div", { class: "track" }, el("div", { class: "fill", style: { width: `${width}%`, background: colour } }), figure),
    );
  }
  $("bits-aside").textContent = `N = ${int(a.n)} pixels, K = ${int(entry.image.k)}`;
  const parts = [`${int(8 * kvq.OVERHEAD)} overhead`, `${int(a.entryBits * entry.image.k)} palette`];
  const indexData = a.file - 8 * kvq.OVERHEAD - a.entryBits * entry.image.k - a.ancillary;
  if (entry.image.coding === 0) parts.push(`${int(a.indexBits)} index`, `${a.padding} padding`);
  // Coding 2's stripe table: 8 bytes a stripe (kvq-coding-2.md §S3), apart from the streams.
  else if (a.stripes) parts.push(`${int(indexData - 64 * a.stripes)} index`, `${int(64 * a.stripes)} stripe table (${int(a.stripes)} stripe${a.stripes === 1 ? "" : "s"})`);
  else parts.push(`${int(indexData)} index`);
  if (a.ancillary) parts.push(`${int(a.ancillary)} ancillary`);
  $("accounting").textContent = `File = ${parts.join(" + ")} bits = ${int(a.file)} bits.`;
}

function drawPalette(entry) {
  const { image, counts } = entry;
  const n = image.width * image.height;
  if (!entry.swatches) entry.swatches = buildSwatches(entry);
  const current = $("swatches");
  if (current !== entry.swatches) {
    current.removeAttribute("id");
    entry.swatches.id = "swatches";
    current.replaceWith(entry.swatches);
  }
  const rest = entry.order.length - MAX_SWATCHES;
  const restPixels = entry.order.slice(MAX_SWATCHES).reduce((sum, e) => sum + counts[e], 0);
  $("palette-aside").textContent = `${int(image.k)} entr${image.k === 1 ? "y" : "ies"}, most used first`;
  $("palette-caption").textContent =
    rest > 0
      ? `and ${int(rest)} more entries, used by ${fixed((100 * restPixels) / n, 1)} % of the pixels. Hover a colour to see where it is used.`
      : "Hover a colour to see where it is used.";
}

/** The swatch grid of an entry, built once: most used entries first, at most MAX_SWATCHES. */
function buildSwatches(entry) {
  const { image, counts, table } = entry;
  entry.order = Array.from({ length: image.k }, (_, e) => e).sort((x, y) => counts[y] - counts[x] || x - y);
  const box = el("div", { class: "swatches" });
  box.style.setProperty("--sw", image.k <= 16 ? "54px" : image.k <= 64 ? "38px" : "22px");
  for (const e of entry.order.slice(0, MAX_SWATCHES)) {
    const [r, g, b, alpha] = table.bytes.subarray(e * 4, e * 4 + 4);
    const light = (0.2126 * r + 0.7152 * g + 0.0722 * b) * (alpha / 255) + 255 * (1 - alpha / 255) > 150;
    box.append(
      el(
        "div",
        { class: "swatch", "data-entry": String(e), title: `entry ${e} · ${hex(image.palette, e * image.channels, image.channels)} · ${int(counts[e])} pixels` },
        el("i", { style: { background: `rgba(${r}, ${g}, ${b}, ${alpha / 255})` } }),
        image.k <= 64 ? el("em", { class: "count num", style: { color: light ? "rgba(0,0,0,.72)" : "rgba(255,255,255,.9)" } }, compact(counts[e])) : null,
      ),
    );
  }
  // One listener for the whole grid rather than one per swatch: the grid of 256 is built in a few milliseconds.
  box.addEventListener("mouseover", (ev) => {
    const swatch = ev.target.closest(".swatch");
    if (swatch) highlight(Number(swatch.dataset.entry));
  });
  box.addEventListener("mouseleave", () => highlight(-1));
  return box;
}

/** Show only the pixels of palette entry e in the decoded view (e = -1: all). */
function highlight(e) {
  const entry = state.entries[state.current];
  if (!entry || state.highlighted === e) return;
  state.highlighted = e;
  const ctx = $("canvas-decoded").getContext("2d");
  for (const node of $("swatches").children) node.classList.toggle("on", Number(node.dataset.entry) === e);
  if (e < 0) {
    ctx.putImageData(entry.imageData, 0, 0);
    $("palette-caption").textContent = "Hover a colour to see where it is used.";
    return;
  }
  const { image, counts } = entry;
  const src = entry.imageData.data;
  const out = new Uint8ClampedArray(src.length);
  const idx = image.indices;
  const bg = getComputedStyle(document.body).backgroundColor.match(/\d+/g).map(Number);
  for (let p = 0, o = 0; p < idx.length; p++, o += 4) {
    if (idx[p] === e) {
      out[o] = src[o];
      out[o + 1] = src[o + 1];
      out[o + 2] = src[o + 2];
      out[o + 3] = src[o + 3];
    } else {
      out[o] = src[o] + (bg[0] - src[o]) * HIGHLIGHT_FADE;
      out[o + 1] = src[o + 1] + (bg[1] - src[o + 1]) * HIGHLIGHT_FADE;
      out[o + 2] = src[o + 2] + (bg[2] - src[o + 2]) * HIGHLIGHT_FADE;
      out[o + 3] = 255;
    }
  }
  ctx.putImageData(new ImageData(out, image.width, image.height), 0, 0);
  const n = image.width * image.height;
  $("palette-caption").textContent = `Entry ${e}: ${hex(image.palette, e * image.channels, image.channels)}, ${int(counts[e])} pixels (${fixed((100 * counts[e]) / n, 2)} %)`;
}

function describeImage() {
  const first = state.entries.length ? safeHeader(0) : null;
  const o = state.original;
  const w = o ? o.width : first?.width;
  const h = o ? o.height : first?.height;
  const c = o ? o.channels : first?.channels;
  document.title = `${state.name || "kvq"} · kvq explore`;
  $("title").textContent = state.name || "kvq explore";
  const count = state.entries.length;
  $("subtitle").textContent =
    w !== undefined
      ? `${int(w)} × ${int(h)} ${kinds[c]} · ${int(w * h)} pixels · ${count} file${count === 1 ? "" : "s"}, each decoded in this page`
      : "";
}

function safeHeader(i) {
  try {
    return kvq.readHeader(state.entries[i].bytes);
  } catch (err) {
    return null;
  }
}

function rebuildTicks() {
  const ticks = $("ticks");
  ticks.replaceChildren();
  const count = state.entries.length;
  $("k-slider").max = String(Math.max(count - 1, 0));
  state.entries.forEach((entry, i) => {
    const left = count === 1 ? 50 : (100 * i) / (count - 1);
    // The end labels grow inwards, so that a long file name stays on the card.
    const end = count === 1 ? "" : i === 0 ? "first" : i === count - 1 ? "last" : "";
    ticks.append(el("button", { type: "button", class: end, style: { left: `${left}%` }, title: entry.name, onclick: () => step(i) }, entry.label));
  });
  const body = $("table");
  body.replaceChildren();
  state.entries.forEach((entry, i) => {
    body.append(el("tr", { onclick: () => step(i) }, el("td", {}, entry.label), ...Array.from({ length: 6 }, () => el("td", {}, "…"))));
    fillRow(i);
  });
}

function fillRow(i) {
  const row = $("table").children[i];
  const entry = state.entries[i];
  if (!row || !entry.image) {
    if (row && entry.error) row.children[1].textContent = "cannot decode";
    return;
  }
  const a = accounting(entry);
  const cells = [int(entry.image.k), String(entry.image.bits), int(entry.image.size), fixed(a.file / a.n, 3), `${fixed(a.raw / a.file, 2)}×`, psnrText(entry)];
  cells.forEach((text, j) => {
    row.children[j + 1].textContent = text;
  });
}

/** Move to entry i from a user action, and time it: the work, and the time until the frame after it is painted. */
function step(i) {
  if (i === state.current) return;
  // A message about an earlier action does not stay over what the user now looks at.
  hideToast();
  const t0 = performance.now();
  const cached = Boolean(state.entries[i].image);
  show(i);
  const work = performance.now() - t0;
  requestAnimationFrame(() =>
    setTimeout(() => {
      state.timings.push({ entry: i, cached, work, frame: performance.now() - t0 });
    }, 0),
  );
}

function download(ev, entry) {
  ev.preventDefault();
  const url = URL.createObjectURL(new Blob([entry.bytes], { type: "application/octet-stream" }));
  const link = el("a", { href: url, download: entry.name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ---------------------------------------------------------------- zoom and pan, shared by both views

function viewSize() {
  const box = $("view-decoded");
  return { w: box.clientWidth, h: box.clientHeight };
}

function imageSize() {
  const entry = state.entries[state.current];
  if (entry && entry.image) return { w: entry.image.width, h: entry.image.height };
  return state.original ? { w: state.original.width, h: state.original.height } : { w: 1, h: 1 };
}

function fit() {
  const { w, h } = viewSize();
  const img = imageSize();
  const scale = Math.min(w / img.w, h / img.h);
  Object.assign(state.view, { scale, x: (w - img.w * scale) / 2, y: (h - img.h * scale) / 2, fitted: true });
  applyView();
}

function zoomAt(scale, cx, cy) {
  const { w, h } = viewSize();
  const img = imageSize();
  const least = Math.min(1, Math.min(w / img.w, h / img.h)) / 2;
  const next = Math.min(MAX_SCALE, Math.max(least, scale));
  const v = state.view;
  v.x = cx - ((cx - v.x) * next) / v.scale;
  v.y = cy - ((cy - v.y) * next) / v.scale;
  v.scale = next;
  v.fitted = false;
  applyView();
}

/** The next zoom level above (direction 1) or below (-1) the current scale. */
function level(direction) {
  const s = state.view.scale;
  if (direction > 0) return LEVELS.find((l) => l > s * 1.001) ?? MAX_SCALE;
  return [...LEVELS].reverse().find((l) => l < s * 0.999) ?? s / 2;
}

function applyView() {
  const v = state.view;
  const { w, h } = viewSize();
  const img = imageSize();
  // Keep some of the image in sight however far it is dragged.
  const margin = 40;
  v.x = Math.min(w - margin, Math.max(margin - img.w * v.scale, v.x));
  v.y = Math.min(h - margin, Math.max(margin - img.h * v.scale, v.y));
  // Whole screen pixels for the corner keep every zoomed pixel the same size.
  const x = Math.round(v.x);
  const y = Math.round(v.y);
  for (const id of ["view-original", "view-decoded"]) {
    const box = $(id);
    const canvas = box.querySelector("canvas");
    canvas.style.transform = `translate(${x}px, ${y}px) scale(${v.scale})`;
    canvas.classList.toggle("pixelated", v.scale >= 1);
    const backdrop = box.querySelector(".backdrop");
    Object.assign(backdrop.style, { left: `${x}px`, top: `${y}px`, width: `${canvas.width * v.scale}px`, height: `${canvas.height * v.scale}px` });
  }
  $("zoom-label").textContent = `${v.scale >= 10 ? int(v.scale * 100) : fixed(v.scale * 100, 0)} %`;
}

function inspect(ev) {
  const box = ev.currentTarget.getBoundingClientRect();
  const v = state.view;
  const ix = Math.floor((ev.clientX - box.left - Math.round(v.x)) / v.scale);
  const iy = Math.floor((ev.clientY - box.top - Math.round(v.y)) / v.scale);
  const entry = state.entries[state.current];
  const out = $("inspector");
  if (!entry || !entry.image || ix < 0 || iy < 0 || ix >= entry.image.width || iy >= entry.image.height) {
    out.replaceChildren();
    return;
  }
  const image = entry.image;
  const p = iy * image.width + ix;
  const e = image.indices[p];
  const chip = (rgba) => el("span", { class: "chip", style: { background: rgba } });
  const parts = [el("span", {}, `x ${ix}, y ${iy}`)];
  const o = state.original;
  if (o && o.width === image.width && o.height === image.height) {
    const d = o.imageData.data;
    parts.push(el("span", {}, chip(`rgba(${d[4 * p]}, ${d[4 * p + 1]}, ${d[4 * p + 2]}, ${d[4 * p + 3] / 255})`), `original ${hex(o.pixels, p * o.channels, o.channels)}`));
  }
  const t = entry.table.bytes;
  parts.push(el("span", {}, chip(`rgba(${t[4 * e]}, ${t[4 * e + 1]}, ${t[4 * e + 2]}, ${t[4 * e + 3] / 255})`), `entry ${e} ${hex(image.palette, e * image.channels, image.channels)}`));
  out.replaceChildren(...parts);
}

// ---------------------------------------------------------------- controls

function wireControls() {
  let wheel = 0;
  $("k-slider").addEventListener("input", (ev) => step(Number(ev.target.value)));
  for (const id of ["view-original", "view-decoded"]) {
    const box = $(id);
    box.addEventListener(
      "wheel",
      (ev) => {
        ev.preventDefault();
        const rect = box.getBoundingClientRect();
        // Trackpads send many small deltas, mouse wheels a few large ones: one zoom step per WHEEL_STEP of either.
        wheel += ev.deltaMode === 1 ? ev.deltaY * 16 : ev.deltaY;
        if (Math.abs(wheel) < WHEEL_STEP) return;
        zoomAt(level(wheel < 0 ? 1 : -1), ev.clientX - rect.left, ev.clientY - rect.top);
        wheel = 0;
      },
      { passive: false },
    );
    let drag = null;
    box.addEventListener("pointerdown", (ev) => {
      drag = { x: ev.clientX, y: ev.clientY, vx: state.view.x, vy: state.view.y };
      box.setPointerCapture(ev.pointerId);
      box.classList.add("dragging");
    });
    box.addEventListener("pointermove", (ev) => {
      if (drag) {
        state.view.x = drag.vx + ev.clientX - drag.x;
        state.view.y = drag.vy + ev.clientY - drag.y;
        state.view.fitted = false;
        applyView();
      }
      inspect(ev);
    });
    const end = () => {
      drag = null;
      box.classList.remove("dragging");
    };
    box.addEventListener("pointerup", end);
    box.addEventListener("pointercancel", end);
    box.addEventListener("pointerleave", () => $("inspector").replaceChildren());
    box.addEventListener("dblclick", (ev) => {
      const rect = box.getBoundingClientRect();
      zoomAt(level(1), ev.clientX - rect.left, ev.clientY - rect.top);
    });
  }
  const centre = (direction) => {
    const { w, h } = viewSize();
    zoomAt(direction === 0 ? 1 : level(direction), w / 2, h / 2);
  };
  $("zoom-fit").addEventListener("click", fit);
  $("zoom-1").addEventListener("click", () => centre(0));
  $("zoom-in").addEventListener("click", () => centre(1));
  $("zoom-out").addEventListener("click", () => centre(-1));
  window.addEventListener("resize", () => (state.view.fitted ? fit() : applyView()));
  window.addEventListener("keydown", (ev) => {
    if (ev.target instanceof HTMLInputElement || ev.metaKey || ev.ctrlKey || ev.altKey) return;
    const keys = { "+": () => centre(1), "=": () => centre(1), "-": () => centre(-1), 0: fit, 1: () => centre(0) };
    if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
      const next = state.current + (ev.key === "ArrowRight" ? 1 : -1);
      if (next >= 0 && next < state.entries.length) step(next);
      ev.preventDefault();
    } else if (keys[ev.key]) {
      keys[ev.key]();
    }
  });

  $("file-input").addEventListener("change", (ev) => {
    openFiles([...ev.target.files]);
    ev.target.value = "";
  });
  let depth = 0;
  const files = (ev) => ev.dataTransfer && [...ev.dataTransfer.types].includes("Files");
  window.addEventListener("dragenter", (ev) => {
    if (!files(ev)) return;
    depth++;
    document.body.classList.add("dragging");
  });
  window.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) document.body.classList.remove("dragging");
  });
  window.addEventListener("dragover", (ev) => {
    if (files(ev)) ev.preventDefault();
  });
  window.addEventListener("drop", (ev) => {
    ev.preventDefault();
    depth = 0;
    document.body.classList.remove("dragging");
    openFiles([...ev.dataTransfer.files]);
  });
}

/**
 * Add .kvq files to the page and show the last one that decodes.
 * @param {File[]} files
 */
async function openFiles(files) {
  let shown = -1;
  const problems = [];
  for (const file of files) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const entry = { label: file.name, name: file.name, requestedK: null, bytes, codingSizes: {} };
    state.entries.push(entry);
    try {
      load(state.entries.length - 1);
      shown = state.entries.length - 1;
    } catch (err) {
      state.entries.pop();
      const hint =
        err.rule === 1 ? " To explore an image, run: kvq explore IMAGE" : err.rule === 8 ? ` This page decodes at most ${int(state.maxPixels)} pixels (kvq explore --max-pixels).` : "";
      problems.push(`${file.name}: ${err.message}.${hint}`);
    }
  }
  if (shown >= 0) {
    rebuildTicks();
    if (!state.original) describeImage();
    state.view.fitted = true;
    step(shown);
  }
  // After the step, which clears an older message: this one is about these files.
  if (problems.length) toast(problems.join(" "));
  else hideToast();
}

let toastTimer = 0;
function toast(message) {
  const box = $("toast");
  box.textContent = message;
  box.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(hideToast, 7000);
}

function hideToast() {
  clearTimeout(toastTimer);
  $("toast").classList.remove("show");
}
