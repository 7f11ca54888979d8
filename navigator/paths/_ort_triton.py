"""Triton's onnxruntime backend, shared by the ONNX Runtime paths (not a path itself): its graph levels and
the CPU model config (github.com/triton-inference-server/onnxruntime_backend README, "Other Optimization
Options")."""

from __future__ import annotations

from navigator.records import Artifact, Params, TritonModel
from navigator.triton import python_backend

# searchspace level -> Triton's optimization.graph.level for the onnxruntime backend. The backend's
# source maps absent/0 -> ORT_ENABLE_ALL, -1 -> BASIC, 1 -> EXTENDED, 2 -> DISABLE_ALL
# (onnxruntime_backend src/onnxruntime.cc), unlike model_config.proto's comment.
TRITON_GRAPH_LEVEL = {"all": 0, "basic": -1, "extended": 1, "disable": 2}


def cpu_model(artifact: Artifact, params: Params) -> TritonModel:
    """The onnxruntime backend on the CPU, the session options under its own keys (ort_cpu, tree_onnx),
    with the twin's spec for a server without that backend."""
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
    twin = python_backend.spec_file("onnxruntime", "cpu", dict(params))
    return TritonModel(backend="onnxruntime", files={"model.onnx": artifact.file, python_backend.SPEC: twin},
                       parameters=parameters, graph_level=level or None)
