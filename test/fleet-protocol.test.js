'use strict';
// The fleet protocol module without a broker: topics, validators, chunk header, reassembly,
// model signatures, Home Assistant discovery, and the registry fed with hand-made messages.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const P = require('../dist/fleet/protocol');
const { DeviceRegistry } = require('../dist/fleet/registry');
const { LABELS } = require('../dist/model/labels');

const scores = Object.fromEntries(LABELS.map((l, i) => [l, i === 3 ? 0.7 : 0.05]));
const emotion = { ts: 1700000000000, seq: 1, box: { x: 10, y: 20, w: 48, h: 48 }, label: 'happy', confidence: 0.7, scores, inference_ms: 12.5 };
const telemetry = { uptime_s: 10, heap_free: 200000, psram_free: 4000000, rssi: -60, fps: 2, inference_ms: 12, temp_c: 45.5 };
const birth = { state: 'online', protocol: 1, firmware: '1.0.0', model: 'm1', ip: '10.0.0.2', capabilities: ['emotion'] };

describe('fleet protocol: topics', function () {
  it('builds every device topic under the prefix', function () {
    const t = P.deviceTopics('tinyfer', 'cam-01');
    assert.equal(t.status, 'tinyfer/cam-01/status');
    assert.equal(t.frameChunk, 'tinyfer/cam-01/frame/chunk');
    assert.equal(t.cmd('set_config'), 'tinyfer/cam-01/cmd/set_config');
    assert.equal(t.otaChunk, 'tinyfer/cam-01/ota/chunk');
    assert.equal(P.deviceTopics('site/a', 'x').emotion, 'site/a/x/emotion');
  });

  it('parses topics back and rejects foreign ones', function () {
    assert.deepEqual(P.parseTopic('tinyfer', 'tinyfer/cam-01/frame/chunk'), { deviceId: 'cam-01', kind: 'frame/chunk' });
    assert.deepEqual(P.parseTopic('tinyfer', 'tinyfer/cam-01/cmd/reboot'), { deviceId: 'cam-01', kind: 'cmd', command: 'reboot' });
    assert.equal(P.parseTopic('tinyfer', 'tinyfer/cam-01/other'), null);
    assert.equal(P.parseTopic('tinyfer', 'tinyfer/_resp/x'), null);
    assert.equal(P.parseTopic('tinyfer', 'other/cam-01/status'), null);
  });

  it('rejects bad ids, prefixes, command names and groups with a clear error', function () {
    assert.throws(() => P.deviceTopics('tinyfer', 'a/b'), P.ProtocolError);
    assert.throws(() => P.deviceTopics('tinyfer', '_x'), /invalid device id/);
    assert.throws(() => P.deviceTopics('tiny/#', 'a'), /invalid topic prefix/);
    assert.throws(() => P.deviceTopics('$SYS', 'a'), /invalid topic prefix/);
    assert.throws(() => P.deviceTopics('t', 'a').cmd('Bad-Name'), /invalid command name/);
    assert.throws(() => P.sharedFilter('t/+/emotion', 'a/b'), /shared subscription group/);
  });

  it('matches filters like a broker, including shared ones', function () {
    assert.ok(P.topicMatches('tinyfer/+/status', 'tinyfer/a/status'));
    assert.ok(!P.topicMatches('tinyfer/+/status', 'tinyfer/a/b/status'));
    assert.ok(P.topicMatches('tinyfer/#', 'tinyfer/a/frame/chunk'));
    assert.ok(P.topicMatches('$share/g/tinyfer/+/emotion', 'tinyfer/a/emotion'));
    assert.ok(!P.topicMatches('#', '$SYS/broker/uptime'));
    assert.equal(P.sharedFilter('tinyfer/+/emotion', 'nr'), '$share/nr/tinyfer/+/emotion');
    assert.equal(P.sharedFilter('tinyfer/+/emotion'), 'tinyfer/+/emotion');
  });
});

