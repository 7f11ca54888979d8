"""ONNX (exported from PyTorch, converted from TensorFlow by tf2onnx, or the user's file) -> OpenVINO IR
(model.xml/.bin), OpenVINO CPU runtime.

Triton: the openvino backend with PERFORMANCE_HINT / NUM_STREAMS / INFERENCE_NUM_THREADS / HINT_BF16
(github.com/triton-inference-server/openvino_backend README). ORT's OpenVINO accelerator in Triton
takes no parameters (onnxruntime_backend src/onnxruntime.cc), so a tuned trial is emitted for the
openvino backend.
"""

from __future__ import annotations

from pathlib import Path

from navigator.cache import Cache
from navigator.lazy import installed, require
from navigator.paths import _onnx_export, _openvino
from navigator.paths._openvino import XML
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.runtimes.openvino import OpenVinoRunner
from navigator.source import ModelSource

NAME = "openvino"
TIMEOUT_S = 600.0  # default trial timeout: ONNX export plus OpenVINO conversion
COST_S = 25.0  # expected trial cost (until the study measures its own): ONNX export plus OpenVINO conversion
DEVICES = ("cpu",)
FRAMEWORKS = ("torch", "onnx", "tf")
PRECISION_CLASSES = _openvino.PRECISION_CLASSES
narrow = _openvino.narrow  # the inference precisions this CPU supports
precision = _openvino.precision


def available() -> str | None:
    return None if installed("openvino") else "openvino is not installed (pip install 'triton-navigator[openvino]')"


def _build(onnx_file: Path, out: Path) -> None:
    ov = require("openvino")
    ov.save_model(ov.convert_model(str(onnx_file)), str(out / XML), compress_to_fp16=False)


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    onnx_file = _onnx_export.onnx_file(source, params, cache)
    key: Params = {k: params[k] for k in ("exporter", "opset") if k in params}  # the ONNX file's own key
    d = cache.get(NAME, key, lambda out: _build(onnx_file, out))
    return Artifact(NAME, d, d.name, dict(params), d / XML)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    assert artifact.file is not None
    return OpenVinoRunner(artifact.file, params)


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    return _openvino.model(artifact, params)
