#!/usr/bin/env bash
# Low-resolution specialists for the gated default, four variants side by side (one GPU holds them all; on a
# CPU they share its cores). Both nets of the shipped gated default are read back from assets/fer-edge.onnx,
# and every variant is taught by the generalist, which labels each augmented face clean while the student
# sees it shrunk or blurred (fer_edge.train.specialist):
#   long:   the session-46 recipe (from the generalist, 10-16 px, a quarter blurred), for the whole budget;
#   narrow: 10-14 px only, a fifth blurred;
#   cont:   the shipped specialist continued at half the learning rate;
#   hot:    twice the learning rate at batch 256.
# Each writes RUNS/NAME.pt (last epoch) and RUNS/NAME.best.pt (best at 12 px on the validation split); export
# one with `fer-edge export --checkpoint RUNS/gen.pt --specialist RUNS/NAME.pt --specialist-tta ...` and score
# it with benchmarks/robustness.py.
#
# usage: train/recipes/specialists.sh DATA RUNS [MINUTES]   (6.5 by default: with the read-backs it fits one
#   10-minute device call)
#   PY (default python3), DEVICE (auto, cpu or cuda; default auto), THREADS (per run, default 3)
set -uo pipefail
DATA=$1
RUNS=$2
MIN=${3:-6.5}
PY=${PY:-python3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$RUNS"

$PY -m fer_edge.train.from_onnx "$RUNS/gen.pt" "$ROOT/assets/fer-edge.onnx" --member generalist --data "$DATA" &
$PY -m fer_edge.train.from_onnx "$RUNS/spec0.pt" "$ROOT/assets/fer-edge.onnx" --member specialist --data "$DATA" &
wait
[ -f "$RUNS/gen.pt" ] && [ -f "$RUNS/spec0.pt" ] || exit 1

variant() {  # name, start, then specialist options
  local name=$1 start=$2
  shift 2
  $PY -m fer_edge.train.specialist "$RUNS/$name.pt" "$start" --data "$DATA" --teacher "$RUNS/gen.pt" \
    --minutes "$MIN" --device "${DEVICE:-auto}" --threads "${THREADS:-3}" "$@" >"$RUNS/$name.log" 2>&1 &
}
variant long "$RUNS/gen.pt" --px 10-16 --blur-share 0.25 --lr 0.01
variant narrow "$RUNS/gen.pt" --px 10-14 --blur-share 0.2 --lr 0.01
variant cont "$RUNS/spec0.pt" --px 10-16 --blur-share 0.25 --lr 0.005
variant hot "$RUNS/gen.pt" --px 10-16 --blur-share 0.25 --lr 0.02 --batch 256
wait
status=0
for v in long narrow cont hot; do
  echo "== $v"
  grep -v "^epoch" "$RUNS/$v.log" | tail -n 6
  grep "^epoch" "$RUNS/$v.log" | awk 'NR % 10 == 0'
  grep "^epoch" "$RUNS/$v.log" | tail -n 2
  [ -f "$RUNS/$v.pt" ] || status=1
done
exit $status
