/**
 * The vision pipeline on real faces and on broken input: decode, detect, crop, annotate.
 * Runs against the compiled dist/ (npm run build first).
 */
"use strict";
const assert = require("node:assert/strict");
const fs = require("fs");
const os = require("os");
const path = require("path");
const sharp = require("sharp");
const fx = require("./fixtures/faces");

const { decodeFrame, readImageInput, DEFAULT_DECODE } = require("../dist/vision/decode");
const { FaceDetector, DEFAULT_DETECT, DEFAULT_DETECTOR_RUNTIME } = require("../dist/vision/detector");
const { WorkerDetector } = require("../dist/vision/worker-detector");
const bf = require("../dist/vision/blazeface");
const { faceSquare, landmarkSquare, cropGray, cropFace, rgbToGray, FER_FRAMING } = require("../dist/vision/crop");
const { processFrame, frameOptions, DEFAULT_FRAME } = require("../dist/vision/pipeline");
const { annotate, overlaySvg, caption } = require("../dist/vision/annotate");
const { VisionError } = require("../dist/vision/errors");

async function rejectsWith(promise, code, pattern) {
    await assert.rejects(promise, (e) => {
        assert.ok(e instanceof VisionError, `expected a VisionError, got ${e && e.stack}`);
        assert.equal(e.code, code, e.message);
        if (pattern) { assert.match(e.message, pattern); }
        return true;
    });
}

