/**
 * The node-side logic without Node-RED: smoothing and emit-on-change, the rate meter, the
 * emotion payload, msg.faces validation, the frame handler's chunk reassembly and the shared
 * classifier cache's errors.
 */
"use strict";
const assert = require("node:assert/strict");
const { EmotionSmoother, smoothingOptions } = require("../dist/runtime/smoothing");
const { RateMeter } = require("../dist/runtime/rate");
const { emotionPayload, faceEmotion, facesFromMessage, largestFace } = require("../dist/runtime/emotion");
const { FrameHandler, isChunk, frameOptionsFromConfig } = require("../dist/runtime/frame-node");
const { getClassifier, loadedClassifiers } = require("../dist/runtime/models");
const { splitChunks } = require("../dist/fleet/protocol");
const { LABELS } = require("../dist/model/labels");
const sharp = require("sharp");

/** A score vector with `p` on `label` and the rest spread evenly. */
function scores(label, p) {
    const i = LABELS.indexOf(label);
    const v = new Float32Array(7).fill((1 - p) / 6);
    v[i] = p;
    return v;
}

describe("smoothing", function () {
    it("'none' passes each frame through and flags every change", function () {
        const s = new EmotionSmoother({ method: "none" });
        const a = s.update("cam", scores("happy", 0.8));
        assert.equal(a.emotion, "happy");
        assert.ok(Math.abs(a.confidence - 0.8) < 1e-6);
        assert.equal(a.changed, true);
        assert.equal(s.update("cam", scores("happy", 0.6)).changed, false);
        const c = s.update("cam", scores("sad", 0.7));
        assert.equal(c.emotion, "sad");
        assert.equal(c.changed, true);
        assert.equal(c.frames, 3);
    });

    it("'ema' averages score vectors with weight alpha on the newest frame", function () {
        const s = new EmotionSmoother({ method: "ema", alpha: 0.25 });
        const x1 = scores("happy", 0.9);
        const x2 = scores("sad", 0.9);
        s.update("k", x1);
        const r = s.update("k", x2);
        for (let i = 0; i < 7; i++) {
            assert.ok(Math.abs(r.scores[i] - (0.25 * x2[i] + 0.75 * x1[i])) < 1e-6);
        }
        // one sad frame after a happy one does not flip a slow average
        assert.equal(r.emotion, "happy");
        assert.equal(r.changed, false);
        // a run of sad frames does
        let last;
        for (let k = 0; k < 4; k++) { last = s.update("k", x2); }
        assert.equal(last.emotion, "sad");
        const flips = [];
        const s2 = new EmotionSmoother({ method: "ema", alpha: 0.25 });
        s2.update("k", x1);
        for (let k = 0; k < 5; k++) { flips.push(s2.update("k", x2).changed); }
        assert.deepEqual(flips.filter(Boolean).length, 1, "changed is true exactly once");
    });

    it("'majority' takes the most frequent label of the window, ties to the most recent", function () {
        const s = new EmotionSmoother({ method: "majority", window: 3 });
        assert.equal(s.update("k", scores("happy", 0.6)).emotion, "happy");
        const tie = s.update("k", scores("sad", 0.9)); // 1 happy, 1 sad: the most recent wins
        assert.equal(tie.emotion, "sad");
        const back = s.update("k", scores("happy", 0.8)); // 2 happy, 1 sad
        assert.equal(back.emotion, "happy");
        assert.ok(Math.abs(back.confidence - 0.7) < 1e-6, "mean happy score over its votes");
        // window of 3: sad, happy, angry -> each once, the most recent (angry) wins
        assert.equal(s.update("k", scores("angry", 0.5)).emotion, "angry");
    });

    it("minConfidence keeps the stable emotion through unsure frames", function () {
        for (const method of ["none", "ema", "majority"]) {
            const s = new EmotionSmoother({ method, minConfidence: 0.6, alpha: 1 });
            const first = s.update("k", scores("happy", 0.5));
            assert.equal(first.emotion, null, method);
            assert.equal(first.confidence, 0, method);
            assert.equal(first.changed, false, method);
            assert.equal(s.update("k", scores("happy", 0.9)).emotion, "happy", method);
            const unsure = s.update("k", scores("fear", 0.4));
            assert.equal(unsure.emotion, "happy", method);
            assert.equal(unsure.changed, false, method);
        }
    });

    it("keeps one stream per key and forgets the least recently seen beyond maxKeys", function () {
        const s = new EmotionSmoother({ method: "none", maxKeys: 2 });
        s.update("a", scores("happy", 0.9));
        s.update("b", scores("sad", 0.9));
        assert.equal(s.update("a", scores("happy", 0.9)).changed, false);
        s.update("c", scores("angry", 0.9)); // evicts b (a was seen more recently)
        assert.equal(s.size, 2);
        assert.equal(s.update("a", scores("happy", 0.9)).changed, false);
        assert.equal(s.update("b", scores("sad", 0.9)).frames, 1, "b starts afresh");
    });

    it("checks its options and inputs", function () {
        assert.throws(() => smoothingOptions({ method: "median" }), /method/);
        assert.throws(() => smoothingOptions({ alpha: 0 }), /alpha/);
        assert.throws(() => smoothingOptions({ window: 0 }), /window/);
        assert.throws(() => smoothingOptions({ minConfidence: 2 }), /minConfidence/);
        const s = new EmotionSmoother();
        assert.throws(() => s.update("k", [1, 2]), /expected 7 scores/);
        assert.throws(() => s.update("k", [NaN, 0, 0, 0, 0, 0, 0]), /finite/);
    });
});

