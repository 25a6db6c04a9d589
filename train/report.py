"""Evaluation report: accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix.

Pure numpy and OpenCV, so an .onnx model can be evaluated without touching torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_edge.contract import LABELS


@dataclass
class Report:
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]  # rows: true class, columns: prediction, FER2013 order
    samples: int
    split: str = ""
    model: str = ""
    tta: bool = False
    ece: float | None = None  # expected calibration error of the top label (15 bins), when probabilities were given
    no_face: list[int] | None = None  # end to end: photos per class where the detector found no face (counted wrong)
    answers: dict[str, int] | None = None  # how often each class was answered, most first

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def text(self) -> str:
        """Like sklearn's classification_report."""
        lines = [f"{'':>10} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}", ""]
        for name in LABELS:
            c = self.per_class[name]
            lines.append(f"{name:>10} {c['precision']:9.4f} {c['recall']:9.4f} {c['f1']:9.4f} {c['support']:9d}")
        lines += [
            "",
            f"{'accuracy':>10} {'':9} {'':9} {self.accuracy:9.4f} {self.samples:9d}",
            f"{'macro avg':>10} {'':9} {'':9} {self.macro_f1:9.4f} {self.samples:9d}",
        ]
        if self.ece is not None:
            lines.append(f"{'ECE':>10} {'':9} {'':9} {self.ece:9.4f}   (expected calibration error, 15 bins)")
        if self.no_face is not None:
            lines.append(f"{'no face':>10} {'':9} {'':9} {'':9} {sum(self.no_face):9d}   (counted wrong: "
                         + ", ".join(f"{LABELS[i]} {n}" for i, n in enumerate(self.no_face) if n) + ")")
        if self.answers:
            lines.append(f"{'answers':>10} " + ", ".join(f"{k} {v}" for k, v in self.answers.items()))
        return "\n".join(lines)


def make_report(y_true: np.ndarray, y_pred: np.ndarray, missed: np.ndarray | None = None, **meta) -> Report:
    """`missed`: the true labels of photos in which no face was found (end to end): each counts as a wrong
    answer in the accuracy and its class's recall, and stays out of the confusion matrix."""
    k = len(LABELS)
    cm = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
    no_face = np.bincount(np.asarray(missed if missed is not None else [], np.int64), minlength=k)
    tp = np.diag(cm).astype(float)
    support = cm.sum(1) + no_face
    predicted = cm.sum(0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
        for i, name in enumerate(LABELS)
    }
    present = support > 0
    answered = sorted(((LABELS[i], int(c)) for i, c in enumerate(predicted)), key=lambda t: -t[1])
    return Report(
        accuracy=float(tp.sum() / max(support.sum(), 1)),
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        per_class=per_class,
        confusion=cm.tolist(),
        samples=int(support.sum()),
        no_face=no_face.tolist() if missed is not None else None,
        answers=dict(answered),
        **meta,
    )


def write_confusion_csv(report: Report, path: Path) -> None:
    rows = ["true\\pred," + ",".join(LABELS)]
    rows += [f"{name}," + ",".join(str(v) for v in report.confusion[i]) for i, name in enumerate(LABELS)]
    path.write_text("\n".join(rows) + "\n")


def draw_confusion(report: Report, cell: int = 64) -> np.ndarray:
    """Row-normalised confusion matrix as a BGR image, counts and percentages in each cell."""
    cm = np.asarray(report.confusion, dtype=float)
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    k = len(LABELS)
    left, top = 90, 70
    img = np.full((top + k * cell + 40, left + k * cell + 10, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i in range(k):
        for j in range(k):
            shade = int(255 - 200 * rates[i, j])
            x0, y0 = left + j * cell, top + i * cell
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), (255, shade, shade), -1)
            color = (255, 255, 255) if rates[i, j] > 0.5 else (0, 0, 0)
            cv2.putText(img, f"{100 * rates[i, j]:.0f}%", (x0 + 8, y0 + 28), font, 0.5, color, 1, cv2.LINE_AA)
            cv2.putText(img, f"{int(cm[i, j])}", (x0 + 8, y0 + 48), font, 0.4, color, 1, cv2.LINE_AA)
        cv2.putText(img, LABELS[i], (5, top + i * cell + 36), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, LABELS[i][:7], (left + i * cell + 4, top - 10), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    title = f"acc {100 * report.accuracy:.2f}%  macro-F1 {100 * report.macro_f1:.2f}%  n={report.samples}"
    cv2.putText(img, title, (left, 25), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "rows: true, columns: predicted", (left, img.shape[0] - 12), font, 0.4, (80, 80, 80), 1, cv2.LINE_AA)
    return img


def write_report(report: Report, out_dir: Path, stem: str) -> dict[str, Path]:
    """Write <stem>.json, <stem>_confusion.csv and <stem>_confusion.png into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / f"{stem}.json",
        "csv": out_dir / f"{stem}_confusion.csv",
        "png": out_dir / f"{stem}_confusion.png",
    }
    paths["json"].write_text(report.to_json())
    write_confusion_csv(report, paths["csv"])
    cv2.imwrite(str(paths["png"]), draw_confusion(report))
    return paths
