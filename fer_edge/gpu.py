"""What an NVIDIA GPU setup has and lacks, read without torch: the driver, the GPU, and the CUDA and cuDNN
libraries that onnxruntime-gpu needs, loaded from the `fer-edge[cuda]` wheels when they are installed.

Everything here is a best-effort probe: a missing library or tool is an answer, never an exception.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import os
import re
import shutil
import subprocess
import sys
import warnings

CUDA_EXTRA_HINT = 'pip install "fer-edge[cuda]"'


@functools.lru_cache(maxsize=1)
def preload_cuda_libraries() -> tuple[str, ...]:
    """Load CUDA and cuDNN before a CUDA or TensorRT session starts; return the libraries that did not load.

    onnxruntime.preload_dlls() finds them in the nvidia-* wheels of `fer-edge[cuda]` (or the system paths),
    so a machine with only the NVIDIA driver runs on the GPU. It prints its failures to stdout, which may be
    our CSV: they are captured and returned instead.
    """
    import onnxruntime as ort

    if not hasattr(ort, "preload_dlls") or sys.platform not in ("linux", "win32"):
        return ()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ort.preload_dlls()
        except Exception as e:  # an odd install layout: report it like a missing library
            return (str(e).strip().splitlines()[0][:120],)
    failed = re.findall(r"Failed to load (\S+?):", out.getvalue())
    return tuple(dict.fromkeys(os.path.basename(f) for f in failed))


def _driver_library() -> ctypes.CDLL | None:
    for name in ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


@functools.lru_cache(maxsize=1)
def driver_status() -> tuple[bool, str]:
    """(True, 'N GPU(s), driver API CUDA X.Y') or (False, why not)."""
    if sys.platform == "darwin":
        return False, "macOS has no CUDA (use --device coreml)"
    lib = _driver_library()
    if lib is None:
        return False, "the NVIDIA driver's library (libcuda) is not installed"
    try:
        if lib.cuInit(0) != 0:
            return False, "the NVIDIA driver is installed but cuInit failed (no GPU, or the driver is not loaded)"
        count, version = ctypes.c_int(0), ctypes.c_int(0)
        lib.cuDeviceGetCount(ctypes.byref(count))
        lib.cuDriverGetVersion(ctypes.byref(version))
    except (AttributeError, OSError):
        return False, "the NVIDIA driver's library does not answer"
    if count.value == 0:
        return False, "the NVIDIA driver sees no GPU"
    return True, f"{count.value} GPU(s), driver supports CUDA {version.value // 1000}.{version.value % 1000 // 10}"


def prepare_cuda() -> None:
    """Before a CUDA or TensorRT session: load the libraries where a driver can use them. Without a driver
    CUDA cannot start anyway, and loading cuDNN and cuBLAS (about 1 GB) would only slow the CPU start."""
    if driver_status()[0]:
        preload_cuda_libraries()


def why_cuda_did_not_start(provider: str = "CUDA") -> str:
    """One line on why a CUDA (or TensorRT) session fell back to the CPU, and what to do."""
    ok, detail = driver_status()
    if not ok:
        return f"no NVIDIA driver or GPU: {detail}"
    missing = preload_cuda_libraries()
    if missing:
        return f"CUDA/cuDNN libraries missing ({', '.join(missing)}): {CUDA_EXTRA_HINT}"
    if provider == "TensorRT":
        return "TensorRT could not start: its libraries (libnvinfer 10) are missing or do not match this onnxruntime"
    import onnxruntime as ort

    return (f"CUDA could not start although the driver and libraries load ({detail}; this onnxruntime needs CUDA "
            f"{getattr(ort, 'cuda_version', '?') or '?'}): update the driver, or see ORT_LOGGING_LEVEL=0 output")


def _nvidia_smi() -> dict:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return {}
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {}
    gpus = [dict(zip(("name", "driver_version", "memory"), (v.strip() for v in line.split(","))))
            for line in out.stdout.strip().splitlines() if line.count(",") >= 2]
    return {"gpus": gpus} if gpus else {}


def _library_version(names: tuple[str, ...], symbol: str, by_ref: bool, unit: int) -> str | None:
    """Version from a library's getter: CUDA encodes 13.0 as 13000 (unit 1000), cuDNN 9.1 as 90100 (10000)."""
    for name in names:
        try:
            fn = getattr(ctypes.CDLL(name), symbol)
        except (OSError, AttributeError):
            continue
        if by_ref:
            v = ctypes.c_int(0)
            if fn(ctypes.byref(v)) != 0:
                return None
            v = v.value
        else:
            fn.restype = ctypes.c_size_t
            v = fn()
        return f"{v // unit}.{v % unit // (unit // 100) if unit >= 10000 else v % unit // 10}"
    return None


def facts() -> dict:
    """GPU name, driver, CUDA and cuDNN versions, as far as they can be read here (for `info --json`)."""
    import onnxruntime as ort

    ok, detail = driver_status()
    out: dict = {"driver": ok, "driver_detail": detail, "onnxruntime_cuda_version": getattr(ort, "cuda_version", None) or None}
    if ok:
        out.update(_nvidia_smi())
        out["missing_libraries"] = list(preload_cuda_libraries())
        out["cuda_runtime"] = _library_version(("libcudart.so.13", "libcudart.so.12", "cudart64_13.dll", "cudart64_12.dll"),
                                               "cudaRuntimeGetVersion", by_ref=True, unit=1000)
        out["cudnn"] = _library_version(("libcudnn.so.9", "cudnn64_9.dll"), "cudnnGetVersion", by_ref=False, unit=10000)
    return out
