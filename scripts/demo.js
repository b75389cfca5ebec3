#!/usr/bin/env node
'use strict';
// `npm run demo`: an embedded MQTT broker, virtual TinyFER cameras sending real faces, and
// Node-RED with the fleet demo flow. Options: --devices N --interval MS --port HTTP --mqtt-port PORT
// --user-dir DIR --model BLOB.tfer --flow FLOW.json --frames --no-dashboard (0 for a port means any
// free one). The fleet dashboard (examples/fleet-dashboard.json) is deployed too when FlowFuse
// Dashboard 2.0 is installed, unless --no-dashboard. Ctrl-C stops everything.
const path = require('node:path');
const fs = require('node:fs');

const dist = path.join(__dirname, '..', 'dist', 'demo', 'demo.js');
if (!fs.existsSync(dist)) {
    console.error('demo: dist/ is missing: run `npm run build` first');
    process.exit(1);
}
const { startDemo } = require(dist);

function parse(argv) {
    const o = {};
    const num = (name, v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} needs a non-negative integer, got ${JSON.stringify(v)}`);
        return n;
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const v = argv[i + 1];
        switch (a) {
            case '--devices': o.devices = num('devices', v); i++; break;
            case '--interval': o.intervalMs = num('interval', v); i++; break;
            case '--port': o.httpPort = num('port', v); i++; break;
            case '--mqtt-port': o.mqttPort = num('mqtt-port', v); i++; break;
            case '--user-dir': o.userDir = v; i++; break;
            case '--model': o.model = v; i++; break;
            case '--flow': o.flowFile = v; i++; break;
            case '--frames': o.deviceConfig = { frames_enabled: true }; break;
            case '--no-dashboard': o.dashboard = false; break;
            case '-h': case '--help':
                console.log('usage: npm run demo -- [--devices N] [--interval MS] [--port HTTP] [--mqtt-port PORT] [--user-dir DIR] [--model BLOB.tfer] [--flow FLOW.json] [--frames] [--no-dashboard]');
                process.exit(0);
                break;
            default: throw new Error(`unknown option ${a} (see --help)`);
        }
    }
    if (o.devices === 0) throw new Error('--devices must be at least 1');
    return o;
}

let opts;
try {
    opts = parse(process.argv.slice(2));
} catch (e) {
    console.error(`demo: ${e.message}`);
    process.exit(2);
}

startDemo(opts).then((demo) => {
    let stopping = false;
    const stop = (sig) => {
        if (stopping) return;
        stopping = true;
        console.log(`\n${sig}: stopping the demo...`);
        const force = setTimeout(() => { console.error('demo: did not stop within 10 s, exiting'); process.exit(1); }, 10000);
        force.unref();
        demo.stop().then(() => { console.log('demo stopped'); process.exit(0); }, (e) => { console.error(e); process.exit(1); });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
}, (err) => {
    console.error(`demo: ${err.message}`);
    process.exit(1);
});
