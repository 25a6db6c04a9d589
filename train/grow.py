"""Grow a trained FerNet into a roomier arch that computes the same function, then fine-tune the room.

A student that has plateaued cannot be made wider from scratch on a CPU in one session, but it can start from
its own function with more freedom. What grows here is the head: a fernet-t2 pools its last 6x6 stage to one
cell; a fernet-t2g pools it to 3x3 cells. The average over 6x6 is the mean of the nine cell averages, so a
classifier whose weights are the old ones divided by nine, repeated for every cell, computes the old logits
exactly. Training then lets each cell weigh its own features (the brows, the mouth) at no convolution's cost.

    fer-edge train grow runs/x/t2g.pt assets/fer-edge-fast.onnx --arch fernet-t2g --data fer2013.csv.gz
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fer_edge.contract import INPUT_SIZE, LABELS
from fer_edge.errors import FerEdgeError, UsageError

from .checkpoint import checkpoint_weights, load_checkpoint, save_atomic
from .data import load_dataset
from .from_onnx import checkpoint_from_onnx
from .models import FERNET_SIZES, build_model


def grow(ckpt: dict, arch: str) -> dict:
    """A checkpoint of `arch` whose eval function equals ckpt's. Only the head's grid may differ, and the new
    grid must split each old cell evenly (and the last stage's map must split evenly into the new grid)."""
    src_arch = ckpt["config"].get("arch", "")
    if src_arch not in FERNET_SIZES or arch not in FERNET_SIZES:
        raise UsageError(f"grow works between FerNets, not {src_arch or 'unknown'} -> {arch}")
    src, dst = FERNET_SIZES[src_arch], FERNET_SIZES[arch]
    if (src.widths, src.depths) != (dst.widths, dst.depths):
        raise UsageError(f"{src_arch} -> {arch}: only the head's grid can grow; the convolutions must match")
    last_map = INPUT_SIZE // 2 ** (len(dst.widths) - 1)
    if dst.head_grid % src.head_grid or last_map % dst.head_grid:
        raise UsageError(f"{src_arch} -> {arch}: a {src.head_grid}x{src.head_grid} head does not split evenly into "
                         f"{dst.head_grid}x{dst.head_grid} cells of a {last_map}x{last_map} map")
    state = dict(checkpoint_weights(ckpt)[0])
    head = next(k[: -len(".weight")] for k in state if k.startswith("head.") and k.endswith(".weight"))
    w = state[f"{head}.weight"]  # [classes, C * g^2], flattened channel-major: c * g^2 + row * g + col
    k, channels = dst.head_grid // src.head_grid, src.widths[-1]
    cells = w.reshape(len(LABELS), channels, src.head_grid, src.head_grid)
    # each old cell becomes k x k new cells, each carrying 1/k^2 of its weight
    grown = cells.repeat_interleave(k, 2).repeat_interleave(k, 3) / (k * k)
    state[f"{head}.weight"] = grown.reshape(len(LABELS), -1).contiguous()
    model = build_model(arch)
    model.load_state_dict(state)  # shapes are checked here
    config = {**ckpt["config"], "arch": arch, "grown_from": src_arch, "ema": 0}
    return {"model": model.state_dict(), "config": config, "labels": list(LABELS),
            "epoch": ckpt.get("epoch", -1), "best_acc": ckpt.get("best_acc", 0.0)}


def max_logit_gap(a: dict, b: dict, faces: torch.Tensor) -> float:
    """The largest difference between the two checkpoints' logits on faces (float, normalised): grow's proof."""
    nets = []
    for ckpt in (a, b):
        net = build_model(ckpt["config"]["arch"])
        net.load_state_dict(checkpoint_weights(ckpt)[0])
        nets.append(net.eval())
    with torch.no_grad():
        return float((nets[0](faces) - nets[1](faces)).abs().max())


def grow_file(out: Path, source: Path, arch: str, data: Path | None = None) -> tuple[dict, float]:
    """Grow the checkpoint (or single-FerNet .onnx) at `source` into `arch` and write it to `out`, after checking
    that the logits did not move; (the source checkpoint, the largest logit change)."""
    if out.suffix != ".pt":
        raise UsageError(f"{out}: name the checkpoint .pt")
    if source.suffix.lower() == ".onnx":
        if not data:
            raise UsageError("an .onnx source needs --data (its BatchNorms are rebuilt on the training faces)")
        src = checkpoint_from_onnx(source, load_dataset(data)["train"].x)
    else:
        src = load_checkpoint(source)
    grown = grow(src, arch)
    faces = torch.from_numpy(np.random.default_rng(0).normal(0, 1, (64, 1, INPUT_SIZE, INPUT_SIZE)).astype(np.float32))
    gap = max_logit_gap(src, grown, faces)
    if gap > 1e-3:
        raise FerEdgeError(f"the grown model's logits differ from the source's by {gap:.2g}; not written")
    save_atomic(grown, out)
    return src, gap
