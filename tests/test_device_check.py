"""benchmarks/device_check.sh, run here on the CPU with its knobs turned down: every step must pass, so the
one call a lent GPU gets is not spent on a broken script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("torch", reason="the device check trains: it needs the train extra (torch)")


@pytest.mark.skipif(shutil.which("fer-edge") is None, reason="needs the fer-edge command installed (pip install -e .)")
def test_device_check_script_runs_every_step_on_the_cpu(tmp_path):
    env = {**os.environ, "CHECK_DEVICE": "cpu", "CHECK_SKIP": "install tests", "CHECK_FRAMES": "12",
           "CHECK_SECONDS": "0.1", "CHECK_SYNTH": "20", "OUT": str(tmp_path), "FER_EDGE_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("\t") for line in (tmp_path / "summary.tsv").read_text().splitlines()[1:]]
    steps = {r[0].split(" (")[0]: r for r in rows}
    assert set(steps) == {"install", "info", "tests", "classify", "webcam", "classifier speed", "train"}, steps
    for name, row in steps.items():
        assert row[1] in ("ok", "skipped"), row
    assert "CPU" in steps["info"][3] and "FPS, CPU" in steps["webcam"][3] and "epoch 2/2" in steps["train"][3]
    assert "batch 256 faces/s" in done.stdout  # the speed table


def test_fast_student_recipe_trains_exports_and_scores_each_run_on_the_cpu(tmp_path):
    """train/recipes/fast_student.sh (the GPU job for the fast model's gap) with one-epoch budgets on synthetic
    faces, through `python -m fer_edge` as the device job calls it: the teacher is read back from the shipped
    default, every run trains with it and its mirror, and every best.pt comes out as an int8 contract model."""
    import sys

    import onnx
    from synthetic import write_csv

    data = write_csv(tmp_path / "fer.csv", per_split=(("Training", 20), ("PublicTest", 8)))
    runs = tmp_path / "runs"
    env = {**os.environ, "FE": f"{sys.executable} -m fer_edge", "PY": sys.executable, "EPOCHS": "1", "THREADS": "1",
           "FER_EDGE_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(["bash", str(ROOT / "train" / "recipes" / "fast_student.sh"), str(data), str(runs), "0.05"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    assert (runs / "teacher.pt").is_file()
    for name in ("scratch-a", "scratch-b", "finetune"):
        assert f"{name}: int8: val acc" in done.stdout, done.stdout
        config = json.loads((runs / name / "config.json").read_text())
        assert config["arch"] == "fernet-t2g" and config["teachers"] == [str(runs / "teacher.pt")] and config["teacher_tta"]
        assert config["init"] == (str(ROOT / "assets" / "fer-edge-fast.onnx") if name == "finetune" else "")
        meta = {p.key: p.value for p in onnx.load(str(runs / f"{name}.onnx")).metadata_props}
        assert meta["arch"] == "fernet-t2g" and "moving-average activation ranges" in meta["quantization"], meta
