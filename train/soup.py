"""Weight soups: one checkpoint whose weights are a weighted average of several checkpoints of one model.

Averaging works only between weights that share a starting point, such as a checkpoint and a fine-tune of
it (`fer-edge train --init`): WiSE-FT (Wortsman et al., 2022) keeps most of each side's gains, here the
clean accuracy of the start and the robustness of the fine-tune. Checkpoints trained from different seeds
sit in different basins, and their average is a broken model: ensemble those instead (`fer-edge export`
with several --checkpoint). Every floating tensor is averaged, BatchNorm statistics included; integer
counters are taken from the first checkpoint. A checkpoint that carries EMA weights (a last.pt of a run
with --ema) gives those, as its best.pt would.

    fer-edge train soup OUT.pt A.pt B.pt [--weights 0.5,0.5]

The result exports like any best.pt: `fer-edge export model.onnx --checkpoint OUT.pt`.
"""

from __future__ import annotations

from pathlib import Path

from fer_edge.errors import UsageError

from .checkpoint import check_same_data, checkpoint_weights, load_checkpoint, save_atomic


def parse_weights(text: str | None, n: int) -> list[float]:
    if text is None:
        return [1.0 / n] * n
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise UsageError(f"--weights {text!r}: give {n} comma-separated numbers, e.g. 0.5,0.5") from None
    if len(weights) != n:
        raise UsageError(f"--weights has {len(weights)} numbers for {n} checkpoints")
    if any(not w >= 0 for w in weights) or sum(weights) <= 0:
        raise UsageError(f"--weights {text!r}: each must be 0 or more, and they cannot all be 0")
    total = sum(weights)
    return [w / total for w in weights]


def make_soup(paths: list[Path], weights: list[float]) -> dict:
    """A checkpoint (model + config, loadable by export and --init) holding the weighted average."""
    if len(paths) < 2:
        raise UsageError("a soup needs at least two checkpoints")
    ckpts = [load_checkpoint(p) for p in paths]
    archs = {c["config"]["arch"] for c in ckpts}
    if len(archs) > 1:
        raise UsageError(f"cannot average different architectures: {', '.join(sorted(archs))}")
    check_same_data(paths, ckpts, "the checkpoints")
    states, used_ema = zip(*(checkpoint_weights(c) for c in ckpts))
    keys = list(states[0])
    for path, state in zip(paths[1:], states[1:]):
        if list(state) != keys or any(state[k].shape != states[0][k].shape for k in keys):
            raise UsageError(f"{path}: its tensors do not match {paths[0]}'s; not the same model")
    averaged = {}
    for k in keys:
        first = states[0][k]
        if first.is_floating_point():
            averaged[k] = sum(w * s[k].double() for w, s in zip(weights, states)).to(first.dtype)
        else:
            averaged[k] = first.clone()  # BatchNorm's num_batches_tracked: a counter, not a weight
    config = dict(ckpts[0]["config"])
    config["soup"] = [{"checkpoint": str(p), "weight": round(w, 6), "ema": e} for p, w, e in zip(paths, weights, used_ema)]
    return {
        "model": averaged,
        "config": config,
        "labels": ckpts[0]["labels"],
        "epoch": max(c.get("epoch", -1) for c in ckpts),
        "fer_edge_version": ckpts[0].get("fer_edge_version", ""),
    }


def soup_file(out: Path, checkpoints: list[Path], weights_text: str | None = None) -> dict:
    """Average the checkpoints with the given weights (default: equal) and write the soup to `out`."""
    if out.suffix != ".pt":
        raise UsageError(f"{out}: the soup is a checkpoint; name it .pt (export it to ONNX afterwards)")
    soup = make_soup(checkpoints, parse_weights(weights_text, len(checkpoints)))
    save_atomic(soup, out)
    return soup
