#!/usr/bin/env bash
# The main job on a fresh machine: set up what is missing (npm packages, the offline tfjs-node
# build, the TypeScript build), then start the live demo: an embedded MQTT broker, virtual
# ESP32-S3 devices sending real faces, and Node-RED with the example fleet + emotion flow.
# Extra arguments go to the demo (e.g. --devices 8 --port 1880). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-apt >&2
exec node scripts/demo.js "$@"