describe("rate meter", function () {
    it("counts messages per second over its window", function () {
        let t = 0;
        const r = new RateMeter(5000, () => t);
        assert.equal(r.rate(), 0);
        r.tick();
        assert.equal(r.rate(), 1, "a single message reads as 1/s, not infinity");
        for (let i = 0; i < 20; i++) { t += 250; r.tick(); }
        assert.ok(Math.abs(r.rate() - 21 / 5) < 1e-9);
        t += 10000;
        assert.equal(r.rate(), 0);
    });
});

describe("emotion payload", function () {
    const px = new Uint8Array(2304);

    it("validates msg.faces, accepting Buffers and JSON round trips", function () {
        const viaJson = JSON.parse(JSON.stringify([{ box: { x: 1, y: 2, w: 3, h: 4 }, pixels: Buffer.from(px) }, { pixels: px.map((_, i) => i & 255) }]));
        const faces = facesFromMessage([{ box: { x: 0, y: 0, w: 10, h: 10 }, pixels: px }, { pixels: Array.from(px) }, ...viaJson]);
        assert.equal(faces.length, 4);
        assert.equal(faces[3].pixels[300], 300 & 255, "a JSON'd Uint8Array ({\"0\":..}) keeps its values");
        assert.ok(faces.every((f) => f.pixels instanceof Uint8Array && f.pixels.length === 2304));
        assert.equal(faces[1].box, null);
        assert.deepEqual(faces[2].box, { x: 1, y: 2, w: 3, h: 4 });
        assert.throws(() => facesFromMessage("x"), /must be an array/);
        assert.throws(() => facesFromMessage([{ pixels: new Uint8Array(100) }]), /100 values, expected 2304/);
        assert.throws(() => facesFromMessage([{ pixels: "abc" }]), /Uint8Array/);
        assert.throws(() => facesFromMessage([{ pixels: new Array(2304).fill(300) }]), /0\.\.255/);
        assert.throws(() => facesFromMessage([null]), /faces\[0\] is not an object/);
    });

    it("puts the largest face at the top level", function () {
        const small = faceEmotion({ x: 0, y: 0, w: 10, h: 10 }, scores("sad", 0.7));
        const big = faceEmotion({ x: 50, y: 0, w: 40, h: 40 }, scores("surprise", 0.6));
        assert.equal(largestFace([small, big]), 1);
        const p = emotionPayload([small, big], "binary", "wasm", 1.23456);
        assert.equal(p.emotion, "surprise");
        assert.equal(p.confidence, 0.6);
        assert.deepEqual(Object.keys(p.scores), LABELS.slice());
        assert.equal(p.faces.length, 2);
        assert.equal(p.faces[0].emotion, "sad");
        assert.equal(p.backend, "binary");
        assert.equal(p.runtime, "wasm");
        assert.equal(p.inferenceMs, 1.235);
        assert.equal(p.smoothing, undefined);
        const none = emotionPayload([], "binary", "wasm", 0);
        assert.equal(none.emotion, null);
        assert.equal(none.scores, null);
        assert.deepEqual(none.faces, []);
    });

    it("uses the smoothed result at the top level when smoothing", function () {
        const s = new EmotionSmoother({ method: "ema", alpha: 0.5 });
        s.update("cam1", scores("happy", 0.9));
        const f = faceEmotion(null, scores("sad", 0.55));
        const result = s.update("cam1", scores("sad", 0.55));
        const p = emotionPayload([f], "tfjs", "tensorflow", 2, { result, method: "ema", key: "cam1" });
        assert.equal(p.faces[0].emotion, "sad");
        assert.equal(p.emotion, "happy");
        assert.deepEqual(p.smoothing, { method: "ema", key: "cam1", changed: false, frames: 2 });
    });
});

