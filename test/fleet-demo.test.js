'use strict';
// `npm run demo` end to end: the script starts the embedded broker, virtual cameras and Node-RED
// with the demo flow; emotions must come out of the deployed flow; SIGINT must stop it all cleanly.
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { LABELS } = require('../dist/model/labels');
const { randomFoldedModel } = require('../dist/engine/vectors');
const { encodeModel } = require('../dist/model/format');
const { waitFor, faces } = require('./helpers/fleet');

describe('fleet demo (scripts/demo.js)', function () {
  this.timeout(60000);
  let proc;
  let out = '';
  let userDir;

  before(function () {
    faces(1); // fails with a clear message when the shared data is missing
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-demo-'));
    // A valid model blob (random weights) so the run does not depend on a trained model being bundled:
    // the virtual cameras and the flow's tinyfer-emotion node both run it on the binary (wasm) engine.
    fs.writeFileSync(path.join(userDir, 'model.tfer'), encodeModel(randomFoldedModel(7)));
  });
  after(function () {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  });

  it('starts, shows emotions flowing through the deployed flow, serves the editor, and stops on SIGINT', async function () {
    const script = path.join(__dirname, '..', 'scripts', 'demo.js');
    proc = spawn(process.execPath, [script, '--port', '0', '--mqtt-port', '0', '--devices', '3', '--interval', '300', '--user-dir', userDir, '--model', path.join(userDir, 'model.tfer')], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));

    const url = await waitFor(() => /Node-RED editor: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1], 30000, `editor URL in the output:\n${out}`);
    const parse = (re) => out.split('\n').map((l) => re.exec(l)).filter(Boolean);
    const onDevice = () => parse(/^(cam-\d+)\s+on device : (\w+)\s+(\d+)%\s+frame (\d+)\s+\(face labelled (\w+)\)/);
    const inFlow = () => parse(/^(cam-\d+)\s+in Node-RED: (\w+)\s+(\d+)%\s+frame (\d+)\s+\(binary\/\w+; face labelled (\w+)\)/);
    // Emotions of all 3 cameras reach the flow's debug node, and tinyfer-emotion classifies their frames.
    await waitFor(() => new Set(onDevice().map((m) => m[1])).size === 3 && inFlow().length >= 6, 30000, `emotions through the flow:\n${out}`);
    for (const m of [...onDevice(), ...inFlow()]) {
      assert.ok(LABELS.includes(m[2]), m[0]);
      assert.ok(LABELS.includes(m[5]), m[0]);
    }
    // Same model, same face: where the device's result and Node-RED's result for one frame are both
    // printed, they agree (the JPEG went through MQTT in chunks and was decoded on each side).
    const device = new Map(onDevice().map((m) => [`${m[1]}/${m[4]}`, `${m[2]} ${m[3]}`]));
    const pairs = inFlow().filter((m) => device.has(`${m[1]}/${m[4]}`));
    assert.ok(pairs.length >= 1, `a frame seen on both sides:\n${out}`);
    for (const m of pairs) assert.equal(`${m[2]} ${m[3]}`, device.get(`${m[1]}/${m[4]}`), m[0]);

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
