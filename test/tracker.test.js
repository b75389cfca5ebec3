/**
 * Per-face tracks (src/runtime/tracker.ts) on their own, then in the tinyfer-emotion node of a
 * real Node-RED runtime: faces[i].track, per-track smoothing and emit-on-change per track, with
 * the bundled model on real FER2013 faces.
 */
"use strict";
const assert = require("node:assert/strict");
const fs = require("fs");
const path = require("path");
const sharp = require("sharp");
const helper = require("node-red-node-test-helper");
const emotionNode = require("../nodes/tinyfer-emotion.js");
const fx = require("./fixtures/faces");
const { FaceTracker, trackerOptions, DEFAULT_TRACKER } = require("../dist/runtime/tracker");
const { iou } = require("../dist/vision/detector");
const { BinaryEngine } = require("../dist/engine/binary");
const { LABELS } = require("../dist/model/labels");

helper.init(require.resolve("node-red"));

/** A face of side s at (x, y) with BlazeFace-like keypoints placed in its box. */
function face(x, y, s) {
    const p = (u, v) => ({ x: x + u * s, y: y + v * s });
    return {
        box: { x, y, w: s, h: s },
        landmarks: { rightEye: p(0.3, 0.35), leftEye: p(0.7, 0.35), nose: p(0.5, 0.55), mouth: p(0.5, 0.75), rightEar: p(0.05, 0.45), leftEar: p(0.95, 0.45) },
    };
}

