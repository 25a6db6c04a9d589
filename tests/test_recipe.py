"""The recipe that makes the shipped models (train/recipes/default.sh), run whole on tiny synthetic data with
budgets of seconds: every stage runs, the files it writes have the shipped files' structure, and a second
run skips what is done."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

pytest.importorskip("torch", reason="the recipe needs the train extra (torch)")

from helpers import REPO, astronaut_face  # noqa: E402
from synthetic import write_csv  # noqa: E402
from test_real_faces import write_votes  # noqa: E402

from fer_edge.classifier import ExpressionClassifier  # noqa: E402
from fer_edge.contract import LABELS  # noqa: E402

RECIPE = REPO / "train" / "recipes" / "default.sh"


def recipe_data(root: Path, astronaut: np.ndarray) -> Path:
    """fer2013.csv.gz, ferplus_votes.csv.gz and taiwanese/<class>/NN_*.jpg (three performers), all synthetic."""
    root.mkdir()
    plain = write_csv(root / "fer2013.csv", per_split=(("Training", 10), ("PublicTest", 4)))
    votes = write_votes(root / "votes.csv", plain)
    for src, dst in ((plain, "fer2013.csv.gz"), (votes, "ferplus_votes.csv.gz")):
        with gzip.open(root / dst, "wb") as f:
            f.write(src.read_bytes())
        src.unlink()
    face = cv2.resize(astronaut_face(astronaut), (150, 150))
    for c, name in enumerate(LABELS):
        (root / "taiwanese" / name).mkdir(parents=True)
        for performer in ("01", "02", "03"):
            photo = np.full((240, 240, 3), 110, np.uint8)
            photo[45:195, 45:195] = np.roll(face, 3 * c, axis=1)
            cv2.imwrite(str(root / "taiwanese" / name / f"{performer}_{name}.jpg"), photo)
    return root


def run_recipe(data: Path, runs: Path, tmp: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, START="scratch", MIN_BASE="0.1", MIN_DEFAULT="0.05", MIN_SPEC="0.05", MIN_FAST="0.05",
               THREADS="1", DEVICE="cpu", YUNET="none", FE=f"{sys.executable} -m fer_edge", PY=sys.executable,
               FER_EDGE_CACHE=str(tmp / "cache"))
    return subprocess.run(["bash", str(RECIPE), str(data), str(runs)], env=env, capture_output=True, text=True,
                          timeout=600)


def test_the_recipe_makes_both_models_from_the_data_and_resumes(tmp_path, astronaut):
    data = recipe_data(tmp_path / "data", astronaut)
    runs = tmp_path / "runs"
    first = run_recipe(data, runs, tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    shipped = {p.key for p in onnx.load(str(REPO / "assets" / "fer-edge-fast.onnx")).metadata_props}
    for name in ("fer-edge.onnx", "fer-edge-fast.onnx"):
        made = onnx.load(str(runs / name))
        keys = {p.key for p in made.metadata_props}
        assert shipped - {"soup", "val_accuracy_checkpoint"} <= keys, shipped - keys
        assert [i.name for i in made.graph.input] == ["faces"] and len(made.graph.output) == 1
        clf = ExpressionClassifier.from_path(runs / name, device="cpu")  # the runtime takes it as it takes the shipped files
        assert clf.predict_probs(np.zeros((2, 48, 48), np.uint8)).shape == (2, 7)
    default_meta = {p.key: p.value for p in onnx.load(str(runs / "fer-edge.onnx")).metadata_props}
    assert default_meta["tta"] == "true" and default_meta["tta_flip_below"] == "0.7" and "int8" in default_meta["quantization"]
    assert ("gate" in default_meta) == default_meta["arch"].startswith("gated"), default_meta["arch"]
    assert "the generalist ships alone" in first.stdout or "gate" in default_meta

    report = json.loads((runs / "recipe.json").read_text())
    stages = [s["stage"] for s in report["stages"]]
    assert stages == ["crop the performers (haar)", "train the base generalist", "fine-tune the default on real faces",
                      "train the low-resolution specialist", "train the fast model", "export the default",
                      "export the fast model"]
    assert set(report["runs"]) == {"base", "default", "fast"}
    for model in ("default", "fast"):
        figures = report["models"][model]["figures"]
        assert set(figures) == {"fer2013 held-out, FER+ majority", "fer2013 held-out, FER2013 labels", "tw-haar held-out"}
        assert all(0 <= f["accuracy"] <= 1 and len(f["recall"]) == 7 for f in figures.values())
    assert "fer2013 held-out, FER+ majority" in first.stdout

    before = (runs / "fer-edge.onnx").stat().st_mtime_ns
    again = run_recipe(data, runs, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("exists, skipped") == 7 and (runs / "fer-edge.onnx").stat().st_mtime_ns == before


def test_the_recipe_says_what_it_needs(tmp_path):
    result = subprocess.run(["bash", str(RECIPE), str(tmp_path), str(tmp_path / "runs")], capture_output=True, text=True)
    assert result.returncode == 2 and "fer2013.csv.gz: not found" in result.stderr
    usage = subprocess.run(["bash", str(RECIPE)], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage: train/recipes/default.sh DATA RUNS" in usage.stdout
