"""Named graph rewrites of an exported model, each exact (the same probabilities), on one GraphIndex:

- `pool_before_relu`: Relu -> MaxPool becomes MaxPool -> Relu. onnxruntime moves a QuantizeLinear after a
  max-pool up past it, onto a slow uint8 kernel, when the pool follows the fp32 first conv of an int8 export;
  pooling first keeps the pool in fp32 (the default ran 1.5x faster, the same probabilities to the bit).
- `head_to_fp32`: removes the Quantize/Dequantize pairs from the classifier layer on (exports made before the
  head stayed fp32 gave probabilities on a uint8 grid), and turns the int8 constants there back into fp32.
- `apply_temperature`: p -> softmax(log(max(p, 1e-12)) / T) on the graph's probabilities: calibration
  (train/calibration.py) as a graph op, without exporting again.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .graph_index import GraphIndex


def pool_before_relu(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """The model with every Relu -> MaxPool pair (the Relu feeding only the pool) turned into MaxPool -> Relu."""
    g = GraphIndex(model)
    nodes = list(g.nodes)
    swapped = []
    for pool in nodes:
        relu = g.producer.get(pool.input[0]) if pool.op_type == "MaxPool" and len(pool.output) == 1 else None
        if relu is None or relu.op_type != "Relu" or relu.output[0] in g.outputs or len(g.consumers[relu.output[0]]) != 1:
            continue
        # x -> Relu -> r -> MaxPool -> y   becomes   x -> MaxPool -> y_pre_relu -> Relu -> y
        x, r, y = relu.input[0], relu.output[0], pool.output[0]
        pool.input[0], pool.output[0] = x, y + "_pre_relu"
        relu.input[0], relu.output[0] = y + "_pre_relu", y
        swapped.append((pool, relu, r))
    for pool, relu, r in swapped:  # the pool now runs first: put it where the Relu stood
        nodes.remove(pool)
        nodes.insert(nodes.index(relu), pool)
        stale = [v for v in g.graph.value_info if v.name == r]  # the Relu's old output (full size) is gone
        for v in stale:
            g.graph.value_info.remove(v)
    g.replace_nodes(nodes)
    onnx.checker.check_model(model)
    return model, len(swapped)


def head_to_fp32(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """The model with Q/DQ pairs after every Gemm/MatMul bypassed; returns it and how many pairs went."""
    g = GraphIndex(model)
    head = g.downstream(lambda node: node.op_type in ("Gemm", "MatMul"))  # tensors computed from a classifier layer
    drop, rename = set(), {}
    for q in g.nodes:
        if q.op_type != "QuantizeLinear" or q.input[0] not in head:
            continue
        users = g.consumers.get(q.output[0], [])
        if len(users) != 1 or users[0].op_type != "DequantizeLinear":
            continue
        dq = users[0]
        drop.update((id(q), id(dq)))
        rename[dq.output[0]] = q.input[0]
    # int8 constants that feed the head (the ensemble's 1/N): back to fp32 values
    for dq in g.nodes:
        users = g.consumers.get(dq.output[0], []) if dq.output else []
        if dq.op_type == "DequantizeLinear" and dq.input[0] in g.initializers and any(
            u.output and u.output[0] in head for u in users
        ) and not any(u.op_type in ("Gemm", "MatMul") for u in users):
            x = g.constant(dq.input[0]).astype(np.float32)
            scale = g.constant(dq.input[1]).astype(np.float32)
            zero = g.constant(dq.input[2]).astype(np.float32) if len(dq.input) > 2 else 0.0
            g.graph.initializer.append(numpy_helper.from_array(((x - zero) * scale).astype(np.float32), dq.output[0]))
            drop.add(id(dq))
    kept = [n for n in g.nodes if id(n) not in drop]
    for node in kept:
        for i, name in enumerate(node.input):
            while name in rename:
                name = rename[name]
            node.input[i] = name
    # a graph output that was a DQ's: the tensor before the pair takes the output's name
    for out_name, src in list(rename.items()):
        if out_name in g.outputs:
            for node in kept:
                node.output[:] = [out_name if name == src else name for name in node.output]
                node.input[:] = [out_name if name == src else name for name in node.input]
    g.replace_nodes(kept, prune=True)
    onnx.checker.check_model(model)
    return model, sum(1 for n in g.nodes if id(n) in drop and n.op_type == "QuantizeLinear")


def apply_temperature(model: onnx.ModelProto, t: float) -> onnx.ModelProto:
    """Append p -> softmax(log(max(p, 1e-12)) / t) to the graph's probabilities; t = 1 leaves the graph as it is."""
    if t == 1.0:
        return model
    g = GraphIndex(model)
    out = g.graph.output[0].name
    raw = out + "_uncalibrated"
    for node in g.nodes:
        node.output[:] = [raw if o == out else o for o in node.output]
        node.input[:] = [raw if i == out else i for i in node.input]
    g.graph.initializer.extend([numpy_helper.from_array(np.array(1e-12, np.float32), "calibration_eps"),
                                numpy_helper.from_array(np.array(1.0 / t, np.float32), "calibration_inv_t")])
    g.graph.node.extend([
        helper.make_node("Max", [raw, "calibration_eps"], ["calibration_floor"], name="/calibration/Max"),
        helper.make_node("Log", ["calibration_floor"], ["calibration_log"], name="/calibration/Log"),
        helper.make_node("Mul", ["calibration_log", "calibration_inv_t"], ["calibration_scaled"], name="/calibration/Mul"),
        helper.make_node("Softmax", ["calibration_scaled"], [out], axis=1, name="/calibration/Softmax"),
    ])
    onnx.checker.check_model(model)
    return model
