"""What this installation is and what it runs on: versions, providers, the GPU, the shipped models, the model
and detector in use. `fer-edge info` prints it; `fer-edge serve` answers it at /v1/info."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import onnxruntime as ort

import fer_edge
from fer_edge import gpu, heif
from fer_edge.home import home
from fer_edge.classifier import ExpressionClassifier
from fer_edge.threads import plan as plan_threads


def shipped_models() -> dict:
    from fer_edge.recognizer import SHIPPED_MODELS, shipped_model_path

    shipped = {}
    for name in SHIPPED_MODELS:
        file = shipped_model_path(name)
        entry = {"file": str(file), "present": file.is_file()}
        if file.is_file():
            meta = ExpressionClassifier.from_path(file, device="cpu").info.metadata
            acc = meta.get("val_accuracy")
            entry.update(arch=meta.get("arch"), publictest_accuracy=float(acc) if acc else None,
                         accuracy_against=meta.get("val_labels") or "validation faces", bytes=file.stat().st_size)
        shipped[name] = entry
    return shipped


def gather(clf: ExpressionClassifier, model_path, det, threads: int = 0) -> dict:
    """The facts about a loaded classifier `clf` (from `model_path`) and detector `det`."""
    report = clf.providers
    budget = plan_threads(threads)
    return {
        "versions": {"fer-edge": fer_edge.__version__, "onnxruntime": ort.__version__, "opencv": cv2.__version__,
                     "numpy": np.__version__, "python": sys.version.split()[0],
                     "pillow-heif": heif.reader_version() or 'not installed: HEIC photos need pip install "fer-edge[heif]"'},
        "providers": {"requested": report.requested, "available": ort.get_available_providers(),
                      "tried": list(report.tried), "active": list(report.active), "runs_on": report.name,
                      "why_not": report.why_not or None, "summary": report.describe()},
        "gpu": gpu.facts(),
        "home": str(home()),
        "threads": {"cores": budget.cores, "onnxruntime": budget.onnxruntime, "opencv": budget.opencv,
                    "chosen_by": budget.chosen_by, "summary": budget.describe()},
        "shipped_models": shipped_models(),
        "model": {"path": str(model_path), "input": clf.info.input_name, "input_dtype": clf.info.input_dtype,
                  "metadata": clf.info.metadata},
        "detector": {"name": det.name, "model": str(det.model_path) if det.model_path else None, "why": det.why},
    }
