#!/usr/bin/env node
'use strict';
/**
 * `npm run soak -- [--minutes 60]`: the demo fleet with frames on, for a given time, with Node-RED
 * in a process of its own (scripts/soak/nodered.js). Each sampling interval (default 60 s) the
 * Node-RED process's RSS, heap (as found and after a full GC), event-loop delay p99 and the
 * messages it handled go to samples.csv; at the end plot.png (and plot.svg) and summary.json,
 * in a folder it prints (default .tinyfer/soak/<time>). It then fits a line (least squares) to
 * RSS and heap-after-GC over the last minutes (scripts/soak/analyse.js states the bounds) and
 * says whether memory levels off; with --check it exits 1 when it does not.
 *
 * Options: --minutes N (60)  --sample-seconds S (60)  --devices N (4)  --interval MS (250, each
 * device's capture interval)  --warmup MIN (min(10, minutes/3))  --window MIN (last half of the
 * run after warm-up)  --out DIR  --check  --model BLOB.tfer  --faces DIR
 * --heap-snapshots: V8 heap snapshots of the Node-RED process at the end of warm-up and at the end
 * (heap-warm.heapsnapshot, heap-end.heapsnapshot); `node scripts/soak/heap-diff.js A B` lists what grew.
 * --replot DIR: check and plot a finished run's folder again (--warmup / --window may change).
 */
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { fork } = require('node:child_process');
const A = require('./soak/analyse');

const REPO = path.resolve(__dirname, '..');

