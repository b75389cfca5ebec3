'use strict';
// Where the shared datasets are (../shared/data beside the repo, or $TINYFER_DATA), and the
// tfjs handle for tests.
const fs = require('node:fs');
const path = require('node:path');

function dataRoot() {
  // one definition: the loaders' default (src/train/data.ts)
  return require('../../dist/train/data').defaultDataRoot();
}
const fer2013Dir = () => path.join(dataRoot(), 'fer2013');
const ckplusDir = () => path.join(dataRoot(), 'ckplus');
const jaffeDir = () => path.join(dataRoot(), 'jaffe');

function requireData(ctx, dir) {
  if (!fs.existsSync(dir)) {
    throw new Error(`dataset not found at ${dir}: the tests read ../shared/data (set TINYFER_DATA to move it)`);
  }
}

async function loadTfjsOrSkip() {
  const { loadTf } = require('../../dist/engine/tf');
  return (await loadTf()).tf;
}

module.exports = { dataRoot, fer2013Dir, ckplusDir, jaffeDir, requireData, loadTfjsOrSkip };
