"""A trainable checkpoint from an exported fer-edge ONNX file: fine-tune a shipped model without its run.

Export folds each BatchNorm into the convolution before it (W' = W * g / s, b' = beta - mean * g / s) and
may store W' as int8. Reading W' and b' back (dequantised) gives the exported function exactly; to make it
trainable again each BatchNorm is put back so that, in eval mode, it adds b' and nothing else:
running mean m and variance v are the statistics of the conv's output on the given faces, weight
sqrt(v + eps) and bias m + b'. In train mode the batch statistics are close to m and v, so training starts
from the shipped model instead of from a jolt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper

from fer_edge.contract import LABELS
from fer_edge.errors import FerEdgeError, UsageError

from .layer_map import read_layer_map

from .checkpoint import save_atomic
from .data import load_dataset
from .evaluate import normalize
from .models import FERNET_SIZES, build_model, data_config_of


def _weights(model: onnx.ModelProto, net: torch.nn.Module, scope: str = "") -> dict[str, tuple[str, str]]:
    """State-dict prefix (features.3, head.3) -> the graph's names of that layer's weight and bias, for a file
    exported before the layer map (train/layer_map.py).

    Node names are no guide (quantisation renames a Conv whose ReLU it absorbed, constant folding gives each
    view its own copy of a weight), so the layers are matched by order on the first view: the graph is
    topologically sorted, and the mirrored view is everything downstream of the flip (a Slice). In a gated
    graph (export/gated.py) only the nodes under `scope` (/generalist/ or /specialist/) count: the export
    keeps those names.
    """
    mirrored: set[str] = set()
    firsts: dict[str, tuple[str, str]] = {}
    for node in model.graph.node:
        # the flip is a Slice with steps (-1); a gated graph also slices shapes, without steps, to route faces
        if (node.op_type == "Slice" and len(node.input) == 5) or mirrored.intersection(node.input):
            mirrored.update(node.output)
        elif scope and not node.name.startswith(f"/{scope}/"):
            continue
        elif _is_grid_pool(node):
            continue  # a grid head's pool as a depthwise conv (export/grid_head.py): no trained weights
        elif node.op_type in ("Conv", "Gemm"):
            firsts[node.input[1]] = (node.op_type, node.input[2] if len(node.input) > 2 else "")
    convs = [w for w, (op, _) in firsts.items() if op == "Conv"]
    gemms = [w for w, (op, _) in firsts.items() if op == "Gemm"]
    conv_layers = [f"features.{i}" for i, m in enumerate(net.features) if isinstance(m, torch.nn.Conv2d)]
    head_layers = [f"head.{i}" for i, m in enumerate(net.head) if isinstance(m, torch.nn.Linear)]
    if len(convs) != len(conv_layers) or len(gemms) != len(head_layers):
        raise FerEdgeError(f"{len(convs)} convolutions and {len(gemms)} linear layers, not the "
                           f"{len(conv_layers)} and {len(head_layers)} of its arch (an ensemble, or not a fer-edge export)")
    return {layer: (w, firsts[w][1]) for layer, w in zip(conv_layers + head_layers, convs + gemms)}


def _is_grid_pool(node: onnx.NodeProto) -> bool:
    """A grouped conv: FerNet has none, so it is a grid head's pool, whose cells then flatten channels-last."""
    return node.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in node.attribute)


def from_channels_last(weight: torch.Tensor, net: torch.nn.Module) -> torch.Tensor:
    """A grid head's Linear weights over (cell, channel) inputs, back in the trained (channel, cell) order."""
    grid = net.head[0].output_size
    grid = grid if isinstance(grid, int) else grid[0]
    out, cells = weight.shape[0], grid * grid
    return weight.view(out, cells, -1).permute(0, 2, 1).reshape(out, -1)


