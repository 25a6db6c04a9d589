"""What an exported file says about itself: the runtime contract's keys, and the model's lineage and figures.
Written once, at the end of an export (`write_metadata`); the repair tool updates single keys."""

from __future__ import annotations

import json

import onnx
from torch import nn

import fer_edge
from fer_edge import contract
from fer_edge.contract import INPUT_NAME, LABELS

from ..train.models import count_macs, count_params

MAX_IR_VERSION = 10  # onnxruntime 1.31 reads IR <= 13; onnx 1.23 would write 14. 10 is read widely.


def export_metadata(ckpts: list[dict], wrapper: nn.Module, tta: bool, temperature: float, quantization: str,
                    val_acc: float | None, val_labels: str = "") -> dict[str, str]:
    cfgs = [c["config"] for c in ckpts]
    data = wrapper.data  # the nets' input (train/models.py DataConfig), as the graph normalises it
    archs = [c["arch"] for c in cfgs]

    def joined(values) -> str:  # one value for a single model, comma-separated per member for an ensemble
        return ",".join(str(v) for v in values)

    accs = [float(c.get("val_acc", c.get("best_acc", float("nan")))) for c in ckpts]
    members = {}
    gate = getattr(wrapper, "gate", None)
    if gate is not None:  # a gated graph (export/gated.py): the generalist's figures first, then the specialist's
        members["gate"] = json.dumps(gate.describe())
        members["specialist"] = json.dumps({"arch": cfgs[1]["arch"], "epochs": ckpts[1].get("epoch", -1) + 1,
                                            "tta": wrapper.specialist_tta, **cfgs[1].get("specialist", {})})
    elif len(ckpts) > 1:
        members["ensemble"] = json.dumps(
            [{"arch": cfg["arch"], "seed": cfg.get("seed"), "epochs": c.get("epoch", -1) + 1, "val_accuracy_checkpoint": round(acc, 5)}
             for c, cfg, acc in zip(ckpts, cfgs, accs)]
        )
    return {
        contract.META_CONTRACT: contract.CONTRACT_VERSION,
        contract.META_LABELS: json.dumps(list(LABELS)),
        contract.META_INPUT: json.dumps(
            {"name": INPUT_NAME, "layout": "NHW", "size": [data.input_size, data.input_size], "dtype": "uint8", "color": "gray"}
        ),
        contract.META_PREPROCESS: json.dumps(
            {"in_graph": True, "formula": "(pixel / 255 - mean) / std", "scale": 1 / 255, "mean": data.mean, "std": data.std,
             "crop": "square face box with margin, grayscale, 48x48 area resize"}
        ),
        contract.META_OUTPUT: "probabilities",
        "arch": archs[0] if len(archs) == 1 else (f"gated: {archs[0]}, {archs[1]} specialist" if gate is not None
                                                  else f"ensemble of {len(archs)}: {joined(archs)}"),
        "params": str(sum(count_params(m) for m in wrapper.trained_members)),
        "macs": str(sum(count_macs(m) for m in wrapper.trained_members)),  # per view; TTA doubles it
        "training_data_sha256": cfgs[0].get("data_sha256", ""),
        "train_epochs": joined(c.get("epoch", -1) + 1 for c in ckpts),
        "train_seed": joined(cfg.get("seed", "") for cfg in cfgs),
        "val_accuracy_checkpoint": joined(f"{acc:.5f}" if acc == acc else "" for acc in accs),  # a soup has none
        "val_accuracy": "" if val_acc is None else f"{val_acc:.5f}",
        "val_labels": val_labels,  # which labels val_accuracy was measured against
        **members,
        # a weight soup names its ingredients (train/soup.py): the card's lineage, inside the file
        **({"soup": json.dumps(cfgs[0]["soup"])} if (len(ckpts) == 1 or gate is not None) and "soup" in cfgs[0] else {}),
        "tta": json.dumps(tta),
        "temperature": f"{temperature:.4f}",
        "quantization": quantization,
        "fer_edge_version": fer_edge.__version__,
        "producer": "fer-edge export",
    }


def write_metadata(model: onnx.ModelProto, meta: dict[str, str]) -> onnx.ModelProto:
    """Replace the model's metadata with meta, cap its IR version where onnxruntime reads it, and check it."""
    model.ir_version = min(model.ir_version, MAX_IR_VERSION)
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    return model


def update_metadata(model: onnx.ModelProto, changes: dict[str, str]) -> None:
    """Set some keys, keeping the rest (the repair tool)."""
    props = {p.key: p for p in model.metadata_props}
    for key, value in changes.items():
        if key in props:
            props[key].value = value
        else:
            model.metadata_props.add(key=key, value=value)