describe("vision: decode", function () {
    let jaffe;
    before(function () {
        jaffe = path.join(fx.requireData(this, "jaffe", "happy"), "KA.HA1.29.tiff");
    });

    it("decodes JPEG, PNG, WebP and TIFF to the same upright RGB raster size", async function () {
        const tiff = fs.readFileSync(jaffe);
        const encoded = {
            tiff,
            jpeg: await sharp(tiff).jpeg().toBuffer(),
            png: await sharp(tiff).png().toBuffer(),
            webp: await sharp(tiff).webp().toBuffer(),
        };
        for (const [format, bytes] of Object.entries(encoded)) {
            const f = await decodeFrame(bytes);
            assert.equal(f.format, format);
            assert.equal(f.width, 256);
            assert.equal(f.height, 256);
            assert.equal(f.rgb.length, 256 * 256 * 3);
            assert.equal(f.scale, 1);
            assert.equal(f.source, bytes);
        }
    });

    it("honours EXIF orientation (a 6 = 90 degree clockwise JPEG comes out upright)", async function () {
        // 60x40 image: left half black, right half white. Orientation 6 means "rotate 90 cw to view".
        const raw = Buffer.alloc(60 * 40 * 3);
        for (let y = 0; y < 40; y++) {
            for (let x = 30; x < 60; x++) { raw.fill(255, (y * 60 + x) * 3, (y * 60 + x) * 3 + 3); }
        }
        const jpeg = await sharp(raw, { raw: { width: 60, height: 40, channels: 3 } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
        const f = await decodeFrame(jpeg);
        assert.equal(f.width, 40);
        assert.equal(f.height, 60);
        assert.equal(f.workWidth, 40);
        // rotated 90 cw: the stored left (black) half is now on top, the white half at the bottom
        const px = (x, y) => f.rgb[(y * f.workWidth + x) * 3];
        assert.ok(px(20, 5) < 40, `top should be dark, got ${px(20, 5)}`);
        assert.ok(px(20, 55) > 215, `bottom should be light, got ${px(20, 55)}`);
    });

    it("downscales a large frame to workMaxSide and reports the scale", async function () {
        const big = await sharp({ create: { width: 3000, height: 2000, channels: 3, background: "#808080" } }).jpeg().toBuffer();
        const f = await decodeFrame(big);
        assert.equal(f.width, 3000);
        assert.equal(f.workWidth, 1280);
        assert.equal(f.workHeight, 853);
        assert.ok(Math.abs(f.scale - 1280 / 3000) < 1e-9);
        assert.equal(f.height, 2000);
        // stored sideways with EXIF orientation 6: the upright original is 2000 x 3000
        const side = await sharp({ create: { width: 3000, height: 2000, channels: 3, background: "#808080" } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
        const u = await decodeFrame(side);
        assert.deepEqual([u.width, u.height, u.workWidth, u.workHeight], [2000, 3000, 853, 1280]);
        assert.ok(Math.abs(u.scale - 853 / 2000) < 1e-9);
        // exactly workMaxSide: kept as it is
        const edge = await decodeFrame(await sharp({ create: { width: 1280, height: 720, channels: 3, background: "#808080" } }).png().toBuffer());
        assert.deepEqual([edge.width, edge.height, edge.workWidth, edge.workHeight, edge.scale], [1280, 720, 1280, 720, 1]);
    });

    it("knows the four formats from their first bytes", function () {
        const { sniffFormat } = require("../dist/vision/decode");
        assert.equal(sniffFormat(Buffer.from([0xff, 0xd8, 0xff, 0xe0])), "jpeg");
        assert.equal(sniffFormat(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), "png");
        assert.equal(sniffFormat(Buffer.from("RIFF\0\0\0\0WEBPVP8 ", "latin1")), "webp");
        assert.equal(sniffFormat(Buffer.from("RIFF\0\0\0\0WAVEfmt ", "latin1")), null);
        assert.equal(sniffFormat(Buffer.from([0x49, 0x49, 0x2a, 0])), "tiff");
        assert.equal(sniffFormat(Buffer.from([0x4d, 0x4d, 0, 0x2a])), "tiff");
        assert.equal(sniffFormat(Buffer.from("GIF89a")), null);
        assert.equal(sniffFormat(Buffer.from([0xff, 0xd8])), null);
    });

    it("reads a file path and a data URL", async function () {
        const fromPath = await readImageInput(jaffe);
        assert.deepEqual(fromPath, fs.readFileSync(jaffe));
        const url = "data:image/tiff;base64," + fromPath.toString("base64");
        assert.deepEqual(await readImageInput(url), fromPath);
        const u8 = new Uint8Array(fromPath);
        assert.deepEqual(await readImageInput(u8), fromPath);
    });

    it("rejects an empty buffer", async function () {
        await rejectsWith(readImageInput(Buffer.alloc(0)), "E_EMPTY", /empty/);
        await rejectsWith(decodeFrame(Buffer.alloc(0)), "E_EMPTY");
    });

    it("rejects a truncated JPEG", async function () {
        const jpeg = await sharp(jaffe).jpeg().toBuffer();
        for (const cut of [jpeg.length >> 1, 200, 4]) {
            await rejectsWith(decodeFrame(jpeg.subarray(0, cut)), "E_DECODE", /truncated or damaged/);
        }
    });

    it("rejects a non-image buffer and formats other than JPEG/PNG/WebP/TIFF", async function () {
        await rejectsWith(decodeFrame(Buffer.from("this is a text file, not a picture")), "E_FORMAT", /JPEG, PNG, WebP or TIFF/);
        const gif = await sharp(jaffe).gif().toBuffer();
        await rejectsWith(decodeFrame(gif), "E_FORMAT", /'gif'/);
        const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
        await rejectsWith(decodeFrame(svg), "E_FORMAT", /'svg'/);
    });

    it("rejects wrong input types", async function () {
        for (const bad of [42, null, undefined, { a: 1 }, [1, 2, 3], true]) {
            await rejectsWith(readImageInput(bad), "E_INPUT_TYPE", /expected an image Buffer/);
        }
        await rejectsWith(readImageInput("data:image/png,notbase64"), "E_INPUT_TYPE", /base64/);
        await rejectsWith(readImageInput(path.join(os.tmpdir(), "tinyfer-no-such-file.jpg")), "E_FILE", /cannot read/);
        await rejectsWith(readImageInput(os.tmpdir()), "E_FILE", /not a regular file/);
    });

    it("rejects a 50 MB image by its byte size before decoding", async function () {
        const head = await sharp(jaffe).jpeg().toBuffer();
        const huge = Buffer.concat([head, Buffer.alloc(50 * 1024 * 1024 - head.length)]);
        await rejectsWith(readImageInput(huge), "E_TOO_LARGE", /50\.0 MB, over the 20\.0 MB limit/);
        await rejectsWith(decodeFrame(huge), "E_TOO_LARGE");
        await rejectsWith(readImageInput("data:image/jpeg;base64," + huge.toString("base64")), "E_TOO_LARGE");
        const file = path.join(os.tmpdir(), `tinyfer-huge-${process.pid}.jpg`);
        fs.writeFileSync(file, huge);
        try {
            await rejectsWith(readImageInput(file), "E_TOO_LARGE");
        } finally {
            fs.unlinkSync(file);
        }
    });

    it("rejects a pixel bomb from its header (60000 x 60000 PNG)", async function () {
        await rejectsWith(decodeFrame(fx.pngHeaderOnly(60000, 60000)), "E_TOO_LARGE", /60000x60000 = 3600\.0 MP, over the 40\.0 MP limit \(maxPixels\)/);
        const small = await sharp(jaffe).png().toBuffer();
        await rejectsWith(decodeFrame(small, { ...DEFAULT_DECODE, maxPixels: 10000 }), "E_TOO_LARGE", /256x256 = 65536 pixels, over the 10000 pixels limit \(maxPixels\)/);
    });
});

describe("vision: crop", function () {
    it("centres a square grown by the margin on the box", function () {
        assert.deepEqual(faceSquare({ x: 10, y: 20, w: 100, h: 80 }, 0), { x: 10, y: 10, side: 100 });
        assert.deepEqual(faceSquare({ x: 10, y: 20, w: 100, h: 80 }, 0.1), { x: 0, y: 0, side: 120 });
        assert.throws(() => faceSquare({ x: 0, y: 0, w: 1, h: 1 }, -0.5), /margin/);
    });

    it("frames a face on its eyes and mouth the way FER2013 faces are framed", function () {
        // landmarks of an ideal FER face of side 96 placed at (100, 50)
        const side = 96;
        const eyeY = 50 + (FER_FRAMING.centreY - FER_FRAMING.eyeMouth / 2) * side;
        const cx = 100 + FER_FRAMING.centreX * side;
        const lm = {
            leftEye: { x: cx - (FER_FRAMING.eyeDistance / 2) * side, y: eyeY },
            rightEye: { x: cx + (FER_FRAMING.eyeDistance / 2) * side, y: eyeY },
            mouth: { x: cx, y: eyeY + FER_FRAMING.eyeMouth * side },
        };
        const sq = landmarkSquare(lm, 0);
        assert.ok(Math.abs(sq.x - 100) < 1e-9 && Math.abs(sq.y - 50) < 1e-9 && Math.abs(sq.side - side) < 1e-9, JSON.stringify(sq));
        const grown = landmarkSquare(lm, 0.25);
        assert.ok(Math.abs(grown.side - 144) < 1e-9 && Math.abs(grown.x - 76) < 1e-9 && Math.abs(grown.y - 26) < 1e-9);
        // landmarks that disagree with the detector box by more than 2x are refused
        assert.equal(landmarkSquare(lm, 0, { x: 0, y: 0, w: 400, h: 400 }), null);
        assert.ok(landmarkSquare(lm, 0, { x: 100, y: 60, w: 90, h: 90 }));
    });

    it("converts RGB to BT.601 luma", function () {
        const g = rgbToGray(Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]), 4, 1);
        assert.deepEqual(Array.from(g), [76, 150, 29, 255]);
    });

    it("a 48x48 square at 1:1 is an exact copy; outside the image the edge repeats", function () {
        const w = 64;
        const h = 64;
        const gray = new Uint8Array(w * h);
        for (let i = 0; i < gray.length; i++) { gray[i] = (i * 7) & 255; }
        const out = cropGray(gray, w, h, { x: 8, y: 4, side: 48 });
        for (let y = 0; y < 48; y++) {
            for (let x = 0; x < 48; x++) { assert.equal(out[y * 48 + x], gray[(y + 4) * w + x + 8]); }
        }
        const edge = cropGray(gray, w, h, { x: -48, y: 0, side: 48 });
        for (let y = 0; y < 48; y++) {
            for (let x = 0; x < 48; x++) { assert.equal(edge[y * 48 + x], gray[y * w]); }
        }
    });

    it("cropFace (gray of the sampled region only) equals cropGray of the whole gray raster", function () {
        const w = 90;
        const h = 70;
        const rgb = new Uint8Array(w * h * 3);
        for (let i = 0; i < rgb.length; i++) { rgb[i] = (i * 37 + (i >> 7) * 11) & 255; }
        const gray = rgbToGray(rgb, w, h);
        for (const sq of [{ x: 10.3, y: 5.7, side: 40.2 }, { x: -20, y: -15, side: 60 }, { x: 60, y: 40, side: 55.5 }, { x: 0, y: 0, side: 90 }, { x: 30, y: 20, side: 12 }]) {
            const a = cropFace(rgb, w, h, sq);
            const b = cropGray(gray, w, h, sq);
            // the same samples: only the float rounding of the sample positions differs
            assert.ok(a.every((v, i) => Math.abs(v - b[i]) <= 1), JSON.stringify(sq));
        }
        assert.throws(() => cropFace(rgb, w, h - 1, { x: 0, y: 0, side: 10 }), /RGB raster/);
    });

    it("area-averages when downscaling (a 2x2 checkerboard averages to mid-grey)", function () {
        const w = 96;
        const gray = new Uint8Array(w * w);
        for (let y = 0; y < w; y++) { for (let x = 0; x < w; x++) { gray[y * w + x] = (x + y) % 2 ? 255 : 0; } }
        const out = cropGray(gray, w, w, { x: 0, y: 0, side: 96 });
        for (const v of out) { assert.ok(Math.abs(v - 127.5) <= 1, `got ${v}`); }
    });
});

describe("vision: BlazeFace decoding", function () {
    it("fits a frame into the input: longer side at inputSize, each side up to a multiple of 32", function () {
        assert.deepEqual(bf.blazeGeometry(640, 480, 128), { width: 128, height: 96, scale: 0.2 });
        assert.deepEqual(bf.blazeGeometry(256, 256, 256), { width: 256, height: 256, scale: 1 });
        const g = bf.blazeGeometry(1280, 720, 160);
        assert.deepEqual([g.width, g.height, g.scale], [160, 96, 0.125]); // 90 px high -> 96
        assert.deepEqual(bf.blazeGeometry(40, 300, 64), { width: 32, height: 64, scale: 64 / 300 });
        assert.throws(() => bf.blazeGeometry(640, 480, 100), /multiple of 32/);
    });

    it("anchors: the stride-16 grid with 2 a cell, then the stride-32 grid with 6 (896 for 256x256)", function () {
        const a = bf.blazeAnchors(256, 256);
        assert.equal(a.length / 2, 16 * 16 * 2 + 8 * 8 * 6);
        assert.deepEqual(Array.from(a.slice(0, 6)), [8, 8, 8, 8, 24, 8]);
        assert.deepEqual(Array.from(a.slice(2 * 32, 2 * 32 + 2)), [8, 24], "second row of the 16 grid");
        assert.deepEqual(Array.from(a.slice(2 * 512, 2 * 512 + 2)), [16, 16], "first cell of the 32 grid");
        assert.deepEqual(Array.from(a.slice(-2)), [240, 240]);
        assert.equal(bf.blazeAnchors(128, 96).length / 2, 8 * 6 * 2 + 4 * 3 * 6);
    });

    it("decodes scores, boxes and keypoints relative to their anchor, and drops low scores", function () {
        const anchors = Float32Array.from([8, 8, 24, 8]);
        const logits = Float32Array.from([2, -2]); // sigmoid: 0.881, 0.119
        const reg = new Float32Array(32);
        reg.set([1, -2, 10, 12, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 0);
        reg.set([0, 0, 8, 8], 16);
        const d = bf.decodeBlazeFace(logits, reg, anchors, 0.5);
        assert.equal(d.length, 1);
        assert.ok(Math.abs(d[0].score - 1 / (1 + Math.exp(-2))) < 1e-9);
        assert.deepEqual([d[0].x0, d[0].y0, d[0].x1, d[0].y1], [4, 0, 14, 12]); // centre (9, 6), 10 x 12
        assert.deepEqual(Array.from(d[0].keypoints), [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
        assert.equal(bf.decodeBlazeFace(logits, reg, anchors, 0.1).length, 2);
        assert.throws(() => bf.decodeBlazeFace(logits, reg.subarray(1), anchors, 0.5), /do not match 2 anchors/);
    });

    it("weighted NMS merges overlapping candidates by score and keeps apart faces apart", function () {
        const det = (score, x0, y0, x1, y1, k) => ({ score, x0, y0, x1, y1, keypoints: new Float32Array(12).fill(k) });
        const out = bf.weightedNms([det(0.6, 10, 10, 50, 50, 30), det(0.9, 12, 10, 52, 50, 20), det(0.8, 100, 100, 140, 140, 0)], 0.3);
        assert.equal(out.length, 2);
        assert.equal(out[0].score, 0.9);
        assert.ok(Math.abs(out[0].x0 - (0.9 * 12 + 0.6 * 10) / 1.5) < 1e-6);
        assert.ok(Math.abs(out[0].keypoints[5] - (0.9 * 20 + 0.6 * 30) / 1.5) < 1e-5);
        assert.equal(out[1].score, 0.8);
        assert.equal(out[1].x0, 100);
    });

    it("the input is -1..1, area-sampled, with the edge repeated beyond the raster", function () {
        const w = 50;
        const h = 20;
        const rgb = new Uint8Array(w * h * 3);
        for (let y = 0; y < h; y++) { for (let x = 0; x < w; x++) { rgb.fill(x < 25 ? 0 : 255, (y * w + x) * 3, (y * w + x) * 3 + 3); } }
        const g = bf.blazeGeometry(w, h, 64); // 64 x 32, scale 1.28: the raster fills 64 x 25.6
        const t = bf.blazeInput(rgb, w, h, g);
        assert.equal(t.length, 64 * 32 * 3);
        const px = (x, y) => Math.round(t[(y * 64 + x) * 3] * 1e5) / 1e5;
        assert.equal(px(0, 0), -1);
        assert.equal(px(63, 0), 1);
        assert.equal(px(63, 31), 1, "below the raster: the bottom row repeats");
        assert.equal(px(5, 31), -1);
        // a 4x downscale averages: a 2-px checkerboard becomes mid-grey (0)
        const cw = 256;
        const cb = new Uint8Array(cw * cw * 3);
        for (let y = 0; y < cw; y++) { for (let x = 0; x < cw; x++) { cb.fill(((x >> 1) + (y >> 1)) % 2 ? 255 : 0, (y * cw + x) * 3, (y * cw + x) * 3 + 3); } }
        const small = bf.blazeInput(cb, cw, cw, bf.blazeGeometry(cw, cw, 64));
        assert.ok(small.every((v) => Math.abs(v) < 0.3), "averaged, not aliased");
    });
});

describe("vision: face detection", function () {
    this.timeout(60000);
    let detector;
    before(async function () {
        fx.requireData(this, "jaffe");
        detector = await FaceDetector.load();
    });

    it("ships the BlazeFace files its README names, byte for byte (sizes and sha256)", function () {
        const crypto = require("node:crypto");
        const readme = fs.readFileSync(path.join(bf.BLAZEFACE_DIR, "README.md"), "utf8");
        const rows = [...readme.matchAll(/^\| (blazeface\.\w+) \| ([\d,]+) \| ([0-9a-f]{64}) \|$/gm)];
        assert.equal(rows.length, 2, "two files listed");
        for (const [, name, bytes, sha] of rows) {
            const data = fs.readFileSync(path.join(bf.BLAZEFACE_DIR, name));
            assert.equal(data.length, Number(bytes.replace(/,/g, "")), name);
            assert.equal(crypto.createHash("sha256").update(data).digest("hex"), sha, name);
        }
    });

    it("loads once per runtime, from the weights inside the npm package: by default in a worker thread on wasm", async function () {
        assert.equal(await FaceDetector.load(), detector);
        assert.equal(await FaceDetector.load("worker-wasm"), detector);
        assert.equal(detector.runtime, "worker-wasm");
        assert.equal(detector.backend, "wasm");
        assert.equal(detector.label, "worker-wasm");
        const main = await FaceDetector.load("main");
        assert.equal(await FaceDetector.load("main"), main);
        assert.equal(main.runtime, "main");
        assert.ok(["tensorflow", "wasm", "cpu"].includes(main.backend), main.backend);
        assert.equal(main.label, `main-${main.backend}`);
        await assert.rejects(FaceDetector.load("gpu"), /detector runtime must be one of worker-wasm, main, got 'gpu'/);
        assert.throws(() => frameOptions({ detectorRuntime: "gpu" }), /detectorRuntime must be one of worker-wasm, main/);
    });

    it("the compiled graph computes what TensorFlow.js's own graph executor computes, without leaking tensors", async function () {
        const { loadTf } = require("../dist/engine/tf");
        const { tf } = await loadTf();
        // the reference: the same model.json through tf.loadGraphModel (input shape relaxed to any size)
        const dir = bf.BLAZEFACE_DIR;
        const json = JSON.parse(fs.readFileSync(path.join(dir, "blazeface.json"), "utf8"));
        json.modelTopology.node.find((n) => n.op === "Placeholder").attr.shape = { shape: { dim: [{ size: "1" }, { size: "-1" }, { size: "-1" }, { size: "3" }] } };
        const bin = Buffer.concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p)))));
        const graph = await tf.loadGraphModel(tf.io.fromMemory({
            modelTopology: json.modelTopology,
            weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
            weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
        }));
        const model = await bf.BlazeFaceModel.load(tf);
        const file = fx.jaffePerSubject("surprise")[2];
        const frame = await decodeFrame(await fx.frameWithFace(file, 200, 120));
        for (const size of [128, 256]) {
            const g = bf.blazeGeometry(frame.workWidth, frame.workHeight, size);
            const input = bf.blazeInput(frame.rgb, frame.workWidth, frame.workHeight, g);
            const x = tf.tensor4d(input, [1, g.height, g.width, 3]);
            const ref = graph.execute(x, bf.BLAZEFACE_HEADS);
            const [s16, b16, s32, b32] = ref.map((t) => t.dataSync());
            x.dispose();
            ref.forEach((t) => t.dispose());
            const before = tf.memory().numTensors;
            const { logits, regressions } = await model.outputs(input, g);
            assert.equal(tf.memory().numTensors, before, "no tensor left behind");
            const maxDiff = (a, b) => {
                assert.equal(a.length, b.length);
                let m = 0;
                for (let i = 0; i < a.length; i++) { m = Math.max(m, Math.abs(a[i] - b[i])); }
                return m;
            };
            assert.ok(maxDiff(logits, Float32Array.from([...s16, ...s32])) < 1e-5, `logits at ${size}`);
            assert.ok(maxDiff(regressions, Float32Array.from([...b16, ...b32])) < 1e-4, `regressions at ${size}`);
            assert.equal(logits.length, bf.blazeAnchors(g.width, g.height).length / 2);
        }
        graph.dispose();
    });

    it("refuses a graph with an op the compiled runner does not know, or without the model files, with a clear error", async function () {
        const { loadTf } = require("../dist/engine/tf");
        const { tf } = await loadTf();
        const dir = bf.BLAZEFACE_DIR;
        const json = JSON.parse(fs.readFileSync(path.join(dir, "blazeface.json"), "utf8"));
        const relu = json.modelTopology.node.find((n) => n.op === "Relu");
        relu.op = "Sigmoid";
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tinyfer-blazeface-"));
        try {
            fs.writeFileSync(path.join(tmp, "blazeface.json"), JSON.stringify(json));
            for (const p of json.weightsManifest.flatMap((g) => g.paths)) { fs.copyFileSync(path.join(dir, p), path.join(tmp, p)); }
            await assert.rejects(bf.BlazeFaceModel.load(tf, tmp), new RegExp(`Sigmoid '${relu.name}' is an op: not the BlazeFace graph this runner knows`));
            await assert.rejects(bf.BlazeFaceModel.load(tf, path.join(tmp, "nothing")), /cannot read the BlazeFace model/);
        } finally {
            fs.rmSync(tmp, { recursive: true, force: true });
        }
    });

    it("finds exactly one face in a JAFFE portrait of each of the 10 subjects", async function () {
        const files = fx.jaffePerSubject("happy");
        assert.equal(files.length, 10);
        for (const f of files) {
            const r = await processFrame(f);
            assert.equal(r.mode, "detect");
            assert.equal(r.faces.length, 1, `${path.basename(f)}: ${r.faces.length} faces`);
            const { box, score, pixels } = r.faces[0];
            assert.ok(score >= 0.5 && score <= 1, `score ${score}`);
            // JAFFE faces fill a good part of the 256x256 frame, roughly in its middle
            assert.ok(box.w > 90 && box.w < 256 && box.h > 90 && box.h < 256, JSON.stringify(box));
            const cx = box.x + box.w / 2;
            const cy = box.y + box.h / 2;
            assert.ok(cx > 80 && cx < 176 && cy > 80 && cy < 200, JSON.stringify(box));
            assert.ok(pixels instanceof Uint8Array);
            assert.equal(pixels.length, 2304);
        }
    });

    it("finds a FER2013 face pasted into a camera frame where it is, with its keypoints inside the box in face order", async function () {
        let n = 0;
        for (const label of ["happy", "neutral", "surprise", "angry"]) {
            for (const f of fx.listLabel("fer2013", label, "PublicTest").slice(20, 23)) {
                // a FER2013 image is a tight face crop: the pasted square is where the face is
                const side = 160;
                const left = 120 + n * 23;
                const top = 60 + n * 17;
                n++;
                const up = await sharp(f).resize(side, side, { kernel: "cubic" }).toColourspace("srgb").png().toBuffer();
                const frame = await sharp({ create: { width: 640, height: 480, channels: 3, background: "#6f7378" } })
                    .composite([{ input: up, left, top }]).jpeg({ quality: 90 }).toBuffer();
                const r = await processFrame(frame);
                const where = `${path.basename(f)} at ${left},${top}`;
                assert.equal(r.faces.length, 1, where);
                const { box, landmarks: lm } = r.faces[0];
                // BlazeFace boxes the inner face (brows to chin); a FER2013 crop is about that, looser or (close-ups) tighter
                const off = Math.hypot(box.x + box.w / 2 - (left + side / 2), box.y + box.h / 2 - (top + side / 2));
                assert.ok(off < 0.2 * side && box.w > 0.4 * side && box.w < 1.3 * side, `${where}: ${JSON.stringify(box)}`);
                for (const [k, p] of Object.entries(lm)) {
                    assert.ok(p.x >= box.x && p.x <= box.x + box.w && p.y >= box.y && p.y <= box.y + box.h, `${where}: ${k} ${JSON.stringify(p)} outside ${JSON.stringify(box)}`);
                }
                assert.ok(lm.leftEye.x < lm.nose.x && lm.nose.x < lm.rightEye.x, `${where}: eyes around the nose`);
                assert.ok(lm.leftEar.x < lm.nose.x && lm.nose.x < lm.rightEar.x, `${where}: ears on their side of the nose`);
                assert.ok(Math.max(lm.leftEye.y, lm.rightEye.y) < lm.nose.y && lm.nose.y < lm.mouth.y, `${where}: eyes, nose, mouth top to bottom`);
            }
        }
    });

    it("finds no face in noise, shapes and text", async function () {
        const noise = Buffer.alloc(640 * 480 * 3);
        let s = 7;
        for (let i = 0; i < noise.length; i++) { s = (s * 1103515245 + 12345) & 0x7fffffff; noise[i] = s >> 23; }
        const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480"><rect width="100%" height="100%" fill="#8090a0"/>' +
            '<ellipse cx="200" cy="220" rx="90" ry="120" fill="#d0b090"/><circle cx="450" cy="160" r="60" fill="#303030"/>' +
            '<text x="40" y="420" font-size="48" fill="black">TinyFER camera 3</text></svg>';
        for (const img of [
            await sharp(noise, { raw: { width: 640, height: 480, channels: 3 } }).blur(2).jpeg().toBuffer(),
            await sharp(Buffer.from(svg)).jpeg().toBuffer(),
        ]) {
            assert.deepEqual((await processFrame(img)).faces, []);
        }
    });

    it("locates a face pasted into a 640x480 frame, also when the JPEG is EXIF-rotated", async function () {
        const file = fx.jaffePerSubject("surprise")[0];
        const alone = (await processFrame(file)).faces[0].box;
        const frame = await fx.frameWithFace(file, 300, 150);
        const r = await processFrame(frame);
        assert.equal(r.faces.length, 1);
        const expected = { x: alone.x + 300, y: alone.y + 150, w: alone.w, h: alone.h };
        assert.ok(fx.iou(r.faces[0].box, expected) > 0.6, `${JSON.stringify(r.faces[0].box)} vs ${JSON.stringify(expected)}`);
        assert.deepEqual(r.frame.width, 640);

        // Store it rotated 90 degrees counter-clockwise with orientation 6: the upright image is the same frame.
        const rotated = await sharp(frame).rotate(-90).withMetadata({ orientation: 6 }).jpeg().toBuffer();
        const r2 = await processFrame(rotated);
        assert.equal(r2.frame.width, 640);
        assert.equal(r2.faces.length, 1);
        assert.ok(fx.iou(r2.faces[0].box, expected) > 0.6, JSON.stringify(r2.faces[0].box));
    });

    it("the worker thread finds the same faces as the detector in-process on wasm (TINYFER_TF=wasm), and close to tfjs-node's", async function () {
        // in a child process whose main thread runs tfjs + wasm: both runtimes on the same backend
        const files = fx.jaffePerSubject("sad");
        const script = `
            const { processFrame, frameOptions } = require(${JSON.stringify(path.join(fx.ROOT, "dist", "vision", "pipeline"))});
            const files = ${JSON.stringify(files)};
            const faces = (r) => ({ detector: r.detector, faces: r.faces.map((f) => ({ box: f.box, score: f.score, landmarks: f.landmarks })) });
            (async () => {
                const out = { worker: [], main: [] };
                for (const f of files) {
                    out.worker.push(faces(await processFrame(f)));
                    out.main.push(faces(await processFrame(f, frameOptions({ detectorRuntime: "main" }))));
                }
                process.stdout.write(JSON.stringify(out));
            })().catch((e) => { process.stderr.write(String(e.stack)); process.exit(1); });`;
        const { execFileSync } = require("child_process");
        const out = execFileSync(process.execPath, ["-e", script], {
            env: { ...process.env, TINYFER_TF: "wasm", TF_CPP_MIN_LOG_LEVEL: "2" }, encoding: "utf8", cwd: fx.ROOT,
        });
        const r = JSON.parse(out);
        assert.equal(r.worker.length, 10);
        for (let i = 0; i < files.length; i++) {
            assert.equal(r.worker[i].detector, "worker-wasm");
            assert.equal(r.main[i].detector, "main-wasm");
            assert.equal(r.worker[i].faces.length, 1, path.basename(files[i]));
            // the same code on the same backend: the very same numbers
            assert.deepEqual(r.worker[i].faces, r.main[i].faces, path.basename(files[i]));
        }
        // this process's main thread (tfjs-node where it loads): the same faces up to float rounding
        const main = await FaceDetector.load("main");
        for (let i = 0; i < files.length; i++) {
            const here = (await processFrame(files[i], frameOptions({ detectorRuntime: "main" }))).faces;
            assert.equal(here.length, 1);
            assert.ok(fx.iou(here[0].box, r.worker[i].faces[0].box) > 0.95, `${main.label}: ${JSON.stringify(here[0].box)} vs ${JSON.stringify(r.worker[i].faces[0].box)}`);
            assert.ok(Math.abs(here[0].score - r.worker[i].faces[0].score) < 0.01);
        }
    });

    it("a FER2013 face pasted into a camera frame is cropped back close to the original (landmark framing)", async function () {
        const corr = (a, b) => {
            const n = a.length;
            let ma = 0;
            let mb = 0;
            for (let i = 0; i < n; i++) { ma += a[i]; mb += b[i]; }
            ma /= n;
            mb /= n;
            let sab = 0;
            let saa = 0;
            let sbb = 0;
            for (let i = 0; i < n; i++) { sab += (a[i] - ma) * (b[i] - mb); saa += (a[i] - ma) ** 2; sbb += (b[i] - mb) ** 2; }
            return sab / Math.sqrt(saa * sbb);
        };
        const median = (v) => v.slice().sort((x, y) => x - y)[v.length >> 1];
        const withLm = [];
        const boxOnly = [];
        for (const label of ["happy", "sad", "surprise", "neutral"]) {
            for (const f of fx.listLabel("fer2013", label, "PublicTest").slice(50, 56)) {
                const up = await sharp(f).resize(192, 192, { kernel: "cubic" }).toColourspace("srgb").png().toBuffer();
                const frame = await sharp({ create: { width: 640, height: 480, channels: 3, background: "#777777" } })
                    .composite([{ input: up, left: 220, top: 140 }]).jpeg({ quality: 92 }).toBuffer();
                const a = await processFrame(frame, frameOptions({ landmarks: true }));
                const b = await processFrame(frame, frameOptions({ landmarks: false }));
                if (!a.faces.length || !b.faces.length) { continue; }
                const orig = await sharp(f).greyscale().raw().toBuffer();
                withLm.push(corr(a.faces[0].pixels, orig));
                boxOnly.push(corr(b.faces[0].pixels, orig));
            }
        }
        assert.ok(withLm.length >= 16, `only ${withLm.length} of 24 faces found`);
        assert.ok(median(withLm) > 0.5, `median correlation ${median(withLm)}`);
        assert.ok(median(withLm) > median(boxOnly), `landmarks ${median(withLm)} vs box ${median(boxOnly)}`);
    });

    it("FER_FRAMING holds on FER2013 faces it was not measured on (within 6%)", async function () {
        const { measureFraming } = require("../dist/vision/framing");
        const faces = [];
        for (const label of ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]) {
            faces.push(...fx.listLabel("fer2013", label, "PublicTest").slice(45, 55));
        }
        const m = await measureFraming(faces);
        assert.ok(m.count >= 66 && m.count + m.missed === 70, `measured ${m.count} of 70`);
        for (const k of ["eyeDistance", "eyeMouth", "centreX", "centreY"]) {
            assert.ok(Math.abs(m[k] / FER_FRAMING[k] - 1) < 0.06, `${k}: measured ${m[k]}, constant ${FER_FRAMING[k]}`);
        }
    });

    it("finds no face in a frame without one", async function () {
        const empty = await sharp({ create: { width: 640, height: 480, channels: 3, background: "#7a7f85" } }).jpeg().toBuffer();
        const r = await processFrame(empty);
        assert.equal(r.mode, "detect");
        assert.deepEqual(r.faces, []);
    });

    it("finds two faces side by side, largest first", async function () {
        const [a, b] = fx.jaffePerSubject("neutral");
        const big = await sharp(a).resize(240, 240).png().toBuffer();
        const small = await sharp(b).resize(180, 180).png().toBuffer();
        const frame = await sharp({ create: { width: 800, height: 400, channels: 3, background: "#8a8a8a" } })
            .composite([{ input: big, left: 20, top: 80 }, { input: small, left: 600, top: 110 }]).jpeg().toBuffer();
        const r = await processFrame(frame);
        assert.equal(r.faces.length, 2);
        assert.ok(r.faces[0].box.w * r.faces[0].box.h > r.faces[1].box.w * r.faces[1].box.h);
        assert.ok(r.faces[0].box.x < 260 && r.faces[1].box.x > 560, JSON.stringify(r.faces.map((f) => f.box)));
        const one = await processFrame(frame, frameOptions({ maxFaces: 1 }));
        assert.equal(one.faces.length, 1);
        assert.deepEqual(one.faces[0].box, r.faces[0].box);
    });

    it("checks its options", function () {
        assert.throws(() => frameOptions({ margin: -1 }), /margin/);
        assert.throws(() => frameOptions({ maxBytes: 0 }), /maxBytes/);
        // the detector's options are checked with the others, before any frame ...
        assert.throws(() => frameOptions({ inputSize: 100 }), /detector inputSize must be a multiple of 32/);
        assert.throws(() => frameOptions({ scoreThreshold: 1.5 }), /detector scoreThreshold must be in 0\.\.1/);
        // ... and by the detector itself, for options that did not come through frameOptions
        return assert.rejects(processFrame(fx.dataPath("jaffe", "happy", "KA.HA1.29.tiff"), { ...DEFAULT_FRAME, inputSize: 100 }), /multiple of 32/);
    });
});

