"""ExpressionClassifier: one ONNX emotion model, validated against the contract when it loads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_edge import contract
from fer_edge.contract import INPUT_SIZE, LABELS, canonical_label
from fer_edge.errors import FerEdgeError, ModelError
from fer_edge.providers import ProviderReport, make_session


MAX_FIXED_BATCH = 4096  # a model with a fixed batch is fed padded chunks of it; beyond this the padding costs too much


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    probs: tuple[float, ...]  # in LABELS order

    def as_dict(self) -> dict[str, float]:
        return dict(zip(LABELS, self.probs))


@dataclass(frozen=True)
class ModelInfo:
    path: str
    input_name: str
    input_dtype: str  # "uint8" or "float32"
    channel_axis: bool  # [N, 1, 48, 48] rather than [N, 48, 48]
    output: str  # "probabilities" or "logits"
    order: tuple[int, ...]  # model output column for each of LABELS
    preprocess: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


def _json_meta(meta: dict, key: str, path: Path):
    try:
        return json.loads(meta[key])
    except (json.JSONDecodeError, TypeError):
        raise FerEdgeError(f"{path}: metadata {key!r} is not valid JSON: {meta[key][:80]!r}") from None


def inspect_model(session, path: Path) -> ModelInfo:
    """Check a session against the contract; raise FerEdgeError saying what does not fit."""
    meta = dict(session.get_modelmeta().custom_metadata_map)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise FerEdgeError(f"{path}: expected 1 input (faces), found {len(inputs)}: {[i.name for i in inputs]}")
    inp = inputs[0]
    shape = list(inp.shape)
    dims = shape[1:]
    if dims not in ([INPUT_SIZE, INPUT_SIZE], [1, INPUT_SIZE, INPUT_SIZE]):
        raise FerEdgeError(f"{path}: input {inp.name!r} has shape {shape}, expected [N, 48, 48] or [N, 1, 48, 48]")
    if isinstance(shape[0], int) and shape[0] > MAX_FIXED_BATCH:
        raise FerEdgeError(f"{path}: its batch size is fixed at {shape[0]:,}; export it with a dynamic batch "
                           f"(or a fixed one of at most {MAX_FIXED_BATCH:,})")
    dtype = {"tensor(uint8)": "uint8", "tensor(float)": "float32"}.get(inp.type)
    if dtype is None:
        raise FerEdgeError(f"{path}: input type {inp.type}, expected uint8 (or float32 with preprocessing metadata)")
    if not outputs:
        raise FerEdgeError(f"{path}: the model has no output")
    if contract.META_LABELS not in meta:
        raise FerEdgeError(
            f"{path}: no 'labels' metadata, so the class order is unknown; export with `fer-edge export`, "
            "or add metadata_props labels=[\"angry\", ...] in the model's output order"
        )
    labels = _json_meta(meta, contract.META_LABELS, path)
    width = outputs[0].shape[-1] if outputs[0].shape else None
    if not isinstance(labels, list) or (isinstance(width, int) and width != len(labels)):
        raise FerEdgeError(f"{path}: output width {width} does not match its {len(labels)} labels")
    canon = [canonical_label(str(x)) for x in labels]
    if sorted(c for c in canon if c) != sorted(LABELS) or None in canon:
        raise FerEdgeError(f"{path}: labels {labels} are not the 7 FER2013 classes ({', '.join(LABELS)})")
    order = tuple(canon.index(name) for name in LABELS)
    pre = _json_meta(meta, contract.META_PREPROCESS, path) if contract.META_PREPROCESS in meta else {}
    if dtype == "float32" and not pre.get("in_graph", False) and not {"scale", "mean", "std"} <= set(pre):
        raise FerEdgeError(f"{path}: float input needs preprocessing metadata with scale, mean and std")
    return ModelInfo(
        path=str(path),
        input_name=inp.name,
        input_dtype=dtype,
        channel_axis=len(dims) == 3,
        output=meta.get(contract.META_OUTPUT, "probabilities"),
        order=order,
        preprocess=pre,
        metadata=meta,
    )


class ExpressionClassifier:
    """Classifies ready 48x48 grayscale crops, in batches."""

    def __init__(self, session, info: ModelInfo, providers: ProviderReport, io_binding: bool = False):
        self.session = session
        self.info = info
        self.providers = providers
        self.io_binding = io_binding  # bind input and output buffers (benchmarks/device_check.sh measures it on a GPU)
        self._output = session.get_outputs()[0].name
        # a model exported with a fixed batch runs in chunks of exactly that size (the last one padded)
        first = session.get_inputs()[0].shape[0]
        self._fixed_batch = first if isinstance(first, int) and first > 0 else None

    @classmethod
    def from_path(cls, path: str | Path, device: str = "auto", threads: int = 0, io_binding: bool = False) -> "ExpressionClassifier":
        path = Path(path)
        if not path.is_file():
            raise FerEdgeError(f"{path}: no such model file")
        session, report = make_session(str(path), device, threads)
        return cls(session, inspect_model(session, path), report, io_binding)

    def _run(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        if self._fixed_batch is not None and n != self._fixed_batch:
            x = np.concatenate([x, np.zeros((self._fixed_batch - n, *x.shape[1:]), x.dtype)])
        try:
            if not self.io_binding:
                out = self.session.run([self._output], {self.info.input_name: x})[0]
            else:
                binding = self.session.io_binding()
                binding.bind_cpu_input(self.info.input_name, x)
                binding.bind_output(self._output)  # onnxruntime allocates it on the provider's device; one copy back
                self.session.run_with_iobinding(binding)
                out = binding.copy_outputs_to_cpu()[0]
        except Exception as e:  # onnxruntime's own types: an allocation failure, a shape it cannot run
            raise ModelError(f"{self.info.path}: onnxruntime could not run it ({_one_line(e)})") from None
        return out[:n]

    def _prepare(self, faces: np.ndarray) -> np.ndarray:
        x = faces
        if self.info.input_dtype == "float32":
            if self.info.preprocess.get("in_graph", False):
                x = x.astype(np.float32)
            else:
                p = self.info.preprocess
                x = (x.astype(np.float32) * float(p["scale"]) - float(p["mean"])) / float(p["std"])
        if self.info.channel_axis:
            x = x[:, None]
        return np.ascontiguousarray(x)

    def predict_probs(self, faces: np.ndarray, batch: int = 256) -> np.ndarray:
        """uint8 [N, 48, 48] -> float32 [N, 7] probabilities in LABELS order."""
        faces = np.asarray(faces)
        if faces.ndim != 3 or faces.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
            raise FerEdgeError(f"faces must be [N, 48, 48], got {list(faces.shape)}")
        if len(faces) == 0:
            return np.zeros((0, len(LABELS)), np.float32)
        faces = faces.astype(np.uint8, copy=False)
        batch = self._fixed_batch or batch
        chunks = []
        for i in range(0, len(faces), batch):
            chunks.append(self._run(self._prepare(faces[i : i + batch])))
        scores = np.concatenate(chunks).astype(np.float32)[:, list(self.info.order)]
        if not np.isfinite(scores).all():
            raise ModelError(f"{self.info.path}: the model's output is not finite (NaN or infinity); it cannot be used")
        if self.info.output == "logits":
            scores = np.exp(scores - scores.max(1, keepdims=True))
            scores /= scores.sum(1, keepdims=True)
        elif scores.min() < -1e-3 or scores.max() > 1 + 1e-3 or np.abs(scores.sum(1) - 1).max() > 0.02:
            raise ModelError(
                f"{self.info.path}: its outputs are not probabilities (values {scores.min():.3g} to {scores.max():.3g}, "
                "rows not summing to 1); if they are logits, add metadata_props output=logits")
        return scores

    def predict(self, faces: np.ndarray) -> list[Prediction]:
        return [to_prediction(p) for p in self.predict_probs(faces)]


def _one_line(e: Exception) -> str:
    """onnxruntime's messages start with its own prefix and bury the cause at the end: keep the cause."""
    text = " ".join(str(e).split())
    return text if len(text) <= 300 else "..." + text[-300:]


def to_prediction(probs: np.ndarray) -> Prediction:
    i = int(np.argmax(probs))
    return Prediction(LABELS[i], float(probs[i]), tuple(float(v) for v in probs))
