"""The layer map an export writes into its metadata (here, below export, so that from_onnx reads it without
reaching up into the exporter): for each trained net in the graph, which tensors hold
each layer's weight and bias (the first view's, where flip TTA runs the net twice). `fer-edge train from-onnx`
reads layers back by these names instead of by their order in the graph.

The names come from the exporter's node scopes (`/members.0/features/features.4/Conv`, under `/generalist/`
or `/specialist/` in a gated graph; the mirrored view's scopes end in `_1`), taken from the final graph, int8
included, and checked against the trained nets: a map that misses a layer is not written.
"""

from __future__ import annotations

import json

import onnx
from torch import nn

META_KEY = "layers"


def _trained_layers(net: nn.Module) -> list[str]:
    return [name for name, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _members(wrapper: nn.Module) -> dict[str, nn.Module]:
    """Scope of each trained net in the graph -> the net."""
    gate = getattr(wrapper, "gate", None)
    if gate is not None:
        return {"generalist/members.0": wrapper.trained_members[0], "specialist/members.0": wrapper.trained_members[1]}
    return {f"members.{i}": m for i, m in enumerate(wrapper.trained_members)}


def layer_map(model: onnx.ModelProto, wrapper: nn.Module) -> dict[str, dict[str, list[str]]] | None:
    """{member scope: {layer: [weight tensor, bias tensor or ""]}}, or None when a layer cannot be found."""
    members = _members(wrapper)
    found: dict[str, dict[str, list[str]]] = {scope: {} for scope in members}
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        scope, _, rest = node.name.strip("/").rpartition("/")  # ".../members.0/features/features.4", "Conv"
        parts = scope.split("/")
        for member in members:
            depth = member.count("/") + 1
            if "/".join(parts[:depth]) == member and len(parts) > depth:
                layer = parts[-1]  # the module's full name inside the net; the mirrored view's ends in _1
                if layer in _trained_layers(members[member]) and layer not in found[member]:
                    found[member][layer] = [node.input[1], node.input[2] if len(node.input) > 2 else ""]
    complete = all(set(found[m]) == set(_trained_layers(net)) for m, net in members.items())
    return found if complete else None


def write_layer_map(meta: dict[str, str], model: onnx.ModelProto, wrapper: nn.Module) -> None:
    found = layer_map(model, wrapper)
    if found is not None:
        meta[META_KEY] = json.dumps(found)


def read_layer_map(meta: dict[str, str], member: str) -> dict[str, tuple[str, str]] | None:
    """The layers of one net (generalist or specialist in a gated graph, else the only one), or None for a file
    exported before the map was written."""
    if META_KEY not in meta:
        return None
    layers = json.loads(meta[META_KEY])
    scope = next((s for s in layers if s.startswith(f"{member}/")), None) if len(layers) > 1 else next(iter(layers), None)
    return None if scope is None else {k: (w, b) for k, (w, b) in layers[scope].items()}
