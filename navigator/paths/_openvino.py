"""Shared by the OpenVINO paths (openvino, tf_openvino; not a path itself): the precisions this CPU offers,
the compile settings, the runner and the openvino backend's config (github.com/triton-inference-server/
openvino_backend README)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from navigator.lazy import installed, require
from navigator.records import Artifact, Params, ParamSpec, TritonModel

XML = "model.xml"
# searchspace precision -> OpenVINO's INFERENCE_PRECISION_HINT and the CPU capability it needs.
PRECISIONS = {"f32": ("f32", "FP32"), "bf16": ("bf16", "BF16")}


def narrow(spec: ParamSpec) -> ParamSpec:
    """Offer only the inference precisions this CPU supports (OPTIMIZATION_CAPABILITIES)."""
    if spec.name != "inference_precision" or not installed("openvino"):
        return spec
    caps = set(require("openvino").Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    kept = tuple(c for c in spec.choices if PRECISIONS[str(c)][1] in caps)
    return ParamSpec(spec.name, spec.stage, kept or ("f32",), when=spec.when, sources=spec.sources)


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


def model(artifact: Artifact, params: Params) -> TritonModel:
    """The openvino backend, the compile settings as its parameters (openvino, tf_openvino)."""
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
