/**
 * Vision benchmark: a 640x480 JPEG camera frame -> faces -> emotion, frames/s on ONE core,
 * per stage (decode, detect + eye/mouth landmarks, crop, classify) and end to end, for each TensorFlow.js runtime
 * the detector can use (tfjs-node, wasm). Also the detector alone.
 *
 *   node bench/vision.js [--frames 40] [--runtimes tensorflow,wasm] [--json]
 *   require('./bench/vision').benchVision({ frames, runtimes }) -> rows (for npm run bench)
 *
 * Each runtime is measured in a child process pinned to one core's worth of threads
 * (TF_NUM_INTRAOP_THREADS=1, TF_NUM_INTEROP_THREADS=1, UV_THREADPOOL_SIZE=1, sharp
 * concurrency 1) so the figures do not depend on how many cores the machine has.
 * Frames are built at run time from JAFFE faces (../shared/data or $TINYFER_DATA) pasted into
 * 640x480 backgrounds; the classifier is the bundled default model when present, otherwise a
 * model of random weights of the same format (the speed of the binary core does not depend on
 * the weights), and the table says which.
 */
"use strict";
const path = require("path");
const fs = require("fs");
const { execFileSync } = require("child_process");

const ROOT = path.resolve(__dirname, "..");

function parseArgs(argv) {
    const a = { frames: 40, runtimes: ["tensorflow", "wasm"], json: false };
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === "--frames") { a.frames = Number(argv[++i]); }
        else if (argv[i] === "--runtimes") { a.runtimes = argv[++i].split(","); }
        else if (argv[i] === "--json") { a.json = true; }
        else if (argv[i] === "--child") { a.child = argv[++i]; }
    }
    return a;
}

/** Run the measurement for one runtime in a one-core child process; returns its row. */
function measureRuntime(runtime, frames) {
    const env = {
        ...process.env,
        TINYFER_TF: runtime === "wasm" ? "wasm" : "",
        TF_NUM_INTRAOP_THREADS: "1",
        TF_NUM_INTEROP_THREADS: "1",
        UV_THREADPOOL_SIZE: "1",
        TF_CPP_MIN_LOG_LEVEL: "2",
    };
    const out = execFileSync(process.execPath, [__filename, "--child", runtime, "--frames", String(frames)], {
        env, cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 20,
    });
    const line = out.trim().split("\n").pop();
    return JSON.parse(line);
}

async function buildFrames(n) {
    const sharp = require("sharp");
    const { dataRoot } = require("../test/helpers/data");
    const jaffe = path.join(dataRoot(), "jaffe");
    const files = [];
    if (fs.existsSync(jaffe)) {
        for (const label of fs.readdirSync(jaffe).sort()) {
            for (const f of fs.readdirSync(path.join(jaffe, label)).sort()) { files.push(path.join(jaffe, label, f)); }
        }
    }
    const frames = [];
    for (let i = 0; i < n; i++) {
        const shade = 90 + ((i * 37) % 80);
        let img = sharp({ create: { width: 640, height: 480, channels: 3, background: { r: shade, g: shade + 5, b: shade - 10 } } });
        if (files.length) {
            const side = [160, 200, 240][i % 3];
            const face = await sharp(files[(i * 7) % files.length]).resize(side, side).toColourspace("srgb").png().toBuffer();
            img = img.composite([{ input: face, left: (i * 53) % (640 - side), top: (i * 31) % (480 - side) }]);
        }
        frames.push(await img.jpeg({ quality: 85 }).toBuffer());
    }
    return { frames, withFaces: files.length > 0 };
}

async function loadClassifier() {
    const { DEFAULT_MODEL_BLOB } = require("../dist/engine/open");
    const { BinaryEngine } = require("../dist/engine/binary");
    if (fs.existsSync(DEFAULT_MODEL_BLOB)) {
        return { engine: await BinaryEngine.load(fs.readFileSync(DEFAULT_MODEL_BLOB)), model: path.basename(DEFAULT_MODEL_BLOB) };
    }
    const { randomFoldedModel } = require("../dist/engine/vectors");
    const { encodeModel } = require("../dist/model/format");
    return { engine: await BinaryEngine.load(encodeModel(randomFoldedModel(1))), model: "random weights (no default model)" };
}

function now() {
    return Number(process.hrtime.bigint()) / 1e6;
}

