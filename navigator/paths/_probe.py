"""Import-free facts for the paths' available(): what an installed framework build supports, read from
its files, and how many CUDA GPUs the driver shows and the first one's compute capability, asked of
libcuda through ctypes. Importing torch or TensorFlow only to ask takes seconds and leaves them loaded in
the study's parent process."""

from __future__ import annotations

import ast
import ctypes
import functools
import importlib.util
import re
from pathlib import Path

# The provider libraries an onnxruntime-gpu wheel ships in onnxruntime/capi (a CPU wheel has neither).
ORT_PROVIDER_LIBRARIES = {"CUDAExecutionProvider": "libonnxruntime_providers_cuda.so",
                          "TensorrtExecutionProvider": "libonnxruntime_providers_tensorrt.so"}


def package_dir(name: str) -> Path | None:
    """Where an installed package lives, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    folders = list(spec.submodule_search_locations or []) if spec else []
    return Path(folders[0]) if folders else None


def torch_has_cuda() -> bool:
    """Whether the installed PyTorch is a CUDA build (torch/version.py: `cuda = '12.4'`, None on a CPU wheel)."""
    folder = package_dir("torch")
    file = folder / "version.py" if folder else None
    text = file.read_text(errors="replace") if file and file.is_file() else ""
    return re.search(r"^cuda\s*(:[^=]*)?=\s*['\"]", text, re.MULTILINE) is not None


def ort_providers() -> set[str]:
    """The GPU execution providers the installed onnxruntime wheel ships (CPU is always there)."""
    folder = package_dir("onnxruntime")
    capi = folder / "capi" if folder else None
    return {p for p, lib in ORT_PROVIDER_LIBRARIES.items() if capi and (capi / lib).is_file()}


def tf_build() -> dict[str, object]:
    """TensorFlow's build_info (is_cuda_build, is_tensorrt_build, ...), read from
    tensorflow/python/platform/build_info.py; {} where it is missing or unreadable."""
    folder = package_dir("tensorflow")
    file = folder / "python" / "platform" / "build_info.py" if folder else None
    if not file or not file.is_file():
        return {}
    for node in ast.walk(ast.parse(file.read_text(errors="replace"))):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "build_info" for t in node.targets):
            try:
                value = node.value
                items = value.args[0] if isinstance(value, ast.Call) and value.args else value
                return dict(ast.literal_eval(items))
            except (ValueError, TypeError):
                return {}
    return {}


@functools.lru_cache(maxsize=1)
def cuda_gpus() -> int:
    """CUDA devices the driver shows this process (CUDA_VISIBLE_DEVICES applies); 0 without a driver."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


# FP8 tensor cores: Ada (8.9) and Hopper (9.0) onwards (TensorRT's support matrix, torchao's float8 docs)
FP8_CAPABILITY = (8, 9)


@functools.lru_cache(maxsize=1)
def cuda_capability() -> tuple[int, int] | None:
    """The first CUDA device's compute capability (major, minor) from the driver; None without one.
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR are 75 / 76 (CUDA driver API, cuda.h)."""
    if not cuda_gpus():
        return None
    cuda = ctypes.CDLL("libcuda.so.1")
    device, major, minor = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(0)
    if cuda.cuDeviceGet(ctypes.byref(device), 0) != 0 or \
            cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, device) != 0 or \
            cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, device) != 0:
        return None
    return major.value, minor.value
