"""The training loop, top to bottom: config -> data -> model -> optimiser -> loop (step, eval, checkpoint, log).

Resume is exact on the CPU: the checkpoint carries the model, optimiser, epoch, best metric, config,
labels and every RNG state this loop draws from, so `--resume` continues the same random stream.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import fer_edge
from fer_edge import atomic
from fer_edge.contract import LABELS, PIXEL_MEAN, PIXEL_STD
from fer_edge.errors import FerEdgeError, UsageError

from .augment import AugmentConfig, augment, mix
from .checkpoint import checkpoint_weights, load_checkpoint, model_from_checkpoint, save_atomic
from .data import default_cache_dir, file_sha256
from .evaluate import evaluate_probs, torch_probs
from .from_onnx import checkpoint_from_onnx
from .models import ARCHS, build_model, count_macs, count_params
from .report import Report, write_report
from .sources import Validation, assemble


@dataclass
class TrainConfig:
    data: str = ""
    extra_data: list[str] = field(default_factory=list)  # more sources, "PATH" or "PATH@N" (N repeats an epoch)
    ferplus: str = ""  # FER+ votes for the FER2013 CSV in `data`: soft targets, and judged against their majority
    contempt: str = "drop"  # FER+ contempt votes: drop, or count them as disgust or angry
    hard_weight: float = 0.0  # with ferplus: share of FER2013's own label mixed into each face's vote target
    out: str = "runs/latest"
    arch: str = "fernet-s"
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd (Nesterov momentum) or adamw
    lr: float = 0.1  # peak learning rate
    momentum: float = 0.9  # SGD (Nesterov when > 0)
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # onecycle (warm-up then cosine), cosine, or constant
    warmup: float = 0.1  # share of training spent warming up (onecycle)
    label_smoothing: float = 0.1
    mix: str = "none"  # none, mixup or cutmix
    mix_alpha: float = 1.0
    mix_prob: float = 0.5
    balance: str = "none"  # none, loss (class-weighted CE) or sampler (class-balanced batches)
    augment: bool = True
    shift: float = 0.1
    rotate: float = 10.0
    scale: float = 0.1
    erase: float = 0.25
    corrupt: float = 0.0  # share of training faces given one camera corruption (blur, low-res, noise, ...)
    corruptions: list[str] = field(default_factory=list)  # which ones (augment.CORRUPTIONS); empty: all
    val_fraction: float = 0.0  # carve a stratified val split from train when the data has none
    test_fraction: float = 0.0  # likewise for a test split
    resplit: bool = False  # ignore the file's val/test splits: carve both from the training rows
    teachers: list[str] = field(default_factory=list)  # checkpoints whose averaged soft labels we distil
    teacher_tta: bool = False  # a .pt teacher labels each batch and its mirror, averaged (as a --tta export does)
    teacher_online: bool = False  # an .onnx teacher labels every augmented batch (onnxruntime), not the clean faces once
    flip_pairs: bool = False  # each batch also carries the mirror of every augmented face, both taught the pair's average
    ema: float = 0.0  # per-step decay of an exponential moving average of the weights (e.g. 0.999); 0: off
    init: str = ""  # warm start: the weights of this checkpoint (same arch); optimiser and schedule start fresh
    kd_alpha: float = 0.7
    kd_temperature: float = 4.0
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # 0: torch's default
    max_minutes: float = 0.0  # 0: no budget. With a budget, the schedule anneals by the deadline.
    patience: int = 0  # early stopping after this many epochs without a better val accuracy; 0: off
    amp: bool = True  # bf16 autocast where native (CUDA, AVX-512 BF16, AMX) and channels_last everywhere (fast_math)
    eval_tta: bool = True  # the final report also averages flips
    tracker: str = "none"  # none or mlflow
    data_sha256: str = ""  # filled in from the data

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise FerEdgeError("device cuda was asked for, but torch sees no CUDA device")
    if requested not in ("cpu", "cuda"):
        raise FerEdgeError(f"device must be auto, cpu or cuda, not {requested!r}")
    return torch.device(requested)


class MathMode(NamedTuple):
    bf16: bool  # autocast to bf16
    channels_last: bool  # NHWC tensors: oneDNN's faster convolution layout, in fp32 as in bf16
    why: str  # for the log


def fast_math(device: torch.device, amp: bool) -> MathMode:
    """How to train here, and the reason, for the log.

    bf16 autocast on CUDA, and on a CPU only where oneDNN has native bf16 kernels: there it is about 2x
    faster (fernet-s forward+backward 768 -> 1,550 images/s on 2 EPYC cores); elsewhere bf16 is emulated and
    10x slower. channels_last wherever amp is on: in fp32 too it is faster on both CPUs measured (fernet-s
    768 -> 1,041 on AVX-512; fernet-t2 265 -> 308 and fernet-m 99 -> 108 on an AVX2 EPYC without bf16).
    """
    if not amp:
        return MathMode(False, False, "fp32 (--no-amp)")
    if device.type == "cuda":
        return MathMode(True, True, "bf16 autocast + channels_last (CUDA)")
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return MathMode(True, True, "bf16 autocast + channels_last (this CPU has native bf16)")
    return MathMode(False, True, "fp32 + channels_last (this CPU has no native bf16)")


def lr_at(cfg: TrainConfig, progress: float) -> float:
    """Learning rate as a function of training progress in [0, 1]."""
    p = min(max(progress, 0.0), 1.0)
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "onecycle":
        if p < cfg.warmup:
            return cfg.lr * (0.04 + 0.96 * p / cfg.warmup)
        p = (p - cfg.warmup) / (1 - cfg.warmup)
    elif cfg.schedule != "cosine":
        raise FerEdgeError(f"unknown schedule {cfg.schedule!r}; use onecycle, cosine or constant")
    return cfg.lr * (0.5 * (1 + math.cos(math.pi * p)) * 0.999 + 0.001)


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]  # BN and biases
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise FerEdgeError(f"unknown optimizer {cfg.optimizer!r}; use sgd or adamw")


def _read_labels(path: Path, n: int) -> np.ndarray | None:
    """Cached teacher probabilities, or None when absent or not what was written (a torn or foreign file)."""
    try:
        probs = np.load(path)
    except (OSError, ValueError):
        return None
    ok = probs.shape == (n, len(LABELS)) and probs.dtype == np.float32 and np.isfinite(probs).all()
    return probs if ok else None


def _log_probs(probs: np.ndarray) -> torch.Tensor:
    """An ONNX model's probabilities as logits up to a constant (which a softmax ignores); zeros clipped."""
    return torch.from_numpy(np.log(np.clip(probs, 1e-8, 1.0)).astype(np.float32))