/** The child: measure every stage on `n` frames with the detector on `runtime`. */
async function child(runtime, n) {
    const sharp = require("sharp");
    sharp.concurrency(1);
    const { decodeFrame, DEFAULT_DECODE } = require("../dist/vision/decode");
    const { FaceDetector } = require("../dist/vision/detector");
    const { rgbToGray, cropGray, faceSquare } = require("../dist/vision/crop");
    const { DEFAULT_FRAME } = require("../dist/vision/pipeline");
    const { frames, withFaces } = await buildFrames(n);
    const detector = await FaceDetector.load();
    const { engine, model } = await loadClassifier();
    // warm up: first calls compile kernels
    for (const f of frames.slice(0, 3)) {
        const d = await decodeFrame(f, DEFAULT_DECODE);
        await detector.detect(d.rgb, d.workWidth, d.workHeight, DEFAULT_FRAME);
    }
    const t = { decode: 0, detect: 0, crop: 0, classify: 0 };
    let faces = 0;
    const t0 = now();
    for (const f of frames) {
        let a = now();
        const d = await decodeFrame(f, DEFAULT_DECODE);
        let b = now();
        t.decode += b - a;
        const found = await detector.detect(d.rgb, d.workWidth, d.workHeight, DEFAULT_FRAME);
        a = now();
        t.detect += a - b;
        const crops = [];
        if (found.length) {
            const gray = rgbToGray(d.rgb, d.workWidth, d.workHeight);
            for (const x of found) { crops.push(cropGray(gray, d.workWidth, d.workHeight, faceSquare(x.box, DEFAULT_FRAME.margin))); }
        }
        b = now();
        t.crop += b - a;
        if (crops.length) { await engine.classify(crops); }
        t.classify += now() - b;
        faces += crops.length;
    }
    const total = now() - t0;
    // the detector alone (boxes, no landmarks), on already decoded frames
    const decoded = [];
    for (const f of frames) { decoded.push(await decodeFrame(f, DEFAULT_DECODE)); }
    const boxesOnly = { ...DEFAULT_FRAME, landmarks: false };
    const d0 = now();
    for (const d of decoded) { await detector.detect(d.rgb, d.workWidth, d.workHeight, boxesOnly); }
    const detectOnly = now() - d0;
    engine.dispose();
    return {
        runtime: detector.runtime,
        frames: frames.length,
        facesFound: faces,
        withFaces,
        model,
        classifier: `${engine.backend}/${engine.runtime}`,
        msPerFrame: {
            decode: t.decode / n, detect: t.detect / n, crop: t.crop / n, classify: t.classify / n, total: total / n,
        },
        fps: 1000 / (total / n),
        detectorOnlyFps: 1000 / (detectOnly / n),
        landmarksMs: Math.max(0, t.detect - detectOnly) / n,
        detectorInput: `${DEFAULT_FRAME.inputSize} (else ${DEFAULT_FRAME.fallbackSize})`,
    };
}

/** Run the benchmark; returns one row per runtime. */
function benchVision(opts = {}) {
    const frames = opts.frames || 40;
    const runtimes = opts.runtimes || ["tensorflow", "wasm"];
    const rows = [];
    for (const r of runtimes) {
        try {
            rows.push(measureRuntime(r, frames));
        } catch (e) {
            rows.push({ runtime: r, error: String(e.message || e).split("\n")[0] });
        }
    }
    return rows;
}

function formatTable(rows) {
    const f1 = (v) => v.toFixed(1);
    const lines = [
        "Vision: 640x480 JPEG -> faces -> emotion, one core (ms per frame, frames/s)",
        "detector runtime | decode | detect+landmarks | crop | classify | total ms | frames/s | detector alone (boxes) f/s | landmarks ms | faces/frames",
        "---|---|---|---|---|---|---|---|---|---",
    ];
    for (const r of rows) {
        if (r.error) { lines.push(`${r.runtime} | failed: ${r.error}`); continue; }
        const m = r.msPerFrame;
        lines.push([r.runtime, f1(m.decode), f1(m.detect), f1(m.crop), m.classify.toFixed(2), f1(m.total), f1(r.fps),
            f1(r.detectorOnlyFps), f1(r.landmarksMs), `${r.facesFound}/${r.frames}`].join(" | "));
    }
    const ok = rows.find((r) => !r.error);
    if (ok) {
        lines.push(`classifier: ${ok.classifier}, model: ${ok.model}; detector input ${ok.detectorInput}` +
            (ok.withFaces ? "; frames hold one JAFFE face each" : "; no dataset: frames hold no face"));
    }
    return lines.join("\n");
}

module.exports = { benchVision, formatTable };

if (require.main === module) {
    const a = parseArgs(process.argv.slice(2));
    if (a.child) {
        child(a.child, a.frames).then((row) => {
            process.stdout.write(JSON.stringify(row) + "\n");
            process.exit(0);
        }, (e) => {
            process.stderr.write(`bench/vision: ${e.stack || e}\n`);
            process.exit(1);
        });
    } else {
        const rows = benchVision(a);
        process.stdout.write((a.json ? JSON.stringify(rows, null, 2) : formatTable(rows)) + "\n");
    }
}
