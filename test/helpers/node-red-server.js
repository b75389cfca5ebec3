'use strict';
/**
 * A real Node-RED (this repository's devDependency) in its own process, with this package
 * installed in a throwaway user dir the way `npm install <path>` installs it (a link in
 * node_modules), listening on 127.0.0.1 on a free port. Prints "EDITOR <url>" once started;
 * stops on SIGTERM / SIGINT. Usage: node test/helpers/node-red-server.js <userDir>
 */
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const userDir = path.resolve(process.argv[2] || fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'tinyfer-nr-')));

async function main() {
  fs.mkdirSync(path.join(userDir, 'node_modules'), { recursive: true });
  const link = path.join(userDir, 'node_modules', require(path.join(ROOT, 'package.json')).name);
  if (!fs.existsSync(link)) fs.symlinkSync(ROOT, link, 'dir');
  fs.writeFileSync(path.join(userDir, 'package.json'), JSON.stringify({ name: 'tinyfer-test-userdir', private: true }));
  if (!fs.existsSync(path.join(userDir, 'flows.json'))) fs.writeFileSync(path.join(userDir, 'flows.json'), '[]');
  const express = require('express');
  const RED = require('node-red');
  const app = express();
  const server = http.createServer(app);
  const settings = {
    userDir,
    flowFile: 'flows.json',
    credentialSecret: 'tinyfer-test',
    httpAdminRoot: '/',
    httpNodeRoot: '/api',
    uiHost: '127.0.0.1',
    logging: { console: { level: 'warn', metrics: false, audit: false } },
    editorTheme: { tours: false, projects: { enabled: false } },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    telemetry: { enabled: false, updateNotification: false },
  };
  RED.init(server, settings);
  app.use(settings.httpAdminRoot, RED.httpAdmin);
  app.use(settings.httpNodeRoot, RED.httpNode);
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  await RED.start();
  const stop = async () => {
    try { await RED.stop(); } finally { server.closeAllConnections(); server.close(() => process.exit(0)); }
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.log(`EDITOR http://127.0.0.1:${server.address().port}/`);
}

main().catch((e) => { console.error(e); process.exit(1); });