describe("face tracker", function () {
    it("keeps the ids of two faces whose paths cross (boxes overlapping in the middle)", function () {
        const tr = new FaceTracker();
        const ids = { a: new Set(), b: new Set() };
        let overlap = 0;
        for (let t = 0; t <= 40; t++) {
            const a = face(100 + 10 * t, 200, 100); // left to right
            const b = face(500 - 10 * t, 230, 100); // right to left, a bit lower
            overlap = Math.max(overlap, iou(a.box, b.box));
            // the order of the faces changes too (as the detector sorts them by size)
            const faces = t % 2 ? [b, a] : [a, b];
            const { tracks, ended } = tr.update("cam", faces);
            ids.a.add(tracks[faces.indexOf(a)]);
            ids.b.add(tracks[faces.indexOf(b)]);
            assert.deepEqual(ended, []);
        }
        assert.ok(overlap > 0.5, `the boxes overlap heavily at the crossing (IoU ${overlap})`);
        assert.deepEqual([...ids.a], [1]);
        assert.deepEqual([...ids.b], [2]);
    });

    it("crossing faces without keypoints (box centres) keep their ids too", function () {
        const tr = new FaceTracker();
        for (let t = 0; t <= 30; t++) {
            const a = { box: face(100 + 12 * t, 200, 90).box };
            const b = { box: face(460 - 12 * t, 220, 90).box };
            assert.deepEqual(tr.update("k", [b, a]).tracks, [1, 2], `frame ${t}`); // b came first: 1
        }
    });

    it("a face missed for up to trackMaxMissed frames keeps its id; one frame more and it gets a new one", function () {
        for (const maxMissed of [0, 3, 5]) {
            const tr = new FaceTracker({ maxMissed });
            const other = face(500, 300, 80); // stays in view all along
            const walk = (t) => face(50 + 8 * t, 100, 100);
            let t = 0;
            for (; t < 5; t++) assert.deepEqual(tr.update("k", [walk(t), other]).tracks, [1, 2]);
            // hidden for maxMissed frames, moving on behind the occluder
            for (let k = 0; k < maxMissed; k++, t++) assert.deepEqual(tr.update("k", [other]), { tracks: [2], ended: [] });
            assert.deepEqual(tr.update("k", [walk(t), other]).tracks, [1, 2], `back after ${maxMissed} missed frames`);
            t++;
            // hidden for maxMissed + 1 frames: the track ends in the last of them
            for (let k = 0; k <= maxMissed; k++, t++) {
                assert.deepEqual(tr.update("k", [other]), { tracks: [2], ended: k === maxMissed ? [1] : [] });
            }
            assert.deepEqual(tr.update("k", [walk(t), other]).tracks, [3, 2], `a new id after ${maxMissed + 1} missed frames`);
        }
    });

    it("a new face gets the key's next id, ids are never reused and keys are independent", function () {
        const tr = new FaceTracker({ maxMissed: 0 });
        assert.deepEqual(tr.update("a", [face(0, 0, 100)]).tracks, [1]);
        assert.deepEqual(tr.update("a", [face(2, 0, 100), face(300, 0, 100)]).tracks, [1, 2]);
        assert.deepEqual(tr.update("a", [face(300, 200, 100)]), { tracks: [3], ended: [1, 2] }); // far from both
        assert.deepEqual(tr.update("a", [face(0, 0, 100)]), { tracks: [4], ended: [3] });
        assert.deepEqual(tr.update("b", [face(0, 0, 100)]).tracks, [1]);
        assert.deepEqual(tr.trackIds("a"), [4]);
        // a face that jumps farther than half its size, or changes size too much, is someone else
        const t2 = new FaceTracker();
        t2.update("k", [face(100, 100, 100)]);
        assert.deepEqual(t2.update("k", [face(160, 100, 100)]).tracks, [2]);
        assert.deepEqual(t2.update("k", [face(100, 100, 170)]).tracks, [3]);
        // a face without a box is not tracked
        assert.deepEqual(t2.update("k", [{ box: null }, face(160, 100, 100)]).tracks, [null, 2]);
    });

    it("the same frames give the same ids (deterministic)", function () {
        const run = () => {
            const tr = new FaceTracker();
            const out = [];
            for (let t = 0; t < 20; t++) {
                const faces = [face(100 + 7 * t, 100, 90), face(400 - 7 * t, 120, 95), face(250, 300 - 5 * t, 100)];
                if (t % 5 === 0) faces.splice(1, 1);
                out.push(tr.update("k", faces).tracks);
            }
            return out;
        };
        assert.deepEqual(run(), run());
    });

    it("memory is bounded: at most maxTracks live tracks per key and maxKeys keys", function () {
        const tr = new FaceTracker({ maxTracks: 4, maxKeys: 3, maxMissed: 100 });
        const row = (n, y) => Array.from({ length: n }, (_, i) => face(i * 150, y, 100));
        // 6 faces at once: 4 tracked, the rest untracked
        assert.deepEqual(tr.update("k", row(6, 0)).tracks, [1, 2, 3, 4, null, null]);
        // 6 new faces elsewhere: the tracks unseen the longest make room (each new face pushes one out)
        const r = tr.update("k", row(6, 400));
        assert.deepEqual(r.tracks, [5, 6, 7, 8, null, null]);
        assert.deepEqual(r.ended, [1, 2, 3, 4]);
        assert.deepEqual(tr.trackIds("k"), [5, 6, 7, 8]);
        for (let i = 0; i < 200; i++) tr.update("k", [face((i * 37) % 900, (i * 53) % 700, 100)]);
        assert.ok(tr.trackIds("k").length <= 4);
        for (const k of ["a", "b", "c", "d", "e"]) tr.update(k, row(1, 0));
        assert.equal(tr.size, 3);
        // the least recently seen keys went first; a forgotten key starts over
        assert.deepEqual(tr.trackIds("k"), []);
        assert.deepEqual(tr.update("c", row(1, 0)).tracks, [1]);
        assert.equal(tr.size, 3);
        tr.reset();
        assert.equal(tr.size, 0);
    });

    it("refuses bad options and bad input with clear errors", function () {
        assert.equal(trackerOptions().maxMissed, DEFAULT_TRACKER.maxMissed);
        assert.throws(() => new FaceTracker({ maxMissed: -1 }), (e) => e instanceof RangeError && /trackMaxMissed must be an integer 0\.\.1000, got -1/.test(e.message));
        assert.throws(() => new FaceTracker({ maxMissed: 2.5 }), RangeError);
        assert.throws(() => new FaceTracker({ maxTracks: 0 }), /maxTracks/);
        assert.throws(() => new FaceTracker({ maxKeys: 1.5 }), /maxKeys/);
        assert.throws(() => new FaceTracker({ minIou: 2 }), /minIou/);
        assert.throws(() => new FaceTracker({ maxSizeRatio: 1 }), /maxSizeRatio/);
        assert.throws(() => new FaceTracker().update("k", "faces"), TypeError);
    });
});

