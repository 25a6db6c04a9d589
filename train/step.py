"""One optimisation step, for every training loop: the learning-rate schedule, the optimiser, the loss
(true labels, a teacher's soft labels, or both) and the update."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from fer_edge.errors import FerEdgeError


def lr_at(schedule: str, peak: float, warmup: float, progress: float) -> float:
    """Learning rate at a share of training in [0, 1]: onecycle (warm-up, then cosine), cosine, or constant.
    The cosine ends at a thousandth of the peak, not at zero: the last steps still move."""
    p = min(max(progress, 0.0), 1.0)
    if schedule == "constant":
        return peak
    if schedule == "onecycle":
        if p < warmup:
            return peak * (0.04 + 0.96 * p / warmup)
        p = (p - warmup) / (1 - warmup)
    elif schedule != "cosine":
        raise FerEdgeError(f"unknown schedule {schedule!r}; use onecycle, cosine or constant")
    return peak * (0.5 * (1 + math.cos(math.pi * p)) * 0.999 + 0.001)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr


def make_optimizer(name: str, model: torch.nn.Module, lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    """SGD (Nesterov when momentum > 0) or AdamW; weight decay on the weights, not on biases or norms."""
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]  # BN and biases
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise FerEdgeError(f"unknown optimizer {name!r}; use sgd or adamw")


def distilled(ce: torch.Tensor, logits: torch.Tensor, soft: torch.Tensor, alpha: float, temperature: float) -> torch.Tensor:
    """The loss with a teacher: (1 - alpha) of the true labels' loss, alpha of the KL divergence to the
    teacher's probabilities at `temperature` (scaled by its square, so its gradients keep their size)."""
    kd = F.kl_div(F.log_softmax(logits / temperature, 1), soft, reduction="batchmean")
    return (1 - alpha) * ce + alpha * kd * temperature**2


def update(optimizer: torch.optim.Optimizer, loss: torch.Tensor, model: torch.nn.Module,
           ema: AveragedModel | None = None) -> None:
    """Backward, step, and the weights' moving average after it."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if ema is not None:
        ema.update_parameters(model)
