/**
 * `tinyfer` command line: train, eval, cv, export, stem-int8, info.
 */
import * as fs from 'fs';
import * as path from 'path';
import { bool, num, optStr, parseArgs, ParsedArgs, regularisation, str, teacherOption, UsageError } from './args';
import { ARCHS, type ArchName } from '../model/archs';

/** --arch: one of the named architectures (src/model/archs.ts). */
function archArg(v: string | undefined): ArchName | undefined {
  if (v === undefined) return undefined;
  if (!(v in ARCHS)) throw new UsageError(`--arch must be one of ${Object.keys(ARCHS).join(', ')}, got ${v}`);
  return v as ArchName;
}

const USAGE = `usage: tinyfer <command> [options]

  train   --data <dir|csv> [--val <dir|csv>] --out <dir> [--epochs 30] [--batch 128] [--lr 0.002]
          [--seed 42] [--float] [--arch tinyfer-b1|tinyfer-b2|tinyfer-b1r|tinyfer-b1g] [--init <tfjs model dir>] [--resume] [--no-augment | --augment 0..1] [--dropout 0.2] [--stem-int8]
          [--teacher <tfjs model dir|face-api|scores.json>[,...] [--teacher-weights 1,...] [--teacher-views 10] [--distill 0.5]]
          Train the binary network (or its float twin with --float) on tfjs-node. --init with another --arch
          grows it: blocks it lacks start as the identity, a grid head (tinyfer-b1g) as its global-average head;
          --epochs 0 writes that initialised network without training (e.g. for scripts/gpu-student/student.py).
          --teacher distils: the teachers' averaged probabilities on the training faces (over --teacher-views
          test-time views, cached in --out) are mixed into the labels with weight --distill. A scores.json
          teacher (scripts/gpu-teacher/teacher.py) brings its own probabilities per face.
          --stem-int8 puts the stem conv's kernel on the int8 grid per output channel (fitted as stem-int8 does;
          a kernel already on the grid stays) and freezes it; export then writes an int8 stem (blob format
          version 2) that the C core runs in integers (the ESP32-S3's fast stem;
          scripts/gpu-student/student.py --stem-int8 trains it through the rounding).
  eval    --model <model dir|blob.tfer|model.json> --data <dir|csv> [--split PrivateTest] [--detect]
          [--backend binary|tfjs] [--views 1|2|10 | --mirror] [--out <report dir>] [--json]
          Accuracy, per-class precision/recall/F1, confusion matrix (PNG + JSON report).
          --views averages each face's scores over test-time views: 2 = with its mirror image (= --mirror),
          10 = mirror image and one-pixel shifts of both.
  cv      --data <dir> [--folds 10] --out <dir> [--epochs 30] [--batch 64] [--lr 0.001] [--init <tfjs model dir>] [--float]
          [--labels own|ours] [--subject-pattern <regex>] [--detect] [--augment 0..1] [--dropout 0.2] [--views 1|2|10 | --mirror]
          Subject-independent k-fold cross-validation (e.g. CK+; JAFFE with --detect: 10 subjects, leave-one-subject-out).
          --detect (eval, cv): crop each image's face with the frame pipeline's detector instead of taking the whole image.
  export  --model <tfjs model dir> --out <file.tfer> [--header <file.h>] [--name <text>]
          Write the compact model blob (and a C header) that the C core loads.
  stem-int8 --model <tfjs model dir> --data <dir|csv> --out <tfjs model dir> [--faces 1000] [--seed 1]
          The model with its float stem replaced by an int8 one, no training: each channel's integers, scale and
          offset fitted on --faces training faces to keep the first binary block's signs. Then export it.
  info    [--model <path>]
          Which TensorFlow.js runtime loads here; model parameters and sizes.
`;

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const cmd = args._[0];
  try {
    switch (cmd) {
      case 'train':
        return await cmdTrain(args);
      case 'eval':
        return await (await import('./eval')).cmdEval(args);
      case 'cv':
        return await (await import('./cv')).cmdCv(args);
      case 'export':
        return await (await import('./export')).cmdExport(args);
      case 'stem-int8':
        return await (await import('./stem-int8')).cmdStemInt8(args);
      case 'info':
        return await (await import('./info')).cmdInfo(args);
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(USAGE);
        return cmd ? 0 : 1;
      default:
        throw new UsageError(`unknown command '${cmd}'`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`tinyfer: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`tinyfer: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

async function cmdTrain(a: ParsedArgs): Promise<number> {
  const { loadDataset } = await import('../train/data');
  const { train } = await import('../train/train');
  const { loadTfForTraining } = await import('../engine/tf');
  const out = str(a, 'out');
  const arch = archArg(optStr(a, 'arch'));
  const reg = regularisation(a);
  const teacher = teacherOption(a);
  const { tf } = await loadTfForTraining(); // refuse a backend without native gradients before loading any data
  const cacheDir = path.resolve('.cache', 'faces');
  const log = (l: string) => process.stderr.write(l + '\n');
  const trainSet = await loadDataset(str(a, 'data'), { cacheDir, split: optStr(a, 'split') });
  const valPath = optStr(a, 'val');
  const val = valPath ? await loadDataset(valPath, { cacheDir, split: optStr(a, 'val-split') }) : undefined;
  log(`train: ${trainSet.labels.length} faces${val ? `, val: ${val.labels.length} faces` : ''}`);
  let distill: { scores: Float32Array; weight: number } | undefined;
  if (teacher) {
    const { teacherScores } = await import('../train/teacher');
    distill = { scores: await teacherScores(tf, trainSet, teacher, out, log), weight: teacher.weight };
  }
  const r = await train({
    train: trainSet,
    val,
    outDir: out,
    epochs: num(a, 'epochs', 30),
    batchSize: num(a, 'batch', 128),
    lr: num(a, 'lr', 2e-3),
    seed: num(a, 'seed', 42),
    binary: !bool(a, 'float'),
    arch,
    initFrom: optStr(a, 'init'),
    resume: bool(a, 'resume'),
    stemInt8: bool(a, 'stem-int8'),
    ...reg,
    distill,
    maxStepsPerEpoch: a.flags['max-steps'] ? num(a, 'max-steps', 0) : undefined,
    log,
    progress: process.stderr,
  });
  const summary = {
    bestEpoch: r.bestEpoch,
    bestValAccuracy: r.bestValAccuracy,
    epochs: r.history.length,
    seconds: Math.round(r.seconds),
    modelDir: r.modelDir,
  };
  fs.writeFileSync(path.join(out, 'summary.json'), JSON.stringify({ ...summary, history: r.history }, null, 1));
  process.stdout.write(JSON.stringify(summary) + '\n');
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
