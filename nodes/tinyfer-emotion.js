/**
 * tinyfer-emotion: faces (or an image) in, emotion out. The model is loaded once per
 * (backend, model path) and shared by every node that uses it.
 * A thin adapter: the logic is src/runtime/emotion-node.ts.
 **/

module.exports = function (RED) {
    "use strict";
    const { EmotionHandler } = require("../dist/runtime/emotion-node");
    const { RateMeter } = require("../dist/runtime/rate");
    const { filePathsLegacy, FILE_PATHS_LEGACY_NOTE } = require("../dist/runtime/frame-node");
    const { SerialInput } = require("../dist/runtime/serial-input");
    const { errorStatus } = require("../dist/runtime/status");
    const { checkNodeSettings } = require("../dist/settings/nodes");
    require("../dist/settings/editor").serveEditorSettings(RED);

    function TinyferEmotionNode(config) {
        RED.nodes.createNode(this, config);
        const node = this;
        const rate = new RateMeter();
        const keyProperty = config.keyProperty || "topic";
        let handler = null;
        let configError = null;
        const input = new SerialInput(node);

        try {
            checkNodeSettings("tinyfer-emotion", config);
            handler = new EmotionHandler(config);
            if (filePathsLegacy(config)) { node.log(FILE_PATHS_LEGACY_NOTE); }
            node.status({ fill: "yellow", shape: "ring", text: "loading model" });
            handler.ready().then(function (c) {
                node.status({ fill: "grey", shape: "dot", text: "ready (" + c.backend + "/" + c.runtime + ")" });
            }, function (err) {
                node.error(err.message);
                node.status({ fill: "red", shape: "ring", text: errorStatus(err) });
            });
        } catch (err) {
            configError = err;
            node.error(err.message);
            node.status({ fill: "red", shape: "ring", text: errorStatus(err) });
        }

        function report() {
            rate.tick();
            const p = handler.last;
            const what = p && p.emotion ? p.emotion + " " + Math.round(p.confidence * 100) + "%" : "no face";
            input.status({ fill: p && p.emotion ? "green" : "grey", shape: "dot", text: what + " | " + rate.rate().toFixed(1) + " msg/s" });
        }

        node.on("input", function (msg, send, done) {
            if (configError) {
                done(configError);
                return;
            }
            let key = "";
            try {
                const k = RED.util.getMessageProperty(msg, keyProperty);
                key = k === undefined || k === null ? "" : String(k);
            } catch (err) {
                key = "";
            }
            // One message at a time, in arrival order: smoothing needs the frames in sequence.
            input.push(msg, function () { return handler.handle(msg, key); }, function (out) {
                report();
                if (out) { send(out); }
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

    RED.nodes.registerType("tinyfer-emotion", TinyferEmotionNode);
};