class Teacher:
    """Soft labels from trained models, averaged: the student learns their softened probabilities.

    A checkpoint (.pt) teacher labels every augmented batch as the student sees it; with `tta`, averaged with
    its labels of the mirrored batch (the flip TTA a shipped model exports with; a second forward pass). An
    ONNX teacher (any model under the runtime contract, such as the shipped ensemble) labels each training face
    once, before training, from its probabilities (cached for the next start): offline distillation, nearly free
    on a CPU, and it needs no checkpoint, only the .onnx file. Offline labels follow mixup/cutmix through the
    same permutation. With `online`, an ONNX teacher labels every augmented batch instead, through onnxruntime:
    an int8 export with flip TTA in its graph costs a CPU a fraction of its read-back fp32 checkpoint's two
    torch passes, for the same labels of what the student sees.
    """

    def __init__(self, paths: list[str], device: torch.device, train_x: np.ndarray | None = None, log=print,
                 channels_last: bool = False, tta: bool = False, online: bool = False, threads: int = 0):
        self.models, self.offline, self.sessions, self.tta = [], [], [], tta
        for p in paths:
            if str(p).endswith(".onnx") and online:
                from fer_edge.classifier import ExpressionClassifier

                self.sessions.append(ExpressionClassifier.from_path(p, device="cpu", threads=threads))
                log(f"teacher {Path(p).name}: labels every augmented batch through onnxruntime"
                    f"{' and its mirror, averaged' if tta else ''}")
                continue
            if str(p).endswith(".onnx"):
                self.offline.append(self._label_once(Path(p), train_x, device, log))
                continue
            m = model_from_checkpoint(load_checkpoint(p)).to(device)
            if channels_last:
                m = m.to(memory_format=torch.channels_last)
            self.models.append(m.eval())
            log(f"teacher {Path(p).name}: labels every augmented batch{' and its mirror, averaged' if tta else ''}")

    @staticmethod
    def _label_once(path: Path, train_x: np.ndarray | None, device: torch.device, log) -> torch.Tensor:
        from fer_edge.classifier import ExpressionClassifier  # checks the contract and maps foreign label orders

        if train_x is None:
            raise FerEdgeError(f"{path}: an ONNX teacher needs the training faces")
        # A big ensemble takes minutes to label 28k faces; a resume, or the next run with the same teacher and
        # faces, reads them back. Keyed by both contents, so a changed file or split labels afresh.
        key = hashlib.sha256(file_sha256(path).encode())
        key.update(np.ascontiguousarray(train_x))  # hashed in place: no 66 MB copy of the faces
        cache = default_cache_dir() / "teacher-labels" / f"{key.hexdigest()[:32]}.npy"
        probs = _read_labels(cache, len(train_x))
        if probs is not None:
            log(f"teacher {path.name}: labels of {len(train_x)} training faces read from {cache} (offline distillation)")
        else:
            t0 = time.time()
            probs = ExpressionClassifier.from_path(path, device="cpu").predict_probs(train_x).astype(np.float32)
            log(f"teacher {path.name}: labelled {len(train_x)} training faces once in {time.time() - t0:.0f}s (offline distillation)")
            buf = io.BytesIO()
            np.save(buf, probs)
            try:
                atomic.write_bytes(cache, buf.getvalue())
            except OSError:
                pass  # a read-only cache only costs the next start a relabel
        return _log_probs(probs).to(device)

    def _online(self, model: torch.nn.Module, x: torch.Tensor, temperature: float) -> torch.Tensor:
        p = torch.softmax(model(x).float() / temperature, 1)
        return (p + torch.softmax(model(x.flip(3)).float() / temperature, 1)) / 2 if self.tta else p

    def _through_onnx(self, clf, x: torch.Tensor, temperature: float) -> torch.Tensor:
        # back from the graph's normalisation to the uint8 faces the runtime contract takes (off by under half
        # a grey level), and from probabilities to logits up to a constant, which the softmax ignores
        faces = ((x.float() * PIXEL_STD + PIXEL_MEAN) * 255.0).round().clamp(0, 255).to(torch.uint8)[:, 0].cpu().numpy()
        views = [faces, faces[:, :, ::-1]] if self.tta else [faces]
        soft = [torch.softmax(_log_probs(clf.predict_probs(v, batch=len(v))) / temperature, 1) for v in views]
        return (sum(soft) / len(soft)).to(x.device)

    @torch.no_grad()
    def soft_targets(self, x: torch.Tensor, temperature: float, idx: torch.Tensor | None = None,
                     perm: torch.Tensor | None = None, lam: float = 1.0) -> torch.Tensor:
        soft = [self._online(m, x, temperature) for m in self.models]
        soft += [self._through_onnx(clf, x, temperature) for clf in self.sessions]
        for log_probs in self.offline:
            s = torch.softmax(log_probs[idx] / temperature, 1)
            soft.append(s if perm is None else lam * s + (1 - lam) * s[perm])
        return torch.stack(soft).mean(0)


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


