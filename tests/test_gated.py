"""The low-resolution specialist and the gated export: a generalist for sharp faces, a specialist for faces with
little fine detail, one graph. Tiny synthetic data only."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch", reason="the model factory needs the train extra (torch)")

import torch  # noqa: E402
from helpers import REPO, detail_numpy  # noqa: E402
from synthetic import write_csv  # noqa: E402
from helpers import train_tiny as _train_tiny  # noqa: E402

from fer_edge.cli.app import app  # noqa: E402
from fer_edge.train.data import load_dataset  # noqa: E402

runner = CliRunner()


@pytest.fixture
def two_runs(tmp_path, monkeypatch) -> tuple[Path, Path, Path]:
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    data = write_csv(tmp_path / "fer.csv")
    return data, _train_tiny(data, tmp_path / "gen") / "best.pt", _train_tiny(data, tmp_path / "spec", epochs=2, seed=5) / "best.pt"


def sharp_and_blurred(n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    sharp = rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)
    sharp[:, 10:20, 8:40] = 250  # a bar, so that a blurred face keeps some contrast
    return sharp, np.stack([cv2.GaussianBlur(f, (0, 0), 3.0, borderType=cv2.BORDER_REPLICATE) for f in sharp])


def test_a_gated_graph_keeps_sharp_faces_exact_and_blends_blurred_ones(two_runs, tmp_path, monkeypatch):
    import onnx

    from fer_edge.classifier import ExpressionClassifier
    from fer_edge.export import gated

    data, gen, spec = two_runs
    # a fixed gate (the fit on 42 synthetic faces could give the specialist nothing, and test nothing)
    monkeypatch.setattr(gated, "fit_gate", lambda *a, **k: gated.Gate((-1.0, -1.0), -4.0, 0.8))
    paths = {name: tmp_path / f"{name}.onnx" for name in ("gen", "spec", "gated", "gated8", "both_tta", "both_flip")}
    both = ["--checkpoint", str(gen), "--tta", "--specialist", str(spec), "--specialist-tta"]
    for name, args in {"gen": ["--checkpoint", str(gen), "--tta"], "spec": ["--checkpoint", str(spec)],
                       "gated": ["--checkpoint", str(gen), "--tta", "--specialist", str(spec)],
                       "gated8": ["--checkpoint", str(gen), "--tta", "--specialist", str(spec), "--int8"],
                       "both_tta": both, "both_flip": [*both, "--flip-below", "1.0"]}.items():
        result = runner.invoke(app, ["export", str(paths[name]), "--data", str(data), *args])
        assert result.exit_code == 0, result.output
    assert "gated: fernet-t for sharp faces" in result.stderr

    meta = {p.key: p.value for p in onnx.load(str(paths["gated"])).metadata_props}
    assert meta["arch"] == "gated: fernet-t, fernet-t specialist"
    assert json.loads(meta["gate"])["w"] == [-1.0, -1.0] and json.loads(meta["specialist"])["tta"] is False
    probs = {k: ExpressionClassifier.from_path(p, device="cpu").predict_probs for k, p in paths.items()}

    sharp, blurred = sharp_and_blurred()
    d = detail_numpy(np.concatenate([sharp, blurred]))
    share = 0.8 / (1 + np.exp(-(d @ np.array([-1.0, -1.0]) - 4.0)))
    assert (share[:6] < gated.MIN_SHARE).all() and (share[6:] > 0.5).all(), share  # the faces test both paths
    # sharp faces never reach the specialist: the generalist's answer, exactly
    np.testing.assert_allclose(probs["gated"](sharp), probs["gen"](sharp), atol=1e-6)
    # blurred faces: (1 - g) * generalist + g * specialist, g from the measure recomputed in numpy
    g = share[6:, None]
    expected = (1 - g) * probs["gen"](blurred) + g * probs["spec"](blurred)
    assert not np.allclose(probs["gen"](blurred), probs["spec"](blurred), atol=1e-3)  # two different nets
    np.testing.assert_allclose(probs["gated"](blurred), expected, atol=1e-5)
    # a mixed batch gives each face its own path; rows are probabilities
    mixed = probs["gated"](np.concatenate([blurred[:3], sharp, blurred[3:]]))
    np.testing.assert_allclose(mixed, np.concatenate([expected[:3], probs["gen"](sharp), expected[3:]]), atol=1e-5)
    np.testing.assert_allclose(mixed.sum(1), 1.0, atol=1e-5)

    # int8: the specialist is quantised too (its convs read int8 weights), and an all-sharp batch, which hands the
    # specialist no face at all, runs
    q = onnx.load(str(paths["gated8"]))
    int8_weights = {i.name for i in q.graph.initializer if i.data_type == onnx.TensorProto.INT8}
    dq = {n.output[0]: n.input[0] for n in q.graph.node if n.op_type == "DequantizeLinear"}
    spec_convs = [n for n in q.graph.node if n.op_type == "Conv" and n.name.startswith("/specialist/")]
    assert len(spec_convs) == 7 and sum(dq.get(n.input[1]) in int8_weights for n in spec_convs) == 6  # all but the first
    for x in (sharp, blurred, sharp[:1]):
        p = probs["gated8"](x)
        assert p.shape == (len(x), 7) and np.allclose(p.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs["gated8"](blurred), expected, atol=0.05)

    # both nets' flip averages gated on their own first pass (export/flip_gate.py): below 1.0 every face is
    # unsure, so each reads its mirror and the answers are the full averages'
    scatters = [n.name for n in onnx.load(str(paths["both_flip"])).graph.node if n.op_type == "ScatterND"]
    assert sorted(scatters) == ["/flip_gate_0/ScatterND", "/flip_gate_1/ScatterND"]
    faces = np.concatenate([blurred[:3], sharp, blurred[3:]])
    np.testing.assert_allclose(probs["both_flip"](faces), probs["both_tta"](faces), atol=1e-5)


def test_each_net_of_a_gated_graph_reads_back(two_runs, tmp_path, monkeypatch, capsys):
    from fer_edge.export import gated
    from fer_edge.train.checkpoint import load_checkpoint, model_from_checkpoint
    from fer_edge.train.evaluate import torch_probs

    data, gen, spec = two_runs
    monkeypatch.setattr(gated, "fit_gate", lambda *a, **k: gated.Gate((-1.0, -1.0), -4.0, 0.8))
    path = tmp_path / "gated.onnx"
    result = runner.invoke(app, ["export", str(path), "--data", str(data), "--checkpoint", str(gen), "--tta", "--specialist", str(spec)])
    assert result.exit_code == 0, result.output
    faces = load_dataset(data)["val"].x
    for member, original in (("generalist", gen), ("specialist", spec)):
        out = tmp_path / f"{member}.pt"
        assert runner.invoke(app, ["train", "from-onnx", str(out), str(path), "--data", str(data), "--member", member]).exit_code == 0
        rebuilt = torch_probs(model_from_checkpoint(torch.load(out)), faces, torch.device("cpu"))
        ref = torch_probs(model_from_checkpoint(load_checkpoint(original)), faces, torch.device("cpu"))
        np.testing.assert_allclose(rebuilt, ref, atol=1e-4)
    # one generalist only
    two = runner.invoke(app, ["export", str(tmp_path / "x.onnx"), "--data", str(data), "--checkpoint", str(gen),
                              "--checkpoint", str(spec), "--specialist", str(spec)])
    assert two.exit_code == 2 and "one generalist" in two.stderr and "Traceback" not in two.output
    # a specialist the fit gives (almost) nothing to is refused, not shipped as dead weight
    monkeypatch.setattr(gated, "fit_gate", lambda *a, **k: gated.Gate((-1.0, -1.0), -4.0, 0.01))
    useless = runner.invoke(app, ["export", str(tmp_path / "y.onnx"), "--data", str(data), "--checkpoint", str(gen),
                                  "--specialist", str(spec)])
    assert useless.exit_code == 1 and "does not help" in useless.stderr and not (tmp_path / "y.onnx").exists()


def test_the_gate_fit_routes_faces_to_the_net_that_reads_them():
    """Labels that only the generalist gets right on sharp faces and only the specialist on blurred ones: the
    fitted gate sends blurred faces to the specialist and keeps sharp ones away from it."""
    from torch import nn

    from fer_edge.export.gated import MIN_SHARE, detail, fit_gate

    class Always(nn.Module):
        def __init__(self, c: int):
            super().__init__()
            self.c = c

        def forward(self, x):
            return torch.nn.functional.one_hot(torch.full((len(x),), self.c), 7).float() * 4

    sharp, blurred = sharp_and_blurred(40)
    x = np.concatenate([sharp, blurred])
    y = np.array([0] * 40 + [1] * 40)
    gate = fit_gate(Always(0), Always(1), x, y, tta=True, specialist_tta=False, log=lambda *_: None)
    with torch.no_grad():
        g = gate(torch.from_numpy(x)).numpy()
    assert (g[:40] < MIN_SHARE).all() and (g[40:] > 0.8).all(), g
    # the measure ignores contrast and brightness: a face at a third of its contrast, brighter, measures the same
    faint = (sharp.astype(np.float32) / 3 + 120).round()
    np.testing.assert_allclose(detail(torch.from_numpy(faint).unsqueeze(1) / 255)[:, 0],
                               detail(torch.from_numpy(sharp).float().unsqueeze(1) / 255)[:, 0], atol=0.05)


def test_the_specialist_trains_on_what_the_suite_and_the_crop_step_do_to_small_faces(tmp_path, monkeypatch):
    from fer_edge.train import specialist
    from fer_edge.train.checkpoint import load_checkpoint
    from fer_edge.train.corruptions import down_up

    faces = np.stack(sharp_and_blurred(8)[0])
    x = torch.from_numpy(faces).float().unsqueeze(1) / 255
    torch_small = specialist.degrade(x, (12, 12), 0.0, torch.Generator().manual_seed(0))
    opencv_small = down_up(faces, 12).astype(np.float32) / 255
    assert np.abs(torch_small[:, 0].numpy() - opencv_small).max() < 2.5 / 255  # the same down-up, to rounding
    blurred = specialist.degrade(x, (12, 12), 1.0, torch.Generator().manual_seed(0))
    assert not torch.allclose(blurred, torch_small) and blurred.shape == x.shape
    # its blur is the suite's OpenCV blur, one sigma per face, to a grey level or two on the noisiest faces
    from fer_edge.train.augment import gaussian_blur
    from fer_edge.train.corruptions import blur

    noisy = np.random.default_rng(0).integers(0, 256, (4, 48, 48)).astype(np.uint8)
    sigmas = torch.tensor([1.5, 2.2, 2.5, 3.0])
    ours = gaussian_blur(torch.from_numpy(noisy).float().unsqueeze(1), sigmas, opencv_width=True)[:, 0].round().numpy()
    for face, sigma, mine in zip(noisy, sigmas.tolist(), ours):
        assert np.abs(blur(face[None], sigma)[0].astype(np.float32) - mine).max() <= 2
    from fer_edge.errors import UsageError

    for wrong in ("2-60", "ten", "16-12"):
        with pytest.raises(UsageError, match="between 4 and 48"):
            specialist.parse_px(wrong)
    assert specialist.parse_px("10-16") == (10, 16) and specialist.parse_px("12") == (12, 12)

    # a whole run on the synthetic faces, taught by the shipped default: it writes a checkpoint of the start's arch
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    data = write_csv(tmp_path / "fer.csv")
    start = _train_tiny(data, tmp_path / "gen", epochs=1) / "best.pt"
    out = tmp_path / "spec"
    teacher = str(REPO / "fer_edge" / "assets" / "fer-edge.onnx")
    made = runner.invoke(app, ["train", "specialist", str(out), str(start), "--data", str(data), "--minutes", "0.02",
                               "--teacher", teacher, "--threads", "1", "--batch", "32"])
    assert made.exit_code == 0, made.output
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["config"]["arch"] == "fernet-t" and ckpt["epoch"] >= 0 and 0 <= ckpt["best_acc"] <= 1
    assert ckpt["config"]["specialist"]["px"] == [10, 16]
    config = json.loads((out / "config.json").read_text())
    assert config["px"] == "10-16" and config["batch_size"] == 32 and config["teacher"] == teacher
    epochs = (out / "metrics.csv").read_text().count("\n") - 1
    assert epochs >= 1 and "12 px" in (out / "metrics.csv").read_text().splitlines()[0]

    # it resumes: the same recipe, more time; a second start into the same folder is refused
    again = runner.invoke(app, ["train", "specialist", str(out), str(start), "--data", str(data)])
    assert again.exit_code == 1 and "--resume" in again.stderr
    resumed = runner.invoke(app, ["train", "specialist", str(out), str(start), "--resume", "--threads", "1"])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming" in resumed.output
    assert load_checkpoint(out / "last.pt")["run_config"]["px"] == "10-16"

    # taught by a checkpoint instead: it labels each augmented face clean, batch by batch; a config file works too
    (tmp_path / "spec.json").write_text(json.dumps({"px": "12", "minutes": 0.02, "batch_size": 32, "threads": 1}))
    made = runner.invoke(app, ["train", "specialist", str(tmp_path / "spec2"), str(start), "--data", str(data),
                               "--teacher", str(start), "--device", "cpu", "--config", str(tmp_path / "spec.json")])
    assert made.exit_code == 0, made.output
    ckpt = load_checkpoint(tmp_path / "spec2" / "last.pt")
    assert ckpt["config"]["specialist"]["teacher"] == "best.pt" and ckpt["config"]["specialist"]["px"] == [12, 12]


def test_the_low_resolution_ceiling_benchmark_runs_the_same_loop(tmp_path, monkeypatch, capsys):
    import runpy

    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    data = write_csv(tmp_path / "fer.csv")
    start = _train_tiny(data, tmp_path / "gen", epochs=1) / "best.pt"
    saved = tmp_path / "ceiling"
    monkeypatch.setattr("sys.argv", ["low_res_ceiling.py", str(start), "--data", str(data), "--px", "12", "--minutes", "0.02",
                                     "--teacher", str(REPO / "fer_edge" / "assets" / "fer-edge.onnx"), "--threads", "1",
                                     "--batch", "32", "--out", str(saved)])
    runpy.run_path(str(REPO / "benchmarks" / "low_res_ceiling.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "start: clean" in out and "12 px: best" in out and "epoch 1" in out
    assert (saved / "best.pt").is_file() and (saved / "metrics.csv").is_file()


def test_the_gate_threshold_benchmark_prints_accuracy_and_routing(two_runs, tmp_path, monkeypatch):
    import subprocess
    import sys

    from fer_edge.export import gated

    data, gen, spec = two_runs
    monkeypatch.setattr(gated, "fit_gate", lambda *a, **k: gated.Gate((-1.0, -1.0), -4.0, 0.8))
    path = tmp_path / "gated.onnx"
    result = runner.invoke(app, ["export", str(path), "--data", str(data), "--checkpoint", str(gen), "--tta",
                                 "--specialist", str(spec), "--specialist-tta"])
    assert result.exit_code == 0, result.output
    proc = subprocess.run([sys.executable, "benchmarks/gate_threshold.py", str(path), str(gen), str(spec), "--data", str(data),
                           "--thresholds", "0.1,0.9", "--threads", "1"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "generalist alone" in proc.stdout and "low-res 12 px" in proc.stdout
    # nothing reaches a share of 0.9 (g_max is 0.8): that row routes 0% everywhere
    row = next(line for line in proc.stdout.splitlines() if line.strip("│ ").startswith("0.9"))
    assert row.count("(0%)") == 13, row
