/**
 * Vision benchmark: a 640x480 JPEG camera frame -> faces -> emotion, frames/s on ONE core,
 * per stage (decode, detect: BlazeFace boxes + keypoints, crop, classify) and end to end, for
 * each configuration a user gets (where the detector runs, see src/vision/detector.ts):
 *   worker-wasm      the default: the detector's own worker thread on tfjs wasm, while the main
 *                    thread has tfjs-node loaded (as when it is installed and in use)
 *   main-wasm        the detector on the main thread, tfjs + wasm (TINYFER_TF=wasm)
 *   main-tensorflow  the detector on the main thread, tfjs-node
 *
 *   node bench/vision.js [--frames 120] [--configs worker-wasm,main-wasm,main-tensorflow] [--json]
 *   require('./bench/vision').benchVision({ frames, configs }) -> rows (for npm run bench)
 *
 * Each configuration is measured in a child process held to one core: pinned to one CPU with
 * `taskset` where there is one (the detector's worker thread, sharp's and TensorFlow's threads
 * then share that core with the main thread), and in any case TF_NUM_INTRAOP_THREADS=1,
 * TF_NUM_INTEROP_THREADS=1, UV_THREADPOOL_SIZE=1, sharp concurrency 1; the table header says
 * whether it was pinned. Besides wall time, the child's CPU time (all its threads, the worker
 * included) is reported, which other processes sharing the cores disturb less, and the part of
 * it on the main thread (the time its event loop, i.e. a Node-RED flow, is blocked; Linux); each
 * figure is from the fastest of 3 passes over the frames.
 * Frames are built at run time from JAFFE faces (../shared/data or $TINYFER_DATA) pasted into
 * 640x480 backgrounds, each frame a different face, place and background; every frame goes
 * through the whole pipeline (nothing is reused across frames). The classifier is the bundled
 * default model when present, otherwise a model of random weights of the same format (the
 * speed of the binary core does not depend on the weights), and the table says which.
 * Privacy output (tinyfer-frame's privacy setting) is measured beside the pipeline on the same
 * frames: hiding the faces found (default strength) and encoding the frame as the JPEG that
 * replaces msg.image, per mode; the pipeline's total and frames/s are without it.
 */
"use strict";
const path = require("path");
const fs = require("fs");
const os = require("os");
const { execFileSync, spawnSync } = require("child_process");

const ROOT = path.resolve(__dirname, "..");
/** Passes over the frames; the fastest is reported. */
const PASSES = 3;
/** The configurations: where the detector runs and which TensorFlow.js the main thread loads. */
const CONFIGS = {
    "worker-wasm": { detectorRuntime: "worker-wasm", mainTf: "" },
    "main-wasm": { detectorRuntime: "main", mainTf: "wasm" },
    "main-tensorflow": { detectorRuntime: "main", mainTf: "" },
};
const DEFAULT_CONFIGS = Object.keys(CONFIGS);

function parseArgs(argv) {
    const a = { frames: 120, configs: DEFAULT_CONFIGS, json: false };
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === "--frames") { a.frames = Number(argv[++i]); }
        else if (argv[i] === "--configs") { a.configs = argv[++i].split(","); }
        else if (argv[i] === "--json") { a.json = true; }
        else if (argv[i] === "--child") { a.child = argv[++i]; }
    }
    return a;
}

/** The CPU a child is pinned to (the second one where there are two or more), or null without taskset. */
function pinCpu() {
    if (process.platform !== "linux") { return null; }
    const probe = spawnSync("taskset", ["-p", String(process.pid)], { encoding: "utf8" });
    if (probe.error || probe.status !== 0) { return null; }
    return os.cpus().length > 1 ? 1 : 0;
}

