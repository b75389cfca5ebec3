/**
 * Every flow in examples/ (the vision ones and the fleet ones) loads into a real Node-RED
 * runtime with this package's nodes and the core nodes: all node types are known, every wire
 * points at a node, every node starts, and no node reports an error while starting, except a
 * bundled default model that is not there yet (named by the error).
 */
"use strict";
const assert = require("node:assert/strict");
const fs = require("fs");
const path = require("path");
const helper = require("node-red-node-test-helper");

helper.init(require.resolve("node-red"));

const ROOT = path.resolve(__dirname, "..");
const EXAMPLES = path.join(ROOT, "examples");
const PKG = require("../package.json");

/** This package's nodes (package.json node-red.nodes) and every core node module. */
function allNodeModules() {
    const ours = Object.values((PKG["node-red"] || {}).nodes || {}).map((p) => require(path.join(ROOT, p)));
    const coreDir = path.join(path.dirname(require.resolve("@node-red/nodes/package.json")), "core");
    const core = [];
    for (const dir of fs.readdirSync(coreDir)) {
        const d = path.join(coreDir, dir);
        if (!fs.statSync(d).isDirectory()) { continue; }
        for (const f of fs.readdirSync(d)) {
            if (/^\d+-.*\.js$/.test(f)) { core.push(require(path.join(d, f))); }
        }
    }
    return [...ours, ...core];
}

describe("examples", function () {
    this.timeout(60000);
    const files = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith(".json")).sort();
    let modules;

    before(async function () {
        modules = allNodeModules();
        await new Promise((r) => helper.startServer(r));
    });
    after(async function () {
        await new Promise((r) => helper.stopServer(r));
    });
    afterEach(async function () {
        await helper.unload();
    });

    it("there are vision examples and package.json lists the vision nodes", function () {
        assert.ok(files.filter((f) => !f.startsWith("fleet-")).length >= 3, files.join(", "));
        assert.equal(PKG["node-red"].nodes["tinyfer-frame"], "nodes/tinyfer-frame.js");
        assert.equal(PKG["node-red"].nodes["tinyfer-emotion"], "nodes/tinyfer-emotion.js");
    });

    for (const file of files) {
        it(`${file} loads and starts without errors`, async function () {
            const flow = JSON.parse(fs.readFileSync(path.join(EXAMPLES, file), "utf8"));
            assert.ok(Array.isArray(flow) && flow.length > 0);
            const ids = new Set(flow.map((n) => n.id));
            assert.equal(ids.size, flow.length, "unique ids");
            for (const n of flow) {
                for (const out of n.wires || []) {
                    for (const w of out) { assert.ok(ids.has(w), `${n.id} is wired to a missing node ${w}`); }
                }
                if (n.z) { assert.ok(ids.has(n.z), `${n.id} is on a missing tab ${n.z}`); }
                for (const s of Array.isArray(n.scope) ? n.scope : []) { assert.ok(ids.has(s), `${n.id} scopes a missing node ${s}`); }
            }
            await helper.load(modules, flow);
            const nodes = flow.filter((n) => n.type !== "tab");
            const errors = [];
            for (const n of nodes) {
                const node = helper.getNode(n.id);
                assert.ok(node, `${file}: node ${n.id} (${n.type}) did not start: unknown type?`);
                assert.equal(node.type, n.type);
            }
            // let asynchronous start-up (model loading) report
            await new Promise((r) => setTimeout(r, 300));
            for (const n of nodes) {
                const node = helper.getNode(n.id);
                for (const c of node.error.getCalls().filter((x) => x.thisValue === node)) {
                    errors.push(`${n.id} (${n.type}): ${c.args[0] && c.args[0].message ? c.args[0].message : c.args[0]}`);
                }
            }
            const { DEFAULT_MODEL_BLOB } = require("../dist/engine/open");
            const tolerated = fs.existsSync(DEFAULT_MODEL_BLOB) ? [] : [/the bundled default model is missing/];
            const real = errors.filter((e) => !tolerated.some((re) => re.test(e)));
            assert.deepEqual(real, [], `${file}: errors while starting`);
        });
    }
});
