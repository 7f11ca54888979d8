"""Shared by the OpenVINO paths (openvino, tf_openvino; not a path itself): the precisions this CPU offers,
their tolerance classes and the openvino backend's config (github.com/triton-inference-server/
openvino_backend README). The compile settings and the runner are navigator/runtimes/openvino.py's."""

from __future__ import annotations

from navigator.lazy import installed, require
from navigator.records import Artifact, Params, ParamSpec, TritonModel
from navigator.runtimes.openvino import PRECISIONS, compile_config
from navigator.triton import python_backend

XML = "model.xml"
PRECISION_CLASSES = ("fp32", "bf16")


def narrow(spec: ParamSpec) -> ParamSpec:
    """Offer only the inference precisions this CPU supports (OPTIMIZATION_CAPABILITIES)."""
    if spec.name != "inference_precision" or not installed("openvino"):
        return spec
    caps = set(require("openvino").Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    kept = tuple(c for c in spec.choices if PRECISIONS[str(c)][1] in caps)
    return ParamSpec(spec.name, spec.stage, kept or ("f32",), when=spec.when, sources=spec.sources)


def model(artifact: Artifact, params: Params) -> TritonModel:
    """The openvino backend, the compile settings as its parameters (openvino, tf_openvino), with the
    twin's spec for a server without that backend."""
    assert artifact.file is not None
    config = compile_config(params)
    parameters = {k: v for k, v in config.items() if k != "INFERENCE_PRECISION_HINT"}
    if config["INFERENCE_PRECISION_HINT"] == "bf16":
        parameters["HINT_BF16"] = "YES"
    twin = python_backend.spec_file("openvino", "cpu", dict(params))
    return TritonModel(backend="openvino", parameters=parameters,
                       files={XML: artifact.file, "model.bin": artifact.file.with_suffix(".bin"), python_backend.SPEC: twin})


def precision(params: Params) -> str:
    """The precision the trial computes in, which sets its validation tolerance."""
    return "bf16" if params.get("inference_precision") == "bf16" else "fp32"
