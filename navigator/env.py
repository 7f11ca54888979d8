"""Facts about this machine and its libraries, for the report and the conversion cache key."""

from __future__ import annotations

import importlib.metadata
import os
import platform

LIBRARIES = ("triton-navigator", "numpy", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "onnxscript", "openvino",
             "nncf", "optuna", "tritonclient", "protobuf", "tensorflow-cpu", "tensorflow", "keras", "tf2onnx", "xgboost",
             "lightgbm", "scikit-learn", "skl2onnx", "onnxmltools", "treelite", "tl2cgen", "nvforest-cu12",
             "nvidia-modelopt", "torchao", "tensorrt", "torch-tensorrt")


def ncpu() -> int:
    """Cores this process may use (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


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


def gpu_driver() -> str:
    """The NVIDIA kernel driver's version ('' without one)."""
    text = _read("/proc/driver/nvidia/version")
    marker = "Kernel Module"
    return text.split(marker, 1)[1].split()[0] if marker in text else ""


def _gpu_name() -> str:
    """The first GPU's name, through PyTorch where it is installed, else nvidia-smi ('' if neither sees one)."""
    import importlib.util
    import shutil
    import subprocess

    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return str(torch.cuda.get_device_properties(0).name)
    if shutil.which("nvidia-smi"):
        done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], check=False,
                              capture_output=True,
                              text=True, timeout=30)
        return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else ""
    return ""


def hardware_class(device: str) -> str:
    """What makes timings comparable: on the GPU its model, on the CPU its model and the cores this
    process may use. Trials of different classes are never ranked together."""
    if device == "cuda":
        return f"cuda: {_gpu_name() or 'unknown GPU'}"
    return f"cpu: {cpu_model()} x{ncpu()}"


def hardware(device: str) -> dict[str, str]:
    """The machine a trial ran on, recorded on every trial: its hardware class, CPU, GPU and driver,
    and the library versions (the parts of `snapshot` that do not change from one trial to the next)."""
    moving = ("load_average",)
    info = {"class": hardware_class(device), "host": platform.node(), "gpu_driver": gpu_driver()}
    info.update({k: v for k, v in snapshot().items() if k not in moving})
    return {k: v for k, v in info.items() if v}


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


def overloaded() -> str:
    """A warning when the 1-minute load average exceeds this process's cores (other work competes with
    the measurements, so timings are noisy); '' otherwise."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # not available on this platform
        return ""
    cores = ncpu()
    if load <= cores:
        return ""
    return (f"the machine is loaded (load average {load:.1f} on {cores} cores): other work competes with "
            "the measurements, timings are noisy")
