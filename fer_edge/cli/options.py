"""Options shared by several commands, defined once."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from fer_edge.providers import DEVICES
from fer_edge.registry import DETECTORS, classifier_help
from fer_edge.train.config import TORCH_DEVICES


def choice_enum(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A typer choice list built from the library's own list of names."""
    return Enum(name, {v: v for v in values}, type=str)


Device = choice_enum("Device", DEVICES)  # where onnxruntime runs the classifier
TorchDevice = choice_enum("TorchDevice", TORCH_DEVICES)  # where torch trains and evaluates
DetectorName = choice_enum("DetectorName", DETECTORS)


ModelOpt = Annotated[
    Optional[Path], typer.Option("--model", "-m", help=f"ONNX file, or a shipped model: {classifier_help()}.")
]
DeviceOpt = Annotated[Device, typer.Option("--device", help="auto takes the first that starts of CUDA, CoreML, DirectML, OpenVINO, then the CPU, and says which runs and why; tensorrt builds and caches an engine on its first start.")]
DetectorOpt = Annotated[
    DetectorName, typer.Option("--detector", help="auto: YuNet when --detector-model is given or the model store holds it (fer-edge models pull yunet), else Haar. haar: built in, frontal faces. yunet: turned and small faces too.")
]
DetectorModelOpt = Annotated[
    Optional[Path], typer.Option("--detector-model", help="YuNet .onnx file (face_detection_yunet_*.onnx); default: the model store's.")
]
ThreadsOpt = Annotated[int, typer.Option("--threads", min=0, help="CPU cores to use: onnxruntime and OpenCV share them (0: every core this process may use; `fer-edge info` shows the split).")]
MinFaceOpt = Annotated[
    int, typer.Option("--min-face", min=0, help="Ignore faces shorter than this many pixels (0: the detector's least). Haar skips those scales, which is where its time goes.")
]
