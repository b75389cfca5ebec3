/**
 * tinyfer-frame's bounded input queue in a real Node-RED runtime: frames sent faster than the
 * node processes them (real JPEG camera frames with a JAFFE face) wait at most 'Queue' deep;
 * the rest are dropped (the oldest waiting, or the newest), each dropped message still
 * completes once (a Complete node sees every message exactly once, a Catch node none), the
 * drops are counted in the node's stats accessor (node.queueStats()) and the status, and
 * warned about once. Heap + external memory stay bounded across a flood of ~1000 frames of
 * ~200 KB each. Nothing here depends on timing: bursts are sent synchronously (one JS turn),
 * so which frames are dropped is determined; the memory bound is generous.
 */
"use strict";
const assert = require("node:assert/strict");
const v8 = require("node:v8");
const vm = require("node:vm");
const sharp = require("sharp");
const helper = require("node-red-node-test-helper");
const frameNode = require("../nodes/tinyfer-frame.js");
const catchNode = require("@node-red/nodes/core/common/25-catch.js");
const completeNode = require("@node-red/nodes/core/common/24-complete.js");
const statusNode = require("@node-red/nodes/core/common/25-status.js");
const fx = require("./fixtures/faces");
const { splitChunks } = require("../dist/fleet/protocol");
const { checkNodeSettings } = require("../dist/settings/nodes");
const { editorScript } = require("../dist/settings/editor");
const { frameStatusText, shortCount, STATUS_MAX } = require("../dist/runtime/status");
const { DEFAULT_QUEUE_SIZE } = require("../dist/runtime/serial-input");
const { scopedFlow, watchScoped } = require("./helpers/queue-flow");
const { waitFor } = require("./helpers/fleet");

helper.init(require.resolve("node-red"));
const NODES = [frameNode, catchNode, completeNode, statusNode];

v8.setFlagsFromString("--expose-gc");
const gc = global.gc || vm.runInNewContext("gc");

/** The frame node `frame` (extra settings), with a Complete, a Catch and a Status node scoped to it. */
function flow(settings) {
    return scopedFlow("tinyfer-frame", "frame", settings, "queue test");
}

/** What the flow's helper nodes get, by the `seq` each input message carries (messages are not kept). */
function watch() {
    return watchScoped(helper, (m) => ({ seq: m.seq, faces: m.faces.length }));
}

/** Wait until `cond()` holds (test/helpers/fleet.js; the limit is only a guard against a hang). */
const until = (cond, what, ms = 120000) => waitFor(cond, ms, what);

/**
 * The warnings the frame node logged in this test. The test helper's spies (on the log and on
 * every node's send, status, warn...: one sinon sandbox) keep every call they saw, and with them
 * every message of a flood: this clears them after reading the warnings, and the flood test
 * calls it every 100 frames, so the helper's own memory is not what is measured.
 */
let warned = [];
function warnings() {
    const log = helper.log();
    for (const [e] of log.args) { if (e.level === log.WARN && e.id === "frame") { warned.push(String(e.msg)); } }
    (helper._sandbox || log).resetHistory();
    return warned;
}

/** Heap + off-heap (Buffers) bytes in use after a full collection. */
function liveBytes() {
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.external;
}

