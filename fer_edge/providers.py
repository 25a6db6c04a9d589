"""Which onnxruntime execution providers to ask for, and what really runs.

onnxruntime-gpu lists CUDA in get_available_providers() even where the CUDA libraries are missing;
it then falls back to the CPU with a log line that is easy to miss. So the choice is made here, and
the truth is read back from session.get_providers() and reported, with the reason for a fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fer_edge.errors import FerEdgeError, UsageError

if TYPE_CHECKING:
    import onnxruntime as ort

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
COREML = "CoreMLExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"
DIRECTML = "DmlExecutionProvider"

DEVICE_PROVIDERS = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT, "coreml": COREML, "openvino": OPENVINO, "directml": DIRECTML}
DEVICES = ("auto", *DEVICE_PROVIDERS)
SHORT_NAMES = {p: n for n, p in {"CPU": CPU, "CUDA": CUDA, "TensorRT": TENSORRT, "CoreML": COREML,
                                 "OpenVINO": OPENVINO, "DirectML": DIRECTML}.items()}

# `auto` takes the first of these that the build lists and that starts, then the CPU. TensorRT is not in it:
# its first start builds an engine (tens of seconds) before the first face, which a webcam user would take
# for a hang; ask for it with --device tensorrt, and the engine is cached for the next start.
AUTO_ORDER = (CUDA, COREML, DIRECTML, OPENVINO)

INSTALL_HINTS = {
    CUDA: 'pip install "fer-edge[cuda]" (Linux x86_64 and Windows, NVIDIA driver needed)',
    TENSORRT: 'pip install "fer-edge[cuda]" tensorrt-cu13 (NVIDIA GPU, TensorRT 10)',
    COREML: "CoreML is in the plain onnxruntime wheel on macOS",
    OPENVINO: "pip uninstall onnxruntime onnxruntime-gpu && pip install onnxruntime-openvino",
    DIRECTML: "pip uninstall onnxruntime onnxruntime-gpu && pip install onnxruntime-directml (Windows)",
}


def provider_options(provider: str, cache_dir: Path | None) -> dict:
    """TensorRT keeps its engines (and timing cache) in fer-edge's folder, fp16 where the GPU has it."""
    if provider == TENSORRT and cache_dir is not None:
        folder = str(cache_dir / "tensorrt")
        return {"trt_engine_cache_enable": True, "trt_engine_cache_path": folder, "trt_timing_cache_enable": True,
                "trt_timing_cache_path": folder, "trt_fp16_enable": True}
    return {}


def select_providers(requested: str, available: list[str], cache_dir: Path | None = None) -> list[tuple[str, dict]]:
    """(provider, options) pairs to try, best first, always ending with the CPU.

    Pure, so it can be tested with any platform's `available` list."""
    if requested not in DEVICES:
        raise UsageError(f"device must be one of {', '.join(DEVICES)}, not {requested!r}")
    if requested == "auto":
        chain = [p for p in AUTO_ORDER if p in available]
    elif requested == "cpu":
        chain = []
    else:
        wanted = DEVICE_PROVIDERS[requested]
        if wanted not in available:
            raise FerEdgeError(
                f"device {requested}: this onnxruntime build has no {SHORT_NAMES[wanted]} provider "
                f"(available: {', '.join(SHORT_NAMES.get(p, p) for p in available)}); {INSTALL_HINTS[wanted]}"
            )
        # TensorRT hands the nodes it cannot build to CUDA, then the CPU
        chain = [wanted, CUDA] if wanted == TENSORRT and CUDA in available else [wanted]
    return [(p, provider_options(p, cache_dir)) for p in chain] + [(CPU, {})]


@dataclass(frozen=True)
class ProviderReport:
    requested: str
    tried: tuple[str, ...]
    active: tuple[str, ...]
    why_not: str = ""  # why the first provider tried is not the one running

    @property
    def name(self) -> str:
        """The provider that runs the model: 'CUDA', 'TensorRT', 'CoreML', ... or 'CPU'."""
        return SHORT_NAMES.get(self.active[0], self.active[0]) if self.active else "none"

    @property
    def fell_back(self) -> bool:
        return bool(self.tried) and bool(self.active) and self.tried[0] != self.active[0]

    def describe(self) -> str:
        if self.fell_back:
            tried = SHORT_NAMES.get(self.tried[0], self.tried[0])
            return f"{self.name} ({tried} was tried but could not start: {self.why_not or 'see ORT_LOGGING_LEVEL=0 output'})"
        return self.name


def why_not_started(provider: str) -> str:
    if provider in (CUDA, TENSORRT):
        from fer_edge import gpu

        return gpu.why_cuda_did_not_start(SHORT_NAMES[provider])
    return f"{SHORT_NAMES.get(provider, provider)} did not start on this machine"


def make_session(path: str, device: str = "auto", threads: int = 0) -> tuple[ort.InferenceSession, ProviderReport]:
    import onnxruntime as ort  # here, not at import: the CLI reads DEVICES without loading onnxruntime

    from fer_edge.home import home

    chain = select_providers(device, ort.get_available_providers(), home())
    tried = [p for p, _ in chain]
    if CUDA in tried or TENSORRT in tried:
        from fer_edge import gpu

        gpu.prepare_cuda()  # CUDA and cuDNN from the fer-edge[cuda] wheels, before the session needs them
        if TENSORRT in tried:
            (home() / "tensorrt").mkdir(parents=True, exist_ok=True)
    ort.set_default_logger_severity(4)  # provider start-up failures log at ERROR: we report the fallback ourselves
    options = ort.SessionOptions()
    options.log_severity_level = 3  # we report the fallback ourselves, in one clear line
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    # onnxruntime's idle threads spin for the next call by default. Between our calls OpenCV decodes and
    # detects on the same cores, and the spinning took them from it: without it, on 2 cores, classify ran
    # 1.5x the photos a second and webcam 1.4x the FPS (Haar), at the same batch-64 throughput.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(path, sess_options=options, providers=chain)
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/NoSuchFile types
        text = " ".join(str(e).split())  # the cause ("IR version 14, max supported 13") comes last
        raise FerEdgeError(f"{path}: onnxruntime cannot load it ({text if len(text) <= 300 else '...' + text[-300:]})") from None
    active = tuple(session.get_providers())
    why = why_not_started(tried[0]) if tried and active and active[0] != tried[0] else ""
    report = ProviderReport(device, tuple(tried), active, why)
    if device not in ("auto", "cpu") and report.fell_back:
        raise FerEdgeError(f"device {device}: {report.describe()}")
    return session, report
