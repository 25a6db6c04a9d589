#!/usr/bin/env bash
# Runs recipes/gpu.sh, or with `fast` recipes/fast_student.sh (the fast model's gap), on a lent GPU machine
# that has torch but not this package installed, with the data packed by pack_data.py in .carry/ (carried
# along, since it is git-ignored). Results come back as one tarball in $OUT (teacher weights are left out:
# they are large and only needed during the run).
#   usage (from the repository root, on the device): bash train/recipes/device_job.sh [P1_MIN] [P2_MIN]
#                                                    bash train/recipes/device_job.sh fast [MINUTES]
set -u
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# the package as an import path; fer_edge/train, export and assets are links to the top-level folders, so copy
# what they point to (copying the links, then the folders onto them, failed: "cannot overwrite non-directory")
mkdir -p /tmp/fe/fer_edge && cp -rL fer_edge/. /tmp/fe/fer_edge/ || exit 1
export PYTHONPATH=/tmp/fe
python3 train/recipes/pack_data.py unpack .carry /tmp/fer.npz || exit 1
start=$(date +%s)
if [ "${1:-}" = fast ]; then
  FE="python3 -m fer_edge" bash train/recipes/fast_student.sh /tmp/fer.npz /tmp/runs "${2:-7}"
else
  FE="python3 -m fer_edge" bash train/recipes/gpu.sh /tmp/fer.npz /tmp/runs "${1:-3.5}" "${2:-3.3}"
fi
echo "recipe wall: $(( $(date +%s) - start )) s"
for f in /tmp/runs/*/summary.json; do echo "$f: $(tr -d '\n ' < "$f")"; done
tar czf "${OUT:-/tmp}/runs.tgz" --exclude='teacher-*/*.pt' --exclude='teacher.pt' --exclude='*/last.pt' -C /tmp runs
