'use strict';
/**
 * The full fleet flow under the shipped broker policy: the C firmware (tinyfer-device, built by
 * scripts/build-host-device.sh) connects over TLS with its own username (its device id) and
 * password, checking the broker's certificate against its CA; Node-RED (tinyfer-fleet with a
 * tls-config node and the `nodered` user) sees it come online, gets its emotions and frames,
 * commands it (set_config, MQTT 5 response topic) and updates its model (chunked, ota/chunk).
 * The password never shows in the device's command line or log.
 */
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const helper = require('node-red-node-test-helper');
const fleetNode = require('../nodes/tinyfer-fleet.js');
const devicesNode = require('../nodes/tinyfer-devices.js');
const tlsNode = require('@node-red/nodes/core/network/05-tls.js');
const { LABELS } = require('../dist/model/labels');
const { startPolicyBroker } = require('./helpers/policy-broker');
const { makeTestCerts } = require('./helpers/mosquitto');
const { waitFor, requireMosquitto } = require('./helpers/fleet');
const { fer2013Dir, requireData } = require('./helpers/data');

helper.init(require.resolve('node-red'));

const ROOT = path.join(__dirname, '..');
const BIN = process.env.TINYFER_DEVICE_BIN || path.join(ROOT, 'build', 'host', 'tinyfer-device');

