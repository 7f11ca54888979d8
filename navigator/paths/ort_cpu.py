"""ONNX (exported from PyTorch, converted from TensorFlow by tf2onnx, or the user's file; optionally fused by
ONNX Runtime's transformer optimizer: _ort_transformers) -> ONNX Runtime, CPU.

Triton: the onnxruntime backend, with the session options mapped to its own keys
(github.com/triton-inference-server/onnxruntime_backend README, "Other Optimization Options").
"""

from __future__ import annotations

from navigator.cache import Cache
from navigator.lazy import installed
from navigator.paths import _ort_transformers
from navigator.paths._ort import OrtRunner
from navigator.paths.base import Runner
from navigator.records import Artifact, Params, TritonModel
from navigator.source import ModelSource

NAME = "ort_cpu"
TIMEOUT_S = 600.0  # default trial timeout: an ONNX export of a large model takes minutes
COST_S = 20.0  # expected trial cost (until the study measures its own): an ONNX export, then a session
DEVICES = ("cpu",)
FRAMEWORKS = ("torch", "onnx", "tf")

# searchspace level -> Triton's optimization.graph.level for the onnxruntime backend. The backend's
# source maps absent/0 -> ORT_ENABLE_ALL, -1 -> BASIC, 1 -> EXTENDED, 2 -> DISABLE_ALL
# (onnxruntime_backend src/onnxruntime.cc), unlike model_config.proto's comment.
TRITON_GRAPH_LEVEL = {"all": 0, "basic": -1, "extended": 1, "disable": 2}


def available() -> str | None:
    return None if installed("onnxruntime") else "onnxruntime is not installed (pip install 'triton-navigator[onnx]')"


def convert(source: ModelSource, params: Params, cache: Cache) -> Artifact:
    model = _ort_transformers.onnx_file(source, params, cache, use_gpu=False)
    return Artifact(NAME, model.parent, model.parent.name, dict(params), model)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    assert artifact.file is not None
    return OrtRunner(artifact.file, params, ["CPUExecutionProvider"])


def triton(artifact: Artifact, params: Params) -> TritonModel:
    assert artifact.file is not None
    parameters = {}
    if "intra_op_num_threads" in params:
        parameters["intra_op_thread_count"] = str(params["intra_op_num_threads"])
    if "inter_op_num_threads" in params:
        parameters["inter_op_thread_count"] = str(params["inter_op_num_threads"])
    if "execution_mode" in params:
        parameters["execution_mode"] = "1" if params["execution_mode"] == "parallel" else "0"
    if "enable_mem_pattern" in params:
        parameters["enable_mem_pattern"] = "1" if params["enable_mem_pattern"] else "0"
    if "enable_cpu_mem_arena" in params:
        parameters["enable_mem_arena"] = "1" if params["enable_cpu_mem_arena"] else "0"
    level = TRITON_GRAPH_LEVEL[str(params.get("graph_optimization_level", "all"))]
    return TritonModel(backend="onnxruntime", files={"model.onnx": artifact.file}, parameters=parameters,
                       graph_level=level or None)