function parse(argv) {
  const o = { minutes: 60, sampleSeconds: 60, devices: 4, intervalMs: 250, check: false };
  const num = (name, v, { int = false, min = 0 } = {}) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || (int && !Number.isInteger(n)) || n <= min) throw new Error(`--${name} needs a ${int ? 'whole ' : ''}number above ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = argv[i + 1];
    switch (a) {
      case '--minutes': o.minutes = num('minutes', v); i++; break;
      case '--sample-seconds': o.sampleSeconds = num('sample-seconds', v); i++; break;
      case '--devices': o.devices = num('devices', v, { int: true }); i++; break;
      case '--interval': o.intervalMs = num('interval', v, { int: true, min: 49 }); i++; break;
      case '--warmup': o.warmupMin = num('warmup', v, { min: -1 }); i++; break;
      case '--window': o.windowMin = num('window', v); i++; break;
      case '--out': if (!v) throw new Error('--out needs a folder'); o.out = v; i++; break;
      case '--model': if (!v) throw new Error('--model needs a .tfer file'); o.model = path.resolve(v); i++; break;
      case '--faces': if (!v) throw new Error('--faces needs a folder'); o.faces = path.resolve(v); i++; break;
      case '--check': o.check = true; break;
      case '--heap-snapshots': o.heapSnapshots = true; break;
      case '--replot': if (!v) throw new Error('--replot needs a soak folder'); o.replot = v; i++; break;
      case '-h': case '--help':
        console.log('usage: npm run soak -- [--minutes 60] [--sample-seconds 60] [--devices 4] [--interval 250] [--warmup MIN] [--window MIN] [--out DIR] [--check] [--heap-snapshots] [--replot DIR] [--model BLOB.tfer] [--faces DIR]');
        process.exit(0);
        break;
      default: throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  o.given = new Set(['warmupMin', 'windowMin'].filter((k) => o[k] !== undefined));
  if (o.warmupMin === undefined) o.warmupMin = Math.min(10, o.minutes / 3);
  if (o.windowMin === undefined) o.windowMin = (o.minutes - o.warmupMin) / 2;
  if (o.warmupMin >= o.minutes) throw new Error(`--warmup (${o.warmupMin}) must be shorter than --minutes (${o.minutes})`);
  const inWindow = Math.floor(Math.min(o.windowMin, o.minutes - o.warmupMin) * 60 / o.sampleSeconds) + 1;
  if (inWindow < 3) throw new Error(`only ${inWindow} samples would fall in the fitted window: sample more often (--sample-seconds) or run longer`);
  return o;
}

/** Growth check, summary.json, plot.png/svg and the closing lines; sets the exit code under --check. */
async function report(samples, o, meta, out) {
  const { sent } = meta;
  const csv = path.join(out, 'samples.csv');
  const check = A.growthCheck(samples, { warmupMin: o.warmupMin, windowMin: o.windowMin });
  const summary = { options: { ...o, out: undefined, replot: undefined, given: undefined }, ...meta, ...A.summarise(samples), check };
  const starved = samples.filter((s) => s.t / 60 >= check.from - 1e-9 && s.framesClassified === 0).length;
  summary.frameless = starved;
  const svg = A.plotSvg(samples, { title: `TinyFER soak: ${o.devices} cameras every ${o.intervalMs} ms, frames on, Node-RED ${meta.nodeRed} / Node ${meta.node}`, check });
  fs.writeFileSync(path.join(out, 'plot.svg'), svg);
  await A.writePng(svg, path.join(out, 'plot.png'));
  fs.writeFileSync(path.join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');

  const f = (v) => `${v.slopeMiBPerMin >= 0 ? '+' : ''}${v.slopeMiBPerMin.toFixed(3)} MiB/min (bound ${v.bound}, ${v.points} samples)`;
  console.log(`soak: ${summary.minutes.toFixed(1)} min, devices sent ${sent.frames} frames and ${sent.emotions} emotions; Node-RED handled ${summary.delivered} messages (${summary.deliveredPerMin.toFixed(0)}/min), classified ${summary.framesClassified} frames, ${summary.errors} flow errors`);
  console.log(`soak: RSS ${summary.rssMiB.first.toFixed(1)} -> ${summary.rssMiB.last.toFixed(1)} MiB (max ${summary.rssMiB.max.toFixed(1)}), heap after GC ${summary.heapAfterGcMiB.first.toFixed(1)} -> ${summary.heapAfterGcMiB.last.toFixed(1)} MiB, ELD p99 median ${summary.eldP99Ms.median.toFixed(1)} ms (max ${summary.eldP99Ms.max.toFixed(1)})`);
  console.log(`soak: fitted over minutes ${check.from.toFixed(1)}-${check.to.toFixed(1)}: RSS less V8 new space ${f(check.series.rss)}, heap after GC ${f(check.series.heapAfterGc)}: ${check.ok ? 'memory levels off' : 'MEMORY GROWS'}`);
  console.log(`soak: ${csv}\nsoak: ${path.join(out, 'plot.png')}`);
  if (o.check && (!check.ok || starved)) {
    if (starved) console.error(`soak: ${starved} samples after warm-up saw no frame classified: the frame path was not exercised`);
    process.exitCode = 1;
  }
}

/** --replot DIR: the check, plot and summary again from a finished run's samples.csv (and its summary.json). */
async function replot(o) {
  const dir = path.resolve(o.replot);
  const prev = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
  const samples = A.readCsv(path.join(dir, 'samples.csv'));
  const given = o.given;
  const opts = { ...prev.options, check: o.check };
  if (given.has('warmupMin')) opts.warmupMin = o.warmupMin;
  if (given.has('windowMin')) opts.windowMin = o.windowMin;
  await report(samples, opts, { nodeRed: prev.nodeRed, node: prev.node, sent: prev.sent }, dir);
}

async function main() {
  const o = parse(process.argv.slice(2));
  if (o.replot) return replot(o);
  for (const f of ['dist/demo/demo.js', 'dist/fleet/simulator.js']) if (!fs.existsSync(path.join(REPO, f))) throw new Error(`${f} is missing: run \`npm run build\` first`);
  const { Simulator, loadFaces } = require(path.join(REPO, 'dist', 'fleet', 'simulator.js'));
  const { getClassifier } = require(path.join(REPO, 'dist', 'runtime', 'models.js'));
  const out = path.resolve(o.out ?? path.join(REPO, '.tinyfer', 'soak', new Date().toISOString().replace(/[:.]/g, '-')));
  fs.mkdirSync(out, { recursive: true });
  const cleanups = [];
  const stopAll = async () => { for (const c of cleanups.splice(0).reverse()) { try { await c(); } catch (e) { console.error(`soak: while stopping: ${e.message}`); } } };
  process.on('SIGINT', () => { console.error('\nsoak: interrupted'); stopAll().then(() => process.exit(130)); });

  try {
    // The broker (aedes, as the demo runs it) and the virtual cameras live in this process.
    const { Aedes } = require('aedes');
    const aedes = await Aedes.createBroker();
    const mqttServer = net.createServer(aedes.handle);
    const sockets = new Set();
    mqttServer.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
    await new Promise((resolve, reject) => { mqttServer.once('error', reject); mqttServer.listen(0, '127.0.0.1', resolve); });
    cleanups.push(() => new Promise((r) => { for (const s of sockets) s.destroy(); mqttServer.close(() => aedes.close(() => r())); }));
    const mqttUrl = `mqtt://127.0.0.1:${mqttServer.address().port}`;

    // Node-RED in its own process: what is measured is its memory and its event loop.
    const userDir = path.join(out, 'userdir');
    const child = fork(path.join(__dirname, 'soak', 'nodered.js'), [JSON.stringify({ mqttUrl, userDir, sampleMs: o.sampleSeconds * 1000, model: o.model })],
      { execArgv: [...process.execArgv, '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig })));
    cleanups.push(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.send({ cmd: 'stop' });
      const t = setTimeout(() => child.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(t);
    });
    const ready = await new Promise((resolve, reject) => {
      child.once('message', (m) => (m.type === 'ready' ? resolve(m) : reject(new Error(`Node-RED process: ${m.message}`))));
      exited.then(({ code, sig }) => reject(new Error(`Node-RED process exited (${code ?? sig}) before it was ready`)));
    });

    const faces = loadFaces({ dir: o.faces, perLabel: 12 });
    const model = getClassifier({ backend: 'binary', modelPath: o.model });
    cleanups.push(() => model.release());
    const classifier = await model.classifier;
    const sim = new Simulator({
      url: mqttUrl, count: o.devices, idPrefix: 'cam-', faces, protocolVersion: 4, classifier,
      config: { capture_interval_ms: o.intervalMs }, telemetryIntervalMs: 5000, chunkBytes: 1024, firmware: '0.1.0-demo',
    });
    await sim.start();
    cleanups.push(() => sim.stop());
    console.log(`soak: ${o.devices} virtual cameras every ${o.intervalMs} ms on ${mqttUrl} -> Node-RED ${ready.nodeRed} on Node ${ready.node} (pid ${ready.pid}, ${ready.editor})`);
    console.log(`soak: ${o.minutes} min, a sample every ${o.sampleSeconds} s, into ${out}`);

    // Samples until the run's time is up.
    const csv = path.join(out, 'samples.csv');
    fs.writeFileSync(csv, A.csvHeader());
    const samples = [];
    const want = Math.round((o.minutes * 60) / o.sampleSeconds);
    const snapshot = (name) => new Promise((resolve, reject) => {
      const on = (m) => {
        if (m.type !== 'heapSnapshot') return;
        child.off('message', on);
        if (m.error) reject(new Error(`heap snapshot: ${m.error}`));
        else { console.log(`soak: heap snapshot ${m.file}`); resolve(m.file); }
      };
      child.on('message', on);
      child.send({ cmd: 'heapSnapshot', file: path.join(out, name) });
    });
    let warmSnapshot;
    await new Promise((resolve, reject) => {
      let prevT = 0;
      child.on('message', (m) => {
        if (m.type !== 'sample' || samples.length >= want) return;
        if (o.heapSnapshots && !warmSnapshot && m.t / 60 >= o.warmupMin - 1e-9) warmSnapshot = snapshot('heap-warm.heapsnapshot').catch(reject);
        const s = { ...m, intervalS: m.t - prevT };
        prevT = m.t;
        samples.push(s);
        fs.appendFileSync(csv, A.csvLine(s));
        console.log(`  ${(s.t / 60).toFixed(1).padStart(5)} min  RSS ${(s.rss / A.MiB).toFixed(1)} MiB  heap ${(s.heapUsed / A.MiB).toFixed(1)} (after GC ${(s.heapAfterGc / A.MiB).toFixed(1)}) MiB  ` +
          `ELD p99 ${s.eldP99.toFixed(1)} ms  ${(s.delivered * 60 / s.intervalS).toFixed(0)} msgs/min  ${s.framesClassified} frames classified${s.errors ? `  ${s.errors} flow errors (${s.lastError})` : ''}`);
        if (samples.length >= want) {
          if (o.heapSnapshots) Promise.resolve(warmSnapshot).then(() => snapshot('heap-end.heapsnapshot')).then(resolve, reject);
          else resolve();
        }
      });
      exited.then(({ code, sig }) => reject(new Error(`the Node-RED process exited (${code ?? sig}) after ${samples.length} samples`)));
    });
    const sent = sim.devices.reduce((a, d) => ({ frames: a.frames + d.sent.frames, emotions: a.emotions + d.sent.emotion }), { frames: 0, emotions: 0 });
    await stopAll();

    await report(samples, o, { nodeRed: ready.nodeRed, node: ready.node, sent }, out);
  } catch (e) {
    await stopAll();
    throw e;
  }
}

main().catch((e) => { console.error(`soak: ${e.message}`); process.exit(1); });
