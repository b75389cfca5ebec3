/**
 * Evaluation: top-1 accuracy, per-class precision / recall / F1, confusion matrix (JSON and a
 * PNG rendered with sharp).
 */
import sharp from 'sharp';
import { LABELS } from '../model/labels';

export interface ClassMetrics {
  label: string;
  support: number;
  precision: number;
  recall: number;
  f1: number;
}

export interface EvalReport {
  accuracy: number;
  count: number;
  correct: number;
  macroF1: number;
  perClass: ClassMetrics[];
  /** confusion[true][predicted] */
  confusion: number[][];
  labels: string[];
}

export function argmax(s: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < s.length; i++) if (s[i] > s[best]) best = i;
  return best;
}

/**
 * Metrics from true and predicted class indices. `classes` restricts the per-class rows to the
 * labels a dataset has; predictions outside it still count as errors.
 */
export function computeMetrics(
  truth: ArrayLike<number>,
  pred: ArrayLike<number>,
  classes?: number[],
  classNames: readonly string[] = LABELS,
): EvalReport {
  if (truth.length !== pred.length) throw new Error('truth and predictions differ in length');
  const k = classNames.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let correct = 0;
  for (let i = 0; i < truth.length; i++) {
    confusion[truth[i]][pred[i]]++;
    if (truth[i] === pred[i]) correct++;
  }
  const used = classes ?? classNames.map((_, i) => i);
  const perClass = used.map((c) => {
    const tp = confusion[c][c];
    const support = confusion[c].reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[c], 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { label: classNames[c], support, precision, recall, f1 };
  });
  const withSupport = perClass.filter((m) => m.support > 0);
  return {
    accuracy: truth.length ? correct / truth.length : 0,
    count: truth.length,
    correct,
    macroF1: withSupport.reduce((a, m) => a + m.f1, 0) / Math.max(1, withSupport.length),
    perClass,
    confusion,
    labels: [...classNames],
  };
}

/** Plain-text table of the report (for the terminal). */
export function formatReport(r: EvalReport): string {
  const lines: string[] = [];
  lines.push(`accuracy ${(r.accuracy * 100).toFixed(2)} % (${r.correct}/${r.count}), macro F1 ${r.macroF1.toFixed(3)}`);
  lines.push('');
  lines.push('label      support  precision  recall  f1');
  for (const m of r.perClass) {
    lines.push(
      `${m.label.padEnd(10)} ${String(m.support).padStart(7)}  ${m.precision.toFixed(3).padStart(9)}  ${m.recall.toFixed(3).padStart(6)}  ${m.f1.toFixed(3)}`,
    );
  }
  lines.push('');
  lines.push('confusion (rows: true, columns: predicted)');
  lines.push('           ' + r.labels.map((l) => l.slice(0, 7).padStart(8)).join(''));
  r.confusion.forEach((row, i) => lines.push(r.labels[i].padEnd(11) + row.map((v) => String(v).padStart(8)).join('')));
  return lines.join('\n');
}

function esc(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] as string);
}

/** The confusion matrix as a PNG (row-normalised colour, counts printed), rendered from SVG by sharp. */
export async function confusionPng(r: EvalReport, title = 'TinyFER confusion matrix'): Promise<Buffer> {
  const k = r.labels.length;
  const cell = 64;
  const left = 110;
  const top = 90;
  const w = left + k * cell + 20;
  const h = top + k * cell + 40;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="DejaVu Sans, sans-serif">`);
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  parts.push(`<text x="${w / 2}" y="24" font-size="16" text-anchor="middle">${esc(title)}</text>`);
  parts.push(`<text x="${w / 2}" y="44" font-size="12" text-anchor="middle">accuracy ${(r.accuracy * 100).toFixed(2)} % on ${r.count} faces; rows true, columns predicted</text>`);
  for (let j = 0; j < k; j++) {
    parts.push(`<text x="${left + j * cell + cell / 2}" y="${top - 8}" font-size="11" text-anchor="middle">${esc(r.labels[j])}</text>`);
  }
  for (let i = 0; i < k; i++) {
    const total = r.confusion[i].reduce((a, b) => a + b, 0);
    parts.push(`<text x="${left - 8}" y="${top + i * cell + cell / 2 + 4}" font-size="11" text-anchor="end">${esc(r.labels[i])}</text>`);
    for (let j = 0; j < k; j++) {
      const v = r.confusion[i][j];
      const f = total ? v / total : 0;
      const shade = Math.round(255 - f * 200);
      const fill = i === j ? `rgb(${shade},${Math.round(255 - f * 120)},${shade})` : `rgb(255,${shade},${shade})`;
      parts.push(`<rect x="${left + j * cell}" y="${top + i * cell}" width="${cell}" height="${cell}" fill="${fill}" stroke="#999"/>`);
      parts.push(`<text x="${left + j * cell + cell / 2}" y="${top + i * cell + cell / 2 + 4}" font-size="12" text-anchor="middle">${v}</text>`);
    }
  }
  parts.push('</svg>');
  return sharp(Buffer.from(parts.join(''))).png().toBuffer();
}