describe("vision: whole-face images", function () {
    it("a 48x48 FER2013 face is one face, its pixels the image's own gray values", async function () {
        fx.requireData(this, "fer2013", "PublicTest");
        const files = fx.listLabel("fer2013", "happy", "PublicTest").slice(0, 5);
        for (const f of files) {
            const r = await processFrame(f);
            assert.equal(r.mode, "whole");
            assert.equal(r.faces.length, 1);
            assert.deepEqual(r.faces[0].box, { x: 0, y: 0, w: 48, h: 48 });
            assert.equal(r.faces[0].score, 1);
            const gray = await sharp(f).greyscale().raw().toBuffer();
            assert.deepEqual(Buffer.from(r.faces[0].pixels), gray);
        }
    });

    it("a CK+ PNG is whole-face too; wholeFace forces it for larger images", async function () {
        fx.requireData(this, "ckplus", "happy");
        const f = fx.listLabel("ckplus", "happy")[0];
        assert.equal((await processFrame(f)).mode, "whole");
        const jaffe = fx.dataPath("jaffe", "happy", "KA.HA1.29.tiff");
        const r = await processFrame(jaffe, frameOptions({ wholeFace: true }));
        assert.equal(r.mode, "whole");
        assert.deepEqual(r.faces[0].box, { x: 0, y: 0, w: 256, h: 256 });
        const off = await processFrame(f, frameOptions({ wholeFaceMaxSide: 0 }));
        assert.equal(off.mode, "detect");
    });
});

