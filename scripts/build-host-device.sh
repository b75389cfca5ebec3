#!/usr/bin/env bash
# Builds the virtual TinyFER device (firmware/app + firmware/core on Linux): build/host/tinyfer-device,
# plus its unit tests. `--test` also runs them (ctest). test/e2e-device.test.js runs this script
# when the binary is missing.
# Needs (Debian): cmake, gcc, g++, pkg-config, libmosquitto-dev, libsodium-dev,
#                 libjpeg62-turbo-dev, libpng-dev, libgtest-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${TINYFER_HOST_BUILD:-build/host}"
JOBS="${JOBS:-2}"
cmake -S firmware/host -B "$BUILD" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" -DTFA_BUILD_TESTS=ON >/dev/null
cmake --build "$BUILD" -j "$JOBS"
echo "built $BUILD/tinyfer-device"
if [ "${1:-}" = "--test" ]; then
  ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS"
fi
