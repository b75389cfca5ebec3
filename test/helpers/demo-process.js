'use strict';
// The demo (dist/demo/demo.js startDemo) in a process of its own, for the tests and the dashboard
// bench: argv[2] is a JSON object of DemoOptions. It prints `DEMO {"editorUrl":..,"dashboardUrl":..,
// "mqttUrl":..,"pid":..}` once started, then takes commands on stdin, one a line:
//   crash <device id>   the virtual device drops its connection without a word (the broker sends its last will)
//   stats               prints `STATS {"emotions":N,"frames":M}`: what the virtual devices have sent so far
//   stop                stops the demo and exits
// Under scripts/mocha-node22.sh, start it with `--require test/helpers/node-red-runtime.js` so
// Node-RED 5 is the one embedded (TINYFER_NODE_RED_MODULES is inherited).
const readline = require('node:readline');
const { startDemo } = require('../../dist/demo/demo');

const opts = JSON.parse(process.argv[2] || '{}');
startDemo({ ...opts, print: (l) => { if (!/ (on device|in Node-RED): /.test(l)) console.log(l); } }).then((demo) => {
    console.log(`DEMO ${JSON.stringify({ editorUrl: demo.editorUrl, dashboardUrl: demo.dashboardUrl, mqttUrl: demo.mqttUrl, pid: process.pid })}`);
    let stopping = false;
    const stop = () => {
        if (stopping) return;
        stopping = true;
        demo.stop().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
    };
    process.on('SIGTERM', stop);
    readline.createInterface({ input: process.stdin }).on('line', (line) => {
        const [cmd, arg] = line.trim().split(/\s+/);
        if (cmd === 'crash') {
            const d = demo.simulator.device(arg);
            if (!d) return console.log(`NO-DEVICE ${arg}`);
            d.crash();
            console.log(`CRASHED ${arg}`);
        } else if (cmd === 'stats') {
            const sent = { emotions: 0, frames: 0 };
            for (const d of demo.simulator.devices) { sent.emotions += d.sent.emotion; sent.frames += d.sent.frames; }
            console.log(`STATS ${JSON.stringify(sent)}`);
        } else if (cmd === 'stop') stop();
    }).on('close', stop);
}, (err) => {
    console.error(`demo: ${err.stack || err.message}`);
    process.exit(1);
});
