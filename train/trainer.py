"""The training loop, top to bottom: config -> data -> model -> optimiser -> loop (step, eval, checkpoint, log).

Resume is exact on the CPU: the checkpoint carries the model, optimiser, epoch, best metric, config,
labels and every RNG state this loop draws from, so `--resume` continues the same random stream.
The rooms around it: `config.py` (what a run is), `device.py` (where and in which number format),
`teacher.py` (distillation), `step.py` (schedule, optimiser, loss, update), `tracking.py`, `run_folder.py`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import fer_edge
from fer_edge.contract import LABELS
from fer_edge.errors import FerEdgeError, UsageError

from .augment import CORRUPTIONS, AugmentConfig, augment, mix
from .checkpoint import (checkpoint_weights, load_checkpoint, model_from_checkpoint, restore_rng, rng_state,
                         save_atomic)
from .config import TrainConfig
from .device import MathMode, fast_math, seeded
from .evaluate import evaluate_probs, torch_probs
from .from_onnx import checkpoint_from_onnx
from .models import ARCHS, build_model, count_macs, count_params, data_config
from .report import Report, write_report
from .run_folder import append_metrics_row, draw_curves, run_to_resume, start_fresh, write_config
from .sources import Sources, Validation, assemble
from .step import distilled, lr_at, make_optimizer, set_lr, update
from .teacher import Teacher
from .tracking import make_tracker

__all__ = ["TrainConfig", "main"]


def main(cfg: TrainConfig, resume: bool = False, log: Callable[[str], None] = print, progress=None) -> dict:
    """Train; return a summary dict. `progress` is an optional rich Progress (the CLI passes one)."""
    cfg, ckpt = _settle_config(cfg, resume)
    run = _Run(cfg, ckpt, log, progress)
    stop_reason, epoch = "epochs", run.start_epoch
    for epoch in range(run.start_epoch, cfg.epochs):
        started, stats = run.train_epoch(epoch)
        run.end_epoch(epoch, started, stats)
        if run.budget > 0 and run.train_seconds >= run.budget:
            stop_reason = f"time budget of {cfg.max_minutes:g} min"
            break
        if cfg.patience > 0 and run.epochs_without_gain >= cfg.patience:
            stop_reason = f"no val gain in {cfg.patience} epochs"
            break
    return run.finish(epoch, stop_reason)


def _settle_config(cfg: TrainConfig, resume: bool) -> tuple[TrainConfig, dict | None]:
    """The config this run trains with (a resumed run's own, saved one) and, on resume, its last.pt."""
    if cfg.arch not in ARCHS:
        raise UsageError(f"unknown arch {cfg.arch!r}; choose one of {', '.join(ARCHS)}")
    unknown = [n for n in cfg.corruptions if n not in CORRUPTIONS]
    if unknown:
        raise UsageError(f"--corruptions: unknown {unknown[0]!r}; choose from {','.join(CORRUPTIONS)}")
    if cfg.flip_pairs and cfg.mix != "none":
        raise UsageError("--flip-pairs keeps each face beside its mirror; mixup and cutmix would break the pairs (drop --mix)")
    last = run_to_resume(Path(cfg.out), resume, "--out")
    if last is None:
        return cfg, None
    ckpt = load_checkpoint(last)
    saved = TrainConfig.from_dict(ckpt["config"])
    # A resumed run keeps its recipe; only where it runs, its budget and where its data lies may change.
    saved.device, saved.threads = cfg.device, cfg.threads
    saved.max_minutes = cfg.max_minutes or saved.max_minutes
    saved.data = cfg.data or saved.data
    return saved, ckpt


class _Run:
    """One run's state: its data on the device, the model, optimiser, teacher, and where the loop stands."""

    def __init__(self, cfg: TrainConfig, ckpt: dict | None, log: Callable[[str], None], progress):
        self.cfg, self.log, self.progress, self.out = cfg, log, progress, Path(cfg.out)
        resume = ckpt is not None
        device, self.gen = seeded(cfg.device, cfg.threads, cfg.seed)
        self.device = device

        src = self._load_data(resume)
        self.vals, self.test = src.vals, src.test
        self.model = build_model(cfg.arch).to(device)
        self.data = data_config(cfg.arch)
        self.mode = fast_math(device, cfg.amp)
        if self.mode.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if cfg.init and not resume:
            _warm_start(self.model, cfg, src.train.x, log)
        self.optimizer = make_optimizer(cfg.optimizer, self.model, cfg.lr, cfg.momentum, cfg.weight_decay)
        # the EMA copy is what gets validated and saved as best.pt; the raw weights keep training
        self.ema = (AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
                    if cfg.ema > 0 else None)
        # with flip pairs a .pt teacher already sees each face and its mirror: its own TTA would label both twice
        self.teacher = (Teacher(cfg.teachers, device, src.train.x, log, channels_last=self.mode.channels_last,
                                tta=cfg.teacher_tta and not cfg.flip_pairs, online=cfg.teacher_online, threads=cfg.threads,
                                data=self.data)
                        if cfg.teachers else None)
        self.aug = AugmentConfig(shift=cfg.shift, rotate=cfg.rotate, scale=cfg.scale, erase=cfg.erase,
                                 corrupt=cfg.corrupt, corruptions=tuple(cfg.corruptions))
        self.start_epoch, self.best_acc, self.step, self.train_seconds = 0, -1.0, 0, 0.0
        self.epochs_without_gain, self.curves_note = 0, ""
        if resume:
            self._restore(ckpt)
        else:
            start_fresh(self.out)
        write_config(self.out, asdict(cfg))
        self.n_params, self.macs = count_params(self.model), count_macs(self.model)
        log(
            f"{cfg.arch}: {self.n_params / 1e6:.2f}M params, {self.macs / 1e6:.1f}M MACs; train {self.n_train}, "
            f"val {len(self.val)}{f', test {len(self.test)}' if self.test is not None else ''}; device {device}, {self.mode.why}"
            f"{f'; weights averaged (EMA {cfg.ema:g} a step), validated and saved as best.pt' if self.ema is not None else ''}"
            f"{'; every batch carries each face and its mirror (flip pairs)' if cfg.flip_pairs else ''}"
        )
        self.tracker = make_tracker(cfg, self.out)
        self.budget = cfg.max_minutes * 60

    def _load_data(self, resume: bool) -> Sources:
        cfg, device = self.cfg, self.device
        src = assemble(cfg)
        if resume and cfg.data_sha256 and src.sha256 != cfg.data_sha256:
            raise FerEdgeError(f"cannot resume: {cfg.data} is not the data this run was trained on (sha256 differs)")
        cfg.data_sha256 = src.sha256
        for note in src.notes:
            self.log(note)
        train = src.train
        self.val = next(iter(src.vals.values())).split  # the first validation set: the primary source's
        self.n_train = len(train)
        self.x_train = torch.from_numpy(train.x).unsqueeze(1).to(device)  # uint8 on the device: 66 MB for FER2013
        self.y_train = torch.from_numpy(train.y).to(device)
        # soft targets (FER+ votes, or several sources): each face's target distribution instead of one label
        self.q_train = torch.from_numpy(train.soft).to(device) if train.soft is not None else None
        counts = np.bincount(train.y, minlength=len(LABELS)).astype(float)
        self.class_weight = torch.tensor(counts.sum() / (len(LABELS) * np.maximum(counts, 1)), dtype=torch.float32,
                                         device=device)
        self.steps_per_epoch = max(len(train) // cfg.batch_size, 1)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        return src

    def _restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.ema is not None:
            self.ema.load_state_dict(ckpt["ema"])
        self.start_epoch, self.best_acc = ckpt["epoch"] + 1, ckpt["best_acc"]
        self.step, self.train_seconds = ckpt["step"], ckpt["train_seconds"]
        restore_rng(ckpt["rng"], self.gen, self.device)
        self.log(f"resuming {self.out} at epoch {self.start_epoch + 1}/{self.cfg.epochs} "
                 f"(best val acc so far {100 * self.best_acc:.2f}%)")

    def _progress_share(self, elapsed: float) -> float:
        """Where the schedule stands: steps done, or the budget spent when that is further along."""
        p = self.step / self.total_steps
        return max(p, elapsed / self.budget) if self.budget > 0 else p

    def train_epoch(self, epoch: int) -> tuple[float, dict]:
        """One pass (or until the budget ends); (when it started, its loss and accuracy sums)."""
        cfg, device, progress = self.cfg, self.device, self.progress
        self.model.train()
        t0 = time.time()
        if cfg.balance == "sampler":
            order = torch.multinomial(self.class_weight[self.y_train], self.n_train, replacement=True, generator=self.gen)
        else:
            order = torch.randperm(self.n_train, generator=self.gen, device=device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        task = progress.add_task(f"epoch {epoch + 1}/{cfg.epochs}", total=self.steps_per_epoch) if progress else None
        for i in range(self.steps_per_epoch):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            set_lr(self.optimizer, lr_at(cfg.schedule, cfg.lr, cfg.warmup,
                                         self._progress_share(self.train_seconds + time.time() - t0)))
            loss, logits, yb = self._step(idx)
            self.step += 1
            loss_sum += loss.detach() * len(yb)
            correct += (logits.argmax(1) == yb).sum()
            seen += len(yb)
            if progress and (i % 10 == 0 or i == self.steps_per_epoch - 1):
                progress.update(task, completed=i + 1, description=(
                    f"epoch {epoch + 1}/{cfg.epochs} loss {float(loss_sum) / seen:.3f} acc {100 * float(correct) / seen:.1f}%"
                ))
            if self.budget > 0 and self.train_seconds + (time.time() - t0) >= self.budget:
                break
        if progress:
            progress.remove_task(task)
        return t0, {"loss_sum": float(loss_sum), "correct": float(correct), "seen": seen}

    def _step(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Augment a batch, forward, loss (with the teacher's), update; (loss, logits, the labels judged)."""
        cfg, device, mode = self.cfg, self.device, self.mode
        xb = self.x_train[idx].float() / 255.0
        yb = self.y_train[idx]
        tb = self.q_train[idx] if self.q_train is not None else yb  # what the loss aims at
        if cfg.augment:
            xb = augment(xb, self.aug, self.gen)
        xb = self.data.normalize(xb)  # the arch's (and the graph's) normalisation, on the augmented float batch
        if mode.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        if cfg.flip_pairs:  # the mirror of each augmented face in the same step: one pass learns what flip TTA sees
            xb, yb, idx = torch.cat([xb, xb.flip(3)]), yb.repeat(2), idx.repeat(2)
            tb = tb.repeat(2, 1) if tb.dim() == 2 else tb.repeat(2)
        ya, yb2, lam, perm = tb, tb, 1.0, None
        if cfg.mix != "none" and float(torch.rand((), generator=self.gen, device=device)) < cfg.mix_prob:
            xb, ya, yb2, lam, perm = mix(xb, tb, cfg.mix, cfg.mix_alpha, self.gen)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mode.bf16):
            logits = self.model(xb).float()
        weight = self.class_weight if cfg.balance == "loss" else None
        ce = lam * F.cross_entropy(logits, ya, weight=weight, label_smoothing=cfg.label_smoothing)
        if lam < 1.0:
            ce = ce + (1 - lam) * F.cross_entropy(logits, yb2, weight=weight, label_smoothing=cfg.label_smoothing)
        loss = ce
        if self.teacher is not None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mode.bf16):
                soft = self.teacher.soft_targets(xb, cfg.kd_temperature, idx, perm, lam)
            if cfg.flip_pairs:  # a face and its mirror share one target: the teacher's flip TTA, no extra pass
                soft = soft.view(2, -1, soft.shape[1]).mean(0).repeat(2, 1)
            loss = distilled(ce, logits, soft, cfg.kd_alpha, cfg.kd_temperature)
        update(self.optimizer, loss, self.model, self.ema)
        return loss, logits, yb

    def end_epoch(self, epoch: int, t0: float, stats: dict) -> None:
        """Validate, write the metrics row and curves, save last.pt (and best.pt when it improved), log."""
        cfg = self.cfg
        judged = self.ema.module if self.ema is not None else self.model
        val_loss, val_acc, per_set = _validate(judged, self.vals, self.device, self.mode)
        self.train_seconds += time.time() - t0
        seen = max(stats["seen"], 1)
        row = {
            "epoch": epoch + 1,
            "train_loss": round(stats["loss_sum"] / seen, 5),
            "train_acc": round(stats["correct"] / seen, 5),
            "val_loss": round(val_loss, 5),
            "val_acc": round(val_acc, 5),
            **({f"val_acc_{k}": round(v, 5) for k, v in per_set.items()} if len(self.vals) > 1 else {}),
            "lr": round(self.optimizer.param_groups[0]["lr"], 6),
            "seconds": round(time.time() - t0, 2),
        }
        append_metrics_row(self.out / "metrics.csv", row)
        self.curves_note = draw_curves(self.out, self.curves_note, self.log)
        improved = val_acc > self.best_acc
        if improved:
            self.best_acc, self.epochs_without_gain = val_acc, 0
        else:
            self.epochs_without_gain += 1
        state = {
            "model": self.model.state_dict(),
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
            "optimizer": self.optimizer.state_dict(),
            "epoch": epoch,
            "step": self.step,
            "train_seconds": self.train_seconds,
            "best_acc": self.best_acc,
            "val_acc": val_acc,
            "config": asdict(cfg),
            "labels": list(LABELS),
            "rng": rng_state(self.gen, self.device),
            "fer_edge_version": fer_edge.__version__,
        }
        if improved:
            best_state = {k: v for k, v in state.items() if k not in ("optimizer", "rng", "ema")}
            best_state["model"] = judged.state_dict()
            save_atomic(best_state, self.out / "best.pt")
        save_atomic(state, self.out / "last.pt")
        self.tracker.log_metrics(row, epoch + 1)
        self.log(
            f"epoch {epoch + 1:>3}/{cfg.epochs}  loss {row['train_loss']:.4f}  acc {100 * row['train_acc']:.2f}%  "
            f"val loss {val_loss:.4f}  val acc {100 * val_acc:.2f}%{' *' if improved else ''}  "
            f"{''.join(f'{k} {100 * v:.2f}%  ' for k, v in per_set.items()) if len(self.vals) > 1 else ''}"
            f"lr {row['lr']:.4g}  {row['seconds']:.1f}s"
        )

    def finish(self, epoch: int, stop_reason: str) -> dict:
        """The final reports with the best weights, summary.json, and the summary."""
        cfg, out = self.cfg, self.out
        best = model_from_checkpoint(load_checkpoint(out / "best.pt")).to(self.device)
        reports: dict[str, Report] = {}
        judged_sets = {"val": self.val} if len(self.vals) == 1 else {f"val_{k}": v.split for k, v in self.vals.items()}
        for name, split in (*judged_sets.items(), ("test", self.test)):
            if split is None:
                continue
            probs = torch_probs(best, split.x, self.device, tta=cfg.eval_tta)
            rep = evaluate_probs(probs, split.y, split=name, model=str(out / "best.pt"), tta=cfg.eval_tta)
            write_report(rep, out, f"report_{name}")
            reports[name] = rep
            self.log(f"\n{name} report (best.pt{', flip TTA' if cfg.eval_tta else ''}):\n{rep.text()}")
        summary = {
            "run": str(out),
            "epochs_run": epoch + 1 - self.start_epoch if self.start_epoch else epoch + 1,
            "last_epoch": epoch + 1,
            "stopped_by": stop_reason,
            "best_val_acc": self.best_acc,
            "train_minutes": round(self.train_seconds / 60, 2),
            "params": self.n_params,
            "macs": self.macs,
            **{f"{k}_acc{'_tta' if cfg.eval_tta else ''}": r.accuracy for k, r in reports.items()},
            **{f"{k}_macro_f1": r.macro_f1 for k, r in reports.items()},
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        self.tracker.finish(out, summary)
        self.log(f"done: {json.dumps(summary)}")
        return summary


def _warm_start(model: torch.nn.Module, cfg: TrainConfig, train_faces: np.ndarray, log) -> None:
    """Fine-tune from a checkpoint's weights: a second, shorter schedule (say with a teacher or new augmentation).
    An exported .onnx (a shipped model) works too: its weights are read back, its BatchNorms rebuilt on the
    training faces (train/from_onnx.py)."""
    if str(cfg.init).lower().endswith(".onnx"):
        t0 = time.time()
        ckpt = checkpoint_from_onnx(cfg.init, train_faces)
        log(f"rebuilt a trainable {ckpt['config']['arch']} from {cfg.init} in {time.time() - t0:.0f}s")
    else:
        ckpt = load_checkpoint(cfg.init)
    arch = ckpt.get("config", {}).get("arch")
    if arch != cfg.arch:
        raise UsageError(f"--init {cfg.init} holds a {arch} model, not {cfg.arch}; pass --arch {arch}")
    model.load_state_dict(checkpoint_weights(ckpt)[0])
    soup = ckpt.get("config", {}).get("soup")
    # a soup was never validated as one model: name its ingredients instead of an accuracy it does not have
    said = (f"a weight soup of {len(soup)} checkpoints" if soup
            else f"epoch {ckpt.get('epoch', -1) + 1}, val acc {100 * ckpt.get('best_acc', 0):.2f}%")
    log(f"warm start from {cfg.init} ({said}{'; its EMA weights' if 'ema' in ckpt else ''})")


def _validate(model: torch.nn.Module, vals: dict[str, Validation], device: torch.device,
              mode: MathMode) -> tuple[float, float, dict[str, float]]:
    """(loss, accuracy, {set: accuracy}) of the counted validation sets: loss and accuracy are their means,
    so each set weighs the same whatever its size."""
    losses, accs = {}, {}
    for name, v in vals.items():
        probs = torch_probs(model, v.split.x, device, bf16=mode.bf16, channels_last=mode.channels_last)
        losses[name] = float(F.nll_loss(torch.log(torch.from_numpy(probs).clamp_min(1e-8)), torch.from_numpy(v.split.y)))
        accs[name] = float((probs.argmax(1) == v.split.y).mean())
    counted = [k for k, v in vals.items() if v.counted]
    return float(np.mean([losses[k] for k in counted])), float(np.mean([accs[k] for k in counted])), accs
