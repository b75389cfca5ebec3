'use strict';
// `npm run demo` end to end: the script starts the embedded broker, virtual cameras and Node-RED
// with the demo flow; emotions must come out of the deployed flow; SIGINT must stop it all cleanly.
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { LABELS } = require('../dist/model/labels');
const { DEFAULT_MODEL_BLOB } = require('../dist/engine/open');
const { waitFor, faces } = require('./helpers/fleet');

describe('fleet demo (scripts/demo.js)', function () {
  this.timeout(60000);
  let proc;
  let out = '';
  let userDir;

  before(function () {
    faces(1); // fails with a clear message when the shared data is missing
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-demo-'));
  });
  after(function () {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  });

  it('starts, shows emotions flowing through the deployed flow, serves the editor, and stops on SIGINT', async function () {
    const script = path.join(__dirname, '..', 'scripts', 'demo.js');
    proc = spawn(process.execPath, [script, '--port', '0', '--mqtt-port', '0', '--devices', '3', '--interval', '300', '--user-dir', userDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));

    const url = await waitFor(() => /Node-RED editor: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1], 30000, `editor URL in the output:\n${out}`);
    const lines = () => out.split('\n').map((l) => /^(cam-\d+)\s+on device : (\w+)\s+(\d+)%\s+frame (\d+)\s+\(face labelled (\w+)\)/.exec(l)).filter(Boolean);
    await waitFor(() => new Set(lines().map((m) => m[1])).size === 3 && lines().length >= 9, 20000, `emotions of all 3 cameras through the flow:\n${out}`);
    for (const m of lines()) {
      assert.ok(LABELS.includes(m[2]), m[0]);
      assert.ok(LABELS.includes(m[5]), m[0]);
    }
    if (fs.existsSync(DEFAULT_MODEL_BLOB)) {
      // With a bundled model, tinyfer-emotion classifies the devices' frames inside Node-RED too.
      await waitFor(() => /in Node-RED: \w+\s+\d+%\s+frame \d+/.test(out), 20000, `Node-RED emotions:\n${out}`);
    } else {
      // Without one the flow reports it (a catchable error), and the device path still works.
      assert.match(out, /bundled default model is missing/);
    }

    // The editor is served and the deployed flow is the demo's.
    const flows = await fetch(new URL('flows', url), { headers: { 'Node-RED-API-Version': 'v1' } }).then((r) => r.json());
    assert.ok(flows.some((n) => n.type === 'tinyfer-devices'));
    assert.ok(flows.some((n) => n.type === 'tinyfer-fleet' && /^mqtt:\/\/127\.0\.0\.1:\d+$/.test(n.url)));
    assert.ok((await fetch(url)).ok, 'editor page');

    proc.kill('SIGINT');
    const { code } = await exited;
    assert.equal(code, 0, out.slice(-2000));
    assert.match(out, /demo stopped/);
  });
});
