"""How far can a net get on faces a few pixels tall if it trains for nothing else? A ceiling for the suite's
low-resolution rows (its worst case is a face 12 px tall, upscaled to 48 as the crop step does).

    python benchmarks/low_res_ceiling.py CHECKPOINT.pt [--data fer2013.csv.gz] [--px 12] [--minutes 45]
        [--lr 0.01] [--teacher assets/fer-edge.onnx] [--threads 2] [--save specialist.pt]

Fine-tunes the checkpoint on training faces that all pass through the suite's down-up to --px (after the
trainer's shift, turn, scale and erasing), taught by --teacher's probabilities of the *clean* face (0.7 of the
loss at temperature 4, 0.3 true labels with label smoothing 0.1; SGD, Nesterov, cosine to zero by the
deadline). Each epoch scores PublicTest clean and at 24, 16 and 12 px through the suite's own OpenCV code, in
fp32 with flip TTA (what an exported --tta graph computes). A shipped .onnx is read back first:
`python -m fer_edge.train.from_onnx X.pt X.onnx --data ...`.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from fer_edge.contract import PIXEL_MEAN, PIXEL_STD
from fer_edge.train.augment import AugmentConfig, augment
from fer_edge.train.checkpoint import load_checkpoint, model_from_checkpoint, save_atomic
from fer_edge.train.corruptions import down_up
from fer_edge.train.data import load_dataset
from fer_edge.train.evaluate import torch_probs
from fer_edge.train.trainer import Teacher

SIZES = (24, 16, 12)
KD_T, KD_ALPHA = 4.0, 0.7


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
                        "fp32, flip TTA")
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
    xs, ys = torch.from_numpy(train.x), torch.from_numpy(train.y).long()
    aug = AugmentConfig(rotate=15, scale=0.15)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    budget, t0, epoch = args.minutes * 60, time.time(), 0
    while time.time() - t0 < budget:
        model.train()
        epoch += 1
        order = torch.randperm(len(xs), generator=gen)
        for i in range(0, max(len(order) - args.batch + 1, 1), args.batch):
            idx = order[i : i + args.batch]
            xb = augment(xs[idx].float().unsqueeze(1) / 255.0, aug, gen)
            # area down and bilinear up: what corruptions.down_up does with OpenCV
            xb = F.interpolate(F.interpolate(xb, size=(args.px, args.px), mode="area"), size=(48, 48),
                               mode="bilinear", align_corners=False)
            xb = ((xb - PIXEL_MEAN) / PIXEL_STD).contiguous(memory_format=torch.channels_last)
            for g in opt.param_groups:
                g["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (time.time() - t0) / budget)))
            logits = model(xb).float()
            soft = teacher.soft_targets(xb, KD_T, idx)
            kd = F.kl_div(F.log_softmax(logits / KD_T, 1), soft, reduction="batchmean") * KD_T**2
            loss = KD_ALPHA * kd + (1 - KD_ALPHA) * F.cross_entropy(logits, ys[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if time.time() - t0 >= budget:
                break
        acc = score(f"epoch {epoch}", f"{opt.param_groups[0]['lr']:.4f}")[f"{args.px} px"]
        if acc > best:
            best = acc
            if args.save:
                save_atomic({**{k: v for k, v in ckpt.items() if k != "ema"}, "model": model.state_dict()}, args.save)
    console.print(table)
    console.print(f"{args.px} px: {start:.2f}% at the start, best {best:.2f}% after {epoch} epochs")


if __name__ == "__main__":
    main()
