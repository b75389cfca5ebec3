'use strict';
/**
 * A real Mosquitto 2 broker for tests: started on a free loopback port with a generated config
 * (anonymous, no persistence), restartable on the same port, stopped at the end.
 *   const broker = await startMosquitto(); broker.url; await broker.restart(); await broker.close();
 * With { tls: true, users: { name: 'password' } } a second listener speaks TLS (a throwaway CA
 * and a server certificate for 127.0.0.1 made with openssl) and requires those users, as does a
 * third, plain listener: broker.tlsUrl, broker.authUrl, broker.ca (PEM), broker.caFile.
 * With { logNotice: true } broker.log also holds the notices (clients connecting and leaving).
 * The binary is /usr/sbin/mosquitto (Debian package `mosquitto`), or $MOSQUITTO.
 */
const { spawn, execFileSync } = require('node:child_process');
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

/**
 * A throwaway CA (ca.crt, ca.key) and a server certificate for 127.0.0.1 signed by it
 * (server.crt, server.key) in `dir`, made with the openssl command line.
 */
function makeTestCerts(dir) {
    const f = (n) => path.join(dir, n);
    const ssl = (...args) => execFileSync('openssl', args, { stdio: 'pipe' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=tinyfer test CA', '-keyout', f('ca.key'), '-out', f('ca.crt'));
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr'));
    fs.writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('san.ext'), '-out', f('server.crt'));
}

/**
 * freePort() closes its probe before Mosquitto binds the port, so another socket can take it in
 * between (seen once in CI: "Address already in use"); ports picked here are then picked again,
 * up to three times. A port given in opts is not.
 */
async function startMosquitto(opts = {}) {
    for (let attempt = 1; ; attempt++) {
        try {
            return await startOnce(opts);
        } catch (e) {
            if (opts.port || attempt >= 3 || !/Address already in use/.test(e.message)) throw e;
        }
    }
}

async function startOnce(opts) {
    if (!mosquittoAvailable()) throw new Error(`mosquitto not found at ${BIN} (apt-get install mosquitto, or set MOSQUITTO)`);
    const port = opts.port || await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-mosquitto-'));
    const conf = path.join(dir, 'mosquitto.conf');
    const lines = [
        'per_listener_settings true',
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
    ];
    let tlsPort = 0;
    let authPort = 0;
    if (opts.tls) {
        tlsPort = await freePort();
        authPort = await freePort();
        const f = (n) => path.join(dir, n);
        makeTestCerts(dir);
        const users = Object.entries(opts.users || {});
        if (users.length) {
            fs.writeFileSync(f('passwd'), users.map(([u, p]) => `${u}:${p}`).join('\n') + '\n');
            execFileSync(process.env.MOSQUITTO_PASSWD || '/usr/bin/mosquitto_passwd', ['-U', f('passwd')], { stdio: 'pipe' });
        }
        // Started as root, mosquitto drops to its own user: let it read these throwaway files.
        fs.chmodSync(dir, 0o755);
        for (const n of fs.readdirSync(dir)) fs.chmodSync(f(n), 0o644);
        lines.push(
            `listener ${tlsPort} 127.0.0.1`,
            `cafile ${f('ca.crt')}`, `certfile ${f('server.crt')}`, `keyfile ${f('server.key')}`,
            ...(users.length ? ['allow_anonymous false', `password_file ${f('passwd')}`] : ['allow_anonymous true']),
            // and the same users on plain TCP
            `listener ${authPort} 127.0.0.1`,
            ...(users.length ? ['allow_anonymous false', `password_file ${f('passwd')}`] : ['allow_anonymous true']));
    }
    fs.writeFileSync(conf, [
        ...lines,
        'persistence false',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        ...(opts.logNotice ? ['log_type notice'] : []),
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
        tlsUrl: tlsPort ? `mqtts://127.0.0.1:${tlsPort}` : null,
        authUrl: authPort ? `mqtt://127.0.0.1:${authPort}` : null,
        caFile: tlsPort ? path.join(dir, 'ca.crt') : null,
        ca: tlsPort ? fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8') : null,
        get log() { return log; },
        get running() { return !!proc; },
        async start() {
            if (proc) return;
            const p = spawn(BIN, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
            p.stderr.on('data', (d) => { log = (log + d).slice(-20000); });
            p.on('exit', () => { if (proc === p) proc = null; });
            proc = p;
            const died = new Promise((resolve, reject) => p.once('exit', (code) => reject(new Error(`mosquitto exited (${code}) at start:\n${log}`))));
            await Promise.race([died, (async () => {
                await waitForPort(port, 5000);
                if (tlsPort) await waitForPort(tlsPort, 5000);
            })()]);
            died.catch(() => undefined);
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
    try {
        await broker.start();
    } catch (e) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw e;
    }
    return broker;
}

module.exports = { startMosquitto, mosquittoAvailable, freePort, waitForPort, makeTestCerts, BIN };
