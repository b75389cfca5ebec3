/**
 * The README's quick start, run as a new user runs it, against a real Node-RED:
 *   1. `npm pack` in this repository (prepack builds dist/), the tarball to a temp folder;
 *   2. a fresh Node-RED user dir: Node-RED starts once on it (creating its package.json, as a
 *      first start does), stops;
 *   3. `npm install <tarball>` in that user dir: the README's command as written, install
 *      scripts on. @tensorflow/tfjs-node is an optional dependency whose install script
 *      downloads libtensorflow from outside the package registries: where that is blocked the
 *      script fails and npm leaves the package out (npm 11 may also hold the script until it is
 *      approved); the install must succeed either way, and inference then runs on wasm;
 *   4. Node-RED starts again (the "restart"), on 127.0.0.1, with that user dir. Through the admin
 *      API: every node type of the package registers with no error; the emotion-from-file
 *      example, fetched as the editor's Import > Examples fetches it, is deployed as shipped
 *      (its inject sends the sample portrait embedded in it); its inject is pressed; the emotion
 *      arrives at its debug node over the editor's comms websocket.
 * The Node-RED is the one mocha resolves (`node-red`): Node-RED 4 under Node 20, Node-RED 5
 * under Node 22 (scripts/mocha-node22.sh), run by the Node running the tests; npm runs on
 * that Node too. Timings go to the log.
 */
"use strict";
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const net = require("node:net");
const { spawn, spawnSync } = require("node:child_process");

const { LABELS } = require("../dist/model/labels");

const ROOT = path.resolve(__dirname, "..");
const PKG = require("../package.json");
const TARBALL = `${PKG.name}-${PKG.version}.tgz`;
const RED_DIR = path.dirname(require.resolve("node-red/package.json"));
const WebSocket = require(require.resolve("ws", { paths: [RED_DIR] }));
// npm and everything it starts run on the Node running the tests.
const ENV = { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}` };

/** A free TCP port on 127.0.0.1. */
function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer().once("error", reject).listen(0, "127.0.0.1", () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

/** Runs a command to the end; fails with its output when it does not exit 0. */
function run(cmd, args, cwd, timeoutMs) {
    const t0 = Date.now();
    const r = spawnSync(cmd, args, { cwd, env: ENV, encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 << 20 });
    const out = `${r.stdout || ""}${r.stderr || ""}`;
    assert.equal(r.status, 0, `${cmd} ${args.join(" ")} (in ${cwd}) exited ${r.status}${r.error ? ` (${r.error.message})` : ""}:\n${out.slice(-4000)}`);
    return { out, seconds: (Date.now() - t0) / 1000 };
}

/** Node-RED's red.js on userDir, listening on 127.0.0.1:port only; resolves once the admin API answers. */
async function startNodeRed(userDir, port) {
    const settings = path.join(path.dirname(userDir), "settings.js");
    fs.writeFileSync(settings, `module.exports = ${JSON.stringify({
        uiHost: "127.0.0.1", uiPort: port, flowFile: "flows.json", credentialSecret: "quickstart-test",
        debugMaxLength: 100000, logging: { console: { level: "info" } },
    })};\n`);
    const proc = spawn(process.execPath, [path.join(RED_DIR, "red.js"), "--userDir", userDir, "--settings", settings], { env: ENV });
    let log = "";
    proc.stdout.on("data", (d) => { log += d; });
    proc.stderr.on("data", (d) => { log += d; });
    const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
    const red = { proc, port, exited, log: () => log, base: `http://127.0.0.1:${port}` };
    const t0 = Date.now();
    for (;;) {
        const gone = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), 250))]);
        if (gone) { throw new Error(`Node-RED exited (${JSON.stringify(gone)}) before it answered:\n${log.slice(-4000)}`); }
        try {
            const res = await fetch(`${red.base}/settings`, { headers: { Accept: "application/json" } });
            if (res.ok && /Server now running/.test(log)) { break; }
        } catch { /* not listening yet */ }
        if (Date.now() - t0 > 60000) { await stopNodeRed(red); throw new Error(`Node-RED did not answer within 60 s:\n${log.slice(-4000)}`); }
    }
    red.startSeconds = (Date.now() - t0) / 1000;
    return red;
}

