"""Facts about this machine and its libraries, for the report and the conversion cache key."""

from __future__ import annotations

import importlib.metadata
import os
import platform

from navigator.search.space import ncpu

LIBRARIES = ("navigator", "numpy", "torch", "onnx", "onnxruntime", "onnxscript", "openvino", "optuna",
             "tritonclient", "protobuf")


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
    info.update({f"version.{k}": v for k, v in versions().items() if v})
    return info
