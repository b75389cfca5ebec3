/**
 * The TinyFER fleet demo: an embedded MQTT broker (aedes), a handful of virtual ESP32-S3 cameras
 * sending real FER2013 faces, and Node-RED (embedded, userDir inside the project) running
 * examples/fleet-demo.json with this package's nodes and, when FlowFuse Dashboard 2.0
 * (@flowfuse/node-red-dashboard) is installed, the fleet dashboard of examples/fleet-dashboard.json
 * next to it. It prints the editor and dashboard URLs and the emotions as they pass through the
 * deployed flow. `stop()` (Ctrl-C in scripts/demo.js) ends it all.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { Simulator, loadFaces, type SentEmotion, type SentFrame } from '../fleet/simulator';
import type { FaceClassifier } from '../engine/types';
import type { DeviceConfig } from '../fleet/protocol';
import { getClassifier } from '../runtime/models';

const REPO = path.resolve(__dirname, '..', '..');

export interface DemoOptions {
  /** Node-RED editor port (default 1880; 0 = any free port). */
  httpPort?: number;
  /** MQTT broker port (default 1883; 0 = any free port). A busy default port falls back to a free one. */
  mqttPort?: number;
  /** Virtual devices (default 4). */
  devices?: number;
  /** Capture interval of each device, ms (default 1000). */
  intervalMs?: number;
  /** Node-RED user directory (default <repo>/.tinyfer/demo-userdir). */
  userDir?: string;
  /** The flow deployed (default examples/fleet-demo.json). */
  flowFile?: string;
  /** Faces folder (default <data>/fer2013/PublicTest). */
  facesDir?: string;
  /** Model blob (.tfer) for the virtual cameras and the flow's tinyfer-emotion node (default: the bundled one). */
  model?: string;
  /** Where lines go (default console.log). */
  print?: (line: string) => void;
  /**
   * Deploy the fleet dashboard (examples/fleet-dashboard.json) next to the flow (default: true
   * when @flowfuse/node-red-dashboard is installed; true without it is an error).
   */
  dashboard?: boolean;
  /**
   * The virtual cameras' initial config over the defaults (capture_interval_ms: intervalMs;
   * frames_enabled false: frames are off until a set_config turns them on).
   */
  deviceConfig?: Partial<DeviceConfig>;
}

/** One emotion seen at a debug node of the deployed flow. */
export interface DemoEmotion {
  source: 'device' | 'node-red';
  deviceId: string;
  label: string | null;
  confidence: number;
  frameId?: number;
  /** The dataset label of the face the device sent, when known. */
  truth?: string;
  backend?: string;
}

export interface Demo extends EventEmitter {
  editorUrl: string;
  /** The fleet dashboard's page, when the dashboard is deployed. */
  dashboardUrl?: string;
  mqttUrl: string;
  simulator: Simulator;
  stop(): Promise<void>;
}

interface AedesLike {
  handle: (socket: net.Socket) => void;
  close: (cb?: () => void) => void;
}

function listen(server: net.Server | http.Server, port: number, fallback: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const onErr = (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' && fallback && port !== 0) {
        server.off('error', onErr);
        listen(server, 0, false).then(resolve, reject);
      } else reject(err);
    };
    server.once('error', onErr);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', onErr);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/**
 * The settings of the demo's embedded Node-RED (also the soak's, scripts/soak/nodered.js): this
 * package's nodes from the repository, editor at `/`, HTTP nodes under `/api`, on 127.0.0.1 only,
 * offline (no palette installs, no update check, no telemetry consent dialog over the flow).
 */
export function embeddedNodeRedSettings(userDir: string, credentialSecret: string) {
  return {
    userDir,
    flowFile: 'flows.json',
    credentialSecret,
    httpAdminRoot: '/',
    httpNodeRoot: '/api',
    uiHost: '127.0.0.1',
    nodesDir: [path.join(REPO, 'nodes')],
    contextStorage: { default: { module: 'localfilesystem' } },
    logging: { console: { level: 'error', metrics: false, audit: false } },
    editorTheme: { tours: false, projects: { enabled: false } },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    telemetry: { enabled: false, updateNotification: false },
  };
}

/** The demo flow with the broker URL filled in (and tinyfer-emotion dropped if that node is not in this build). */
export function demoFlow(flowFile: string, mqttUrl: string, model?: string): Array<Record<string, unknown>> {
  let flow = JSON.parse(fs.readFileSync(flowFile, 'utf8')) as Array<Record<string, unknown>>;
  if (!Array.isArray(flow)) throw new Error(`${flowFile}: not a flow (JSON array of nodes)`);
  const haveEmotion = fs.existsSync(path.join(REPO, 'nodes', 'tinyfer-emotion.js'));
  if (!haveEmotion) {
    const gone = new Set(flow.filter((n) => n.type === 'tinyfer-emotion').map((n) => n.id));
    flow = flow.filter((n) => !gone.has(n.id)).map((n) => (Array.isArray(n.wires) ? { ...n, wires: (n.wires as string[][]).map((w) => w.filter((id) => !gone.has(id))) } : n));
  }
  return flow.map((n) => (n.type === 'tinyfer-fleet' ? { ...n, url: mqttUrl } : n.type === 'tinyfer-emotion' && model ? { ...n, model } : n));
}