async function stopNodeRed(red) {
    if (!red || red.proc.exitCode !== null || red.proc.signalCode !== null) { return; }
    red.proc.kill("SIGINT");
    const timer = setTimeout(() => red.proc.kill("SIGKILL"), 15000);
    await red.exited;
    clearTimeout(timer);
}

async function getJson(red, url) {
    const res = await fetch(red.base + url, { headers: { Accept: "application/json" } });
    if (res.status !== 200) { assert.fail(`GET ${url}: ${res.status} ${await res.text()}`); }
    return res.json();
}

describe("quick start: the packed tarball in a fresh Node-RED user dir, on a real Node-RED", function () {
    this.timeout(120000);
    let tmp, userDir, red;
    const times = {};

    before(async function () {
        this.timeout(600000);
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tinyfer-quickstart-"));
        userDir = path.join(tmp, "node-red");
        fs.mkdirSync(userDir);

        times.pack = run("npm", ["pack", "--pack-destination", tmp], ROOT, 300000).seconds;
        assert.ok(fs.existsSync(path.join(tmp, TARBALL)), `npm pack wrote no ${TARBALL}`);

        const port = await freePort();
        red = await startNodeRed(userDir, port); // first start: Node-RED creates the user dir's package.json
        await stopNodeRed(red);
        assert.ok(fs.existsSync(path.join(userDir, "package.json")), "Node-RED's first start writes package.json");

        times.install = run("npm", ["install", path.join(tmp, TARBALL)], userDir, 600000).seconds;
        red = await startNodeRed(userDir, port);
        times.start = red.startSeconds;
        console.log(`      [quickstart] Node ${process.version}, Node-RED ${require("node-red/package.json").version}: ` +
            `npm pack ${times.pack.toFixed(1)} s, npm install ${times.install.toFixed(1)} s, Node-RED start ${times.start.toFixed(1)} s`);
    });

    after(async function () {
        await stopNodeRed(red);
        if (tmp) { fs.rmSync(tmp, { recursive: true, force: true }); }
    });

    it("the README gives these commands, with this tarball's name", function () {
        const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
        for (const cmd of ["npm ci --ignore-scripts", "npm pack", "cd ~/.node-red", `npm install /path/to/this/repo/${TARBALL}`]) {
            assert.ok(readme.includes(cmd), `README.md does not say: ${cmd}`);
        }
    });

    it("this Node and this Node-RED are a pair package.json declares (engines, node-red.version)", function () {
        const semver = require(require.resolve("semver", { paths: [RED_DIR] }));
        const redVersion = require("node-red/package.json").version;
        assert.ok(semver.satisfies(process.version, PKG.engines.node), `Node ${process.version} vs engines.node ${PKG.engines.node}`);
        assert.ok(semver.satisfies(redVersion, PKG["node-red"].version), `Node-RED ${redVersion} vs node-red.version ${PKG["node-red"].version}`);
        assert.equal(PKG.peerDependencies["node-red"], PKG["node-red"].version);
    });

    it("the package is installed as a copy of the tarball (not a link to a checkout), built", function () {
        const dir = path.join(userDir, "node_modules", PKG.name);
        assert.equal(fs.lstatSync(dir).isSymbolicLink(), false);
        const installed = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
        assert.equal(installed.version, PKG.version);
        for (const file of Object.values(installed["node-red"].nodes)) {
            assert.ok(fs.existsSync(path.join(dir, file)), file);
        }
        assert.ok(fs.existsSync(path.join(dir, "dist", "engine", "tinyfer_core.wasm")), "dist/ is in the tarball");
        const userPkg = JSON.parse(fs.readFileSync(path.join(userDir, "package.json"), "utf8"));
        assert.match(userPkg.dependencies[PKG.name], /\.tgz$/);
    });

    it("every node type of the package registers with no error", async function () {
        const sets = (await getJson(red, "/nodes")).filter((s) => s.module === PKG.name);
        const expected = Object.keys(PKG["node-red"].nodes).sort();
        assert.deepEqual(sets.map((s) => s.name).sort(), expected, red.log().slice(-4000));
        for (const s of sets) {
            assert.equal(s.err, undefined, `${s.name}: ${s.err}`);
            assert.equal(s.enabled, true, s.name);
            assert.equal(s.version, PKG.version, s.name);
        }
        assert.deepEqual(sets.flatMap((s) => s.types).sort(), expected);
        assert.doesNotMatch(red.log(), /MODULE_NOT_FOUND|\[error\]/);
    });

    it("the emotion-from-file example, imported and deployed, classifies a real face", async function () {
        this.timeout(180000);
        // as Import > Examples > node-red-contrib-tinyfer fetches it
        const flow = await getJson(red, `/library/examples/flows/${PKG.name}/emotion-from-file`);
        const frame = flow.find((n) => n.type === "tinyfer-frame");
        const emotion = flow.find((n) => n.type === "tinyfer-emotion");
        const inject = flow.find((n) => n.type === "inject" && n.wires.flat().includes(frame.id));
        const shown = flow.find((n) => n.type === "debug" && flow.some((m) => m.id === emotion.id && m.wires.flat().includes(n.id)));
        const catcher = flow.find((n) => n.type === "catch");
        const errors = flow.find((n) => n.type === "debug" && catcher.wires.flat().includes(n.id));
        assert.ok(frame && emotion && inject && shown && errors, "the example's nodes");
        assert.match(String(inject.payload), /^data:image\/jpeg;base64,/, "the example ships its sample photo");

        const ws = new WebSocket(`ws://127.0.0.1:${red.port}/comms`);
        const debug = [];
        const waiters = [];
        ws.on("message", (data) => {
            for (const m of [].concat(JSON.parse(String(data)))) {
                if (m.topic === "debug") { debug.push(m.data); waiters.splice(0).forEach((w) => w()); }
            }
        });
        await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
        ws.send(JSON.stringify({ subscribe: "debug" }));
        try {
            let res = await fetch(`${red.base}/flows`, {
                method: "POST", body: JSON.stringify(flow),
                headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": "full" },
            });
            assert.equal(res.status, 204, `deploy: ${res.status} ${await res.text()}`);
            // the deploy answers before the new flows have started: the inject is not found (404) until then
            const t0 = Date.now();
            while ((res = await fetch(`${red.base}/inject/${inject.id}`, { method: "POST" })).status === 404 && Date.now() - t0 < 30000) {
                await new Promise((r) => setTimeout(r, 200));
            }
            assert.equal(res.status, 200, `inject: ${res.status} ${await res.text()}\n${red.log().slice(-4000)}`);
            console.log(`      [quickstart] deploy -> inject accepted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
            const t1 = Date.now();
            const deadline = t1 + 120000;
            while (!debug.some((d) => d.id === shown.id || d.id === errors.id)) {
                const left = deadline - Date.now();
                assert.ok(left > 0, `no debug message within 120 s:\n${red.log().slice(-4000)}`);
                await new Promise((r) => { waiters.push(r); setTimeout(r, Math.min(left, 1000)); });
            }
            const err = debug.find((d) => d.id === errors.id);
            assert.equal(err, undefined, `the example's catch node reported: ${err && err.msg}`);
            const d = debug.find((m) => m.id === shown.id);
            console.log(`      [quickstart] inject -> emotion at the debug node in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
            assert.equal(d.format, "Object");
            const p = JSON.parse(d.msg);
            assert.ok(LABELS.includes(p.emotion), `emotion ${p.emotion}`);
            assert.deepEqual(Object.keys(p.scores).sort(), [...LABELS].sort());
            const sum = Object.values(p.scores).reduce((a, b) => a + b, 0);
            assert.ok(Math.abs(sum - 1) < 1e-3, `scores sum to ${sum}`);
            const best = Object.entries(p.scores).sort((a, b) => b[1] - a[1])[0];
            assert.equal(p.emotion, best[0]);
            assert.ok(Math.abs(p.confidence - best[1]) < 1e-3, `confidence ${p.confidence}, top score ${best[1]}`);
            assert.equal(p.faces.length, 1);
            const { x, y, w, h } = p.faces[0].box; // the sample is a 240x240 portrait, face in the middle
            const cx = x + w / 2, cy = y + h / 2;
            assert.ok(cx > 60 && cx < 180 && cy > 40 && cy < 180 && w > 40, `the face box ${JSON.stringify(p.faces[0].box)} is on the portrait's face`);
            assert.equal(p.emotion, "happy", "the sample portrait smiles");
            assert.equal(p.backend, "binary");
            assert.equal(typeof p.runtime, "string");
            assert.ok(p.inferenceMs >= 0);
            console.log(`      [quickstart] ${p.emotion} ${p.confidence} (backend ${p.backend}, runtime ${p.runtime})`);
        } finally {
            ws.close();
        }
    });
});