describe('fleet protocol: payload validators', function () {
  it('accepts well-formed payloads of every kind', function () {
    assert.ok(P.validateStatus(birth).ok);
    assert.ok(P.validateStatus({ state: 'offline' }).ok);
    assert.ok(P.validateTelemetry(telemetry).ok);
    assert.ok(P.validateEmotion(emotion).ok);
    assert.ok(P.validateEmotion({ ...emotion, frame_id: 7 }).ok);
    assert.ok(P.validateConfig({ ...P.DEFAULT_CONFIG }).ok);
    assert.ok(P.validateConfig({ frames_enabled: true }, true).ok);
    assert.ok(P.validateRequest({ id: 'abc', params: {} }).ok);
    assert.ok(P.validateResponse({ id: 'abc', cmd: 'reboot', ok: true, result: {} }).ok);
    assert.ok(P.validateResponse({ id: 'abc', cmd: 'reboot', ok: false, error: { code: 'x', message: 'y' } }).ok);
  });

  it('names what is wrong in malformed payloads', function () {
    const cases = [
      [P.validateStatus({ state: 'online' }), /protocol: required/],
      [P.validateStatus({ state: 'up' }), /state: must be/],
      [P.validateTelemetry({ ...telemetry, rssi: 5 }), /rssi/],
      [P.validateTelemetry({ ...telemetry, heap_free: 1.5 }), /heap_free/],
      [P.validateTelemetry({ ...telemetry, extra: 1 }), /extra: unknown field/],
      [P.validateEmotion({ ...emotion, label: 'contempt' }), /label: must be one of/],
      [P.validateEmotion({ ...emotion, confidence: 1.5 }), /confidence/],
      [P.validateEmotion({ ...emotion, box: { x: 0, y: 0, w: 0, h: 1 } }), /box/],
      [P.validateEmotion({ ...emotion, scores: { happy: 1 } }), /scores/],
      [P.validateEmotion({ ...emotion, seq: -1 }), /seq/],
      [P.validateConfig({ ...P.DEFAULT_CONFIG, jpeg_quality: 0 }), /jpeg_quality/],
      [P.validateConfig({ frames_enabled: 'yes' }, true), /frames_enabled/],
      [P.validateRequest({ params: {} }), /id: required/],
      [P.validateResponse({ id: 'a', cmd: 'x', ok: false }), /error: required/],
      [P.validateEmotion([1, 2]), /must be an object/],
      [P.validateTelemetry(null), /must be an object/],
    ];
    for (const [r, re] of cases) {
      assert.equal(r.ok, false);
      assert.match(r.error, re);
    }
  });

  it('parses JSON with the per-topic size limit and never throws', function () {
    assert.equal(P.parseJson('emotion', '{"a":').ok, false);
    assert.match(P.parseJson('emotion', '{"a":').error, /not JSON/);
    const big = Buffer.alloc(P.TOPIC_RULES.telemetry.maxBytes + 1, 0x20);
    assert.match(P.parseJson('telemetry', big).error, /oversized/);
    assert.deepEqual(P.parseJson('telemetry', Buffer.from('{"a":1}')).value, { a: 1 });
  });

  it('validates model_update params (inline xor chunked)', function () {
    const base = { version: 'v2', size: 10, sha256: 'a'.repeat(64), signature: 'A'.repeat(86) + '==' };
    assert.ok(P.validateModelUpdate({ ...base, blob: 'AAAA' }).ok);
    assert.ok(P.validateModelUpdate({ ...base, transfer: 5, chunks: 2 }).ok);
    assert.match(P.validateModelUpdate(base).error, /exactly one of blob/);
    assert.match(P.validateModelUpdate({ ...base, transfer: 5 }).error, /chunks: required/);
    assert.match(P.validateModelUpdate({ ...base, sha256: 'XYZ', blob: '' }).error, /sha256/);
  });

  it('picks the top label from LABELS-ordered scores', function () {
    const t = P.topLabel([0.1, 0, 0, 0.2, 0.6, 0.05, 0.05]);
    assert.equal(t.label, 'sad');
    assert.equal(t.confidence, 0.6);
    assert.deepEqual(Object.keys(t.scores), [...LABELS]);
    assert.throws(() => P.topLabel([1, 2]), /expected 7 scores/);
  });
});

