/**
 * tinyfer-frame: image in, 48x48 grayscale faces out (and the frame, or an annotated JPEG).
 * A thin adapter: the logic is src/runtime/frame-node.ts and src/vision/.
 **/

module.exports = function (RED) {
    "use strict";
    const { FrameHandler, filePathsLegacy, FILE_PATHS_LEGACY_NOTE } = require("../dist/runtime/frame-node");
    const { RateMeter } = require("../dist/runtime/rate");
    const { SerialInput } = require("../dist/runtime/serial-input");
    const { errorStatus } = require("../dist/runtime/status");
    const { checkNodeSettings } = require("../dist/settings/nodes");
    require("../dist/settings/editor").serveEditorSettings(RED);

    function TinyferFrameNode(config) {
        RED.nodes.createNode(this, config);
        const node = this;
        const rate = new RateMeter();
        let handler = null;
        let configError = null;
        const input = new SerialInput(node);

        try {
            checkNodeSettings("tinyfer-frame", config);
            handler = new FrameHandler(config);
            if (filePathsLegacy(config)) { node.log(FILE_PATHS_LEGACY_NOTE); }
            node.status({});
        } catch (err) {
            configError = err;
            node.error(err.message);
            node.status({ fill: "red", shape: "ring", text: errorStatus(err) });
        }

        function report(msg) {
            rate.tick();
            const n = Array.isArray(msg.faces) ? msg.faces.length : 0;
            const what = n === 0 ? "no face" : (n === 1 ? "1 face" : n + " faces");
            const d = handler.framesDropped;
            const dropped = d.overRate ? " | " + d.overRate + " frames over rate" : "";
            input.status({ fill: n ? "green" : "grey", shape: "dot", text: what + " | " + rate.rate().toFixed(1) + " msg/s" + dropped });
        }

        node.on("input", function (msg, send, done) {
            if (configError) {
                done(configError);
                return;
            }
            // One message at a time, in arrival order: bounded memory, and chunks stay in order.
            input.push(msg, function () { return handler.handle(msg); }, function (out) {
                if (out) {
                    report(out);
                    send(out);
                }
            }, done);
        });

        node.on("close", function (removed, done) {
            input.idle().then(function () {
                if (handler) { handler.close(); }
                node.status({});
                done();
            });
        });
    }

    RED.nodes.registerType("tinyfer-frame", TinyferFrameNode);
};
