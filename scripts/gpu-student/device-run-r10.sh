#!/usr/bin/env bash
# The next GPU slot for issue 22 in one command: tinyfer-b1g (b1 with the grid head, built
# everywhere the model lives since the eighteenth session: format version 3, C core, TS reference,
# tfjs graph) as a binary network, every result a tfjs model folder that `tinyfer export` turns
# into a blob. Side by side on one GPU, the same wall time each:
#   - float twins from fresh weights: b1g on two seeds, b1 as the control (b1's GPU twin 61.9 %;
#     b1g's CPU twin 63.0 % after 49 epochs);
#   - a chain: a b1g float twin for half the time, then binary b1g networks from it for the other
#     half (`student.py --binary`): one stage, two-stage (real activations first), two-stage
#     distilled from that twin's scores, and one stage with the rare classes up;
#   - binary b1g from fresh weights (r7's from-scratch settings, rare classes up);
#   - r10, the shipped model (.gpu/init-r10: r9's backbone with a grid head fitted on its
#     features, 61.4 %) fine-tuned end to end, and r9 (its global head, 60.3 %) as the control;
#   all binary runs keep the stem on its int8 grid (the ESP32-S3's integer stem).
# The CPU figures that chose these runs are in docs/model-card.md. Everything comes back as
# $OUT/r10.tgz (logs, best/last/best-f1 model folders), plus $OUT/logs.txt.
#   Needs .gpu/ as `bash scripts/gpu-student/prepare-r10.sh` builds it from the checkout alone
#   (the pack, r10 and r9, b1's float twin, two tinyfer-b1g folders, the scripts).
#   SECONDS_EACH=480 OUT=/tmp/out bash .gpu/device-run-r10.sh
set -u
S=${SECONDS_EACH:-480}
DEV=${DEVICE:-cuda}
EXTRA=${EXTRA:-}
R=${RUNS_DIR:-/tmp/r10}
SD=${SCRIPTS:-.gpu}
mkdir -p "$R" "$OUT"
PY="python3 $SD/gpu-student/student.py --pack .gpu/fer2013.pack --cache /tmp/fer.npz --device $DEV $EXTRA"
# Decode the faces once (the cache the runs below read).
$PY --init .gpu/init-r9 --out "$R/cache" --seconds 1 > /dev/null 2>&1
run() { name=$1; shift; $PY --seconds "$S" --out "$R/$name" "$@" > "$R/$name.out" 2>&1 & }
FL="--lr 2e-3 --dropout 0.2 --reinit"                           # r8's float-2e3 settings (61.9 %)
run float-b1g --init .gpu/init-b1g-float $FL --seed 81
run float-b1gb --init .gpu/init-b1g-float $FL --seed 82
run float-b1 --init .gpu/init-float $FL --seed 81
run bin-b1g-scratch --init .gpu/init-b1g --reinit --stem-int8 --lr 2e-3 --class-weight 0.5 --seed 75
run r10 --init .gpu/init-r10 --lr 5e-4 --stem-int8 --seed 71
run r9 --init .gpu/init-r9 --lr 5e-4 --stem-int8 --seed 71
# The chain: a b1g float twin for the first half, then four binary networks from it side by side
# for the second (the slot trains its own twin: nothing of an earlier session's CPU is needed).
# The distilled one learns from that twin's scores on the training faces (face + mirror), written
# in between (seconds on a GPU).
T="$R/scores/b1g-float-train-scores.json"
( H=$((S / 2))
  $PY --seconds "$H" --out "$R/chain-float" --init .gpu/init-b1g-float $FL --seed 83 > "$R/chain-float.out" 2>&1
  $PY --init "$R/chain-float/best" --write-scores "$T" --out "$R/scores" > /dev/null 2>&1
  FB="--seconds $H --init $R/chain-float/best --binary --stem-int8 --lr 1e-3"
  half() { name=$1; shift; $PY $FB --out "$R/$name" "$@" > "$R/$name.out" 2>&1 & }
  half bin-b1g-f --seed 91
  half bin-b1g-f2 --stage1 real-act --stage1-frac 0.3 --seed 91
  half bin-b1g-fkd --stage1 real-act --stage1-frac 0.3 --teacher "$T" --seed 92
  half bin-b1g-fcw --class-weight 0.5 --seed 92
  wait ) &
wait
for f in "$R"/*/student.log; do echo "== $f"; grep -E "parameters|start:|done:" "$f" | cut -c1-160; done
cat "$R"/*/student.log > "$OUT/logs.txt"
rm -rf "$R/cache" "$T"
tar czf "$OUT/r10.tgz" -C "$R" .
ls -la "$OUT"
