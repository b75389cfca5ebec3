/**
 * File paths are an explicit opt-in (issue 19): the frame and emotion nodes read a string
 * payload as a file path only when their 'Accept file paths' setting says so; new nodes (and
 * every example that takes outside input) refuse it before touching the file system; nodes saved
 * before the setting keep reading paths and say so once in the log. The emotion-on-change HTTP
 * example takes the posted bytes whatever the content type, and a posted path is refused
 * without any file system call.
 */
"use strict";
const assert = require("node:assert/strict");
const fs = require("fs");
const path = require("path");
const http = require("http");
const helper = require("node-red-node-test-helper");
const frameNode = require("../nodes/tinyfer-frame.js");
const emotionNode = require("../nodes/tinyfer-emotion.js");
const catchNode = require("@node-red/nodes/core/common/25-catch.js");
const fx = require("./fixtures/faces");
const { readImageInput } = require("../dist/vision/decode");
const { FILE_PATHS_LEGACY_NOTE } = require("../dist/runtime/frame-node");

helper.init(require.resolve("node-red"));

const ROOT = path.resolve(__dirname, "..");

/** POST raw bytes (no client-side serialisation) to an express app; resolves {status, text, body}. */
function post(app, url, type, bytes) {
    return new Promise((resolve, reject) => {
        const server = http.createServer(app).listen(0, "127.0.0.1", () => {
            const data = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
            const req = http.request({ host: "127.0.0.1", port: server.address().port, path: url, method: "POST", headers: { "Content-Type": type, "Content-Length": data.length } }, (res) => {
                const parts = [];
                res.on("data", (c) => parts.push(c));
                res.on("end", () => {
                    server.close();
                    const text = Buffer.concat(parts).toString();
                    let body = null;
                    try { body = JSON.parse(text); } catch (e) { body = null; }
                    resolve({ status: res.statusCode, text, body });
                });
            });
            req.on("error", (e) => { server.close(); reject(e); });
            req.end(data);
        });
    });
}

/**
 * Record every call into fs (sync, callback and promise APIs) whose arguments mention `needle`,
 * while `fn` runs. Returns the list of "api(args)" strings.
 */
async function fsCallsMentioning(needle, fn) {
    const calls = [];
    const undo = [];
    const wrap = (obj, name, label) => {
        const orig = obj[name];
        if (typeof orig !== "function") { return; }
        obj[name] = function (...args) {
            if (args.some((a) => (typeof a === "string" && a.includes(needle)) || (Buffer.isBuffer(a) && a.includes(needle)))) {
                calls.push(`${label}${name}(${String(args[0])})`);
            }
            return orig.apply(this, args);
        };
        undo.push(() => { obj[name] = orig; });
    };
    for (const n of ["stat", "lstat", "open", "readFile", "access", "realpath", "createReadStream", "existsSync", "statSync", "readFileSync", "openSync", "lstatSync", "accessSync"]) {
        wrap(fs, n, "fs.");
    }
    for (const n of ["stat", "lstat", "open", "readFile", "access", "realpath"]) { wrap(fs.promises, n, "fs.promises."); }
    try {
        await fn();
    } finally {
        for (const u of undo.reverse()) { u(); }
    }
    return calls;
}

