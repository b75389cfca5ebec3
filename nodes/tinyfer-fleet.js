/**
 * tinyfer-fleet: the config node that owns one MQTT connection to a TinyFER fleet. Device and
 * command nodes register with it; it connects when the first one does, re-subscribes after a
 * reconnect and tells its users when the connection state changes. The logic is in
 * src/fleet/manager.ts (FleetManager); this file only adapts it to Node-RED.
 */
module.exports = function (RED) {
    'use strict';
    const { FleetManager } = require('../dist/fleet/manager');
    const { checkNodeSettings } = require('../dist/settings/nodes');
    const { errorStatus } = require('../dist/runtime/status');
    require('../dist/settings/editor').serveEditorSettings(RED);

    function TinyferFleetNode(n) {
        RED.nodes.createNode(this, n);
        const node = this;
        node.url = (n.url || '').trim();
        node.clientId = (n.clientId || '').trim();
        node.prefix = (n.prefix || 'tinyfer').trim();
        let settingsError = null;
        try {
            checkNodeSettings('tinyfer-fleet', n);
        } catch (err) {
            settingsError = err;
        }
        node.protocolVersion = Number(n.protocolVersion) === 4 ? 4 : 5;
        node.sharedGroup = (n.sharedGroup || '').trim();
        node.homeAssistant = n.homeAssistant === true || n.homeAssistant === 'true';
        node.discoveryPrefix = (n.discoveryPrefix || 'homeassistant').trim();
        node.haImageInterval = n.haImageInterval === undefined || n.haImageInterval === '' ? undefined : Number(n.haImageInterval);
        node.modelKeyFile = (n.modelKeyFile || '').trim();
        node.commandTimeout = n.commandTimeout === '' || n.commandTimeout === undefined || n.commandTimeout === null ? 10 : Number(n.commandTimeout);
        node.users = {};
        node.manager = null;
        node.closing = false;

        const options = {
            url: node.url,
            clientId: node.clientId || undefined,
            prefix: node.prefix,
            protocolVersion: node.protocolVersion,
            sharedGroup: node.sharedGroup || undefined,
            homeAssistant: node.homeAssistant,
            discoveryPrefix: node.discoveryPrefix,
            haImageInterval: node.haImageInterval,
            commandTimeoutMs: node.commandTimeout * 1000,
            reconnectPeriodMs: RED.settings.mqttReconnectTime || 2000
        };
        // Frame limits: '' keeps the defaults (10 frames/s per device, 32 MB of partial frames in all).
        if (n.maxFrameRate !== undefined && n.maxFrameRate !== '') options.maxFrameRate = Number(n.maxFrameRate);
        if (n.maxPendingFrameMb !== undefined && n.maxPendingFrameMb !== '') options.maxPendingFrameBytes = Math.round(Number(n.maxPendingFrameMb) * 1024 * 1024);
        if (node.credentials) {
            options.username = node.credentials.user || undefined;
            options.password = node.credentials.password || undefined;
        }
        if (n.usetls && n.tls) {
            const tlsNode = RED.nodes.getNode(n.tls);
            if (tlsNode) {
                const tls = {};
                tlsNode.addTLSOptions(tls);
                options.tls = tls;
            }
        }

        function notify() {
            const state = node.state();
            for (const id of Object.keys(node.users)) {
                const u = node.users[id];
                if (typeof u.onFleetState === 'function') u.onFleetState(state);
            }
        }

        /** 'connected' | 'connecting' | 'reconnecting' | 'disconnected' | 'closed' | 'error' */
        node.state = function () {
            if (!node.manager) return node.error_ ? 'error' : 'disconnected';
            return node.manager.conn.state;
        };

        /** What users show (src/fleet/status.ts connectionStatus): the state, why it is down (<= 32 chars), a protocol fallback. */
        node.view = function () {
            if (!node.manager) return { state: node.state(), failure: node.error_ ? errorStatus(node.error_) : undefined };
            const c = node.manager.conn;
            return { state: c.state, failure: c.failure, fellBack: c.fellBack };
        };

        let reported = '';
        node.connect = function () {
            if (node.manager || node.closing) return node.manager;
            try {
                if (settingsError) throw settingsError;
                // The key that signs the model Home Assistant's update entity installs: without it (or
                // when it cannot be read) the entity does not offer install and says why.
                if (node.homeAssistant && node.modelKeyFile) {
                    try {
                        options.modelKey = require('node:fs').readFileSync(node.modelKeyFile);
                    } catch (err) {
                        options.modelKeyProblem = `the model signing key file cannot be read (${err.code || err.message})`;
                        node.error(`Home Assistant model install is off: cannot read the model signing key ${node.modelKeyFile}: ${err.message}`);
                    }
                }
                node.manager = new FleetManager(options);
            } catch (err) {
                node.error_ = err;
                node.error(err.message);
                notify();
                return null;
            }
            const m = node.manager;
            m.on('state', (s) => {
                if (s === 'connected') reported = '';
                notify();
            });
            m.on('error', (err) => {
                // A connection failure goes to node.error once per reason (not at every retry); other errors to the log.
                if (m.conn.connected || !m.conn.failure) return node.log(`mqtt: ${err.message}`);
                if (m.conn.failure === reported) return;
                reported = m.conn.failure;
                node.error(`mqtt ${node.url}: ${err.message}`);
            });
            // Home Assistant: a refused or failed model install (also shown on the update entity).
            m.on('warning', (err) => node.warn(err.message));
            m.on('fallback', (err) => {
                node.warn(`the broker at ${node.url} refused MQTT 5 (${err.message}): connecting with MQTT 3.1.1 instead; choose 3.1.1 in this fleet configuration to skip the MQTT 5 attempt`);
            });
            return m;
        };

        /** A user node registers; the connection starts with the first one. Returns the FleetManager (or null). */
        node.register = function (user) {
            node.users[user.id] = user;
            const m = node.connect();
            setImmediate(notify);
            return m;
        };

        node.deregister = function (user, done) {
            delete node.users[user.id];
            if (Object.keys(node.users).length === 0 && node.manager && !node.closing) {
                const m = node.manager;
                node.manager = null;
                m.close().then(() => done(), () => done());
            } else {
                done();
            }
        };

        node.on('close', function (removed, done) {
            node.closing = true;
            const m = node.manager;
            node.manager = null;
            if (!m) return done();
            m.close().then(() => done(), (err) => { node.warn(err.message); done(); });
        });
    }

    RED.nodes.registerType('tinyfer-fleet', TinyferFleetNode, {
        credentials: {
            user: { type: 'text' },
            password: { type: 'password' }
        }
    });
};
