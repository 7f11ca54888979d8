"""ONNX (as the openvino path makes it) -> OpenVINO IR -> INT8 by NNCF post-training quantization ->
OpenVINO CPU runtime.

nncf.quantize calibrates on Target.calibration (the user's --calibration-data, else the validation
inputs; never inputs navigator drew at random), one row per sample, `subset_size` rows at most;
`preset` performance (symmetric) or mixed (asymmetric activations), `model_type` transformer for NNCF's
attention-aware scheme, `ignore` ends to keep the first and last Convolution/MatMul in fp32,
`fast_bias_correction` false for NNCF's full bias correction. The runtime's `inference_precision` (bf16
where the CPU has it, else f32) is what the layers left unquantized compute in; the trial stays in the
int8 tolerance class. Validated at that class; served by the openvino backend, which runs the quantized
IR as it is, with HINT_BF16 for bf16.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from navigator.cache import Cache
from navigator.lazy import installed, require
from navigator.paths import _calibration, _onnx_export, _openvino
from navigator.paths._openvino import XML
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.runtimes.openvino import OpenVinoRunner
from navigator.source import ModelSource

NAME = "openvino_int8"
TIMEOUT_S = 900.0  # ONNX export, OpenVINO conversion, then NNCF's calibration pass and bias correction
COST_S = 40.0
DEVICES = ("cpu",)
FRAMEWORKS = ("torch", "onnx", "tf")
ENGINE = "OpenVINO INT8 (NNCF)"
PRECISION_CLASSES = ("int8",)
narrow = _openvino.narrow  # the inference precisions this CPU supports
QUANTIZE = ("preset", "model_type", "subset_size", "ignore", "fast_bias_correction")
WEIGHTED = ("Convolution", "MatMul")  # the op types whose first and last node `ignore: ends` keeps in fp32


def available() -> str | None:
    if not installed("openvino"):
        return "openvino is not installed (pip install 'triton-navigator[openvino]')"
    return None if installed("nncf") else "nncf is not installed (pip install 'triton-navigator[openvino]')"


def precision(params: Params) -> str:
    return "int8"


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    calibration = _calibration.of(target)
    onnx_file = _onnx_export.onnx_file(source, params, cache)
    key: dict[str, Any] = {k: params[k] for k in ("exporter", "opset", *QUANTIZE) if k in params}
    key["calibration"] = _calibration.fingerprint(calibration)
    batched = source.io.batched
    d = cache.get(NAME, key, lambda out: quantize(onnx_file, params, calibration, batched, out))
    return Artifact(NAME, d, d.name, dict(params), d / XML)


def quantize(onnx_file: Path, params: Params, calibration: dict[str, np.ndarray], batched: bool, out: Path) -> None:
    ov, nncf = require("openvino"), require("nncf")
    rows = int(params.get("subset_size", 128))
    samples = list(_calibration.batches(calibration, batched, 1, rows))
    model = ov.convert_model(str(onnx_file))
    ignored = nncf.IgnoredScope(names=ends(model)) if params.get("ignore") == "ends" else None
    model = nncf.quantize(model, nncf.Dataset(samples), subset_size=len(samples),
                          preset=nncf.QuantizationPreset(str(params.get("preset", "performance"))),
                          model_type=nncf.ModelType.TRANSFORMER if params.get("model_type") == "transformer" else None,
                          ignored_scope=ignored, fast_bias_correction=bool(params.get("fast_bias_correction", True)))
    ov.save_model(model, str(out / XML), compress_to_fp16=False)


def ends(model: Any) -> list[str]:
    """The friendly names of the first and last Convolution/MatMul operations of an OpenVINO model."""
    names = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() in WEIGHTED]
    return sorted({names[0], names[-1]}) if names else []


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    assert artifact.file is not None
    return OpenVinoRunner(artifact.file, params)


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    return _openvino.model(artifact, params)
