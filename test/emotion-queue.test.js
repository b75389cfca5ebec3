/**
 * tinyfer-emotion's bounded input queue in a real Node-RED runtime (the same SerialInput,
 * settings, drop reporting and status helper as tinyfer-frame's, test/frame-queue.test.js):
 * images sent faster than the node classifies them (real frames with a JAFFE face, as an
 * `mqtt in` node delivers them) wait at most 'Queue' deep; the rest are dropped (the oldest
 * waiting, or the newest), each dropped message still completes once (a Complete node sees every
 * message exactly once, a Catch node none), the drops are counted in node.queueStats() and the
 * status, and warned about once. A dropped message is never seen by the smoothing (per topic and
 * per track): its frame counts only the messages processed. Nothing here depends on timing: bursts
 * are sent synchronously (one JS turn), so which messages are dropped is determined.
 */
"use strict";
const assert = require("node:assert/strict");
const vm = require("node:vm");
const helper = require("node-red-node-test-helper");
const emotionNode = require("../nodes/tinyfer-emotion.js");
const catchNode = require("@node-red/nodes/core/common/25-catch.js");
const completeNode = require("@node-red/nodes/core/common/24-complete.js");
const statusNode = require("@node-red/nodes/core/common/25-status.js");
const fx = require("./fixtures/faces");
const { checkNodeSettings } = require("../dist/settings/nodes");
const { editorScript } = require("../dist/settings/editor");
const { EmotionHandler } = require("../dist/runtime/emotion-node");
const { emotionStatusText, frameStatusText, STATUS_MAX } = require("../dist/runtime/status");
const { DEFAULT_QUEUE_SIZE, queueDropWarning } = require("../dist/runtime/serial-input");
const { scopedFlow, watchScoped } = require("./helpers/queue-flow");
const { waitFor } = require("./helpers/fleet");

helper.init(require.resolve("node-red"));
const NODES = [emotionNode, catchNode, completeNode, statusNode];

/** The emotion node `emo` (extra settings), with a Complete, a Catch and a Status node scoped to it. */
function flow(settings) {
    return scopedFlow("tinyfer-emotion", "emo", { views: "1", ...settings }, "emotion queue test");
}

/** What the flow's helper nodes get, by the `seq` each input message carries. */
function watch() {
    return watchScoped(helper, (m) => ({ seq: m.seq, payload: m.payload, faces: m.faces }));
}

/** Wait until `cond()` holds (test/helpers/fleet.js; the limit is only a guard against a hang). */
const until = (cond, what, ms = 120000) => waitFor(cond, ms, what);

/** The warnings the emotion node logged in this test (the helper's log spy). */
function warnings() {
    const log = helper.log();
    return log.args.filter(([e]) => e.level === log.WARN && e.id === "emo").map(([e]) => String(e.msg));
}

