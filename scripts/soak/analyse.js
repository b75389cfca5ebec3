'use strict';
/**
 * The soak's figures (scripts/soak.js): the CSV, the least-squares growth check, and the plot.
 *
 * Growth check: a straight line fitted (least squares) to each memory series over the last
 * `windowMin` minutes of the run, after `warmupMin` minutes of warm-up (model loading, the JIT,
 * Node-RED's first deploy, malloc arenas filling). A series "grows" when the fitted slope exceeds
 * its bound in MiB per minute. The bounds separate a leak from noise on a loaded 2-core machine:
 *   heap after a full GC: 0.5 MiB/min  (measured noise: |slope| < 0.08 MiB/min after minute 2; one
 *                                       leaked KiB per frame at the soak's 16 frames/s is 0.94 MiB/min)
 *   RSS:                  4 MiB/min    (fitted less V8's new space, see rssOrHeap; what is left still
 *                                       moves in steps of a few MiB as malloc arenas fill and V8 takes
 *                                       or returns old-space pages; a step of h MiB in the middle of a
 *                                       3-minute window fits as h/2 MiB/min. An undisposed 48x48 float
 *                                       tensor per frame would be 8.4 MiB/min)
 * Not a timing: what is asserted is how memory moves per minute of messages, whatever the speed.
 */
const fs = require('node:fs');

const MiB = 1024 * 1024;
const DEFAULT_BOUNDS = Object.freeze({ rssMiBPerMin: 4, heapAfterGcMiBPerMin: 0.5 });

/** Least-squares line through (xs, ys): { slope, intercept, r2, n }. Needs 3+ points and 2+ distinct xs. */
function fitLine(xs, ys) {
  if (!Array.isArray(xs) || !Array.isArray(ys) || xs.length !== ys.length) throw new Error('fitLine: xs and ys must be arrays of one length');
  const n = xs.length;
  if (n < 3) throw new Error(`fitLine: needs at least 3 points, got ${n}`);
  for (let i = 0; i < n; i++) if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) throw new Error(`fitLine: point ${i} is not finite (${xs[i]}, ${ys[i]})`);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0, sxy = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i] - mx) ** 2;
    sxy += (xs[i] - mx) * (ys[i] - my);
    syy += (ys[i] - my) ** 2;
  }
  if (sxx === 0) throw new Error('fitLine: all xs are equal');
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy), n };
}

/**
 * The growth check over samples ({ t: seconds, rss, heapAfterGc, newSpace? } in bytes).
 * Returns { ok, from, to, series: { rss: {...}, heapAfterGc: {...} } } where each series has the
 * slope (MiB/min) over [from, to] minutes, its bound and ok.
 */
function growthCheck(samples, { warmupMin = 2, windowMin = 3, bounds = DEFAULT_BOUNDS } = {}) {
  if (!Array.isArray(samples) || !samples.length) throw new Error('growthCheck: no samples');
  const end = samples[samples.length - 1].t / 60;
  const from = Math.max(warmupMin, end - windowMin);
  const win = samples.filter((s) => s.t / 60 >= from - 1e-9);
  if (win.length < 3) throw new Error(`growthCheck: only ${win.length} samples after ${from.toFixed(2)} min (run ${end.toFixed(2)} min, warm-up ${warmupMin} min): run longer or sample more often`);
  const xs = win.map((s) => s.t / 60);
  const series = {};
  for (const [key, bound] of [['rss', bounds.rssMiBPerMin], ['heapAfterGc', bounds.heapAfterGcMiBPerMin]]) {
    const fit = fitLine(xs, win.map((s) => rssOrHeap(s, key) / MiB));
    series[key] = { slopeMiBPerMin: fit.slope, r2: fit.r2, bound, ok: fit.slope <= bound, points: fit.n };
  }
  return { ok: Object.values(series).every((s) => s.ok), from, to: end, series };
}

/**
 * The fitted value: heap after GC as sampled; RSS less V8's new space (the young generation) when
 * the sample has it. The new space doubles on its own (2, 4, 8, 16 MiB up to two 16 MiB
 * semi-spaces on 64-bit: RSS steps of up to 16 MiB, minutes apart) and is bounded by V8, so it is
 * noise for a leak check; what is kept grows the old space or native memory, still in the figure.
 */
function rssOrHeap(s, key) {
  if (key === 'rss') return s.rss - (Number.isFinite(s.newSpace) ? s.newSpace : 0);
  return s[key];
}

