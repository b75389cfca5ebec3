/**
 * Every flow in examples/ (the vision ones and the fleet ones) loads into a real Node-RED
 * runtime with this package's nodes, the core nodes and FlowFuse Dashboard 2.0's (the fleet
 * dashboard's widgets): all node types are known, every wire
 * points at a node, every node starts, and no node reports an error while starting, except a
 * bundled default model that is not there yet (named by the error). The MQTT examples are
 * pointed at the demo's broker (aedes, MQTT 3.1.1, on a free loopback port): their broker
 * address is the one thing their info says to set.
 *
 * Then each example runs as shipped: emotion-from-file classifies its embedded sample photo;
 * camera-snapshot-dashboard passes only HTTP 200 images on, records an unreachable or failing
 * camera, and answers 503 with a reason until it has a frame; emotion-on-change answers a
 * POSTed JPEG; fleet-basic (MQTT 5 as shipped) falls back to 3.1.1 on the demo broker and
 * commands a virtual camera.
 */
"use strict";
const assert = require("node:assert/strict");
const fs = require("fs");
const path = require("path");
const http = require("node:http");
const net = require("node:net");
const helper = require("node-red-node-test-helper");
const request = require("supertest");

helper.init(require.resolve("node-red"));

const ROOT = path.resolve(__dirname, "..");
const EXAMPLES = path.join(ROOT, "examples");
const ROOT_DIR_SAMPLE = path.join(ROOT, "resources", "sample"); // not under examples/: Node-RED 4.1 drops a module's examples when examples/ has a folder without flows
const PKG = require("../package.json");

/** This package's nodes (package.json node-red.nodes) and every core node module. */
function allNodeModules() {
    const ours = Object.values((PKG["node-red"] || {}).nodes || {}).map((p) => require(path.join(ROOT, p)));
    const coreDir = path.join(path.dirname(require.resolve("@node-red/nodes/package.json")), "core");
    const core = [];
    for (const dir of fs.readdirSync(coreDir)) {
        const d = path.join(coreDir, dir);
        if (!fs.statSync(d).isDirectory()) { continue; }
        for (const f of fs.readdirSync(d)) {
            if (/^\d+-.*\.js$/.test(f)) { core.push(require(path.join(d, f))); }
        }
    }
    return [...ours, ...core, ...dashboardNodeModules()];
}

/** FlowFuse Dashboard 2.0's nodes (a devDependency, as users install it from the palette): examples/fleet-dashboard.json uses them. */
function dashboardNodeModules() {
    const dir = path.dirname(require.resolve("@flowfuse/node-red-dashboard/package.json"));
    const pkg = require(path.join(dir, "package.json"));
    return Object.values(pkg["node-red"].nodes).map((p) => require(path.join(dir, p)));
}

/** The demo's broker: aedes (MQTT 3.1.1 only), as scripts/demo.js starts it, on a free loopback port. */
async function startDemoBroker() {
    const { Aedes } = require("aedes");
    const aedes = await Aedes.createBroker();
    const server = net.createServer(aedes.handle);
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    const port = server.address().port;
    return {
        port,
        url: `mqtt://127.0.0.1:${port}`,
        close: () => new Promise((r) => { server.close(() => aedes.close(r)); }),
    };
}

/** A flow with its broker address set to `broker` (the one setting the MQTT examples ask for). */
function onBroker(flow, broker) {
    return flow.map((n) => {
        if (n.type === "tinyfer-fleet") { return { ...n, url: broker.url }; }
        if (n.type === "mqtt-broker") { return { ...n, broker: "127.0.0.1", port: String(broker.port) }; }
        return n;
    });
}

const readExample = (file) => JSON.parse(fs.readFileSync(path.join(EXAMPLES, file), "utf8"));