/** Run the measurement for one configuration in a one-core child process; returns its row. */
function measureConfig(config, frames, cpu) {
    const c = CONFIGS[config];
    if (!c) { throw new Error(`unknown configuration '${config}' (one of ${DEFAULT_CONFIGS.join(", ")})`); }
    const env = {
        ...process.env,
        TINYFER_TF: c.mainTf,
        TF_NUM_INTRAOP_THREADS: "1",
        TF_NUM_INTEROP_THREADS: "1",
        UV_THREADPOOL_SIZE: "1",
        TF_CPP_MIN_LOG_LEVEL: "2",
    };
    const args = [__filename, "--child", config, "--frames", String(frames)];
    const [cmd, argv] = cpu === null ? [process.execPath, args] : ["taskset", ["-c", String(cpu), process.execPath, ...args]];
    const out = execFileSync(cmd, argv, {
        env, cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 20,
    });
    const line = out.trim().split("\n").pop();
    return { ...JSON.parse(line), config, pinnedCpu: cpu };
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
    // Six textured 640x480 backgrounds (a tinted gradient plus blurred noise), so the JPEGs carry
    // about the detail of a camera frame (~40-60 KB at quality 85), not a flat fill.
    const backgrounds = [];
    let seed = 12345;
    for (let k = 0; k < 6; k++) {
        const raw = Buffer.alloc(640 * 480 * 3);
        for (let y = 0; y < 480; y++) {
            for (let x = 0; x < 640; x++) {
                const base = 70 + ((x + y * (k + 1)) % 640) / 640 * 90;
                for (let c = 0; c < 3; c++) {
                    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
                    raw[(y * 640 + x) * 3 + c] = Math.max(0, Math.min(255, base + (c - 1) * 12 * (k % 3 - 1) + ((seed >> 16) % 80) - 40));
                }
            }
        }
        backgrounds.push(await sharp(raw, { raw: { width: 640, height: 480, channels: 3 } }).blur(1.2).png().toBuffer());
    }
    const frames = [];
    for (let i = 0; i < n; i++) {
        let img = sharp(backgrounds[i % backgrounds.length]);
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

function cpuMs() {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
}

/**
 * CPU time of the main thread alone (the time its event loop is blocked), from the scheduler's
 * nanosecond count in /proc (Linux); null elsewhere.
 */
function mainThreadCpuMs() {
    try {
        return Number(fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
    } catch {
        return null;
    }
}

/** The child: measure every stage on `n` frames in configuration `config`. */
async function child(config, n) {
    const sharp = require("sharp");
    sharp.concurrency(1);
    const { loadTf } = require("../dist/engine/tf");
    const { decodeFrame } = require("../dist/vision/decode");
    const { FaceDetector } = require("../dist/vision/detector");
    const { cropFaces, frameOptions } = require("../dist/vision/pipeline");
    const { obscureFaces, encodeJpeg, privacyOptions } = require("../dist/vision/privacy");
    const { drawOn } = require("../dist/vision/annotate");
    const hide = { pixelate: privacyOptions({ mode: "pixelate" }), blur: privacyOptions({ mode: "blur" }) };
    const { frames, withFaces } = await buildFrames(n);
    const opts = frameOptions({ detectorRuntime: CONFIGS[config].detectorRuntime });
    const mainTf = (await loadTf()).runtime;
    const detector = await FaceDetector.load(opts.detectorRuntime);
    const { engine, model } = await loadClassifier();
    // warm up: first calls compile kernels
    for (const f of frames.slice(0, 5)) {
        const d = await decodeFrame(f, opts);
        await engine.classify(cropFaces(d, await detector.detect(d.rgb, d.workWidth, d.workHeight, opts), opts).map((x) => x.pixels));
    }
    // One pass: every frame through every stage; wall and CPU time (all threads of this
    // process: sharp decodes on a libuv thread, the detector may run in its worker thread) per
    // stage, and the main thread's own CPU time for the pass.
    async function pass() {
        const t = { decode: 0, detect: 0, crop: 0, classify: 0, annotate: 0, pixelate: 0, blur: 0, total: 0 };
        const c = { decode: 0, detect: 0, crop: 0, classify: 0, annotate: 0, pixelate: 0, blur: 0, total: 0 };
        let faces = 0;
        let mainHide = 0;
        const t0 = now();
        const c0 = cpuMs();
        const m0 = mainThreadCpuMs();
        let tw = t0;
        let tc = c0;
        const lap = (stage) => {
            const w = now();
            const u = cpuMs();
            t[stage] += w - tw;
            c[stage] += u - tc;
            tw = w;
            tc = u;
        };
        for (const f of frames) {
            const d = await decodeFrame(f, opts);
            lap("decode");
            const found = await detector.detect(d.rgb, d.workWidth, d.workHeight, opts);
            lap("detect");
            const crops = cropFaces(d, found, opts);
            lap("crop");
            if (crops.length) { await engine.classify(crops.map((x) => x.pixels)); }
            lap("classify");
            faces += crops.length;
            // privacy output, as tinyfer-frame does it: the faces hidden in a copy of the frame, encoded as msg.image;
            // beside it the annotated output with privacy off (also one JPEG of the frame)
            const boxes = crops.map((x) => x.box);
            const h0 = mainThreadCpuMs();
            await drawOn(d.rgb, d.workWidth, d.workHeight, d.scale, crops, 80);
            lap("annotate");
            for (const mode of ["pixelate", "blur"]) {
                await encodeJpeg(obscureFaces(d.rgb, d.workWidth, d.workHeight, d.scale, boxes, hide[mode]), d.workWidth, d.workHeight, 80);
                lap(mode);
            }
            if (h0 !== null) { mainHide += mainThreadCpuMs() - h0; }
        }
        t.total = now() - t0 - t.annotate - t.pixelate - t.blur;
        c.total = cpuMs() - c0 - c.annotate - c.pixelate - c.blur;
        const main = m0 === null ? null : mainThreadCpuMs() - m0 - mainHide;
        return { t, c, main, faces };
    }
    // The best of PASSES passes (lowest CPU time): other processes on the machine only ever add time.
    let best = null;
    for (let p = 0; p < PASSES; p++) {
        const r = await pass();
        if (!best || r.c.total < best.c.total) { best = r; }
    }
    const { t, c, main, faces } = best;
    const per = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v / n]));
    engine.dispose();
    return {
        detector: detector.label,
        mainTf,
        frames: frames.length,
        jpegKB: frames.reduce((a, f) => a + f.length, 0) / frames.length / 1024,
        facesFound: faces,
        withFaces,
        model,
        classifier: `${engine.backend}/${engine.runtime}`,
        passes: PASSES,
        msPerFrame: per(t),
        cpuMsPerStage: per(c),
        mainThreadCpuMsPerFrame: main === null ? null : main / n,
        fps: 1000 / (t.total / n),
        cpuMsPerFrame: c.total / n,
        cpuFps: 1000 / (c.total / n),
        detectorInput: `BlazeFace ${opts.inputSize} (else ${opts.fallbackSize})`,
    };
}

