/**
 * tinyfer-command: sends a command to one device, a list, or all known devices of a fleet and
 * outputs each device's acknowledgement; a timeout or a device error goes to done(err) so a Catch
 * node sees it. model_update sends a model blob (msg.payload Buffer or a file path), inline or in
 * chunks, signed with Ed25519; firmware_update does the same with an application image (signed
 * with the firmware key). Logic: src/fleet/commands.ts.
 */
module.exports = function (RED) {
    'use strict';
    const fs = require('node:fs');
    const { COMMANDS, checkDeviceId, MAX_MODEL_BYTES, MAX_FIRMWARE_BYTES } = require('../dist/fleet/protocol');
    const { bundledModel, resolveModel } = require('../dist/engine/open');
    const { connectionStatus } = require('../dist/fleet/status');
    const { errorStatus, withStatus } = require('../dist/runtime/status');
    const { checkNodeSettings } = require('../dist/settings/nodes');
    require('../dist/settings/editor').serveEditorSettings(RED);

    function TinyferCommandNode(n) {
        RED.nodes.createNode(this, n);
        const node = this;
        node.fleet = RED.nodes.getNode(n.fleet);
        node.command = n.command || 'get_config';
        node.target = (n.target || '').trim();
        node.timeout = n.timeout === '' || n.timeout === undefined || n.timeout === null ? 10 : Number(n.timeout);
        node.keyFile = (n.keyFile || '').trim();
        let manager = null;
        let busy = 0;
        let closed = false;

        let configError = null;
        try {
            checkNodeSettings('tinyfer-command', n);
        } catch (err) {
            configError = err;
        }
        if (!node.fleet || configError) {
            const err = configError || new Error('tinyfer-command: no fleet configured: select a tinyfer-fleet configuration');
            node.status({ fill: 'red', shape: 'ring', text: configError ? errorStatus(configError) : 'no fleet configured' });
            node.error(err.message);
            node.on('input', (msg, send, done) => done(err));
            return;
        }

        node.onFleetState = function () {
            if (busy) return;
            node.status(connectionStatus(node.fleet.view()));
        };
        manager = node.fleet.register(node);

        /** msg.device: 'id', ['id', ...], a device record, or 'all' (online devices); else the configured target. */
        function targets(msg) {
            let t = msg.device !== undefined ? msg.device : node.target;
            if (t && typeof t === 'object' && !Array.isArray(t) && typeof t.id === 'string') t = t.id; // a record from tinyfer-devices
            if (typeof t === 'string') t = t.trim();
            if (t === 'all' || t === '*') {
                const online = manager.registry.ids('online');
                if (!online.length) throw withStatus(new Error('tinyfer-command: no online devices for "all"'), 'no online devices');
                return online;
            }
            if (typeof t === 'string' && t.includes(',')) t = t.split(',').map((s) => s.trim()).filter(Boolean);
            const list = Array.isArray(t) ? t : [t];
            if (!list.length || list.some((d) => typeof d !== 'string' || !d)) throw withStatus(new Error('tinyfer-command: msg.device must be a device id, a list of ids, or "all"'), 'no device given');
            try {
                list.forEach(checkDeviceId);
            } catch (err) {
                throw withStatus(err, 'bad device id');
            }
            return list;
        }

        async function updateBlob(cmd, msg) {
            if (Buffer.isBuffer(msg.payload)) return msg.payload;
            let file = typeof msg.payload === 'string' ? msg.payload : msg.filename;
            if (cmd === 'firmware_update') {
                if (typeof file !== 'string' || !file) throw withStatus(new Error('firmware_update: msg.payload must be a Buffer with the firmware image or its file path'), 'no firmware image given');
            } else {
                if (typeof file !== 'string' || !file) throw withStatus(new Error('model_update: msg.payload must be a Buffer with the model blob, a file path or a bundled model\'s name'), 'no model blob given');
                if (bundledModel(file)) file = resolveModel(file, 'binary'); // e.g. "tinyfer-b1": the package's models/tinyfer-b1.tfer
            }
            const max = cmd === 'firmware_update' ? MAX_FIRMWARE_BYTES : MAX_MODEL_BYTES;
            const st = await fs.promises.stat(file);
            if (st.size > max) throw new Error(`${cmd}: ${file} is ${st.size} bytes (> ${max})`);
            return fs.promises.readFile(file);
        }

        async function run(msg) {
            const cmd = typeof msg.command === 'string' && msg.command ? msg.command : node.command;
            if (!COMMANDS.includes(cmd)) throw withStatus(new Error(`tinyfer-command: unknown command "${cmd}" (one of ${COMMANDS.join(', ')})`), 'unknown command');
            const ids = targets(msg);
            const opts = { timeoutMs: Number(msg.timeout) > 0 ? Number(msg.timeout) * 1000 : node.timeout * 1000 };
            let send;
            if (cmd === 'model_update' || cmd === 'firmware_update') {
                const blob = await updateBlob(cmd, msg);
                const version = msg.version || (msg.payload && typeof msg.payload === 'string' ? require('node:path').basename(msg.payload) : '');
                if (!version) throw withStatus(new Error(`${cmd}: msg.version is required`), 'msg.version missing');
                const mo = { ...opts, version: String(version), signature: msg.signature, chunked: msg.chunked === true };
                if (!mo.signature) {
                    if (!node.keyFile) throw withStatus(new Error(`${cmd}: msg.signature or a signing key file is required`), 'no signature or key file');
                    mo.key = await fs.promises.readFile(node.keyFile);
                }
                send = cmd === 'firmware_update' ? (id) => manager.commands.firmwareUpdate(id, blob, mo) : (id) => manager.commands.modelUpdate(id, blob, mo);
            } else {
                let params = msg.payload;
                if (params === undefined || params === null || params === '' || typeof params !== 'object' || Buffer.isBuffer(params)) params = undefined;
                if (cmd === 'set_config' && !params) throw withStatus(new Error('set_config: msg.payload must be an object with the settings to change'), 'set_config needs an object');
                send = (id) => manager.commands.request(id, cmd, params, opts);
            }
            return { cmd, ids, results: await Promise.allSettled(ids.map((id) => send(id))) };
        }

        node.on('input', function (msg, send, done) {
            if (!manager) return done(new Error('tinyfer-command: the fleet connection is not configured correctly'));
            busy++;
            node.status({ fill: 'blue', shape: 'dot', text: 'sending' });
            run(msg).then(({ cmd, ids, results }) => {
                busy--;
                if (closed) return done(); // redeployed meanwhile: nothing to send to
                const failed = [];
                results.forEach((r, i) => {
                    if (r.status === 'fulfilled') {
                        const out = RED.util.cloneMessage(msg);
                        out.topic = cmd;
                        out.device = ids[i];
                        out.payload = r.value.result || {};
                        out.response = r.value;
                        send(out);
                    } else {
                        failed.push({ device: ids[i], code: r.reason.code || 'error', message: r.reason.message });
                    }
                });
                const ok = results.length - failed.length;
                if (!failed.length) {
                    node.status({ fill: 'green', shape: 'dot', text: `${cmd}: ${ok}/${results.length} ok` });
                    return done();
                }
                node.status({ fill: 'red', shape: 'ring', text: errorStatus(`${failed.length}/${results.length} failed: ${failed[0].code}`) });
                msg.failed = failed;
                done(new Error(failed.length === 1 && results.length === 1 ? failed[0].message
                    : `${cmd}: ${failed.length} of ${results.length} devices failed: ${failed.map((f) => `${f.device} ${f.code}`).join(', ')}`));
            }, (err) => {
                busy--;
                node.status({ fill: 'red', shape: 'ring', text: errorStatus(err) });
                done(err);
            });
        });

        node.on('close', function (removed, done) {
            closed = true;
            manager = null;
            node.fleet.deregister(node, done);
        });
    }

    RED.nodes.registerType('tinyfer-command', TinyferCommandNode);
};
