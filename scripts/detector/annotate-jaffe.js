#!/usr/bin/env node
/**
 * The face square of every JAFFE portrait, written to scripts/detector/jaffe-faces.json: the
 * ground truth the on-device detector is trained on (training subjects) and both detectors are
 * measured against (held-out subjects, bench/detect-frames.js). A JAFFE portrait (256x256) is
 * not a face crop, so its face square is taken from BlazeFace's eye and mouth keypoints on the
 * whole portrait, framed like a FER2013 face (landmarkSquare, margin 0, src/vision/crop.ts):
 * the square a FER2013 48x48 crop would be. Run once; the JSON is committed.
 *
 *   npm run build && node scripts/detector/annotate-jaffe.js
 */
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const { dataRoot } = require('../../test/helpers/data');
  const { processFrame, frameOptions } = require('../../dist/vision/pipeline');
  const { landmarkSquare } = require('../../dist/vision/crop');
  const root = path.join(dataRoot(), 'jaffe');
  const opts = frameOptions({ detectorRuntime: 'main', inputSize: 256, fallbackSize: 0 });
  const out = {};
  let missing = 0;
  for (const label of fs.readdirSync(root).sort()) {
    for (const f of fs.readdirSync(path.join(root, label)).sort()) {
      const { faces } = await processFrame(path.join(root, label, f), opts);
      const face = faces.sort((a, b) => b.box.w * b.box.h - a.box.w * a.box.h)[0];
      const sq = face && face.landmarks && landmarkSquare(face.landmarks, 0, face.box);
      if (!sq) {
        missing++;
        continue;
      }
      out[`${label}/${f}`] = [sq.x, sq.y, sq.side].map((v) => Math.round(v * 10) / 10);
    }
  }
  const file = path.join(__dirname, 'jaffe-faces.json');
  fs.writeFileSync(file, JSON.stringify(out, null, 0).replace(/\],/g, '],\n') + '\n');
  console.log(`${Object.keys(out).length} portraits annotated, ${missing} without a face -> ${path.relative(process.cwd(), file)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
