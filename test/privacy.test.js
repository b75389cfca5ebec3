/**
 * Privacy output of tinyfer-frame (settings privacy / privacyBlocks / privacyMargin; msg.keepFaces,
 * msg.keepTracks): faces are hidden in every image the node sends, the 48x48 crops of hidden faces
 * do not leave it, and the emotion still comes from the clear crop (tinyfer-frame -> tinyfer-emotion
 * -> tinyfer-frame with privacy). Checked on real faces (FER2013 PublicTest and held-out JAFFE placed
 * in QVGA/VGA frames, bench/detect-frames.js) with the trained default model: crops of the hidden
 * output are classified no better than chance as the original (Cohen's kappa), their structure is
 * gone (SSIM, correlation of the fine detail), and a byte-level spy on every send finds neither the
 * original encoded frame nor any row of a face crop in any output.
 */
"use strict";
const assert = require("node:assert/strict");
const fs = require("fs");
const sharp = require("sharp");
const helper = require("node-red-node-test-helper");
const frameNode = require("../nodes/tinyfer-frame.js");
const emotionNode = require("../nodes/tinyfer-emotion.js");
const catchNode = require("@node-red/nodes/core/common/25-catch.js");
const fx = require("./fixtures/faces");
const { buildDetectFrames } = require("../bench/detect-frames");
const { FrameHandler } = require("../dist/runtime/frame-node");
const { decodeFrame } = require("../dist/vision/decode");
const { cropFace, landmarkSquare, faceSquare } = require("../dist/vision/crop");
const { obscureFaces, obscureRegion, coverRegion, privacyOptions, keptFaces, decodeUpright, DEFAULT_PRIVACY } = require("../dist/vision/privacy");
const { VisionError } = require("../dist/vision/errors");
const { DEFAULT_MODEL_BLOB } = require("../dist/engine/open");
const { BinaryEngine } = require("../dist/engine/binary");
const { seededRandom } = require("../dist/util/random");

helper.init(require.resolve("node-red"));
const NODES = [frameNode, emotionNode, catchNode];
const FACE = 48;

// ---- measures -------------------------------------------------------------------------------

/** Pearson correlation of two equal-length numeric arrays (0 when one is flat). */
function ncc(x, y) {
    const n = x.length;
    let mx = 0;
    let my = 0;
    for (let i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    mx /= n;
    my /= n;
    let sxy = 0;
    let sx = 0;
    let sy = 0;
    for (let i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sx += (x[i] - mx) ** 2;
        sy += (y[i] - my) ** 2;
    }
    return sx > 0 && sy > 0 ? sxy / Math.sqrt(sx * sy) : 0;
}

/** The 4-neighbour Laplacian of a w x h gray raster (its interior): the fine detail of a face. */
function laplacian(g, w, h) {
    const out = [];
    for (let y = 1; y < h - 1; y++) {
        for (let x = 1; x < w - 1; x++) {
            const i = y * w + x;
            out.push(4 * g[i] - g[i - 1] - g[i + 1] - g[i - w] - g[i + w]);
        }
    }
    return out;
}

/** Mean SSIM of two 48x48 crops over 8x8 windows (stride 4), the usual constants for 8-bit data. */
function ssim(x, y) {
    const W = 8;
    const C1 = (0.01 * 255) ** 2;
    const C2 = (0.03 * 255) ** 2;
    let s = 0;
    let n = 0;
    for (let by = 0; by + W <= FACE; by += 4) {
        for (let bx = 0; bx + W <= FACE; bx += 4) {
            let mx = 0;
            let my = 0;
            for (let j = 0; j < W; j++) for (let i = 0; i < W; i++) { const k = (by + j) * FACE + bx + i; mx += x[k]; my += y[k]; }
            mx /= W * W;
            my /= W * W;
            let vx = 0;
            let vy = 0;
            let cxy = 0;
            for (let j = 0; j < W; j++) {
                for (let i = 0; i < W; i++) {
                    const k = (by + j) * FACE + bx + i;
                    vx += (x[k] - mx) ** 2;
                    vy += (y[k] - my) ** 2;
                    cxy += (x[k] - mx) * (y[k] - my);
                }
            }
            vx /= W * W - 1;
            vy /= W * W - 1;
            cxy /= W * W - 1;
            s += ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2));
            n++;
        }
    }
    return s / n;
}

