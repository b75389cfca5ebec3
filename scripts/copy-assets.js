'use strict';
// Part of `npm run build`: non-TypeScript files that dist/ needs (the core's wasm module).
const fs = require('node:fs');
const path = require('node:path');
const root = path.resolve(__dirname, '..');
for (const rel of ['engine/tinyfer_core.wasm']) {
  const from = path.join(root, 'src', rel);
  const to = path.join(root, 'dist', rel);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(from, to);
}
