// Copies the self-hosted font slices into static/fonts/ and writes frontend/fonts.css.
// Body: Noto Serif SC 400, the slices exactly as fontsource splits them by unicode-range.
// Titles: Ma Shan Zheng, each slice cut down to the characters titles actually use (template
// headings, the seeded figures, the dynasties), because a whole calligraphic slice costs ~70 KB
// and a title needs a handful of glyphs from it. Other characters fall back to the body face.
import { readFileSync, writeFileSync, mkdirSync, rmSync, readdirSync, copyFileSync, statSync } from "node:fs";
import { join, dirname, relative } from "node:path";
import { fileURLToPath } from "node:url";
import subsetFont from "subset-font";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const MODULES = join(ROOT, "node_modules", "@fontsource");
const OUT = join(ROOT, "static", "fonts");

function faces(cssPath) {
  const css = readFileSync(cssPath, "utf8");
  return [...css.matchAll(/@font-face\s*{([^}]*)}/g)].map(([, body]) => ({
    file: body.match(/files\/([^)]+\.woff2)\)/)[1],
    range: body.match(/unicode-range:\s*([^;]+);/)[1].trim(),
  }));
}

function codepoints(range) {
  const points = new Set();
  for (const part of range.split(",")) {
    const [a, b] = part.trim().replace(/^U\+/i, "").split("-");
    const start = parseInt(a, 16);
    const end = b ? parseInt(b, 16) : start;
    for (let c = start; c <= end; c++) points.add(c);
  }
  return points;
}

function toRange(points) {
  const sorted = [...points].sort((x, y) => x - y);
  const parts = [];
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    const hex = (n) => "U+" + n.toString(16);
    parts.push(i === j ? hex(sorted[i]) : `${hex(sorted[i])}-${sorted[j].toString(16)}`);
    i = j;
  }
  return parts.join(",");
}

function walk(dir, ext) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path, ext) : path.endsWith(ext) ? [path] : [];
  });
}

// Characters set in the title face: headings and brand in templates, figure names, dynasties.
function titleCharacters() {
  let text = "古月今话印";
  for (const path of walk(join(ROOT, "templates"), ".html")) {
    const html = readFileSync(path, "utf8");
    for (const match of html.matchAll(/<(h1|h2|h3)\b[^>]*>([\s\S]*?)<\/\1>/g)) text += match[2];
    // Other elements set in the title face by their class (see frontend/site.css).
    const titled = /<(\w+)\b[^>]*class="[^"]*\b(?:seal|poem|brand|key-title|finish-seal)\b[^"]*"[^>]*>([\s\S]*?)<\/\1>/g;
    for (const match of html.matchAll(titled)) text += match[2];
  }
  for (const path of walk(join(ROOT, "personas", "seed", "figures"), ".json")) {
    const card = JSON.parse(readFileSync(path, "utf8")).data;
    text += card.name + (card.nickname || "");
  }
  text += readFileSync(join(ROOT, "personas", "models.py"), "utf8").match(/"[\u3400-\u9fff]+"/g).join("");
  return new Set([...text].filter((ch) => /[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]/.test(ch)).map((ch) => ch.codePointAt(0)));
}

// Body slices are "optional": a slice that is not there within about 100 ms is left for the next
// page (it is cached for a year under its hashed name) instead of re-laying out the page when it
// lands; the system's Song face reads the same meanwhile. Titles are few and swap in.
const rules = [];
function face(family, file, range) {
  const display = family === "Noto Serif SC" ? "optional" : "swap";
  rules.push(`@font-face{font-family:"${family}";font-style:normal;font-weight:400;font-display:${display};` +
    `src:url(../fonts/${file}) format("woff2");unicode-range:${range}}`);
}

rmSync(OUT, { recursive: true, force: true });
mkdirSync(join(OUT, "noto-serif-sc"), { recursive: true });
mkdirSync(join(OUT, "ma-shan-zheng"), { recursive: true });

// fontsource's slices 100-119 hold the ~3,800 most used characters, about 40 KB each; a reply of
// a hundred different characters touches nearly all twenty. Cut into eighths, the chat page's first
// view fetches 567 KB instead of 724 KB for the same text (docs/BENCHMARKS.md).
const COMMON = /-(1[01][0-9])-400-normal\.woff2$/;
const PARTS = 8;
for (const { file, range } of faces(join(MODULES, "noto-serif-sc", "400.css"))) {
  if (/cyrillic|vietnamese/.test(file)) continue; // never shown here
  if (!COMMON.test(file)) {
    copyFileSync(join(MODULES, "noto-serif-sc", "files", file), join(OUT, "noto-serif-sc", file));
    face("Noto Serif SC", `noto-serif-sc/${file}`, range);
    continue;
  }
  const source = readFileSync(join(MODULES, "noto-serif-sc", "files", file));
  const points = [...codepoints(range)].sort((x, y) => x - y);
  for (let q = 0; q < PARTS; q++) {
    const part = points.slice(Math.floor((q * points.length) / PARTS), Math.floor(((q + 1) * points.length) / PARTS));
    const name = file.replace("-400-normal.woff2", `-${q}-400-normal.woff2`);
    writeFileSync(join(OUT, "noto-serif-sc", name), await subsetFont(source, String.fromCodePoint(...part), { targetFormat: "woff2" }));
    face("Noto Serif SC", `noto-serif-sc/${name}`, toRange(part));
  }
}

const wanted = titleCharacters();
let kept = 0;
for (const { file, range } of faces(join(MODULES, "ma-shan-zheng", "400.css"))) {
  const here = [...codepoints(range)].filter((c) => wanted.has(c));
  if (!here.length) continue;
  const source = readFileSync(join(MODULES, "ma-shan-zheng", "files", file));
  const subset = await subsetFont(source, String.fromCodePoint(...here), { targetFormat: "woff2" });
  writeFileSync(join(OUT, "ma-shan-zheng", file), subset);
  face("Ma Shan Zheng", `ma-shan-zheng/${file}`, toRange(here));
  kept += here.length;
}

// The brand on every page gets its own tiny face, so that its four characters never pull in the
// title slices they share with other headings.
{
  const brand = "古月今话";
  const merged = [];
  for (const { file, range } of faces(join(MODULES, "ma-shan-zheng", "400.css"))) {
    const here = [...codepoints(range)].filter((c) => [...brand].some((ch) => ch.codePointAt(0) === c));
    for (const c of here) merged.push([c, file]);
  }
  // One subset per source slice, merged into a single face would need a font merger; four tiny
  // files under one family do the same job.
  for (const [c, file] of merged) {
    const source = readFileSync(join(MODULES, "ma-shan-zheng", "files", file));
    const subset = await subsetFont(source, String.fromCodePoint(c), { targetFormat: "woff2" });
    const name = `brand-${c.toString(16)}.woff2`;
    writeFileSync(join(OUT, "ma-shan-zheng", name), subset);
    face("Guyue Brand", `ma-shan-zheng/${name}`, toRange([c]));
  }
}

for (const name of ["noto-serif-sc", "ma-shan-zheng"]) {
  copyFileSync(join(MODULES, name, "LICENSE"), join(OUT, name, "LICENSE.txt"));
}
writeFileSync(join(ROOT, "frontend", "fonts.css"),
  "/* Generated by frontend/build-fonts.mjs (make fonts); do not edit. */\n" + rules.join("\n") + "\n");
console.log(`fonts: ${rules.length} faces, ${kept} title characters -> ${relative(ROOT, OUT)}`);
