/**
 * tinyfer-frame and tinyfer-emotion in a real Node-RED runtime (node-red-node-test-helper):
 * real faces from the shared datasets, message shapes, chunked frames, smoothing and
 * emit-on-change, the shared model, and every kind of bad input reaching a catch node while
 * the node keeps working. The emotion tests run the real binary engine on a model blob built
 * here from seeded random weights (what the model predicts is not the point there; that is
 * tested with the trained default model in nodes-accuracy.test.js).
 */
"use strict";
const assert = require("node:assert/strict");
const fs = require("fs");
const os = require("os");
const path = require("path");
const sharp = require("sharp");
const helper = require("node-red-node-test-helper");
const frameNode = require("../nodes/tinyfer-frame.js");
const emotionNode = require("../nodes/tinyfer-emotion.js");
const catchNode = require("@node-red/nodes/core/common/25-catch.js");
const fx = require("./fixtures/faces");
const { randomFoldedModel } = require("../dist/engine/vectors");
const { encodeModel } = require("../dist/model/format");
const { BinaryEngine } = require("../dist/engine/binary");
const { splitChunks } = require("../dist/fleet/protocol");
const { loadedClassifiers } = require("../dist/runtime/models");
const { WorkerDetector } = require("../dist/vision/worker-detector");
const { LABELS } = require("../dist/model/labels");

helper.init(require.resolve("node-red"));
const NODES = [frameNode, emotionNode, catchNode];

/** Nodes on one tab with positions (so catch nodes see them), plus a catch-all catch node wired to 'caught'. */
function onTab(nodes) {
    return [
        { id: "tab", type: "tab", label: "vision test" },
        ...nodes.map((n) => ({ z: "tab", x: 100, y: 100, ...n })),
        { id: "catch", type: "catch", z: "tab", x: 100, y: 200, scope: null, wires: [["caught"]] },
        { id: "caught", type: "helper", z: "tab", x: 300, y: 200 },
    ];
}

/** Collect what a helper node receives; next(n) resolves with the first n messages. */
function collect(id) {
    const got = [];
    const waiters = [];
    helper.getNode(id).on("input", (m) => {
        got.push(m);
        for (const w of waiters.splice(0)) { w(); }
    });
    return {
        got,
        async next(n, ms = 20000) {
            const t0 = Date.now();
            while (got.length < n) {
                if (Date.now() - t0 > ms) { throw new Error(`${id}: got ${got.length} messages, waited for ${n}`); }
                await new Promise((r) => { waiters.push(r); setTimeout(r, 200); });
            }
            return got.slice(0, n);
        },
    };
}

describe("vision nodes: files", function () {
    for (const name of ["tinyfer-frame", "tinyfer-emotion"]) {
        it(`${name}: editor template, help with Inputs/Outputs/Details, registration, icon`, function () {
            const html = fs.readFileSync(path.join(__dirname, "..", "nodes", `${name}.html`), "utf8");
            assert.match(html, new RegExp(`registerType\\("${name}"`));
            assert.match(html, new RegExp(`data-template-name="${name}"`));
            assert.match(html, new RegExp(`data-help-name="${name}"`));
            for (const h of ["Inputs", "Outputs", "Details"]) { assert.match(html, new RegExp(`<h3>${h}</h3>`)); }
            const icon = html.match(/icon: "([^"]+)"/)[1];
            assert.ok(fs.existsSync(path.join(__dirname, "..", "nodes", "icons", icon)), icon);
        });
    }
});