/** Agreement of two label lists: observed, expected by chance from their marginals, and Cohen's kappa. */
function kappa(a, b) {
    const n = a.length;
    let agree = 0;
    const ca = new Map();
    const cb = new Map();
    for (let i = 0; i < n; i++) {
        if (a[i] === b[i]) { agree++; }
        ca.set(a[i], (ca.get(a[i]) || 0) + 1);
        cb.set(b[i], (cb.get(b[i]) || 0) + 1);
    }
    let pe = 0;
    for (const [k, v] of ca) { pe += (v / n) * ((cb.get(k) || 0) / n); }
    const po = agree / n;
    return { po, pe, kappa: pe < 1 ? (po - pe) / (1 - pe) : 0 };
}

const argmax = (s) => s.indexOf(Math.max(...s));
const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;

/** Every Buffer / typed array / byte array anywhere in a value (msg), with its path. */
function byteArrays(v, at = "msg", out = [], seen = new Set()) {
    if (v === null || typeof v !== "object" || seen.has(v)) { return out; }
    seen.add(v);
    if (Buffer.isBuffer(v) || ArrayBuffer.isView(v)) {
        out.push({ at, bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength) });
        return out;
    }
    if (Array.isArray(v) && v.length >= FACE && v.every((n) => Number.isInteger(n) && n >= 0 && n <= 255)) {
        out.push({ at, bytes: Buffer.from(v) });
        return out;
    }
    for (const [k, x] of Object.entries(v)) { byteArrays(x, `${at}.${k}`, out, seen); }
    return out;
}

/** Rows of a 48x48 crop with detail (flat rows could occur anywhere by chance). */
function detailedRows(pixels) {
    const rows = [];
    for (let y = 0; y < FACE; y++) {
        const row = Buffer.from(pixels.subarray(y * FACE, (y + 1) * FACE));
        if (Math.max(...row) - Math.min(...row) > 24) { rows.push(row); }
    }
    return rows;
}

/** Gray of an upright RGB raster's region [x0, x1) x [y0, y1). */
function grayRegion(rgb, width, r) {
    const out = [];
    for (let y = r.y0; y < r.y1; y++) {
        for (let x = r.x0; x < r.x1; x++) {
            const p = (y * width + x) * 3;
            out.push((rgb[p] * 299 + rgb[p + 1] * 587 + rgb[p + 2] * 114) / 1000);
        }
    }
    return out;
}

/**
 * Assert that none of the messages sent carries the original: not its encoded bytes, no detailed
 * row of a clear face crop, and every image in them shows each hidden face without its detail
 * (correlation of the Laplacian with the original's, over the face box, <= 0.35).
 */
async function assertNothingClear(sent, original, clearFaces, hiddenIdx) {
    const orig = await decodeUpright(original, 1e8);
    const probes = [0.3, 0.5, 0.7].map((f) => original.subarray(Math.floor(original.length * f), Math.floor(original.length * f) + 64));
    const rows = hiddenIdx.flatMap((i) => detailedRows(clearFaces[i].pixels));
    assert.ok(rows.length > 10, `${rows.length} detailed crop rows to look for`);
    let images = 0;
    for (const m of sent) {
        for (const { at, bytes } of byteArrays(m)) {
            for (const p of probes) { assert.equal(bytes.indexOf(p), -1, `${at} holds bytes of the original encoded frame`); }
            for (const r of rows) { assert.equal(bytes.indexOf(r), -1, `${at} holds a row of a clear face crop`); }
            const meta = await sharp(bytes).metadata().catch(() => null);
            if (!meta || !meta.width) { continue; }
            images++;
            const out = await decodeUpright(bytes, 1e8);
            // the test frames are under the annotated output's 1280 px: every image has the frame's size
            assert.ok(out.width === orig.width && out.height === orig.height, `${at}: ${out.width}x${out.height} image for a ${orig.width}x${orig.height} frame`);
            for (const i of hiddenIdx) {
                const b = clearFaces[i].box;
                const r = { x0: b.x, y0: b.y, x1: b.x + b.w, y1: b.y + b.h };
                const c = ncc(laplacian(grayRegion(orig.rgb, orig.width, r), b.w, b.h), laplacian(grayRegion(out.rgb, out.width, r), b.w, b.h));
                assert.ok(c <= 0.35, `${at}: the detail of face ${i} correlates ${c.toFixed(3)} with the original's`);
            }
        }
    }
    return images;
}

