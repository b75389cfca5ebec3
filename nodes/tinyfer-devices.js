/**
 * tinyfer-devices: the fleet registry as a node. Emits one message per device event
 * (msg.topic = online | offline | telemetry | emotion | frame), answers registry queries on its
 * input, shows "N online / M offline", and keeps the registry in node context so it survives a
 * restart (the retained status messages then correct it). Logic: src/fleet/registry.ts.
 */
module.exports = function (RED) {
    'use strict';

    const CONTEXT_KEY = 'tinyfer-registry';
    const { connectionStatus, countsText } = require('../dist/fleet/status');
    require('../dist/settings/editor').serveEditorSettings(RED);

    function TinyferDevicesNode(n) {
        RED.nodes.createNode(this, n);
        const node = this;
        node.fleet = RED.nodes.getNode(n.fleet);
        node.events = {
            online: true,
            offline: true,
            telemetry: n.telemetry !== false,
            emotion: n.emotion !== false,
            frame: n.frames === true,
            status: false,
            config: false
        };
        node.persist = n.persist !== false;
        const releases = [];
        let manager = null;
        let state = 'disconnected';
        let saveTimer = null;
        let invalidSeen = 0;

        if (!node.fleet) {
            node.status({ fill: 'red', shape: 'ring', text: 'no fleet configured' });
            node.error('tinyfer-devices: select a tinyfer-fleet configuration');
            node.on('input', (msg, send, done) => done(new Error('tinyfer-devices: no fleet configured')));
            return;
        }

        /** Connected: the device counts (and a protocol fallback); else why the connection is down. */
        function showStatus() {
            if (!manager) return node.status(connectionStatus(node.fleet.view ? node.fleet.view() : { state: 'error' }));
            const c = manager.registry.counts();
            const s = connectionStatus(node.fleet.view(), countsText(c));
            if (s.fill === 'green' && (c.invalid || c.framesDropped)) s.fill = 'yellow';
            node.status(s);
        }

        function save() {
            if (!node.persist || !manager || saveTimer) return;
            saveTimer = setTimeout(() => {
                saveTimer = null;
                if (manager) node.context().set(CONTEXT_KEY, manager.registry.snapshot());
            }, 250);
        }

        function onEvent(ev) {
            if (ev.type === 'online' || ev.type === 'offline') { save(); showStatus(); }
            if (!node.events[ev.type]) return;
            const msg = { topic: ev.type, device: ev.device, payload: ev.payload };
            if (ev.frameId !== undefined) msg.frameId = ev.frameId;
            if (ev.retained) msg.retained = true;
            node.send(msg);
        }

        function onInvalid(inv) {
            invalidSeen++;
            // First bad message of each device/topic pair, then every 100th: never a warning flood.
            if (inv.count === 1 || inv.count % 100 === 0) {
                node.warn(`bad ${inv.kind} message from ${inv.deviceId || inv.topic} (#${inv.count}): ${inv.error}`);
            }
            showStatus();
        }

        let droppedShown = 0;
        let droppedTimer = null;
        function onDropped() {
            // Under a frame flood the status is refreshed at most every 500 ms, and once after the last drop.
            if (droppedTimer) return;
            const wait = Math.max(0, 500 - (Date.now() - droppedShown));
            droppedTimer = setTimeout(() => {
                droppedTimer = null;
                droppedShown = Date.now();
                showStatus();
            }, wait);
        }

        node.onFleetState = function (s) {
            state = s;
            showStatus();
        };

        manager = node.fleet.register(node);
        if (manager) {
            if (node.persist) {
                const restored = manager.registry.restore(node.context().get(CONTEXT_KEY));
                if (restored) node.log(`restored ${restored} devices from context`);
            }
            manager.on('event', onEvent);
            manager.on('invalid', onInvalid);
            manager.registry.on('dropped', onDropped);
            if (node.events.telemetry) releases.push(manager.useStream('telemetry'));
            if (node.events.emotion) releases.push(manager.useStream('emotion'));
            if (node.events.frame) releases.push(manager.useStream('frame'));
            state = manager.conn.state;
        }
        showStatus();

        node.on('input', function (msg, send, done) {
            if (!manager) return done(new Error('tinyfer-devices: the fleet connection is not configured correctly'));
            const id = typeof msg.device === 'string' ? msg.device : null;
            if (id) {
                const d = manager.registry.get(id);
                if (!d) return done(new Error(`tinyfer-devices: unknown device ${id}`));
                msg.payload = d;
            } else {
                msg.payload = manager.registry.list();
                msg.counts = manager.registry.counts();
            }
            msg.topic = 'devices';
            send(msg);
            done();
        });

        node.on('close', function (removed, done) {
            clearTimeout(droppedTimer);
            droppedTimer = null;
            clearTimeout(saveTimer);
            saveTimer = null;
            if (manager) {
                if (node.persist && !removed) node.context().set(CONTEXT_KEY, manager.registry.snapshot());
                if (removed) node.context().set(CONTEXT_KEY, undefined);
                manager.off('event', onEvent);
                manager.off('invalid', onInvalid);
                manager.registry.off('dropped', onDropped);
            }
            for (const r of releases.splice(0)) r();
            manager = null;
            node.fleet.deregister(node, done);
        });
    }

    RED.nodes.registerType('tinyfer-devices', TinyferDevicesNode);
};
