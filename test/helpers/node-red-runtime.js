'use strict';
// Preloaded by mocha (`--require`) when TINYFER_NODE_RED_MODULES names a node_modules folder
// holding another Node-RED (scripts/test.sh: Node-RED 5 from .cache/node22/, see scripts/setup.sh).
// Every `node-red`, `node-red/...` and `@node-red/...` request of the tests, the test helper and
// the package then resolves there instead of to the devDependency (Node-RED 4), so the same
// suites run against that runtime. Fails at once if it would not be the one asked for.
const Module = require('node:module');
const path = require('node:path');

const modules = process.env.TINYFER_NODE_RED_MODULES;
if (modules) {
  const dir = path.resolve(modules);
  const ours = (request) => request === 'node-red' || request.startsWith('node-red/') || request.startsWith('@node-red/');
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, parent, isMain, options) {
    if (ours(request)) {
      const found = resolve.call(this, request, parent, isMain, { paths: [dir] });
      if (!found.startsWith(dir + path.sep)) {
        throw new Error(`${request} resolved to ${found}, outside TINYFER_NODE_RED_MODULES=${dir}`);
      }
      return found;
    }
    return resolve.call(this, request, parent, isMain, options);
  };
  console.log(`[node-red-runtime] Node ${process.version}, Node-RED ${require('node-red/package.json').version} from ${dir}`);
}