/** A 640x480 JPEG with three JAFFE faces side by side (distinct people). */
async function threeFaces() {
    const files = [fx.listLabel("jaffe", "happy")[0], fx.listLabel("jaffe", "surprise")[3], fx.listLabel("jaffe", "sad")[6]];
    const layers = [];
    for (let i = 0; i < files.length; i++) {
        layers.push({ input: await sharp(files[i]).resize(190, 190).toColourspace("srgb").removeAlpha().png().toBuffer(), left: 15 + i * 210, top: 120 + (i % 2) * 60 });
    }
    return sharp({ create: { width: 640, height: 480, channels: 3, background: "#5a6a78" } }).composite(layers).jpeg({ quality: 90 }).toBuffer();
}

// ---- the library --------------------------------------------------------------------------------

describe("privacy output: hiding faces (library)", function () {
    it("the hidden region is a function of its cell means alone: moving pixels within a cell changes nothing; pixelate cells are flat", function () {
        const w = 120;
        const h = 100;
        const rnd = seededRandom(7);
        const rgb = Buffer.alloc(w * h * 3);
        for (let i = 0; i < rgb.length; i++) { rgb[i] = Math.floor(rnd() * 256); }
        const box = { x: 30, y: 30, w: 48, h: 48 };
        for (const mode of ["pixelate", "blur"]) {
            const opts = privacyOptions({ mode, blocks: 6, margin: 0.3 });
            const a = obscureFaces(rgb, w, h, 1, [box], opts);
            assert.notDeepEqual(a, rgb);
            // swap two pixels inside the first cell of the covered region: same cell means, same output
            const region = coverRegion(box, opts.margin, w, h);
            const moved = Buffer.from(rgb);
            const p = (region.y0 * w + region.x0) * 3;
            const q = ((region.y0 + 2) * w + region.x0 + 3) * 3;
            for (let c = 0; c < 3; c++) { [moved[p + c], moved[q + c]] = [moved[q + c], moved[p + c]]; }
            assert.notDeepEqual(moved, rgb);
            assert.deepEqual(obscureFaces(moved, w, h, 1, [box], opts), a, `${mode}: the output depends only on the cell means`);
            // outside the region nothing changed
            for (let y = 0; y < h; y++) {
                for (let x = 0; x < w; x++) {
                    if (x >= region.x0 && x < region.x1 && y >= region.y0 && y < region.y1) { continue; }
                    const i = (y * w + x) * 3;
                    assert.ok(a[i] === rgb[i] && a[i + 1] === rgb[i + 1] && a[i + 2] === rgb[i + 2], `${mode}: pixel ${x},${y} outside the region changed`);
                }
            }
            const colours = new Set();
            for (let y = region.y0; y < region.y1; y++) {
                for (let x = region.x0; x < region.x1; x++) { const i = (y * w + x) * 3; colours.add(a.readUIntBE(i, 3)); }
            }
            const cells = Math.round((region.x1 - region.x0) / 8) * Math.round((region.y1 - region.y0) / 8);
            if (mode === "pixelate") { assert.ok(colours.size <= cells, `${colours.size} colours in ${cells} cells`); }
        }
        // the region: the box grown by the margin, 1.5x above it, clamped to the raster
        assert.deepEqual(coverRegion({ x: 30, y: 30, w: 40, h: 40 }, 0.25, w, h), { x0: 20, y0: 15, x1: 80, y1: 80 });
        assert.deepEqual(coverRegion({ x: 0, y: 0, w: 40, h: 40 }, 0.5, 50, 50), { x0: 0, y0: 0, x1: 50, y1: 50 });
        assert.throws(() => obscureRegion(Buffer.alloc(10), 4, 4, { x0: 0, y0: 0, x1: 2, y1: 2 }, 1, "blur"), /expected 48/);
    });

    it("settings: mode none/blur/pixelate, blocks an integer 2..8, margin 0..1; bad ones are RangeErrors that name the setting", function () {
        assert.deepEqual(privacyOptions(), DEFAULT_PRIVACY);
        assert.equal(DEFAULT_PRIVACY.mode, "none");
        const bad = [
            [{ privacy: "smudge" }, /^privacy must be one of none, blur, pixelate, got "smudge"$/],
            [{ privacy: "blur", privacyBlocks: "1" }, /^privacyBlocks must be an integer 2\.\.8, got 1$/],
            [{ privacy: "blur", privacyBlocks: "4.5" }, /^privacyBlocks must be an integer 2\.\.8, got 4\.5$/],
            [{ privacy: "blur", privacyBlocks: "many" }, /^privacyBlocks must be a number, got 'many'$/],
            [{ privacy: "pixelate", privacyMargin: "-0.1" }, /^privacyMargin must be in 0\.\.1, got -0\.1$/],
        ];
        for (const [config, re] of bad) {
            assert.throws(() => new FrameHandler(config), (e) => e instanceof RangeError && re.test(e.message), JSON.stringify(config));
        }
        const h = new FrameHandler({ privacy: "pixelate", privacyBlocks: "4", privacyMargin: "0.5" });
        assert.deepEqual(h.privacy, { mode: "pixelate", blocks: 4, margin: 0.5 });
        h.close();
    });

    it("msg.keepFaces takes face indices and msg.keepTracks track ids; unknown ones keep nothing, wrong types are E_KEEP_FACES", function () {
        const faces = [{ track: 7 }, { track: "b" }, {}];
        assert.deepEqual([...keptFaces(faces, undefined, undefined)], []);
        assert.deepEqual([...keptFaces(faces, [2, 0, 9], null)].sort(), [0, 2]);
        assert.deepEqual([...keptFaces(faces, null, ["7", "b", "zz"])].sort(), [0, 1]);
        assert.deepEqual([...keptFaces(faces, [2], [7])].sort(), [0, 2]);
        for (const [k, t, re] of [[3, null, /msg\.keepFaces must be an array/], [[1.5], null, /keepFaces\[0\] must be a face index/],
            [[-1], null, /keepFaces\[0\]/], [["0"], null, /keepFaces\[0\]/], [null, "7", /msg\.keepTracks must be an array/], [null, [{}], /keepTracks\[0\] must be a track id/]]) {
            assert.throws(() => keptFaces(faces, k, t), (e) => e instanceof VisionError && e.code === "E_KEEP_FACES" && re.test(e.message), JSON.stringify([k, t]));
        }
    });
});