export const DASHBOARD_FLOW = path.join(REPO, 'examples', 'fleet-dashboard.json');

/** Is FlowFuse Dashboard 2.0 installed where this package's Node-RED finds it? */
export function dashboardInstalled(): boolean {
  try {
    require.resolve('@flowfuse/node-red-dashboard/package.json', { paths: [REPO] });
    return true;
  } catch {
    return false;
  }
}

/** The page of a deployed dashboard flow: httpNodeRoot + the ui-base path + the first ui-page path. */
export function dashboardPath(flow: Array<Record<string, unknown>>, httpNodeRoot: string): string {
  const base = flow.find((n) => n.type === 'ui-base');
  const page = flow.find((n) => n.type === 'ui-page' && n.ui === base?.id);
  if (!base || !page) throw new Error('dashboard flow: no ui-base with a ui-page');
  return `/${[httpNodeRoot, base.path, page.path].map((p) => String(p ?? '').replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/')}`;
}

export async function startDemo(opts: DemoOptions = {}): Promise<Demo> {
  const print = opts.print ?? ((l: string) => console.log(l));
  const events = new EventEmitter() as Demo;
  const cleanups: Array<() => Promise<void> | void> = [];
  const stop = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (e) {
        print(`demo: while stopping: ${(e as Error).message}`);
      }
    }
  };
  try {
    // 1. The broker (MQTT 3.1.1: aedes does not speak MQTT 5).
    const { Aedes } = require('aedes') as { Aedes: { createBroker(o?: object): Promise<AedesLike> } };
    const aedes = await Aedes.createBroker();
    const mqttServer = net.createServer(aedes.handle);
    const mqttPort = await listen(mqttServer, opts.mqttPort ?? 1883, opts.mqttPort === undefined);
    const sockets = new Set<net.Socket>();
    mqttServer.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
    cleanups.push(() => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      mqttServer.close(() => aedes.close(() => r()));
    }));
    const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
    events.mqttUrl = mqttUrl;

    // 2. Virtual cameras with real faces, running the bundled model when there is one (shared with
    //    the flow's tinyfer-emotion node: same process, same cache); otherwise they replay the labels.
    const faces = loadFaces({ dir: opts.facesDir, perLabel: 12 });
    const modelPath = opts.model ? path.resolve(opts.model) : undefined;
    const model = getClassifier({ backend: 'binary', modelPath });
    cleanups.push(() => model.release());
    let classifier: FaceClassifier | undefined;
    try {
      classifier = await model.classifier;
    } catch (e) {
      print(`virtual cameras replay the dataset labels (no on-device model: ${(e as Error).message})`);
    }
    // The demo's model signing key: the virtual cameras accept models signed with it (the
    // dashboard's "update model" button), the flow's tinyfer-command nodes sign with it.
    const keys = generateKeyPairSync('ed25519');
    const sim = new Simulator({
      url: mqttUrl, count: opts.devices ?? 4, idPrefix: 'cam-', faces, protocolVersion: 4, classifier,
      config: { capture_interval_ms: opts.intervalMs ?? 1000, ...opts.deviceConfig }, telemetryIntervalMs: 5000, chunkBytes: 1024, firmware: '0.1.0-demo',
      modelKey: keys.publicKey,
    });
    // The dataset label of every frame sent, to print next to what the flow says about it.
    const truth = new Map<string, SentFrame>();
    sim.on('frame', (s: SentFrame) => {
      truth.set(`${s.deviceId}/${s.frameId}`, s);
      if (truth.size > 5000) truth.delete(truth.keys().next().value as string);
    });
    const truthBySeq = new Map<string, SentEmotion>();
    sim.on('emotion', (s: SentEmotion) => {
      truthBySeq.set(`${s.deviceId}/${s.seq}`, s);
      if (truthBySeq.size > 5000) truthBySeq.delete(truthBySeq.keys().next().value as string);
    });
    events.simulator = sim;
    await sim.start();
    cleanups.push(() => sim.stop());

    // 3. Node-RED, embedded, with the demo flow deployed.
    const userDir = path.resolve(opts.userDir ?? path.join(REPO, '.tinyfer', 'demo-userdir'));
    fs.mkdirSync(userDir, { recursive: true });
    // The demo's cameras are new in every run: a registry kept in context by an earlier run would
    // hold them as already online, and the flow would never see the 'online' event that turns
    // their frames on.
    fs.rmSync(path.join(userDir, 'context'), { recursive: true, force: true });
    const keyFile = path.join(userDir, 'demo-model-signing-key.pem');
    fs.writeFileSync(keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const flowFile = path.resolve(opts.flowFile ?? path.join(REPO, 'examples', 'fleet-demo.json'));
    let flow = demoFlow(flowFile, mqttUrl, modelPath);
    const withDashboard = opts.dashboard ?? dashboardInstalled();
    if (withDashboard && !dashboardInstalled()) throw new Error('the fleet dashboard needs FlowFuse Dashboard 2.0: npm install @flowfuse/node-red-dashboard (bash scripts/setup.sh installs it)');
    if (withDashboard && flowFile !== DASHBOARD_FLOW) flow = flow.concat(demoFlow(DASHBOARD_FLOW, mqttUrl, modelPath));
    flow = flow.map((n) => (n.type === 'tinyfer-command' && !n.keyFile ? { ...n, keyFile } : n));
    fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flow, null, 2));
    const express = require('express') as () => http.RequestListener & { use: (p: string, h: unknown) => void };
    const RED = require('node-red');
    const app = express();
    const server = http.createServer(app);
    const settings = embeddedNodeRedSettings(userDir, 'tinyfer-demo');
    RED.init(server, settings);
    app.use(settings.httpAdminRoot, RED.httpAdmin);
    app.use(settings.httpNodeRoot, RED.httpNode);
    const httpPort = await listen(server, opts.httpPort ?? 1880, opts.httpPort === undefined);
    cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
    events.editorUrl = `http://127.0.0.1:${httpPort}/`;
    const hasDashboard = flow.some((n) => n.type === 'ui-base');
    if (hasDashboard) events.dashboardUrl = `http://127.0.0.1:${httpPort}${dashboardPath(flow, settings.httpNodeRoot)}`;

    const seenErrors = new Set<string>();
    RED.hooks.add('onReceive.tinyferDemo', (ev: { msg: Record<string, any>; destination: { id: string } }) => {
      const { msg, destination } = ev;
      if (destination.id === 'demo-device-emotions') {
        const p = msg.payload;
        const e: DemoEmotion = { source: 'device', deviceId: msg.device?.id, label: p?.label ?? null, confidence: p?.confidence ?? 0, frameId: p?.frame_id };
        const t = truthBySeq.get(`${e.deviceId}/${p?.seq}`);
        if (t) e.truth = t.truth;
        print(`${e.deviceId}  on device : ${String(e.label).padEnd(8)} ${(e.confidence * 100).toFixed(0).padStart(3)}%${e.frameId !== undefined ? `  frame ${e.frameId}` : ''}  (face labelled ${e.truth ?? '?'})`);
        events.emit('emotion', e);
      } else if (destination.id === 'demo-nodered-emotions') {
        const p = msg.payload;
        const deviceId = msg.device?.id;
        const t = truth.get(`${deviceId}/${msg.frameId}`);
        const e: DemoEmotion = { source: 'node-red', deviceId, label: p?.emotion ?? null, confidence: p?.confidence ?? 0, frameId: msg.frameId, backend: `${p?.backend}/${p?.runtime}` };
        if (t) e.truth = t.truth;
        print(`${deviceId}  in Node-RED: ${String(e.label).padEnd(8)} ${(e.confidence * 100).toFixed(0).padStart(3)}%  frame ${msg.frameId}  (${e.backend}; face labelled ${e.truth ?? '?'})`);
        events.emit('emotion', e);
      } else if (destination.id === 'demo-errors') {
        const text = String(msg.error?.message ?? 'error');
        if (!seenErrors.has(text)) {
          seenErrors.add(text);
          print(`flow error (${msg.error?.source?.type ?? 'node'}): ${text}`);
        }
        events.emit('flowError', text);
      }
    });
    cleanups.push(async () => {
      RED.hooks.remove('*.tinyferDemo');
      await RED.stop();
    });
    await RED.start();
    print(`TinyFER fleet demo: ${sim.devices.length} virtual cameras on ${mqttUrl}`);
    print(`Node-RED editor: ${events.editorUrl}   (user dir ${path.relative(process.cwd(), userDir) || userDir})`);
    if (events.dashboardUrl) print(`Fleet dashboard: ${events.dashboardUrl}`);
    else if (opts.dashboard === undefined) print('Fleet dashboard: not deployed (FlowFuse Dashboard 2.0, @flowfuse/node-red-dashboard, is not installed)');
    print('Emotions as they pass through the deployed flow (Ctrl-C stops):');
    events.stop = stop;
    return events;
  } catch (e) {
    await stop();
    throw e;
  }
}
