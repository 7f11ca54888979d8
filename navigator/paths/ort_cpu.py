"""ONNX (exported from PyTorch, converted from TensorFlow by tf2onnx, or the user's file; optionally fused by
ONNX Runtime's transformer optimizer: _ort_transformers) -> ONNX Runtime, CPU.

Triton: the onnxruntime backend, with the session options mapped to its own keys
(github.com/triton-inference-server/onnxruntime_backend README, "Other Optimization Options").
"""

from __future__ import annotations

from navigator.cache import Cache
from navigator.lazy import installed
from navigator.paths import _ort_transformers, _ort_triton
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.runtimes import ort as rt_ort
from navigator.source import ModelSource

NAME = "ort_cpu"
TIMEOUT_S = 600.0  # default trial timeout: an ONNX export of a large model takes minutes
COST_S = 20.0  # expected trial cost (until the study measures its own): an ONNX export, then a session
DEVICES = ("cpu",)
FRAMEWORKS = ("torch", "onnx", "tf")
BASELINE = (("onnx", "cpu"),)  # an ONNX source's own runtime
REFERENCE = ("cpu",)  # ONNX Runtime with default options, the second reference


def available() -> str | None:
    return None if installed("onnxruntime") else "onnxruntime is not installed (pip install 'triton-navigator[onnx]')"


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    model = _ort_transformers.onnx_file(source, params, cache, use_gpu=False)
    return Artifact(NAME, model.parent, model.parent.name, dict(params), model)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    assert artifact.file is not None
    return rt_ort.open_session(artifact.file, params, "cpu")


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    return _ort_triton.cpu_model(artifact, params)
