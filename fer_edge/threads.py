"""One thread budget for the whole process: onnxruntime, OpenCV and the loop's own stage threads share the
same cores, and when each takes every core they fight for them.

Measured on a 2-core CPU (benchmarks/e2e_speed.py, the staged webcam loop and `classify FOLDER`, default
model): onnxruntime on 1 thread with OpenCV on 2 ran 1.0-1.1x the FPS and images/s of 2 and 2 with Haar, and
1.1-1.4x with YuNet; OpenCV on 1 thread cost 0.55-0.65x with Haar, whose scan parallelises well. A face
batch is small next to a detection, so onnxruntime gets a share of the cores and OpenCV gets them all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def machine_cores() -> int:
    """The cores this process may run on: its CPU affinity, and a container's CPU quota when it is lower."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:  # cgroup v2: "max 100000" or "200000 100000"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


@dataclass(frozen=True)
class ThreadBudget:
    cores: int
    onnxruntime: int  # intra-op threads of the classifier's session (inter-op: 1)
    opencv: int  # cv2.setNumThreads: Haar's scan, YuNet, resizing
    chosen_by: str

    def describe(self) -> str:
        return f"onnxruntime {self.onnxruntime}, OpenCV {self.opencv} ({self.chosen_by})"


def plan(threads: int = 0, cores: int | None = None) -> ThreadBudget:
    """The budget for `threads` cores (0: the machine's)."""
    if threads > 0:
        n, why = threads, f"--threads {threads}"
    else:
        n = machine_cores() if cores is None else cores
        why = f"{n} core{'s' if n != 1 else ''} here"
    return ThreadBudget(n, max(1, n // 2) if n > 2 else 1, n, why)


def apply(threads: int = 0) -> ThreadBudget:
    """Plan the budget and set OpenCV's share (process-wide); the caller gives onnxruntime its share."""
    import cv2

    budget = plan(threads)
    cv2.setNumThreads(budget.opencv)
    return budget