describe("tracks in the tinyfer-emotion node", function () {
    this.timeout(120000);
    let a;
    let b;
    let labelOf;

    before(async function () {
        // two real faces the bundled model labels differently
        const blob = fs.readFileSync(path.join(__dirname, "..", "models", "tinyfer-b1.tfer"));
        const candidates = [];
        for (const label of ["happy", "surprise", "angry", "sad"]) {
            for (const f of fx.listLabel("fer2013", label, "PublicTest").slice(0, 2)) {
                candidates.push(new Uint8Array(await sharp(f).greyscale().raw().toBuffer()));
            }
        }
        const engine = await BinaryEngine.load(blob);
        const scores = await engine.classify(candidates);
        engine.dispose();
        const top = scores.map((s) => LABELS[s.indexOf(Math.max(...s))]);
        const j = top.findIndex((t) => t !== top[0]);
        assert.ok(j > 0, "the model labels all candidate faces alike");
        a = candidates[0];
        b = candidates[j];
        labelOf = new Map([[a, top[0]], [b, top[j]]]);
    });

    afterEach(async function () {
        await helper.unload();
    });

    function collect(id) {
        const got = [];
        helper.getNode(id).on("input", (m) => got.push(m));
        return {
            got,
            async next(n, ms = 30000) {
                const t0 = Date.now();
                while (got.length < n) {
                    if (Date.now() - t0 > ms) throw new Error(`${id}: got ${got.length} messages, waited for ${n}`);
                    await new Promise((r) => setTimeout(r, 50));
                }
                return got.slice(0, n);
            },
        };
    }

    it("faces[i].track follows each person while the largest face changes; smoothing runs per track", async function () {
        await helper.load([emotionNode], [
            { id: "emo", type: "tinyfer-emotion", views: "1", smoothing: "ema", alpha: "0.5", wires: [["out"]] },
            { id: "out", type: "helper" },
        ]);
        const out = collect("out");
        const frames = 6;
        for (let t = 0; t < frames; t++) {
            // person A walks right and moves away (smaller), person B walks left; the larger face flips at t = 3
            const fa = { ...face(50 + 10 * t, 100, t < 3 ? 120 : 96), pixels: a };
            const fb = { ...face(400 - 10 * t, 120, 108), pixels: b };
            helper.getNode("emo").receive({ topic: "cam", faces: t % 2 ? [fb, fa] : [fa, fb], t });
        }
        const got = await out.next(frames);
        const trackOf = (m, px) => m.payload.faces[m.faces.findIndex((f) => f.pixels === px)];
        const ta = trackOf(got[0], a).track;
        const tb = trackOf(got[0], b).track;
        assert.deepEqual([ta, tb], [1, 2]);
        got.forEach((m, t) => {
            const fa = trackOf(m, a);
            const fb = trackOf(m, b);
            assert.equal(fa.track, ta, `frame ${t}: A keeps its track`);
            assert.equal(fb.track, tb, `frame ${t}: B keeps its track`);
            assert.deepEqual(m.faces.map((f) => f.track), m.payload.faces.map((f) => f.track), "msg.faces carry the tracks too");
            // each track sees only its own person: its smoothed emotion is that person's, seen t + 1 times
            assert.deepEqual(fa.smoothed, { emotion: labelOf.get(a), confidence: fa.confidence, changed: t === 0, frames: t + 1 });
            assert.deepEqual(fb.smoothed, { emotion: labelOf.get(b), confidence: fb.confidence, changed: t === 0, frames: t + 1 });
            assert.equal(m.payload.track, t < 3 ? ta : tb, "payload.track is the largest face's");
            assert.equal(m.payload.smoothing.frames, t + 1);
        });
        // the top level (the key's largest-face stream) mixed both people after the flip; the tracks did not
        const m3 = got[3];
        const fa3 = trackOf(m3, a);
        const fb3 = trackOf(m3, b);
        let ema = null;
        for (let t = 0; t <= 3; t++) {
            const big = t < 3 ? trackOf(got[t], a) : trackOf(got[t], b);
            ema = ema === null ? { ...big.scores } : Object.fromEntries(LABELS.map((l) => [l, 0.5 * big.scores[l] + 0.5 * ema[l]]));
        }
        for (const l of LABELS) assert.ok(Math.abs(m3.payload.scores[l] - ema[l]) < 2e-4, `${l}: top level ${m3.payload.scores[l]} vs ${ema[l]}`);
        assert.notEqual(m3.payload.scores[fb3.emotion], fb3.scores[fb3.emotion]);
        assert.equal(fa3.smoothed.emotion, labelOf.get(a));
    });

    it("emit-on-change per track: a message when any track's stable emotion changes, naming the tracks", async function () {
        await helper.load([emotionNode], [
            { id: "emo", type: "tinyfer-emotion", views: "1", emitOnChange: true, changeScope: "track", trackMaxMissed: "2", wires: [["out"]] },
            { id: "out", type: "helper" },
        ]);
        const out = collect("out");
        const send = (t, faces) => helper.getNode("emo").receive({ topic: "cam", faces, t });
        const A = (t, px) => ({ ...face(50 + 5 * t, 100, 110), pixels: px });
        const B = (t, px) => ({ ...face(400 - 5 * t, 120, 100), pixels: px });
        send(0, [A(0, a), B(0, b)]); // two new tracks: both changed
        send(1, [A(1, a), B(1, b)]); // nothing changed
        send(2, [A(2, b), B(2, b)]); // A's expression changes (the largest face's too)
        send(3, [A(3, b), B(3, b)]); // nothing changed
        send(4, [A(4, b), B(4, a)]); // B's changes while the largest face's stays: still sent
        send(5, [A(5, b)]); // B missing: nothing changed
        send(6, [A(6, b), B(6, a)]); // B back within trackMaxMissed: same track, same emotion: nothing
        send(7, [{ ...face(10, 10, 50), pixels: a }, A(7, b)]); // a new person: sent
        const got = await out.next(4);
        await new Promise((r) => setTimeout(r, 300));
        assert.deepEqual(out.got.map((m) => m.t), [0, 2, 4, 7]);
        assert.deepEqual(got.map((m) => m.payload.smoothing.changedTracks), [[1, 2], [1], [2], [3]]);
        assert.deepEqual(got.map((m) => m.payload.smoothing.changed), [true, true, false, false], "the largest-face stream's own flag");
        const f4 = got[2].payload.faces;
        assert.deepEqual(f4.map((f) => [f.track, f.smoothed.changed, f.smoothed.emotion]), [[1, false, labelOf.get(b)], [2, true, labelOf.get(a)]]);
        assert.deepEqual(got[3].payload.faces.map((f) => f.track), [3, 1]);
    });

    it("the help documents the tracks and the editor has the settings", function () {
        const html = fs.readFileSync(path.join(__dirname, "..", "nodes", "tinyfer-emotion.html"), "utf8");
        for (const s of ["faces[i].track", "changedTracks", "smoothed: {emotion, confidence, changed, frames}", "node-input-trackMaxMissed", "node-input-changeScope"]) {
            assert.ok(html.includes(s), s);
        }
    });
});
