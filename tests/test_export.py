"""Export: parity with torch, the contract metadata, int8 and its calibration, ensembles, and reading an
export back into a trainable checkpoint (the model factory's last room)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch", reason="the model factory needs the train extra (torch)")

import torch  # noqa: E402

from fer_edge.cli.app import app  # noqa: E402
from fer_edge.contract import LABELS  # noqa: E402
from fer_edge.train.data import load_dataset  # noqa: E402
from helpers import second_run, train_args  # noqa: E402
from synthetic import write_csv  # noqa: E402

runner = CliRunner()


def test_export_parity_metadata_and_runtime_load(trained_run, tmp_path, csv_data):
    import onnx

    from fer_edge.classifier import ExpressionClassifier

    onnx_path = tmp_path / "m.onnx"
    result = runner.invoke(app, ["export", str(onnx_path), "--checkpoint", str(trained_run / "best.pt")])
    assert result.exit_code == 0, result.output
    assert "parity" in result.stderr and "argmax agrees" in result.stderr and "next: fer-edge classify" in result.stderr
    m = onnx.load(str(onnx_path))
    onnx.checker.check_model(m)
    assert m.ir_version <= 13
    meta = {p.key: p.value for p in m.metadata_props}
    assert json.loads(meta["labels"]) == list(LABELS)
    assert meta["arch"] == "fernet-t" and len(meta["training_data_sha256"]) == 64
    assert {"input", "preprocessing", "val_accuracy", "fer_edge_version", "tta", "quantization"} <= set(meta)
    clf = ExpressionClassifier.from_path(onnx_path, device="cpu")
    assert clf.predict_probs(np.zeros((5, 48, 48), np.uint8)).shape == (5, 7)  # dynamic batch


def test_eval_pt_and_onnx_agree(trained_run, tmp_path, csv_data):
    onnx_path = tmp_path / "m.onnx"
    assert runner.invoke(app, ["export", str(onnx_path), "--checkpoint", str(trained_run / "best.pt")]).exit_code == 0
    reports = []
    for model in (trained_run / "best.pt", onnx_path):
        js = tmp_path / f"{model.suffix[1:]}.json"
        result = runner.invoke(app, ["eval", str(model), "--data", str(csv_data), "--json", str(js), "--tta"])
        assert result.exit_code == 0, result.output
        assert "macro avg" in result.stdout and "precision" in result.stdout
        reports.append(json.loads(js.read_text()))
        assert (tmp_path / f"{model.suffix[1:]}_confusion.png").is_file()
    assert reports[0]["split"] == "val" and reports[0]["tta"] is True
    assert reports[0]["confusion"] == reports[1]["confusion"]
    assert reports[0]["accuracy"] == reports[1]["accuracy"]


def test_export_defaults_to_the_latest_run_and_int8_runs(trained_run, tmp_path, monkeypatch):
    monkeypatch.chdir(trained_run.parent.parent)
    (Path("runs")).mkdir(exist_ok=True)
    (Path("runs") / "r1").symlink_to(trained_run, target_is_directory=True)
    out = tmp_path / "q.onnx"
    result = runner.invoke(app, ["export", str(out), "--int8", "--tta"])
    assert result.exit_code == 0, result.output
    assert "latest run's checkpoint" in result.stderr and "int8: val acc" in result.stderr
    import onnx

    model = onnx.load(str(out))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["quantization"].startswith("int8") and meta["tta"] == "true"
    # the first convolution of each TTA branch stays fp32 (its weight is a plain initializer); the rest are int8
    produced = {o: n.op_type for n in model.graph.node for o in n.output}
    weight_src = [produced.get(n.input[1], "initializer") for n in model.graph.node if n.op_type == "Conv"]
    assert weight_src.count("initializer") == 2 and weight_src.count("DequantizeLinear") == len(weight_src) - 2
    # real probabilities: the head, softmax and TTA average run in fp32, after the last quantised layer
    from fer_edge.classifier import ExpressionClassifier

    probs = ExpressionClassifier.from_path(out, device="cpu").predict_probs(
        np.random.default_rng(0).integers(0, 256, (256, 48, 48), dtype=np.uint8))
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert len(np.unique(probs)) > 1000  # a quantised output gave 26 distinct values on 256 faces
    assert model.graph.node[-1].op_type not in ("QuantizeLinear", "DequantizeLinear")


def test_an_int8_export_pools_before_its_first_relu_so_onnxruntime_pools_in_fp32(trained_run, tmp_path, csv_data, monkeypatch):
    """onnxruntime moves a QuantizeLinear after a max-pool up past it, onto a slow uint8 kernel (rewrites.pool_before_relu);
    MaxPool -> Relu stops that, and gives the same probabilities to the bit."""
    import onnx
    import onnxruntime as ort

    from fer_edge.classifier import ExpressionClassifier
    from fer_edge.export import int8
    from fer_edge.export.repair import main as repair_main

    def export(out: Path) -> onnx.ModelProto:
        result = runner.invoke(app, ["export", str(out), "--checkpoint", str(trained_run / "best.pt"), "--data", str(csv_data),
                                     "--int8", "--tta"])
        assert result.exit_code == 0, result.output
        return onnx.load(str(out))

    new = export(tmp_path / "new.onnx")
    monkeypatch.setattr(int8, "pool_before_relu", lambda model: (model, 0))
    export(tmp_path / "old.onnx")  # the graph as exported before the rewrite

    produced = {o: n.op_type for n in new.graph.node for o in n.output}
    first_pools = [n for n in new.graph.node if n.op_type == "MaxPool" and produced.get(n.input[0]) == "Conv"]
    assert len(first_pools) == 2  # one per TTA branch, each now straight after its fp32 first conv
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(tmp_path / "new.onnx"), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(tmp_path / "optimized.onnx")).graph
    producer = {o: n.op_type for n in optimized.node for o in n.output}
    assert not [n for n in optimized.node if n.op_type == "MaxPool" and producer.get(n.input[0]) == "QuantizeLinear"]

    faces = np.random.default_rng(0).integers(0, 256, (256, 48, 48), dtype=np.uint8)
    p_new, p_old = (ExpressionClassifier.from_path(tmp_path / f, device="cpu").predict_probs(faces) for f in ("new.onnx", "old.onnx"))
    np.testing.assert_array_equal(p_new, p_old)

    repair_main([str(tmp_path / "old.onnx"), str(tmp_path / "fixed.onnx")])  # the tool for files exported before
    p_fixed = ExpressionClassifier.from_path(tmp_path / "fixed.onnx", device="cpu").predict_probs(faces)
    np.testing.assert_array_equal(p_fixed, p_old)
    with pytest.raises(SystemExit, match="^error: cannot read .*nothing.onnx as ONNX"):
        repair_main([str(tmp_path / "nothing.onnx"), str(tmp_path / "x.onnx")])


def test_int8_calibration_choices_set_the_activation_ranges(trained_run, tmp_path, csv_data):
    import onnx
    from onnx import numpy_helper

    def activation_scales(path: Path) -> dict[str, float]:
        model = onnx.load(str(path))
        inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        # a QuantizeLinear of a computed tensor (not a weight initializer) carries one activation range
        return {n.input[0]: float(inits[n.input[1]]) for n in model.graph.node
                if n.op_type == "QuantizeLinear" and n.input[0] not in inits}

    scales, meta = {}, {}
    for method in ("minmax", "moving-average", "percentile"):
        out = tmp_path / f"{method}.onnx"
        result = runner.invoke(app, ["export", str(out), "--checkpoint", str(trained_run / "best.pt"), "--data", str(csv_data),
                                     "--int8", "--int8-calibration", method])
        assert result.exit_code == 0, result.output
        scales[method] = activation_scales(out)
        meta[method] = {p.key: p.value for p in onnx.load(str(out)).metadata_props}["quantization"]
    assert meta["minmax"] == "int8 static QDQ, per-channel weights"  # the shipped files' wording stays
    assert meta["moving-average"].endswith("moving-average activation ranges")
    assert scales["minmax"].keys() == scales["moving-average"].keys() and len(scales["minmax"]) >= 4
    # the mean of each batch's extremes never exceeds the extremes of all batches, and somewhere falls short
    diffs = [scales["moving-average"][k] - v for k, v in scales["minmax"].items()]
    assert max(diffs) <= 1e-7 and min(diffs) < -1e-6
    assert scales["percentile"] != scales["minmax"]

    result = runner.invoke(app, ["export", str(tmp_path / "x.onnx"), "--checkpoint", str(trained_run / "best.pt"),
                                 "--int8", "--int8-calibration", "median"])
    assert result.exit_code == 2 and "Traceback" not in result.output and not (tmp_path / "x.onnx").exists()


def test_ensemble_export_averages_its_members(trained_run, tmp_path, csv_data):
    import onnx

    from fer_edge.classifier import ExpressionClassifier

    other = second_run(csv_data, tmp_path)
    paths = {}
    for name, ckpts in {"a": [trained_run], "b": [other], "ab": [trained_run, other]}.items():
        paths[name] = tmp_path / f"{name}.onnx"
        args = ["export", str(paths[name]), "--tta"] + [a for c in ckpts for a in ("--checkpoint", str(c / "best.pt"))]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    assert "ensemble of 2" in result.stderr
    faces = np.random.default_rng(3).integers(0, 256, (9, 48, 48), dtype=np.uint8)
    probs = {k: ExpressionClassifier.from_path(p, device="cpu").predict_probs(faces) for k, p in paths.items()}
    assert not np.allclose(probs["a"], probs["b"], atol=1e-3)  # two different members, or the test proves nothing
    np.testing.assert_allclose(probs["ab"], (probs["a"] + probs["b"]) / 2, atol=1e-5)
    meta = {p.key: p.value for p in onnx.load(str(paths["ab"])).metadata_props}
    members = json.loads(meta["ensemble"])
    assert [m["seed"] for m in members] == [0, 7] and meta["arch"].startswith("ensemble of 2")
    assert meta["train_seed"] == "0,7" and int(meta["macs"]) == 2 * int(
        {p.key: p.value for p in onnx.load(str(paths["a"])).metadata_props}["macs"])


def test_export_fails_loudly_on_a_parity_break(trained_run, tmp_path, monkeypatch):
    from fer_edge.export import onnx_export

    real = onnx_export._to_onnx

    def sabotaged(wrapper, path, opset):
        with torch.no_grad():
            wrapper.members[0].head[-1].bias += 5 * torch.arange(7, dtype=torch.float32)  # torch and ONNX now differ
        real(wrapper, path, opset)
        with torch.no_grad():
            wrapper.members[0].head[-1].bias -= 5 * torch.arange(7, dtype=torch.float32)

    monkeypatch.setattr(onnx_export, "_to_onnx", sabotaged)
    out = tmp_path / "broken.onnx"
    result = runner.invoke(app, ["export", str(out), "--checkpoint", str(trained_run / "best.pt")])
    assert result.exit_code == 1 and "parity failed" in result.stderr
    assert not out.exists()


def test_an_exported_model_is_rebuilt_into_a_trainable_checkpoint(trained_run, tmp_path, csv_data):
    """A shipped .onnx (BatchNorm folded, maybe int8) trains again: `--init model.onnx`, or a .pt for soups."""
    from fer_edge.classifier import ExpressionClassifier
    from fer_edge.train.checkpoint import model_from_checkpoint
    from fer_edge.train.evaluate import normalize, torch_probs

    fp32, int8 = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    for path, extra in ((fp32, []), (int8, ["--int8"])):
        result = runner.invoke(app, ["export", str(path), "--checkpoint", str(trained_run / "best.pt"), "--data", str(csv_data), "--tta", *extra])
        assert result.exit_code == 0, result.output
    faces = load_dataset(csv_data)["val"].x

    def flip_probs(ckpt_path: Path) -> np.ndarray:
        return torch_probs(model_from_checkpoint(torch.load(ckpt_path)), faces, torch.device("cpu"), tta=True)

    for path in (fp32, int8):
        out = tmp_path / f"{path.stem}.pt"
        read = runner.invoke(app, ["train", "from-onnx", str(out), str(path), "--data", str(csv_data)])
        assert read.exit_code == 0, read.output
        assert "a trainable fernet-t" in read.stdout
        onnx_probs = ExpressionClassifier.from_path(path, device="cpu").predict_probs(faces)
        # fp32: the same function to float precision; int8: the same weights, the activations not rounded
        np.testing.assert_allclose(flip_probs(out), onnx_probs, atol=1e-4 if path == fp32 else 0.05)
    rebuilt = torch.load(tmp_path / "fp32.pt")
    original = model_from_checkpoint(torch.load(trained_run / "best.pt"))
    # the BatchNorms came back with statistics measured on the training faces: train mode barely moves it
    model = model_from_checkpoint(rebuilt)
    train_x = normalize(torch.from_numpy(load_dataset(csv_data)["train"].x))
    with torch.no_grad():
        eval_out, original_out = model(train_x), original(train_x)
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.train()  # batch statistics, dropout still off
        train_out = model(train_x)
    torch.testing.assert_close(eval_out, original_out, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(train_out, eval_out, atol=1e-3, rtol=1e-3)

    # fer-edge train takes the .onnx itself; lr 0 leaves the rebuilt weights as they came
    fine = tmp_path / "fine"
    result = runner.invoke(app, train_args(csv_data, fine, "--epochs", "1", "--lr", "0", "--init", str(fp32)))
    assert result.exit_code == 0, result.output
    assert "rebuilt a trainable fernet-t from" in result.output
    after = torch.load(fine / "last.pt")["model"]
    assert all(torch.equal(rebuilt["model"][k], after[k]) for k in after if k.endswith(".weight"))

    # not one FerNet: one line each, nothing written
    ensemble = tmp_path / "two.onnx"
    two = runner.invoke(app, ["export", str(ensemble), "--checkpoint", str(trained_run / "best.pt"),
                              "--checkpoint", str(second_run(csv_data, tmp_path) / "best.pt"), "--data", str(csv_data)])
    assert two.exit_code == 0, two.output
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    for path, message in ((ensemble, "is not a FerNet"), (junk, "not an ONNX file")):
        refused = runner.invoke(app, ["train", "from-onnx", str(tmp_path / "x.pt"), str(path), "--data", str(csv_data)])
        assert refused.exit_code == 1
        err = refused.stderr
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.pt").exists()
    refused = runner.invoke(app, train_args(csv_data, tmp_path / "refused", "--init", str(ensemble)))
    assert refused.exit_code != 0 and "is not a FerNet" in refused.output and "Traceback" not in refused.output


def test_ensemble_of_different_data_is_refused(trained_run, tmp_path, csv_data):
    other_data = write_csv(tmp_path / "other.csv", seed=11)
    other = second_run(csv_data, tmp_path, data=other_data)
    out = tmp_path / "mixed.onnx"
    args = ["export", str(out), "--checkpoint", str(trained_run / "best.pt"), "--checkpoint", str(other / "best.pt")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "different data" in result.stderr and not out.exists()


def test_an_export_names_its_layers_and_from_onnx_reads_them_by_name(trained_run, tmp_path, csv_data, monkeypatch):
    """train/layer_map.py: the metadata maps each trained layer to the tensors that hold it (the first view's
    under flip TTA, int8 included), and `train from-onnx` reads them by name, not by their order in the graph."""
    import onnx

    from fer_edge.train import from_onnx
    from fer_edge.train.checkpoint import load_checkpoint

    path = tmp_path / "m.onnx"
    made = runner.invoke(app, ["export", str(path), "--checkpoint", str(trained_run / "best.pt"), "--data", str(csv_data),
                               "--int8", "--tta"])
    assert made.exit_code == 0, made.output
    model = onnx.load(str(path))
    layers = json.loads({p.key: p.value for p in model.metadata_props}["layers"])
    trained = [k.removesuffix(".weight") for k, v in load_checkpoint(trained_run / "best.pt")["model"].items()
               if k.endswith(".weight") and v.dim() in (2, 4)]
    assert list(layers) == ["members.0"] and sorted(layers["members.0"]) == sorted(trained)
    consumers = {n.input[1]: n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm")}
    for layer, (weight, _bias) in layers["members.0"].items():
        assert consumers[weight].split("/")[-2] in (layer, f"{layer}_1")  # the tensors the layer's own node reads

    def no_guessing(*_args, **_kwargs):
        raise AssertionError("from_onnx guessed the layers from their order")

    monkeypatch.setattr(from_onnx, "_weights", no_guessing)
    back = runner.invoke(app, ["train", "from-onnx", str(tmp_path / "back.pt"), str(path), "--data", str(csv_data)])
    assert back.exit_code == 0, back.output
