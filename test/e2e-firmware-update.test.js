'use strict';
/**
 * Signed application firmware updates on the host device (the C firmware, tinyfer-device), end to
 * end over a real Mosquitto with the fleet manager: the same Ed25519 scheme as models (signature
 * over the SHA-256 digest, checked before a byte is written), the image written to the app slot
 * that is not running, a trial boot, and a rollback (a re-exec of the previous binary) when the
 * new image does not reach the broker. Checked: a bad signature and a tampered image are refused;
 * an interrupted transfer (chunks stop; the device is killed mid-transfer) changes nothing; an
 * image that exits at once, or hangs, is rolled back; a good image (the same device built with
 * another version string: tinyfer-device-update-test) boots, stays across reboots and restarts.
 */
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const helper = require('node-red-node-test-helper');
const fleetNode = require('../nodes/tinyfer-fleet.js');
const commandNode = require('../nodes/tinyfer-command.js');
const { FleetManager } = require('../dist/fleet/manager');
const { signModel, sha256Hex, splitChunks, deviceTopics } = require('../dist/fleet/protocol');
const { startMosquitto } = require('./helpers/mosquitto');
const { waitFor, requireMosquitto } = require('./helpers/fleet');
const { fer2013Dir, requireData } = require('./helpers/data');

helper.init(require.resolve('node-red'));

const ROOT = path.join(__dirname, '..');
const BUILD = process.env.TINYFER_HOST_BUILD || path.join(ROOT, 'build', 'host');
const BIN = path.join(BUILD, 'tinyfer-device');
const UPDATE_BIN = path.join(BUILD, 'tinyfer-device-update-test');
const OLD = '0.1.0-linux';
const NEW = '0.1.0-linux-update-test';