def _values(model: onnx.ModelProto, names: list[str]) -> dict[str, np.ndarray]:
    """The tensors behind names: initializers as stored, anything computed (DequantizeLinear of int8
    weights) by running the graph with those names as extra outputs."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    out = {n: inits[n].astype(np.float32) for n in names if n in inits}
    computed = [n for n in names if n not in inits]
    if computed:
        g = onnx.ModelProto()
        g.CopyFrom(model)
        del g.graph.output[:]
        g.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in computed)
        try:
            sess = ort.InferenceSession(g.SerializeToString(), providers=["CPUExecutionProvider"])
            feed = {i.name: np.zeros([1 if isinstance(d, str) or d is None else d for d in i.shape], np.uint8)
                    for i in sess.get_inputs()}
            out.update(zip(computed, sess.run(computed, feed)))
        except Exception as e:  # onnxruntime's own text runs to many lines
            raise FerEdgeError(f"its weights could not be read ({type(e).__name__})") from None
    return out


def checkpoint_from_onnx(path: str | Path, faces: np.ndarray, max_faces: int = 8192, batch: int = 512,
                         member: str = "generalist") -> dict:
    """A checkpoint (the dict a best.pt holds) whose model computes what `path` computes per view.

    faces: uint8 [N, 48, 48], the faces the BatchNorm statistics are measured on (the training faces); at
    most max_faces of them, evenly spaced, which pins the statistics to well under a percent. member: which
    net of a gated graph (generalist or specialist); a single-model file has one.
    """
    path = Path(path)
    if not len(faces):
        raise FerEdgeError(f"{path}: no faces to measure its BatchNorm statistics on")
    try:
        model = onnx.load(str(path))
    except Exception as e:
        raise FerEdgeError(f"{path}: not an ONNX file ({type(e).__name__})") from None
    meta = {p.key: p.value for p in model.metadata_props}
    arch, scope, which = meta.get("arch", ""), "", 0
    if arch.startswith("gated: "):  # "gated: fernet-m, fernet-m specialist"
        if member not in ("generalist", "specialist"):
            raise UsageError(f"{path}: a gated graph holds a generalist and a specialist, not {member!r}")
        scope, which = member, int(member == "specialist")
        arch = arch.removeprefix("gated: ").removesuffix(" specialist").split(", ")[which]
    if arch not in FERNET_SIZES:
        raise FerEdgeError(f"{path}: arch {arch or 'unknown'!r} is not a FerNet; only fer-edge's own exports of one FerNet can be trained on")
    net = build_model(arch, num_classes=len(LABELS)).eval()
    state = net.state_dict()
    try:
        # by name where the export wrote its layer map (train/layer_map.py), by order in the graph before
        layers = read_layer_map(meta, member) or _weights(model, net, scope)
    except FerEdgeError as e:
        raise FerEdgeError(f"{path}: {e}; only one FerNet exported by fer-edge can be trained on") from None
    try:
        values = _values(model, [n for pair in layers.values() for n in pair if n])
    except FerEdgeError as e:
        raise FerEdgeError(f"{path}: {e}") from None

    # conv weights are the folded ones; each BatchNorm (the module after its conv) starts as "add the folded bias"
    batchnorms = {}  # name -> (its conv, the BatchNorm, the folded bias)
    channels_last_head = any(_is_grid_pool(n) for n in model.graph.node)
    for prefix, (w, b) in layers.items():
        weight = torch.from_numpy(values[w])
        if prefix.startswith("head") and channels_last_head:
            weight = from_channels_last(weight, net)
        if weight.shape != state[f"{prefix}.weight"].shape:
            raise FerEdgeError(f"{path}: {prefix} has shape {tuple(weight.shape)}, {arch} needs {tuple(state[f'{prefix}.weight'].shape)}")
        state[f"{prefix}.weight"] = weight
        bias = torch.from_numpy(values[b]) if b else torch.zeros(weight.shape[0])
        if prefix.startswith("head"):
            state[f"{prefix}.bias"] = bias
            continue
        i = int(prefix.split(".")[1])
        bn_name, bn = f"features.{i + 1}", net.features[i + 1]
        batchnorms[bn_name] = (net.features[i], bn, bias)
        state.update({f"{bn_name}.weight": torch.ones_like(bias), f"{bn_name}.bias": bias.clone(),
                      f"{bn_name}.running_mean": torch.zeros_like(bias), f"{bn_name}.running_var": torch.full_like(bias, 1 - bn.eps)})
    net.load_state_dict(state)

    # each conv's output statistics (they do not change the eval function, so one pass measures them all)
    sums = {name: [torch.zeros(len(bias), dtype=torch.float64), torch.zeros(len(bias), dtype=torch.float64), 0]
            for name, (_, _, bias) in batchnorms.items()}

    def record(name):
        def hook(_module, _inp, out):
            y, s = out.double(), sums[name]
            s[0] += y.sum((0, 2, 3))
            s[1] += (y * y).sum((0, 2, 3))
            s[2] += y.numel() // y.shape[1]
        return hook

    handles = [conv.register_forward_hook(record(name)) for name, (conv, _, _) in batchnorms.items()]
    faces = faces[np.linspace(0, len(faces) - 1, min(max_faces, len(faces))).astype(int)]
    with torch.no_grad():
        for i in range(0, len(faces), batch):
            net(normalize(torch.from_numpy(np.ascontiguousarray(faces[i:i + batch])), data_config_of(net)))
    for h in handles:
        h.remove()
    for name, (_, bn, bias) in batchnorms.items():
        total, squares, n = sums[name]
        mean = (total / n).float()
        var = (squares / n - (total / n) ** 2).clamp_min(0).float()
        state.update({f"{name}.running_mean": mean, f"{name}.running_var": var,
                      f"{name}.weight": torch.sqrt(var + bn.eps), f"{name}.bias": mean + bias})
    return {
        "model": state,
        "config": {"arch": arch, "data_sha256": meta.get("training_data_sha256", ""), "from_onnx": str(path)},
        "labels": list(LABELS),
        "epoch": int((meta.get("train_epochs", "0") or "0").split(",")[which]) - 1,
        "best_acc": float((meta.get("val_accuracy") if not scope else "") or meta.get("val_accuracy_checkpoint", "").split(",")[which] or 0),
    }


def read_back(out: Path, onnx_path: Path, data: Path, member: str = "generalist") -> dict:
    """Read a FerNet back from a fer-edge export into a trainable checkpoint at `out`; the checkpoint."""
    if out.suffix != ".pt":
        raise UsageError(f"{out}: name the checkpoint .pt")
    ckpt = checkpoint_from_onnx(onnx_path, load_dataset(data)["train"].x, member=member)
    save_atomic(ckpt, out)
    return ckpt
