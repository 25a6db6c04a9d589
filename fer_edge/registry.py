"""Every model fer-edge knows by name, classifiers and detectors, in one place: `--model NAME`,
`fer-edge models list`, `info` and the model store read it.

A classifier named here ships inside the package (fer_edge/assets); a detector named here is fetched into
the model store (`fer-edge models pull NAME`), held to its pin byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

# --detector: auto takes YuNet when a model file is given or stored, else Haar (detect.choose_detector)
DETECTORS = ("auto", "haar", "yunet")


@dataclass(frozen=True)
class Pin:
    """What a download must be, byte for byte."""

    filename: str
    size: int
    sha256: str
    url: str


@dataclass(frozen=True)
class NamedModel:
    name: str
    kind: str  # "classifier" (shipped) or "detector" (in the model store)
    about: str  # one line, for help texts and listings
    file: str = ""  # a classifier's file in fer_edge/assets
    pin: Pin | None = None  # a detector's download


MODELS: dict[str, NamedModel] = {
    "default": NamedModel("default", "classifier", "most accurate", file="fer-edge.onnx"),
    "fast": NamedModel("fast", "classifier", "about 7x the faces/s, 1.9 points less accurate", file="fer-edge-fast.onnx"),
    # OpenCV Zoo's YuNet (MIT licence). The file is stored with Git LFS, so the URL is LFS's media URL.
    "yunet": NamedModel("yunet", "detector", "finds turned and small faces", pin=Pin(
        filename="face_detection_yunet_2023mar.onnx",
        size=232_589,
        sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
        url="https://media.githubusercontent.com/media/opencv/opencv_zoo/main/models/face_detection_yunet/"
            "face_detection_yunet_2023mar.onnx",
    )),
}


def classifiers() -> dict[str, NamedModel]:
    return {n: m for n, m in MODELS.items() if m.kind == "classifier"}


def detectors() -> dict[str, NamedModel]:
    return {n: m for n, m in MODELS.items() if m.kind == "detector"}


def classifier_help() -> str:
    """The shipped classifiers, for --model's help."""
    return " or ".join(f"{n} ({m.about})" for n, m in classifiers().items())
