"""ONNX (exported from PyTorch, converted from TensorFlow by tf2onnx, or the user's file) -> OpenVINO IR
(model.xml/.bin), OpenVINO CPU runtime.

Triton: the openvino backend with PERFORMANCE_HINT / NUM_STREAMS / INFERENCE_NUM_THREADS / HINT_BF16
(github.com/triton-inference-server/openvino_backend README). ORT's OpenVINO accelerator in Triton
takes no parameters (onnxruntime_backend src/onnxruntime.cc), so a tuned trial is emitted for the
openvino backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from navigator.cache import Cache
from navigator.lazy import installed, require
from navigator.paths import _onnx_export
from navigator.paths.base import Runner
from navigator.records import Artifact, Params, ParamSpec, TritonModel
from navigator.source import ModelSource

NAME = "openvino"
TIMEOUT_S = 600.0  # default trial timeout: ONNX export plus OpenVINO conversion
COST_S = 25.0  # expected trial cost (until the study measures its own): ONNX export plus OpenVINO conversion
DEVICES = ("cpu",)
FRAMEWORKS = ("torch", "onnx", "tf")
XML = "model.xml"
# searchspace precision -> OpenVINO's INFERENCE_PRECISION_HINT and the CPU capability it needs.
PRECISIONS = {"f32": ("f32", "FP32"), "bf16": ("bf16", "BF16")}


def available() -> str | None:
    return None if installed("openvino") else "openvino is not installed (pip install 'triton-navigator[openvino]')"


def narrow(spec: ParamSpec) -> ParamSpec:
    """Offer only the inference precisions this CPU supports (OPTIMIZATION_CAPABILITIES)."""
    if spec.name != "inference_precision" or available() is not None:
        return spec
    caps = set(require("openvino").Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    kept = tuple(c for c in spec.choices if PRECISIONS[str(c)][1] in caps)
    return ParamSpec(spec.name, spec.stage, kept or ("f32",), when=spec.when, sources=spec.sources)


def _build(onnx_file: Path, out: Path) -> None:
    ov = require("openvino")
    ov.save_model(ov.convert_model(str(onnx_file)), str(out / XML), compress_to_fp16=False)


def convert(source: ModelSource, params: Params, cache: Cache) -> Artifact:
    onnx_file = _onnx_export.onnx_file(source, params, cache)
    key = {k: params[k] for k in ("exporter", "opset") if k in params}  # the ONNX file's own key
    d = cache.get(NAME, key, lambda out: _build(onnx_file, out))
    return Artifact(NAME, d, d.name, dict(params), d / XML)


def compile_config(params: Params) -> dict[str, str]:
    config = {"PERFORMANCE_HINT": str(params["performance_hint"])}
    if "num_streams" in params:
        config["NUM_STREAMS"] = str(params["num_streams"])
    if "inference_num_threads" in params:
        config["INFERENCE_NUM_THREADS"] = str(params["inference_num_threads"])
    config["INFERENCE_PRECISION_HINT"] = PRECISIONS[str(params.get("inference_precision", "f32"))][0]
    return config


class OpenVinoRunner:
    def __init__(self, xml: Path, params: Params) -> None:
        ov = require("openvino")
        self.compiled = ov.Core().compile_model(str(xml), "CPU", compile_config(params))
        self.request = self.compiled.create_infer_request()
        self.names = [p.get_any_name() for p in self.compiled.inputs]

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self.request.infer({n: np.ascontiguousarray(inputs[n]) for n in self.names})
        return [np.array(v) for v in result.to_tuple()]

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        feed = {n: np.ascontiguousarray(inputs[n]) for n in self.names}
        infer = self.request.infer
        return lambda: infer(feed, share_inputs=True, share_outputs=True)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    assert artifact.file is not None
    return OpenVinoRunner(artifact.file, params)


def triton(artifact: Artifact, params: Params) -> TritonModel:
    assert artifact.file is not None
    config = compile_config(params)
    parameters = {k: v for k, v in config.items() if k != "INFERENCE_PRECISION_HINT"}
    if config["INFERENCE_PRECISION_HINT"] == "bf16":
        parameters["HINT_BF16"] = "YES"
    return TritonModel(backend="openvino", parameters=parameters,
                       files={XML: artifact.file, "model.bin": artifact.file.with_suffix(".bin")})


def precision(params: Params) -> str:
    """The precision the trial computes in, which sets its validation tolerance."""
    return "bf16" if params.get("inference_precision") == "bf16" else "fp32"
