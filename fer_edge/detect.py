"""Face detectors. Each takes any image (gray, BGR, BGRA, 16-bit, any size) and returns boxes with scores
in the input's pixel coordinates. Both run on a downscaled copy (`max_side`) and map the boxes back,
because detection cost grows with the pixel count and faces rarely need more than ~640 px to be found.

- haar (default): OpenCV's frontal-face Haar cascade, shipped inside opencv-python 4.x, so it works offline
  right after install. Frontal faces only; scores are the cascade's last-stage weight (higher is surer).
- yunet: OpenCV's YuNet CNN from a model file you give, run by onnxruntime (fer_edge/yunet.py: the answers of
  cv2.FaceDetectorYN, 3-4x faster), or by cv2.FaceDetectorYN for older model layouts. More accurate, handles
  turned and small faces; scores are 0..1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_edge import yunet
from fer_edge.errors import FerEdgeError, UsageError
from fer_edge.imageio import to_bgr_u8, to_gray_u8
from fer_edge.registry import DETECTORS



@dataclass(frozen=True)
class Detection:
    x: int
    y: int
    w: int
    h: int
    score: float
    angle: float = 0.0  # tilt of the eye line in degrees (YuNet's landmarks; 0 where the detector has none)

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)


def _working_scale(shape: tuple[int, ...], max_side: int) -> float:
    side = max(shape[0], shape[1])
    return min(1.0, max_side / side) if max_side > 0 else 1.0


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return image
    h, w = image.shape[:2]
    # Above half size, bilinear reads every source pixel already and costs a fifth of OpenCV's area
    # average at a ratio that is not a whole number (0.24 against 1.43 ms, 720x480 -> 640x427); further
    # down the area average keeps small faces from aliasing, and at whole ratios (1280 -> 640) it is fast.
    interpolation = cv2.INTER_LINEAR if scale > 0.5 else cv2.INTER_AREA
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interpolation)


def _to_detections(boxes: np.ndarray, scores: np.ndarray, scale: float, shape: tuple[int, ...],
                   angles: np.ndarray | None = None) -> list[Detection]:
    """Map working-size boxes back to the input and clip them to it; best score first."""
    h, w = shape[:2]
    out = []
    angles = np.zeros(len(boxes)) if angles is None else angles
    for (bx, by, bw, bh), s, a in zip(boxes, scores, angles):
        x0, y0 = max(0.0, bx / scale), max(0.0, by / scale)
        x1, y1 = min(float(w), (bx + bw) / scale), min(float(h), (by + bh) / scale)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            out.append(Detection(int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)), float(s), float(a)))
    return sorted(out, key=lambda d: -d.score)


class HaarDetector:
    name = "haar"
    # Crop margin whose crops match FER2013's framing (benchmarks/crop_margin.py): Haar's boxes are
    # ~44/48 of a FER crop's side, so +5% on each side.
    margin = 0.05

    def __init__(self, max_side: int = 640, min_neighbors: int = 5, min_size: int = 24, min_score: float = 2.5,
                 min_face: int = 0):
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise FerEdgeError(f"cannot load OpenCV's Haar cascade at {path}; reinstall opencv-python (4.x)")
        self.max_side = max_side
        self.min_neighbors = min_neighbors
        self.min_size = min_size  # the cascade's least window at the working size
        self.min_face = min_face  # in input pixels: skipping the scales below it is where Haar's time goes
        # Faces score ~3-9; the cascade's stray hits on hair, clothing and texture mostly score below 2.5.
        self.min_score = min_score

    def detect(self, image: np.ndarray) -> list[Detection]:
        gray = to_gray_u8(image)
        scale = _working_scale(gray.shape, self.max_side)
        small = _resize(gray, scale)
        least = max(self.min_size, round(self.min_face * scale))
        if min(small.shape) < least:
            return []
        rects, _, weights = self.cascade.detectMultiScale3(
            small, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(least, least),
            outputRejectLevels=True,
        )
        if len(rects) == 0:
            return []
        weights = np.asarray(weights, float).ravel()
        keep = weights >= self.min_score
        return _to_detections(np.asarray(rects, float)[keep], weights[keep], scale, gray.shape)


class YuNetDetector:
    name = "yunet"
    margin = -0.05  # YuNet's boxes run ~53/48 of a FER crop's side: trim 5% on each side

    def __init__(self, model_path: str | Path, max_side: int = 640, score_threshold: float = 0.6, min_face: int = 0):
        model_path = Path(model_path)
        if not model_path.is_file():
            raise FerEdgeError(f"{model_path}: no such YuNet model file")
        self.max_side = max_side
        self.min_face = min_face  # in input pixels; YuNet's cost does not depend on it, so it only filters
        self._size: tuple[int, int] | None = None
        # one thread: each stage or folder worker has its own detector, and the cores are shared between them
        self.session = yunet.open_session(model_path, score_threshold=score_threshold, nms_threshold=0.3, top_k=5000)
        if self.session is not None:
            self.runs_on = "onnxruntime"
            return
        self.runs_on = "OpenCV DNN"
        # OpenCV logs its own [ERROR] lines for a wrong file; our one-line error says it instead
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            self.net = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), score_threshold, 0.3, 5000)
            self.net.detect(np.zeros((320, 320, 3), np.uint8))  # another ONNX file loads, then fails here
        except cv2.error as e:
            cause = " ".join(str(getattr(e, "err", "") or e).split())[:200]
            raise FerEdgeError(f"{model_path}: OpenCV cannot load it as a YuNet face detector ({cause})") from None
        finally:
            cv2.utils.logging.setLogLevel(level)

    def detect(self, image: np.ndarray) -> list[Detection]:
        bgr = to_bgr_u8(image)
        scale = _working_scale(bgr.shape, self.max_side)
        small = _resize(bgr, scale)
        faces = self.session.detect(small) if self.session is not None else self._opencv_detect(small)
        if faces is None or len(faces) == 0:
            return []
        # landmarks: right eye (x, y), left eye (x, y), ... in image coordinates; the eye line's tilt
        angles = np.degrees(np.arctan2(faces[:, 7] - faces[:, 5], faces[:, 6] - faces[:, 4]))
        dets = _to_detections(faces[:, :4].astype(float), faces[:, 14].astype(float), scale, bgr.shape, angles)
        return [d for d in dets if d.h >= self.min_face] if self.min_face else dets

    def _opencv_detect(self, small: np.ndarray) -> np.ndarray | None:
        size = (small.shape[1], small.shape[0])
        if size != self._size:  # setInputSize re-plans the network; only when the size changes
            self.net.setInputSize(size)
            self._size = size
        return self.net.detect(small)[1]


def choose_detector(name: str, model_path: str | Path | None) -> tuple[str, Path | None, str]:
    """(detector, model file, why) for a requested name. `auto`: YuNet when a model file is given or the
    model store holds one, else Haar, with a hint on how to get YuNet."""
    if name not in DETECTORS:
        raise UsageError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    if name == "haar":
        return "haar", None, "asked for"
    if model_path is not None:
        return "yunet", Path(model_path), "asked for" if name == "yunet" else "--detector-model given"
    from fer_edge import store

    found = store.stored("yunet")
    if found is not None:
        return "yunet", found, "from the model store"
    if name == "yunet":
        raise UsageError("the yunet detector needs a model file: run `fer-edge models pull yunet`, or give one (--detector-model PATH; detector_model= in Python)")
    return "haar", None, "fer-edge models pull yunet finds turned and small faces"


def make_detector(name: str = "auto", model_path: str | Path | None = None, max_side: int = 640, min_face: int = 0):
    """A detector; its `why` says how it was chosen (for the first line a command prints)."""
    chosen, path, why = choose_detector(name, model_path)
    det = (HaarDetector(max_side=max_side, min_face=min_face) if chosen == "haar"
           else YuNetDetector(path, max_side=max_side, min_face=min_face))
    det.why = why
    det.model_path = path
    return det


def check_yunet(path: Path) -> None:
    """A YuNet model file that OpenCV loads and that finds the face in the shipped check photo."""
    from importlib import resources

    photo = Path(str(resources.files("fer_edge.assets").joinpath("astronaut.jpg")))  # NASA, public domain
    image = cv2.imread(str(photo))
    if image is None:
        raise FerEdgeError(f"cannot read the check photo {photo}; reinstall fer-edge")
    faces = YuNetDetector(path).detect(image)
    if not faces:
        raise FerEdgeError(f"{path}: loads as YuNet but finds no face in the check photo; not stored")
