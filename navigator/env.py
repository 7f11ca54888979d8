"""Facts about this machine and its libraries, for the report and the conversion cache key."""

from __future__ import annotations

import importlib.metadata
import os
import platform

from navigator.search.space import ncpu

LIBRARIES = ("navigator", "numpy", "torch", "onnx", "onnxruntime", "onnxscript", "openvino", "optuna",
             "tritonclient", "protobuf", "tensorflow-cpu", "tensorflow", "keras", "tf2onnx", "xgboost", "lightgbm",
             "scikit-learn", "skl2onnx", "onnxmltools", "treelite", "tl2cgen", "nvforest-cu12")


def versions() -> dict[str, str]:
    """Installed versions of the libraries that shape conversions and timings ('' if absent)."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = ""
    return out


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Environment variables that change thread pools and so the timings.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "KMP_AFFINITY", "KMP_BLOCKTIME",
                    "OMP_PROC_BIND", "GOMP_CPU_AFFINITY", "TORCH_NUM_THREADS", "ORT_NUM_THREADS")


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def default_device() -> str:
    """'cuda' when PyTorch is installed and sees a GPU, else 'cpu'."""
    import importlib.util
    import sys

    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def gpu() -> dict[str, str]:
    """GPU name, driver and CUDA version where PyTorch sees one."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return {}
    props = torch.cuda.get_device_properties(0)
    return {"gpu": props.name, "gpu_memory_gib": f"{props.total_memory / 2**30:.1f}",
            "cuda": str(torch.version.cuda), "cudnn": str(torch.backends.cudnn.version())}


def snapshot() -> dict[str, str]:
    """Environment recorded in every report: what affects timings, beside library versions."""
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cores_total": str(os.cpu_count()),
        "cores_usable": str(ncpu()),
        "load_average": " ".join(_read("/proc/loadavg").split()[:3]),
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") or "unknown",
    }
    info.update({f"env.{k}": os.environ[k] for k in THREAD_VARIABLES if k in os.environ})
    info.update(gpu())
    info.update({f"version.{k}": v for k, v in versions().items() if v})
    return info
