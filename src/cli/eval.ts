import * as fs from 'fs';
import * as path from 'path';
import { bool, optStr, ParsedArgs, str, UsageError, viewsOption } from './args';
import { openClassifier, type Backend } from '../engine/open';
import { classifyViews } from '../engine/views';
import { loadDataset, face } from '../train/data';
import { argmax, computeMetrics, confusionPng, formatReport } from '../train/evaluate';
import { FACE_PIXELS } from '../model/labels';

export async function cmdEval(a: ParsedArgs): Promise<number> {
  const modelPath = str(a, 'model');
  const dataPath = str(a, 'data');
  const backend = optStr(a, 'backend') as Backend | undefined;
  if (backend && backend !== 'binary' && backend !== 'tfjs') throw new UsageError('--backend must be binary or tfjs');
  const json = bool(a, 'json');
  const views = viewsOption(a);
  const t0 = Date.now();
  const detect = bool(a, 'detect');
  const data = await loadDataset(dataPath, { split: optStr(a, 'split'), cacheDir: optStr(a, 'cache'), detect });
  const clf = await openClassifier(modelPath, backend);
  const n = data.labels.length;
  const pred = new Int32Array(n);
  const batch = 256;
  for (let i = 0; i < n; i += batch) {
    const faces: Uint8Array[] = [];
    for (let k = i; k < Math.min(n, i + batch); k++) faces.push(face(data, k).slice(0, FACE_PIXELS));
    const scores = await classifyViews(clf, faces, views);
    scores.forEach((s, k) => (pred[i + k] = argmax(s)));
  }
  clf.dispose();
  const classes = [...new Set(Array.from(data.labels))].sort((x, y) => x - y);
  const report = computeMetrics(data.labels, pred, classes, data.classNames);
  const result = {
    model: modelPath,
    backend: clf.backend,
    runtime: clf.runtime,
    views,
    detect,
    data: dataPath,
    split: optStr(a, 'split') ?? null,
    skipped: data.skipped.length,
    ignoredLabels: data.ignoredLabels,
    seconds: (Date.now() - t0) / 1000,
    ...report,
  };
  const out = optStr(a, 'out');
  if (out) {
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'report.json'), JSON.stringify(result, null, 1));
    fs.writeFileSync(path.join(out, 'confusion.png'), await confusionPng(report, `${path.basename(modelPath)} on ${path.basename(dataPath)}`));
  }
  if (json) {
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    process.stdout.write(`${modelPath} (${clf.backend}, ${clf.runtime}${views > 1 ? `, ${views} views averaged` : ''}) on ${dataPath}${result.split ? ` [${result.split}]` : ''}\n`);
    if (data.skipped.length) process.stdout.write(`skipped ${data.skipped.length} file(s) (first: ${data.skipped[0].source}: ${data.skipped[0].reason})\n`);
    process.stdout.write(formatReport(report) + '\n');
    if (out) process.stdout.write(`report: ${path.join(out, 'report.json')}, ${path.join(out, 'confusion.png')}\n`);
  }
  return 0;
}