describe("examples", function () {
    this.timeout(60000);
    const files = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith(".json")).sort();
    let modules;
    let broker;

    before(async function () {
        modules = allNodeModules();
        broker = await startDemoBroker();
        await new Promise((r) => helper.startServer(r));
    });
    after(async function () {
        await new Promise((r) => helper.stopServer(r));
        if (broker) { await broker.close(); }
    });
    afterEach(async function () {
        await helper.unload();
    });

    it("there are vision examples and package.json lists the vision nodes", function () {
        assert.ok(files.filter((f) => !f.startsWith("fleet-")).length >= 3, files.join(", "));
        assert.equal(PKG["node-red"].nodes["tinyfer-frame"], "nodes/tinyfer-frame.js");
        assert.equal(PKG["node-red"].nodes["tinyfer-emotion"], "nodes/tinyfer-emotion.js");
    });

    for (const file of files) {
        it(`${file} loads and starts without errors`, async function () {
            const flow = JSON.parse(fs.readFileSync(path.join(EXAMPLES, file), "utf8"));
            assert.ok(Array.isArray(flow) && flow.length > 0);
            const ids = new Set(flow.map((n) => n.id));
            assert.equal(ids.size, flow.length, "unique ids");
            for (const n of flow) {
                for (const out of n.wires || []) {
                    for (const w of out) { assert.ok(ids.has(w), `${n.id} is wired to a missing node ${w}`); }
                }
                if (n.z) { assert.ok(ids.has(n.z), `${n.id} is on a missing tab ${n.z}`); }
                for (const s of Array.isArray(n.scope) ? n.scope : []) { assert.ok(ids.has(s), `${n.id} scopes a missing node ${s}`); }
            }
            await helper.load(modules, onBroker(flow, broker));
            const nodes = flow.filter((n) => n.type !== "tab");
            const errors = [];
            for (const n of nodes) {
                const node = helper.getNode(n.id);
                assert.ok(node, `${file}: node ${n.id} (${n.type}) did not start: unknown type?`);
                assert.equal(node.type, n.type);
            }
            // let asynchronous start-up (model loading, broker connections) report
            await new Promise((r) => setTimeout(r, 500));
            for (const n of nodes) {
                const node = helper.getNode(n.id);
                for (const c of node.error.getCalls().filter((x) => x.thisValue === node)) {
                    errors.push(`${n.id} (${n.type}): ${c.args[0] && c.args[0].message ? c.args[0].message : c.args[0]}`);
                }
            }
            const { DEFAULT_MODEL_BLOB } = require("../dist/engine/open");
            const tolerated = fs.existsSync(DEFAULT_MODEL_BLOB) ? [] : [/the bundled default model is missing/];
            const real = errors.filter((e) => !tolerated.some((re) => re.test(e)));
            assert.deepEqual(real, [], `${file}: errors while starting`);
        });
    }
});

