"""The mirror only when unsure: a flip-TTA graph that reads a face's mirror only when the face alone leaves it unsure.

Flip TTA averages a net's probabilities on the face and on its mirror: two passes a face. The mirror changes
the answer only on faces the first pass is unsure about (on 9,417 judged faces, a first-pass top probability
of at least 0.7 never disagreed with the average's answer). `flip_when_unsure` rewrites the average

    p = (softmax(net(x)) + softmax(net(flip(x)))) / 2

into

    p1 = softmax(net(x));  unsure = max(p1) < below
    p = p1, with the unsure rows replaced by (p1 + softmax(net(flip(x[unsure])))) / 2

in the graph itself (NonZero, Gather, ScatterND), so any onnxruntime caller gets it; a face's answer does not
depend on the other faces of its batch. The nets' layers are not touched: an int8 model keeps its calibrated
ranges (rewrite after quantising, never before: the mirror's ranges come from every face's mirror).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from fer_edge.errors import UsageError

from .graph_index import GraphIndex

META_KEY = "tta_flip_below"  # the metadata key that says a model reads the mirror only below this top probability


def _constant(g: GraphIndex, name: str) -> np.ndarray | None:
    """A tensor's value when it is an initializer or a Constant node's output, else None."""
    if name in g.initializers:
        return g.constant(name)
    node = g.producer.get(name)
    if node is not None and node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
        return numpy_helper.to_array(node.attribute[0].t)
    return None


def _is_flip(node: onnx.NodeProto, g: GraphIndex) -> bool:
    """A Slice that reverses the width axis: how torch.flip(x, dims=[3]) exports."""
    if node.op_type != "Slice" or len(node.input) < 5:
        return False
    axes, steps = _constant(g, node.input[3]), _constant(g, node.input[4])
    return (axes is not None and steps is not None and np.atleast_1d(axes).tolist() in ([3], [-1])
            and np.atleast_1d(steps).tolist() == [-1])


def _flip_average(g: GraphIndex):
    """The (face softmax, mirror softmax, flip Slice, Add, Mul by 0.5) of a one-net flip average."""
    found = []
    for add in g.nodes:
        if add.op_type != "Add" or len(add.input) != 2:
            continue
        softmaxes = [g.producer.get(i) for i in add.input]
        if any(s is None or s.op_type != "Softmax" for s in softmaxes):
            continue
        flips = [{id(n): n for n in g.upstream_nodes(s.output[0]) if _is_flip(n, g)} for s in softmaxes]
        only_second = [set(flips[i]) - set(flips[1 - i]) for i in (0, 1)]
        if bool(only_second[0]) == bool(only_second[1]):
            continue  # both or neither read a mirror of their own
        second = 0 if only_second[0] else 1
        if len(only_second[second]) != 1:
            continue
        users = g.consumers.get(add.output[0], [])
        if len(users) != 1 or users[0].op_type != "Mul":
            continue
        mul = users[0]
        half = [_constant(g, i) for i in mul.input if i != add.output[0]]
        if len(half) != 1 or half[0] is None or half[0].size != 1 or float(half[0]) != 0.5:
            continue
        flip = flips[second][next(iter(only_second[second]))]
        found.append((softmaxes[1 - second], softmaxes[second], flip, add, mul))
    return found


def check_flip_below(below: float | None) -> None:
    if below is not None and not 0.0 < below <= 1.0:
        raise UsageError(f"--flip-below takes a probability in (0, 1], not {below:g}")


def flip_when_unsure(model: onnx.ModelProto, below: float) -> onnx.ModelProto:
    """The model reading the mirror only for faces whose first-pass top probability is below `below`; every
    flip average in the graph is gated on its own first pass (a gated export's generalist and specialist)."""
    check_flip_below(below)
    count = len(_flip_average(GraphIndex(model)))
    if count == 0:
        raise UsageError("--flip-below needs a flip-TTA model of one net (export --tta of one checkpoint, or a gated one)")
    for k in range(count):
        _gate_one(model, below, f"/flip_gate_{k}/")  # one at a time, on a fresh index of the graph
    del model.graph.value_info[:]  # shapes recorded for the whole batch no longer hold for the mirror's rows
    onnx.checker.check_model(model)
    return model


def _gate_one(model: onnx.ModelProto, below: float, n: str) -> None:
    g = GraphIndex(model)
    first, second, flip, add, mul = _flip_average(g)[0]  # an average already gated reads a Gather: not found again
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    p1, x, averaged = first.output[0], flip.input[0], mul.output[0]
    g.graph.initializer.extend([numpy_helper.from_array(np.array(below, np.float32), n + "below"),
                                numpy_helper.from_array(np.array([-1], np.int64), n + "flat"),
                                numpy_helper.from_array(np.array([1], np.int64), n + "axis1")])
    if opset >= 18:  # ReduceMax takes its axes as an input from opset 18
        top = helper.make_node("ReduceMax", [p1, n + "axis1"], [n + "top"], keepdims=0, name=n + "ReduceMax")
    else:
        top = helper.make_node("ReduceMax", [p1], [n + "top"], axes=[1], keepdims=0, name=n + "ReduceMax")
    added = [
        top,
        helper.make_node("Less", [n + "top", n + "below"], [n + "unsure"], name=n + "Less"),
        helper.make_node("NonZero", [n + "unsure"], [n + "where"], name=n + "NonZero"),
        helper.make_node("Reshape", [n + "where", n + "flat"], [n + "rows"], name=n + "Reshape"),
        helper.make_node("Gather", [x, n + "rows"], [n + "faces"], axis=0, name=n + "GatherFaces"),
        helper.make_node("Gather", [p1, n + "rows"], [n + "first"], axis=0, name=n + "GatherFirst"),
        helper.make_node("Unsqueeze", [n + "rows", n + "axis1"], [n + "indices"], name=n + "Unsqueeze"),
        helper.make_node("ScatterND", [p1, n + "indices", n + "averaged"], [averaged], name=n + "ScatterND"),
    ]
    flip.input[0] = n + "faces"  # only the unsure faces are mirrored and read again
    add.input[list(add.input).index(p1)] = n + "first"
    mul.output[0] = n + "averaged"
    g.replace_nodes(g.in_topological_order(g.nodes + added))
