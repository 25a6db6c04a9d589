"""Give an int8 model exported before fp32 heads real probabilities again, without its checkpoints.

Older int8 exports quantised everything after the classifier layer too: the logits, each softmax, the
ensemble's running sums and the final probabilities passed through QuantizeLinear/DequantizeLinear pairs,
so the output sat on a uint8 grid (26 distinct values on 256 faces, rows summing to 0.992-1.007). This
removes those pairs from the classifier layer on, and turns the int8 constants there (the ensemble's 1/N)
back into fp32: the weights stay as they were, only the head now computes in fp32.

    python -m fer_edge.export.fp32_head assets/fer-edge.onnx fixed.onnx [--calibrate ../shared/data/fer2013.csv.gz]

With --calibrate, a temperature is fitted on the validation split (PublicTest) and baked in after the
probabilities when it lowers the expected calibration error there, as `fer-edge export --calibrate` does.
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import numpy_helper


def fp32_head(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """The model with Q/DQ pairs after every Gemm/MatMul bypassed; returns it and how many pairs went."""
    graph = model.graph
    nodes = list(graph.node)
    head: set[str] = set()  # tensors computed from a classifier layer's output
    for node in nodes:
        if node.op_type in ("Gemm", "MatMul") or head.intersection(node.input):
            head.update(node.output)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    inits = {i.name: i for i in graph.initializer}
    drop, rename = set(), {}
    for q in nodes:
        if q.op_type != "QuantizeLinear" or q.input[0] not in head:
            continue
        users = consumers.get(q.output[0], [])
        if len(users) != 1 or users[0].op_type != "DequantizeLinear":
            continue
        dq = users[0]
        drop.update((id(q), id(dq)))
        rename[dq.output[0]] = q.input[0]
    # int8 constants that feed the head (the ensemble's 1/N): back to fp32 values
    for dq in nodes:
        if dq.op_type == "DequantizeLinear" and dq.input[0] in inits and any(
            u.output and u.output[0] in head for u in consumers.get(dq.output[0], [])
        ) and not any(u.op_type in ("Gemm", "MatMul") for u in consumers.get(dq.output[0], [])):
            x = numpy_helper.to_array(inits[dq.input[0]]).astype(np.float32)
            scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float32)
            zero = numpy_helper.to_array(inits[dq.input[2]]).astype(np.float32) if len(dq.input) > 2 else 0.0
            graph.initializer.append(numpy_helper.from_array(((x - zero) * scale).astype(np.float32), dq.output[0]))
            drop.add(id(dq))
    kept = [n for n in nodes if id(n) not in drop]
    for node in kept:
        for i, name in enumerate(node.input):
            while name in rename:
                name = rename[name]
            node.input[i] = name
    # a graph output that was a DQ's: the tensor before the pair takes the output's name
    for out_name, src in list(rename.items()):
        if out_name in outputs:
            for node in kept:
                for i, name in enumerate(node.output):
                    if name == src:
                        node.output[i] = out_name
            for node in kept:
                for i, name in enumerate(node.input):
                    if name == src:
                        node.input[i] = out_name
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for n in kept for name in n.input}
    keep_inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep_inits)
    onnx.checker.check_model(model)
    return model, sum(1 for n in nodes if id(n) in drop and n.op_type == "QuantizeLinear")


def bake_temperature(model: onnx.ModelProto, t: float) -> onnx.ModelProto:
    """Append p -> softmax(log(max(p, 1e-12)) / t) to the graph's probabilities (train/calibration.py)."""
    from onnx import helper

    graph = model.graph
    out = graph.output[0].name
    raw = out + "_uncalibrated"
    for node in graph.node:
        node.output[:] = [raw if o == out else o for o in node.output]
        node.input[:] = [raw if i == out else i for i in node.input]
    graph.initializer.extend([numpy_helper.from_array(np.array(1e-12, np.float32), "calibration_eps"),
                              numpy_helper.from_array(np.array(1.0 / t, np.float32), "calibration_inv_t")])
    graph.node.extend([
        helper.make_node("Max", [raw, "calibration_eps"], ["calibration_floor"]),
        helper.make_node("Log", ["calibration_floor"], ["calibration_log"]),
        helper.make_node("Mul", ["calibration_log", "calibration_inv_t"], ["calibration_scaled"]),
        helper.make_node("Softmax", ["calibration_scaled"], [out], axis=1),
    ])
    onnx.checker.check_model(model)
    return model


def _meta(model: onnx.ModelProto, key: str, value: str) -> None:
    for p in model.metadata_props:
        if p.key == key:
            p.value = value
            return
    model.metadata_props.add(key=key, value=value)


def main(argv: list[str]) -> None:
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--calibrate", metavar="DATA", help="fit and bake a temperature on this data's validation split")
    args = ap.parse_args(argv)
    model, pairs = fp32_head(onnx.load(args.model))
    quant = next((p.value for p in model.metadata_props if p.key == "quantization"), "")
    if "fp32 head" not in quant:
        _meta(model, "quantization", quant + "; fp32 head (classifier layer, softmax and averages)")
    print(f"{args.out}: {pairs} quantize/dequantize pairs after the classifier layer removed")
    if args.calibrate:
        from fer_edge.classifier import ExpressionClassifier
        from fer_edge.train.calibration import apply_temperature, ece, fit_temperature
        from fer_edge.train.data import load_dataset

        val = load_dataset(args.calibrate)["val"]
        with tempfile.TemporaryDirectory() as tmp:
            onnx.save(model, f"{tmp}/m.onnx")
            probs = ExpressionClassifier.from_path(f"{tmp}/m.onnx", device="cpu").predict_probs(val.x)
        t = fit_temperature(probs, val.y)
        before, after = ece(probs, val.y), ece(apply_temperature(probs, t), val.y)
        print(f"calibration on val: temperature {t:.3f}, ECE {100 * before:.2f}% -> {100 * after:.2f}%"
              + ("" if after < before else "; not applied"))
        if after < before:
            model = bake_temperature(model, t)
            _meta(model, "temperature", f"{t:.4f}")
        _meta(model, "val_accuracy", f"{float((probs.argmax(1) == val.y).mean()):.5f}")
        _meta(model, "val_ece", f"{min(before, after):.5f}")
    onnx.save(model, args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
