'use strict';
// The fleet against a real Mosquitto 2 broker: virtual devices sending real FER2013 faces, the
// registry, commands over MQTT 5 and 3.1.1, model updates, broker restarts, bad payloads,
// shared subscriptions and Home Assistant discovery.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const mqtt = require('mqtt');
const { startMosquitto } = require('./helpers/mosquitto');
const { waitFor, faces: loadFaces, requireMosquitto } = require('./helpers/fleet');
const { FleetManager, VirtualDevice, Simulator, CommandError, deviceTopics, splitChunks, signModel } = require('../dist/fleet');
const { LABELS } = require('../dist/model/labels');

describe('fleet over a real Mosquitto broker', function () {
  this.timeout(20000);
  let broker;
  let faces;
  let prefix;
  let n = 0;
  const open = [];
  const keys = crypto.generateKeyPairSync('ed25519');

  before(async function () {
    requireMosquitto();
    faces = loadFaces(4);
    broker = await startMosquitto({ tls: true, users: { fleet: 's3cret' } });
  });
  // Each test has its own topic prefix: retained messages of one test never leak into another.
  beforeEach(function () {
    prefix = `t${++n}`;
  });
  after(async function () {
    if (broker) await broker.close();
  });
  afterEach(async function () {
    for (const x of open.splice(0).reverse()) {
      if (x instanceof VirtualDevice) { if (x.connected) await x.stop(); else x.crash(); } else await x.close().catch(() => undefined);
    }
  });

  function manager(opts = {}) {
    const m = new FleetManager({ url: broker.url, prefix, reconnectPeriodMs: 200, commandTimeoutMs: 3000, ...opts });
    open.push(m);
    return m;
  }
  function device(id, opts = {}) {
    const d = new VirtualDevice({ url: broker.url, prefix, deviceId: id, faces, config: { capture_interval_ms: 100 }, telemetryIntervalMs: 200, modelKey: keys.publicKey, ...opts });
    open.push(d);
    return d;
  }
  const connected = (m) => waitFor(() => m.conn.connected, 5000, 'manager connected');

  it('devices appear with their birth, and disappear both gracefully and by last will', async function () {
    const m = manager();
    const events = [];
    m.on('event', (e) => { if (e.type === 'online' || e.type === 'offline') events.push(`${e.type}:${e.deviceId}:${e.payload.reason || ''}`); });
    await connected(m);
    const a = device('app-a'), b = device('app-b');
    await Promise.all([a.start(), b.start()]);
    await waitFor(() => m.registry.counts().online === 2, 5000, 'two online');
    const rec = m.registry.get('app-a');
    assert.equal(rec.firmware, '0.1.0-sim');
    assert.equal(rec.protocol, 1);
    assert.ok(rec.capabilities.includes('model_update'));
    await a.stop();
    b.crash();
    await waitFor(() => m.registry.counts().offline === 2, 5000, 'two offline');
    // app-a said goodbye (reason shutdown); app-b's offline is the broker's last will (no reason).
    assert.deepEqual(events.sort(), ['offline:app-a:shutdown', 'offline:app-b:', 'online:app-a:', 'online:app-b:']);
    // A manager started later learns the fleet from the retained status messages alone.
    const late = manager();
    await waitFor(() => late.registry.size === 2, 5000, 'retained statuses');
    assert.deepEqual(late.registry.list().map((d) => d.state), ['offline', 'offline']);
  });

  it('delivers every emotion with the label of the real face it came from, and chunked frames byte-exact', async function () {
    const m = manager();
    m.useStream('emotion');
    m.useStream('frame');
    m.useStream('telemetry');
    await connected(m);
    const d = device('e2e-1', { config: { capture_interval_ms: 60, frames_enabled: true }, chunkBytes: 300 });
    const sent = new Map();
    d.on('emotion', (s) => sent.set(s.seq, s));
    const got = [];
    const frames = new Map();
    m.on('event', (e) => {
      if (e.deviceId !== 'e2e-1') return;
      if (e.type === 'emotion') got.push(e.payload);
      if (e.type === 'frame') frames.set(e.frameId, e.payload);
    });
    await d.start();
    await waitFor(() => got.length >= 12, 8000, '12 emotions');
    await d.stop();
    await waitFor(() => got.length === d.sent.emotionAcked, 3000, 'all acked emotions received');
    assert.ok(got.length >= 12);
    for (const e of got) {
      const s = sent.get(e.seq);
      assert.ok(s, `emotion seq ${e.seq} was sent`);
      assert.equal(e.label, s.truth);
      assert.ok(LABELS.includes(e.label));
      const jpeg = frames.get(e.frame_id);
      if (jpeg) assert.ok(jpeg.equals(fs.readFileSync(s.file)), `frame ${e.frame_id} is the JPEG of ${s.file}`);
    }
    assert.ok(frames.size >= got.length - 2, `frames reassembled (${frames.size} for ${got.length} emotions)`);
    assert.ok(m.registry.get('e2e-1').telemetry, 'telemetry recorded');
    assert.equal(m.registry.counts().invalid, 0);
  });

  for (const [mv, dv] of [[5, 5], [4, 4], [5, 4]]) {
    it(`commands round-trip: requester MQTT ${mv === 5 ? '5' : '3.1.1'}, device MQTT ${dv === 5 ? '5' : '3.1.1'}`, async function () {
      const m = manager({ protocolVersion: mv });
      await connected(m);
      const d = device(`cmd-${mv}${dv}`, { protocolVersion: dv });
      await d.start();
      const c = await m.commands.request(d.id, 'get_config');
      assert.equal(c.ok, true);
      assert.equal(c.result.frames_enabled, false, 'frames are off by default (privacy)');
      await assert.rejects(m.commands.request(d.id, 'snapshot'), (e) => e instanceof CommandError && e.code === 'frames_disabled');
      const s = await m.commands.request(d.id, 'set_config', { frames_enabled: true, jpeg_quality: 60 });
      assert.equal(s.result.jpeg_quality, 60);
      assert.equal(d.config.frames_enabled, true);
      const snap = await m.commands.request(d.id, 'snapshot');
      assert.ok(snap.result.frame_id > 0 && snap.result.size > 100);
      await assert.rejects(m.commands.request(d.id, 'set_config', { jpeg_quality: 0 }), /jpeg_quality/);
      await assert.rejects(m.commands.request(d.id, 'self_destruct'), (e) => e.code === 'unknown_command');
      assert.equal(m.commands.inFlight, 0);
    });
  }

  it('set_config becomes the retained desired config a device applies at boot', async function () {
    const m = manager();
    await connected(m);
    const d = device('cfg-1');
    await d.start();
    await m.commands.request(d.id, 'set_config', { capture_interval_ms: 250, confidence_threshold: 0.3 });
    await d.stop();
    const again = device('cfg-1');
    await again.start();
    await waitFor(() => again.config.capture_interval_ms === 250, 3000, 'retained config applied');
    assert.equal(again.config.confidence_threshold, 0.3);
  });

  it('times out against a silent device and rejects bad requests before sending', async function () {
    const m = manager();
    await connected(m);
    await assert.rejects(m.commands.request('nobody-home', 'get_config', undefined, { timeoutMs: 300 }), (e) => e.code === 'timeout' && /no response within 300 ms/.test(e.message));
    await assert.rejects(m.commands.request('bad/id', 'get_config'), /invalid device id/);
    await assert.rejects(m.commands.request('x', 'set_config', { frames_enabled: 'yes' }), /frames_enabled/);
    assert.equal(m.commands.inFlight, 0);
  });

  it('reboot: acked, offline (clean), then online again', async function () {
    const m = manager();
    const seen = [];
    m.on('event', (e) => { if (e.deviceId === 'rb-1' && (e.type === 'online' || e.type === 'offline')) seen.push(e.type); });
    await connected(m);
    const d = device('rb-1');
    await d.start();
    const r = await m.commands.request(d.id, 'reboot', { delay_ms: 50 });
    assert.equal(r.result.delay_ms, 50);
    await waitFor(() => seen.length >= 3, 5000, 'offline then online');
    assert.deepEqual(seen.slice(0, 3), ['online', 'offline', 'online']);
  });

  it('model_update: inline and chunked, signed with Ed25519; the ack names the active model', async function () {
    const m = manager();
    await connected(m);
    const d = device('ota-1');
    await d.start();
    const small = crypto.randomBytes(2000);
    const r1 = await m.commands.modelUpdate(d.id, small, { version: 'fer-v2', key: keys.privateKey });
    assert.equal(r1.result.model, 'fer-v2');
    const big = crypto.randomBytes(100 * 1024);
    const sig = signModel(big, keys.privateKey);
    const r2 = await m.commands.modelUpdate(d.id, big, { version: 'fer-v3', signature: sig, chunkBytes: 4096 });
    assert.equal(r2.result.model, 'fer-v3');
    assert.equal(r2.result.sha256, crypto.createHash('sha256').update(big).digest('hex'));
    await waitFor(() => m.registry.get('ota-1').model === 'fer-v3', 3000, 'registry sees the new model');
    const wrongKey = crypto.generateKeyPairSync('ed25519').privateKey;
    await assert.rejects(m.commands.modelUpdate(d.id, small, { version: 'evil', key: wrongKey }), (e) => e.code === 'verify_failed');
    await assert.rejects(m.commands.modelUpdate(d.id, big, { version: 'evil', key: wrongKey, chunkBytes: 8192 }), (e) => e.code === 'verify_failed');
    assert.equal(d.model, 'fer-v3');
    await assert.rejects(m.commands.modelUpdate(d.id, small, { version: 'x' }), /signature/);
  });

  it('survives a broker restart mid-stream: reconnects, no duplicate devices, nothing stuck', async function () {
    const m = manager();
    m.useStream('emotion');
    await connected(m);
    const sim = new Simulator({ url: broker.url, prefix, count: 3, idPrefix: 'rs-', faces, config: { capture_interval_ms: 100 }, reconnectPeriodMs: 200 });
    open.push(...sim.devices);
    let emotions = 0;
    m.on('event', (e) => { if (e.type === 'emotion') emotions++; });
    await sim.start();
    await waitFor(() => emotions >= 6, 5000, 'emotions before the restart');
    const pending = m.commands.request('rs-0', 'get_config', undefined, { timeoutMs: 1500 }).catch((e) => e);
    await broker.restart();
    await waitFor(() => m.conn.connects >= 2 && m.conn.connected, 10000, 'manager reconnected');
    await waitFor(() => sim.devices.every((d) => d.connected), 10000, 'devices reconnected');
    const before = emotions;
    await waitFor(() => emotions >= before + 6, 8000, 'emotions after the restart');
    assert.equal(m.registry.size, 3, 'no duplicate devices');
    await waitFor(() => m.registry.counts().online === 3, 5000, 'all online');
    const r = await m.commands.request('rs-1', 'get_config');
    assert.equal(r.ok, true);
    const p = await pending;
    assert.ok(!(p instanceof Error) || p.code === 'timeout', 'the in-flight request settled');
    assert.equal(m.commands.inFlight, 0);
  });

  it('bad payloads on every topic are counted per device and topic, and nothing breaks', async function () {
    const m = manager();
    m.useStream('emotion');
    m.useStream('telemetry');
    m.useStream('frame');
    const warned = [];
    m.on('invalid', (i) => warned.push(i));
    await connected(m);
    const good = device('bp-good');
    await good.start();
    const evil = mqtt.connect(broker.url, { protocolVersion: 5 });
    await new Promise((r) => evil.once('connect', r));
    const t = deviceTopics(prefix, 'bp-evil');
    const pub = (topic, payload) => new Promise((r) => evil.publish(topic, payload, { qos: 1 }, r));
    await pub(t.status, '{"state":"online"}');
    await pub(t.status, 'garbage');
    await pub(t.telemetry, JSON.stringify({ uptime_s: -1 }));
    await pub(t.telemetry, Buffer.alloc(10000, 0x41));
    await pub(t.emotion, '{"label":"happy"}');
    await pub(t.emotion, '[]');
    await pub(t.frame, Buffer.from('not a jpeg'));
    await pub(t.frameChunk, Buffer.from('TF'));
    await pub(t.frameChunk, splitChunks(1, Buffer.from('no jpeg here'), 100)[0]);
    await pub(t.resp, '{"id":1}');
    await waitFor(() => warned.length >= 9, 5000, 'nine bad messages counted');
    const by = Object.fromEntries(m.registry.invalidCounts);
    assert.deepEqual(by, { 'bp-evil/status': 2, 'bp-evil/telemetry': 2, 'bp-evil/emotion': 2, 'bp-evil/frame': 1, 'bp-evil/frame/chunk': 2 });
    await waitFor(() => m.commands.invalid >= 1, 3000, 'bad response counted');
    // The device side: a malformed request is answered with bad_request; bad config and chunks are ignored.
    const g = deviceTopics(prefix, good.id);
    const answers = [];
    evil.on('message', (topic, payload) => answers.push(JSON.parse(payload)));
    await new Promise((r) => evil.subscribe(g.resp, { qos: 1 }, r));
    await pub(g.cmd('get_config'), '{"params":');
    await pub(g.cmd('get_config'), JSON.stringify({ id: 'x1', params: [] }));
    await pub(g.config, JSON.stringify({ jpeg_quality: 1000 }));
    await pub(g.otaChunk, Buffer.from('junk'));
    await waitFor(() => answers.length === 2, 3000, 'two bad_request answers');
    assert.deepEqual(answers.map((a) => [a.ok, a.error.code]), [[false, 'bad_request'], [false, 'bad_request']]);
    assert.equal(answers[1].id, 'x1');
    assert.equal(good.config.jpeg_quality, 80, 'a bad retained config is ignored');
    evil.end(true);
    // The good device is unaffected.
    const r = await m.commands.request(good.id, 'get_config');
    assert.equal(r.ok, true);
    await waitFor(() => m.registry.get('bp-good').emotion, 3000, 'good emotions flow');
  });

  it('MQTT 5 shared subscriptions split the emotion stream between instances, each message once', async function () {
    const m1 = manager({ sharedGroup: 'nr' });
    const m2 = manager({ sharedGroup: 'nr' });
    const got = [new Map(), new Map()];
    [m1, m2].forEach((m, i) => {
      m.useStream('emotion');
      m.on('event', (e) => { if (e.type === 'emotion') got[i].set(`${e.deviceId}/${e.payload.seq}`, 1); });
    });
    await Promise.all([connected(m1), connected(m2)]);
    await new Promise((r) => setTimeout(r, 200));
    const sim = new Simulator({ url: broker.url, prefix, count: 2, idPrefix: 'sh-', faces, config: { capture_interval_ms: 50 } });
    open.push(...sim.devices);
    await sim.start();
    const total = () => got[0].size + got[1].size;
    await waitFor(() => total() >= 30, 8000, '30 emotions');
    await sim.stop();
    const sent = sim.devices.reduce((n, d) => n + d.sent.emotionAcked, 0);
    await waitFor(() => total() === sent, 3000, 'every acked emotion delivered');
    for (const k of got[0].keys()) assert.ok(!got[1].has(k), `${k} delivered to one instance only`);
    assert.ok(got[0].size > 0 && got[1].size > 0, `both instances got a share (${got[0].size}/${got[1].size})`);
    // Status is not shared: both registries know both devices.
    assert.equal(m1.registry.size, 2);
    assert.equal(m2.registry.size, 2);
  });

  it('connects over TLS (server verified against its CA) with a username and password', async function () {
    const m = manager({ url: broker.tlsUrl, tls: { ca: broker.ca }, username: 'fleet', password: 's3cret' });
    await connected(m);
    const d = device('tls-1');
    await d.start();
    await waitFor(() => m.registry.get('tls-1')?.state === 'online', 3000, 'device seen through the TLS connection');
    const r = await m.commands.request('tls-1', 'get_config');
    assert.equal(r.ok, true);
    const bad = manager({ url: broker.tlsUrl, tls: { ca: broker.ca }, username: 'fleet', password: 'wrong', reconnectPeriodMs: 60000 });
    bad.on('error', () => undefined);
    await waitFor(() => bad.conn.lastError, 3000, 'refused');
    assert.match(bad.conn.lastError.message, /Not authorized/);
    const untrusted = manager({ url: broker.tlsUrl, username: 'fleet', password: 's3cret', reconnectPeriodMs: 60000 });
    await waitFor(() => untrusted.conn.lastError, 3000, 'certificate rejected');
    assert.match(untrusted.conn.lastError.message, /certificate/i);
    assert.equal(bad.conn.connected || untrusted.conn.connected, false);
  });

  it('publishes retained Home Assistant discovery configs when a device comes online', async function () {
    const m = manager({ homeAssistant: true });
    await connected(m);
    const d = device('ha-1');
    await d.start();
    await waitFor(() => m.registry.get('ha-1')?.state === 'online', 3000, 'online');
    // The manager publishes the configs when it sees the device online, possibly a moment after
    // this test sees the state change: a subscriber that is already there receives them live
    // (retain flag cleared), one that subscribes later receives the broker's retained copies.
    // So: wait for all four, then check with a fresh subscriber that the broker retained them.
    const subscribe = async (onlyRetained) => {
      const sub = mqtt.connect(broker.url);
      open.push({ close: () => new Promise((r) => sub.end(true, {}, r)) });
      const got = new Map();
      sub.on('message', (topic, payload, packet) => { if (!onlyRetained || packet.retain) got.set(topic, JSON.parse(payload)); });
      await new Promise((r) => sub.once('connect', r));
      sub.subscribe('homeassistant/sensor/+/config');
      return got;
    };
    const live = await subscribe(false);
    await waitFor(() => live.size >= 4, 5000, 'four discovery configs');
    const configs = await subscribe(true);
    await waitFor(() => configs.size >= 4, 5000, 'four retained discovery configs');
    const e = configs.get('homeassistant/sensor/ha-1_emotion/config');
    assert.equal(e.state_topic, `${prefix}/ha-1/emotion`);
    assert.equal(e.device.identifiers[0], 'tinyfer_ha-1');
  });
});
