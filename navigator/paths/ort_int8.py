"""ONNX (as ort_cpu makes it) -> INT8 by onnxruntime.quantization -> ONNX Runtime, CPU.

`mode` static: quantize_static in the QDQ format, calibrated on Target.calibration (the user's
--calibration-data, else the validation inputs; never inputs navigator drew at random), after
quant_pre_process (symbolic shape inference and ORT's graph optimizations, which the quantizer's
patterns expect). `mode` dynamic: quantize_dynamic, weights quantized ahead and activations per call,
ONNX Runtime's recommendation for transformer models. `exclude` names what stays in fp32: op types
(the softmax and layer norm whose ranges INT8 fits worst), or `ends`, the model's first and last
Conv/MatMul/Gemm nodes. Activations default to uint8 (U8S8): the only activation type the CPU provider
fuses into integer kernels on x86-64 (searchspace/ort_int8.yaml). Validated at the int8 tolerance class
(navigator/trial/validate.py); served by the onnxruntime backend as the quantized model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from navigator.cache import Cache
from navigator.lazy import installed, require
from navigator.paths import _calibration, _onnx_export, _ort_transformers, _ort_triton
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.runtimes import ort as rt_ort
from navigator.source import ModelSource

NAME = "ort_int8"
TIMEOUT_S = 900.0  # an ONNX export, preprocessing, then a calibration pass over the inputs
COST_S = 40.0
DEVICES = ("cpu",)
FRAMEWORKS = ("torch", "onnx", "tf")
ENGINE = "ONNX Runtime INT8"
PRECISION_CLASSES = ("int8",)
EXCLUDED = {"none": (), "softmax_layernorm": ("Softmax", "LayerNormalization"), "ends": ()}
WEIGHTED = ("Conv", "MatMul", "Gemm")  # the op types whose first and last node `exclude: ends` keeps in fp32
CALIBRATION_BATCH = 16  # rows per call of the calibration pass
QUANTIZE = ("mode", "per_channel", "calibrate_method", "activation_type", "weight_type", "exclude")


def available() -> str | None:
    return None if installed("onnxruntime") else "onnxruntime is not installed (pip install 'triton-navigator[onnx]')"


def precision(params: Params) -> str:
    return "int8"


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    static = params.get("mode", "static") == "static"
    calibration = _calibration.of(target) if static else None
    model = _ort_transformers.onnx_file(source, {**params, "precision": "fp32"}, cache, use_gpu=False)
    key: dict[str, Any] = {k: params[k] for k in ("exporter", "opset", "fusion", *QUANTIZE) if k in params}
    if calibration is not None:
        key["calibration"] = _calibration.fingerprint(calibration)
    batched = source.io.batched
    out = cache.get(NAME, key, lambda d: quantize(model, params, calibration, batched, d))
    file = out / _onnx_export.ONNX_FILE
    return Artifact(NAME, out, out.name, dict(params), file)


def quantize(src: Path, params: Params, calibration: dict[str, np.ndarray] | None, batched: bool,
             out: Path) -> None:
    q = require("onnxruntime.quantization")
    from onnxruntime.quantization.registry import IntegerOpsRegistry, QDQRegistry
    from onnxruntime.quantization.shape_inference import quant_pre_process

    excluded = EXCLUDED[str(params.get("exclude", "none"))]
    target, prepared = out / _onnx_export.ONNX_FILE, out / "prepared.onnx"
    quant_pre_process(str(src), str(prepared))
    nodes = ends(prepared) if params.get("exclude") == "ends" else []
    if params.get("mode", "static") == "dynamic":
        ops = [op for op in IntegerOpsRegistry if op not in excluded]
        q.quantize_dynamic(str(prepared), str(target), op_types_to_quantize=ops, nodes_to_exclude=nodes,
                           per_channel=bool(params.get("per_channel", True)),
                           weight_type=getattr(q.QuantType, str(params.get("weight_type", "QInt8"))))
        prepared.unlink()
        return
    assert calibration is not None
    data = calibration

    class Reader(q.CalibrationDataReader):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self.it = _calibration.batches(data, batched, CALIBRATION_BATCH)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    q.quantize_static(str(prepared), str(target), Reader(), quant_format=q.QuantFormat.QDQ,
                      op_types_to_quantize=[op for op in QDQRegistry if op not in excluded], nodes_to_exclude=nodes,
                      per_channel=bool(params.get("per_channel", True)),
                      activation_type=getattr(q.QuantType, str(params.get("activation_type", "QUInt8"))),
                      weight_type=getattr(q.QuantType, str(params.get("weight_type", "QInt8"))),
                      calibrate_method=getattr(q.CalibrationMethod, str(params.get("calibrate_method", "MinMax"))))
    prepared.unlink()


def ends(model: Path) -> list[str]:
    """The names of the first and last Conv/MatMul/Gemm nodes of the model (in graph order). A Gemm also
    gives the name of the MatMul quantize_dynamic turns it into (ONNXModel.replace_gemm_with_matmul in
    onnxruntime/quantization/onnx_model.py names it after the Gemm, suffix "_MatMul")."""
    onnx = require("onnx")
    nodes = [n for n in onnx.load(str(model), load_external_data=False).graph.node if n.op_type in WEIGHTED and n.name]
    chosen = [nodes[0], nodes[-1]] if nodes else []
    return sorted({n.name for n in chosen} | {f"{n.name}_MatMul" for n in chosen if n.op_type == "Gemm"})


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    assert artifact.file is not None
    return rt_ort.open_session(artifact.file, params, "cpu")


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    return _ort_triton.cpu_model(artifact, params)