describe('fleet protocol: binary chunks and FrameAssembler', function () {
  const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), crypto.randomBytes(5000)]);

  it('encodes the documented 20-byte big-endian header', function () {
    const c = P.encodeChunk({ id: 0x01020304, index: 1, count: 3, total: 300, offset: 100 }, Buffer.from('xyz'));
    assert.equal(c.length, 23);
    assert.deepEqual([...c.subarray(0, 20)], [0x54, 0x46, 1, 0, 1, 2, 3, 4, 0, 1, 0, 3, 0, 0, 1, 44, 0, 0, 0, 100]);
    const d = P.decodeChunk(c);
    assert.ok(d.ok);
    assert.deepEqual({ ...d.value, data: d.value.data.toString() }, { id: 0x01020304, index: 1, count: 3, total: 300, offset: 100, data: 'xyz' });
  });

  it('rejects malformed chunks with a reason', function () {
    assert.match(P.decodeChunk(Buffer.alloc(5)).error, /shorter/);
    const good = P.encodeChunk({ id: 1, index: 0, count: 1, total: 3, offset: 0 }, Buffer.from('abc'));
    const bad = Buffer.from(good); bad[0] = 0;
    assert.match(P.decodeChunk(bad).error, /magic/);
    const v2 = Buffer.from(good); v2[2] = 9;
    assert.match(P.decodeChunk(v2).error, /version 9/);
    const past = Buffer.from(good); past.writeUInt32BE(2, 16);
    assert.match(P.decodeChunk(past).error, /do not fit/);
    const idx = Buffer.from(good); idx.writeUInt16BE(1, 8);
    assert.match(P.decodeChunk(idx).error, /index 1 of 1/);
    assert.throws(() => P.encodeChunk({ id: 1, index: 2, count: 2, total: 3, offset: 0 }, Buffer.from('a')), /invalid chunk header/);
  });

  it('reassembles out of order, with duplicates, from several sources', function () {
    const a = new P.FrameAssembler();
    const chunksA = P.splitChunks(7, jpeg, 1000);
    const chunksB = P.splitChunks(7, jpeg.subarray(0, 2500), 1000);
    assert.equal(chunksA.length, 6);
    const order = [5, 0, 3, 3, 1, 4];
    for (const i of order) assert.equal(a.push('a', chunksA[i]).status, 'partial');
    assert.equal(a.push('b', chunksB[2]).status, 'partial');
    assert.equal(a.push('b', chunksB[0]).status, 'partial');
    const rb = a.push('b', chunksB[1]);
    assert.equal(rb.status, 'complete');
    assert.ok(rb.data.equals(jpeg.subarray(0, 2500)));
    const ra = a.push('a', chunksA[2]);
    assert.equal(ra.status, 'complete');
    assert.equal(ra.id, 7);
    assert.ok(ra.data.equals(jpeg));
    assert.equal(a.pending, 0);
  });

  it('drops stale and excess transfers, rejects oversize and inconsistent ones', function () {
    let now = 0;
    const a = new P.FrameAssembler({ timeoutMs: 100, maxInFlight: 2, maxBytes: 4000, now: () => now });
    assert.match(a.push('a', P.splitChunks(1, jpeg, 1000)[0]).error, /limit 4000/);
    const small = jpeg.subarray(0, 3000);
    a.push('a', P.splitChunks(1, small, 1000)[0]);
    a.push('a', P.splitChunks(2, small, 1000)[0]);
    a.push('a', P.splitChunks(3, small, 1000)[0]);
    assert.equal(a.pending, 2);
    assert.equal(a.expired, 1);
    now = 500;
    a.push('b', P.splitChunks(9, small, 1000)[0]);
    assert.equal(a.pending, 1);
    assert.equal(a.expired, 3);
    const other = P.splitChunks(9, jpeg.subarray(0, 2000), 1000)[1];
    assert.match(a.push('b', other).error, /changed its count\/total/);
  });

  it('caps partial objects across ALL sources, dropping the oldest first, and still completes a fresh one', function () {
    const a = new P.FrameAssembler({ maxBytes: 10000, maxPendingBytes: 30000, maxPending: 100 });
    const big = crypto.randomBytes(10000);
    // 50 sources each start a 10000-byte object: only the newest 3 fit in 30000 bytes.
    for (let i = 0; i < 50; i++) assert.equal(a.push(`fake-${i}`, P.splitChunks(1, big, 1000)[0]).status, 'partial');
    assert.equal(a.pending, 3);
    assert.equal(a.pendingBytes, 30000);
    assert.equal(a.sources, 3);
    assert.equal(a.evicted, 47);
    // A real source sends a whole object: it gets through, pushing out the oldest partials as it goes.
    let r;
    for (const c of P.splitChunks(5, big, 1000)) r = a.push('real', c);
    assert.equal(r.status, 'complete');
    assert.ok(r.data.equals(big));
    assert.ok(a.pendingBytes <= 30000);
    // The count cap works the same way.
    const b = new P.FrameAssembler({ maxPending: 4 });
    for (let i = 0; i < 10; i++) b.push(`s${i}`, P.splitChunks(1, jpeg, 1000)[0]);
    assert.equal(b.pending, 4);
    assert.equal(b.evicted, 6);
    assert.throws(() => new P.FrameAssembler({ maxBytes: 1000, maxPendingBytes: 10 }), /maxPendingBytes/);
  });

  it('FrameRateLimiter: bursts up to the limit, then the average rate per source; drops are counted', function () {
    let now = 0;
    const l = new P.FrameRateLimiter(2, 2, () => now);
    assert.deepEqual([1, 2, 3, 4].map(() => l.take('a')), [true, true, false, false]);
    assert.equal(l.take('b'), true); // another source has its own bucket
    now = 500;
    assert.deepEqual([l.take('a'), l.take('a')], [true, false]);
    assert.equal(l.dropped, 3);
    assert.equal(l.droppedBy.get('a'), 3);
    assert.equal(new P.FrameRateLimiter(0).take('x'), true); // 0: no limit
    assert.throws(() => new P.FrameRateLimiter(-1), /frame rate limit/);
  });
});

