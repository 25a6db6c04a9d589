#!/usr/bin/env bash
# The recipe behind the shipped model, for one GPU (it ran on an H200; any CUDA GPU works, slower ones
# simply fit fewer epochs into the same time budget).
#   phase 1: three teachers (2x fernet-l, 1x fernet-m) and two no-distillation baselines, side by side;
#   phase 2: students distilled from the teachers' averaged soft labels.
# Every run is time-budgeted (--max-minutes): the schedule anneals by the deadline, and the run's
# config.json and metrics.csv record how many epochs it reached.
#
# usage: train/recipes/gpu.sh DATA RUNS [PHASE1_MINUTES] [PHASE2_MINUTES]
set -uo pipefail
DATA=$1
RUNS=$2
P1=${3:-3.3}
P2=${4:-3.3}
FE=${FE:-fer-edge}
EPOCHS=${EPOCHS:-500}
mkdir -p "$RUNS"
common=(--data "$DATA" --epochs "$EPOCHS" --batch-size 128 --lr 0.1 --weight-decay 5e-4 --label-smoothing 0.1)

run() {  # name, then train options
  local name=$1
  shift
  $FE train "${common[@]}" --out "$RUNS/$name" "$@" >"$RUNS/$name.log" 2>&1 &
}

run teacher-l1 --arch fernet-l --seed 1 --mix cutmix --max-minutes "$P1"
run teacher-l2 --arch fernet-l --seed 2 --mix mixup --max-minutes "$P1"
run teacher-m3 --arch fernet-m --seed 3 --mix cutmix --max-minutes "$P1"
run plain-s --arch fernet-s --seed 0 --max-minutes "$P1"
run plain-t --arch fernet-t --seed 0 --max-minutes "$P1"
wait
tail -n 3 "$RUNS"/*.log

teachers=(--teacher "$RUNS/teacher-l1/best.pt" --teacher "$RUNS/teacher-l2/best.pt" --teacher "$RUNS/teacher-m3/best.pt")
run kd-s --arch fernet-s --seed 0 --mix cutmix "${teachers[@]}" --max-minutes "$P2"
run kd-t --arch fernet-t --seed 0 --mix cutmix "${teachers[@]}" --max-minutes "$P2"
run kd-m --arch fernet-m --seed 0 --mix cutmix "${teachers[@]}" --max-minutes "$P2"
wait
tail -n 3 "$RUNS"/kd-*.log
