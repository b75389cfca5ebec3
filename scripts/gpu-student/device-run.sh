#!/usr/bin/env bash
# The GPU session's one run of student.py: several trainings side by side on one GPU, each for
# SECONDS of wall time, then every result folder packed into $OUT/students.tgz.
#   Needs in .gpu/: fer2013.pack (scripts/gpu-teacher/pack.js), train-scores.json (the teacher),
#   check-tinyfer-b1.json (scripts/gpu-student/check.js) and the init models init-b1/, init-b1r/
#   (for r7: r6 = models/tinyfer-b1 at commit c916fdb, and models/tinyfer-b1r); round 2 reads
#   round 1's best folders as .gpu/r1-<run>/. The runs' logs and result folders come back in the tgz.
#   SECONDS_EACH=420 OUT=/tmp/out bash scripts/gpu-student/device-run.sh
set -u
S=${SECONDS_EACH:-390}
DEV=${DEVICE:-cuda}
EXTRA=${EXTRA:-}
R=${RUNS_DIR:-/tmp/students}
mkdir -p "$R" "$OUT"
PY="python3 scripts/gpu-student/student.py --pack .gpu/fer2013.pack --cache /tmp/fer.npz --device $DEV $EXTRA"
# The mirror's forward pass against tfjs's (and the decoded-faces cache for the runs below).
$PY --init .gpu/init-b1 --out "$R/check" --check .gpu/check-tinyfer-b1.json 2>&1 | tail -1
T=".gpu/train-scores.json"
run() { name=$1; shift; $PY --teacher $T --seconds "$S" --out "$R/$name" "$@" > "$R/$name.out" 2>&1 & }
if [ "${ROUND:-1}" = 1 ]; then
  run b1-cont    --init .gpu/init-b1  --lr 5e-4 --seed 51
  run b1r-cont   --init .gpu/init-b1r --lr 5e-4 --seed 52
  run b1-scratch --init .gpu/init-b1  --reinit --lr 2e-3 --seed 53
  run b1r-scratch --init .gpu/init-b1r --reinit --lr 2e-3 --seed 54
  run b1r-cont1e3 --init .gpu/init-b1r --lr 1e-3 --seed 55
  run b1-cont1e3 --init .gpu/init-b1  --lr 1e-3 --seed 56
else  # round 2: a second cosine cycle from round 1's best folders (copied to .gpu/r1-*)
  run b1-c2-1e3  --init .gpu/r1-b1-cont1e3  --lr 1e-3 --seed 61
  run b1-c2-5e4  --init .gpu/r1-b1-cont1e3  --lr 5e-4 --seed 62
  run b1-c2-2e3  --init .gpu/r1-b1-cont1e3  --lr 2e-3 --seed 66
  run b1r-c2-1e3 --init .gpu/r1-b1r-cont1e3 --lr 1e-3 --seed 63
  run b1r-c2-5e4 --init .gpu/r1-b1r-cont    --lr 5e-4 --seed 64
  run b1s-c2-1e3 --init .gpu/r1-b1-scratch  --lr 1e-3 --seed 65
fi
wait
for f in "$R"/*/student.log; do echo "== $f"; grep -E "start:|done:" "$f"; done
tar czf "$OUT/students.tgz" -C "$R" .
ls -la "$OUT"
