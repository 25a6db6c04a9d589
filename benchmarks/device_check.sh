#!/usr/bin/env bash
# The GPU check, in one call, for a lent NVIDIA machine: install, test, then classify, webcam, classifier
# speed and a short AMP training run on the GPU, and one summary table at the end. Fits in 8 minutes.
#
#   bash benchmarks/device_check.sh            (from the repository root)
#
# Training data: .carry/ packed by `python train/recipes/pack_data.py pack ../shared/data/fer2013.csv.gz .carry/`
# (carried to the device), else a small synthetic set, so the training step always runs.
# A lent machine may have no network: the install then falls back to what is already there, and says so.
# Knobs (the CPU test of this script uses them): CHECK_DEVICE (cuda), CHECK_SKIP (steps, e.g. "install tests"),
# CHECK_FRAMES (clip length, 300), CHECK_SECONDS (per speed figure, 2), CHECK_SYNTH (synthetic faces per class, 500).
set -u
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
DEV=${CHECK_DEVICE:-cuda}
skip() { case " ${CHECK_SKIP:-} " in *" $1 "*) note "$1" skipped 0 "CHECK_SKIP"; return 0;; esac; return 1; }
WORK=$(mktemp -d)
SUMMARY="$WORK/summary.tsv"
printf 'step\tstatus\tseconds\tresult\n' > "$SUMMARY"
note() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$SUMMARY"; }
# clip N: the first N characters of stdin (cut -c counts bytes and can split a UTF-8 character in two)
clip() { python3 -c 'import sys; print(sys.stdin.read()[: int(sys.argv[1])], end="")' "$1"; }
# step NAME LIMIT_S CMD...: runs CMD with a time limit, keeps its log, records pass/fail and the seconds it took
step() {
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  echo "=== $name"
  timeout "$limit" "$@" > "$WORK/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$WORK/$name.log"
  LAST_SECONDS=$(( $(date +%s) - t0 ))
  LAST_RC=$rc
  [ $rc -eq 0 ] && LAST_STATUS=ok || LAST_STATUS="failed (rc $rc)"
}

echo "=== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi: not available"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)

if ! skip install; then
step install 240 pip install -q -e ".[cuda,train,dev]"
if [ $LAST_RC -ne 0 ]; then  # offline: use the packages the machine has
  step install-offline 120 pip install -q --no-deps --no-build-isolation -e .
fi
note install "$LAST_STATUS" "$LAST_SECONDS" "$(python -c 'import onnxruntime as o, torch; print(f"onnxruntime {o.__version__}, torch {torch.__version__}, torch.cuda {torch.cuda.is_available()}")' 2>&1 | tail -n 1)"
fi

step info 60 fer-edge info --json --device auto
note info "$LAST_STATUS" "$LAST_SECONDS" "$(python -c 'import json,sys; d=json.load(open(sys.argv[1])); p=d["providers"]; print(p["summary"], "| cuDNN", d["gpu"].get("cudnn"), "| CUDA runtime", d["gpu"].get("cuda_runtime"))' "$WORK/info.log" 2>&1 | tail -n 1)"

if ! skip tests; then
  step tests 200 python -m pytest -q -x -p no:cacheprovider
  note tests "$LAST_STATUS" "$LAST_SECONDS" "$(grep -E '[0-9]+ (passed|failed)' "$WORK/tests.log" | tail -n 1)"
fi

python - "$WORK/clip.avi" "${CHECK_FRAMES:-300}" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from webcam_fps import make_clip
make_clip(Path(sys.argv[1]), (640, 480), 3, int(sys.argv[2]))
EOF

step classify 90 fer-edge classify "$WORK/clip.avi" --device "$DEV" --video-every 0 --out "$WORK/faces.csv"
note "classify (clip, every frame, --device $DEV)" "$LAST_STATUS" "$LAST_SECONDS" "$(grep -E 'frames/s|faces/s|runs on|model .* on ' "$WORK/classify.log" | tr -s ' ' | tr '\n' ' ' | clip 160)"

step webcam 90 fer-edge webcam --source "$WORK/clip.avi" --no-display --device "$DEV"
note "webcam (640x480, 3 faces, --device $DEV)" "$LAST_STATUS" "$LAST_SECONDS" "$(grep -oE '[0-9.]+ FPS, [A-Za-z]+' "$WORK/webcam.log" | head -n 1)"

for dev in $(printf '%s\n' "$DEV" cpu | sort -u); do
  step "speed-$dev" 120 python benchmarks/classifier_speed.py default fast --device $dev --batches 1,64,256 --seconds "${CHECK_SECONDS:-2}" --io-binding both --threads 0
  note "classifier speed ($dev)" "$LAST_STATUS" "$LAST_SECONDS" "see the table above"
done

if [ -d .carry ]; then
  python train/recipes/pack_data.py unpack .carry "$WORK/fer.npz" > /dev/null && DATA="$WORK/fer.npz"
fi
if [ -z "${DATA:-}" ]; then
  DATA="$WORK/synthetic.csv"
  python - "$DATA" "${CHECK_SYNTH:-500}" <<'EOF'
import sys
import numpy as np
rng = np.random.default_rng(0)
rows = ["emotion,pixels,Usage"]
per_class = int(sys.argv[2])
for usage, n in (("Training", 6 * per_class), ("PublicTest", 7 * per_class // 5)):
    for i in range(n):
        c = i % 7
        img = rng.integers(0, 80, (48, 48)); img[5 + 5 * c: 9 + 5 * c, 8:40] += 150
        rows.append(f"{c},{' '.join(map(str, np.clip(img, 0, 255).ravel()))},{usage}")
open(sys.argv[1], "w").write("\n".join(rows) + "\n")
EOF
fi
step train 150 fer-edge train --data "$DATA" --arch fernet-s --epochs 2 --device "$DEV" --out "$WORK/run" --no-tta
note "train (fernet-s, 2 epochs, bf16 AMP, $(basename "$DATA"))" "$LAST_STATUS" "$LAST_SECONDS" "$(grep -E '^epoch' "$WORK/train.log" | sed -E 's/ +/ /g' | tr '\n' ';' | clip 200)"

echo
echo "=== summary (GPU: ${GPU:-none})"
column -t -s "$(printf '\t')" "$SUMMARY" 2>/dev/null || cat "$SUMMARY"
[ -n "${OUT:-}" ] && cp "$SUMMARY" "$WORK"/*.log "$OUT"/ 2>/dev/null
exit 0
