#!/usr/bin/env node
'use strict';
// Fleet load run (a bench, not a test): N virtual devices each publishing QoS 1 emotions at R msg/s
// for S seconds to a real Mosquitto broker (started here on a free loopback port, or --url), one
// FleetManager receiving them through the registry. Every message is accounted for: sent, PUBACKed,
// received once, lost, duplicated, out of order; plus end-to-end latency and CPU.
// Then the consumer columns (issue 21): frames classified per second by 1 and by 2 Node-RED
// processes in one MQTT 5 shared-subscription group (test/helpers/consumer-nodered.js: fleet ->
// devices -> tinyfer-emotion), side by side against the same broker and the same offered load:
// --frame-devices virtual devices (one load per count in the list) each sending a frame (one
// chunk) and its emotion every --frame-interval ms; classified frames counted over
// --consumer-seconds after a warm-up. The consumers always speak MQTT 5 (shared groups need it).
//   node bench/fleet-load.js [--devices 500] [--rate 2] [--seconds 60] [--protocol 5|4] [--url mqtt://...]
//                            [--frame-devices 30,60] [--frame-interval 50] [--consumer-seconds 20]
const { performance } = require('node:perf_hooks');
const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startMosquitto } = require('../test/helpers/mosquitto');
const { FleetManager } = require('../dist/fleet/manager');
const { Simulator, loadFaces } = require('../dist/fleet/simulator');

function args(argv) {
    const o = { devices: 500, rate: 2, seconds: 60, protocol: 5, url: '', 'frame-devices': [30, 60], 'frame-interval': 50, 'consumer-seconds': 20 };
    for (let i = 0; i < argv.length; i += 2) {
        const k = argv[i].replace(/^--/, '');
        if (!(k in o)) throw new Error(`unknown option ${argv[i]}`);
        if (k === 'url') { o[k] = argv[i + 1]; continue; }
        if (k === 'frame-devices') {
            o[k] = String(argv[i + 1]).split(',').map(Number);
            if (!o[k].every((x) => Number.isInteger(x) && x > 0)) throw new Error('--frame-devices must be positive integers, comma separated');
            continue;
        }
        o[k] = Number(argv[i + 1]);
        if (!(o[k] > 0)) throw new Error(`--${k} must be a positive number`);
    }
    return o;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);

