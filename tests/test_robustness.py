"""Robustness: the FER2013-C suite's corruptions, the trainer's corruption augmentation, and the bf16 CPU path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from fer_edge.train import corruptions as C

runner = CliRunner()


def faces(n: int = 16, seed: int = 0) -> np.ndarray:
    """Faces with edges (so blur and low resolution change them) on a mid-grey background."""
    rng = np.random.default_rng(seed)
    x = np.full((n, 48, 48), 120, np.uint8)
    for i in range(n):
        y0 = int(rng.integers(4, 30))
        x[i, y0 : y0 + 8, 6:42] = 230
        x[i, 10:38, 20:24] = 20
    return x


def high_freq(x: np.ndarray) -> float:
    return float((np.diff(x.astype(np.float32), axis=-1) ** 2).mean())  # edge energy: blur spreads and lowers it


@pytest.mark.parametrize("name", list(C.SUITE))
def test_every_suite_corruption_changes_faces_and_grows_with_severity(name):
    x = faces()
    dists = []
    for _label, fn in C.SUITE[name]:
        y = fn(x)
        assert y.shape == x.shape and y.dtype == np.uint8
        dists.append(float(np.abs(y.astype(np.float32) - x).mean()))
    assert dists[0] > 0.2, dists
    assert dists[0] <= dists[1] <= dists[2] + 1e-6, dists


def test_blur_and_low_res_remove_detail():
    x = faces()
    assert high_freq(C.blur(x, 1.5)) < 0.7 * high_freq(x)
    assert high_freq(C.down_up(x, 12)) < 0.7 * high_freq(x)
    assert C.gamma(x, 2.2).mean() < x.mean()  # dark
    assert C.contrast(x, 0.4).std() < 0.5 * x.std()


def test_run_suite_reports_clean_rows_and_drops():
    x, y = faces(14), np.arange(14) % 7

    def oracle_that_hates_blur(batch):  # right on the clean faces, wrong once anything smooths them
        right = np.array([np.array_equal(b, a) for a, b in zip(x, batch)])
        p = np.full((len(batch), 7), 0.01)
        p[np.arange(len(batch)), np.where(right, y, (y + 1) % 7)] = 0.94
        return p

    res = C.run_suite(oracle_that_hates_blur, x, y)
    assert res["clean"] == 1.0 and len(res["rows"]) == 3 * len(C.SUITE)
    drops = [100 * (1 - acc) for *_, acc in res["rows"]]
    assert res["mean_drop"] == pytest.approx(np.mean(drops)) and res["worst_drop"] == pytest.approx(max(drops))
    assert res["worst_drop"] == 100.0


torch = pytest.importorskip("torch", reason="the trainer needs the train extra (torch)")

from fer_edge.train import augment as A  # noqa: E402


def test_training_corruptions_each_apply_and_keep_range():
    x = torch.from_numpy(faces(32)).float().unsqueeze(1) / 255
    for kind in A.CORRUPTIONS:
        y = A.corrupt(x, 1.0, (kind,), torch.Generator().manual_seed(0))
        assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
        assert float((y - x).abs().mean()) > 0.005, kind
    blurred = A.corrupt(x, 1.0, ("blur",), torch.Generator().manual_seed(0))
    assert high_freq(blurred.numpy()) < 0.8 * high_freq(x.numpy())
    assert torch.equal(A.corrupt(x, 0.0, A.CORRUPTIONS), x)
    share = (A.corrupt(x.repeat(8, 1, 1, 1), 0.5, ("noise",), torch.Generator().manual_seed(1)) != x.repeat(8, 1, 1, 1))
    assert 0.3 < share.flatten(1).any(1).float().mean() < 0.7  # about half of the faces
    with pytest.raises(ValueError, match="unknown corruption"):
        A.corrupt(x, 0.5, ("fog",))


def test_training_low_res_reproduces_the_suites_sizes():
    # a strength u draws side 10 + floor(17 u); the suite's 12, 16 and 24 px must be among the sides trained on
    x = faces(8)
    t = torch.from_numpy(x).float().unsqueeze(1) / 255
    for px in (12, 16, 24):
        u = torch.full((len(x),), (px - 10 + 0.5) / 17)
        y = (A._low_res(t, u)[:, 0] * 255).numpy()
        assert np.abs(y - C.down_up(x, px).astype(np.float32)).max() < 1.5, px


def test_bf16_on_a_cpu_that_has_it_channels_last_everywhere_and_said_in_the_log():
    from fer_edge.train.device import fast_math

    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    mode = fast_math(torch.device("cpu"), True)
    assert mode.bf16 == native and mode.channels_last and mode.why.startswith("bf16 autocast") == native
    assert "channels_last" in mode.why
    assert tuple(fast_math(torch.device("cpu"), False)) == (False, False, "fp32 (--no-amp)")


def test_channels_last_fp32_validation_matches_plain_fp32():
    from fer_edge.train.evaluate import torch_probs
    from fer_edge.train.models import build_model

    torch.manual_seed(0)
    model = build_model("fernet-t2").eval()
    faces = np.random.default_rng(0).integers(0, 256, (64, 48, 48), dtype=np.uint8)
    plain = torch_probs(model, faces, torch.device("cpu"), bf16=False, channels_last=False)
    nhwc = torch_probs(model.to(memory_format=torch.channels_last), faces, torch.device("cpu"), bf16=False,
                       channels_last=True)
    assert np.abs(plain - nhwc).max() < 1e-5


def test_train_with_corruptions_through_the_cli(tmp_path, monkeypatch):
    from fer_edge.cli.app import app

    from synthetic import write_csv
    from helpers import train_args

    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    data = write_csv(tmp_path / "fer.csv")
    out = tmp_path / "run"
    result = runner.invoke(app, train_args(data, out, "--epochs", "1", "--corrupt", "0.7", "--corruptions",
                                           "blur,jpeg,low-res", "--rotate", "25", "--scale", "0.2"))
    assert result.exit_code == 0, result.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["corrupt"] == 0.7 and cfg["corruptions"] == ["blur", "jpeg", "low-res"] and cfg["rotate"] == 25
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert ("bf16 autocast + channels_last" in result.stderr) == native
    assert ("fp32 + channels_last (this CPU has no native bf16)" in result.stderr) == (not native)
    bad = runner.invoke(app, train_args(data, tmp_path / "r2", "--epochs", "1", "--corruptions", "fog"))
    assert bad.exit_code == 2 and "unknown 'fog'" in bad.stderr


def test_ece_and_temperature():
    from fer_edge.train.calibration import apply_temperature, ece, fit_temperature

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.5, (4000, 7))
    honest = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(7, p=p) for p in honest])  # labels drawn from the honest probabilities
    sharp = np.exp(3 * logits) / np.exp(3 * logits).sum(1, keepdims=True)  # the same model, overconfident
    t = fit_temperature(sharp, y)
    assert 2.3 < t < 3.7  # undoes the factor of 3
    assert ece(apply_temperature(sharp, t), y) < 0.5 * ece(sharp, y)
    np.testing.assert_allclose(apply_temperature(sharp, 1.0), sharp, atol=1e-9)


def test_export_bakes_a_temperature_that_lowers_the_ece(tmp_path, monkeypatch):
    import onnx

    from fer_edge.cli.app import app
    from fer_edge.classifier import ExpressionClassifier

    from synthetic import write_csv
    from helpers import train_tiny as _train_tiny

    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    data = write_csv(tmp_path / "fer.csv")
    run = _train_tiny(data, tmp_path / "run", epochs=3)
    plain, calibrated = tmp_path / "plain.onnx", tmp_path / "cal.onnx"
    assert runner.invoke(app, ["export", str(plain), "--checkpoint", str(run / "best.pt")]).exit_code == 0
    result = runner.invoke(app, ["export", str(calibrated), "--checkpoint", str(run / "best.pt"), "--calibrate", "--int8"])
    assert result.exit_code == 0, result.output
    assert "calibration on val: temperature" in result.stderr
    meta = {p.key: p.value for p in onnx.load(str(calibrated)).metadata_props}
    faces = np.random.default_rng(1).integers(0, 256, (64, 48, 48), dtype=np.uint8)
    probs = ExpressionClassifier.from_path(calibrated, device="cpu").predict_probs(faces)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)  # still real probabilities, through int8
    if "not applied" not in result.stderr:
        base = ExpressionClassifier.from_path(plain, device="cpu").predict_probs(faces)
        assert float(meta["temperature"]) != 1.0
        assert (base.argmax(1) == probs.argmax(1)).mean() > 0.9  # a temperature does not reorder the classes
    ev = runner.invoke(app, ["eval", str(calibrated), "--data", str(data)])
    assert ev.exit_code == 0 and "ECE" in ev.stdout


def test_an_old_int8_model_gets_an_fp32_head_and_a_temperature(tmp_path):
    """Exports before fp32 heads quantised the output too: the repair tool's head_to_fp32 mends them without
    checkpoints, and a temperature is a graph op on any exported file."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from helpers import make_tiny_model

    from fer_edge.classifier import ExpressionClassifier
    from fer_edge.export.repair import repair
    from fer_edge.export.rewrites import apply_temperature as temperature_op

    fp32 = make_tiny_model(tmp_path / "fp32.onnx", seed=3)
    faces = np.random.default_rng(0).integers(0, 256, (256, 48, 48), dtype=np.uint8)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"faces": faces[:64]}])

        def get_next(self):
            return next(self.batches, None)

    old = tmp_path / "old.onnx"  # everything quantised, the softmax's output included
    quantize_static(str(fp32), str(old), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Add", "Softmax"])
    p_old = ExpressionClassifier.from_path(old, device="cpu").predict_probs(faces)
    assert len(np.unique(p_old)) < 100  # on a uint8 grid: the bug
    fixed, pairs, _ = repair(onnx.load(str(old)))
    assert pairs >= 1
    onnx.save(fixed, str(tmp_path / "fixed.onnx"))
    p_fixed = ExpressionClassifier.from_path(tmp_path / "fixed.onnx", device="cpu").predict_probs(faces)
    np.testing.assert_allclose(p_fixed.sum(1), 1.0, atol=1e-5)
    assert len(np.unique(p_fixed)) > 4 * len(np.unique(p_old))  # off the grid
    onnx.save(temperature_op(fixed, 0.5), str(tmp_path / "hot.onnx"))
    p_hot = ExpressionClassifier.from_path(tmp_path / "hot.onnx", device="cpu").predict_probs(faces)
    from fer_edge.train.calibration import apply_temperature

    np.testing.assert_allclose(p_hot, apply_temperature(p_fixed, 0.5), atol=1e-5)
