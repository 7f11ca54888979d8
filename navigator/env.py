"""Facts about this machine and its libraries, for the report and the conversion cache key."""

from __future__ import annotations

import importlib.metadata
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


def snapshot() -> dict[str, str]:
    """Environment recorded in every report."""
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cores_usable": str(ncpu()),
    }
    info.update({f"version.{k}": v for k, v in versions().items() if v})
    return info