const COLUMNS = [
  ['minute', (s) => (s.t / 60).toFixed(3)],
  ['interval_s', (s) => s.intervalS.toFixed(3)],
  ['rss_mib', (s) => (s.rss / MiB).toFixed(2)],
  ['heap_used_mib', (s) => (s.heapUsed / MiB).toFixed(2)],
  ['heap_after_gc_mib', (s) => (s.heapAfterGc / MiB).toFixed(2)],
  ['heap_total_mib', (s) => (s.heapTotal / MiB).toFixed(2)],
  ['new_space_mib', (s) => (s.newSpace / MiB).toFixed(2)],
  ['old_space_mib', (s) => (s.oldSpace / MiB).toFixed(2)],
  ['external_mib', (s) => (s.external / MiB).toFixed(2)],
  ['array_buffers_mib', (s) => (s.arrayBuffers / MiB).toFixed(2)],
  ['eld_p50_ms', (s) => s.eldP50.toFixed(2)],
  ['eld_p99_ms', (s) => s.eldP99.toFixed(2)],
  ['eld_max_ms', (s) => s.eldMax.toFixed(2)],
  ['delivered', (s) => String(s.delivered)],
  ['delivered_per_min', (s) => (s.delivered * 60 / s.intervalS).toFixed(0)],
  ['frames_classified', (s) => String(s.framesClassified)],
  ['device_emotions', (s) => String(s.deviceEmotions)],
  ['flow_errors', (s) => String(s.errors)],
  ['cpu_ms', (s) => (s.cpuUserMs + s.cpuSystemMs).toFixed(0)],
];

function csvHeader() { return COLUMNS.map(([k]) => k).join(',') + '\n'; }
function csvLine(s) { return COLUMNS.map(([, f]) => f(s)).join(',') + '\n'; }

/** Summary figures of a run (for the console and the README). */
function summarise(samples) {
  const q = (arr, p) => { const a = [...arr].sort((x, y) => x - y); return a[Math.min(a.length - 1, Math.floor(p * a.length))]; };
  const total = (k) => samples.reduce((a, s) => a + s[k], 0);
  const minutes = samples.length ? samples[samples.length - 1].t / 60 : 0;
  const first = samples[0], last = samples[samples.length - 1];
  return {
    minutes,
    delivered: total('delivered'), framesClassified: total('framesClassified'), deviceEmotions: total('deviceEmotions'), errors: total('errors'),
    deliveredPerMin: total('delivered') / minutes,
    rssMiB: { first: first.rss / MiB, last: last.rss / MiB, max: Math.max(...samples.map((s) => s.rss)) / MiB },
    heapAfterGcMiB: { first: first.heapAfterGc / MiB, last: last.heapAfterGc / MiB, max: Math.max(...samples.map((s) => s.heapAfterGc)) / MiB },
    eldP99Ms: { median: q(samples.map((s) => s.eldP99), 0.5), max: Math.max(...samples.map((s) => s.eldP99)) },
  };
}

