/**
 * tinyfer-frame: image in, 48x48 grayscale faces out (and the frame, or an annotated JPEG).
 * A thin adapter: the logic is src/runtime/frame-node.ts and src/vision/.
 **/

module.exports = function (RED) {
    "use strict";
    const { FrameHandler, filePathsLegacy, FILE_PATHS_LEGACY_NOTE } = require("../dist/runtime/frame-node");
    const { RateMeter } = require("../dist/runtime/rate");
    const { SerialInput, dropReporter } = require("../dist/runtime/serial-input");
    const { errorStatus, frameStatusText } = require("../dist/runtime/status");
    const { checkNodeSettings } = require("../dist/settings/nodes");
    require("../dist/settings/editor").serveEditorSettings(RED);

    function TinyferFrameNode(config) {
        RED.nodes.createNode(this, config);
        const node = this;
        const rate = new RateMeter();
        let handler = null;
        let configError = null;
        let input = new SerialInput(node);
        let lastFaces = 0;

        try {
            checkNodeSettings("tinyfer-frame", config);
            handler = new FrameHandler(config);
            // Bounded: frames that arrive faster than they are processed wait at most queue.maxWaiting deep.
            // A dropped frame: completed without its images when Privacy is on, warned about once, counted in the status.
            input = new SerialInput(node, 250, handler.queue, dropReporter(node, handler.queue, showStatus, function (msg) { handler.dropped(msg); }));
            if (filePathsLegacy(config)) { node.log(FILE_PATHS_LEGACY_NOTE); }
            node.status({});
        } catch (err) {
            configError = err;
            node.error(err.message);
            node.status({ fill: "red", shape: "ring", text: errorStatus(err) });
        }

        /** Frames dropped: the input queue was full, or a chunked source was over its rate. */
        function dropped() {
            return input.stats().dropped + handler.framesDropped.overRate;
        }

        /** Forced: shown even within the throttle (when the queue has run empty: the final count stays up). */
        function showStatus(force) {
            input.status({ fill: lastFaces ? "green" : "grey", shape: "dot", text: frameStatusText(lastFaces, rate.rate(), dropped()) }, force === true);
        }

        function report(msg) {
            rate.tick();
            lastFaces = Array.isArray(msg.faces) ? msg.faces.length : 0;
            showStatus(input.stats().waiting === 0);
        }

        /** The input queue now (waiting, busy, maxWaitingSeen, received, handled, dropped, limits): see src/runtime/serial-input.ts QueueStats. */
        node.queueStats = function () { return input.stats(); };

        node.on("input", function (msg, send, done) {
            if (configError) {
                done(configError);
                return;
            }
            // Fleet chunks are reassembled as they arrive, so only whole frames wait in the queue.
            let ready;
            try {
                ready = handler.assemble(msg);
            } catch (err) {
                input.fail(err, done);
                return;
            }
            if (!ready) {
                input.skip(done);
                return;
            }
            // One frame at a time, in arrival order; a full queue drops a frame (handler.queue).
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
