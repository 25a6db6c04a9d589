"""Recognizer: detect -> crop -> classify, for one image at a time. The CLI and the realtime loop use it."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from fer_edge import registry
from fer_edge.classifier import ExpressionClassifier, to_prediction
from fer_edge.contract import INPUT_SIZE, LABELS
from fer_edge.crop import crop_faces, level_tilts
from fer_edge.detect import Detection, make_detector
from fer_edge.errors import FerEdgeError, UsageError
from fer_edge.threads import apply as apply_thread_budget

# Models shipped inside the package, by the name `--model` accepts (registry.py; assets/MODEL_CARD.md)
SHIPPED_MODELS = {name: m.file for name, m in registry.classifiers().items()}


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in the image's pixels
    det_score: float  # detector score; 1.0 for a whole-image crop that skipped detection
    label: str
    confidence: float
    probs: tuple[float, ...]  # in LABELS order

    def as_dict(self) -> dict:
        return {
            "box": list(self.box),
            "det_score": self.det_score,
            "label": self.label,
            "confidence": self.confidence,
            "probs": dict(zip(LABELS, self.probs)),
        }


def shipped_model_path(name: str = "default") -> Path:
    """A shipped model, found the same way in an editable and a regular install."""
    return Path(str(resources.files("fer_edge.assets").joinpath(SHIPPED_MODELS[name])))


def default_model_path() -> Path:
    return shipped_model_path("default")


def resolve_model(model: str | Path | None) -> Path:
    """A path as given, or a shipped model by name (a file of that name, if one exists, wins)."""
    if model is not None and (str(model) not in SHIPPED_MODELS or Path(model).exists()):
        path = Path(model)
        if path.suffix.lower() in (".pt", ".pth", ".ckpt"):
            raise UsageError(f"{path}: a training checkpoint, not a runtime model; turn it into one with "
                             f"`fer-edge export model.onnx --checkpoint {path}`")
        if not path.exists() and path.suffix == "" and "/" not in str(model):
            raise UsageError(f"unknown model {str(model)!r}: use a shipped model ({', '.join(SHIPPED_MODELS)}) or an .onnx file")
        return path
    name = "default" if model is None else str(model)
    path = shipped_model_path(name)
    if not path.is_file():
        raise FerEdgeError(f"the shipped model {name!r} is missing at {path}; reinstall fer-edge")
    return path


def is_face_crop(image: np.ndarray) -> bool:
    """Already a FER-style face: classify it whole instead of looking for a face inside it."""
    return image.shape[0] == INPUT_SIZE and image.shape[1] == INPUT_SIZE


@dataclass
class RecognizerOptions:
    """What a Recognizer is made of, as the commands take it (their --model, --detector, ... options)."""

    model: str | Path | None = None
    detector: str = "auto"
    detector_model: str | Path | None = None
    device: str = "auto"
    threads: int = 0
    detect_size: int = 640
    min_face: int = 0


class Recognizer:
    @classmethod
    def from_options(cls, o: RecognizerOptions) -> "Recognizer":
        return cls(o.model, o.detector, o.detector_model, o.device, o.threads, detect_size=o.detect_size,
                   min_face=o.min_face)

    def __init__(
        self,
        model: str | Path | None = None,
        detector: str = "auto",
        detector_model: str | Path | None = None,
        device: str = "auto",
        threads: int = 0,
        margin: float | None = None,
        detect_size: int = 640,
        min_face: int = 0,
    ):
        self.threads = apply_thread_budget(threads)
        self.classifier = ExpressionClassifier.from_path(resolve_model(model), device=device,
                                                         threads=self.threads.onnxruntime)
        self.detector = make_detector(detector, detector_model, max_side=detect_size, min_face=min_face)
        self.margin = self.detector.margin if margin is None else margin

    def spare_detector(self):
        """Another detector like this one's, for another thread: OpenCV's detectors keep per-call state."""
        d = self.detector
        return make_detector(d.name, d.model_path, max_side=d.max_side, min_face=d.min_face)

    def describe(self) -> str:
        """What runs, for the first line a command prints."""
        return (f"model {self.classifier.info.path} on {self.classifier.providers.describe()}; detector "
                f"{self.detector.name}{_runs_on(self.detector)} ({self.detector.why}); threads: {self.threads.describe()}")

    @property
    def provider(self) -> str:
        return self.classifier.providers.name

    def detect(self, image: np.ndarray) -> list[Detection]:
        return self.detector.detect(image)

    def face_probs(self, image: np.ndarray, boxes: list, margin: float | None = None,
                   tilts: list[float] | None = None) -> np.ndarray:
        """Crop every box and classify them all in one batched onnxruntime call: [len(boxes), 7].

        `tilts`: the eye line's tilt per box (YuNet's landmarks); faces tilted at least ALIGN_MIN_TILT
        degrees are turned level before cropping (+1.6 points on faces turned by up to 30 degrees)."""
        return self.classifier.predict_probs(self.crops(image, boxes, margin, tilts))

    def crops(self, image: np.ndarray, boxes: list, margin: float | None = None,
              tilts: list[float] | None = None) -> np.ndarray:
        """The 48x48 crops of `boxes`, with the detector's margin unless another is given."""
        return crop_faces(image, list(boxes), self.margin if margin is None else margin, level_tilts(tilts))

    def classify(self, image: np.ndarray, detections: list[Detection], margin: float | None = None) -> list[Face]:
        probs = self.face_probs(image, [d.box for d in detections], margin, [d.angle for d in detections])
        return faces_from(detections, probs)

    def predict(self, image: np.ndarray, detect: bool | None = None) -> list[Face]:
        """Faces in `image` (any channels, depth, size). detect=None: skip detection for 48x48 crops."""
        detections, crops = self.locate(image, detect)
        return faces_from(detections, self.classifier.predict_probs(crops))

    def locate(self, image: np.ndarray, detect: bool | None = None, detector=None) -> tuple[list[Detection], np.ndarray]:
        """The faces to classify in `image` and their 48x48 crops; `detector`: another thread's own."""
        if not isinstance(image, np.ndarray):  # cv2.imread gives None for a path it cannot read
            raise FerEdgeError(f"predict needs an image array (got {type(image).__name__}; did cv2.imread fail?)")
        if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
            raise FerEdgeError(f"predict needs a 2-D image (gray) or 3-D (color), got an array of shape {list(image.shape)}")
        if detect is False or (detect is None and is_face_crop(image)):
            whole = [Detection(0, 0, image.shape[1], image.shape[0], 1.0)]
            return whole, self.crops(image, [whole[0].box], margin=0.0)
        detections = (detector or self.detector).detect(image)
        return detections, self.crops(image, [d.box for d in detections], tilts=[d.angle for d in detections])


def faces_from(detections: list[Detection], probs: np.ndarray) -> list[Face]:
    return [face_from(d.box, d.score, p) for d, p in zip(detections, probs)]


def face_from(box, score: float, probs: np.ndarray) -> Face:
    p = to_prediction(probs)
    return Face(tuple(int(v) for v in box), float(score), p.label, p.confidence, p.probs)


def _runs_on(detector) -> str:
    """' on onnxruntime' for a detector that says what runs it (YuNet), else nothing."""
    runs_on = getattr(detector, "runs_on", None)
    return f" on {runs_on}" if runs_on else ""
