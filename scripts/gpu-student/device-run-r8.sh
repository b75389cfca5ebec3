#!/usr/bin/env bash
# r8's GPU slot (issue 22) in one command: four cross-fitted ResNet-18 teachers (teacher.py --fold,
# one process each, merged into the teacher scores file), two float twins of tinyfer-b1 from fresh
# weights (the topology's ceiling) and seven binary students (one with --stem-int8), all side by side on one GPU. The
# students start on the labels alone and take the teacher from the epoch after it is written
# (--teacher-wait). Everything comes back as $OUT/r8.tgz, plus the logs as $OUT/logs.txt.
#   Needs in .gpu/: fer2013.pack (scripts/gpu-teacher/pack.js), init-b1/ (r7 = models/tinyfer-b1),
#   init-float/ (models/tinyfer-b1-float: its topology), check-float.json (check.js), and the
#   scripts as .gpu/gpu-student/student.py, .gpu/gpu-teacher/teacher.py.
#   SECONDS_EACH=480 TEACHER_SECONDS=150 OUT=/tmp/out bash .gpu/device-run-r8.sh   (the r8 run: 506 s on one H200)
#   SCRIPTS=scripts ... runs the scripts from the checkout instead of .gpu/.
set -u
S=${SECONDS_EACH:-490}
TS=${TEACHER_SECONDS:-150}
DEV=${DEVICE:-cuda}
EXTRA=${EXTRA:-}
R=${RUNS_DIR:-/tmp/r8}
SD=${SCRIPTS:-.gpu}
mkdir -p "$R/teacher" "$OUT"
T="$R/train-scores.json"
TP="python3 $SD/gpu-teacher/teacher.py --pack .gpu/fer2013.pack --out $R/teacher --folds 4 --seconds $TS --device $DEV $EXTRA"
for f in 0 1 2 3; do $TP --fold $f > "$R/teacher/fold-$f.out" 2>&1 & tpids="${tpids:-} $!"; done
PY="python3 $SD/gpu-student/student.py --pack .gpu/fer2013.pack --cache /tmp/fer.npz --device $DEV $EXTRA"
# The float mirror's forward pass against tfjs's (and the decoded-faces cache for the runs below).
$PY --init .gpu/init-float --out "$R/check" --check .gpu/check-float.json 2>&1 | tail -1
run() { name=$1; shift; $PY --seconds "$S" --out "$R/$name" "$@" > "$R/$name.out" 2>&1 & }
KD="--teacher $T --teacher-wait"
run float-2e3 --init .gpu/init-float --reinit --lr 2e-3 --dropout 0.2 --seed 81
run float-3e3a05 --init .gpu/init-float --reinit --lr 3e-3 --augment 0.5 --dropout 0.1 --seed 82
run r7-bal05 --init .gpu/init-b1 --lr 5e-4 --class-weight 0.5 $KD --seed 71
run r7-7e4 --init .gpu/init-b1 --lr 7e-4 $KD --seed 72
# the same as r7-bal05 with the stem trained on its int8 grid (issue 17's integer stem): what it costs at GPU scale
run r7-bal05-s8 --init .gpu/init-b1 --lr 5e-4 --class-weight 0.5 $KD --seed 71 --stem-int8
run r7-bal1 --init .gpu/init-b1 --lr 5e-4 --class-weight 1 $KD --seed 73
run r7-kd09-bal05 --init .gpu/init-b1 --lr 5e-4 --distill 0.9 --class-weight 0.5 $KD --seed 74
run scratch-2st --init .gpu/init-b1 --reinit --stage1 real-act --stage1-frac 0.4 --lr 2e-3 --class-weight 0.5 $KD --seed 75
run r7-2st --init .gpu/init-b1 --stage1 real-act --stage1-frac 0.3 --lr 1e-3 --class-weight 0.5 $KD --seed 76
wait $tpids
$TP --merge > "$R/teacher/merge.out" 2>&1 && cp "$R/teacher/train-scores.json" "$T.tmp" && mv "$T.tmp" "$T"
grep -h "PublicTest\|merged" "$R"/teacher/*.out | tail -8
wait
for f in "$R"/*/student.log; do echo "== $f"; grep -E "start:|stage 2 starts|teacher .* taken|done:" "$f"; done
cat "$R"/teacher/teacher.log "$R"/*/student.log > "$OUT/logs.txt"
rm -f "$R"/teacher/fold-*.npz "$R"/teacher/train-scores-insample.json
tar czf "$OUT/r8.tgz" -C "$R" .
ls -la "$OUT"
