"""Q/DQ ONNX for the TensorRT paths (tensorrt, ort_tensorrt; not a path itself), made by NVIDIA Model
Optimizer's ONNX post-training quantization, modelopt.onnx.quantization.quantize (github.com/NVIDIA/
Model-Optimizer, modelopt/onnx/quantization/quantize.py): QuantizeLinear/DequantizeLinear pairs placed by
TensorRT's rules, their scales calibrated with ONNX Runtime on Target.calibration, the ops it leaves
unquantized cast to `high_precision_dtype`. TensorRT then builds from that graph as it is (explicit
quantization); the paths say how.

`quantize` is narrowed to what this machine can do: int8 and fp8 need nvidia-modelopt with the ONNX
packages its quantizer imports, fp8 a GPU of compute capability 8.9 or newer (FP8 tensor cores: Ada,
Hopper; TensorRT's support matrix). A trial that asks anyway (a study resumed elsewhere) is refused with
that reason, as one without calibration inputs is (NO_CALIBRATION).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.lazy import installed, require
from navigator.paths import _calibration, _onnx_export, _probe
from navigator.paths.base import Target
from navigator.records import Params, ParamSpec
from navigator.source import ModelSource

# Module -> the package that provides it. Not nvidia-modelopt[onnx]: that extra pins onnx~=1.21 and
# onnxruntime-gpu~=1.24 (0.47.0), while modelopt.onnx.quantization runs on newer ones given these.
NEEDS = {"modelopt": "nvidia-modelopt", "onnx_graphsurgeon": "onnx-graphsurgeon", "onnxslim": "onnxslim",
         "lief": "lief"}
INSTALL = "pip install 'triton-navigator[trt]'"
MODES = ("int8", "fp8")
KEYS = ("quantize", "calibration_method", "high_precision_dtype", "exclude")  # what shapes the Q/DQ graph
# exclude -> op_types_to_exclude: none, or the element-wise Add and Mul (residual sums, scalings) kept in
# the high-precision type, quantizing only the GEMM, convolution, pooling, normalization and Clip ops of
# modelopt's INT8 default set (quantize.py's docstring). FP8 quantizes Conv, Gemm and MatMul only.
EXCLUDED: dict[str, list[str] | None] = {"none": None, "elementwise": ["Add", "Mul"]}
CALIBRATION_BATCH = 16  # rows per calibration step
# The ONNX Runtime provider the calibration runs on: the CPU's, first in modelopt's default order
# (["cpu", "cuda:0", "trt"]), which implements the standard ops, so the later ones never get a node; naming
# only it keeps modelopt from probing for cuDNN and TensorRT. navigator's models have no custom ops.
CALIBRATION_EPS = ("cpu",)
STEP = "modelopt_qdq"


def missing() -> str | None:
    """Why Model Optimizer's ONNX quantization cannot run here (a package missing), or None."""
    for module, package in NEEDS.items():
        if not installed(module):
            return f"{package} is not installed ({INSTALL}); int8/fp8 Q/DQ quantization needs it"
    return None


def fp8_reason() -> str | None:
    """Why this machine cannot run FP8 (no GPU, or one older than compute capability 8.9), or None."""
    found = _probe.cuda_capability()
    if found is None:
        return "fp8 needs a CUDA GPU of compute capability 8.9 or newer; the driver shows none"
    if found < _probe.FP8_CAPABILITY:
        return (f"fp8 needs a GPU of compute capability 8.9 or newer (FP8 tensor cores: Ada, Hopper); "
                f"this one is {found[0]}.{found[1]}")
    return None


def reason(mode: str) -> str | None:
    """Why quantize=`mode` cannot run here, or None ("none" always can)."""
    if mode == "none":
        return None
    if mode not in MODES:
        return f"quantize={mode!r} is not one of none, {', '.join(MODES)}"
    return missing() or (fp8_reason() if mode == "fp8" else None)