describe("vision: annotate", function () {
    it("draws the boxes in the emotion's colour onto an upright JPEG", async function () {
        const base = await sharp({ create: { width: 960, height: 720, channels: 3, background: "#000000" } }).jpeg().toBuffer();
        const out = await annotate(base, [{ box: { x: 300, y: 180, w: 300, h: 300 }, emotion: "happy", confidence: 0.87 }]);
        const meta = await sharp(out).metadata();
        assert.equal(meta.format, "jpeg");
        assert.equal(meta.width, 960);
        assert.equal(meta.height, 720);
        const { data } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
        const px = (x, y) => Array.from(data.subarray((y * 960 + x) * 3, (y * 960 + x) * 3 + 3));
        const [r, g, b] = px(450, 480); // bottom edge of the box: happy is green (#43a047)
        assert.ok(g > 120 && g > r + 50 && g > b + 50, `box edge ${[r, g, b]}`);
        assert.deepEqual(px(450, 330).map((v) => v < 20), [true, true, true]); // inside stays black
    });

    it("captions faces and escapes the SVG", function () {
        assert.equal(caption({ box: { x: 0, y: 0, w: 1, h: 1 }, emotion: "sad", confidence: 0.5 }), "sad 50%");
        assert.equal(caption({ box: { x: 0, y: 0, w: 1, h: 1 }, score: 0.91 }), "face 91%");
        const svg = overlaySvg(100, 100, [{ box: { x: 0, y: 0, w: 10, h: 10 }, emotion: "<x>&" }], 1);
        assert.ok(svg.includes("&lt;x&gt;&amp;") && !svg.includes("<x>"));
    });

    it("fails with a VisionError on a broken frame", async function () {
        await rejectsWith(annotate(Buffer.from("nope"), []), "E_DECODE", /cannot annotate/);
    });
});