// ---- real faces -------------------------------------------------------------------------------------

describe("privacy output on real faces (FER2013 + JAFFE in frames, the default model)", function () {
    this.timeout(600000);
    let frames;
    let engine;

    before(async function () {
        fx.requireData(this, "fer2013", "PublicTest");
        frames = [];
        for (const f of await buildDetectFrames({ perSource: 16, blank: 0, noise: 0 })) {
            frames.push(await sharp(Buffer.from(f.gray), { raw: { width: f.width, height: f.height, channels: 1 } }).jpeg({ quality: 90 }).toBuffer());
        }
        engine = await BinaryEngine.load(fs.readFileSync(DEFAULT_MODEL_BLOB));
    });
    after(function () {
        if (engine) { engine.dispose(); }
    });

    for (const mode of ["pixelate", "blur"]) {
        it(`${mode} (default strength): crops of the output are classified as the original no better than chance, and their structure is gone`, async function () {
            const clear = new FrameHandler({ output: "original", filePaths: false });
            const hide = new FrameHandler({ output: "original", filePaths: false, privacy: mode });
            const orig = [];
            const hidden = [];
            const control = []; // the same crop of the clear frame re-encoded: what a match looks like
            let faceless = 0;
            try {
                for (const jpeg of frames) {
                    const a = await clear.handle({ payload: jpeg });
                    const b = await hide.handle({ payload: jpeg });
                    assert.equal(b.payload, b.image);
                    assert.equal((await sharp(b.image).metadata()).format, "jpeg");
                    assert.equal(b.faces.length, a.faces.length, "the same faces are found");
                    if (!a.faces.length) { faceless++; continue; }
                    const out = await decodeFrame(b.image);
                    const ref = await decodeFrame(await sharp(jpeg).jpeg({ quality: 80 }).toBuffer());
                    for (let i = 0; i < a.faces.length; i++) {
                        const f = a.faces[i];
                        assert.equal(b.faces[i].pixels, undefined, "a hidden face's crop does not leave the node");
                        assert.equal(b.faces[i].obscured, true);
                        assert.deepEqual(b.faces[i].box, f.box);
                        const sq = landmarkSquare(f.landmarks, 0, f.box) || faceSquare(f.box, 0);
                        orig.push(f.pixels);
                        hidden.push(cropFace(out.rgb, out.workWidth, out.workHeight, sq));
                        control.push(cropFace(ref.rgb, ref.workWidth, ref.workHeight, sq));
                    }
                    assert.deepEqual(b.frame.privacy, { mode, hidden: a.faces.length, kept: [] });
                }
            } finally {
                clear.close();
                hide.close();
            }
            assert.ok(orig.length >= 48, `${orig.length} faces (${faceless} of ${frames.length} frames without one)`);
            const [so, sh, sc] = [await engine.classify(orig), await engine.classify(hidden), await engine.classify(control)];
            const lo = so.map(argmax);
            const kh = kappa(lo, sh.map(argmax));
            const kc = kappa(lo, sc.map(argmax));
            // the scores as an embedding: a face's hidden crop is no closer to its own original than to another face's
            const own = mean(so.map((s, i) => ncc(s, sh[i])));
            const other = mean(so.map((s, i) => ncc(s, sh[(i + 7) % sh.length])));
            const ownControl = mean(so.map((s, i) => ncc(s, sc[i])));
            const ss = orig.map((x, i) => ssim(x, hidden[i]));
            const detail = orig.map((x, i) => ncc(laplacian(x, FACE, FACE), laplacian(hidden[i], FACE, FACE)));
            const hf = orig.map((x, i) => laplacian(hidden[i], FACE, FACE).reduce((a, v) => a + v * v, 0) / laplacian(x, FACE, FACE).reduce((a, v) => a + v * v, 0));
            const report = `${mode}, ${orig.length} faces: kappa hidden ${kh.kappa.toFixed(3)} (agree ${kh.po.toFixed(2)}, chance ${kh.pe.toFixed(2)}), control ${kc.kappa.toFixed(3)}; ` +
                `score correlation own ${own.toFixed(3)} vs other face ${other.toFixed(3)} (control ${ownControl.toFixed(3)}); ` +
                `SSIM mean ${mean(ss).toFixed(3)} max ${Math.max(...ss).toFixed(3)}; detail correlation mean ${mean(detail).toFixed(3)} max ${Math.max(...detail).toFixed(3)}; ` +
                `high-frequency energy left mean ${mean(hf).toFixed(3)}`;
            console.log(`      ${report}`);
            assert.ok(kc.kappa >= 0.6, `control: the clear crops match (${report})`);
            assert.ok(kh.kappa <= 0.2, `hidden crops agree with the original emotion no more than chance (${report})`);
            assert.ok(ownControl - other >= 0.3 && own - other <= 0.1, `the scores of a hidden crop do not single out its own face (${report})`);
            assert.ok(Math.max(...ss) <= 0.75 && mean(ss) <= 0.6, `SSIM of hidden vs original crops (${report})`);
            // (pixelate keeps steps at the cell edges, which may line up with a face's outline: a looser bound on the worst face)
            assert.ok(mean(detail) <= 0.12 && Math.max(...detail) <= (mode === "pixelate" ? 0.5 : 0.35), `the fine detail is gone (${report})`);
            if (mode === "blur") { assert.ok(mean(hf) <= 0.06, `blur leaves almost no high-frequency energy (${report})`); }
        });
    }
});

