"""How far can a net get on faces a few pixels tall if it trains for nothing else? A ceiling for the suite's
low-resolution rows (its worst case is a face 12 px tall, upscaled to 48 as the crop step does).

    python benchmarks/low_res_ceiling.py CHECKPOINT.pt [--data fer2013.csv.gz] [--px 12] [--minutes 45]
        [--lr 0.01] [--teacher assets/fer-edge.onnx] [--threads 2] [--save specialist.pt]

Fine-tunes the checkpoint on training faces that all pass through the suite's down-up to --px (after the
trainer's shift, turn, scale and erasing), taught by --teacher's probabilities of the *clean* face (0.7 of the
loss at temperature 4, 0.3 true labels with label smoothing 0.1; SGD, Nesterov, cosine to zero by the
deadline; bf16 where the CPU has it natively: the loop is the specialist's, `fer_edge.train.specialist.fine_tune`,
with one size and no blur; an earlier probe ran the same in fp32). Each epoch scores PublicTest clean and at 24, 16 and 12 px through the suite's own OpenCV code, in
fp32 with flip TTA (what an exported --tta graph computes). A shipped .onnx is read back first:
`python -m fer_edge.train.from_onnx X.pt X.onnx --data ...`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from fer_edge.train.checkpoint import load_checkpoint, model_from_checkpoint, save_atomic
from fer_edge.train.corruptions import down_up
from fer_edge.train.data import load_dataset
from fer_edge.train.evaluate import torch_probs
from fer_edge.train.specialist import fine_tune
from fer_edge.train.trainer import Teacher, fast_math

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
    ap.add_argument("--save", type=Path, help="write the best specialist (by --px accuracy) here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    console = Console()

    ds = load_dataset(args.data)
    train, val = ds["train"], ds["val"] if ds.has("val") else ds["test"]
    ckpt = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(ckpt).to(memory_format=torch.channels_last)
    # the trainer's offline teacher: the clean faces labelled once (cached), softened per batch
    teacher = Teacher([str(args.teacher)], torch.device("cpu"), train.x, log=console.print)
    views = {"clean": val.x, **{f"{p} px": down_up(val.x, p) for p in SIZES}}

    table = Table(title=f"{args.checkpoint.name} trained on {args.px} px faces only: PublicTest ({len(val)} faces), "
                        "scored in fp32, flip TTA")
    for col in ("after", "lr", *views):
        table.add_column(col, justify="right")

    def score(label: str, lr: str) -> dict[str, float]:
        accs = {k: 100 * float((torch_probs(model, x, torch.device("cpu"), tta=True).argmax(1) == val.y).mean())
                for k, x in views.items()}
        table.add_row(label, lr, *(f"{a:.2f}%" for a in accs.values()))
        console.print(f"{label}: " + ", ".join(f"{k} {a:.2f}%" for k, a in accs.items()))
        return accs

    start = score("start", "-")[f"{args.px} px"]
    best = -1.0

    def after_epoch(epoch: int, lr: float, _elapsed: float) -> None:
        nonlocal best
        acc = score(f"epoch {epoch}", f"{lr:.4f}")[f"{args.px} px"]
        if acc > best:
            best = acc
            if args.save:
                save_atomic({**{k: v for k, v in ckpt.items() if k != "ema"}, "model": model.state_dict()}, args.save)

    math_mode = fast_math(torch.device("cpu"), True)
    fine_tune(model, train.x, train.y, teacher, (args.px, args.px), 0.0, args.minutes, args.lr, args.batch, gen,
              math_mode.bf16, True, after_epoch)
    console.print(table)
    console.print(f"{args.px} px: {start:.2f}% at the start, best {best:.2f}%")


if __name__ == "__main__":
    main()
