'use strict';
/**
 * Home Assistant, as its MQTT integration expects it, against a real Mosquitto 2: a client that
 * does what Home Assistant does (subscribes to the discovery prefix, publishes its birth on
 * `<discovery prefix>/status`, reads availability, image and update topics, publishes
 * payload_install) and virtual devices (src/fleet/simulator.ts) that install what they are sent.
 *
 * The schema each discovery config is checked against is taken from the Home Assistant MQTT docs:
 *   https://www.home-assistant.io/integrations/mqtt/        (discovery, origin, availability, birth)
 *   https://www.home-assistant.io/integrations/sensor.mqtt/ (sensor)
 *   https://www.home-assistant.io/integrations/image.mqtt/  (image)
 *   https://www.home-assistant.io/integrations/update.mqtt/ (update, and its JSON state payload)
 * (their `{% configuration %}` blocks: key, required, type). Full key names only: the configs use
 * no abbreviations. `platform` is left out: the docs allow it only in device-based discovery.
 */
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const mqtt = require('mqtt');
const { startMosquitto } = require('./helpers/mosquitto');
const { waitFor, faces: loadFaces, requireMosquitto } = require('./helpers/fleet');
const { FleetManager, VirtualDevice, homeAssistantTopics, bundledModelRelease, isJpeg, HA_PAYLOAD_INSTALL } = require('../dist/fleet');
const { LABELS } = require('../dist/model/labels');

