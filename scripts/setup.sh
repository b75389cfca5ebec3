#!/usr/bin/env bash
# Everything TinyFER needs on a fresh Debian/Ubuntu machine, idempotent and offline-safe
# (only the package registries are used):
#   system packages (apt, when root and missing), npm packages (install scripts off),
#   @tensorflow/tfjs-node built offline, the TypeScript build.
# Usage: bash scripts/setup.sh [--no-apt]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
log() { echo "[setup] $*"; }

APT_PKGS=(build-essential cmake pkg-config libgtest-dev clang libclang-rt-14-dev lld valgrind
  mosquitto libmosquitto-dev libjpeg62-turbo-dev libpng-dev libsodium-dev fonts-dejavu-core chromium openssl)
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

log "build"
npm run --silent build
