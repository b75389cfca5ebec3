'use strict';
/**
 * The shipped broker policy (broker/mosquitto.conf + broker/acl) on a real Mosquitto 2, started
 * with exactly those files (only their folder and listener port moved: test/helpers/policy-broker.js):
 * TLS only, no anonymous or wrongly authenticated client, and each device confined to its own
 * topics while the Node-RED user runs the fleet. Every "cannot" is checked against a positive
 * control sent after it on the same path, so a message that was not delivered was refused, not late.
 */
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const mqtt = require('mqtt');
const { startPolicyBroker } = require('./helpers/policy-broker');
const { requireMosquitto, waitFor } = require('./helpers/fleet');
const { splitChunks } = require('../dist/fleet/protocol');

const PW = { nodered: crypto.randomBytes(9).toString('hex'), homeassistant: crypto.randomBytes(9).toString('hex'), 'cam-a': crypto.randomBytes(9).toString('hex'), 'cam-b': crypto.randomBytes(9).toString('hex') };

describe('broker policy (broker/mosquitto.conf + broker/acl) on a real Mosquitto', function () {
  this.timeout(30000);
  let broker;
  const clients = [];

  /** Connect (MQTT 5 over TLS, CA checked); resolves the client, rejects with the refusal. */
  function connect(username, password, extra = {}) {
    return new Promise((resolve, reject) => {
      const c = mqtt.connect(extra.url || broker.url, {
        protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ca: broker.ca, clean: true,
        ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}), ...extra,
      });
      clients.push(c);
      c.once('connect', () => resolve(c));
      c.once('error', (e) => { c.end(true); reject(e); });
      c.once('close', () => reject(new Error('closed before CONNACK')));
    });
  }

  function collect(c) {
    const got = [];
    c.on('message', (topic, payload) => got.push({ topic, payload }));
    return got;
  }

  const sub = (c, filter) => new Promise((resolve, reject) => c.subscribe(filter, { qos: 1 }, (e, g) => (e ? reject(e) : resolve(g))));
  const pub = (c, topic, payload, opts = {}) => new Promise((resolve) => c.publish(topic, payload, { qos: 1, ...opts }, (e) => resolve(e || null)));

  before(async function () {
    requireMosquitto();
    broker = await startPolicyBroker(PW);
  });
  afterEach(function () {
    for (const c of clients.splice(0)) c.end(true);
  });
  after(async function () {
    if (broker) await broker.close();
  });

  it('refuses anonymous clients, wrong passwords, and clients that do not trust the CA or speak plain MQTT', async function () {
    await assert.rejects(connect(undefined, undefined), /Not authorized|Bad User Name or Password|not authori[sz]ed/i);
    await assert.rejects(connect('cam-a', 'wrong'), /Not authorized|Bad User Name or Password|not authori[sz]ed/i);
    await assert.rejects(connect('cam-a', PW['cam-a'], { ca: undefined }), /self[- ]signed|unable to verify|certificate/i);
    await assert.rejects(connect('cam-a', PW['cam-a'], { url: broker.url.replace('mqtts:', 'mqtt:') }));
    const ok = await connect('cam-a', PW['cam-a']);
    assert.ok(ok.connected);
  });

  it('a device cannot publish as another device; its own messages go through', async function () {
    const nr = await connect('nodered', PW.nodered);
    const got = collect(nr);
    await sub(nr, 'tinyfer/#');
    const a = await connect('cam-a', PW['cam-a']);
    const forged = JSON.stringify({ state: 'online', device: 'cam-b', protocol: 1, firmware: 'x', model: 'x', capabilities: [] });
    for (const kind of ['status', 'telemetry', 'emotion', 'frame', 'resp']) await pub(a, `tinyfer/cam-b/${kind}`, forged);
    for (const c of splitChunks(1, Buffer.alloc(3000, 1), 1000)) await pub(a, 'tinyfer/cam-b/frame/chunk', c);
    await pub(a, 'tinyfer/cam-a/status', JSON.stringify({ state: 'online' }), { retain: true });
    await pub(a, 'tinyfer/cam-a/emotion', 'own');
    await waitFor(() => got.some((m) => m.topic === 'tinyfer/cam-a/emotion'), 5000, 'own emotion');
    assert.deepEqual(got.map((m) => m.topic), ['tinyfer/cam-a/status', 'tinyfer/cam-a/emotion']);
    await pub(a, 'tinyfer/cam-a/status', '', { retain: true });
  });

  it('a device cannot command, configure or update another device (nor itself): only the Node-RED user can', async function () {
    const b = await connect('cam-b', PW['cam-b']);
    const got = collect(b);
    await sub(b, 'tinyfer/cam-b/cmd/+');
    await sub(b, 'tinyfer/cam-b/config');
    await sub(b, 'tinyfer/cam-b/ota/chunk');
    const a = await connect('cam-a', PW['cam-a']);
    await pub(a, 'tinyfer/cam-b/cmd/reboot', JSON.stringify({ id: 'evil' }));
    await pub(a, 'tinyfer/cam-b/config', JSON.stringify({ frames_enabled: true }), { retain: true });
    await pub(a, 'tinyfer/cam-b/ota/chunk', Buffer.alloc(100));
    await pub(b, 'tinyfer/cam-b/cmd/reboot', JSON.stringify({ id: 'self' }));
    await pub(b, 'tinyfer/cam-b/config', JSON.stringify({ frames_enabled: true }), { retain: true });
    const nr = await connect('nodered', PW.nodered);
    await pub(nr, 'tinyfer/cam-b/cmd/get_config', JSON.stringify({ id: 'from-nodered' }));
    await waitFor(() => got.length >= 1, 5000, 'the Node-RED command');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(got.map((m) => `${m.topic} ${m.payload}`), ['tinyfer/cam-b/cmd/get_config {"id":"from-nodered"}']);
  });

  it("a device cannot read another device's frames (or commands), by name or by wildcard", async function () {
    const a = await connect('cam-a', PW['cam-a']);
    const got = collect(a);
    const grants = [];
    for (const f of ['tinyfer/cam-b/frame/chunk', 'tinyfer/cam-b/frame', 'tinyfer/+/frame/chunk', 'tinyfer/#', '#', 'tinyfer/cam-b/cmd/+']) grants.push(await sub(a, f));
    await sub(a, 'tinyfer/cam-a/cmd/+');
    const b = await connect('cam-b', PW['cam-b']);
    for (const c of splitChunks(7, Buffer.alloc(2500, 2), 1000)) await pub(b, 'tinyfer/cam-b/frame/chunk', c);
    await pub(b, 'tinyfer/cam-b/frame', Buffer.from([0xff, 0xd8, 0xff, 0xe0]));
    const nr = await connect('nodered', PW.nodered);
    await pub(nr, 'tinyfer/cam-b/cmd/snapshot', JSON.stringify({ id: 'x' }));
    await pub(nr, 'tinyfer/cam-a/cmd/snapshot', JSON.stringify({ id: 'for-a' }));
    await waitFor(() => got.some((m) => m.topic === 'tinyfer/cam-a/cmd/snapshot'), 5000, "a's own command");
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual([...new Set(got.map((m) => m.topic))], ['tinyfer/cam-a/cmd/snapshot']);
  });

  it('Home Assistant reads what its entities show (never raw frames) and may only ask for an install; devices cannot publish its topics', async function () {
    const ha = await connect('homeassistant', PW.homeassistant);
    const got = collect(ha);
    for (const f of ['homeassistant/#', 'tinyfer/+/status', 'tinyfer/+/emotion', 'tinyfer/+/telemetry', 'tinyfer/_ha/#', 'tinyfer/+/frame', 'tinyfer/+/frame/chunk', 'tinyfer/+/cmd/+', 'tinyfer/+/config']) await sub(ha, f);
    const nr = await connect('nodered', PW.nodered);
    const nrGot = collect(nr);
    await sub(nr, 'homeassistant/status');
    await sub(nr, 'tinyfer/_ha/+/model/install');
    await sub(nr, 'tinyfer/+/cmd/+');
    const a = await connect('cam-a', PW['cam-a']);
    // Refused: a device writing the manager's Home Assistant topics, raw frames to HA, HA commanding or configuring a device.
    await pub(a, 'tinyfer/_ha/cam-a/availability', 'online', { retain: true });
    await pub(a, 'tinyfer/_ha/cam-a/image', Buffer.from([0xff, 0xd8, 0xff, 0xe0]));
    await pub(a, 'tinyfer/_ha/cam-a/model/install', 'install');
    await pub(a, 'homeassistant/sensor/cam-a_x/config', '{}', { retain: true });
    await pub(a, 'tinyfer/cam-a/frame', Buffer.from([0xff, 0xd8, 0xff, 0xe0]));
    await pub(ha, 'tinyfer/cam-a/cmd/reboot', JSON.stringify({ id: 'ha' }));
    await pub(ha, 'tinyfer/cam-a/config', JSON.stringify({ frames_enabled: true }));
    await pub(ha, 'tinyfer/_ha/cam-a/availability', 'offline');
    await pub(ha, 'homeassistant/sensor/cam-a_x/config', '{}');
    // Allowed, in this order: the device's emotion, the manager's availability, image and discovery, HA's install and birth.
    await pub(a, 'tinyfer/cam-a/emotion', 'e');
    await pub(nr, 'tinyfer/_ha/cam-a/availability', 'online');
    await pub(nr, 'tinyfer/_ha/cam-a/image', Buffer.from([0xff, 0xd8, 0xff, 0xe1]));
    await pub(nr, 'homeassistant/image/cam-a_frame/config', '{}');
    await pub(ha, 'tinyfer/_ha/cam-a/model/install', 'install');
    await pub(ha, 'homeassistant/status', 'online');
    await waitFor(() => got.some((m) => m.topic === 'homeassistant/status') && nrGot.some((m) => m.topic === 'homeassistant/status'), 5000, 'the birth');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(got.map((m) => m.topic), ['tinyfer/cam-a/emotion', 'tinyfer/_ha/cam-a/availability', 'tinyfer/_ha/cam-a/image', 'homeassistant/image/cam-a_frame/config', 'tinyfer/_ha/cam-a/model/install', 'homeassistant/status']);
    assert.equal(got[1].payload.toString(), 'online');
    assert.deepEqual(nrGot.map((m) => `${m.topic} ${m.payload}`), ['tinyfer/_ha/cam-a/model/install install', 'homeassistant/status online']);
  });

  it("a device that reuses another's client id does not disconnect it (the client id is the username)", async function () {
    const b = await connect('cam-b', PW['cam-b'], { clientId: 'cam-b' });
    let closed = false;
    b.on('close', () => { closed = true; });
    await connect('cam-a', PW['cam-a'], { clientId: 'cam-b' });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(closed, false);
    assert.ok(b.connected);
  });
});
