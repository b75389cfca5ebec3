'use strict';
/**
 * Packs FER2013 Training and PublicTest into one file for the GPU teacher (teacher.py), which
 * runs where ../shared is not: the image files as they are (JPEG; decoded pixels do not compress
 * and would not fit the device's 64 MiB), with the labels and face keys our loader gives them.
 *
 *   node scripts/gpu-teacher/pack.js [--data ../shared/data/fer2013] [--out .gpu/fer2013.pack]
 *
 * Layout (little-endian): "TFPK" u32 version=1, u32 labelsLen, JSON array of our LABELS,
 * u32 nSplits; per split: u32 nameLen, name,
 * u32 n, u32 jsonLen, JSON array of the n face keys ("<label>/<file name>"), n label bytes (our
 * LABELS order), then n times (u32 len, file bytes). The packed faces are the datasets' own:
 * never commit them (.gpu/ is git-ignored).
 */
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');

function u32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

async function main() {
  const { parseArgs, str } = require(path.join(ROOT, 'dist', 'cli', 'args'));
  const args = parseArgs(process.argv.slice(2));
  const arg = (name, def) => str(args, name, def);
  const { loadDataset, defaultDataRoot } = require(path.join(ROOT, 'dist', 'train', 'data'));
  const { faceKey } = require(path.join(ROOT, 'dist', 'train', 'teacher'));
  const { LABELS } = require(path.join(ROOT, 'dist', 'model', 'labels'));
  const root = arg('data', path.join(defaultDataRoot(), 'fer2013'));
  const out = path.resolve(arg('out', path.join(ROOT, '.gpu', 'fer2013.pack')));
  const splits = ['Training', 'PublicTest'];
  const labels = Buffer.from(JSON.stringify(LABELS));
  const parts = [Buffer.from('TFPK'), u32(1), u32(labels.length), labels, u32(splits.length)];
  for (const s of splits) {
    const d = await loadDataset(path.join(root, s), { cacheDir: path.join(ROOT, '.cache', 'faces') });
    const keys = JSON.stringify(d.sources.map(faceKey));
    const name = Buffer.from(s);
    parts.push(u32(name.length), name, u32(d.labels.length), u32(Buffer.byteLength(keys)), Buffer.from(keys));
    parts.push(Buffer.from(Uint8Array.from(d.labels)));
    for (const f of d.sources) {
      const bytes = fs.readFileSync(f);
      parts.push(u32(bytes.length), bytes);
    }
    console.error(`${s}: ${d.labels.length} faces, ${d.skipped.length} skipped`);
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, Buffer.concat(parts));
  console.error(`${out}: ${(fs.statSync(out).size / 1e6).toFixed(1)} MB`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
