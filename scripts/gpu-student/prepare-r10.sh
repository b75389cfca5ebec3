#!/usr/bin/env bash
# Builds .gpu/ for device-run-r10.sh from this checkout alone, so that a GPU slot can start the
# moment one is lent, on any machine: nothing in it comes from an earlier session's /tmp.
#   .gpu/fer2013.pack          FER2013 Training + PublicTest (scripts/gpu-teacher/pack.js; the
#                              datasets' own files: .gpu/ is git-ignored, never commit it)
#   .gpu/init-r10              models/tinyfer-b1 (r10, the default: a tinyfer-b1g)
#   .gpu/init-r9               r9, the default before it (models/tinyfer-b1 at commit 3cad751,
#                              from this clone's history: a tinyfer-b1, the global head)
#   .gpu/init-float            models/tinyfer-b1-float (b1's float twin)
#   .gpu/init-b1g, init-b1g-float
#                              tinyfer-b1g folders the TypeScript side builds (train --epochs 0:
#                              the binary and float topologies, fresh weights)
#   .gpu/gpu-student, .gpu/gpu-teacher, .gpu/device-run-r10.sh
#                              the scripts as they are in this checkout
# b1g's float twin and its teacher scores are not built here: the slot trains the twin itself
# (device-run-r10.sh's chain) and writes its scores on the GPU. Needs Node (the build in dist/),
# ../shared/data and this clone's git history (r9); not Python.
# Then: the device tool's run with carry [".gpu"] and
#   SECONDS_EACH=480 OUT=$OUT bash .gpu/device-run-r10.sh
# A CPU dry-run of the whole slot (two minutes; no GPU, 256 faces a split):
#   DEVICE=cpu EXTRA="--limit 256 --batch 32" SECONDS_EACH=30 OUT=/tmp/r10-dry RUNS_DIR=/tmp/r10-dry-runs bash .gpu/device-run-r10.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
G=.gpu
DATA=../shared/data/fer2013
mkdir -p "$G"
[ -f dist/cli/tinyfer.js ] || npm run --silent build
[ -f "$G/fer2013.pack" ] || node scripts/gpu-teacher/pack.js --data "$DATA" --out "$G/fer2013.pack"
put() { rm -rf "${G:?}/$2"; cp -r "$1" "$G/$2"; }
rm -rf "${G:?}"/init-* "$G"/*.json  # folders and teacher files of an earlier layout
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
R9=3cad751  # the last commit with r9 as models/tinyfer-b1
git archive "$R9" models/tinyfer-b1 | tar -x -C "$tmp" || { echo "r9 ($R9:models/tinyfer-b1) is not in this clone's history" >&2; exit 1; }
put "$tmp/models/tinyfer-b1" init-r9
put models/tinyfer-b1 init-r10
put models/tinyfer-b1-float init-float
grow() {  # grow NAME TRAIN-ARGS...: a folder built by `tinyfer train --epochs 0` (no training)
  local name=$1; shift
  node bin/tinyfer.js train --data "$DATA/Training" --epochs 0 --out "$tmp/$name" "$@" > "$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log" >&2; exit 1; }
  put "$tmp/$name/best" "$name"
}
grow init-b1g --arch tinyfer-b1g
grow init-b1g-float --arch tinyfer-b1g --float
rm -rf "$G/gpu-student" "$G/gpu-teacher"
mkdir -p "$G/gpu-student" "$G/gpu-teacher"
cp scripts/gpu-student/student.py "$G/gpu-student/"
cp scripts/gpu-teacher/teacher.py "$G/gpu-teacher/"
cp scripts/gpu-student/device-run-r10.sh "$G/"
# the device tool carries 64 MiB at most
size=$(du -sk --exclude='__pycache__' "$G" | cut -f1)
echo "$G: $((size / 1024)) MiB ($(ls "$G" | tr '\n' ' '))"
[ "$size" -le $((64 * 1024)) ] || { echo "$G is over the 64 MiB the device tool carries: remove what device-run-r10.sh does not read" >&2; exit 1; }
