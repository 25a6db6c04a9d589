"""Helpers the test files share: the test photo and multi-face images made from it, a tiny contract model,
where the real data is, and the tiny training run. Fixtures live in conftest.py; test files import these."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from fer_edge.contract import LABELS

DATA_DIR = Path(__file__).parent / "data"
ASTRONAUT = DATA_DIR / "astronaut.jpg"  # NASA public-domain portrait (scikit-image's `astronaut`), 256x256
REPO = Path(__file__).resolve().parents[1]


def make_tiny_model(
    path: Path,
    labels=LABELS,
    input_dims=(48, 48),
    input_type="uint8",
    output="probabilities",
    width: int | None = None,
    metadata: dict | None = None,
    seed: int = 0,
    batch: int | str = "N",
    bias: float = 0.0,
) -> Path:
    """A linear classifier over the 2304 pixels, exported with the contract's names and metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    width = len(labels) if width is None else width
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.01, (48 * 48, width)).astype(np.float32)
    b = np.full(width, bias, np.float32)
    elem = TensorProto.UINT8 if input_type == "uint8" else TensorProto.FLOAT
    nodes = [
        helper.make_node("Cast", ["faces"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["f", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["logits"]),
    ]
    if output == "probabilities":
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
        out_name = "probs"
    else:
        out_name = "logits"
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("faces", elem, [batch, *input_dims])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [batch, width])],
        initializer=[
            numpy_helper.from_array(np.array([-1, 48 * 48], np.int64), "shape"),
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(b, "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {"labels": json.dumps(list(labels)), "output": output, "fer_edge.contract": "1"}
    if input_type != "uint8":
        meta["preprocessing"] = json.dumps({"in_graph": False, "scale": 1 / 255, "mean": 0.5, "std": 0.25})
    meta.update(metadata or {})
    for k, v in meta.items():
        if v is not None:
            model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def astronaut_face(img: np.ndarray) -> np.ndarray:
    """The face region of the astronaut photo, with some context."""
    return img[10:110, 65:165].copy()


def group_photo(img: np.ndarray, positions=((20, 40), (300, 60), (560, 30)), size=(800, 260)) -> np.ndarray:
    """Several copies of the astronaut's face on a plain background: a multi-face test image."""
    canvas = np.full((size[1], size[0], 3), 90, np.uint8)
    face = astronaut_face(img)
    face = cv2.resize(face, (180, 180))
    for x, y in positions:
        canvas[y : y + 180, x : x + 180] = face
    return canvas


def shared_dir() -> Path:
    return Path(os.environ.get("FER_EDGE_SHARED", REPO.parent / "shared"))


def fer_data_path() -> Path | None:
    env = os.environ.get("FER_EDGE_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(shared_dir() / "data" / "fer2013.csv.gz")
    for c in candidates:
        if c.is_dir():
            c = c / "fer2013.csv.gz"
        if c.is_file():
            return c
    return None


def yunet_model_path() -> Path | None:
    found = sorted((shared_dir() / "models").glob("face_detection_yunet*.onnx"))
    return found[0] if found else None


def detail_numpy(faces: np.ndarray) -> np.ndarray:
    """The gate's measure written again in numpy: log(mean Laplacian^2 / variance) at 48 and at 24 px."""
    def one(f: np.ndarray) -> np.ndarray:
        lap = f[:, 1:-1, 2:] + f[:, 1:-1, :-2] + f[:, 2:, 1:-1] + f[:, :-2, 1:-1] - 4 * f[:, 1:-1, 1:-1]
        return np.log((lap**2).mean((1, 2)) + 1e-6) - np.log(f.var((1, 2)) + 1e-4)

    f = faces.astype(np.float64) / 255
    half = f.reshape(len(f), 24, 2, 24, 2).mean((2, 4))
    return np.stack([one(f), one(half)], 1)


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--arch", "fernet-t", "--batch-size", "32",
            "--threads", "1", "--device", "cpu", "--lr", "0.05", *extra]


def train_tiny(data: Path, out: Path, epochs: int = 3, seed: int = 0) -> Path:
    from fer_edge.train import trainer

    trainer.main(
        trainer.TrainConfig(data=str(data), out=str(out), arch="fernet-t", epochs=epochs, batch_size=16, lr=0.05,
                            threads=1, device="cpu", eval_tta=False, seed=seed),
        log=lambda *_: None,
    )
    return out


def second_run(csv_data: Path, tmp_path: Path, seed: int = 7, data: Path | None = None) -> Path:
    """Another tiny run beside `trained_run`: another seed, or other data."""
    return train_tiny(data or csv_data, tmp_path / f"run-seed{seed}", epochs=2, seed=seed)
