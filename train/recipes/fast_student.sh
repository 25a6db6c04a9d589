#!/usr/bin/env bash
# The fast model on one GPU. CPU cycles of fernet-t2 plateaued at 68.5-69.1% in fp32; its grown 3x3 head
# (fernet-t2g, the shipped fast model) reached 69.32% int8 in one 95-minute CPU cycle (model card); what the
# CPU could not afford is epochs from scratch. Three fernet-t2g runs
# share the GPU, each taught on every augmented batch by the shipped default read back with its mirror
# (--teacher-tta, 71.25% as a teacher):
#   scratch-a, scratch-b: from scratch, two seeds (the shipped line began with 323 CPU epochs on labels of
#     the clean faces only);
#   finetune: from the shipped fast file at the third cycle's low peak rate, over many more epochs.
# Every run is time-budgeted (--max-minutes: the schedule anneals by the deadline). Each best.pt is then
# exported as the shipped files are, int8 with moving-average ranges and the temperature fit, and its
# PublicTest accuracy printed; pick on PublicTest, then score the pick with benchmarks/robustness.py.
#
# usage: train/recipes/fast_student.sh DATA RUNS [MINUTES]   (7 by default: with the read-back and the exports
#   it fits one 10-minute device call)
#   FE (the CLI, default fer-edge), PY (default python3), EPOCHS (the cap, default 2000), THREADS (CPU
#   threads per run for augmentation, default 4)
set -uo pipefail
DATA=$1
RUNS=$2
MIN=${3:-7}
FE=${FE:-fer-edge}
PY=${PY:-python3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$RUNS"

$FE train from-onnx "$RUNS/teacher.pt" "$ROOT/assets/fer-edge.onnx" --data "$DATA" || exit 1
common=(--data "$DATA" --arch fernet-t2g --teacher "$RUNS/teacher.pt" --teacher-tta --corrupt 0.5 --rotate 20
        --scale 0.15 --ema 0.999 --epochs "${EPOCHS:-2000}" --max-minutes "$MIN" --threads "${THREADS:-4}")

run() {  # name, then train options
  local name=$1
  shift
  $FE train "${common[@]}" --out "$RUNS/$name" "$@" >"$RUNS/$name.log" 2>&1 &
}

run scratch-a --seed 50
run scratch-b --seed 51
run finetune --init "$ROOT/assets/fer-edge-fast.onnx" --lr 0.005 --seed 52
wait

status=0
for name in scratch-a scratch-b finetune; do
  tail -n 2 "$RUNS/$name.log"
  if [ ! -f "$RUNS/$name/best.pt" ]; then
    echo "$name: no best.pt"
    status=1
    continue
  fi
  if $FE export "$RUNS/$name.onnx" --checkpoint "$RUNS/$name/best.pt" --data "$DATA" --int8 --calibrate \
      --int8-calibration moving-average >"$RUNS/$name.export.log" 2>&1; then
    echo "$name: $(grep -h '^int8:' "$RUNS/$name.export.log")"
  else
    echo "$name: export failed: $(tail -n 1 "$RUNS/$name.export.log")"
    status=1
  fi
done
exit $status
