"""Flip TTA that reads the mirror only when unsure (export/flip_gate.py): a face the first pass is sure about
keeps the single pass's answer, an unsure one gets the full average's, whatever else shares its batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch", reason="exporting a checkpoint needs the train extra (torch)")

from fer_edge.cli.app import app  # noqa: E402

runner = CliRunner()


def _probs(path: Path, faces: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: faces})[0]


def _export(trained_run: Path, csv_data: Path, out: Path, *extra: str) -> Path:
    result = runner.invoke(app, ["export", str(out), "--checkpoint", str(trained_run / "best.pt"), "--data", str(csv_data), *extra])
    assert result.exit_code == 0, result.output
    return out


def test_the_mirror_is_read_only_for_unsure_faces(trained_run, tmp_path, csv_data):
    import onnx

    from fer_edge.export.flip_gate import flip_when_unsure
    from fer_edge.export.rewrites import apply_temperature

    faces = np.random.default_rng(0).integers(0, 256, (200, 48, 48), dtype=np.uint8)
    single = _export(trained_run, csv_data, tmp_path / "single.onnx")
    full = _export(trained_run, csv_data, tmp_path / "full.onnx", "--tta")
    p_single, p_full = _probs(single, faces), _probs(full, faces)
    below = float(np.median(p_single.max(1)))  # half the faces sure, half not
    gated = _export(trained_run, csv_data, tmp_path / "gated.onnx", "--tta", "--flip-below", f"{below}")
    meta = {p.key: p.value for p in onnx.load(str(gated)).metadata_props}
    assert meta["tta_flip_below"] == f"{below:g}" and meta["tta"] == "true"

    p_gated = _probs(gated, faces)
    sure = p_single.max(1) >= np.float32(f"{below:g}")
    assert 0 < sure.sum() < len(faces)
    np.testing.assert_allclose(p_gated[sure], p_single[sure], atol=1e-6)
    np.testing.assert_allclose(p_gated[~sure], p_full[~sure], atol=1e-6)
    assert not np.allclose(p_single[~sure], p_full[~sure], atol=1e-4)  # the mirror does change those answers
    # a face's answer does not depend on its batch: alone, in any order, or in a batch with no unsure face
    order = np.random.default_rng(1).permutation(len(faces))
    np.testing.assert_allclose(_probs(gated, faces[order]), p_gated[order], atol=1e-6)
    for i in (int(np.argmax(sure)), int(np.argmin(sure))):
        np.testing.assert_allclose(_probs(gated, faces[i:i + 1]), p_gated[i:i + 1], atol=1e-6)
    np.testing.assert_allclose(_probs(gated, faces[sure]), p_single[sure], atol=1e-6)
    assert _probs(gated, faces[:0]).shape == (0, 7)

    # with a temperature after the average (as export --calibrate writes it): the gate reads the first pass's own
    # probabilities, and the temperature then softens whichever answer each face got
    warm_full, warm_single = (apply_temperature(onnx.load(str(p)), 0.5) for p in (full, single))
    onnx.save(flip_when_unsure(warm_full, below), str(tmp_path / "warm-gated.onnx"))
    onnx.save(warm_single, str(tmp_path / "warm-single.onnx"))
    onnx.save(apply_temperature(onnx.load(str(full)), 0.5), str(tmp_path / "warm-full.onnx"))
    p_warm = _probs(tmp_path / "warm-gated.onnx", faces)
    np.testing.assert_allclose(p_warm[sure], _probs(tmp_path / "warm-single.onnx", faces)[sure], atol=1e-5)
    np.testing.assert_allclose(p_warm[~sure], _probs(tmp_path / "warm-full.onnx", faces)[~sure], atol=1e-5)


def test_the_repair_tool_gates_an_exported_file_and_refuses_a_model_without_tta(trained_run, tmp_path, csv_data):
    from fer_edge.export.repair import main as repair_main

    faces = np.random.default_rng(2).integers(0, 256, (64, 48, 48), dtype=np.uint8)
    full = _export(trained_run, csv_data, tmp_path / "full.onnx", "--tta", "--int8")
    gated = _export(trained_run, csv_data, tmp_path / "gated.onnx", "--tta", "--int8", "--flip-below", "0.3")
    repair_main([str(full), str(tmp_path / "repaired.onnx"), "--flip-below", "0.3"])
    np.testing.assert_array_equal(_probs(tmp_path / "repaired.onnx", faces), _probs(gated, faces))

    single = _export(trained_run, csv_data, tmp_path / "single.onnx")
    with pytest.raises(SystemExit, match=r"^error: .*single.onnx: --flip-below needs a flip-TTA model"):
        repair_main([str(single), str(tmp_path / "x.onnx"), "--flip-below", "0.7"])
    assert not (tmp_path / "x.onnx").exists()


def test_flip_below_without_tta_is_a_one_line_error(trained_run, tmp_path, csv_data):
    for extra, said in ((["--flip-below", "0.7"], "--flip-below gates flip TTA: add --tta"),
                        (["--tta", "--flip-below", "1.5"], "1.5")):
        result = runner.invoke(app, ["export", str(tmp_path / "m.onnx"), "--checkpoint", str(trained_run / "best.pt"),
                                     "--data", str(csv_data), *extra])
        assert result.exit_code == 2 and said in result.output and "Traceback" not in result.output
        assert not (tmp_path / "m.onnx").exists()