/** Run the benchmark; returns one row per configuration. */
function benchVision(opts = {}) {
    const frames = opts.frames || 120;
    const configs = opts.configs || DEFAULT_CONFIGS;
    const cpu = pinCpu();
    const rows = [];
    for (const config of configs) {
        try {
            rows.push(measureConfig(config, frames, cpu));
        } catch (e) {
            rows.push({ config, pinnedCpu: cpu, error: String(e.message || e).split("\n")[0] });
        }
    }
    return rows;
}

function formatTable(rows) {
    const f1 = (v) => v.toFixed(1);
    const f2 = (v) => v.toFixed(2);
    const cpu = rows.length ? rows[0].pinnedCpu : undefined;
    const pin = cpu === undefined ? "" :
        cpu === null ? " (not pinned: no taskset; one thread each for TensorFlow, libuv and sharp)" :
            ` (each configuration's process pinned to CPU ${cpu} with taskset, its worker thread included)`;
    const lines = [
        `Vision: 640x480 JPEG -> faces -> emotion, one core${pin}: ms per frame, wall (CPU), frames/s`,
        "detector | main-thread tfjs | decode | detect | crop | classify | total | frames/s | frames / CPU-s | main-thread CPU ms/frame | faces/frames | annotated JPEG (privacy off) | privacy: pixelate | privacy: blur",
        "---|---|---|---|---|---|---|---|---|---|---|---|---|---",
    ];
    for (const r of rows) {
        if (r.error) { lines.push(`${r.config || r.runtime} | failed: ${r.error}`); continue; }
        const m = r.msPerFrame;
        const c = r.cpuMsPerStage;
        const both = (k) => `${f2(m[k])} (${f2(c[k])})`;
        lines.push([r.detector, r.mainTf, both("decode"), both("detect"), both("crop"), both("classify"), `${f2(m.total)} (${f2(r.cpuMsPerFrame)})`,
            f1(r.fps), f1(r.cpuFps), r.mainThreadCpuMsPerFrame === null ? "n/a" : f2(r.mainThreadCpuMsPerFrame), `${r.facesFound}/${r.frames}`, `+${both("annotate")}`,
            `+${both("pixelate")} (+${(100 * c.pixelate / r.cpuMsPerFrame).toFixed(0)} %)`, `+${both("blur")} (+${(100 * c.blur / r.cpuMsPerFrame).toFixed(0)} %)`].join(" | "));
    }
    const ok = rows.find((r) => !r.error);
    if (ok) {
        lines.push(`classifier: ${ok.classifier}, model: ${ok.model}; detector: ${ok.detectorInput}, keypoints framing` +
            `; JPEG frames of ${ok.jpegKB.toFixed(0)} KB on average` +
            (ok.withFaces ? ", one JAFFE face each (160-240 px)" : "; no dataset: frames hold no face") +
            `; best of ${ok.passes} passes; frames / CPU-s = 1000 / CPU ms (all threads of the one-core child): ` +
            "less disturbed than wall time by other processes on the machine; main-thread CPU: the part of it on the main " +
            "thread, i.e. the time its event loop (a Node-RED flow) is blocked; privacy: the extra ms per frame (wall (CPU), and % of the " +
            "pipeline's CPU) with tinyfer-frame's privacy output on, default strength: the faces hidden and the frame encoded as a JPEG " +
            "(quality 80) for msg.image; annotated JPEG: what the annotated output costs with privacy off (boxes drawn, one JPEG); " +
            "total and frames/s are without these");
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