async function main() {
    const o = args(process.argv.slice(2));
    const broker = o.url ? null : await startMosquitto({ maxInflight: 100 });
    const url = o.url || broker.url;
    const prefix = `load${Date.now().toString(36)}`;
    const faces = loadFaces({ perLabel: 10 });
    const interval = Math.round(1000 / o.rate);

    const m = new FleetManager({ url, prefix, protocolVersion: o.protocol, clientId: `${prefix}-mgr` });
    m.useStream('emotion');
    // Per message accounting, keyed `<device>/<seq>`, for the emotions sent inside the window only.
    let windowOpen = false;
    const sentKeys = new Set(), ackedKeys = new Set(), failedKeys = new Set(), receivedKeys = new Set();
    const lastSeq = new Map();
    let duplicates = 0, outOfOrder = 0, invalid = 0, outside = 0;
    const lat = [];
    m.on('invalid', () => invalid++);
    m.on('event', (e) => {
        if (e.type !== 'emotion') return;
        const key = `${e.deviceId}/${e.payload.seq}`;
        if (!sentKeys.has(key)) { outside++; return; }
        if (receivedKeys.has(key)) { duplicates++; return; }
        receivedKeys.add(key);
        lat.push(Date.now() - e.payload.ts);
        if (e.payload.seq < (lastSeq.get(e.deviceId) ?? -1)) outOfOrder++;
        lastSeq.set(e.deviceId, e.payload.seq);
    });
    await new Promise((r, j) => { m.conn.once('connect', r); m.conn.once('error', j); });

    const sim = new Simulator({
        url, prefix, count: o.devices, idPrefix: 'ld-', faces, protocolVersion: o.protocol,
        config: { capture_interval_ms: interval }, telemetryIntervalMs: 10000, keepaliveS: 60, startConcurrency: 25,
    });
    let mqttErrors = 0;
    sim.on('mqttError', () => mqttErrors++);
    sim.on('emotion', (e) => { if (windowOpen) sentKeys.add(`${e.deviceId}/${e.seq}`); });
    sim.on('acked', (e) => { const k = `${e.deviceId}/${e.seq}`; if (sentKeys.has(k)) ackedKeys.add(k); });
    sim.on('publishFailed', (e) => { const k = `${e.deviceId}/${e.seq}`; if (sentKeys.has(k)) failedKeys.add(k); });
    const t0 = performance.now();
    await sim.start();
    const startS = (performance.now() - t0) / 1000;
    await waitFor(() => m.registry.counts().online === o.devices, 30000);

    const cpu0 = process.cpuUsage();
    const w0 = performance.now();
    windowOpen = true;
    await sleep(o.seconds * 1000);
    windowOpen = false;
    for (const d of sim.devices) d.stop().catch(() => undefined); // stop capturing now; offline + disconnect
    const windowS = (performance.now() - w0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const settled = () => ackedKeys.size + failedKeys.size === sentKeys.size && receivedKeys.size >= ackedKeys.size;
    await waitFor(settled, 20000).catch(() => undefined);
    await waitFor(() => m.registry.counts().offline === o.devices, 20000).catch(() => undefined);

    const S = sentKeys.size, A = ackedKeys.size, F = failedKeys.size, received = receivedKeys.size;
    let missing = 0, unacked = 0;
    for (const k of ackedKeys) if (!receivedKeys.has(k)) missing++;
    for (const k of receivedKeys) if (!ackedKeys.has(k)) unacked++;
    lat.sort((a, b) => a - b);
    const rows = [
        ['devices', o.devices],
        ['rate per device (msg/s)', o.rate],
        ['protocol', o.protocol === 5 ? 'MQTT 5' : 'MQTT 3.1.1'],
        ['connect all devices (s)', startS.toFixed(2)],
        ['measured window (s)', windowS.toFixed(1)],
        ['emotions sent (QoS 1)', S],
        ['  PUBACKed', A],
        ['  publish failed', F],
        ['received by the registry', received],
        ['  lost (acked, never received)', missing],
        ['  received but not acked', unacked],
        ['  from before the window (ignored)', outside],
        ['  duplicates', duplicates],
        ['  out of order (per device)', outOfOrder],
        ['  invalid', invalid],
        ['throughput received (msg/s)', (received / windowS).toFixed(1)],
        ['latency p50 / p95 / p99 / max (ms)', `${pct(lat, 50)} / ${pct(lat, 95)} / ${pct(lat, 99)} / ${lat[lat.length - 1]}`],
        ['process CPU user+sys (% of one core)', (((cpu.user + cpu.system) / 1e6 / windowS) * 100).toFixed(0)],
        ['mqtt client errors', mqttErrors],
        ['devices offline at the end', m.registry.counts().offline],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    console.log(`\nTinyFER fleet load: ${o.devices} devices x ${o.rate} msg/s x ${o.seconds} s against ${o.url ? url : 'Mosquitto (local)'}`);
    console.log('-'.repeat(w + 22));
    for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${String(v)}`);
    console.log('-'.repeat(w + 22));
    const ok = S === A + F && F === 0 && missing === 0 && duplicates === 0 && received === A;
    console.log(ok ? 'every message accounted for: sent = acked = received, none lost or duplicated' : 'ACCOUNTING MISMATCH: see the table');
    await m.close();
    await Promise.all(sim.devices.map((d) => (d.connected ? d.stop() : undefined)));

    // The consumer column: the same offered frame load, classified by 1 and by 2 Node-RED processes.
    const runs = [];
    for (const devices of o['frame-devices']) for (const n of [1, 2]) runs.push(await consumerRun(url, n, devices, faces, o));
    const cw = 36;
    console.log(`\nFleet consumers: Node-RED processes in one MQTT 5 shared group (tinyfer-devices -> tinyfer-emotion, binary model)`);
    console.log(`each device sends 1 frame + 1 emotion every ${o['frame-interval']} ms; ${o['consumer-seconds']} s measured after a 5 s warm-up; ${os.cpus().length} CPU cores`);
    console.log('-'.repeat(cw + 2 + 12 * runs.length));
    const crow = (k, f) => console.log(`${k.padEnd(cw)}  ${runs.map((r) => String(f(r)).padStart(12)).join('')}`);
    crow('devices', (r) => r.devices);
    crow('consumer processes', (r) => r.consumers);
    crow('frames offered (per s)', (r) => (r.offered / r.windowS).toFixed(1));
    crow('frames classified (per s)', (r) => (r.classified / r.windowS).toFixed(1));
    crow('  per consumer (per s)', (r) => r.perConsumer.map((c) => (c / r.windowS).toFixed(0)).join('+'));
    crow('emotions received (per s)', (r) => (r.emotions / r.windowS).toFixed(1));
    crow('consumer CPU (% of one core, each)', (r) => r.consumerCpu.map((c) => (c * 100).toFixed(0)).join('+'));
    crow('devices + bench CPU (% of one core)', (r) => (r.benchCpu * 100).toFixed(0));
    const one = (r) => runs.find((x) => x.devices === r.devices && x.consumers === 1);
    crow('classified vs 1 consumer, same load', (r) => (r.classified / r.windowS / (one(r).classified / one(r).windowS)).toFixed(2) + 'x');
    console.log('-'.repeat(cw + 2 + 12 * runs.length));
    if (broker) await broker.close();
    process.exit(ok ? 0 : 1);
}

/** Count what `n` consumer processes (one shared group) classify of a fleet's frames over a window. */
async function consumerRun(url, n, devices, faces, o) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-consumers-'));
    const prefix = `cons${devices}d${n}c${Date.now().toString(36)}`;
    const kids = [];
    const ask = (c) => new Promise((resolve) => {
        const on = (msg) => { if (msg.type === 'count') { c.off('message', on); resolve(msg); } };
        c.on('message', on);
        c.send({ cmd: 'count' });
    });
    try {
        for (let i = 0; i < n; i++) {
            const c = fork(path.join(__dirname, '..', 'test', 'helpers', 'consumer-nodered.js'), [url, `bench${devices}x${n}`, `${prefix}-c${i + 1}`, path.join(dir, `c${i + 1}.log`), prefix], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
            kids.push(c);
            await new Promise((resolve, reject) => { c.once('message', (msg) => (msg.type === 'ready' ? resolve() : reject(new Error(JSON.stringify(msg))))); c.once('exit', (code) => reject(new Error(`consumer exited ${code}`))); });
        }
        const sim = new Simulator({
            url, prefix, count: devices, idPrefix: 'fr-', faces, telemetryIntervalMs: 10000, keepaliveS: 60,
            config: { frames_enabled: true, capture_interval_ms: o['frame-interval'] },
        });
        let offered = 0, counting = false;
        sim.on('frame', () => { if (counting) offered++; });
        await sim.start();
        await sleep(5000); // warm-up: model loaded, flows hot
        const sum = async () => (await Promise.all(kids.map(ask))).map((r) => ({ frames: r.frames, emotions: r.emotions, cpuS: r.cpuS }));
        const a = await sum();
        counting = true;
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        await sleep(o['consumer-seconds'] * 1000);
        const b = await sum();
        const cpu = process.cpuUsage(cpu0);
        const windowS = (performance.now() - t0) / 1000;
        counting = false;
        await sim.stop();
        const perConsumer = b.map((x, i) => x.frames - a[i].frames);
        return {
            devices, consumers: n, windowS, offered, perConsumer, classified: perConsumer.reduce((s, x) => s + x, 0),
            emotions: b.reduce((s, x, i) => s + x.emotions - a[i].emotions, 0),
            consumerCpu: b.map((x, i) => (x.cpuS - a[i].cpuS) / windowS), benchCpu: (cpu.user + cpu.system) / 1e6 / windowS,
        };
    } finally {
        for (const c of kids) c.kill('SIGKILL');
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

function waitFor(cond, timeoutMs) {
    const until = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
        const tick = () => (cond() ? resolve() : Date.now() > until ? reject(new Error('timeout')) : setTimeout(tick, 50));
        tick();
    });
}

main().catch((e) => { console.error(e); process.exit(1); });
