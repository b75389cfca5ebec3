import * as fs from 'fs';
import * as path from 'path';
import { bool, num, optStr, ParsedArgs, regularisation, str, UsageError, viewsOption } from './args';
import { loadImageFolder, subjectFolds, subset } from '../train/data';
import { computeMetrics, confusionPng, formatReport } from '../train/evaluate';
import { predictClasses, train } from '../train/train';
import { labelIndex } from '../model/labels';

/**
 * Subject-independent k-fold cross-validation on an image folder (CK+, JAFFE or any
 * `<root>/<label>/*` folder whose file names carry a subject key). Each fold trains on the
 * other folds for a fixed number of epochs (no selection on the held-out fold) and predicts
 * the held-out subjects; the report pools all held-out predictions.
 */
export async function cmdCv(a: ParsedArgs): Promise<number> {
  const dataDir = str(a, 'data');
  const out = str(a, 'out');
  const k = num(a, 'folds', 10);
  const epochs = num(a, 'epochs', 30);
  const pattern = optStr(a, 'subject-pattern');
  const reg = regularisation(a);
  const views = viewsOption(a);
  const detect = bool(a, 'detect');
  // predictions with test-time views are kept apart (result-views<n>.json, report-views<n>.json):
  // either way, a finished fold's model is reused
  const tag = views > 1 ? `-views${views}` : '';
  const labelsMode = optStr(a, 'labels');
  if (labelsMode && labelsMode !== 'own' && labelsMode !== 'ours') throw new UsageError('--labels must be own or ours');
  const dirs = fs.readdirSync(dataDir).filter((d) => fs.statSync(path.join(dataDir, d)).isDirectory());
  // A dataset whose labels are not all ours (CK+: contempt) is evaluated on its own label set.
  const own = labelsMode ? labelsMode === 'own' : dirs.some((d) => labelIndex(d) < 0);
  const data = await loadImageFolder(dataDir, {
    ownLabels: own,
    subjectPattern: pattern ? new RegExp(pattern) : undefined,
    cacheDir: path.resolve('.cache', 'faces'),
    detect,
  });
  const folds = subjectFolds(data, k);
  const log = (l: string) => process.stderr.write(l + '\n');
  log(`${data.labels.length} faces, ${new Set(data.subjects).size} subjects, ${k} subject-independent folds, classes: ${data.classNames.join(', ')}`);
  const { loadTfForTraining } = await import('../engine/tf');
  const { tf } = await loadTfForTraining();
  const truth: number[] = [];
  const pred: number[] = [];
  const foldAcc: number[] = [];
  const t0 = Date.now();
  fs.mkdirSync(out, { recursive: true });
  for (let f = 0; f < k; f++) {
    const foldDir = path.join(out, `fold-${f}`);
    const resultFile = path.join(foldDir, `result${tag}.json`);
    let result: { truth: number[]; pred: number[] };
    if (fs.existsSync(resultFile)) {
      result = JSON.parse(fs.readFileSync(resultFile, 'utf8'));
      log(`fold ${f + 1}/${k}: done before, reusing ${resultFile}`);
    } else {
      const testIdx = folds[f];
      const trainIdx = folds.filter((_, j) => j !== f).flat();
      const r = await train({
        train: subset(data, trainIdx),
        outDir: foldDir,
        epochs,
        batchSize: num(a, 'batch', 64),
        lr: num(a, 'lr', 1e-3),
        seed: num(a, 'seed', 42) + f,
        initFrom: optStr(a, 'init'),
        binary: !bool(a, 'float'),
        resetHead: own,
        resume: true,
        recalibrate: 'end',
        ...reg,
        log: (l) => log(`fold ${f + 1}/${k} ${l}`),
      });
      const model = await tf.loadLayersModel(`file://${path.join(foldDir, 'last', 'model.json')}`);
      const testSet = subset(data, testIdx);
      const p = await predictClasses(tf, model, testSet, 512, views);
      model.dispose();
      result = { truth: Array.from(testSet.labels), pred: Array.from(p) };
      fs.writeFileSync(resultFile, JSON.stringify({ ...result, seconds: r.seconds, subjects: [...new Set(testSet.subjects)] }));
    }
    const acc = result.truth.filter((t, i) => t === result.pred[i]).length / result.truth.length;
    foldAcc.push(acc);
    truth.push(...result.truth);
    pred.push(...result.pred);
    log(`fold ${f + 1}/${k}: accuracy ${(acc * 100).toFixed(2)} % on ${result.truth.length} faces`);
  }
  const report = computeMetrics(truth, pred, undefined, data.classNames);
  const mean = foldAcc.reduce((x, y) => x + y, 0) / k;
  const sd = Math.sqrt(foldAcc.reduce((x, y) => x + (y - mean) ** 2, 0) / k);
  const summary = {
    protocol: `subject-independent ${k}-fold`,
    data: dataDir,
    labelSet: own ? 'dataset' : 'tinyfer',
    epochs,
    network: bool(a, 'float') ? 'float twin' : 'binary',
    views,
    detect,
    skipped: data.skipped.length,
    init: optStr(a, 'init') ?? null,
    foldAccuracy: foldAcc,
    meanFoldAccuracy: mean,
    sdFoldAccuracy: sd,
    seconds: (Date.now() - t0) / 1000,
    ...report,
  };
  fs.writeFileSync(path.join(out, `report${tag}.json`), JSON.stringify(summary, null, 1));
  fs.writeFileSync(path.join(out, `confusion${tag}.png`), await confusionPng(report, `${k}-fold subject-independent: ${path.basename(dataDir)}`));
  process.stdout.write(formatReport(report) + `\nmean fold accuracy ${(mean * 100).toFixed(2)} % (sd ${(sd * 100).toFixed(2)})\n`);
  return 0;
}
