#!/usr/bin/env bash
# The flow library's scorer, `node-red-dev validate`, on the packed tarball (what the library
# would score). node-red-dev is not a dependency of the project: it goes into a temp folder
# (install scripts off) with the tarball, and both are removed afterwards.
# The scorer fetches the flow library's catalogue for two checks (similar package names, node
# names already taken); where that is out of reach, the fetch is answered with an empty catalogue
# so the other checks run, and the output says that those two were NOT evaluated.
# Usage: bash scripts/flow-library-validate.sh   (results and the reasons for each warning: docs/flow-library.md)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NRDEV=node-red-dev@0.1.6
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
(cd "$ROOT" && npm pack --silent --pack-destination "$tmp" >/dev/null)
(cd "$tmp" && npm init -y >/dev/null && npm install --ignore-scripts --no-audit --no-fund "$NRDEV" >/dev/null)
mkdir "$tmp/pkg" && tar -xzf "$tmp"/*.tgz -C "$tmp/pkg"
cat > "$tmp/catalogue-or-empty.js" <<'JS'
const path = require('node:path');
const axios = require(require.resolve('axios', { paths: [path.dirname(require.resolve('node-red-dev/package.json'))] }));
const get = axios.get;
axios.get = function (url, ...rest) {
  const got = get.call(this, url, ...rest);
  if (!String(url).includes('catalogue.nodered.org')) return got;
  return got.catch((e) => {
    console.log(`   [catalogue] ${url}: ${e.code || e.message}; the catalogue check that follows is NOT evaluated`);
    return { data: { modules: [] } };
  });
};
JS
cd "$tmp/pkg/package"
NODE_OPTIONS="--require $tmp/catalogue-or-empty.js" "$tmp/node_modules/.bin/node-red-dev" validate
