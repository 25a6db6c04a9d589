"""Inference speed of FerNet sizes as the runtime runs them: int8 ONNX through onnxruntime, 2 threads.

Weights are random (speed does not depend on their values); each size is exported the shipped way
(`fer-edge export --int8`, calibrated on real training faces), then all are timed in rounds whose order
alternates, so that the machine's drift hits every row alike. This is how fernet-t2 was sized: the
48x48 and 24x24 stages set the CPU time, so narrowing them buys weights at 12x12 and 6x6 for free.

    python benchmarks/student_archs.py [--archs fernet-t,fernet-t2,fernet-s] [--data fer2013.csv.gz] [--rounds 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from fer_edge.export.onnx_export import export, faces_per_second
from fer_edge.train.models import FERNET_SIZES, build_model, count_macs, count_params

from robustness import default_data


def random_int8(arch: str, folder: Path, data: Path) -> Path:
    model = build_model(arch).train()
    with torch.no_grad():  # BatchNorm statistics of a few batches, so that int8 calibration sees sane ranges
        for _ in range(5):
            model(torch.randn(64, 1, 48, 48))
    ckpt = folder / f"{arch}.pt"
    torch.save({"model": model.state_dict(), "config": {"arch": arch, "seed": 0, "data_sha256": ""}}, ckpt)
    out = folder / f"{arch}.onnx"
    export(ckpt, out, data=data, int8=True, log=lambda *_: None)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", default="fernet-t,fernet-t2,fernet-s", help="comma-separated; the first is the baseline")
    ap.add_argument("--data", type=Path, default=None, help="FER2013 CSV or .npz (default: $FER_EDGE_DATA or ../shared/data)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    archs = args.archs.split(",")
    data = args.data or default_data()
    rates: dict[str, dict[int, list[float]]] = {a: {1: [], 64: []} for a in archs}
    with tempfile.TemporaryDirectory() as tmp:
        files = {a: random_int8(a, Path(tmp), data) for a in archs}
        for r in range(args.rounds):
            for a in archs if r % 2 == 0 else archs[::-1]:
                for batch in (1, 64):
                    rates[a][batch].append(faces_per_second(files[a], batch, args.threads, args.seconds))

    table = Table(title=f"int8 onnxruntime, {args.threads} threads, mean of {args.rounds} alternating rounds")
    for col in ("arch", "widths", "convs", "params", "MACs", "batch 1 faces/s", "batch 64 faces/s", f"vs {archs[0]} (b1 / b64)"):
        table.add_column(col, justify="left" if col in ("arch", "widths", "convs") else "right")
    mean = {a: {b: sum(v) / len(v) for b, v in rates[a].items()} for a in archs}
    for a in archs:
        spec, model = FERNET_SIZES[a], build_model(a)
        table.add_row(a, "-".join(map(str, spec.widths)), "-".join(map(str, spec.depths)),
                      f"{count_params(model) / 1e6:.2f}M", f"{count_macs(model) / 1e6:.1f}M",
                      f"{mean[a][1]:,.0f}", f"{mean[a][64]:,.0f}",
                      f"{mean[a][1] / mean[archs[0]][1]:.2f}x / {mean[a][64] / mean[archs[0]][64]:.2f}x")
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