def _write_metrics_row(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def _rng_state(gen: torch.Generator, device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state(), "gen": gen.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["gen"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def main(cfg: TrainConfig, resume: bool = False, log: Callable[[str], None] = print, progress=None) -> dict:
    """Train; return a summary dict. `progress` is an optional rich Progress (the CLI passes one)."""
    if cfg.arch not in ARCHS:
        raise UsageError(f"unknown arch {cfg.arch!r}; choose one of {', '.join(ARCHS)}")
    if cfg.flip_pairs and cfg.mix != "none":
        raise UsageError("--flip-pairs keeps each face beside its mirror; mixup and cutmix would break the pairs (drop --mix)")
    out = Path(cfg.out)
    if resume:
        if not (out / "last.pt").exists():
            raise FerEdgeError(f"cannot resume: {out / 'last.pt'} does not exist")
        ckpt = load_checkpoint(out / "last.pt")
        saved = TrainConfig.from_dict(ckpt["config"])
        # A resumed run keeps its recipe; only where it runs, its budget and where its data lies may change.
        saved.device, saved.threads = cfg.device, cfg.threads
        saved.max_minutes = cfg.max_minutes or saved.max_minutes
        saved.data = cfg.data or saved.data
        cfg = saved
    elif (out / "last.pt").exists():
        raise FerEdgeError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")

    device = pick_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    # ---- data
    src = assemble(cfg)
    if resume and cfg.data_sha256 and src.sha256 != cfg.data_sha256:
        raise FerEdgeError(f"cannot resume: {cfg.data} is not the data this run was trained on (sha256 differs)")
    cfg.data_sha256 = src.sha256
    for note in src.notes:
        log(note)
    train, test, vals = src.train, src.test, src.vals
    val = next(iter(vals.values())).split  # the first validation set: the primary source's
    x_train = torch.from_numpy(train.x).unsqueeze(1).to(device)  # uint8 on the device: 66 MB for FER2013
    y_train = torch.from_numpy(train.y).to(device)
    # soft targets (FER+ votes, or several sources): each face's target distribution instead of one label
    q_train = torch.from_numpy(train.soft).to(device) if train.soft is not None else None
    counts = np.bincount(train.y, minlength=len(LABELS)).astype(float)
    class_weight = torch.tensor(counts.sum() / (len(LABELS) * np.maximum(counts, 1)), dtype=torch.float32, device=device)
    steps_per_epoch = max(len(train) // cfg.batch_size, 1)
    total_steps = steps_per_epoch * cfg.epochs

    # ---- model, optimiser, teacher
    model = build_model(cfg.arch).to(device)
    mode = fast_math(device, cfg.amp)
    if mode.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.init and not resume:
        _warm_start(model, cfg, train.x, log)
    optimizer = make_optimizer(cfg, model)
    # the EMA copy is what gets validated and saved as best.pt; the raw weights keep training
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True) if cfg.ema > 0 else None
    # with flip pairs a .pt teacher already sees each face and its mirror: its own TTA would label both twice
    teacher = (Teacher(cfg.teachers, device, train.x, log, channels_last=mode.channels_last,
                       tta=cfg.teacher_tta and not cfg.flip_pairs,
                       online=cfg.teacher_online, threads=cfg.threads)
               if cfg.teachers else None)
    aug_cfg = AugmentConfig(shift=cfg.shift, rotate=cfg.rotate, scale=cfg.scale, erase=cfg.erase,
                            corrupt=cfg.corrupt, corruptions=tuple(cfg.corruptions))

    start_epoch, best_acc, step, train_seconds = 0, -1.0, 0, 0.0
    if resume:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        start_epoch, best_acc = ckpt["epoch"] + 1, ckpt["best_acc"]
        step, train_seconds = ckpt["step"], ckpt["train_seconds"]
        _set_rng_state(ckpt["rng"], gen, device)
        log(f"resuming {out} at epoch {start_epoch + 1}/{cfg.epochs} (best val acc so far {100 * best_acc:.2f}%)")
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.csv").unlink(missing_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))

    n_params, macs = count_params(model), count_macs(model)
    log(
        f"{cfg.arch}: {n_params / 1e6:.2f}M params, {macs / 1e6:.1f}M MACs; train {len(train)}, val {len(val)}"
        f"{f', test {len(test)}' if test is not None else ''}; device {device}, {mode.why}"
        f"{f'; weights averaged (EMA {cfg.ema:g} a step), validated and saved as best.pt' if ema is not None else ''}"
        f"{'; every batch carries each face and its mirror (flip pairs)' if cfg.flip_pairs else ''}"
    )
    tracker = _make_tracker(cfg, out)
    budget = cfg.max_minutes * 60

    def progress_now(elapsed: float) -> float:
        p = step / total_steps
        return max(p, elapsed / budget) if budget > 0 else p

    epoch = start_epoch
    curves_note = ""
    stop_reason = "epochs"
    epochs_without_gain = 0
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        t0 = time.time()
        if cfg.balance == "sampler":
            order = torch.multinomial(class_weight[y_train], len(train), replacement=True, generator=gen)
        else:
            order = torch.randperm(len(train), generator=gen, device=device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        task = progress.add_task(f"epoch {epoch + 1}/{cfg.epochs}", total=steps_per_epoch) if progress else None
        for i in range(steps_per_epoch):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            xb = x_train[idx].float() / 255.0
            yb = y_train[idx]
            tb = q_train[idx] if q_train is not None else yb  # what the loss aims at
            if cfg.augment:
                xb = augment(xb, aug_cfg, gen)
            xb = (xb - PIXEL_MEAN) / PIXEL_STD  # the graph's normalisation, on the augmented float batch
            if mode.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            if cfg.flip_pairs:  # the mirror of each augmented face in the same step: one pass learns what flip TTA sees
                xb, yb, idx = torch.cat([xb, xb.flip(3)]), yb.repeat(2), idx.repeat(2)
                tb = tb.repeat(2, 1) if tb.dim() == 2 else tb.repeat(2)
            ya, yb2, lam, perm = tb, tb, 1.0, None
            if cfg.mix != "none" and float(torch.rand((), generator=gen, device=device)) < cfg.mix_prob:
                xb, ya, yb2, lam, perm = mix(xb, tb, cfg.mix, cfg.mix_alpha, gen)

            for g in optimizer.param_groups:
                g["lr"] = lr_at(cfg, progress_now(train_seconds + time.time() - t0))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mode.bf16):
                logits = model(xb).float()
            weight = class_weight if cfg.balance == "loss" else None
            ce = lam * F.cross_entropy(logits, ya, weight=weight, label_smoothing=cfg.label_smoothing)
            if lam < 1.0:
                ce = ce + (1 - lam) * F.cross_entropy(logits, yb2, weight=weight, label_smoothing=cfg.label_smoothing)
            if teacher is not None:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mode.bf16):
                    soft = teacher.soft_targets(xb, cfg.kd_temperature, idx, perm, lam)
                if cfg.flip_pairs:  # a face and its mirror share one target: the teacher's flip TTA, no extra pass
                    soft = soft.view(2, -1, soft.shape[1]).mean(0).repeat(2, 1)
                kd = F.kl_div(F.log_softmax(logits / cfg.kd_temperature, 1), soft, reduction="batchmean")
                loss = (1 - cfg.kd_alpha) * ce + cfg.kd_alpha * kd * cfg.kd_temperature**2
            else:
                loss = ce
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if ema is not None:
                ema.update_parameters(model)

            step += 1
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == yb).sum()
            seen += len(idx)
            if progress and (i % 10 == 0 or i == steps_per_epoch - 1):
                progress.update(task, completed=i + 1, description=(
                    f"epoch {epoch + 1}/{cfg.epochs} loss {float(loss_sum) / seen:.3f} acc {100 * float(correct) / seen:.1f}%"
                ))
            if budget > 0 and train_seconds + (time.time() - t0) >= budget:
                break
        if progress:
            progress.remove_task(task)

        # ---- eval, checkpoint, log
        judged = ema.module if ema is not None else model
        val_loss, val_acc, per_set = _validate(judged, vals, device, mode)
        train_seconds += time.time() - t0
        row = {
            "epoch": epoch + 1,
            "train_loss": round(float(loss_sum) / max(seen, 1), 5),
            "train_acc": round(float(correct) / max(seen, 1), 5),
            "val_loss": round(val_loss, 5),
            "val_acc": round(val_acc, 5),
            **({f"val_acc_{k}": round(v, 5) for k, v in per_set.items()} if len(vals) > 1 else {}),
            "lr": round(optimizer.param_groups[0]["lr"], 6),
            "seconds": round(time.time() - t0, 2),
        }
        _write_metrics_row(out / "metrics.csv", row)
        curves_note = _draw_curves(out, curves_note, log)
        improved = val_acc > best_acc
        if improved:
            best_acc, epochs_without_gain = val_acc, 0
        else:
            epochs_without_gain += 1
        state = {
            "model": model.state_dict(),
            **({"ema": ema.state_dict()} if ema is not None else {}),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "step": step,
            "train_seconds": train_seconds,
            "best_acc": best_acc,
            "val_acc": val_acc,
            "config": asdict(cfg),
            "labels": list(LABELS),
            "rng": _rng_state(gen, device),
            "fer_edge_version": fer_edge.__version__,
        }
        if improved:
            best_state = {k: v for k, v in state.items() if k not in ("optimizer", "rng", "ema")}
            best_state["model"] = judged.state_dict()
            save_atomic(best_state, out / "best.pt")
        save_atomic(state, out / "last.pt")
        tracker.log_metrics(row, epoch + 1)
        log(
            f"epoch {epoch + 1:>3}/{cfg.epochs}  loss {row['train_loss']:.4f}  acc {100 * row['train_acc']:.2f}%  "
            f"val loss {val_loss:.4f}  val acc {100 * val_acc:.2f}%{' *' if improved else ''}  "
            f"{''.join(f'{k} {100 * v:.2f}%  ' for k, v in per_set.items()) if len(vals) > 1 else ''}"
            f"lr {row['lr']:.4g}  {row['seconds']:.1f}s"
        )
        if budget > 0 and train_seconds >= budget:
            stop_reason = f"time budget of {cfg.max_minutes:g} min"
            break
        if cfg.patience > 0 and epochs_without_gain >= cfg.patience:
            stop_reason = f"no val gain in {cfg.patience} epochs"
            break

    # ---- final report with the best weights
    best = model_from_checkpoint(load_checkpoint(out / "best.pt")).to(device)
    reports: dict[str, Report] = {}
    judged_sets = {"val": val} if len(vals) == 1 else {f"val_{k}": v.split for k, v in vals.items()}
    for name, split in (*judged_sets.items(), ("test", test)):
        if split is None:
            continue
        probs = torch_probs(best, split.x, device, tta=cfg.eval_tta)
        rep = evaluate_probs(probs, split.y, split=name, model=str(out / "best.pt"), tta=cfg.eval_tta)
        write_report(rep, out, f"report_{name}")
        reports[name] = rep
        log(f"\n{name} report (best.pt{', flip TTA' if cfg.eval_tta else ''}):\n{rep.text()}")
    summary = {
        "run": str(out),
        "epochs_run": epoch + 1 - start_epoch if resume else epoch + 1,
        "last_epoch": epoch + 1,
        "stopped_by": stop_reason,
        "best_val_acc": best_acc,
        "train_minutes": round(train_seconds / 60, 2),
        "params": n_params,
        "macs": macs,
        **{f"{k}_acc{'_tta' if cfg.eval_tta else ''}": r.accuracy for k, r in reports.items()},
        **{f"{k}_macro_f1": r.macro_f1 for k, r in reports.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    tracker.finish(out, summary)
    log(f"done: {json.dumps(summary)}")
    return summary


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


def _draw_curves(out: Path, said: str, log) -> str:
    """Redraw curves.png after each epoch. A missing matplotlib is said once, and training goes on."""
    from fer_edge.report.make import curves

    try:
        curves([out], out / "curves.png")
        return ""
    except FerEdgeError as e:
        if str(e) != said:
            log(f"curves.png not drawn: {e}")
        return str(e)


class _NoTracker:
    def log_metrics(self, row: dict, step: int) -> None:
        pass

    def finish(self, out: Path, summary: dict) -> None:
        pass


class _MlflowTracker:
    """Logs to a local file store (./mlruns by default, or MLFLOW_TRACKING_URI); works offline."""

    def __init__(self, cfg: TrainConfig, out: Path):
        import mlflow

        self.mlflow = mlflow
        mlflow.set_experiment("fer-edge")
        self.run = mlflow.start_run(run_name=out.name)
        mlflow.log_params({k: str(v)[:250] for k, v in asdict(cfg).items()})

    def log_metrics(self, row: dict, step: int) -> None:
        self.mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "epoch"}, step=step)

    def finish(self, out: Path, summary: dict) -> None:
        self.mlflow.log_metrics({k: float(v) for k, v in summary.items() if isinstance(v, (int, float))})
        for name in ("config.json", "metrics.csv", "summary.json", "best.pt"):
            if (out / name).exists():
                self.mlflow.log_artifact(str(out / name))
        self.mlflow.end_run()


def _make_tracker(cfg: TrainConfig, out: Path):
    if cfg.tracker == "none":
        return _NoTracker()
    if cfg.tracker != "mlflow":
        raise FerEdgeError(f"unknown --tracker {cfg.tracker!r}; use none or mlflow")
    try:
        return _MlflowTracker(cfg, out)
    except ImportError:
        raise FerEdgeError("the mlflow tracker needs mlflow: pip install mlflow (the run folder is the record otherwise)") from None