describe("examples run as shipped", function () {
    this.timeout(60000);
    let modules;
    let broker;
    let httpNode = null;
    /** Catches RED.httpNode (where http-in nodes listen) so the test can call their endpoints. */
    function catchHttpNode(RED) { httpNode = RED.httpNode; }
    const callsOf = (node, method) => node[method].getCalls().filter((c) => c.thisValue === node);
    const { waitFor } = require("./helpers/fleet");
    const SAMPLE = fs.readFileSync(path.join(ROOT_DIR_SAMPLE, "eileen-collins.jpg"));
    const { LABELS } = require("../dist/model/labels");

    before(async function () {
        modules = [...allNodeModules(), catchHttpNode];
        broker = await startDemoBroker();
        await new Promise((r) => helper.startServer(r));
    });
    after(async function () {
        await new Promise((r) => helper.stopServer(r));
        if (broker) { await broker.close(); }
    });
    afterEach(async function () {
        await helper.unload();
    });

    it("emotion-from-file: the inject node sends the shipped sample photo (the asset's exact bytes) and its face is classified", async function () {
        const flow = readExample("emotion-from-file.json");
        const inject = flow.find((n) => n.id === "tf-file-inject");
        const m = /^data:image\/jpeg;base64,(.+)$/.exec(inject.payload);
        assert.ok(m, "the payload is a JPEG data URL");
        assert.ok(Buffer.from(m[1], "base64").equals(SAMPLE), "embedded bytes == resources/sample/eileen-collins.jpg");
        assert.match(fs.readFileSync(path.join(ROOT_DIR_SAMPLE, "README.md"), "utf8"), /eileen-collins\.jpg[\s\S]*public domain/i);
        await helper.load(modules, flow);
        const out = [];
        helper.getNode("tf-file-debug").on("input", (msg) => out.push(msg));
        helper.getNode("tf-file-inject").receive({});
        await waitFor(() => out.length === 1, 30000, "an emotion at the debug node");
        const p = out[0].payload;
        assert.equal(p.faces.length, 1, "one face in the portrait");
        assert.ok(LABELS.includes(p.emotion));
        assert.equal(p.emotion, "happy", "the astronaut smiles broadly");
        assert.deepEqual(callsOf(helper.getNode("tf-file-frame"), "error"), []);
    });

    describe("camera-snapshot-dashboard", function () {
        let camera;
        let mode = "404";
        before(async function () {
            camera = http.createServer((req, res) => {
                if (mode === "jpeg") { res.writeHead(200, { "content-type": "image/jpeg" }); res.end(SAMPLE); }
                else if (mode === "html") { res.writeHead(200, { "content-type": "text/html" }); res.end("<html>login</html>"); }
                else { res.writeHead(404, { "content-type": "text/plain" }); res.end("no such page"); }
            });
            await new Promise((r) => camera.listen(0, "127.0.0.1", r));
        });
        after(async function () {
            await new Promise((r) => camera.close(r));
        });

        /** The example with its one setting, the camera URL, set; `framesIn` counts what reaches tinyfer-frame. */
        async function load(url) {
            const flow = readExample("camera-snapshot-dashboard.json").map((n) => (n.id === "tf-cam-get" ? { ...n, url } : n));
            await helper.load(modules, flow);
            const state = { framesIn: 0 };
            helper.getNode("tf-cam-frame").on("input", () => { state.framesIn++; });
            state.flowContext = () => helper.getNode("tf-cam-get").context().flow;
            state.get = () => request(httpNode).get("/tinyfer/annotated.jpg").buffer(true);
            return state;
        }

        it("before the first frame the endpoint answers 503 with the reason; an unreachable camera is recorded, never passed on as an image", async function () {
            const closed = await new Promise((r) => { const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => r(p)); }); });
            const st = await load(`http://127.0.0.1:${closed}/capture`);
            let r = await st.get();
            assert.equal(r.status, 503);
            assert.match(r.headers["content-type"], /^text\/plain/);
            assert.match(r.text, /^No annotated frame yet: waiting for the first snapshot from the camera\. Set the camera's snapshot URL/);
            helper.getNode("tf-cam-tick").receive({});
            await waitFor(() => st.flowContext().get("cameraError"), 10000, "the camera error recorded");
            assert.match(st.flowContext().get("cameraError"), /^cannot reach the camera: .*ECONNREFUSED/);
            r = await st.get();
            assert.equal(r.status, 503);
            assert.match(r.text, /cannot reach the camera/);
            assert.equal(st.framesIn, 0, "no error text went to tinyfer-frame");
            assert.deepEqual(callsOf(helper.getNode("tf-cam-frame"), "error"), []);
        });

        it("passes only an HTTP 200 image on; a 404 or a web page is recorded; a good frame is served, and dropped when the camera fails again", async function () {
            const st = await load(`http://127.0.0.1:${camera.address().port}/capture`);
            const tick = () => helper.getNode("tf-cam-tick").receive({ topic: "camera1" });
            mode = "404";
            tick();
            await waitFor(() => /HTTP 404/.test(st.flowContext().get("cameraError") || ""), 10000, "404 recorded");
            let r = await st.get();
            assert.equal(r.status, 503);
            assert.match(r.text, /the camera answered HTTP 404 with text\/plain, not an image/);
            mode = "html";
            tick();
            await waitFor(() => /HTTP 200 with text\/html/.test(st.flowContext().get("cameraError") || ""), 10000, "web page recorded");
            assert.equal(st.framesIn, 0);
            mode = "jpeg";
            tick();
            await waitFor(() => Buffer.isBuffer(st.flowContext().get("annotated")), 30000, "an annotated frame stored");
            assert.ok(st.framesIn >= 1); // the inject node also polls by itself, once a second
            assert.equal(st.flowContext().get("cameraError"), undefined, "a good frame clears the error");
            r = await st.get();
            assert.equal(r.status, 200);
            assert.match(r.headers["content-type"], /^image\/jpeg/);
            assert.ok(r.body.length > 1000 && r.body[0] === 0xff && r.body[1] === 0xd8, "a JPEG");
            mode = "404";
            tick();
            // (a frame fetched just before the switch may still be on its way: wait until the error is what remains)
            await waitFor(() => st.flowContext().get("cameraError") && st.flowContext().get("annotated") === undefined, 10000, "error recorded again, frame dropped");
            r = await st.get();
            assert.equal(r.status, 503, "a stale frame is not served as if current");
            assert.deepEqual(callsOf(helper.getNode("tf-cam-frame"), "error"), []);
        });
    });

    it("emotion-on-change: a POSTed JPEG gets its per-frame emotion back", async function () {
        await helper.load(modules, readExample("emotion-on-change.json"));
        const r = await request(httpNode).post("/tinyfer/frame?camera=hall").set("content-type", "image/jpeg").send(SAMPLE);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.emotion, "happy");
        assert.equal(r.body.faces.length, 1);
    });

    it("fleet-basic (MQTT 5 as shipped) on the demo broker: falls back to 3.1.1, says so, and commands a virtual camera", async function () {
        const { VirtualDevice } = require("../dist/fleet/simulator");
        const { faces } = require("./helpers/fleet");
        await helper.load(modules, onBroker(readExample("fleet-basic.json"), broker));
        const fleet = helper.getNode("fb-fleet");
        await waitFor(() => fleet.manager && fleet.manager.conn.connected, 10000, "connected");
        assert.equal(fleet.manager.conn.fellBack, true);
        assert.equal(fleet.manager.conn.protocolVersion, 4);
        assert.ok(callsOf(fleet, "warn").some((c) => /refused MQTT 5 .*Unacceptable protocol version.*MQTT 3\.1\.1 instead/.test(c.args[0])));
        assert.deepEqual(callsOf(fleet, "error"), []);
        const devs = helper.getNode("fb-devices");
        const status = () => { const c = callsOf(devs, "status"); return c.length ? c[c.length - 1].args[0].text : ""; };
        await waitFor(() => /\(3\.1\.1\)$/.test(status()), 5000, `devices status names the fallback: ${status()}`);
        assert.ok(status().length <= 32);
        const d = new VirtualDevice({ url: broker.url, deviceId: "demo-1", faces: faces(1), protocolVersion: 4, config: { capture_interval_ms: 200 } });
        try {
            await d.start();
            await waitFor(() => fleet.manager.registry.counts().online === 1, 5000, "device online");
            const acks = [];
            helper.getNode("fb-acks").on("input", (m) => acks.push(m));
            helper.getNode("fb-get").receive({});
            await waitFor(() => acks.length === 1, 5000, "get_config acknowledged");
            assert.equal(acks[0].device, "demo-1");
            assert.equal(acks[0].payload.capture_interval_ms, 200);
        } finally {
            await d.stop();
        }
    });

    it("frames-over-mqtt on the demo broker: a frame sent in chunks is reassembled and classified", async function () {
        const mqtt = require("mqtt");
        const { splitChunks } = require("../dist/fleet/protocol");
        await helper.load(modules, onBroker(readExample("frames-over-mqtt.json"), broker));
        const out = [];
        helper.getNode("tf-mq-debug").on("input", (m) => out.push(m));
        const client = mqtt.connect(broker.url, { protocolVersion: 4 });
        try {
            await new Promise((r, j) => { client.once("connect", r); client.once("error", j); });
            await waitFor(() => callsOf(helper.getNode("tf-mq-in"), "status").some((c) => /connected/.test(JSON.stringify(c.args[0]))), 10000, "mqtt in subscribed");
            await new Promise((r) => setTimeout(r, 200));
            for (const chunk of splitChunks(7, SAMPLE)) {
                await new Promise((r) => client.publish("tinyfer/cam-x/frame/chunk", chunk, { qos: 0 }, r));
            }
            await waitFor(() => out.length === 1, 30000, "an emotion from the reassembled frame");
            assert.equal(out[0].payload.emotion, "happy");
            assert.equal(out[0].payload.backend, "tfjs");
        } finally {
            client.end(true);
        }
    });
});