def narrow(spec: ParamSpec) -> ParamSpec:
    """The `quantize` choices this machine can run (always "none")."""
    if spec.name != "quantize":
        return spec
    return replace(spec, choices=tuple(c for c in spec.choices if reason(str(c)) is None) or ("none",))


def mode(params: Params) -> str:
    return str(params.get("quantize", "none"))


def key(params: Params, target: Target) -> dict[str, Any]:
    """The quantization's part of a conversion cache key: its params and the calibration inputs'
    fingerprint ({} for an unquantized trial); NO_CALIBRATION where the target has none."""
    if mode(params) == "none":
        return {}
    found: dict[str, Any] = {k: params[k] for k in KEYS if k in params}
    found["calibration"] = _calibration.fingerprint(_calibration.of(target))
    return found


def onnx_file(source: ModelSource, params: Params, cache: Cache, target: Target) -> Path:
    """The ONNX model the TensorRT paths build from: the exported one, or its Q/DQ version (cached by the
    export's params, the quantization's and the calibration inputs' fingerprint)."""
    if mode(params) == "none":
        return _onnx_export.onnx_file(source, params, cache)
    why = reason(mode(params))
    if why is not None:
        raise TrialError(why)
    calibration = _calibration.of(target)  # refused before the export: NO_CALIBRATION
    model = _onnx_export.onnx_file(source, params, cache)
    entry: dict[str, Any] = {k: params[k] for k in ("exporter", "opset") if k in params}
    entry.update(key(params, target))
    batched = source.io.batched
    return cache.get(STEP, entry, lambda out: quantize(model, params, calibration, batched, out)) / _onnx_export.ONNX_FILE


def calibration_feed(data: dict[str, np.ndarray], batched: bool, size: int = CALIBRATION_BATCH,
                     rows: int = _calibration.ROWS) -> tuple[dict[str, np.ndarray], str | None]:
    """(the calibration arrays, calibration_shapes) for modelopt, which splits the arrays into steps of
    calibration_shapes' batch (the model's own shape where None): up to `rows` rows, a whole number of
    steps of `size`. A model without a batch axis takes the arrays whole, one step."""
    if not batched:
        return data, None
    count = min(rows, min(int(v.shape[0]) for v in data.values()))
    step = max(1, min(size, count))
    count = count // step * step
    shapes = ",".join(f"{name}:{'x'.join(str(d) for d in (step, *v.shape[1:]))}" for name, v in data.items())
    return {name: v[:count] for name, v in data.items()}, shapes


def _link_input(model: Path, work: Path) -> Path:
    """The model (and its external data files) linked into `work`: modelopt writes its intermediate files
    beside its input, which must not be another cache entry or the user's folder."""
    from navigator.source.onnx import external_files

    work.mkdir()
    for rel in (Path(model.name), *external_files(model)):
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).symlink_to((model.parent / rel).resolve())
    return work / model.name


def quantize(model: Path, params: Params, calibration: dict[str, np.ndarray], batched: bool, out: Path) -> None:
    """Writes out/model.onnx: `model` with Q/DQ nodes, calibrated on `calibration`."""
    quantization = require("modelopt.onnx.quantization")
    data, shapes = calibration_feed(calibration, batched)
    work = out / "input"
    quantization.quantize(str(_link_input(model, work)), quantize_mode=mode(params), calibration_data=data,
                          calibration_method=str(params.get("calibration_method", "entropy")),
                          calibration_shapes=shapes, calibration_eps=list(CALIBRATION_EPS),
                          op_types_to_exclude=EXCLUDED[str(params.get("exclude", "none"))],
                          high_precision_dtype=str(params.get("high_precision_dtype", "fp16")),
                          output_path=str(out / _onnx_export.ONNX_FILE), log_level="WARNING")
    shutil.rmtree(work)
    if not (out / _onnx_export.ONNX_FILE).is_file():
        raise TrialError(f"Model Optimizer's {mode(params)} quantization wrote no model")
