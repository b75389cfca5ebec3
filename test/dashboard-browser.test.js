'use strict';
/**
 * The fleet dashboard (examples/fleet-dashboard.json, FlowFuse Dashboard 2.0) in a real browser:
 * the demo (broker, 3 virtual cameras sending real faces, Node-RED with the demo flow and the
 * dashboard) in a process of its own, Debian's chromium driven by puppeteer-core. On the page:
 * the device table lists every virtual device; the chart receives points (socket.io messages
 * for the chart widget, counted by the browser's DevTools protocol); each camera tile shows a
 * decoded frame (naturalWidth > 0); a button press produces the device's acknowledgement; a
 * device killed mid-test (its connection dropped: the broker's last will) turns offline on the
 * page. Generous waits, no timing assertions. TINYFER_DASHBOARD_SCREENSHOT=<file.png> keeps a
 * screenshot of the page at the end (docs/fleet-dashboard.png is one).
 */
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { waitFor, faces } = require('./helpers/fleet');
const { launchChromium } = require('./helpers/browser');
const { randomFoldedModel } = require('../dist/engine/vectors');
const { encodeModel } = require('../dist/model/format');

const DEVICES = ['cam-0', 'cam-1', 'cam-2'];

describe('fleet dashboard in a real browser (Dashboard 2.0, chromium + puppeteer-core)', function () {
  this.timeout(180000);
  let demo;
  let out = '';
  let userDir;
  let browser;
  let page;
  let info;
  const problems = [];
  const chartFrames = []; // socket.io messages carrying points to the chart widget

  before(async function () {
    faces(1); // fails with a clear message when the shared data is missing
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-dashboard-'));
    const model = path.join(userDir, 'model.tfer');
    fs.writeFileSync(model, encodeModel(randomFoldedModel(7)));
    const opts = { httpPort: 0, mqttPort: 0, devices: DEVICES.length, intervalMs: 500, userDir: path.join(userDir, 'nr'), model };
    const pre = process.env.TINYFER_NODE_RED_MODULES ? ['--require', path.join(__dirname, 'helpers', 'node-red-runtime.js')] : [];
    demo = spawn(process.execPath, [...pre, path.join(__dirname, 'helpers', 'demo-process.js'), JSON.stringify(opts)], { stdio: ['pipe', 'pipe', 'pipe'] });
    demo.stdout.on('data', (d) => { out += d; });
    demo.stderr.on('data', (d) => { out += d; });
    info = JSON.parse(await waitFor(() => /^DEMO (\{.*\})$/m.exec(out)?.[1] || (demo.exitCode !== null && Promise.reject(new Error(out))), 60000, `the demo started:\n${out}`));
    if (process.env.TINYFER_NODE_RED_MODULES) assert.match(out, /\[node-red-runtime\] Node v\d+\.\d+\.\d+, Node-RED \d/, 'the demo runs on the runtime asked for');
    assert.ok(info.dashboardUrl, `the demo deploys the dashboard:\n${out}`);
    assert.match(info.dashboardUrl, /^http:\/\/127\.0\.0\.1:\d+\/api\/dashboard\/fleet$/);

    ({ browser, page } = await launchChromium({ width: 1400, height: 1000 }));
    // Dashboard 2.0 asks for /dashboard/favicon.* outside httpNodeRoot: its 404s are not ours.
    page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`); });
    page.on('response', (r) => { if (r.status() >= 400 && !/\/favicon\.(ico|svg)$/.test(r.url())) problems.push(`HTTP ${r.status()} ${r.url()}`); });
    page.on('pageerror', (e) => problems.push(`page: ${e.message}`));
    const cdp = await page.createCDPSession();
    await cdp.send('Network.enable');
    cdp.on('Network.webSocketFrameReceived', ({ response }) => {
      const m = /^42(\[.*\])$/s.exec(response.payloadData);
      if (!m || !m[1].startsWith('["msg-input:fd-chart"')) return;
      const [, msg] = JSON.parse(m[1]);
      if (Array.isArray(msg.payload) && msg.payload.length) chartFrames.push(msg);
    });
    await page.goto(info.dashboardUrl, { waitUntil: 'domcontentloaded', timeout: 60000 });
  });

  after(async function () {
    if (browser) await browser.close();
    if (demo && demo.exitCode === null) {
      const exited = new Promise((r) => demo.once('exit', r));
      demo.stdin.end('stop\n');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
      if (demo.exitCode === null) demo.kill('SIGKILL');
    }
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  });

  const tableRows = () => page.evaluate(() => [...document.querySelectorAll('.tf-device-table tbody tr')].map((r) => [...r.querySelectorAll('td')].map((td) => td.innerText.trim())));

  it('the device table lists every virtual device, online, with the fields the fleet reports', async function () {
    // The table is replaced every 2 s: read it in one go once every device has a row with its
    // telemetry (sent every 5 s: uptime and RSSI filled).
    const read = () => {
      const head = [...document.querySelectorAll('.tf-device-table thead th')].map((th) => th.innerText.trim()).filter(Boolean);
      const rows = [...document.querySelectorAll('.tf-device-table tbody tr')].map((r) => [...r.querySelectorAll('td')].map((td) => td.innerText.trim()));
      return { head, rows };
    };
    const handle = await page.waitForFunction((ids, readSrc) => {
      const t = (0, eval)(readSrc)();
      const col = t.head.indexOf('RSSI dBm');
      return col >= 0 && ids.every((id) => t.rows.some((r) => r[0] === id && r[col] !== '')) && t;
    }, { timeout: 90000, polling: 500 }, DEVICES, `(${read})`);
    const { head, rows } = await handle.jsonValue();
    assert.deepEqual(head, ['device', 'state', 'model', 'inference ms', 'frames', 'last emotion', 'uptime', 'RSSI dBm', 'temp °C']);
    assert.deepEqual(rows.map((r) => r[0]).sort(), DEVICES);
    for (const r of rows) {
      const row = Object.fromEntries(head.map((h, i) => [h, r[i]]));
      assert.match(row.state, /^online \d+/, r.join(' | '));
      assert.match(row.model, /\/ fw 0\.1\.0-demo$/, r.join(' | '));
      assert.ok(Number(row['inference ms']) >= 0, r.join(' | '));
      assert.match(row.uptime, /^\d+ (s|min)/, r.join(' | '));
      assert.equal(row['RSSI dBm'], '-55'); // the virtual device's fixed value (src/fleet/simulator.ts)
      assert.equal(row['temp °C'], '41.5');
    }
  });

  it('the chart receives points: the selected camera\'s scores, one point per label', async function () {
    await waitFor(() => chartFrames.length >= 2, 60000, 'chart points over the socket');
    const labels = new Set(chartFrames.flatMap((m) => m.payload.map((p) => p.series)));
    assert.deepEqual([...labels].sort(), ['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise']);
    for (const m of chartFrames) for (const p of m.payload) assert.ok(p.y >= 0 && p.y <= 1 && p.x > 0, JSON.stringify(p));
    // the distribution of the selected camera counts its emotions
    await page.waitForFunction(() => /cam-0: [1-9]\d* emotions in the last 5 min/.test(document.querySelector('.tf-dist')?.innerText || ''), { timeout: 30000, polling: 500 });
    // the chart drew them (ECharts canvas in the widget)
    assert.ok(await page.evaluate(() => !!document.querySelector('.tf-chart canvas, .tf-chart svg')), 'a drawn chart');
  });

  it('every camera tile shows a decoded frame (the demo flow turns frames on)', async function () {
    await page.waitForFunction((ids) => ids.every((id) => {
      const img = document.querySelector(`.tf-tile[data-device="${id}"] img`);
      return img && img.complete && img.naturalWidth > 0;
    }), { timeout: 60000, polling: 500 }, DEVICES);
    const sizes = await page.evaluate(() => [...document.querySelectorAll('.tf-tile img')].map((i) => [i.naturalWidth, i.naturalHeight]));
    for (const [w, h] of sizes) assert.ok(w > 0 && h > 0);
  });

  it('buttons send real commands: snapshot and frames off are acknowledged by the device; a snapshot with frames off shows its error', async function () {
    await page.click('.tf-tile[data-device="cam-0"] [data-action="snapshot"]');
    await page.waitForFunction(() => [...document.querySelectorAll('.tf-log tr')].some((r) => /cam-0\s+snapshot\s+ok .*frame \d+ \(\d+ bytes\)/.test(r.innerText)), { timeout: 60000, polling: 250 });
    // the tile shows it too (tiles are refreshed once a second)
    await page.waitForFunction(() => /^snapshot: frame \d+ \(\d+ bytes\)/.test(document.querySelector('.tf-tile[data-device="cam-0"] .tf-ack.tf-ok')?.innerText || ''), { timeout: 30000, polling: 250 });

    await page.click('.tf-tile[data-device="cam-1"] [data-action="frames"]'); // frames are on: the button turns them off
    await page.waitForFunction(() => [...document.querySelectorAll('.tf-log tr')].some((r) => /cam-1\s+frames off\s+ok .*frames off, every 500 ms/.test(r.innerText)), { timeout: 60000, polling: 250 });
    await page.waitForFunction(() => document.querySelector('.tf-tile[data-device="cam-1"] .tf-frames-off')?.innerText === 'frames are off on this device', { timeout: 30000, polling: 250 });

    await page.click('.tf-tile[data-device="cam-1"] [data-action="snapshot"]');
    await page.waitForFunction(() => [...document.querySelectorAll('.tf-log tr')].some((r) => /cam-1\s+snapshot\s+error .*frames_disabled/.test(r.innerText)), { timeout: 60000, polling: 250 });
    await page.waitForFunction(() => /^snapshot: snapshot on cam-1 failed: frames_disabled/.test(document.querySelector('.tf-tile[data-device="cam-1"] .tf-ack.tf-err')?.innerText || ''), { timeout: 30000, polling: 250 });
  });

  it('a device killed mid-test turns offline on the page', async function () {
    demo.stdin.write('crash cam-2\n');
    await waitFor(() => /CRASHED cam-2/.test(out), 10000, 'the demo crashed cam-2');
    await page.waitForFunction(() => {
      const row = [...document.querySelectorAll('.tf-device-table tbody tr')].find((r) => r.innerText.startsWith('cam-2'));
      const tile = document.querySelector('.tf-tile[data-device="cam-2"]');
      return row && /offline \d+/.test(row.innerText) && tile && tile.classList.contains('tf-offline');
    }, { timeout: 60000, polling: 500 });
    const rows = await tableRows();
    assert.deepEqual(rows.filter((r) => /^online/.test(r[1])).map((r) => r[0]).sort(), ['cam-0', 'cam-1']);
    // the buttons of an offline device are disabled
    assert.equal(await page.$eval('.tf-tile[data-device="cam-2"] [data-action="snapshot"]', (b) => b.disabled), true);
    if (process.env.TINYFER_DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.TINYFER_DASHBOARD_SCREENSHOT, fullPage: true });
    assert.deepEqual(problems, []);
  });
});