function esc(s) { return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;'); }

/** An SVG of the run: memory (RSS, heap used, heap after GC), event-loop delay p99, messages/min. */
function plotSvg(samples, { title = 'TinyFER soak', check } = {}) {
  const W = 900, panelH = 190, top = 56, gap = 44, left = 70, right = 20;
  const panels = [
    { name: 'Node-RED memory (MiB)', lines: [['rss', 'RSS', '#d62728'], ['heapUsed', 'heap used', '#9ecae1'], ['heapAfterGc', 'heap after GC', '#1f77b4']], f: (s, k) => s[k] / MiB, zero: true },
    { name: 'event-loop delay p99 (ms)', lines: [['eldP99', 'p99', '#2ca02c']], f: (s, k) => s[k], zero: true },
    { name: 'messages handled per minute', lines: [['delivered', 'node deliveries', '#ff7f0e'], ['framesClassified', 'frames classified', '#8c564b']], f: (s, k) => s[k] * 60 / s.intervalS, zero: true },
  ];
  const H = top + panels.length * (panelH + gap) + 10;
  const xMax = Math.max(1, samples.length ? samples[samples.length - 1].t / 60 : 1);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${left}" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`];
  if (check) {
    const t = Object.entries(check.series).map(([k, v]) => `${{ rss: 'RSS less new space', heapAfterGc: 'heap after GC' }[k] || k} ${v.slopeMiBPerMin >= 0 ? '+' : ''}${v.slopeMiBPerMin.toFixed(3)} MiB/min (bound ${v.bound})`).join(', ');
    out.push(`<text x="${left}" y="38" font-size="11" fill="#444">slope over minutes ${check.from.toFixed(1)}-${check.to.toFixed(1)}: ${esc(t)}: ${check.ok ? 'levels off' : 'GROWS'}</text>`);
  }
  panels.forEach((p, i) => {
    const y0 = top + i * (panelH + gap) + 10, pw = W - left - right;
    const vals = samples.flatMap((s) => p.lines.map(([k]) => p.f(s, k)));
    const yMin = p.zero ? 0 : Math.min(...vals);
    const raw = (Math.max(...vals, 1e-9) - yMin) / 4, mag = 10 ** Math.floor(Math.log10(raw));
    const tick = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((k) => k >= raw);
    const yMax = yMin + 4 * tick;
    const X = (m) => left + (m / xMax) * pw, Y = (v) => y0 + panelH - ((v - yMin) / (yMax - yMin)) * panelH;
    out.push(`<rect x="${left}" y="${y0}" width="${pw}" height="${panelH}" fill="none" stroke="#999"/>`);
    out.push(`<text x="${left}" y="${y0 - 5}" font-weight="bold">${esc(p.name)}</text>`);
    for (let k = 0; k <= 4; k++) {
      const v = yMin + tick * k;
      out.push(`<line x1="${left}" x2="${left + pw}" y1="${Y(v)}" y2="${Y(v)}" stroke="#eee"/>`, `<text x="${left - 6}" y="${Y(v) + 4}" text-anchor="end">${Number.isInteger(v) ? v : v.toFixed(1)}</text>`);
    }
    const step = xMax > 30 ? 10 : xMax > 10 ? 2 : 1;
    for (let m = 0; m <= xMax + 1e-9; m += step) out.push(`<text x="${X(m)}" y="${y0 + panelH + 14}" text-anchor="middle">${m}</text>`);
    if (i === panels.length - 1) out.push(`<text x="${left + pw / 2}" y="${y0 + panelH + 30}" text-anchor="middle">minutes</text>`);
    p.lines.forEach(([k, label, color], j) => {
      const pts = samples.map((s) => `${X(s.t / 60).toFixed(1)},${Y(p.f(s, k)).toFixed(1)}`).join(' ');
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="1.6" points="${pts}"/>`);
      const lx = left + pw - 140 * (p.lines.length - j);
      out.push(`<rect x="${lx}" y="${y0 - 10}" width="12" height="3" fill="${color}"/><text x="${lx + 16}" y="${y0 - 5}">${esc(label)}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n');
}

/** The SVG as a PNG file, with sharp (a dependency already). */
async function writePng(svg, file) {
  const sharp = require('sharp');
  await sharp(Buffer.from(svg)).png({ compressionLevel: 9, palette: true }).toFile(file);
}

/** Samples back from a CSV this module wrote (for re-plotting or re-checking a finished run). */
function readCsv(file) {
  const [head, ...rows] = fs.readFileSync(file, 'utf8').trim().split('\n');
  const cols = head.split(',');
  const need = ['minute', 'interval_s', 'rss_mib', 'heap_used_mib', 'heap_after_gc_mib', 'eld_p99_ms', 'delivered', 'frames_classified'];
  for (const c of need) if (!cols.includes(c)) throw new Error(`${file}: not a soak CSV (no column ${c})`);
  return rows.map((r) => {
    const v = Object.fromEntries(r.split(',').map((x, i) => [cols[i], Number(x)]));
    return {
      t: v.minute * 60, intervalS: v.interval_s, rss: v.rss_mib * MiB, heapUsed: v.heap_used_mib * MiB, heapAfterGc: v.heap_after_gc_mib * MiB,
      heapTotal: v.heap_total_mib * MiB, newSpace: (v.new_space_mib ?? NaN) * MiB, oldSpace: (v.old_space_mib ?? NaN) * MiB, external: v.external_mib * MiB, arrayBuffers: v.array_buffers_mib * MiB,
      eldP50: v.eld_p50_ms, eldP99: v.eld_p99_ms, eldMax: v.eld_max_ms, delivered: v.delivered, framesClassified: v.frames_classified,
      deviceEmotions: v.device_emotions, errors: v.flow_errors, cpuUserMs: v.cpu_ms, cpuSystemMs: 0,
    };
  });
}

module.exports = { MiB, DEFAULT_BOUNDS, fitLine, growthCheck, csvHeader, csvLine, summarise, plotSvg, writePng, readCsv };
