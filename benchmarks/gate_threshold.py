"""Where a gated model's routing threshold should sit: accuracy against the share of faces that reach the
specialist, clean and under the suite's blur, low-resolution, noise and JPEG settings.

    python benchmarks/gate_threshold.py GATED.onnx GENERALIST.pt SPECIALIST.pt [--data fer2013.csv.gz]
        [--thresholds 0.02,0.05,0.1,0.15,0.2] [--limit N] [--threads 2]

The gate's numbers come from GATED.onnx's metadata (`fer-edge export --specialist`); the two nets are its
checkpoints, scored in fp32 with flip TTA on both (`--specialist-tta`). A face with a share under the
threshold keeps the generalist's answer; each cell is accuracy % (share of faces routed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import torch
from rich.console import Console
from rich.table import Table
from robustness import default_data

from fer_edge.export.gated import detail
from fer_edge.train.checkpoint import load_checkpoint, model_from_checkpoint
from fer_edge.train.corruptions import SUITE
from fer_edge.train.data import load_dataset
from fer_edge.train.evaluate import torch_probs

KINDS = ("blur", "low-res", "noise", "jpeg")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gated", type=Path, help="a gated .onnx: its gate's numbers are read from its metadata")
    ap.add_argument("generalist", type=Path)
    ap.add_argument("specialist", type=Path)
    ap.add_argument("--data", type=Path, default=None, help="FER2013 CSV or .npz (default: $FER_EDGE_DATA or ../shared/data)")
    ap.add_argument("--thresholds", default="0.02,0.05,0.1,0.15,0.2")
    ap.add_argument("--limit", type=int, default=0, help="first N faces only (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    meta = {p.key: p.value for p in onnx.load(str(args.gated)).metadata_props}
    if "gate" not in meta:
        raise SystemExit(f"{args.gated}: not a gated model (no gate in its metadata)")
    gate = json.loads(meta["gate"])
    val = load_dataset(args.data or default_data())["val"]
    x, y = (val.x[: args.limit], val.y[: args.limit]) if args.limit else (val.x, val.y)
    nets = [model_from_checkpoint(load_checkpoint(p)) for p in (args.generalist, args.specialist)]
    views = {"clean": x, **{f"{k} {label}": fn(x) for k, levels in SUITE.items() if k in KINDS for label, fn in levels}}

    scored = {}
    for name, faces in views.items():
        pg, ps = (torch_probs(net, faces, torch.device("cpu"), tta=True) for net in nets)
        d = detail(torch.from_numpy(faces).float().unsqueeze(1) / 255).numpy()
        scored[name] = (pg, ps, gate["g_max"] / (1 + np.exp(-(d @ np.array(gate["w"]) + gate["b"]))))

    table = Table(title=f"{args.gated.name}: accuracy % (routed %) by threshold, {len(y)} PublicTest faces, fp32 + flip")
    table.add_column("threshold")
    for name in views:
        table.add_column(name, justify="right")
    table.add_row("generalist alone", *(f"{100 * float((pg.argmax(1) == y).mean()):.2f}" for pg, _, _ in scored.values()))
    for t in (float(v) for v in args.thresholds.split(",")):
        cells = []
        for pg, ps, share in scored.values():
            g = np.where(share >= t, share, 0.0)[:, None]
            acc = 100 * float((((1 - g) * pg + g * ps).argmax(1) == y).mean())
            cells.append(f"{acc:.2f} ({100 * float((share >= t).mean()):.0f}%)")
        table.add_row(f"{t:g}", *cells)
    Console(width=400).print(table)


if __name__ == "__main__":
    main()