describe("vision nodes in Node-RED", function () {
    this.timeout(60000);
    let tmp;
    let modelFile;
    let jaffe;
    let fer;

    before(async function () {
        jaffe = path.join(fx.requireData(this, "jaffe", "happy"), "KA.HA1.29.tiff");
        fer = fx.listLabel("fer2013", "happy", "PublicTest").slice(0, 8);
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tinyfer-nodes-"));
        modelFile = path.join(tmp, "random.tfer");
        fs.writeFileSync(modelFile, encodeModel(randomFoldedModel(1)));
        await new Promise((r) => helper.startServer(r));
    });
    after(async function () {
        await new Promise((r) => helper.stopServer(r));
        fs.rmSync(tmp, { recursive: true, force: true });
    });
    afterEach(async function () {
        await helper.unload();
    });

    describe("tinyfer-frame", function () {
        it("finds the face in a JAFFE TIFF: msg.faces, msg.image, msg.frame", async function () {
            await helper.load(NODES, onTab([
                { id: "frame", type: "tinyfer-frame", wires: [["out"]] },
                { id: "out", type: "helper" },
            ]));
            const out = collect("out");
            const bytes = fs.readFileSync(jaffe);
            helper.getNode("frame").receive({ payload: bytes, topic: "cam1" });
            const [m] = await out.next(1);
            assert.equal(m.topic, "cam1");
            assert.equal(m.faces.length, 1);
            assert.equal(m.payload, m.faces);
            const f = m.faces[0];
            assert.deepEqual(Object.keys(f.box).sort(), ["h", "w", "x", "y"]);
            assert.ok(f.score > 0.5);
            assert.ok(f.pixels instanceof Uint8Array && f.pixels.length === 2304);
            assert.ok(Buffer.isBuffer(m.image));
            assert.deepEqual(m.image, bytes);
            assert.equal(m.frame.width, 256);
            assert.equal(m.frame.format, "tiff");
            assert.equal(m.frame.mode, "detect");
            assert.equal(m.frame.detector, "worker-wasm");
        });

        it("runs the detector on the main thread's TensorFlow.js when so set, finding the same face", async function () {
            await helper.load(NODES, onTab([
                { id: "worker", type: "tinyfer-frame", wires: [["out"]] },
                { id: "main", type: "tinyfer-frame", detectorRuntime: "main", wires: [["out"]] },
                { id: "out", type: "helper" },
            ]));
            const out = collect("out");
            const bytes = fs.readFileSync(jaffe);
            helper.getNode("worker").receive({ payload: bytes, topic: "worker" });
            helper.getNode("main").receive({ payload: bytes, topic: "main" });
            const msgs = await out.next(2);
            const by = Object.fromEntries(msgs.map((m) => [m.topic, m]));
            assert.equal(by.worker.frame.detector, "worker-wasm");
            assert.match(by.main.frame.detector, /^main-(tensorflow|wasm)$/);
            assert.equal(by.main.faces.length, 1);
            assert.ok(fx.iou(by.main.faces[0].box, by.worker.faces[0].box) > 0.95);
        });

        it("the detector thread is stopped when the last node using it closes, and started again by the next flow", async function () {
            const shared = WorkerDetector.shared();
            for (let round = 0; round < 2; round++) {
                await helper.load(NODES, onTab([
                    { id: "frame", type: "tinyfer-frame", wires: [["out"]] },
                    { id: "emotion", type: "tinyfer-emotion", model: modelFile },
                    { id: "out", type: "helper" },
                ]));
                const out = collect("out");
                helper.getNode("frame").receive({ payload: fs.readFileSync(jaffe) });
                const [m] = await out.next(1);
                assert.equal(m.faces.length, 1);
                assert.ok(shared.worker, "running while the nodes live");
                await helper.unload();
                assert.equal(shared.worker, undefined, "stopped with the last node");
            }
        });

        it("takes a file path and a data URL; outputs the original or an annotated JPEG", async function () {
            await helper.load(NODES, onTab([
                { id: "orig", type: "tinyfer-frame", output: "original", wires: [["out1"]] },
                { id: "ann", type: "tinyfer-frame", output: "annotated", wires: [["out2"]] },
                { id: "out1", type: "helper" },
                { id: "out2", type: "helper" },
            ]));
            const out1 = collect("out1");
            const out2 = collect("out2");
            const bytes = fs.readFileSync(jaffe);
            helper.getNode("orig").receive({ payload: jaffe });
            helper.getNode("ann").receive({ payload: "data:image/tiff;base64," + bytes.toString("base64") });
            const [o] = await out1.next(1);
            assert.deepEqual(o.payload, bytes);
            assert.equal(o.faces.length, 1);
            const [a] = await out2.next(1);
            const meta = await sharp(a.payload).metadata();
            assert.equal(meta.format, "jpeg");
            assert.equal(meta.width, 256);
            assert.equal(a.faces.length, 1);
        });

        it("reassembles fleet frame chunks and sends one message per frame", async function () {
            await helper.load(NODES, onTab([
                { id: "frame", type: "tinyfer-frame", wires: [["out"]] },
                { id: "out", type: "helper" },
            ]));
            const out = collect("out");
            const jpeg = await fx.frameWithFace(jaffe, 200, 100);
            const chunks = splitChunks(42, jpeg, 4096);
            assert.ok(chunks.length >= 3);
            for (const c of chunks.reverse()) { helper.getNode("frame").receive({ topic: "tinyfer/cam7/frame/chunk", payload: c }); }
            // then a plain image: once it is out, all chunks were handled (the node keeps order)
            helper.getNode("frame").receive({ topic: "marker", payload: fs.readFileSync(fer[0]) });
            const [m, marker] = await out.next(2);
            assert.deepEqual(m.image, jpeg);
            assert.equal(m.faces.length, 1);
            assert.ok(m.faces[0].box.x > 180 && m.faces[0].box.x < 330, JSON.stringify(m.faces[0].box));
            assert.equal(marker.topic, "marker");
            assert.equal(out.got.length, 2, "one message for the chunked frame");
        });

        it("takes chunked frames from a real broker through a core mqtt in node, two cameras interleaved", async function () {
            const { startMosquitto } = require("./helpers/mosquitto");
            const { requireMosquitto } = require("./helpers/fleet");
            const mqttNode = require("@node-red/nodes/core/network/10-mqtt.js");
            const mqtt = require("mqtt");
            requireMosquitto();
            const broker = await startMosquitto();
            const port = Number(new URL(broker.url).port);
            try {
                await helper.load([...NODES, mqttNode], [
                    { id: "b", type: "mqtt-broker", broker: "127.0.0.1", port: String(port), protocolVersion: "4", autoConnect: true, cleansession: true, keepalive: "60" },
                    ...onTab([{ id: "in", type: "mqtt in", topic: "tinyfer/+/frame/chunk", qos: "0", datatype: "buffer", broker: "b", wires: [["frame"]] },
                    { id: "frame", type: "tinyfer-frame", wires: [["out"]] },
                    { id: "out", type: "helper" },
                ])]);
                const out = collect("out");
                const client = await mqtt.connectAsync(broker.url);
                // publish a small probe frame until the subscription is up and it comes through
                const probe = splitChunks(1, await sharp({ create: { width: 40, height: 40, channels: 3, background: "#808080" } }).jpeg().toBuffer())[0];
                for (let t0 = Date.now(); out.got.length === 0;) {
                    assert.ok(Date.now() - t0 < 15000, "the mqtt in node never received the probe frame");
                    await client.publishAsync("tinyfer/probe/frame/chunk", probe, { qos: 0 });
                    await new Promise((r) => setTimeout(r, 100));
                }
                const frames = {
                    cam1: await fx.frameWithFace(jaffe, 60, 40),
                    cam2: await fx.frameWithFace(fx.jaffePerSubject("surprise")[1], 340, 200),
                };
                const chunks = Object.fromEntries(Object.entries(frames).map(([k, v]) => [k, splitChunks(9, v, 4096)]));
                const n = Math.max(chunks.cam1.length, chunks.cam2.length);
                for (let i = 0; i < n; i++) {
                    for (const cam of ["cam1", "cam2"]) {
                        if (chunks[cam][i]) { await client.publishAsync(`tinyfer/${cam}/frame/chunk`, chunks[cam][i], { qos: 0 }); }
                    }
                }
                const camMsgs = () => out.got.filter((m) => !m.topic.includes("/probe/"));
                for (let t0 = Date.now(); camMsgs().length < 2;) {
                    assert.ok(Date.now() - t0 < 20000, `got ${camMsgs().length} of 2 frames`);
                    await new Promise((r) => setTimeout(r, 50));
                }
                await client.endAsync();
                const byCam = Object.fromEntries(camMsgs().map((m) => [m.topic.split("/")[1], m]));
                assert.deepEqual(byCam.cam1.image, frames.cam1);
                assert.deepEqual(byCam.cam2.image, frames.cam2);
                assert.ok(byCam.cam1.faces[0].box.x < 200 && byCam.cam2.faces[0].box.x > 300);
            } finally {
                await helper.unload();
                await broker.close();
            }
        });

        it("every bad input reaches a catch node with a clear error, and the node keeps working", async function () {
            await helper.load(NODES, onTab([
                { id: "frame", type: "tinyfer-frame", wires: [["out"]] },
                { id: "out", type: "helper" },
            ]));
            const out = collect("out");
            const caught = collect("caught");
            const jpeg = await sharp(jaffe).jpeg().toBuffer();
            const bad = [
                [{ payload: jpeg.subarray(0, jpeg.length >> 1) }, /truncated or damaged/],
                [{ payload: Buffer.alloc(0) }, /empty/],
                [{ payload: Buffer.from("GET / HTTP/1.1\r\nHost: camera\r\n\r\n") }, /not a readable image/],
                [{ payload: 12345 }, /expected an image Buffer, a file path or a data URL, got number/],
                [{ payload: { frame: true } }, /got object/],
                [{ payload: Buffer.concat([jpeg, Buffer.alloc(50 * 1024 * 1024)]) }, /over the 20\.0 MB limit/],
                [{ payload: fx.pngHeaderOnly(60000, 60000) }, /MP limit|pixel limit/],
                [{ payload: "/no/such/camera/frame.jpg" }, /cannot read image file/],
            ];
            for (const [msg] of bad) { helper.getNode("frame").receive(msg); }
            const errs = await caught.next(bad.length);
            bad.forEach(([, re], i) => {
                assert.match(errs[i].error.message, re, `case ${i}`);
                assert.equal(errs[i].error.source.id, "frame");
            });
            // zero faces is not an error: an empty list
            const blank = await sharp({ create: { width: 320, height: 240, channels: 3, background: "#6d7680" } }).jpeg().toBuffer();
            helper.getNode("frame").receive({ payload: blank });
            helper.getNode("frame").receive({ payload: fs.readFileSync(jaffe) });
            const [none, one] = await out.next(2);
            assert.deepEqual(none.faces, []);
            assert.equal(one.faces.length, 1);
            assert.equal(caught.got.length, bad.length);
        });

        it("a bad setting is reported on every message, not thrown", async function () {
            await helper.load(NODES, onTab([{ id: "frame", type: "tinyfer-frame", margin: "wide", wires: [[]] }]));
            const caught = collect("caught");
            helper.getNode("frame").receive({ payload: Buffer.from([1]) });
            const [e] = await caught.next(1);
            assert.match(e.error.message, /margin must be a number/);
        });
    });

    describe("tinyfer-emotion", function () {
        it("classifies msg.faces from tinyfer-frame: payload shape, faces annotated with emotions", async function () {
            await helper.load(NODES, onTab([
                { id: "frame", type: "tinyfer-frame", wires: [["emo"]] },
                { id: "emo", type: "tinyfer-emotion", backend: "binary", model: modelFile, wires: [["out"]] },
                { id: "out", type: "helper" },
            ]));
            const out = collect("out");
            helper.getNode("frame").receive({ payload: fs.readFileSync(jaffe) });
            const [m] = await out.next(1);
            const p = m.payload;
            assert.ok(LABELS.includes(p.emotion), p.emotion);
            assert.ok(p.confidence > 0 && p.confidence <= 1);
            assert.deepEqual(Object.keys(p.scores), LABELS.slice());
            const sum = Object.values(p.scores).reduce((a, b) => a + b, 0);
            assert.ok(Math.abs(sum - 1) < 1e-3, `scores sum to ${sum}`);
            assert.equal(p.scores[p.emotion], p.confidence);
            assert.equal(p.backend, "binary");
            assert.equal(p.runtime, "wasm");
            assert.ok(p.inferenceMs >= 0);
            assert.equal(p.faces.length, 1);
            assert.deepEqual(p.faces[0].box, m.faces[0].box);
            assert.equal(p.faces[0].emotion, p.emotion);
            assert.equal(m.faces[0].emotion, p.emotion);
            assert.ok(Buffer.isBuffer(m.image));
            // the same face straight through the engine gives the same scores
            const engine = await BinaryEngine.load(fs.readFileSync(modelFile));
            const [direct] = await engine.classify([m.faces[0].pixels]);
            engine.dispose();
            LABELS.forEach((l, i) => assert.ok(Math.abs(p.scores[l] - direct[i]) < 1e-4, l));
        });

        it("views: a face's scores are the mean over its 10 views (new nodes), or 2 for older flows with mirror on", async function () {
            const { viewsOf } = require("../dist/engine/views");
            await helper.load(NODES, onTab([
                { id: "ten", type: "tinyfer-emotion", model: modelFile, views: "10", mode: "whole", wires: [["out"]] },
                { id: "old", type: "tinyfer-emotion", model: modelFile, mirror: true, mode: "whole", wires: [["out"]] },
                { id: "one", type: "tinyfer-emotion", model: modelFile, mode: "whole", wires: [["out"]] },
                // an older flow saved by the editor with no view selected
                { id: "oldsaved", type: "tinyfer-emotion", model: modelFile, mirror: true, views: null, mode: "whole", wires: [["out"]] },
                { id: "out", type: "helper" },
            ]));
            const out = collect("out");
            const engine = await BinaryEngine.load(fs.readFileSync(modelFile));
            const cases = [["ten", 10], ["old", 2], ["one", 1], ["oldsaved", 2]];
            for (const [k, [id, count]] of cases.entries()) {
                helper.getNode(id).receive({ payload: fs.readFileSync(fer[1]) });
                const m = (await out.next(k + 1))[k];
                const face = Uint8Array.from(m.faces[0].pixels);
                const each = await engine.classify(viewsOf(face, count));
                let differ = 0;
                LABELS.forEach((l, i) => {
                    const mean = each.reduce((a, e) => a + e[i], 0) / count;
                    assert.ok(Math.abs(m.payload.faces[0].scores[l] - mean) <= 5e-5 + 1e-7, `${id} ${l}: ${m.payload.faces[0].scores[l]} vs ${mean} ${JSON.stringify(m.payload)}`); // scores carry 4 decimals
                    differ = Math.max(differ, ...each.map((e) => Math.abs(e[i] - each[0][i])));
                });
                if (count > 1) assert.ok(differ > 1e-4, "the views score differently (the test would prove nothing otherwise)");
            }
            engine.dispose();
        });

        it("a bad views setting is a clear error a catch node gets", async function () {
            await helper.load(NODES, onTab([{ id: "emo", type: "tinyfer-emotion", model: modelFile, views: "3", wires: [[]] }]));
            const caught = collect("caught");
            helper.getNode("emo").receive({ payload: fs.readFileSync(fer[1]) });
            const [e] = await caught.next(1);
            assert.match(e.error.message, /views must be one of 1, 2, 10, got "3"/);
        });

        it("runs the frame pipeline itself for an image payload (FER2013 48x48 is one whole face)", async function () {
            await helper.load(NODES, onTab([
                { id: "emo", type: "tinyfer-emotion", model: modelFile, wires: [["out"]] },
                { id: "out", type: "helper" },
            ]));
            const out = collect("out");
            helper.getNode("emo").receive({ payload: fs.readFileSync(fer[0]) });
            const [m] = await out.next(1);
            assert.equal(m.payload.faces.length, 1);
            assert.deepEqual(m.payload.faces[0].box, { x: 0, y: 0, w: 48, h: 48 });
            assert.equal(m.faces.length, 1);
            assert.ok(Buffer.isBuffer(m.image));
        });

        it("a frame without a face gives emotion null and an empty faces list", async function () {
            await helper.load(NODES, onTab([
                { id: "emo", type: "tinyfer-emotion", model: modelFile, wires: [["out"]] },
                { id: "out", type: "helper" },
            ]));
            const out = collect("out");
            const blank = await sharp({ create: { width: 320, height: 240, channels: 3, background: "#6d7680" } }).jpeg().toBuffer();
            helper.getNode("emo").receive({ payload: blank });
            const [m] = await out.next(1);
            assert.equal(m.payload.emotion, null);
            assert.deepEqual(m.payload.faces, []);
        });

        it("emit-on-change sends only when a stream's stable emotion changes, per key property", async function () {
            // pick two faces the model labels differently (FER faces of every label, then plain fills)
            const candidates = [];
            for (const label of ["angry", "fear", "happy", "sad", "surprise", "neutral"]) {
                for (const f of fx.listLabel("fer2013", label, "PublicTest").slice(0, 3)) {
                    candidates.push(new Uint8Array(await sharp(f).greyscale().raw().toBuffer()));
                }
            }
            for (let v = 0; v < 256; v += 32) { candidates.push(new Uint8Array(2304).fill(v)); }
            const engine = await BinaryEngine.load(fs.readFileSync(modelFile));
            const scores = await engine.classify(candidates);
            engine.dispose();
            const top = scores.map((s) => s.indexOf(Math.max(...s)));
            const a = 0;
            const b = top.findIndex((t) => t !== top[a]);
            assert.ok(b > 0, "the test model labels all candidate faces alike: pick another seed");
            await helper.load(NODES, onTab([
                { id: "emo", type: "tinyfer-emotion", model: modelFile, emitOnChange: true, keyProperty: "device.id", wires: [["out"]] },
                { id: "out", type: "helper" },
            ]));
            const out = collect("out");
            const face = (i) => [{ box: { x: 0, y: 0, w: 48, h: 48 }, pixels: candidates[i] }];
            const seq = [["d1", a], ["d1", a], ["d2", a], ["d1", a], ["d1", b], ["d1", b], ["d2", a], ["d1", a]];
            seq.forEach(([dev, i], n) => helper.getNode("emo").receive({ faces: face(i), device: { id: dev }, n }));
            // a new key always emits: once it is out, every message before it was handled (the node keeps order)
            helper.getNode("emo").receive({ faces: face(a), device: { id: "marker" }, n: "end" });
            const expected = [0, 2, 4, 7, "end"]; // d1 first, d2 first, d1 a->b, d1 b->a, marker
            const got = await out.next(expected.length);
            assert.deepEqual(out.got.map((m) => m.n), expected);
            assert.deepEqual(got.map((m) => m.payload.smoothing.key), ["d1", "d2", "d1", "d1", "marker"]);
            assert.ok(got.every((m) => m.payload.smoothing.changed));
            assert.equal(got[2].payload.emotion, LABELS[top[b]]);
        });

        it("EMA smoothing per msg.topic: the top level is smoothed, faces[] are raw", async function () {
            await helper.load(NODES, onTab([
                { id: "emo", type: "tinyfer-emotion", model: modelFile, smoothing: "ema", alpha: "0.5", wires: [["out"]] },
                { id: "out", type: "helper" },
            ]));
            const out = collect("out");
            helper.getNode("emo").receive({ topic: "camA", payload: fs.readFileSync(fer[0]) });
            helper.getNode("emo").receive({ topic: "camA", payload: fs.readFileSync(fer[1]) });
            const [m1, m2] = await out.next(2);
            assert.equal(m2.payload.smoothing.frames, 2);
            for (const l of LABELS) {
                const want = 0.5 * m1.payload.faces[0].scores[l] + 0.5 * m2.payload.faces[0].scores[l];
                assert.ok(Math.abs(m2.payload.scores[l] - want) < 2e-4, `${l}: ${m2.payload.scores[l]} vs ${want}`);
            }
        });

        it("frame -> emotion -> frame(annotated) draws the emotions for a dashboard", async function () {
            await helper.load(NODES, onTab([
                { id: "frame", type: "tinyfer-frame", wires: [["emo"]] },
                { id: "emo", type: "tinyfer-emotion", model: modelFile, wires: [["ann"]] },
                { id: "ann", type: "tinyfer-frame", output: "annotated", wires: [["out"]] },
                { id: "out", type: "helper" },
            ]));
            const out = collect("out");
            const frame = await fx.frameWithFace(jaffe, 300, 150);
            helper.getNode("frame").receive({ payload: frame });
            const [m] = await out.next(1);
            assert.equal((await sharp(m.payload).metadata()).format, "jpeg");
            assert.equal(m.faces[0].emotion.length > 0, true);
            // the box edge of the annotated frame is drawn in the emotion's colour (the stroke is 2 px wide
            // around the edge and JPEG subsamples colour in 2x2 blocks: look at the 3 rows around it)
            const { COLOURS } = require("../dist/vision/annotate");
            const hex = COLOURS[m.faces[0].emotion];
            const want = [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16));
            const { data, info } = await sharp(m.payload).raw().toBuffer({ resolveWithObject: true });
            const b = m.faces[0].box;
            const dist = (i) => Math.abs(data[i] - want[0]) + Math.abs(data[i + 1] - want[1]) + Math.abs(data[i + 2] - want[2]);
            let changed = 0;
            for (let x = b.x; x < b.x + b.w; x++) {
                const rows = [b.y + b.h - 1, b.y + b.h, b.y + b.h + 1].filter((y) => y < info.height);
                if (Math.min(...rows.map((y) => dist((y * info.width + x) * 3))) < 60) { changed++; }
            }
            assert.ok(changed > b.w * 0.8, `${changed} of ${b.w} box-edge pixels drawn`);
        });

        it("tfjs backend: a tfjs model folder gives the same payload shape with backend 'tfjs'", async function () {
            const { loadTf } = require("../dist/engine/tf");
            const { tf } = await loadTf();
            const { buildNetwork } = require("../dist/model/network");
            const dir = path.join(tmp, "tfjs-model");
            const net = buildNetwork({ seed: 1 });
            await net.save(tf.io.withSaveHandler(async (art) => {
                fs.mkdirSync(dir, { recursive: true });
                fs.writeFileSync(path.join(dir, "weights.bin"), Buffer.from(art.weightData));
                fs.writeFileSync(path.join(dir, "model.json"), JSON.stringify({
                    modelTopology: art.modelTopology, format: art.format, generatedBy: art.generatedBy, convertedBy: art.convertedBy,
                    weightsManifest: [{ paths: ["weights.bin"], weights: art.weightSpecs }],
                }));
                return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
            }));
            net.dispose();
            await helper.load(NODES, onTab([
                { id: "emo", type: "tinyfer-emotion", backend: "tfjs", model: dir, wires: [["out"]] },
                { id: "out", type: "helper" },
            ]));
            const out = collect("out");
            helper.getNode("emo").receive({ payload: fs.readFileSync(fer[2]) });
            const [m] = await out.next(1);
            assert.equal(m.payload.backend, "tfjs");
            assert.match(m.payload.runtime, /^tfjs-/);
            assert.ok(LABELS.includes(m.payload.emotion));
            const sum = Object.values(m.payload.scores).reduce((a, b) => a + b, 0);
            assert.ok(Math.abs(sum - 1) < 1e-3);
        });

        it("shares one model between nodes and frees it when the last one closes", async function () {
            await helper.load(NODES, onTab([
                { id: "e1", type: "tinyfer-emotion", model: modelFile, wires: [[]] },
                { id: "e2", type: "tinyfer-emotion", model: modelFile, smoothing: "majority", wires: [[]] },
            ]));
            assert.equal(loadedClassifiers(), 1);
            await helper.unload();
            assert.equal(loadedClassifiers(), 0);
        });

        it("bad input and a missing model reach a catch node; the node keeps working", async function () {
            await helper.load(NODES, onTab([
                { id: "emo", type: "tinyfer-emotion", model: modelFile, wires: [["out"]] },
                { id: "nomodel", type: "tinyfer-emotion", model: path.join(tmp, "missing.tfer"), wires: [["out"]] },
                { id: "out", type: "helper" },
            ]));
            const out = collect("out");
            const caught = collect("caught");
            const emo = helper.getNode("emo");
            emo.receive({ payload: { hello: 1 } });
            emo.receive({ faces: [{ pixels: new Uint8Array(10) }] });
            emo.receive({ faces: "nope" });
            emo.receive({ payload: Buffer.from("not an image at all") });
            helper.getNode("nomodel").receive({ faces: [{ pixels: new Uint8Array(2304) }] });
            const errs = await caught.next(5);
            const byNode = (id) => errs.filter((e) => e.error.source.id === id).map((e) => e.error.message);
            const msgs = byNode("emo");
            assert.match(msgs[0], /expected msg\.faces \(from tinyfer-frame\) or an image/);
            assert.match(msgs[1], /10 values, expected 2304/);
            assert.match(msgs[2], /msg\.faces must be an array/);
            assert.match(msgs[3], /not a readable image/);
            assert.match(byNode("nomodel")[0], /model is missing|not found/);
            emo.receive({ faces: [{ box: { x: 0, y: 0, w: 48, h: 48 }, pixels: new Uint8Array(2304).fill(128) }] });
            const [m] = await out.next(1);
            assert.ok(LABELS.includes(m.payload.emotion));
        });
    });
});