describe('fleet protocol: model signatures', function () {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const blob = crypto.randomBytes(3000);

  it('signs the SHA-256 digest with Ed25519 and verifies it', function () {
    const sig = P.signModel(blob, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const sha = P.sha256Hex(blob);
    assert.ok(P.verifyModel(sha, sig, publicKey.export({ type: 'spki', format: 'pem' })));
    assert.ok(!P.verifyModel(P.sha256Hex(Buffer.from('other')), sig, publicKey));
    const other = crypto.generateKeyPairSync('ed25519').publicKey;
    assert.ok(!P.verifyModel(sha, sig, other));
    assert.ok(!P.verifyModel(sha, 'AAAA', publicKey));
    // The digest signed is the raw 32 bytes: what a device verifies after hashing while streaming.
    assert.ok(crypto.verify(null, crypto.createHash('sha256').update(blob).digest(), publicKey, Buffer.from(sig, 'base64')));
    assert.equal(P.rawPublicKey(publicKey).length, 32);
  });

  it('refuses keys that are not Ed25519', function () {
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    assert.throws(() => P.signModel(blob, rsa), /Ed25519 private key/);
  });
});

describe('fleet protocol: Home Assistant discovery', function () {
  it('makes retained configs: four sensors, the model update entity and the image entity (or its removal), each available by the manager and the device', function () {
    const msgs = P.homeAssistantDiscovery('tinyfer', 'cam-01', birth, { image: true, install: true });
    assert.deepEqual(msgs.map((m) => m.topic), [
      'homeassistant/sensor/cam-01_emotion/config', 'homeassistant/sensor/cam-01_confidence/config',
      'homeassistant/sensor/cam-01_rssi/config', 'homeassistant/sensor/cam-01_fps/config',
      'homeassistant/update/cam-01_model/config', 'homeassistant/image/cam-01_frame/config',
    ]);
    const e = msgs[0];
    assert.equal(e.retain, true);
    assert.equal(e.payload.state_topic, 'tinyfer/cam-01/emotion');
    assert.deepEqual(e.payload.availability.map((a) => a.topic), ['tinyfer/_ha/cam-01/availability', 'tinyfer/cam-01/status']);
    assert.equal(e.payload.availability[1].value_template, '{{ value_json.state }}');
    assert.equal(e.payload.availability_mode, 'all');
    assert.equal(e.payload.value_template, '{{ value_json.label }}');
    assert.equal(e.payload.device.sw_version, '1.0.0');
    assert.equal(msgs[4].payload.command_topic, 'tinyfer/_ha/cam-01/model/install');
    assert.equal(msgs[4].payload.state_topic, 'tinyfer/_ha/cam-01/model');
    assert.equal(msgs[5].payload.image_topic, 'tinyfer/_ha/cam-01/image');
    assert.equal(new Set(msgs.map((m) => m.payload.unique_id)).size, 6);
    assert.deepEqual(P.homeAssistantRemoval('cam-01'), msgs.map((m) => m.topic));
    // Images off: an empty payload removes the image entity; no key: no install offered, and why.
    const off = P.homeAssistantDiscovery('tinyfer', 'cam-01', birth, { installOff: 'install is off: no key' });
    assert.equal(off[5].payload, null);
    assert.equal(off[4].payload.command_topic, undefined);
    assert.equal(off[4].payload.release_summary, 'install is off: no key');
    assert.throws(() => P.homeAssistantDiscovery('tinyfer', 'cam-01', birth, { discoveryPrefix: 'ha/+' }), /invalid discovery prefix/);
  });
});

describe('fleet registry (no broker)', function () {
  const j = (o) => Buffer.from(JSON.stringify(o));

  it('tracks online/offline transitions once and keeps the last telemetry and emotion', function () {
    const r = new DeviceRegistry();
    const events = [];
    r.on('event', (e) => events.push(e.type));
    r.handle('tinyfer/a/status', j(birth), true);
    r.handle('tinyfer/a/status', j(birth), false);
    r.handle('tinyfer/a/telemetry', j(telemetry));
    r.handle('tinyfer/a/emotion', j(emotion));
    r.handle('tinyfer/a/status', j({ state: 'offline' }));
    assert.deepEqual(events, ['online', 'status', 'telemetry', 'emotion', 'offline']);
    const d = r.get('a');
    assert.equal(d.state, 'offline');
    assert.equal(d.firmware, '1.0.0');
    assert.equal(d.telemetry.rssi, -60);
    assert.equal(d.emotion.label, 'happy');
    assert.deepEqual(r.counts(), { online: 0, offline: 1, invalid: 0, spoofed: 0, framesDropped: 0 });
  });

  it('counts bad messages per device and topic, never throws', function () {
    const r = new DeviceRegistry();
    const bad = [];
    r.on('invalid', (i) => bad.push(i));
    r.handle('tinyfer/a/status', j(birth));
    const inputs = [
      ['tinyfer/a/status', Buffer.from('not json')],
      ['tinyfer/a/telemetry', j({ uptime_s: 'x' })],
      ['tinyfer/a/telemetry', Buffer.alloc(5000, 0x7b)],
      ['tinyfer/a/emotion', j({ ...emotion, label: 'bored' })],
      ['tinyfer/a/frame', Buffer.from('GIF89a')],
      ['tinyfer/a/frame/chunk', Buffer.from([1, 2, 3])],
      ['tinyfer/a/config', j({ jpeg_quality: 500 })],
      ['tinyfer/a/nonsense', j({})],
      ['elsewhere/x', j({})],
    ];
    for (const [t, p] of inputs) assert.equal(r.handle(t, p), null);
    assert.equal(bad.length, inputs.length);
    assert.equal(r.invalidCounts.get('a/telemetry'), 2);
    assert.equal(r.invalidCounts.get('a/emotion'), 1);
    assert.equal(r.get('a').invalid, 7);
    assert.equal(r.counts().invalid, inputs.length);
    assert.equal(r.get('a').state, 'online');
  });

  it('refuses and counts a message whose payload names another device than its topic', function () {
    const r = new DeviceRegistry();
    const bad = [];
    r.on('invalid', (i) => bad.push(i));
    assert.ok(r.handle('tinyfer/a/status', j({ ...birth, device: 'a' })));
    assert.equal(r.handle('tinyfer/a/status', j({ ...birth, device: 'b' })), null);
    assert.equal(r.handle('tinyfer/a/emotion', j({ ...emotion, device: 'b' })), null);
    assert.equal(r.handle('tinyfer/a/telemetry', j({ ...telemetry, device: 'b' })), null);
    assert.ok(r.handle('tinyfer/a/emotion', j({ ...emotion, device: 'a' })));
    assert.equal(r.spoofed, 3);
    assert.deepEqual(bad.map((i) => i.kind), ['status', 'emotion', 'telemetry']);
    assert.match(bad[0].error, /names device "b", the topic "a"/);
    assert.equal(r.counts().spoofed, 3);
    assert.equal(r.counts().invalid, 3);
    assert.equal(r.get('b'), undefined, 'no record for the named device');
  });

  it('drops and counts frames beyond the per-device rate limit; partial chunks of unknown ids leave no record', function () {
    let now = 0;
    const r = new DeviceRegistry({ maxFrameRate: 2, now: () => now });
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xdb]), crypto.randomBytes(100)]);
    const frames = [];
    r.on('event', (e) => { if (e.type === 'frame') frames.push(e); });
    for (let i = 0; i < 5; i++) r.handle('tinyfer/cam/frame', jpeg);
    assert.equal(frames.length, 2);
    assert.equal(r.counts().framesDropped, 3);
    now = 1000;
    for (let i = 0; i < 5; i++) r.handle('tinyfer/cam/frame', jpeg);
    assert.equal(frames.length, 4);
    assert.equal(r.frameLimiter.droppedBy.get('cam'), 6);
    for (let i = 0; i < 100; i++) r.handle(`tinyfer/fake-${i}/frame/chunk`, P.splitChunks(i, jpeg, 50)[0]);
    assert.equal(r.size, 1, 'only the real device has a record');
  });

  it('reassembles chunked frames into frame events', function () {
    const r = new DeviceRegistry();
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xdb]), crypto.randomBytes(3000)]);
    let frame = null;
    r.on('event', (e) => { if (e.type === 'frame') frame = e; });
    for (const c of P.splitChunks(42, jpeg, 1024)) r.handle('tinyfer/a/frame/chunk', c);
    assert.equal(frame.frameId, 42);
    assert.ok(frame.payload.equals(jpeg));
  });

  it('snapshots and restores without duplicating devices', function () {
    const r = new DeviceRegistry();
    r.handle('tinyfer/a/status', j(birth));
    r.handle('tinyfer/b/status', j({ state: 'offline' }));
    const snap = JSON.parse(JSON.stringify(r.snapshot()));
    const r2 = new DeviceRegistry();
    r2.handle('tinyfer/a/status', j(birth));
    assert.equal(r2.restore(snap), 1);
    assert.deepEqual(r2.ids(), ['a', 'b']);
    assert.equal(r2.restore({ version: 2 }), 0);
    assert.equal(r2.restore('garbage'), 0);
  });
});