describe("vision: the detector's worker thread", function () {
    this.timeout(60000);
    let frame;
    let expected;
    before(async function () {
        fx.requireData(this, "jaffe");
        const file = fx.jaffePerSubject("happy")[0];
        frame = await decodeFrame(fs.readFileSync(file));
        expected = await (await FaceDetector.load("worker-wasm")).detect(frame.rgb, frame.workWidth, frame.workHeight);
        assert.equal(expected.length, 1);
    });

    it("leaves the caller's raster as it is (a copy travels to the thread), and serves requests in flight together", async function () {
        const detector = await FaceDetector.load();
        const before = Buffer.from(frame.rgb);
        const all = await Promise.all([1, 2, 3, 4].map(() => detector.detect(frame.rgb, frame.workWidth, frame.workHeight)));
        for (const found of all) { assert.deepEqual(found, expected); }
        assert.equal(frame.rgb.length, frame.workWidth * frame.workHeight * 3);
        assert.ok(before.equals(frame.rgb));
    });

    it("a crashed thread fails the frames in flight with a catchable E_DETECTOR; the next frame starts a new thread", async function () {
        const detector = await FaceDetector.load();
        const shared = WorkerDetector.shared();
        const first = shared.worker;
        assert.ok(first, "the thread runs");
        const inFlight = [1, 2].map(() => rejectsWith(detector.detect(frame.rgb, frame.workWidth, frame.workHeight), "E_DETECTOR",
            /worker thread exited .*the next frame starts a new one/));
        await first.terminate(); // as if it crashed
        await Promise.all(inFlight);
        assert.equal(shared.worker, undefined);
        assert.deepEqual(await detector.detect(frame.rgb, frame.workWidth, frame.workHeight), expected);
        assert.ok(shared.worker && shared.worker !== first, "a new thread");
        // through the whole pipeline as well
        const r = await processFrame(frame.source);
        assert.equal(r.detector, "worker-wasm");
        assert.equal(r.faces.length, 1);
    });

    it("an uncaught error inside the thread fails the frames queued behind it with E_DETECTOR; the next frame works", async function () {
        const detector = await FaceDetector.load();
        await detector.detect(frame.rgb, frame.workWidth, frame.workHeight);
        const shared = WorkerDetector.shared();
        const first = shared.worker;
        first.postMessage({ id: -1, rgb: null }); // a malformed request: the thread throws on it
        await rejectsWith(detector.detect(frame.rgb, frame.workWidth, frame.workHeight), "E_DETECTOR", /worker thread crashed: .*the next frame starts a new one/);
        assert.deepEqual(await detector.detect(frame.rgb, frame.workWidth, frame.workHeight), expected);
        assert.ok(shared.worker && shared.worker !== first);
    });

    it("a thread that stops answering is stopped by the watchdog: E_DETECTOR for the frames in flight, the next frame starts a new thread", async function () {
        const detector = await FaceDetector.load();
        const shared = WorkerDetector.shared();
        await detector.detect(frame.rgb, frame.workWidth, frame.workHeight);
        const first = shared.worker;
        const saved = shared.answerTimeoutMs;
        shared.answerTimeoutMs = 1; // no frame is answered within 1 ms: to the watchdog the thread hangs
        try {
            await Promise.all([1, 2].map(() => rejectsWith(detector.detect(frame.rgb, frame.workWidth, frame.workHeight), "E_DETECTOR",
                /did not answer within 1 ms and was stopped .*the next frame starts a new one/)));
        } finally {
            shared.answerTimeoutMs = saved;
        }
        assert.deepEqual(await detector.detect(frame.rgb, frame.workWidth, frame.workHeight), expected);
        assert.ok(shared.worker && shared.worker !== first, "a new thread");
    });

    it("a thread that does not load in time is stopped: E_DETECTOR from ready(), and a later frame loads a new one", async function () {
        const shared = WorkerDetector.shared();
        await shared.close();
        const saved = shared.loadTimeoutMs;
        shared.loadTimeoutMs = 1;
        try {
            await rejectsWith(shared.ready(), "E_DETECTOR", /did not load the face detector within 1 ms/);
        } finally {
            shared.loadTimeoutMs = saved;
        }
        const detector = await FaceDetector.load();
        assert.deepEqual(await detector.detect(frame.rgb, frame.workWidth, frame.workHeight), expected);
    });

    it("close() stops the thread, failing what is in flight; the next frame starts it again", async function () {
        const detector = await FaceDetector.load();
        const inFlight = rejectsWith(detector.detect(frame.rgb, frame.workWidth, frame.workHeight), "E_DETECTOR", /was closed/);
        await WorkerDetector.shared().close();
        await inFlight;
        assert.deepEqual(await detector.detect(frame.rgb, frame.workWidth, frame.workHeight), expected);
    });

    it("holds keep the thread between frames; releasing the last stops it once the frames in flight are answered", async function () {
        const shared = WorkerDetector.shared();
        const detector = await FaceDetector.load();
        const a = shared.hold();
        const b = shared.hold();
        await detector.detect(frame.rgb, frame.workWidth, frame.workHeight);
        const running = shared.worker;
        a.release();
        a.release(); // twice is harmless
        assert.equal(shared.worker, running);
        const inFlight = detector.detect(frame.rgb, frame.workWidth, frame.workHeight);
        b.release();
        assert.equal(shared.worker, running, "not stopped under a frame in flight");
        assert.deepEqual(await inFlight, expected);
        assert.equal(shared.worker, undefined, "stopped once idle");
        // a frame without holds starts it again, and it stays (unref'd: it does not keep the process alive)
        assert.deepEqual(await detector.detect(frame.rgb, frame.workWidth, frame.workHeight), expected);
        assert.ok(shared.worker);
        await detector.detect(frame.rgb, frame.workWidth, frame.workHeight);
        assert.ok(shared.worker);
    });

    it("bad input is refused before it reaches the thread", async function () {
        const detector = await FaceDetector.load();
        await rejectsWith(detector.detect(frame.rgb.subarray(1), frame.workWidth, frame.workHeight), "E_DECODE", /expected/);
        await assert.rejects(detector.detect(frame.rgb, frame.workWidth, frame.workHeight, { ...DEFAULT_DETECT, inputSize: 100 }), /multiple of 32/);
        // what fails inside the thread comes back as E_DETECTOR, and the thread carries on
        await detector.detect(frame.rgb, frame.workWidth, frame.workHeight);
        const running = WorkerDetector.shared().worker;
        await rejectsWith(WorkerDetector.shared().detect(frame.rgb, frame.workWidth, frame.workHeight, { ...DEFAULT_DETECT, inputSize: 100 }),
            "E_DETECTOR", /face detection failed in the worker thread: detector inputSize must be a multiple of 32/);
        assert.deepEqual(await detector.detect(frame.rgb, frame.workWidth, frame.workHeight), expected);
        assert.equal(WorkerDetector.shared().worker, running);
    });

    it("does not keep a process alive: a script that detects faces ends by itself", function () {
        const script = `
            const { processFrame } = require(${JSON.stringify(path.join(fx.ROOT, "dist", "vision", "pipeline"))});
            processFrame(${JSON.stringify(fx.jaffePerSubject("happy")[0])}).then((r) => process.stdout.write(r.detector + " " + r.faces.length));`;
        const { spawnSync } = require("child_process");
        // the time limit only turns a hang into a failure; the script takes about a second
        const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", cwd: fx.ROOT, timeout: 50000, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "2" } });
        assert.equal(r.error, undefined, "the process did not end by itself");
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout, "worker-wasm 1");
    });
});