describe('e2e under the broker policy: the C firmware over TLS with its own credentials', function () {
  this.timeout(30000);
  const id = 'cam-e2e';
  const PW = { nodered: crypto.randomBytes(12).toString('hex'), [id]: crypto.randomBytes(12).toString('hex') };
  let broker, tmp, dev, devLog = '', keys;
  const got = [];

  before(async function () {
    this.timeout(600000); // only when the binary has to be built first
    requireMosquitto();
    if (!fs.existsSync(BIN)) execFileSync('bash', [path.join(ROOT, 'scripts', 'build-host-device.sh')], { stdio: 'inherit' });
    const src = path.join(fer2013Dir(), 'PublicTest');
    requireData(null, src);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-e2e-policy-'));
    fs.mkdirSync(path.join(tmp, 'frames'));
    LABELS.forEach((label, i) => {
      const f = fs.readdirSync(path.join(src, label)).filter((x) => /\.jpe?g$/i.test(x)).sort()[0];
      fs.copyFileSync(path.join(src, label, f), path.join(tmp, 'frames', `${i}-${label}.jpg`));
    });
    keys = crypto.generateKeyPairSync('ed25519');
    fs.writeFileSync(path.join(tmp, 'model-key.pem'), keys.publicKey.export({ type: 'spki', format: 'pem' }));
    fs.writeFileSync(path.join(tmp, 'mqtt-password'), PW[id] + '\n', { mode: 0o600 });
    broker = await startPolicyBroker(PW);
    await new Promise((r) => helper.startServer(r));
  });

  after(async function () {
    if (dev && dev.exitCode === null) dev.kill('SIGKILL');
    await helper.unload().catch(() => undefined);
    await new Promise((r) => helper.stopServer(r));
    if (broker) await broker.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('comes online, publishes emotions and frames, obeys set_config and installs a signed model, all under the ACL', async function () {
    const flow = [
      { id: 'tab', type: 'tab', label: 'policy e2e' },
      { id: 'tls', type: 'tls-config', name: 'fleet CA', cert: '', key: '', ca: broker.caFile, verifyservercert: true, servername: '' },
      { id: 'fleet', type: 'tinyfer-fleet', url: broker.url, prefix: 'tinyfer', protocolVersion: '5', commandTimeout: 10, usetls: true, tls: 'tls' },
      { id: 'devs', type: 'tinyfer-devices', z: 'tab', x: 100, y: 100, fleet: 'fleet', telemetry: true, emotion: true, frames: true, persist: false, wires: [['out']] },
      { id: 'out', type: 'helper', z: 'tab', x: 300, y: 100 },
    ];
    await helper.load([tlsNode, fleetNode, devicesNode], flow, { fleet: { user: 'nodered', password: PW.nodered } });
    helper.getNode('out').on('input', (msg) => got.push(msg));
    const manager = () => helper.getNode('fleet').manager;
    await waitFor(() => manager() && manager().conn.connected, 10000, 'Node-RED connected over TLS as nodered');
    const args = ['--broker', broker.url, '--ca', broker.caFile, '--password-file', path.join(tmp, 'mqtt-password'), '--id', id,
      '--frames', path.join(tmp, 'frames'), '--model', path.join(ROOT, 'models', 'tinyfer-b1.tfer'), '--model-key', path.join(tmp, 'model-key.pem'),
      '--settings', path.join(tmp, 'settings.conf'), '--interval-ms', '150', '--telemetry-ms', '500', '--threshold', '0', '-v'];
    dev = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    dev.stdout.on('data', (d) => { devLog = (devLog + d).slice(-50000); });
    dev.stderr.on('data', (d) => { devLog = (devLog + d).slice(-50000); });
    const of = (t) => got.filter((m) => m.topic === t && m.device.id === id);
    await waitFor(() => of('online').length >= 1, 10000, `online (device log: ${devLog}\nbroker: ${broker.log})`);
    await waitFor(() => of('emotion').length >= 7 && of('telemetry').length >= 1, 15000, 'emotions and telemetry');
    assert.ok(LABELS.includes(of('emotion')[0].payload.label));

    // a command and its response (MQTT 5 response topic tinyfer/_resp/<client id>), and frames
    const r = await manager().commands.request(id, 'set_config', { frames_enabled: true });
    assert.equal(r.ok, true);
    assert.equal(r.result.frames_enabled, true);
    await waitFor(() => of('frame').length >= 2, 10000, 'frames through frame/chunk');
    assert.equal(of('frame')[0].payload[0], 0xff);

    // a signed model update in chunks on ota/chunk (readable by this device only)
    const blob = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'models', 'tinyfer-b1r.tfer')); // the test blob: a model other than the built-in one
    const up = await manager().commands.modelUpdate(id, blob, { version: 'policy-2', key: keys.privateKey, chunked: true, chunkBytes: 4096 });
    assert.equal(up.ok, true);
    await waitFor(() => manager().registry.get(id).model === 'policy-2', 5000, 'new model announced');
    assert.equal(manager().registry.counts().invalid, 0);

    // the secret is in neither the command line nor anything the device printed
    assert.ok(!args.join(' ').includes(PW[id]));
    assert.ok(!devLog.includes(PW[id]), 'password in the device log');
    assert.ok(!broker.log.includes(PW[id]));
  });

  it('a device that does not trust the broker certificate, or has a wrong password, never comes online', async function () {
    const other = path.join(tmp, 'other-ca');
    fs.mkdirSync(other);
    makeTestCerts(other); // a different CA: the broker's certificate does not chain to it
    fs.writeFileSync(path.join(tmp, 'wrong-password'), 'not-it\n');
    const runs = [
      ['cam-x', ['--ca', path.join(other, 'ca.crt'), '--password-file', path.join(tmp, 'mqtt-password')]],
      ['cam-y', ['--ca', broker.caFile, '--password-file', path.join(tmp, 'wrong-password')]],
    ];
    const logs = {};
    const procs = runs.map(([who, extra]) => {
      const p = spawn(BIN, ['--broker', broker.url, ...extra, '--id', who, '--frames', path.join(tmp, 'frames'), '--interval-ms', '200'], { stdio: ['ignore', 'ignore', 'pipe'] });
      logs[who] = '';
      p.stderr.on('data', (d) => { logs[who] += d; });
      return p;
    });
    try {
      await waitFor(() => /TLS|certificate/i.test(logs['cam-x']) && /refused|not authori[sz]ed/i.test(logs['cam-y']), 10000, `failures reported: ${JSON.stringify(logs)}`);
      assert.equal(got.filter((m) => m.topic === 'online' && ['cam-x', 'cam-y'].includes(m.device.id)).length, 0);
      assert.equal(helper.getNode('fleet').manager.registry.get('cam-x'), undefined);
      assert.equal(helper.getNode('fleet').manager.registry.get('cam-y'), undefined);
    } finally {
      for (const p of procs) p.kill('SIGKILL');
    }
  });
});