describe('e2e: signed firmware updates with rollback on the host device', function () {
  this.timeout(40000);
  const id = 'fw-e2e';
  let broker, tmp, keys, m, dev, devLog = '';
  const events = [];

  before(async function () {
    this.timeout(600000); // only when the binaries have to be built first
    requireMosquitto();
    if (!fs.existsSync(BIN) || !fs.existsSync(UPDATE_BIN)) execFileSync('bash', [path.join(ROOT, 'scripts', 'build-host-device.sh')], { stdio: 'inherit' });
    const src = path.join(fer2013Dir(), 'PublicTest', 'happy');
    requireData(null, src);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-fw-'));
    fs.mkdirSync(path.join(tmp, 'frames'));
    const f = fs.readdirSync(src).filter((x) => /\.jpe?g$/i.test(x)).sort()[0];
    fs.copyFileSync(path.join(src, f), path.join(tmp, 'frames', 'a.jpg'));
    keys = crypto.generateKeyPairSync('ed25519');
    fs.writeFileSync(path.join(tmp, 'fw-key.pem'), keys.publicKey.export({ type: 'spki', format: 'pem' }));
    broker = await startMosquitto();
    m = new FleetManager({ url: broker.url, prefix: 'tinyfer', commandTimeoutMs: 15000 });
    m.on('event', (e) => { if (e.deviceId === id) events.push({ type: e.type, firmware: e.device.firmware, state: e.device.state }); });
    await waitFor(() => m.conn.connected, 5000, 'manager connected');
    await new Promise((r) => helper.startServer(r));
  });

  after(async function () {
    await helper.unload().catch(() => undefined);
    await new Promise((r) => helper.stopServer(r));
    if (dev && dev.exitCode === null) dev.kill('SIGKILL');
    if (m) await m.close();
    if (broker) await broker.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const slot = (s) => path.join(tmp, `settings.conf${s}`);
  const online = () => { const d = m.registry.get(id); return d && d.state === 'online' ? d.firmware : null; };

  function startDevice(bin = BIN) {
    devLog = '';
    dev = spawn(bin, ['--broker', broker.url, '--id', id, '--frames', path.join(tmp, 'frames'), '--settings', slot(''),
      '--firmware-key', path.join(tmp, 'fw-key.pem'), '--confirm-ms', '4000', '--ota-timeout-ms', '2000', '--interval-ms', '500', '--keepalive', '5'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
    dev.stderr.on('data', (d) => { devLog = (devLog + d).slice(-50000); });
    return dev;
  }

  async function stopDevice(signal = 'SIGTERM') {
    const p = dev;
    if (!p || p.exitCode !== null) return;
    await new Promise((r) => { p.once('exit', r); p.kill(signal); });
  }

  /** Wait for the device to go offline and come back online after `since` events; returns its firmware then. */
  async function cameBack(since, what) {
    await waitFor(() => events.slice(since).some((e) => e.type === 'offline') && events.slice(since).some((e, i, a) => e.type === 'online' && a.slice(0, i).some((x) => x.type === 'offline')), 20000, `${what}: offline then online (device log:\n${devLog})`);
    return online();
  }

  it('the device offers firmware_update and reports its firmware', async function () {
    startDevice();
    await waitFor(() => online() === OLD, 10000, `online with ${OLD}: ${devLog}`);
    assert.ok(m.registry.get(id).capabilities.includes('firmware_update'));
  });

  it('a bad signature and a tampered image are refused before anything is installed; the device runs on', async function () {
    const image = fs.readFileSync(UPDATE_BIN);
    const other = crypto.generateKeyPairSync('ed25519');
    await assert.rejects(m.commands.firmwareUpdate(id, image, { version: NEW, key: other.privateKey, chunked: true, chunkBytes: 16384 }),
      (e) => e.code === 'verify_failed' && /bad signature/.test(e.message));
    // a valid signature of the real image's digest, sent with other bytes (one byte flipped)
    const tampered = Buffer.from(image);
    tampered[tampered.length - 100] ^= 0xff;
    const sig = signModel(image, keys.privateKey);
    const transfer = 77;
    const chunks = splitChunks(transfer, tampered, 16384);
    const done = m.commands.request(id, 'firmware_update', { version: NEW, size: image.length, sha256: sha256Hex(image), signature: sig, transfer, chunks: chunks.length });
    for (const c of chunks) await m.conn.publish(deviceTopics('tinyfer', id).otaChunk, c, { qos: 1 });
    await assert.rejects(done, (e) => e.code === 'verify_failed' && /does not match its sha256/.test(e.message));
    assert.ok(!fs.existsSync(slot('.app-next')) && !fs.existsSync(slot('.app')));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(online(), OLD);
    assert.equal(dev.exitCode, null);
  });

  it('an interrupted transfer changes nothing: chunks that stop arriving, and a device killed mid-transfer', async function () {
    const image = fs.readFileSync(UPDATE_BIN);
    const params = { version: NEW, size: image.length, sha256: sha256Hex(image), signature: signModel(image, keys.privateKey) };
    let chunks = splitChunks(91, image, 16384);
    let done = m.commands.request(id, 'firmware_update', { ...params, transfer: 91, chunks: chunks.length });
    for (const c of chunks.slice(0, chunks.length >> 1)) await m.conn.publish(deviceTopics('tinyfer', id).otaChunk, c, { qos: 1 });
    await assert.rejects(done, (e) => e.code === 'timeout' && /did not all arrive/.test(e.message));
    assert.ok(!fs.existsSync(slot('.app-next')));
    assert.equal(online(), OLD);
    // power lost mid-transfer: the half-written slot is never booted
    chunks = splitChunks(92, image, 16384);
    done = m.commands.request(id, 'firmware_update', { ...params, transfer: 92, chunks: chunks.length }).catch((e) => e);
    for (const c of chunks.slice(0, chunks.length >> 1)) await m.conn.publish(deviceTopics('tinyfer', id).otaChunk, c, { qos: 1 });
    await waitFor(() => fs.existsSync(slot('.app-new')), 5000, 'the transfer started writing');
    await stopDevice('SIGKILL');
    await waitFor(() => m.registry.get(id).state === 'offline', 15000, 'offline by its last will');
    startDevice();
    await waitFor(() => online() === OLD, 10000, `back online with ${OLD}: ${devLog}`);
    assert.ok(!fs.existsSync(slot('.app-next')) && !fs.existsSync(slot('.app')));
    await done;
  });

  for (const [what, script] of [['exits at once', '#!/bin/sh\nexit 3\n'], ['hangs without reaching the broker', '#!/bin/sh\nexec sleep 60\n']]) {
    it(`a correctly signed image that ${what} is rolled back: the previous binary boots again`, async function () {
      const image = Buffer.from(script);
      const since = events.length;
      const r = await m.commands.firmwareUpdate(id, image, { version: 'broken', key: keys.privateKey });
      assert.equal(r.ok, true);
      assert.equal(r.result.reboot, true);
      assert.equal(await cameBack(since, what), OLD);
      assert.match(devLog, /failed its trial boot .*rolling back to the previous image/);
      assert.ok(fs.existsSync(slot('.app-failed')) && !fs.existsSync(slot('.app-next')) && !fs.existsSync(slot('.app')));
      assert.equal(dev.exitCode, null, 'the same process runs on');
    });
  }

  it('a good signed image (chunked) boots, confirms, and stays across a reboot and a restart', async function () {
    const image = fs.readFileSync(UPDATE_BIN);
    let since = events.length;
    const r = await m.commands.firmwareUpdate(id, image, { version: NEW, key: keys.privateKey, chunked: true, chunkBytes: 16384 });
    assert.equal(r.ok, true);
    assert.equal(r.result.sha256, sha256Hex(image));
    assert.equal(await cameBack(since, 'update'), NEW);
    await waitFor(() => fs.existsSync(slot('.app')), 5000, 'confirmed: the installed image');
    assert.deepEqual(fs.readFileSync(slot('.app')), image);
    assert.match(devLog, /confirmed itself/);
    since = events.length;
    await m.commands.request(id, 'reboot', { delay_ms: 0 });
    assert.equal(await cameBack(since, 'reboot'), NEW);
    // a fresh start of the factory binary boots the installed firmware
    await stopDevice('SIGTERM');
    await waitFor(() => m.registry.get(id).state === 'offline', 5000, 'offline after SIGTERM');
    startDevice(BIN);
    await waitFor(() => online() === NEW, 10000, `restarted with ${NEW}: ${devLog}`);
    this.test.title += ` (${image.length} bytes)`;
  });

  it('the tinyfer-command node sends a firmware_update from a file, signed with its key file', async function () {
    const keyFile = path.join(tmp, 'fw-signing.pem');
    fs.writeFileSync(keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const flow = [
      { id: 'tab', type: 'tab', label: 'fw' },
      { id: 'fleet', type: 'tinyfer-fleet', url: broker.url, prefix: 'tinyfer', protocolVersion: '5', commandTimeout: 15 },
      { id: 'cmd', type: 'tinyfer-command', z: 'tab', fleet: 'fleet', command: 'firmware_update', target: id, timeout: 15, keyFile, wires: [['out']] },
      { id: 'out', type: 'helper', z: 'tab' },
    ];
    await helper.load([fleetNode, commandNode], flow);
    const acks = [];
    helper.getNode('out').on('input', (msg) => acks.push(msg));
    await waitFor(() => helper.getNode('fleet').manager && helper.getNode('fleet').manager.conn.connected, 5000, 'node fleet connected');
    const since = events.length;
    helper.getNode('cmd').receive({ payload: BIN, version: OLD }); // back to the factory binary, as an update
    await waitFor(() => acks.length === 1, 15000, 'the acknowledgement');
    assert.equal(acks[0].payload.firmware, OLD);
    assert.equal(acks[0].payload.sha256, sha256Hex(fs.readFileSync(BIN)));
    assert.equal(await cameBack(since, 'node update'), OLD);
  });
});
