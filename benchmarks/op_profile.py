"""Where an ONNX emotion model's CPU time goes: onnxruntime's own profiler, summed per operator type.

    python benchmarks/op_profile.py [MODEL.onnx | default | fast ...] [--threads 2] [--batch 64] [--runs 300]

One column per model, one row per kernel (after onnxruntime's graph optimisations, so the names are the
kernels that ran: QLinearConv, NhwcMaxPool, ReorderOutput...), in microseconds per batch, biggest first. This
is how the slow uint8 first pool (export/fp32_pool.py) and the grid head's AveragePool (export/grid_head.py)
were found. Profiling adds its own overhead: compare the columns of one run, not with classifier_speed.py.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort
from rich.console import Console
from rich.table import Table

from fer_edge.recognizer import resolve_model


def kernel_times(model: Path, threads: int, batch: int, runs: int) -> Counter:
    """Microseconds per run spent in each operator type's kernels."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: np.random.default_rng(0).integers(0, 256, (batch, 48, 48), dtype=np.uint8)}
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    totals: Counter = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            totals[event["args"]["op_name"]] += event["dur"] / runs
    return totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="ONNX files or shipped model names (default, fast); default: both")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args()
    models = [resolve_model(m) for m in (args.models or ["default", "fast"])]
    times = {m: kernel_times(m, args.threads, args.batch, args.runs) for m in models}
    ops = sorted({op for t in times.values() for op in t}, key=lambda op: -max(t.get(op, 0.0) for t in times.values()))
    table = Table(title=f"onnxruntime CPU kernel time, µs per batch of {args.batch}, {args.threads} threads, {args.runs} runs")
    table.add_column("operator")
    for m in models:
        table.add_column(m.name, justify="right")
    for op in ops:
        table.add_row(op, *(f"{times[m][op]:,.0f}" if op in times[m] else "-" for m in models))
    table.add_row("total", *(f"{sum(times[m].values()):,.0f}" for m in models))
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
