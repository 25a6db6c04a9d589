"""A low-resolution specialist: a net fine-tuned on nothing but faces a few pixels tall or badly blurred,
taught by a teacher's probabilities of the same faces *clean* (cross-resolution distillation).

A face 12 px tall keeps too little of its expression for a net that must also read sharp faces: the
generalist loses 14 points there. The specialist gives up sharp faces for those, and a gated export
(`fer_edge.export.gated`) hands each face to it by how little fine detail the face has, so sharp faces
keep the generalist's answer.

    fer-edge train specialist OUT START.pt --data fer2013.csv.gz [--teacher assets/fer-edge.onnx]
        [--px 10-16] [--blur-share 0.25] [--minutes 60] [--lr 0.01] [--resume]

START.pt is a checkpoint (a shipped .onnx read back first: `fer-edge train from-onnx`). Each training face
gets the trainer's shift, turn, scale and erasing, then either the suite's down-up to a side drawn from --px
(area down, bilinear up: what the runtime's crop step does to a small face) or, for a --blur-share of faces,
a Gaussian blur of sigma 1.5-3 (OpenCV's kernel width, augment.gaussian_blur, so it all runs on the batch's
device). The teacher labels the faces clean (teacher.py); the loss and the update are the trainer's
(step.py): 0.7 of the teacher's clean-face probabilities at temperature 4, 0.3 true labels with label
smoothing 0.1, SGD with Nesterov, cosine by the deadline. Each epoch scores the validation faces clean, at
16 and 12 px and under blur sigma 2.5 through the suite's own OpenCV code (fp32, flip TTA). OUT holds
config.json, metrics.csv, last.pt (weights, optimiser, RNG and time spent: `--resume` continues it) and
best.pt, the best epoch at the smallest --px.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

import fer_edge
from fer_edge.contract import LABELS
from fer_edge.errors import UsageError

from .augment import AugmentConfig, augment, gaussian_blur
from .checkpoint import load_checkpoint, model_from_checkpoint, restore_rng, rng_state, save_atomic
from .config import SpecialistConfig
from .corruptions import blur, down_up
from .data import load_dataset
from .device import fast_math, seeded
from .evaluate import torch_probs
from .models import data_config_of
from .run_folder import append_metrics_row, run_to_resume, start_fresh, write_config
from .step import distilled, lr_at, make_optimizer, set_lr, update
from .teacher import Teacher


def parse_px(text: str) -> tuple[int, int]:
    """'12' -> (12, 12); '10-16' -> (10, 16)."""
    lo, _, hi = text.partition("-")
    try:
        lo_i, hi_i = int(lo), int(hi or lo)
    except ValueError:
        lo_i = hi_i = 0
    if not 4 <= lo_i <= hi_i <= 48:
        raise UsageError(f"--px {text!r}: give a side or a range between 4 and 48 px, such as 10-16")
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


def judged_views(x: np.ndarray, px: tuple[int, int]) -> dict[str, np.ndarray]:
    """The validation faces as each epoch scores them: clean, at 16 and 12 px (and the smallest --px), blurred."""
    sides = sorted({16, 12, px[0]}, reverse=True)
    return {"clean": x, **{f"{s} px": down_up(x, s) for s in sides}, "blur 2.5": blur(x, 2.5)}


def train_specialist(cfg: SpecialistConfig, resume: bool = False, log: Callable[[str], None] = print,
                     views: dict[str, np.ndarray] | None = None) -> list[dict]:
    """Fine-tune cfg.start on degraded faces until cfg.minutes of training are spent; the metrics rows.
    `views`: validation faces to score each epoch instead of judged_views' (a benchmark's own sizes)."""
    px = parse_px(cfg.px)
    out = Path(cfg.out)
    last_path = run_to_resume(out, resume, "folder")
    if last_path is not None:
        last = load_checkpoint(last_path)
        saved = SpecialistConfig.from_dict(last["run_config"])
        # a resumed run keeps its recipe; only where it runs and where its data lies may change
        saved.device, saved.threads, saved.data = cfg.device, cfg.threads, cfg.data or saved.data
        cfg = saved
    if not cfg.data:
        raise UsageError("the specialist needs --data (its training faces)")
    device, gen = seeded(cfg.device, cfg.threads, cfg.seed)
    mode = fast_math(device, True)
    log(f"math: {mode.why}")

    ds = load_dataset(cfg.data)
    train, val = ds["train"], ds["val"] if ds.has("val") else ds["test"]
    start = load_checkpoint(cfg.start)
    model = model_from_checkpoint(start).to(device)
    if mode.channels_last:
        model = model.to(memory_format=torch.channels_last)
    teacher_path = cfg.teacher or str(Path(fer_edge.__file__).parent / "assets" / "fer-edge.onnx")
    teacher = Teacher([teacher_path], device, train.x, log=log, channels_last=mode.channels_last,
                      data=data_config_of(model))
    optimizer = make_optimizer("sgd", model, cfg.lr, 0.9, 5e-4)
    views = views or judged_views(val.x, px)
    key = f"{px[0]} px" if f"{px[0]} px" in views else next(k for k in views if k.endswith(" px"))
    epoch, spent, best, rows = 0, 0.0, -1.0, []
    if resume:
        model.load_state_dict(last["model"])
        optimizer.load_state_dict(last["optimizer"])
        restore_rng(last["rng"], gen, device)
        epoch, spent, best = last["epoch"] + 1, last["train_seconds"], last["best_at_px"]
        log(f"resuming {out} after epoch {epoch}, {spent / 60:.1f} of {cfg.minutes:g} min spent")
    else:
        start_fresh(out)
    write_config(out, asdict(cfg))

    def score() -> dict[str, float]:
        # fp32 on the GPU too: the figures that pick a specialist should not move with the device
        return {k: float((torch_probs(model, x, device, tta=True, bf16=False, channels_last=False).argmax(1) == val.y).mean())
                for k, x in views.items()}

    # what the checkpoints (and an export's metadata) say of the recipe: no local paths
    recipe = {"px": list(px), "blur_share": cfg.blur_share, "minutes": cfg.minutes, "lr": cfg.lr, "seed": cfg.seed,
              "teacher": Path(teacher_path).name, "start": Path(cfg.start).name}
    if not resume:
        log("start: " + ", ".join(f"{k} {100 * a:.2f}%" for k, a in score().items()))
    xs, ys = torch.from_numpy(train.x).to(device), torch.from_numpy(train.y).long().to(device)
    budget = cfg.minutes * 60
    while spent < budget:
        t0 = time.time()
        _one_pass(model, optimizer, teacher, xs, ys, cfg, px, gen, mode, lambda: spent + time.time() - t0)
        spent += time.time() - t0
        accs = score()
        row = {"epoch": epoch + 1, "lr": round(optimizer.param_groups[0]["lr"], 6), "seconds": round(spent, 1),
               **{k: round(a, 5) for k, a in accs.items()}}
        append_metrics_row(out / "metrics.csv", row)
        rows.append(row)
        log(f"epoch {epoch + 1} ({spent:.0f}s, lr {row['lr']:.4f}): " + ", ".join(f"{k} {100 * a:.2f}%" for k, a in accs.items()))
        # the trainer's checkpoint conventions: epoch counts from 0, best_acc is the clean validation accuracy;
        # the start's config (arch, data) with this run's under "specialist"
        state = {**{k: v for k, v in start.items() if k not in ("ema", "optimizer", "rng")}, "model": model.state_dict(),
                 "epoch": epoch, "best_acc": accs["clean"], "labels": list(LABELS),
                 "config": {**start["config"], "specialist": recipe}}
        if accs[key] > best:
            best = accs[key]
            save_atomic(state, out / "best.pt")
        save_atomic({**state, "optimizer": optimizer.state_dict(), "rng": rng_state(gen, device),
                     "train_seconds": spent, "best_at_px": best, "run_config": asdict(cfg)}, out / "last.pt")
        epoch += 1
    log(f"{key}: best {100 * best:.2f}% (best.pt); last weights in {out / 'last.pt'}")
    return rows


def _one_pass(model, optimizer, teacher: Teacher, xs: torch.Tensor, ys: torch.Tensor, cfg: SpecialistConfig,
              px: tuple[int, int], gen: torch.Generator, mode, elapsed: Callable[[], float]) -> None:
    """One pass over the training faces, or until the budget ends: the teacher sees each face augmented but
    clean, the student the same face degraded."""
    model.train()
    aug = AugmentConfig(rotate=15, scale=0.15)
    dev, batch, budget = gen.device, cfg.batch_size, cfg.minutes * 60

    def prepare(faces: torch.Tensor) -> torch.Tensor:
        faces = data_config_of(model).normalize(faces)
        return faces.contiguous(memory_format=torch.channels_last) if mode.channels_last else faces

    order = torch.randperm(len(xs), generator=gen, device=dev)
    for i in range(0, max(len(order) - batch + 1, 1), batch):
        idx = order[i : i + batch]
        clean = augment(xs[idx].float().unsqueeze(1) / 255.0, aug, gen)
        xb = prepare(degrade(clean, px, cfg.blur_share, gen))
        set_lr(optimizer, lr_at("cosine", cfg.lr, 0.0, elapsed() / budget))
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=mode.bf16):
            logits = model(xb).float()
            soft = teacher.soft_targets(prepare(clean), cfg.kd_temperature, idx).float()  # a checkpoint teacher: bf16 too
        ce = F.cross_entropy(logits, ys[idx], label_smoothing=0.1)
        update(optimizer, distilled(ce, logits, soft, cfg.kd_alpha, cfg.kd_temperature), model)
        if elapsed() >= budget:
            break
