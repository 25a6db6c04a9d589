"""A low-resolution specialist: a net fine-tuned on nothing but faces a few pixels tall or badly blurred,
taught by a teacher's probabilities of the same faces *clean* (cross-resolution distillation).

A face 12 px tall keeps too little of its expression for a net that must also read sharp faces: the
generalist loses 14 points there. The specialist gives up sharp faces for those, and a gated export
(`fer_edge.export.gated`) hands each face to it by how little fine detail the face has, so sharp faces
keep the generalist's answer.

    python -m fer_edge.train.specialist OUT.pt START.pt --data fer2013.csv.gz [--teacher assets/fer-edge.onnx]
        [--px 10-16] [--blur-share 0.25] [--minutes 60] [--lr 0.01] [--device auto]

START.pt is a checkpoint (a shipped .onnx read back first: `python -m fer_edge.train.from_onnx`). Each
training face gets the trainer's shift, turn, scale and erasing, then either the suite's down-up to a side
drawn from --px (area down, bilinear up: what the runtime's crop step does to a small face) or, for a
--blur-share of faces, a Gaussian blur of sigma 1.5-3 (OpenCV's kernel width, augment.gaussian_blur, so it all runs on the
batch's device). The teacher labels the faces clean: an .onnx teacher each training face once before training,
a checkpoint teacher each augmented face, so its labels follow the student's shift, turn and erasing.
Loss: 0.7 of the teacher's clean-face probabilities at temperature 4, 0.3 true labels with label smoothing 0.1; SGD with Nesterov, cosine to zero by the deadline.
Each epoch scores PublicTest clean, at 16 and 12 px and under blur sigma 2.5 through the suite's own OpenCV
code (fp32, flip TTA); OUT.pt is the last epoch's weights, OUT.best.pt the best at the smallest --px.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from fer_edge.contract import PIXEL_MEAN, PIXEL_STD
from fer_edge.train.augment import AugmentConfig, augment, gaussian_blur
from fer_edge.train.checkpoint import load_checkpoint, model_from_checkpoint, save_atomic
from fer_edge.train.corruptions import blur, down_up
from fer_edge.train.data import load_dataset
from fer_edge.train.evaluate import torch_probs
from fer_edge.train.trainer import Teacher, fast_math, pick_device

KD_T, KD_ALPHA = 4.0, 0.7


def parse_px(text: str) -> tuple[int, int]:
    """'12' -> (12, 12); '10-16' -> (10, 16)."""
    lo, _, hi = text.partition("-")
    lo_i, hi_i = int(lo), int(hi or lo)
    if not 4 <= lo_i <= hi_i <= 48:
        raise ValueError(f"--px {text!r}: give a side or a range between 4 and 48 px, such as 10-16")
    return lo_i, hi_i


def degrade(x: torch.Tensor, px: tuple[int, int], blur_share: float, gen: torch.Generator) -> torch.Tensor:
    """float [N, 1, 48, 48] in [0, 1], on gen's device: each face down to a side drawn from px and back up
    (area, bilinear), or for a blur_share of faces blurred with sigma 1.5-3 instead."""
    n, side, dev = x.shape[0], x.shape[-1], x.device
    sizes = torch.randint(px[0], px[1] + 1, (n,), generator=gen, device=dev)
    blurred = torch.rand(n, generator=gen, device=dev) < blur_share
    sigmas = 1.5 + 1.5 * torch.rand(n, generator=gen, device=dev)
    out = x.clone()
    for s in sizes[~blurred].unique().tolist():
        sel = (sizes == s) & ~blurred
        small = F.interpolate(x[sel], size=(s, s), mode="area")
        out[sel] = F.interpolate(small, size=(side, side), mode="bilinear", align_corners=False)
    if bool(blurred.any()):
        # on the uint8 grid, as the suite blurs the uint8 faces the runtime gets
        out[blurred] = (gaussian_blur((x[blurred] * 255).round(), sigmas[blurred], opencv_width=True).round() / 255).clamp(0, 1)
    return out


def fine_tune(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, teacher: Teacher, px: tuple[int, int],
              blur_share: float, minutes: float, lr: float, batch: int, gen: torch.Generator, bf16: bool,
              channels_last: bool, after_epoch: Callable[[int, float, float], None]) -> None:
    """Train `model` in place on degraded faces until the budget ends (cosine to zero by it); after_epoch(epoch
    from 1, learning rate, seconds so far) after each pass and after the last, partial one. Runs on gen's
    device; the teacher sees each face augmented but clean, the student the same face degraded."""
    dev = gen.device
    xs, ys = torch.from_numpy(x).to(dev), torch.from_numpy(y).long().to(dev)
    aug = AugmentConfig(rotate=15, scale=0.15)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    budget, t0, epoch = minutes * 60, time.time(), 0

    def prepare(faces: torch.Tensor) -> torch.Tensor:
        faces = (faces - PIXEL_MEAN) / PIXEL_STD
        return faces.contiguous(memory_format=torch.channels_last) if channels_last else faces

    while time.time() - t0 < budget:
        model.train()
        epoch += 1
        order = torch.randperm(len(xs), generator=gen, device=dev)
        for i in range(0, max(len(order) - batch + 1, 1), batch):
            idx = order[i : i + batch]
            clean = augment(xs[idx].float().unsqueeze(1) / 255.0, aug, gen)
            xb = prepare(degrade(clean, px, blur_share, gen))
            for g in opt.param_groups:
                g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (time.time() - t0) / budget)))
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(xb).float()
                soft = teacher.soft_targets(prepare(clean), KD_T, idx).float()  # a checkpoint teacher: bf16 too
            kd = F.kl_div(F.log_softmax(logits / KD_T, 1), soft, reduction="batchmean") * KD_T**2
            loss = KD_ALPHA * kd + (1 - KD_ALPHA) * F.cross_entropy(logits, ys[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if time.time() - t0 >= budget:
                break
        after_epoch(epoch, opt.param_groups[0]["lr"], time.time() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("start", type=Path, help="checkpoint to fine-tune (the generalist, read back)")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/fer2013.csv.gz"))
    ap.add_argument("--teacher", type=Path, default=Path("assets/fer-edge.onnx"),
                    help="labels the clean faces: an .onnx once before training, a .pt checkpoint each augmented batch")
    ap.add_argument("--px", default="10-16", help="side of the training faces, or a range to draw from")
    ap.add_argument("--blur-share", type=float, default=0.25, help="share of faces blurred instead of shrunk")
    ap.add_argument("--minutes", type=float, default=60.0, help="training budget; the schedule anneals by it")
    ap.add_argument("--lr", type=float, default=0.01, help="peak learning rate")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (auto: cuda when torch sees one)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    px = parse_px(args.px)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    math_mode = fast_math(device, True)
    print(f"math: {math_mode.why}", flush=True)

    ds = load_dataset(args.data)
    train, val = ds["train"], ds["val"] if ds.has("val") else ds["test"]
    ckpt = load_checkpoint(args.start)
    model = model_from_checkpoint(ckpt).to(device)
    if math_mode.channels_last:
        model = model.to(memory_format=torch.channels_last)
    teacher = Teacher([str(args.teacher)], device, train.x, log=lambda m: print(m, flush=True),
                      channels_last=math_mode.channels_last)
    views = {"clean": val.x, "16 px": down_up(val.x, 16), "12 px": down_up(val.x, 12), "blur 2.5": blur(val.x, 2.5)}

    settings = {"px": list(px), "blur_share": args.blur_share, "minutes": args.minutes, "lr": args.lr, "seed": args.seed,
                "teacher": Path(args.teacher).name, "start": Path(args.start).name}

    def score(label: str) -> dict[str, float]:
        # fp32 on the GPU too: the figures that pick a specialist should not move with the device
        accs = {k: 100 * float((torch_probs(model, x, device, tta=True, bf16=False, channels_last=False).argmax(1) == val.y).mean())
                for k, x in views.items()}
        print(f"{label}: " + ", ".join(f"{k} {a:.2f}%" for k, a in accs.items()), flush=True)
        return accs

    key = f"{px[0]} px" if f"{px[0]} px" in views else "12 px"
    best = score("start")[key]

    def after_epoch(epoch: int, lr: float, elapsed: float) -> None:
        nonlocal best
        accs = score(f"epoch {epoch} ({elapsed:.0f}s, lr {lr:.4f})")
        # the trainer's conventions: epoch counts from 0, best_acc is the clean validation accuracy
        state = {**{k: v for k, v in ckpt.items() if k != "ema"}, "model": model.state_dict(), "epoch": epoch - 1,
                 "best_acc": accs["clean"] / 100, "config": {**ckpt["config"], "specialist": settings}}
        save_atomic(state, args.out)
        if accs[key] > best:
            best = accs[key]
            save_atomic(state, args.out.with_suffix(".best.pt"))

    fine_tune(model, train.x, train.y, teacher, px, args.blur_share, args.minutes, args.lr, args.batch, gen,
              math_mode.bf16, math_mode.channels_last, after_epoch)
    print(f"{key}: best {best:.2f}%; last weights in {args.out}", flush=True)


if __name__ == "__main__":
    main()