describe("file paths are an opt-in", function () {
    this.timeout(60000);
    let jaffe;

    before(async function () {
        jaffe = path.join(fx.requireData(this, "jaffe", "happy"), "KA.HA1.29.tiff");
        await new Promise((r) => helper.startServer(r));
    });
    after(async function () {
        await new Promise((r) => helper.stopServer(r));
    });
    afterEach(async function () {
        await helper.unload();
    });

    it("readImageInput with filePaths false refuses a path with E_FILE_PATH and no file system call; a data URL still works", async function () {
        let err;
        const calls = await fsCallsMentioning(jaffe, async () => {
            err = await readImageInput(jaffe, { maxBytes: 1e7, filePaths: false }).catch((e) => e);
        });
        assert.equal(err.code, "E_FILE_PATH");
        assert.match(err.message, /file paths are off for this node/);
        assert.deepEqual(calls, []);
        const bytes = fs.readFileSync(jaffe);
        const url = "data:image/tiff;base64," + bytes.toString("base64");
        assert.deepEqual(await readImageInput(url, { maxBytes: 1e7, filePaths: false }), bytes);
        // the library default (programmatic use, e.g. training) still reads paths
        assert.deepEqual(await readImageInput(jaffe), bytes);
    });

    /** Nodes on a tab with a catch node; returns the messages seen at 'out' and 'caught'. */
    async function loadNodes(nodes) {
        const flow = [
            { id: "tab", type: "tab", label: "t" },
            ...nodes.map((n) => ({ z: "tab", x: 100, y: 100, wires: [["out"]], ...n })),
            { id: "out", type: "helper", z: "tab" },
            { id: "catch", type: "catch", z: "tab", x: 100, y: 200, scope: null, wires: [["caught"]] },
            { id: "caught", type: "helper", z: "tab" },
        ];
        await helper.load([frameNode, emotionNode, catchNode], flow);
        const seen = { out: [], caught: [] };
        helper.getNode("out").on("input", (m) => seen.out.push(m));
        helper.getNode("caught").on("input", (m) => seen.caught.push(m));
        return seen;
    }

    async function until(cond, ms = 20000) {
        const t0 = Date.now();
        while (!cond()) {
            if (Date.now() - t0 > ms) { throw new Error("timed out"); }
            await new Promise((r) => setTimeout(r, 50));
        }
    }

    for (const type of ["tinyfer-frame", "tinyfer-emotion"]) {
        it(`${type}: off (the new-node default) refuses a path before touching the file system; on reads it`, async function () {
            const seen = await loadNodes([
                { id: "off", type, filePaths: false },
                { id: "on", type, filePaths: true },
            ]);
            let calls = await fsCallsMentioning(jaffe, async () => {
                helper.getNode("off").receive({ payload: jaffe, topic: "off" });
                await until(() => seen.caught.length === 1);
            });
            assert.deepEqual(calls, []);
            assert.match(seen.caught[0].error.message, /file paths are off for this node/);
            assert.equal(seen.out.length, 0);
            calls = await fsCallsMentioning(jaffe, async () => {
                helper.getNode("on").receive({ payload: jaffe, topic: "on" });
                await until(() => seen.out.length === 1);
            });
            assert.ok(calls.length > 0, "the opted-in node reads the file");
            assert.equal(seen.out[0].faces.length, 1);
        });

        it(`${type}: a node saved before the setting keeps reading paths and logs that once`, async function () {
            const seen = await loadNodes([{ id: "old", type }]);
            helper.getNode("old").receive({ payload: jaffe });
            helper.getNode("old").receive({ payload: jaffe });
            await until(() => seen.out.length === 2);
            assert.equal(seen.caught.length, 0);
            const notes = helper.log().args.filter((a) => a[0] && a[0].id === "old" && a[0].msg === FILE_PATHS_LEGACY_NOTE);
            assert.equal(notes.length, 1, "logged exactly once");
        });
    }

    it("the emotion-on-change HTTP example classifies the posted bytes whatever the content type and refuses a path string without touching the file system", async function () {
        const PKG = require("../package.json");
        const ours = Object.values(PKG["node-red"].nodes).map((p) => require(path.join(ROOT, p)));
        let httpNode = null;
        const grab = (RED) => { httpNode = RED.httpNode; };
        const core = ["network/21-httpin.js", "common/25-catch.js", "function/15-change.js", "function/10-switch.js", "common/21-debug.js"]
            .map((f) => require(path.join(path.dirname(require.resolve("@node-red/nodes/package.json")), "core", f)));
        const flow = JSON.parse(fs.readFileSync(path.join(ROOT, "examples", "emotion-on-change.json"), "utf8"));
        await helper.load([...ours, ...core, grab], flow);
        assert.ok(httpNode, "the http in node's express app");
        const image = await fx.frameWithFace(jaffe, 190, 110);
        for (const type of ["image/jpeg", "text/plain", "application/json", "application/x-www-form-urlencoded"]) {
            const r = await post(httpNode, "/tinyfer/frame?camera=hall", type, image);
            assert.equal(r.status, 200, `${type}: ${r.text}`);
            assert.equal(r.body.faces.length, 1, type);
            assert.ok(typeof r.body.emotion === "string", type);
        }
        for (const type of ["text/plain", "application/json", "application/x-www-form-urlencoded"]) {
            for (const body of [jaffe, JSON.stringify(jaffe), "payload=" + encodeURIComponent(jaffe)]) {
                let r;
                const calls = await fsCallsMentioning(path.basename(jaffe), async () => {
                    r = await post(httpNode, "/tinyfer/frame?camera=hall", type, body);
                });
                assert.equal(r.status, 400, `${type} ${body}: ${r.text}`);
                assert.doesNotMatch(r.text, /"emotion"/);
                assert.deepEqual(calls, [], `${type} ${body}: the file system was touched`);
            }
        }
    });
});
