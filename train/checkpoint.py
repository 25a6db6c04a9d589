"""Checkpoints: atomic writes, and loads that cannot run code (weights_only)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fer_edge.contract import LABELS
from fer_edge import atomic
from fer_edge.errors import FerEdgeError

from .models import build_model


def save_atomic(obj: dict, path: Path) -> None:
    """Write to a temp file in the same folder, then rename: a kill never leaves a half-written file."""
    with atomic.replacing(Path(path)) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FerEdgeError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle errors, zip errors, and weights_only refusals all mean: not ours
        # torch's own text runs to several lines and advises weights_only=False: not advice to pass on
        first = " ".join(str(e).split("\n")[0].split())[:160]
        kind = "it holds objects other than weights" if "weights_only" in str(e) else f"{type(e).__name__}: {first}"
        raise FerEdgeError(f"{path}: not a fer-edge checkpoint ({kind}); it was not loaded") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise FerEdgeError(f"{path}: not an fer-edge checkpoint (no model/config entries)")
    labels = tuple(ckpt.get("labels", LABELS))
    if labels != LABELS:
        raise FerEdgeError(f"{path}: labels {labels} differ from fer-edge's {LABELS}")
    return ckpt


def check_same_data(paths: list[Path], ckpts: list[dict], what: str) -> None:
    """Checkpoints combined into one model (an ensemble, a soup) must come from one dataset: the card has one
    data line and one split."""
    shas = {c["config"].get("data_sha256", "") for c in ckpts}
    if len(shas) > 1:
        raise FerEdgeError(f"{what} were trained on different data (training_data_sha256 differs): "
                           + ", ".join(f"{p}: {c['config'].get('data_sha256', '')[:12] or '?'}" for p, c in zip(paths, ckpts)))


EMA_PREFIX = "module."  # AveragedModel keeps the averaged model's weights under this prefix


def checkpoint_weights(ckpt: dict) -> tuple[dict[str, torch.Tensor], bool]:
    """The weights a checkpoint stands for, and whether they are an EMA. A last.pt of an --ema run carries the
    average beside the raw weights; the average is what its epoch validated (and what a best.pt holds), so
    export, eval, teachers, --init and soups all take it. Only --resume needs the raw weights."""
    if "ema" in ckpt:
        return {k[len(EMA_PREFIX):]: v for k, v in ckpt["ema"].items() if k.startswith(EMA_PREFIX)}, True
    return ckpt["model"], ckpt["config"].get("ema", 0) > 0  # a best.pt of an --ema run holds the average


def model_from_checkpoint(ckpt: dict) -> nn.Module:
    model = build_model(ckpt["config"]["arch"], num_classes=len(LABELS))
    model.load_state_dict(checkpoint_weights(ckpt)[0])
    return model.eval()


def rng_state(gen: torch.Generator, device: torch.device) -> dict:
    """Every random stream a training loop draws from, for a resume that continues the same stream."""
    state = {"torch": torch.get_rng_state(), "gen": gen.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict, gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["gen"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