describe("tinyfer-frame: bounded input queue", function () {
    this.timeout(300000);
    let camera; // a 640x480 camera frame: JAFFE face on sensor noise (a realistic, poorly compressible JPEG)
    let small; // the same face on a plain background, for the burst tests

    before(async function () {
        const jaffe = fx.jaffePerSubject("happy")[0];
        const face = await sharp(jaffe).toColourspace("srgb").removeAlpha().png().toBuffer();
        const noise = await sharp({ create: { width: 640, height: 480, channels: 3, background: "#808080", noise: { type: "gaussian", mean: 128, sigma: 24 } } }).png().toBuffer();
        camera = await sharp(noise).composite([{ input: face, left: 200, top: 110 }]).jpeg({ quality: 92 }).toBuffer();
        small = await fx.frameWithFace(jaffe, 200, 100);
    });
    beforeEach(() => { warned = []; });
    afterEach(() => helper.unload());

    it("settings: queueSize 1..10000 (default 100, also for flows saved without it) and queueDrop oldest|newest, the editor's check = the runtime's", async function () {
        const window = {};
        vm.runInNewContext(editorScript(), { window });
        for (const [name, v, re] of [["queueSize", "0", /^queueSize must be an integer 1\.\.10000, got "0"$/], ["queueSize", "2.5", /integer/], ["queueDrop", "random", /^queueDrop must be one of oldest, newest, got "random"$/]]) {
            assert.match(String(window.TinyFER.validate("tinyfer-frame", name)(v, {})), re);
            assert.throws(() => checkNodeSettings("tinyfer-frame", { [name]: v }), (e) => e instanceof RangeError && re.test(e.message));
        }
        await helper.load(NODES, flow({}));
        assert.deepEqual(helper.getNode("frame").queueStats().limits, { maxWaiting: DEFAULT_QUEUE_SIZE, drop: "oldest" });
        assert.equal(DEFAULT_QUEUE_SIZE, 100);
        await helper.unload();
        await helper.load(NODES, flow({ queueSize: "0" }));
        const w = watch();
        helper.getNode("frame").receive({ payload: small, seq: 0 });
        await until(() => w.caught.length === 1, "the config error at catch");
        assert.match(w.caught[0].error, /queueSize must be an integer 1\.\.10000/);
    });

    for (const [drop, expected] of [["oldest", [0, 28, 29]], ["newest", [0, 1, 2]]]) {
        it(`drop ${drop}: a burst of 30 frames into a queue of 2 processes frames ${expected.join(", ")}; all 30 complete once; 27 dropped, in the status and warned once`, async function () {
            await helper.load(NODES, flow({ queueSize: 2, queueDrop: drop }));
            const w = watch();
            const node = helper.getNode("frame");
            for (let i = 0; i < 30; i++) {
                node.receive({ payload: Buffer.from(small), seq: i });
                assert.ok(node.queueStats().waiting <= 2, `waiting ${node.queueStats().waiting} after frame ${i}`);
            }
            await until(() => w.completed.size === 30 && !node.queueStats().busy, "30 completions");
            const s = node.queueStats();
            assert.deepEqual(w.out.map((o) => o.seq), expected);
            assert.ok(w.out.every((o) => o.faces === 1), JSON.stringify(w.out));
            assert.deepEqual({ received: s.received, handled: s.handled, dropped: s.dropped, waiting: s.waiting, maxWaitingSeen: s.maxWaitingSeen, waitingBytes: s.waitingBytes },
                { received: 30, handled: 3, dropped: 27, waiting: 0, maxWaitingSeen: 2, waitingBytes: 0 });
            for (let i = 0; i < 30; i++) { assert.equal(w.completed.get(i), 1, `frame ${i} completed once`); }
            assert.deepEqual(w.caught, []);
            await until(() => w.statuses.length && w.statuses[w.statuses.length - 1].includes("27 dropped"), "the status with the drops");
            assert.match(w.statuses[w.statuses.length - 1], /^1 face \| \d+\.\d( msg)?\/s \| 27 dropped$/);
            const warned = warnings();
            assert.equal(warned.length, 1, warned.join("\n"));
            assert.match(warned[0], drop === "oldest" ? /2 are waiting, so the oldest waiting frame is dropped/ : /2 are waiting, so new frames are dropped/);
        });
    }

    it("with Privacy on, a dropped frame's message completes without its image (as a failed one reaches Catch)", async function () {
        await helper.load(NODES, flow({ queueSize: 1, privacy: "pixelate" }));
        const node = helper.getNode("frame");
        const completed = new Map();
        helper.getNode("completed").on("input", (m) => completed.set(m.seq, { payload: m.payload, image: m.image, faces: m.faces }));
        for (let i = 0; i < 8; i++) { node.receive({ payload: Buffer.from(small), seq: i, image: Buffer.from(small) }); }
        await until(() => completed.size === 8 && !node.queueStats().busy, "8 completions");
        const s = node.queueStats();
        assert.equal(s.dropped, 6);
        const dropped = [1, 2, 3, 4, 5, 6]; // queue 1, drop oldest: 0 runs, 7 is the last one waiting
        for (const i of dropped) {
            const m = completed.get(i);
            assert.equal(m.payload, undefined, `dropped frame ${i} completed with its payload`);
            assert.equal(m.image, undefined, `dropped frame ${i} completed with msg.image`);
        }
    });

    it("fleet chunks are reassembled on arrival: a full queue drops whole frames, never a part (6 chunked frames, queue 1)", async function () {
        await helper.load(NODES, flow({ queueSize: 1 }));
        const w = watch();
        const node = helper.getNode("frame");
        const frames = [];
        for (let k = 0; k < 6; k++) { frames.push(await fx.frameWithFace(fx.jaffePerSubject("happy")[k], 100 + 20 * k, 100)); }
        let seq = 0;
        const lastChunkOf = [];
        for (let k = 0; k < 6; k++) {
            const chunks = splitChunks(100 + k, frames[k], 4096);
            assert.ok(chunks.length >= 3);
            for (const c of chunks) { node.receive({ topic: "tinyfer/cam1/frame/chunk", payload: c, seq: seq++ }); }
            lastChunkOf.push(seq - 1);
        }
        await until(() => w.completed.size === seq && !node.queueStats().busy, "every chunk message completed");
        // frame 0 went straight to processing; frames 1..4 were each pushed out by the next; frame 5 waited
        assert.deepEqual(w.out.map((o) => o.seq), [lastChunkOf[0], lastChunkOf[5]]);
        assert.ok(w.out.every((o) => o.faces === 1));
        const s = node.queueStats();
        assert.equal(s.dropped, 4);
        assert.equal(s.received, seq);
        for (let i = 0; i < seq; i++) { assert.equal(w.completed.get(i), 1, `chunk message ${i}`); }
        assert.deepEqual(w.caught, []);
        assert.equal(node.queueStats().maxWaitingSeen, 1);
    });

    it("a flood of 1000 camera frames (~200 KB each, fresh Buffers as an mqtt in node makes): never more than the queue waits, every message completes once, dropped = sent - processed, heap + external growth bounded", async function () {
        const N = 1000;
        const LIMIT = 4;
        await helper.load(NODES, flow({ queueSize: LIMIT }));
        const w = watch();
        const node = helper.getNode("frame");
        // warm up: the detector thread loaded, its buffers pooled
        node.receive({ payload: Buffer.from(camera), seq: -1 });
        await until(() => w.completed.get(-1) === 1, "the warm-up frame");
        assert.equal(w.out[0].faces, 1, "the face is found on the noisy camera frame");
        warnings();
        const base = liveBytes();
        let peak = 0;
        let maxWaiting = 0;
        for (let i = 0; i < N; i++) {
            node.receive({ payload: Buffer.from(camera), seq: i, topic: "camera/1" });
            maxWaiting = Math.max(maxWaiting, node.queueStats().waiting);
            if (i % 10 === 9) { await new Promise((r) => setImmediate(r)); } // 10 frames a turn: far faster than frames are processed
            if (i % 100 === 99) { warnings(); peak = Math.max(peak, liveBytes() - base); }
        }
        await until(() => w.completed.size === N + 1 && !node.queueStats().busy, "every message completed");
        warnings();
        peak = Math.max(peak, liveBytes() - base);
        const s = node.queueStats();
        const processed = w.out.length - 1;
        const floodMb = (N * camera.length) / 2 ** 20;
        console.log(`      flood: ${N} frames x ${(camera.length / 1024).toFixed(0)} KB = ${floodMb.toFixed(0)} MB sent; processed ${processed}, dropped ${s.dropped}; ` +
            `max waiting ${s.maxWaitingSeen} (limit ${LIMIT}); heap+external growth peak ${(peak / 2 ** 20).toFixed(1)} MB`);
        assert.ok(maxWaiting <= LIMIT && s.maxWaitingSeen <= LIMIT, `waiting ${maxWaiting} / ${s.maxWaitingSeen} > ${LIMIT}`);
        assert.equal(s.maxWaitingSeen, LIMIT, "the flood filled the queue");
        assert.equal(s.received, N + 1);
        assert.equal(s.handled, processed + 1);
        assert.equal(s.dropped, N - processed);
        assert.ok(s.dropped > 0);
        for (let i = -1; i < N; i++) { assert.equal(w.completed.get(i), 1, `frame ${i} completed once`); }
        assert.deepEqual(w.caught, []);
        const seqs = w.out.map((o) => o.seq);
        assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "processed in arrival order");
        assert.equal(seqs[seqs.length - 1], N - 1, "drop oldest: the last frame sent is processed");
        await until(() => w.statuses.length && w.statuses[w.statuses.length - 1].endsWith(`${shortCount(s.dropped)} dropped`), "the final status");
        assert.equal(warnings().length, 1);
        // an unbounded queue would have held most of the flood (the sends outpace processing)
        assert.ok(floodMb > 150, `flood of ${floodMb} MB`);
        assert.ok(peak < 64 * 2 ** 20, `memory grew by ${(peak / 2 ** 20).toFixed(1)} MB`);
    });

    it("status text: faces, rate, drops, within 32 characters for any count", function () {
        assert.equal(frameStatusText(1, 4.5, 0), "1 face | 4.5 msg/s");
        assert.equal(frameStatusText(1, 4.5, 27), "1 face | 4.5 msg/s | 27 dropped");
        assert.equal(frameStatusText(0, 12, 27), "no face | 12.0/s | 27 dropped"); // "msg/s" would make it 33
        assert.equal(frameStatusText(10, 123.4, 1234), "10 faces | 1.2k dropped"); // no room for the rate: the drops stay
        for (const faces of [0, 1, 2, 10, 100, 1000]) {
            for (const rate of [0, 9.99, 123.4, 9999]) {
                for (const d of [0, 1, 999, 1000, 12345, 999499, 999500, 1e7, 5e9, 1e13]) {
                    const t = frameStatusText(faces, rate, d);
                    assert.ok(t.length <= STATUS_MAX, t);
                    if (d && faces < 1000) assert.match(t, / dropped$/, t);
                }
            }
        }
        assert.deepEqual([0, 999, 1000, 1049, 9949, 9950, 12345, 999499, 999500, 1.2e6].map(shortCount), ["0", "999", "1.0k", "1.0k", "9.9k", "10k", "12k", "999k", "1.0M", "1.2M"]);
    });
});
