"""Which onnxruntime execution providers to ask for, and what really runs.

onnxruntime-gpu lists CUDA in get_available_providers() even where the CUDA libraries are missing;
it then falls back to the CPU with a log line that is easy to miss. So the choice is made here, and
the truth is read back from session.get_providers() and reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnxruntime as ort

from fer_edge.errors import FerEdgeError, UsageError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
SHORT_NAMES = {CPU: "CPU", CUDA: "CUDA", "TensorrtExecutionProvider": "TensorRT"}
DEVICES = ("auto", "cpu", "cuda")


def select_providers(requested: str, available: list[str]) -> list[str]:
    """Providers to try, best first. Pure, so it can be tested with any `available` list."""
    if requested not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)}, not {requested!r}")
    if requested == "cpu":
        return [CPU]
    if requested == "cuda" and CUDA not in available:
        raise FerEdgeError(
            "--device cuda: this onnxruntime build has no CUDA provider "
            f"(available: {', '.join(available)}); install onnxruntime-gpu"
        )
    return [CUDA, CPU] if CUDA in available else [CPU]


@dataclass(frozen=True)
class ProviderReport:
    requested: str
    tried: tuple[str, ...]
    active: tuple[str, ...]

    @property
    def name(self) -> str:
        """The provider that runs the model: 'CUDA' or 'CPU'."""
        return SHORT_NAMES.get(self.active[0], self.active[0]) if self.active else "none"

    @property
    def fell_back(self) -> bool:
        return bool(self.tried) and bool(self.active) and self.tried[0] != self.active[0]

    def describe(self) -> str:
        if self.fell_back:
            return (
                f"{self.name} (CUDA was tried but could not start: check the CUDA and cuDNN libraries "
                "that this onnxruntime-gpu build needs)"
            )
        return self.name


def make_session(path: str, device: str = "auto", threads: int = 0) -> tuple[ort.InferenceSession, ProviderReport]:
    tried = select_providers(device, ort.get_available_providers())
    ort.set_default_logger_severity(4)  # provider start-up failures log at ERROR: we report the fallback ourselves
    options = ort.SessionOptions()
    options.log_severity_level = 3  # we report the fallback ourselves, in one clear line
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(path, sess_options=options, providers=tried)
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/NoSuchFile types
        raise FerEdgeError(f"{path}: onnxruntime cannot load it ({str(e).strip().splitlines()[0][:300]})") from None
    report = ProviderReport(device, tuple(tried), tuple(session.get_providers()))
    if device == "cuda" and report.name != "CUDA":
        raise FerEdgeError(f"--device cuda: {report.describe()}")
    return session, report
