"""Distillation: soft labels from trained models (checkpoints or ONNX files), for any training loop."""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path

import numpy as np
import torch

from fer_edge import atomic
from fer_edge.contract import LABELS
from fer_edge.errors import FerEdgeError

from .checkpoint import load_checkpoint, model_from_checkpoint
from .data import default_cache_dir, file_sha256
from .models import DataConfig


def _read_labels(path: Path, n: int) -> np.ndarray | None:
    """Cached teacher probabilities, or None when absent or not what was written (a torn or foreign file)."""
    try:
        probs = np.load(path)
    except (OSError, ValueError):
        return None
    ok = probs.shape == (n, len(LABELS)) and probs.dtype == np.float32 and np.isfinite(probs).all()
    return probs if ok else None


def _log_probs(probs: np.ndarray) -> torch.Tensor:
    """An ONNX model's probabilities as logits up to a constant (which a softmax ignores); zeros clipped."""
    return torch.from_numpy(np.log(np.clip(probs, 1e-8, 1.0)).astype(np.float32))


class Teacher:
    """Soft labels from trained models, averaged: the student learns their softened probabilities.

    A checkpoint (.pt) teacher labels every augmented batch as the student sees it; with `tta`, averaged with
    its labels of the mirrored batch (the flip TTA a shipped model exports with; a second forward pass). An
    ONNX teacher (any model under the runtime contract, such as the shipped ensemble) labels each training face
    once, before training, from its probabilities (cached for the next start): offline distillation, nearly free
    on a CPU, and it needs no checkpoint, only the .onnx file. Offline labels follow mixup/cutmix through the
    same permutation. With `online`, an ONNX teacher labels every augmented batch instead, through onnxruntime:
    an int8 export with flip TTA in its graph costs a CPU a fraction of its read-back fp32 checkpoint's two
    torch passes, for the same labels of what the student sees.
    """

    def __init__(self, paths: list[str], device: torch.device, train_x: np.ndarray | None = None, log=print,
                 channels_last: bool = False, tta: bool = False, online: bool = False, threads: int = 0,
                 data: DataConfig = DataConfig()):
        self.models, self.offline, self.sessions, self.tta = [], [], [], tta
        self.data = data  # how the student's batches are normalised: an ONNX teacher undoes it
        for p in paths:
            if str(p).endswith(".onnx") and online:
                from fer_edge.classifier import ExpressionClassifier

                self.sessions.append(ExpressionClassifier.from_path(p, device="cpu", threads=threads))
                log(f"teacher {Path(p).name}: labels every augmented batch through onnxruntime"
                    f"{' and its mirror, averaged' if tta else ''}")
                continue
            if str(p).endswith(".onnx"):
                self.offline.append(self._label_once(Path(p), train_x, device, log))
                continue
            m = model_from_checkpoint(load_checkpoint(p)).to(device)
            if channels_last:
                m = m.to(memory_format=torch.channels_last)
            self.models.append(m.eval())
            log(f"teacher {Path(p).name}: labels every augmented batch{' and its mirror, averaged' if tta else ''}")

    @staticmethod
    def _label_once(path: Path, train_x: np.ndarray | None, device: torch.device, log) -> torch.Tensor:
        from fer_edge.classifier import ExpressionClassifier  # checks the contract and maps foreign label orders

        if train_x is None:
            raise FerEdgeError(f"{path}: an ONNX teacher needs the training faces")
        # A big ensemble takes minutes to label 28k faces; a resume, or the next run with the same teacher and
        # faces, reads them back. Keyed by both contents, so a changed file or split labels afresh.
        key = hashlib.sha256(file_sha256(path).encode())
        key.update(np.ascontiguousarray(train_x))  # hashed in place: no 66 MB copy of the faces
        cache = default_cache_dir() / "teacher-labels" / f"{key.hexdigest()[:32]}.npy"
        probs = _read_labels(cache, len(train_x))
        if probs is not None:
            log(f"teacher {path.name}: labels of {len(train_x)} training faces read from {cache} (offline distillation)")
        else:
            t0 = time.time()
            probs = ExpressionClassifier.from_path(path, device="cpu").predict_probs(train_x).astype(np.float32)
            log(f"teacher {path.name}: labelled {len(train_x)} training faces once in {time.time() - t0:.0f}s (offline distillation)")
            buf = io.BytesIO()
            np.save(buf, probs)
            try:
                atomic.write_bytes(cache, buf.getvalue())
            except OSError:
                pass  # a read-only cache only costs the next start a relabel
        return _log_probs(probs).to(device)

    def _online(self, model: torch.nn.Module, x: torch.Tensor, temperature: float) -> torch.Tensor:
        p = torch.softmax(model(x).float() / temperature, 1)
        return (p + torch.softmax(model(x.flip(3)).float() / temperature, 1)) / 2 if self.tta else p

    def _through_onnx(self, clf, x: torch.Tensor, temperature: float) -> torch.Tensor:
        # back from the graph's normalisation to the uint8 faces the runtime contract takes (off by under half
        # a grey level), and from probabilities to logits up to a constant, which the softmax ignores
        faces = ((x.float() * self.data.std + self.data.mean) * 255.0).round().clamp(0, 255).to(torch.uint8)[:, 0].cpu().numpy()
        views = [faces, faces[:, :, ::-1]] if self.tta else [faces]
        soft = [torch.softmax(_log_probs(clf.predict_probs(v, batch=len(v))) / temperature, 1) for v in views]
        return (sum(soft) / len(soft)).to(x.device)

    @torch.no_grad()
    def soft_targets(self, x: torch.Tensor, temperature: float, idx: torch.Tensor | None = None,
                     perm: torch.Tensor | None = None, lam: float = 1.0) -> torch.Tensor:
        soft = [self._online(m, x, temperature) for m in self.models]
        soft += [self._through_onnx(clf, x, temperature) for clf in self.sessions]
        for log_probs in self.offline:
            s = torch.softmax(log_probs[idx] / temperature, 1)
            soft.append(s if perm is None else lam * s + (1 - lam) * s[perm])
        return torch.stack(soft).mean(0)