describe("tinyfer-emotion: bounded input queue", function () {
    this.timeout(300000);
    let frame; // a 640x480 frame with a JAFFE happy face

    before(async function () {
        frame = await fx.frameWithFace(fx.jaffePerSubject("happy")[0], 200, 100);
    });
    afterEach(() => helper.unload());

    it("settings: queueSize 1..10000 (default 100, also for flows saved without it) and queueDrop oldest|newest, the editor's check = the runtime's = the handler's", async function () {
        const window = {};
        vm.runInNewContext(editorScript(), { window });
        for (const [name, v, re] of [["queueSize", "0", /^queueSize must be an integer 1\.\.10000, got "0"$/], ["queueSize", "2.5", /^queueSize must be an integer 1\.\.10000, got "2\.5"$/],
            ["queueSize", "10001", /^queueSize must be an integer 1\.\.10000/], ["queueDrop", "random", /^queueDrop must be one of oldest, newest, got "random"$/]]) {
            assert.match(String(window.TinyFER.validate("tinyfer-emotion", name)(v, {})), re);
            assert.throws(() => checkNodeSettings("tinyfer-emotion", { [name]: v }), (e) => e instanceof RangeError && re.test(e.message));
            assert.throws(() => new EmotionHandler({ [name]: v }), (e) => e instanceof RangeError && /^queue(Size|Drop) must be/.test(e.message));
        }
        for (const [name, v] of [["queueSize", "1"], ["queueSize", "10000"], ["queueSize", ""], ["queueDrop", "newest"], ["queueDrop", ""]]) {
            assert.equal(window.TinyFER.validate("tinyfer-emotion", name)(v, {}), true, `${name} ${v}`);
        }
        // a flow saved before the settings existed: the defaults
        await helper.load(NODES, flow({}));
        assert.deepEqual(helper.getNode("emo").queueStats().limits, { maxWaiting: DEFAULT_QUEUE_SIZE, drop: "oldest" });
        assert.equal(DEFAULT_QUEUE_SIZE, 100);
        await helper.unload();
        // a bad one deployed anyway: the node says why, and every message fails with it at a Catch node
        await helper.load(NODES, flow({ queueDrop: "random" }));
        const w = watch();
        helper.getNode("emo").receive({ payload: frame, seq: 0 });
        await until(() => w.caught.length === 1, "the config error at catch");
        assert.match(w.caught[0].error, /queueDrop must be one of oldest, newest, got "random"$/);
        assert.equal(w.completed.size, 0);
    });

    for (const [drop, expected] of [["oldest", [0, 28, 29]], ["newest", [0, 1, 2]]]) {
        it(`drop ${drop}: a burst of 30 images into a queue of 2 classifies ${expected.join(", ")}; all 30 complete once; 27 dropped, in the status and warned once; the smoothing sees only the 3 classified`, async function () {
            await helper.load(NODES, flow({ queueSize: 2, queueDrop: drop, smoothing: "ema", alpha: "0.5" }));
            const w = watch();
            const node = helper.getNode("emo");
            for (let i = 0; i < 30; i++) {
                node.receive({ payload: Buffer.from(frame), seq: i, topic: "cam1" });
                assert.ok(node.queueStats().waiting <= 2, `waiting ${node.queueStats().waiting} after message ${i}`);
            }
            await until(() => w.completed.size === 30 && !node.queueStats().busy, "30 completions");
            const s = node.queueStats();
            assert.deepEqual(w.out.map((o) => o.seq), expected);
            for (const [k, o] of w.out.entries()) {
                assert.equal(o.payload.emotion, "happy", `message ${o.seq}`);
                assert.equal(o.payload.faces.length, 1);
                // per topic and per track, the smoother counted only the classified messages
                assert.deepEqual({ key: o.payload.smoothing.key, frames: o.payload.smoothing.frames }, { key: "cam1", frames: k + 1 });
                assert.equal(o.payload.faces[0].smoothed.frames, k + 1);
                assert.equal(o.payload.faces[0].track, w.out[0].payload.faces[0].track, "one track throughout");
            }
            assert.deepEqual({ received: s.received, handled: s.handled, dropped: s.dropped, waiting: s.waiting, maxWaitingSeen: s.maxWaitingSeen, waitingBytes: s.waitingBytes },
                { received: 30, handled: 3, dropped: 27, waiting: 0, maxWaitingSeen: 2, waitingBytes: 0 });
            for (let i = 0; i < 30; i++) { assert.equal(w.completed.get(i), 1, `message ${i} completed once`); }
            assert.deepEqual(w.caught, []);
            await until(() => w.statuses.length && w.statuses[w.statuses.length - 1].endsWith("| 27 dropped"), "the status with the drops");
            assert.match(w.statuses[w.statuses.length - 1], /^happy \d+% \| \d+\.\d( msg)?\/s \| 27 dropped$/);
            const warned = warnings();
            assert.deepEqual(warned, [queueDropWarning({ maxWaiting: 2, drop })]);
            assert.match(warned[0], drop === "oldest" ? /2 are waiting, so the oldest waiting frame is dropped/ : /2 are waiting, so new frames are dropped/);
        });
    }

    it("msg.faces from a frame node (several topics, one queue): a burst of 12 into a queue of 3 (oldest) classifies the first and the last 3; each topic's smoothing sees only its own classified messages", async function () {
        await helper.load(NODES, flow({ queueSize: 3, smoothing: "majority", window: "5" }));
        const w = watch();
        const node = helper.getNode("emo");
        // the node's own frame pipeline gives the 48x48 crop of the real face, as a tinyfer-frame node sends it
        node.receive({ payload: Buffer.from(frame), seq: -1, topic: "warm" });
        await until(() => w.completed.get(-1) === 1, "the warm-up message");
        const { box, pixels } = w.out[0].faces[0];
        assert.equal(pixels.length, 48 * 48);
        assert.equal(w.out[0].payload.emotion, "happy");
        w.out.length = 0;
        const facesMsg = (i) => ({ seq: i, topic: i % 2 ? "camB" : "camA", faces: [{ box: { ...box }, pixels: Uint8Array.from(pixels) }] });
        for (let i = 0; i < 12; i++) { node.receive(facesMsg(i)); }
        await until(() => w.completed.size === 13 && !node.queueStats().busy, "13 completions");
        assert.deepEqual(w.out.map((o) => o.seq), [0, 9, 10, 11]);
        const byTopic = {};
        for (const o of w.out) {
            const t = o.payload.smoothing.key;
            byTopic[t] = (byTopic[t] || 0) + 1;
            assert.equal(o.payload.smoothing.frames, byTopic[t], `message ${o.seq} (${t})`);
        }
        assert.deepEqual(byTopic, { camA: 2, camB: 2 }); // 0, 10 and 9, 11
        assert.ok(w.out.every((o) => o.payload.emotion === "happy"));
        assert.equal(node.queueStats().dropped, 8);
        for (let i = 0; i < 12; i++) { assert.equal(w.completed.get(i), 1, `message ${i} completed once`); }
        assert.deepEqual(w.caught, []);
        assert.equal(warnings().length, 1);
    });

    it("status text: last emotion, rate, drops, within 32 characters for any count (one helper with tinyfer-frame's)", function () {
        assert.equal(emotionStatusText({ emotion: "happy", confidence: 0.874 }, 4.5, 0), "happy 87% | 4.5 msg/s");
        assert.equal(emotionStatusText(undefined, 0, 0), "no face | 0.0 msg/s");
        assert.equal(emotionStatusText({ emotion: null, confidence: 0 }, 2, 3), "no face | 2.0 msg/s | 3 dropped");
        assert.equal(emotionStatusText({ emotion: "happy", confidence: 0.874 }, 4.5, 27), "happy 87% | 4.5/s | 27 dropped"); // "msg/s" would make it 34
        assert.equal(emotionStatusText({ emotion: "surprise", confidence: 1 }, 12.5, 1234), "surprise 100% | 1.2k dropped");
        for (const emotion of ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", null]) {
            for (const rate of [0, 9.99, 123.4, 9999]) {
                for (const d of [0, 1, 999, 1000, 12345, 999500, 1e7, 1e13]) {
                    const t = emotionStatusText({ emotion, confidence: 1 }, rate, d);
                    assert.ok(t.length <= STATUS_MAX, t);
                    if (d) assert.match(t, / dropped$/, t);
                }
            }
        }
        assert.equal(frameStatusText(1, 4.5, 27), "1 face | 4.5 msg/s | 27 dropped");
    });
});