// ---- in Node-RED ------------------------------------------------------------------------------------

describe("privacy output in Node-RED", function () {
    this.timeout(120000);
    let frame3;
    let clear3;

    before(async function () {
        fx.requireData(this, "jaffe", "happy");
        frame3 = await threeFaces();
        const h = new FrameHandler({ filePaths: false });
        clear3 = (await h.handle({ payload: frame3 })).faces;
        h.close();
        assert.equal(clear3.length, 3, "the test frame's three faces are found");
        await new Promise((r) => helper.startServer(r));
    });
    after(async function () {
        await new Promise((r) => helper.stopServer(r));
    });
    afterEach(async function () {
        await helper.unload();
    });

    function onTab(nodes) {
        return [
            { id: "tab", type: "tab", label: "privacy test" },
            ...nodes.map((n) => ({ z: "tab", x: 100, y: 100, ...n })),
            { id: "catch", type: "catch", z: "tab", x: 100, y: 200, scope: null, wires: [["caught"]] },
            { id: "caught", type: "helper", z: "tab", x: 300, y: 200 },
        ];
    }

    /** Record every message node `id` sends (its send() spied), and resolve when `n` were sent. */
    function spySends(id) {
        const node = helper.getNode(id);
        const sent = [];
        const send = node.send.bind(node);
        node.send = (m) => { sent.push({ ...m }); send(m); }; // the top level as sent (a node downstream may replace msg.payload)
        return {
            sent,
            async next(n, ms = 60000) {
                const t0 = Date.now();
                while (sent.length < n) {
                    if (Date.now() - t0 > ms) { throw new Error(`${id}: sent ${sent.length}, waited for ${n}`); }
                    await new Promise((r) => setTimeout(r, 50));
                }
                return sent.slice(0, n);
            },
        };
    }

    it("no output carries the original: every send in faces, original and annotated mode, the frame as a Buffer, a data URL and fleet chunks", async function () {
        const { splitChunks } = require("../dist/fleet/protocol");
        for (const mode of ["pixelate", "blur"]) {
            for (const output of ["faces", "original", "annotated"]) {
                await helper.load(NODES, onTab([{ id: "frame", type: "tinyfer-frame", output, privacy: mode, wires: [["out"]] }, { id: "out", type: "helper" }]));
                const spy = spySends("frame");
                const node = helper.getNode("frame");
                node.receive({ payload: frame3 });
                node.receive({ payload: `data:image/jpeg;base64,${frame3.toString("base64")}` });
                for (const c of splitChunks(1, frame3, 16 * 1024)) {
                    node.receive({ topic: "tinyfer/cam1/frame/chunk", payload: c });
                }
                const sent = await spy.next(3);
                for (const m of sent) {
                    assert.equal(m.faces.length, 3);
                    assert.ok(m.faces.every((f) => f.pixels === undefined && f.obscured === true), `${mode}/${output}: no crop leaves the node`);
                    assert.equal((await sharp(m.image).metadata()).format, "jpeg");
                    assert.deepEqual(m.frame.privacy, { mode, hidden: 3, kept: [] });
                }
                const images = await assertNothingClear(sent, frame3, clear3, [0, 1, 2]);
                // msg.image, and msg.payload when it is another image (in 'original' mode it is msg.image itself)
                assert.equal(images, output === "annotated" ? 6 : 3, `${mode}/${output}: images checked`);
                if (output === "original") { assert.ok(sent.every((m) => m.payload === m.image)); }
                await helper.unload();
            }
        }
    });

    it("msg.keepFaces leaves the chosen faces clear (with their crops) and hides the rest", async function () {
        await helper.load(NODES, onTab([{ id: "frame", type: "tinyfer-frame", output: "original", privacy: "pixelate", wires: [["out"]] }, { id: "out", type: "helper" }]));
        const spy = spySends("frame");
        helper.getNode("frame").receive({ payload: frame3, keepFaces: [1] });
        const [m] = await spy.next(1);
        assert.deepEqual(m.frame.privacy, { mode: "pixelate", hidden: 2, kept: [1] });
        assert.deepEqual(Array.from(m.faces[1].pixels), Array.from(clear3[1].pixels), "the kept face keeps its crop");
        assert.equal(m.faces[1].obscured, undefined);
        assert.ok(m.faces[0].pixels === undefined && m.faces[2].pixels === undefined);
        await assertNothingClear([{ payload: m.payload }], frame3, clear3, [0, 2]);
        // the kept face is in the clear: its detail matches the original's
        const orig = await decodeUpright(frame3, 1e8);
        const out = await decodeUpright(m.payload, 1e8);
        const b = clear3[1].box;
        const r = { x0: b.x, y0: b.y, x1: b.x + b.w, y1: b.y + b.h };
        const c = ncc(laplacian(grayRegion(orig.rgb, orig.width, r), b.w, b.h), laplacian(grayRegion(out.rgb, out.width, r), b.w, b.h));
        assert.ok(c > 0.8, `kept face detail correlation ${c.toFixed(3)}`);
    });

    it("a frame over the 1280 px working size keeps its full size in msg.image with the faces hidden where the boxes say; a whole-image face is hidden whole", async function () {
        await helper.load(NODES, onTab([{ id: "frame", type: "tinyfer-frame", output: "original", privacy: "blur", wires: [["out"]] }, { id: "out", type: "helper" }]));
        const spy = spySends("frame");
        const big = await sharp(frame3).resize(2000, 1500).jpeg({ quality: 90 }).toBuffer();
        const h = new FrameHandler({ filePaths: false });
        const clearBig = (await h.handle({ payload: big })).faces;
        h.close();
        assert.equal(clearBig.length, 3);
        helper.getNode("frame").receive({ payload: big });
        const [m] = await spy.next(1);
        const meta = await sharp(m.image).metadata();
        assert.deepEqual([meta.width, meta.height], [2000, 1500]);
        assert.deepEqual(m.faces.map((f) => f.box), clearBig.map((f) => f.box));
        await assertNothingClear([m], big, clearBig, [0, 1, 2]);
        const orig = await decodeUpright(big, 1e8);
        const out = await decodeUpright(m.image, 1e8);
        const b = clearBig[0].box;
        const outside = { x0: 0, y0: 0, x1: 200, y1: 200 }; // background, away from the faces
        const go = grayRegion(orig.rgb, orig.width, outside);
        const gd = grayRegion(out.rgb, out.width, outside);
        const diff = mean(go.map((v, i) => Math.abs(v - gd[i])));
        assert.ok(diff < 3, `the background away from the faces is unchanged (mean difference ${diff.toFixed(2)})`);
        assert.ok(b.w > 250, `the face box is in full-size pixels (${b.w})`);
        // a whole-image face (FER2013 48x48): the whole image is hidden
        const [ferFile] = fx.listLabel("fer2013", "happy", "PublicTest");
        const fer = fs.readFileSync(ferFile);
        spy.sent.length = 0;
        helper.getNode("frame").receive({ payload: fer });
        const [w] = await spy.next(1);
        assert.equal(w.frame.mode, "whole");
        const hw = new FrameHandler({ filePaths: false });
        const clearWhole = (await hw.handle({ payload: fer })).faces;
        hw.close();
        await assertNothingClear([w], fer, clearWhole, [0]);
    });

    it("frame -> emotion -> frame(privacy): the emotion comes from the clear crop, the frame that goes on is hidden; msg.keepTracks keeps the face of a tinyfer-emotion track", async function () {
        {
            const model = DEFAULT_MODEL_BLOB;
            await helper.load(NODES, onTab([
                { id: "frame", type: "tinyfer-frame", wires: [["emo"]] },
                { id: "emo", type: "tinyfer-emotion", model, views: "1", wires: [["hide"]] },
                { id: "hide", type: "tinyfer-frame", output: "annotated", privacy: "blur", wires: [["out"]] },
                { id: "out", type: "helper" },
            ]));
            const emo = spySends("emo");
            const spy = spySends("hide");
            helper.getNode("frame").receive({ payload: frame3 });
            const [m] = await spy.next(1);
            const engine = await BinaryEngine.load(fs.readFileSync(DEFAULT_MODEL_BLOB));
            const want = (await engine.classify(clear3.map((f) => f.pixels))).map(argmax);
            engine.dispose();
            const { LABELS } = require("../dist/model/labels");
            assert.deepEqual(m.faces.map((f) => f.emotion), want.map((k) => LABELS[k]), "emotions of the clear crops");
            assert.ok(m.faces.every((f) => f.pixels === undefined && f.obscured === true));
            assert.equal(typeof emo.sent[0].payload.emotion, "string");
            await assertNothingClear([{ payload: m.payload, image: m.image, faces: m.faces }], frame3, clear3, [0, 1, 2]);
            // tinyfer-emotion's track ids: a later frame of the same stream keeps the face whose track the flow names
            const ids = m.faces.map((f) => f.track);
            assert.ok(ids.every((t) => Number.isInteger(t)) && new Set(ids).size === 3, `track ids ${JSON.stringify(ids)}`);
            helper.getNode("frame").receive({ payload: frame3, keepTracks: [ids[1]] });
            const [m2] = await spy.next(2).then((x) => x.slice(1));
            assert.deepEqual(m2.faces.map((f) => f.track), ids, "the same tracks on the next frame");
            assert.deepEqual(m2.frame.privacy, { mode: "blur", hidden: 2, kept: [1] });
            assert.ok(m2.faces[1].pixels instanceof Uint8Array && m2.faces[0].pixels === undefined && m2.faces[2].pixels === undefined);
            await assertNothingClear([{ payload: m2.payload, image: m2.image, faces: m2.faces }], frame3, clear3, [0, 2]);

            // faces that carry a track id (another node's, or a tracker's) are kept by msg.keepTracks
            await helper.unload();
            await helper.load(NODES, onTab([{ id: "hide", type: "tinyfer-frame", output: "original", privacy: "pixelate", wires: [["out"]] }, { id: "out", type: "helper" }]));
            const spy2 = spySends("hide");
            const faces = clear3.map((f, i) => ({ ...f, pixels: Uint8Array.from(f.pixels), track: `t${i}` }));
            helper.getNode("hide").receive({ payload: { emotion: "happy" }, image: frame3, faces, keepTracks: ["t2"] });
            const [k] = await spy2.next(1);
            assert.deepEqual(k.frame.privacy, { mode: "pixelate", hidden: 2, kept: [2] });
            assert.ok(k.faces[2].pixels instanceof Uint8Array && k.faces[0].pixels === undefined);
            await assertNothingClear([k], frame3, clear3, [0, 1]);
        }
    });

    it("with privacy on, a failure reaches the catch node without the image, bad msg.keepFaces is a clear error, and a hidden face sent to tinyfer-emotion says why it has no pixels", async function () {
        await helper.load(NODES, onTab([
            { id: "frame", type: "tinyfer-frame", privacy: "pixelate", wires: [["emo"]] },
            { id: "emo", type: "tinyfer-emotion", model: DEFAULT_MODEL_BLOB, views: "1", wires: [["out"]] },
            { id: "out", type: "helper" },
        ]));
        const caught = [];
        helper.getNode("caught").on("input", (m) => caught.push(m));
        const node = helper.getNode("frame");
        node.receive({ payload: frame3.subarray(0, frame3.length >> 1), image: frame3 });
        node.receive({ payload: frame3, keepFaces: "all" });
        node.receive({ payload: frame3 });
        const t0 = Date.now();
        while (caught.length < 3 && Date.now() - t0 < 60000) { await new Promise((r) => setTimeout(r, 50)); }
        assert.equal(caught.length, 3);
        assert.match(caught[0].error.message, /truncated or damaged/);
        assert.match(caught[1].error.message, /msg\.keepFaces must be an array of face indices/);
        assert.match(caught[2].error.message, /hidden by a tinyfer-frame node's privacy output/);
        assert.equal(caught[2].error.source.id, "emo");
        for (const m of caught.slice(0, 2)) {
            assert.equal(m.payload, undefined, "the failed frame is not passed on");
            assert.equal(m.image, undefined);
            assert.equal(byteArrays(m).length, 0);
        }
    });
});
