"""Grow a trained FerNet into a roomier arch that computes the same function, then fine-tune the room.

A student that has plateaued cannot be made wider from scratch on a CPU in one session, but it can start from
its own function with more freedom. What grows here is the head: a fernet-t2 pools its last 6x6 stage to one
cell; a fernet-t2g pools it to 3x3 cells. The average over 6x6 is the mean of the nine cell averages, so a
classifier whose weights are the old ones divided by nine, repeated for every cell, computes the old logits
exactly. Training then lets each cell weigh its own features (the brows, the mouth) at no convolution's cost.

    python -m fer_edge.train.grow runs/x/t2g.pt assets/fer-edge-fast.onnx --arch fernet-t2g --data fer2013.csv.gz
"""

from __future__ import annotations

import argparse
import sys
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_edge.train.grow", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the grown checkpoint to write (.pt); pass it to fer-edge train --init")
    parser.add_argument("source", type=Path, help="a FerNet checkpoint (.pt) or a single FerNet exported by fer-edge (.onnx)")
    parser.add_argument("--arch", required=True, help="the arch to grow into, e.g. fernet-t2g")
    parser.add_argument("--data", help="the training data: an .onnx source's BatchNorm statistics are measured on it")
    args = parser.parse_args(argv)
    try:
        if args.out.suffix != ".pt":
            raise UsageError(f"{args.out}: name the checkpoint .pt")
        if args.source.suffix.lower() == ".onnx":
            if not args.data:
                raise UsageError("an .onnx source needs --data (its BatchNorms are rebuilt on the training faces)")
            source = checkpoint_from_onnx(args.source, load_dataset(args.data)["train"].x)
        else:
            source = load_checkpoint(args.source)
        grown = grow(source, args.arch)
        faces = torch.from_numpy(np.random.default_rng(0).normal(0, 1, (64, 1, INPUT_SIZE, INPUT_SIZE)).astype(np.float32))
        gap = max_logit_gap(source, grown, faces)
        if gap > 1e-3:
            raise FerEdgeError(f"the grown model's logits differ from the source's by {gap:.2g}; not written")
        save_atomic(grown, args.out)
    except (FerEdgeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1
    print(f"wrote {args.out}: a {args.arch} grown from {source['config']['arch']} ({args.source}); "
          f"largest logit change {gap:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
