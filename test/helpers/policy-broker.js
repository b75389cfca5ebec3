'use strict';
/**
 * A real Mosquitto 2 started with the shipped fleet policy: broker/mosquitto.conf and broker/acl
 * as they are in the package. Only the two deployment-specific values of the conf move, and
 * nothing else: its directory (/etc/mosquitto/tinyfer -> a temporary folder) and its listener
 * (8883 on every interface -> a free port on 127.0.0.1). The ACL file is copied byte for byte.
 * The folder gets a throwaway CA and server certificate for 127.0.0.1 (certs/) and a password
 * file made with mosquitto_passwd for the given users.
 *   const b = await startPolicyBroker({ nodered: 'pw', 'cam-a': 'pw2' });
 *   b.url (mqtts://127.0.0.1:port), b.caFile, b.ca, b.log, await b.close()
 */
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { freePort, waitForPort, makeTestCerts, BIN } = require('./mosquitto');

const ROOT = path.resolve(__dirname, '..', '..');
const SHIPPED_DIR = '/etc/mosquitto/tinyfer';

/** The shipped conf with its folder and listener moved; throws if anything else would change. */
function policyConf(dir, port) {
  const shipped = fs.readFileSync(path.join(ROOT, 'broker', 'mosquitto.conf'), 'utf8').split('\n');
  let listeners = 0;
  const out = shipped.map((line) => {
    if (/^listener 8883$/.test(line)) { listeners++; return `listener ${port} 127.0.0.1`; }
    return line.split(SHIPPED_DIR).join(dir);
  });
  if (listeners !== 1) throw new Error('broker/mosquitto.conf: expected exactly one "listener 8883" line');
  out.forEach((line, i) => {
    const back = line.split(dir).join(SHIPPED_DIR).replace(`listener ${port} 127.0.0.1`, 'listener 8883');
    if (back !== shipped[i]) throw new Error(`policyConf changed line ${i + 1} beyond its folder/port: ${shipped[i]}`);
  });
  return out.join('\n');
}

async function startPolicyBroker(users) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-policy-'));
  const f = (n) => path.join(dir, n);
  fs.mkdirSync(f('certs'));
  makeTestCerts(f('certs'));
  fs.copyFileSync(path.join(ROOT, 'broker', 'acl'), f('acl'));
  fs.writeFileSync(f('passwd'), Object.entries(users).map(([u, p]) => `${u}:${p}`).join('\n') + '\n');
  execFileSync(process.env.MOSQUITTO_PASSWD || '/usr/bin/mosquitto_passwd', ['-U', f('passwd')], { stdio: 'pipe' });
  const port = await freePort();
  fs.writeFileSync(f('mosquitto.conf'), policyConf(dir, port));
  // Started as root, mosquitto drops to its own user: let it read these throwaway files.
  for (const d of [dir, f('certs')]) {
    fs.chmodSync(d, 0o755);
    for (const n of fs.readdirSync(d)) if (fs.statSync(path.join(d, n)).isFile()) fs.chmodSync(path.join(d, n), 0o644);
  }
  let log = '';
  const proc = spawn(BIN, ['-c', f('mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.on('data', (d) => { log = (log + d).slice(-200000); });
  const died = new Promise((resolve, reject) => proc.once('exit', (code) => reject(new Error(`mosquitto exited (${code}) at start:\n${log}`))));
  await Promise.race([died, waitForPort(port, 5000)]);
  died.catch(() => undefined);
  return {
    url: `mqtts://127.0.0.1:${port}`,
    port,
    dir,
    caFile: f('certs/ca.crt'),
    ca: fs.readFileSync(f('certs/ca.crt'), 'utf8'),
    get log() { return log; },
    async close() {
      if (proc.exitCode === null) {
        await new Promise((resolve) => {
          const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
          proc.once('exit', () => { clearTimeout(t); resolve(); });
          proc.kill('SIGTERM');
        });
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startPolicyBroker, policyConf };
