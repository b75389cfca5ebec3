'use strict';
/**
 * A real Mosquitto 2 broker for tests: started on a free loopback port with a generated config
 * (anonymous, no persistence), restartable on the same port, stopped at the end.
 *   const broker = await startMosquitto(); broker.url; await broker.restart(); await broker.stop();
 * The binary is /usr/sbin/mosquitto (Debian package `mosquitto`), or $MOSQUITTO.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const BIN = process.env.MOSQUITTO || '/usr/sbin/mosquitto';

function mosquittoAvailable() {
    return fs.existsSync(BIN);
}

function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.unref();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

function waitForPort(port, timeoutMs) {
    const until = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
        const attempt = () => {
            const sock = net.connect(port, '127.0.0.1');
            sock.once('connect', () => { sock.destroy(); resolve(); });
            sock.once('error', () => {
                sock.destroy();
                if (Date.now() > until) reject(new Error(`mosquitto did not listen on ${port} within ${timeoutMs} ms`));
                else setTimeout(attempt, 50);
            });
        };
        attempt();
    });
}

async function startMosquitto(opts = {}) {
    if (!mosquittoAvailable()) throw new Error(`mosquitto not found at ${BIN} (apt-get install mosquitto, or set MOSQUITTO)`);
    const port = opts.port || await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-mosquitto-'));
    const conf = path.join(dir, 'mosquitto.conf');
    fs.writeFileSync(conf, [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        'persistence false',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        `max_inflight_messages ${opts.maxInflight || 100}`,
        'max_queued_messages 100000',
        'set_tcp_nodelay true',
        ''
    ].join('\n'));
    let proc = null;
    let log = '';
    const broker = {
        port,
        url: `mqtt://127.0.0.1:${port}`,
        get log() { return log; },
        get running() { return !!proc; },
        async start() {
            if (proc) return;
            const p = spawn(BIN, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
            p.stderr.on('data', (d) => { log = (log + d).slice(-20000); });
            p.on('exit', () => { if (proc === p) proc = null; });
            proc = p;
            await waitForPort(port, 5000);
        },
        async stop() {
            const p = proc;
            if (!p) return;
            proc = null;
            await new Promise((resolve) => {
                const t = setTimeout(() => p.kill('SIGKILL'), 3000);
                p.once('exit', () => { clearTimeout(t); resolve(); });
                p.kill('SIGTERM');
            });
        },
        async restart() {
            await broker.stop();
            await broker.start();
        },
        async close() {
            await broker.stop();
            fs.rmSync(dir, { recursive: true, force: true });
        }
    };
    await broker.start();
    return broker;
}

module.exports = { startMosquitto, mosquittoAvailable, freePort };