describe("vision: defaults", function () {
    it("are what the node help documents", function () {
        assert.equal(DEFAULT_FRAME.maxBytes, 20 * 1024 * 1024);
        assert.equal(DEFAULT_FRAME.maxPixels, 40e6);
        assert.equal(DEFAULT_FRAME.inputSize, 128);
        assert.equal(DEFAULT_FRAME.fallbackSize, 256);
        assert.equal(DEFAULT_DETECT.inputSize, DEFAULT_FRAME.inputSize);
        assert.equal(DEFAULT_FRAME.landmarks, true);
        assert.equal(DEFAULT_FRAME.scoreThreshold, 0.5);
        assert.equal(DEFAULT_FRAME.margin, 0);
        assert.equal(DEFAULT_FRAME.wholeFaceMaxSide, 64);
        assert.equal(DEFAULT_FRAME.wholeFace, false);
        assert.equal(DEFAULT_FRAME.detectorRuntime, "worker-wasm");
        assert.equal(DEFAULT_DETECTOR_RUNTIME, "worker-wasm");
        // the hang watchdog: "no answer for 10 s while frames wait, or not loaded within 60 s"
        assert.equal(WorkerDetector.shared().answerTimeoutMs, 10000);
        assert.equal(WorkerDetector.shared().loadTimeoutMs, 60000);
    });
});
