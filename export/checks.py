"""What an export measures of the file it wrote: parity with torch, accuracy, speed (onnxruntime on the CPU)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fer_edge.contract import INPUT_NAME, INPUT_SIZE
from fer_edge.errors import FerEdgeError

PARITY_ATOL = 1e-4


def ort_session(path: Path | bytes, threads: int = 0):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(path if isinstance(path, bytes) else str(path), options, providers=["CPUExecutionProvider"])


def ort_probs(session, x: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.concatenate([session.run(None, {INPUT_NAME: x[i : i + batch]})[0] for i in range(0, len(x), batch)])


def accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    return float((ort_probs(ort_session(path), x).argmax(1) == y).mean())


def check_parity(wrapper: nn.Module, path: Path, real: np.ndarray) -> tuple[float, int]:
    """Max |onnxruntime - torch| over random and real faces; raises if any argmax disagrees."""
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, (16, INPUT_SIZE, INPUT_SIZE), dtype=np.uint8), real]
    session = ort_session(path)
    worst, n = 0.0, 0
    for x in batches:
        if len(x) == 0:
            continue
        with torch.no_grad():
            ref = wrapper(torch.from_numpy(x)).numpy()
        got = ort_probs(session, x)
        worst = max(worst, float(np.abs(ref - got).max()))
        disagree = int((ref.argmax(1) != got.argmax(1)).sum())
        # a tie within float noise may flip; anything else is a broken export
        if disagree and worst > PARITY_ATOL:
            raise FerEdgeError(f"export parity failed: {disagree} of {len(x)} faces change class (max |diff| {worst:.2e})")
        n += len(x)
    if worst > PARITY_ATOL:
        raise FerEdgeError(f"export parity failed: max |onnxruntime - torch| = {worst:.2e} > {PARITY_ATOL:.0e}")
    return worst, n


def faces_per_second(path: Path, batch: int, threads: int = 2, seconds: float = 2.0) -> float:
    session = ort_session(path, threads)
    x = np.random.default_rng(0).integers(0, 256, (batch, INPUT_SIZE, INPUT_SIZE), dtype=np.uint8)
    for _ in range(3):
        session.run(None, {INPUT_NAME: x})
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        session.run(None, {INPUT_NAME: x})
        n += batch
    return n / (time.perf_counter() - t0)
