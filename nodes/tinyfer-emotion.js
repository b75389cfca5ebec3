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
    const { SerialInput, dropReporter } = require("../dist/runtime/serial-input");
    const { emotionStatusText, errorStatus } = require("../dist/runtime/status");
    const { checkNodeSettings } = require("../dist/settings/nodes");
    require("../dist/settings/editor").serveEditorSettings(RED);

    function TinyferEmotionNode(config) {
        RED.nodes.createNode(this, config);
        const node = this;
        const rate = new RateMeter();
        const keyProperty = config.keyProperty || "topic";
        let handler = null;
        let configError = null;
        let input = new SerialInput(node);

        try {
            checkNodeSettings("tinyfer-emotion", config);
            handler = new EmotionHandler(config);
            // Bounded: messages that arrive faster than they are classified wait at most queue.maxWaiting deep;
            // a dropped one is warned about once and counted in the status (it never reaches the smoothing or the tracker).
            input = new SerialInput(node, 250, handler.queue, dropReporter(node, handler.queue, showStatus));
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

        /** Forced: shown even within the throttle (when the queue has run empty: the final count stays up). */
        function showStatus(force) {
            const p = handler.last;
            input.status({ fill: p && p.emotion ? "green" : "grey", shape: "dot", text: emotionStatusText(p, rate.rate(), input.stats().dropped) }, force === true);
        }

        function report() {
            rate.tick();
            showStatus(input.stats().waiting === 0);
        }

        /** The input queue now (waiting, busy, maxWaitingSeen, received, handled, dropped, limits): see src/runtime/serial-input.ts QueueStats. */
        node.queueStats = function () { return input.stats(); };

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
            // One message at a time, in arrival order (smoothing needs the frames in sequence); a full queue drops one (handler.queue).
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
