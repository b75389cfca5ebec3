#!/usr/bin/env node
'use strict';
// The fleet dashboard under load (a bench, not a test): the demo (test/helpers/demo-process.js:
// broker, N virtual cameras at R emotions/s each with frames on (confidence threshold 0: every
// capture is an emotion), Node-RED with only
// examples/fleet-dashboard.json) in a process of its own, measured twice side by side in one run:
//   1. page closed: the demo process's CPU for S seconds;
//   2. page open in chromium (puppeteer-core): the demo process's CPU and chromium's (all its
//      processes), and in the page: socket.io messages received per second, DOM mutation batches
//      per second (a MutationObserver), animation frames per second (requestAnimationFrame: the
//      page stays responsive when this stays near the display rate) and long tasks (> 50 ms).
// CPU is (utime + stime) from /proc/<pid>/stat over wall time: 100 % = one core busy.
//   node bench/dashboard-load.js [--devices 50] [--rate 2] [--seconds 60] [--warmup 20] [--flow FLOW.json]
// (--flow: a variant of the dashboard flow to compare, default examples/fleet-dashboard.json)
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { launchChromium } = require('../test/helpers/browser');

function args(argv) {
    const o = { devices: 50, rate: 2, seconds: 60, warmup: 20, flow: path.join(__dirname, '..', 'examples', 'fleet-dashboard.json') };
    for (let i = 0; i < argv.length; i += 2) {
        const k = argv[i].replace(/^--/, '');
        if (!(k in o)) throw new Error(`unknown option ${argv[i]} (--devices --rate --seconds --warmup --flow)`);
        if (k === 'flow') { o.flow = path.resolve(argv[i + 1]); continue; }
        o[k] = Number(argv[i + 1]);
        if (!(o[k] > 0)) throw new Error(`--${k} must be a positive number, got ${JSON.stringify(argv[i + 1])}`);
    }
    return o;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TICK = os.constants?.CLK_TCK || 100; // clock ticks per second (Linux: 100)

/** utime + stime of a process, seconds. */
function cpuOf(pid) {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / TICK;
}
/** A process and all its descendants (chromium's renderer, GPU and utility processes). */
function tree(pid) {
    const children = new Map();
    for (const d of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        try {
            const f = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
            const ppid = Number(f.slice(f.lastIndexOf(')') + 2).split(' ')[1]);
            if (!children.has(ppid)) children.set(ppid, []);
            children.get(ppid).push(Number(d));
        } catch { /* gone */ }
    }
    const out = [];
    const walk = (p) => { out.push(p); for (const c of children.get(p) || []) walk(c); };
    walk(pid);
    return out;
}
const cpuOfTree = (pids) => pids.reduce((s, p) => { try { return s + cpuOf(p); } catch { return s; } }, 0);

async function main() {
    const o = args(process.argv.slice(2));
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-dashboard-bench-'));
    const opts = { httpPort: 0, mqttPort: 0, devices: o.devices, intervalMs: Math.round(1000 / o.rate), deviceConfig: { frames_enabled: true, confidence_threshold: 0 }, userDir, flowFile: o.flow };
    const demo = spawn(process.execPath, [path.join(__dirname, '..', 'test', 'helpers', 'demo-process.js'), JSON.stringify(opts)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    demo.stdout.on('data', (d) => { out += d; });
    demo.stderr.on('data', (d) => { out += d; });
    let browser;
    try {
        const until = Date.now() + 120000;
        while (!/^DEMO /m.test(out)) {
            if (demo.exitCode !== null || Date.now() > until) throw new Error(`the demo did not start:\n${out}`);
            await sleep(200);
        }
        const info = JSON.parse(/^DEMO (\{.*\})$/m.exec(out)[1]);
        const stats = async () => {
            const n = (out.match(/^STATS /gm) || []).length;
            demo.stdin.write('stats\n');
            while ((out.match(/^STATS /gm) || []).length === n) await sleep(50);
            return JSON.parse([...out.matchAll(/^STATS (\{.*\})$/gm)].pop()[1]);
        };
        console.log(`demo: ${o.devices} virtual cameras, ${o.rate} emotions/s each, frames on; dashboard ${info.dashboardUrl}`);
        console.log(`warm-up ${o.warmup} s...`);
        await sleep(o.warmup * 1000);

        const measure = async (label, extra) => {
            const s0 = await stats();
            const c0 = cpuOf(info.pid);
            const b0 = extra ? extra.start() : null;
            const t0 = Date.now();
            await sleep(o.seconds * 1000);
            const secs = (Date.now() - t0) / 1000;
            const c1 = cpuOf(info.pid);
            const s1 = await stats();
            const r = {
                phase: label,
                seconds: Math.round(secs),
                emotionsPerS: Math.round((s1.emotions - s0.emotions) / secs),
                framesPerS: Math.round((s1.frames - s0.frames) / secs),
                demoCpuPct: Math.round(((c1 - c0) / secs) * 1000) / 10,
            };
            if (extra) Object.assign(r, await extra.stop(b0, secs));
            console.log(JSON.stringify(r));
            return r;
        };

        const closed = await measure('page closed');

        let page;
        ({ browser, page } = await launchChromium({ width: 1400, height: 1000 }));
        const browserPids = () => tree(browser.process().pid);
        let socketMsgs = 0;
        const cdp = await page.createCDPSession();
        await cdp.send('Network.enable');
        cdp.on('Network.webSocketFrameReceived', ({ response }) => { if (response.payloadData.startsWith('42')) socketMsgs++; });
        await page.goto(info.dashboardUrl, { waitUntil: 'domcontentloaded', timeout: 60000 });
        await page.waitForFunction((n) => document.querySelectorAll('.tf-device-table tbody tr').length >= Math.min(n, 10) && document.querySelectorAll('.tf-tile img').length > 0, { timeout: 120000, polling: 1000 }, o.devices);
        await page.evaluate(() => {
            const m = (window.__tfBench = { mutations: 0, frames: 0, longTasks: 0, longTaskMs: 0 });
            new MutationObserver(() => { m.mutations++; }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
            const raf = () => { m.frames++; requestAnimationFrame(raf); };
            requestAnimationFrame(raf);
            new PerformanceObserver((l) => { for (const e of l.getEntries()) { m.longTasks++; m.longTaskMs += e.duration; } }).observe({ entryTypes: ['longtask'] });
        });
        const rows = await page.evaluate(() => document.querySelectorAll('.tf-device-table tbody tr').length);
        const open = await measure('page open', {
            start: () => ({ msgs: socketMsgs, cpu: cpuOfTree(browserPids()), page: null }),
            stop: async (b0, secs) => {
                const p = await page.evaluate(() => ({ ...window.__tfBench }));
                const tiles = await page.evaluate(() => [...document.querySelectorAll('.tf-tile img')].filter((i) => i.naturalWidth > 0).length);
                return {
                    tableRows: rows,
                    tilesWithFrame: tiles,
                    socketMsgsPerS: Math.round(((socketMsgs - b0.msgs) / secs) * 10) / 10,
                    domMutationBatchesPerS: Math.round((p.mutations / secs) * 10) / 10,
                    animationFramesPerS: Math.round((p.frames / secs) * 10) / 10,
                    longTasks: p.longTasks,
                    longTaskMsPerS: Math.round(p.longTaskMs / secs),
                    chromiumCpuPct: Math.round(((cpuOfTree(browserPids()) - b0.cpu) / secs) * 1000) / 10,
                };
            },
        });
        console.log(`\n${o.devices} cameras x ${o.rate} emotions/s (measured ${closed.emotionsPerS} and ${open.emotionsPerS} emotions/s, ${open.framesPerS} frames/s):`);
        console.log(`  demo process CPU (broker + virtual cameras + Node-RED): page closed ${closed.demoCpuPct} %, page open ${open.demoCpuPct} % of one core`);
        console.log(`  page: ${open.socketMsgsPerS} socket messages/s, ${open.domMutationBatchesPerS} DOM mutation batches/s, ${open.animationFramesPerS} animation frames/s, ${open.longTasks} long tasks (${open.longTaskMsPerS} ms/s); chromium CPU ${open.chromiumCpuPct} %`);
    } finally {
        if (browser) await browser.close();
        demo.stdin.end('stop\n');
        await Promise.race([new Promise((r) => demo.once('exit', r)), sleep(15000)]);
        if (demo.exitCode === null) demo.kill('SIGKILL');
        fs.rmSync(userDir, { recursive: true, force: true });
    }
}

main().catch((e) => { console.error(e.stack || e.message); process.exit(1); });