describe("frame handler", function () {
    this.timeout(60000);

    it("reassembles a chunked frame (any order, duplicates) before decoding", async function () {
        const jpeg = await sharp({ create: { width: 40, height: 40, channels: 3, background: "#808080" } }).jpeg().toBuffer();
        const chunks = splitChunks(7, jpeg, 64);
        assert.ok(chunks.length > 2);
        assert.ok(chunks.every(isChunk));
        assert.ok(!isChunk(jpeg));
        const h = new FrameHandler({ output: "faces" });
        const order = [...chunks.slice(1), chunks[1]];
        for (const c of order) {
            assert.equal(await h.handle({ topic: "tinyfer/cam1/frame/chunk", payload: c }), null);
        }
        assert.equal(h.pendingChunks, 1);
        const out = await h.handle({ topic: "tinyfer/cam1/frame/chunk", payload: chunks[0] });
        assert.ok(out);
        assert.deepEqual(out.image, jpeg);
        assert.equal(out.frame.mode, "whole"); // 40 px: taken as a pre-cropped face
        assert.equal(out.faces.length, 1);
        assert.equal(h.pendingChunks, 0);
        h.close();
    });

    it("drops chunked frames beyond 10 a second per topic and counts them; other topics are not affected", async function () {
        const jpeg = await sharp({ create: { width: 40, height: 40, channels: 3, background: "#808080" } }).jpeg().toBuffer();
        const h = new FrameHandler({ output: "faces" });
        let out = 0;
        for (let i = 0; i < 15; i++) {
            for (const c of splitChunks(100 + i, jpeg, 256)) if (await h.handle({ topic: "tinyfer/cam1/frame/chunk", payload: c })) out++;
        }
        assert.ok(out >= 10 && out < 15, `${out} frames through`); // 10 at once, maybe one more as the bucket refills
        assert.equal(h.framesDropped.overRate, 15 - out);
        assert.ok(await h.handle({ topic: "tinyfer/cam2/frame/chunk", payload: splitChunks(1, jpeg, 16384)[0] }));
        h.close();
    });

    it("rejects a corrupt chunk with a clear error", async function () {
        const h = new FrameHandler({});
        const bad = Buffer.from([0x54, 0x46, 9, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0, 1, 2, 3, 4]);
        await assert.rejects(h.handle({ topic: "t", payload: bad }), /frame chunk rejected: chunk: header version 9/);
        h.close();
    });

    it("parses editor settings and refuses bad ones", function () {
        const o = frameOptionsFromConfig({ mode: "whole", margin: "0.2", inputSize: "320", maxBytesMb: "1", maxMegapixels: "2" });
        assert.equal(o.wholeFace, true);
        assert.equal(o.margin, 0.2);
        assert.equal(o.inputSize, 320);
        assert.equal(o.maxBytes, 1024 * 1024);
        assert.equal(o.maxPixels, 2e6);
        assert.equal(frameOptionsFromConfig({ margin: "" }).margin, 0);
        assert.equal(o.detectorRuntime, "worker-wasm");
        assert.equal(frameOptionsFromConfig({ detectorRuntime: "main" }).detectorRuntime, "main");
        assert.equal(frameOptionsFromConfig({ detectorRuntime: "" }).detectorRuntime, "worker-wasm");
        assert.throws(() => frameOptionsFromConfig({ detectorRuntime: "gpu" }), /detectorRuntime must be one of worker-wasm, main/);
        assert.throws(() => frameOptionsFromConfig({ margin: "wide" }), /margin must be a number/);
        assert.throws(() => frameOptionsFromConfig({ mode: "guess" }), /mode/);
        assert.throws(() => new FrameHandler({ output: "thumbnail" }), /output/);
        assert.throws(() => new FrameHandler({ quality: "0" }), /quality/);
    });
});

describe("shared classifier cache", function () {
    it("a missing model or unknown backend is a clear, catchable error that is not cached", async function () {
        const h = getClassifier({ backend: "binary", modelPath: "/nonexistent/tinyfer.tfer" });
        await assert.rejects(h.classifier, /not found|missing/);
        h.release();
        h.release(); // twice is harmless
        const u = getClassifier({ backend: "onnx" });
        await assert.rejects(u.classifier, /unknown backend 'onnx'/);
        assert.equal(loadedClassifiers(), 0);
    });
});
