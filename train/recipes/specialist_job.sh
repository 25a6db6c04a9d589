#!/usr/bin/env bash
# Low-resolution specialists for the gated default, trained side by side on one lent GPU (a machine with torch
# and onnxruntime but not this package, the data packed by pack_data.py in .carry/). Both nets of the shipped
# gated default are read back from assets/fer-edge.onnx; every variant is taught by the generalist, which
# labels each augmented face clean while the student sees it shrunk or blurred. The last and best (12 px,
# PublicTest) weights of each variant come back in $OUT, to be exported with `fer-edge export --specialist`.
#   usage (from the repository root, on the device): bash train/recipes/specialist_job.sh [MINUTES] [DEVICE]
set -u
export PYTHONUNBUFFERED=1
MIN=${1:-6.5}
DEV=${2:-cuda}
OUTDIR=${OUT:-/tmp/spec-out}
mkdir -p "$OUTDIR" /tmp/spec
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
# the package as an import path: fer_edge/train, export and assets are links to the top-level folders
mkdir -p /tmp/fe/fer_edge && cp -rL fer_edge/. /tmp/fe/fer_edge/ || exit 1
export PYTHONPATH=/tmp/fe FER_EDGE_CACHE=/tmp/spec/cache
(cd /tmp && python3 -c "import torch, fer_edge.train.specialist as s; print(s.__file__, torch.__version__, torch.cuda.is_available())")
python3 train/recipes/pack_data.py unpack .carry /tmp/fer.npz || exit 1
python3 -m fer_edge.train.from_onnx /tmp/spec/gen.pt assets/fer-edge.onnx --member generalist --data /tmp/fer.npz &
python3 -m fer_edge.train.from_onnx /tmp/spec/spec0.pt assets/fer-edge.onnx --member specialist --data /tmp/fer.npz &
wait
[ -f /tmp/spec/gen.pt ] && [ -f /tmp/spec/spec0.pt ] || exit 1

variant() {  # name, start, then specialist options
  local name=$1 start=$2
  shift 2
  python3 -m fer_edge.train.specialist "/tmp/spec/$name.pt" "$start" --data /tmp/fer.npz --teacher /tmp/spec/gen.pt \
    --minutes "$MIN" --device "$DEV" --threads 3 "$@" >"/tmp/spec/$name.log" 2>&1 &
}
variant long /tmp/spec/gen.pt --px 10-16 --blur-share 0.25 --lr 0.01
variant narrow /tmp/spec/gen.pt --px 10-14 --blur-share 0.2 --lr 0.01
variant cont /tmp/spec/spec0.pt --px 10-16 --blur-share 0.25 --lr 0.005
variant hot /tmp/spec/gen.pt --px 10-16 --blur-share 0.25 --lr 0.02 --batch 256
wait
for v in long narrow cont hot; do
  echo "== $v"; grep -v "^epoch" "/tmp/spec/$v.log" | tail -n 6; grep "^epoch" "/tmp/spec/$v.log" | awk 'NR % 10 == 0'
  grep "^epoch" "/tmp/spec/$v.log" | tail -n 3
  cp "/tmp/spec/$v.pt" "$OUTDIR/$v.pt" 2>/dev/null
  # the device tool brings back 8 files: the continued run's best stays behind
  [ "$v" = cont ] || cp "/tmp/spec/$v.best.pt" "$OUTDIR/$v.best.pt" 2>/dev/null
done
tar czf "$OUTDIR/logs.tgz" -C /tmp/spec long.log narrow.log cont.log hot.log 2>/dev/null || true
