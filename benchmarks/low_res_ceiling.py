"""How far can a net get on faces a few pixels tall if it trains for nothing else? A ceiling for the suite's
low-resolution rows (its worst case is a face 12 px tall, upscaled to 48 as the crop step does).

    python benchmarks/low_res_ceiling.py CHECKPOINT.pt [--data fer2013.csv.gz] [--px 12] [--minutes 45]
        [--lr 0.01] [--teacher assets/fer-edge.onnx] [--threads 2] [--out runs/ceiling]

The specialist's run (`fer-edge train specialist`, train/specialist.py) with one size and no blur: every
training face passes through the suite's down-up to --px (after the trainer's shift, turn, scale and
erasing), taught by --teacher's probabilities of the *clean* face. Each epoch scores PublicTest clean and at
24, 16 and 12 px through the suite's own OpenCV code, in fp32 with flip TTA (what an exported --tta graph
computes); this prints them as a table. --out keeps the run folder (best.pt: the best epoch at --px). A
shipped .onnx is read back first: `fer-edge train from-onnx X.pt X.onnx --data ...`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fer_edge.train.config import SpecialistConfig
from fer_edge.train.corruptions import down_up
from fer_edge.train.data import load_dataset
from fer_edge.train.specialist import train_specialist

SIZES = (24, 16, 12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/fer2013.csv.gz"))
    ap.add_argument("--px", type=int, default=12, help="every training face is this many px tall")
    ap.add_argument("--minutes", type=float, default=45.0, help="training budget; the schedule anneals by it")
    ap.add_argument("--lr", type=float, default=0.01, help="peak learning rate")
    ap.add_argument("--teacher", type=Path, default=Path("assets/fer-edge.onnx"), help="labels the clean faces")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="keep the run folder here (default: a temporary one)")
    args = ap.parse_args()
    console = Console()
    ds = load_dataset(args.data)
    val = ds["val"] if ds.has("val") else ds["test"]
    views = {"clean": val.x, **{f"{p} px": down_up(val.x, p) for p in sorted({*SIZES, args.px}, reverse=True)}}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SpecialistConfig(out=str(args.out or Path(tmp) / "run"), start=str(args.checkpoint), data=str(args.data),
                               teacher=str(args.teacher), px=str(args.px), blur_share=0.0, minutes=args.minutes,
                               lr=args.lr, batch_size=args.batch, seed=args.seed, threads=args.threads, device="cpu")
        rows = train_specialist(cfg, log=console.print, views=views)
    table = Table(title=f"{args.checkpoint.name} trained on {args.px} px faces only: PublicTest ({len(val)} faces), "
                        "scored in fp32, flip TTA")
    for col in ("after", "lr", *views):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(f"epoch {row['epoch']}", f"{row['lr']:.4f}", *(f"{100 * row[k]:.2f}%" for k in views))
    console.print(table)
    key = f"{args.px} px"
    console.print(f"{key}: best {100 * max(r[key] for r in rows):.2f}% over {len(rows)} epoch(s)")


if __name__ == "__main__":
    main()