// ---- The docs' types ------------------------------------------------------------------------
const T = {
  string: (v) => typeof v === 'string',
  template: (v) => typeof v === 'string' && /\{\{.*\}\}/s.test(v),
  boolean: (v) => typeof v === 'boolean',
  integer: (v) => Number.isInteger(v),
  icon: (v) => typeof v === 'string' && /^mdi:[a-z0-9-]+$/.test(v),
  list: (v) => Array.isArray(v),
  stringOrList: (v) => typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string')),
  deviceClassOrNull: (v) => v === null || typeof v === 'string',
  stringOrNull: (v) => v === null || typeof v === 'string',
  /** A topic HA subscribes to / publishes on: no wildcards, not empty. */
  topic: (v) => typeof v === 'string' && v.length > 0 && !/[#+]/.test(v),
};
const map = (keys) => ({ map: keys });
const listOf = (keys) => ({ listOf: keys });

const DEVICE = map({
  configuration_url: T.string, connections: T.list, hw_version: T.string, identifiers: T.stringOrList, manufacturer: T.string,
  model: T.string, model_id: T.string, name: T.string, serial_number: T.string, suggested_area: T.string, sw_version: T.string, via_device: T.string,
});
const AVAILABILITY = listOf({ topic: { type: T.topic, required: true }, payload_available: T.string, payload_not_available: T.string, value_template: T.template });
/** The keys every one of the three pages lists (availability, device, entity basics), and `origin` from the discovery page. */
const COMMON = {
  availability: AVAILABILITY,
  availability_mode: (v) => ['all', 'any', 'latest'].includes(v),
  availability_template: T.template,
  availability_topic: T.topic,
  device: DEVICE,
  enabled_by_default: T.boolean,
  encoding: T.string,
  entity_category: T.string,
  icon: T.icon,
  json_attributes_template: T.template,
  json_attributes_topic: T.topic,
  name: T.stringOrNull,
  object_id: T.string,
  unique_id: T.string,
  origin: map({ name: { type: T.string, required: true }, sw_version: T.string, support_url: T.string }),
};
const SCHEMAS = {
  sensor: {
    ...COMMON,
    device_class: T.deviceClassOrNull, entity_picture: T.string, expire_after: T.integer, force_update: T.boolean, last_reset_value_template: T.template,
    options: (v) => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string'),
    payload_available: T.string, payload_not_available: T.string, suggested_display_precision: T.integer, qos: (v) => [0, 1, 2].includes(v),
    state_class: T.string, state_topic: { type: T.topic, required: true }, unit_of_measurement: T.stringOrNull, value_template: T.template,
  },
  image: {
    ...COMMON,
    content_type: T.string, image_encoding: (v) => v === 'b64', image_topic: T.topic, url_template: T.template, url_topic: T.topic,
  },
  update: {
    ...COMMON,
    command_topic: T.topic, device_class: (v) => v === null || v === 'firmware', display_precision: T.integer, entity_picture: T.string,
    latest_version_template: T.template, latest_version_topic: T.topic, payload_install: T.string, qos: (v) => [0, 1, 2].includes(v),
    release_summary: (v) => typeof v === 'string' && v.length <= 255, release_url: T.string, retain: T.boolean, state_topic: T.topic,
    title: T.string, value_template: T.template,
  },
};
/** The update entity's JSON state (update.mqtt: "The values in the JSON are optional but must be valid within the following schema"). */
const UPDATE_STATE = {
  installed_version: T.string, latest_version: T.string, title: T.string, release_summary: T.string, release_url: T.string, entity_picture: T.string,
  in_progress: T.boolean, update_percentage: (v) => v === null || typeof v === 'number',
};

/** Every problem of `obj` against `schema` (unknown key, missing required key, wrong type), as strings. */
function problems(obj, schema, where = '') {
  const out = [];
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return [`${where || 'config'}: not a JSON object`];
  for (const [k, spec] of Object.entries(schema)) {
    if (spec && spec.required && !(k in obj)) out.push(`${where}${k}: required`);
  }
  for (const [k, v] of Object.entries(obj)) {
    const spec = schema[k];
    if (spec === undefined) { out.push(`${where}${k}: not a key the docs define`); continue; }
    if (spec.map) out.push(...problems(v, spec.map, `${where}${k}.`));
    else if (spec.listOf) {
      if (!Array.isArray(v) || v.length === 0) out.push(`${where}${k}: must be a non-empty list`);
      else v.forEach((x, i) => out.push(...problems(x, spec.listOf, `${where}${k}[${i}].`)));
    } else if (!(spec.type || spec)(v)) out.push(`${where}${k}: wrong type (${JSON.stringify(v)})`);
  }
  return out;
}

/** The rules the docs state in prose, per entity type. */
function ruleProblems(component, c) {
  const out = [];
  if (c.availability && c.availability_topic) out.push('availability and availability_topic must not be used together');
  if (c.device && !(c.device.identifiers || c.device.connections)) out.push('device: at least one of identifiers or connections');
  if (c.device && !c.unique_id) out.push('device only works when unique_id is set');
  if (component === 'sensor') {
    if (c.entity_category !== undefined && c.entity_category !== 'diagnostic') out.push('sensor entity_category must be diagnostic');
    if (c.options && c.device_class !== 'enum') out.push('options need device_class enum');
    if (c.options && (c.state_class || c.unit_of_measurement)) out.push('options cannot be used with state_class or unit_of_measurement');
  }
  if (component === 'image') {
    if (!!c.image_topic === !!c.url_topic) out.push('exactly one of image_topic and url_topic');
    if (c.content_type && c.url_topic) out.push('content_type cannot be used with url_topic');
  }
  if (component === 'update' && c.payload_install !== undefined && !c.command_topic) out.push('payload_install without command_topic');
  return out;
}

describe('Home Assistant over a real Mosquitto broker', function () {
  this.timeout(60000);
  let broker;
  let faces;
  let prefix;
  let dp;
  let n = 0;
  const open = [];
  const keys = crypto.generateKeyPairSync('ed25519');
  const release = bundledModelRelease();

  before(async function () {
    requireMosquitto();
    faces = loadFaces(2);
    broker = await startMosquitto();
  });
  beforeEach(function () {
    prefix = `ha${++n}`;
    dp = `hadisc${n}`;
  });
  afterEach(async function () {
    for (const x of open.splice(0).reverse()) {
      if (x instanceof VirtualDevice) { if (x.connected) await x.stop(); else x.crash(); } else await x.close().catch(() => undefined);
    }
  });
  after(async function () {
    if (broker) await broker.close();
  });

  function manager(opts = {}) {
    const m = new FleetManager({ url: broker.url, prefix, reconnectPeriodMs: 200, commandTimeoutMs: 5000, homeAssistant: true, discoveryPrefix: dp, ...opts });
    m.errors = [];
    m.on('error', (e) => m.errors.push(e.message));
    m.on('warning', (e) => m.errors.push(e.message));
    open.push(m);
    return m;
  }
  function device(id, opts = {}) {
    const d = new VirtualDevice({ url: broker.url, prefix, deviceId: id, faces, config: { capture_interval_ms: 150 }, telemetryIntervalMs: 200, modelKey: keys.publicKey, ...opts });
    open.push(d);
    return d;
  }

  /** A client doing what Home Assistant's MQTT integration does; `retained` keeps only messages the broker had retained. */
  async function homeAssistant() {
    const c = mqtt.connect(broker.url, { clientId: `ha-${crypto.randomBytes(4).toString('hex')}`, reconnectPeriod: 200 });
    open.push({ close: () => new Promise((r) => c.end(true, {}, r)) });
    const ha = { c, msgs: [], configs: new Map() };
    c.on('message', (topic, payload, packet) => {
      ha.msgs.push({ topic, payload, retain: packet.retain });
      const m = new RegExp(`^${dp}/(sensor|image|update)/([^/]+)/config$`).exec(topic);
      if (m) ha.configs.set(`${m[1]}/${m[2]}`, payload.length ? JSON.parse(payload) : null);
    });
    await new Promise((r) => c.once('connect', r));
    await new Promise((r, j) => c.subscribe([`${dp}/#`, `${prefix}/_ha/#`, `${prefix}/+/status`, `${prefix}/+/emotion`, `${prefix}/+/telemetry`], { qos: 1 }, (e) => (e ? j(e) : r())));
    ha.birth = (p = 'online') => new Promise((r) => c.publish(`${dp}/status`, p, { qos: 1 }, r));
    ha.first = (topic) => ha.msgs.find((x) => x.topic === topic);
    ha.last = (topic) => { for (let i = ha.msgs.length - 1; i >= 0; i--) if (ha.msgs[i].topic === topic) return ha.msgs[i]; return undefined; };
    return ha;
  }

  const online = (m, id) => waitFor(() => m.registry.get(id)?.state === 'online', 5000, `${id} online`);

  it('publishes every config as the Home Assistant MQTT docs define it, availability retained right after, images only for devices with frames on', async function () {
    const m = manager({ modelKey: keys.privateKey, haImageInterval: 1 });
    await waitFor(() => m.conn.connected, 5000, 'manager connected');
    const cam = device('cam-1', { config: { capture_interval_ms: 150, frames_enabled: false } });
    const dark = device('cam-2');
    await Promise.all([cam.start(), dark.start()]);
    await Promise.all([online(m, 'cam-1'), online(m, 'cam-2')]);
    // Frames on for cam-1 the way a user does it (set_config: the manager keeps it as the retained desired config).
    await m.commands.request('cam-1', 'set_config', { frames_enabled: true });
    const ha = await homeAssistant();
    await ha.birth();
    await waitFor(() => ha.configs.get('image/cam-1_frame'), 5000, 'the image entity of cam-1');
    await waitFor(() => ha.configs.size === 12, 5000, 'six configs per device');

    // Every config against the docs' schema for its entity type.
    for (const [key, c] of ha.configs) {
      const component = key.split('/')[0];
      if (key === 'image/cam-2_frame') { assert.equal(c, null, 'frames off: the image entity is removed (empty retained config)'); continue; }
      assert.deepEqual([...problems(c, SCHEMAS[component]), ...ruleProblems(component, c)], [], `${key}: ${JSON.stringify(c)}`);
    }
    const e = ha.configs.get('sensor/cam-1_emotion');
    assert.equal(e.state_topic, `${prefix}/cam-1/emotion`);
    assert.deepEqual(e.options, [...LABELS]);
    assert.match(e.json_attributes_template, /confidence/);
    const img = ha.configs.get('image/cam-1_frame');
    const t = homeAssistantTopics(prefix, 'cam-1');
    assert.equal(img.image_topic, t.image);
    assert.equal(img.content_type, 'image/jpeg');
    assert.equal(img.state_topic, undefined);
    const up = ha.configs.get('update/cam-1_model');
    assert.equal(up.command_topic, t.modelInstall);
    assert.equal(up.payload_install, HA_PAYLOAD_INSTALL);
    assert.equal(new Set([...ha.configs.values()].filter(Boolean).map((c) => c.unique_id)).size, 11);

    // Availability: retained `online` on the manager's topic; the device's status is the second source.
    const fresh = await homeAssistant();
    await waitFor(() => fresh.last(t.availability) && fresh.last(homeAssistantTopics(prefix, 'cam-2').availability), 5000, 'retained availability');
    assert.equal(fresh.last(t.availability).payload.toString(), 'online');
    assert.equal(fresh.last(t.availability).retain, true);
    await waitFor(() => e.availability.every((a) => fresh.first(a.topic)), 5000, 'every availability topic');
    for (const a of e.availability) {
      const got = fresh.first(a.topic);
      assert.ok(got && got.retain, `${a.topic} retained`);
      const value = a.value_template ? JSON.parse(got.payload).state : got.payload.toString(); // value_template {{ value_json.state }}
      assert.equal(value, a.payload_available);
    }
    assert.equal(e.availability_mode, 'all');

    // The update entity's state, against the docs' JSON state schema.
    const st = JSON.parse(fresh.last(t.model).payload);
    assert.deepEqual(problems(st, UPDATE_STATE), []);
    assert.equal(st.installed_version, 'tinyfer-sim');
    assert.equal(st.latest_version, release.version);

    // Images: raw JPEG bytes on image_topic, not retained, at most one a second per device; none for cam-2.
    const t0 = Date.now();
    const before = m.homeAssistant.counts.images;
    await waitFor(() => ha.msgs.filter((x) => x.topic === t.image).length >= 2, 10000, 'two images of cam-1');
    const images = ha.msgs.filter((x) => x.topic === t.image);
    for (const x of images) { assert.ok(isJpeg(x.payload)); assert.equal(x.retain, false); }
    assert.equal(ha.msgs.filter((x) => x.topic === homeAssistantTopics(prefix, 'cam-2').image).length, 0);
    assert.equal(fresh.msgs.filter((x) => x.topic === t.image && x.retain).length, 0, 'no image is retained');
    // The throttle, on measured quantities: published images fit the elapsed time, the rest were skipped.
    const elapsedS = (Date.now() - t0) / 1000;
    assert.ok(m.homeAssistant.counts.images - before <= Math.ceil(elapsedS / 1) + 1, `${m.homeAssistant.counts.images - before} images in ${elapsedS} s`);
    assert.ok(m.homeAssistant.counts.imagesSkipped > 0, 'frames beyond the interval were skipped');

    // Frames off again: the image entity goes (empty retained config), and no more images.
    assert.equal(m.streamUsers.frame, 1, 'frames subscribed while a device has frames on');
    await m.commands.request('cam-1', 'set_config', { frames_enabled: false });
    await waitFor(() => ha.configs.get('image/cam-1_frame') === null, 5000, 'image entity removed');
    await waitFor(() => m.streamUsers.frame === 0, 5000, 'the frame subscription released once no device has frames on');
  });

  it("announces everything again when Home Assistant publishes its birth (not on its last will), and after the broker lost it all", async function () {
    const m = manager({ modelKey: keys.privateKey, haImageInterval: 0 });
    await waitFor(() => m.conn.connected, 5000, 'manager connected');
    const d = device('cam-b');
    await d.start();
    await online(m, 'cam-b');
    const ha = await homeAssistant();
    const av = homeAssistantTopics(prefix, 'cam-b').availability;
    await waitFor(() => ha.configs.size === 5 && ha.last(av), 5000, 'retained configs and availability');
    assert.equal(ha.configs.has('image/cam-b_frame'), false, 'images off: no image entity');
    const count = () => ha.msgs.filter((x) => x.topic.startsWith(`${dp}/`) && x.topic.endsWith('/config')).length;
    const c0 = count();
    const i0 = ha.msgs.length;
    await ha.birth('offline');
    await ha.birth('online');
    await waitFor(() => count() >= c0 + 6 && m.homeAssistant.counts.births === 1, 5000, 'six configs again after the birth');
    await waitFor(() => ha.msgs.slice(i0).some((x) => x.topic === av), 5000, 'availability again');
    assert.equal(m.homeAssistant.counts.births, 1, 'the last will announced nothing');
    // Availability follows the six configs, as it did the first time.
    const tail = ha.msgs.slice(i0);
    const iAv = tail.findIndex((x) => x.topic === av);
    assert.equal(tail.slice(0, iAv).filter((x) => x.topic.endsWith('/config')).length, 6, 'availability right after the configs');
    assert.equal(tail[iAv].payload.toString(), 'online');

    // A broker restart without persistence loses every retained message: after reconnecting, the
    // manager publishes configs and availability again, so a Home Assistant that (re)subscribes finds them.
    await broker.restart();
    await waitFor(() => m.conn.connected && m.registry.get('cam-b')?.state === 'online', 15000, 'manager and device back');
    const fresh = await homeAssistant();
    await waitFor(() => fresh.configs.size >= 5 && fresh.last(av), 10000, 'retained configs and availability after the restart');
    assert.equal(fresh.last(av).payload.toString(), 'online');
    assert.equal(fresh.last(av).retain, true);

    // The device goes away: availability `offline`, retained.
    d.crash();
    await waitFor(() => fresh.last(av)?.payload.toString() === 'offline', 10000, 'availability offline');
  });

  it('installs the newest bundled model when Home Assistant presses install: signed model_update, then installed == latest', async function () {
    const m = manager({ modelKey: keys.privateKey, haImageInterval: 0 });
    await waitFor(() => m.conn.connected, 5000, 'manager connected');
    const d = device('cam-u');
    await d.start();
    await online(m, 'cam-u');
    const ha = await homeAssistant();
    const t = homeAssistantTopics(prefix, 'cam-u');
    await waitFor(() => ha.configs.get('update/cam-u_model') && ha.last(t.model), 5000, 'update entity and state');
    const cfg = ha.configs.get('update/cam-u_model');
    const state = () => JSON.parse(ha.last(t.model).payload);
    assert.notEqual(state().installed_version, state().latest_version);
    // What Home Assistant publishes when install is pressed: payload_install on command_topic, with the config's qos.
    await new Promise((r) => ha.c.publish(cfg.command_topic, cfg.payload_install, { qos: cfg.qos ?? 0, retain: false }, r));
    await waitFor(() => state().installed_version === state().latest_version && state().in_progress === false, 20000, 'installed == latest');
    assert.equal(d.model, release.version);
    assert.ok(d.commands.includes('model_update'));
    const states = ha.msgs.filter((x) => x.topic === t.model).map((x) => JSON.parse(x.payload));
    assert.ok(states.some((s) => s.in_progress === true), 'in_progress while installing');
    for (const s of states) assert.deepEqual(problems(s, UPDATE_STATE), []);
    assert.equal(m.homeAssistant.counts.installs, 1);
    assert.deepEqual(m.errors, []);
    // A payload that is not payload_install does nothing.
    await new Promise((r) => ha.c.publish(cfg.command_topic, 'INSTALL-NOW', { qos: 1 }, r));
    await waitFor(() => m.homeAssistant.counts.ignoredCommands === 1, 5000, 'ignored');
  });

  it('an install the device refuses (wrong key) leaves installed != latest and shows the failure on the update entity', async function () {
    const m = manager({ modelKey: keys.privateKey, haImageInterval: 0 });
    await waitFor(() => m.conn.connected, 5000, 'manager connected');
    const other = crypto.generateKeyPairSync('ed25519');
    const d = device('cam-w', { modelKey: other.publicKey });
    await d.start();
    await online(m, 'cam-w');
    const ha = await homeAssistant();
    const t = homeAssistantTopics(prefix, 'cam-w');
    await waitFor(() => ha.configs.get('update/cam-w_model') && ha.last(t.model), 5000, 'update entity and state');
    const cfg = ha.configs.get('update/cam-w_model');
    await new Promise((r) => ha.c.publish(cfg.command_topic, cfg.payload_install, { qos: 1 }, r));
    await waitFor(() => /last install failed/.test(JSON.parse(ha.last(t.model).payload).release_summary || ''), 10000, 'the failure in the state');
    const st = JSON.parse(ha.last(t.model).payload);
    assert.deepEqual(problems(st, UPDATE_STATE), []);
    assert.match(st.release_summary, /verify_failed/);
    assert.equal(st.in_progress, false);
    assert.notEqual(st.installed_version, st.latest_version);
    assert.equal(d.model, 'tinyfer-sim');
    assert.ok(m.errors.some((e) => /cam-w: .*verify_failed/.test(e)), m.errors.join('\n'));
    assert.equal(m.homeAssistant.counts.installsFailed, 1);
  });

  it('without a signing key the update entity offers no install and says why; an install request anyway changes nothing and is reported', async function () {
    const m = manager({ haImageInterval: 0 });
    await waitFor(() => m.conn.connected, 5000, 'manager connected');
    const d = device('cam-k');
    await d.start();
    await online(m, 'cam-k');
    const ha = await homeAssistant();
    await waitFor(() => ha.configs.get('update/cam-k_model'), 5000, 'update entity');
    const cfg = ha.configs.get('update/cam-k_model');
    assert.deepEqual([...problems(cfg, SCHEMAS.update), ...ruleProblems('update', cfg)], []);
    assert.equal(cfg.command_topic, undefined, 'no command_topic: Home Assistant offers no install');
    assert.equal(cfg.payload_install, undefined);
    assert.match(cfg.release_summary, /no model signing key/);
    await new Promise((r) => ha.c.publish(homeAssistantTopics(prefix, 'cam-k').modelInstall, HA_PAYLOAD_INSTALL, { qos: 1 }, r));
    await waitFor(() => m.errors.some((e) => /cam-k: install is off: no model signing key/.test(e)), 5000, 'the refusal reported');
    assert.equal(d.model, 'tinyfer-sim');
    assert.ok(!d.commands.includes('model_update'));
  });

  it('refuses bad Home Assistant settings with clear errors', function () {
    assert.throws(() => new FleetManager({ url: broker.url, prefix: 'x', homeAssistant: true, haImageInterval: 0.5 }), /haImageInterval must be 0 or in 1\.\.86400, got 0\.5/);
    assert.throws(() => new FleetManager({ url: broker.url, prefix: 'x', homeAssistant: true, discoveryPrefix: 'home/#' }), /invalid discovery prefix/);
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    assert.throws(() => new FleetManager({ url: broker.url, prefix: 'x', homeAssistant: true, modelKey: rsa }), /Ed25519 private key/);
  });
});
