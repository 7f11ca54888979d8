"""ONNX (exported from PyTorch, or the user's file; optionally fused by ONNX Runtime's transformer optimizer
and converted to fp16 with fp32 inputs and outputs: _ort_transformers) -> ONNX Runtime with the CUDA
execution provider, timed through IO binding on the device.

Provider options: https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html
Triton: the onnxruntime backend on KIND_GPU; the options go into the `cuda` gpu_execution_accelerator
(the backend passes them to ORT), and the three the seed and older servers read as model parameters
(cudnn_conv_algo_search 0/1/2, arena_extend_strategy 0/1, do_copy_in_default_stream) are also set
there, with the same values (onnxruntime_backend README, "ONNX Runtime with CUDA Execution Provider
optimization").
"""

from __future__ import annotations

from navigator.cache import Cache
from navigator.lazy import installed
from navigator.paths import _ort_transformers, _probe
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.paths._ort_triton import TRITON_GRAPH_LEVEL
from navigator.records import Artifact, Params, TritonModel
from navigator.runtimes import ort as rt_ort
from navigator.source import ModelSource
from navigator.triton import python_backend

NAME = "ort_cuda"
TIMEOUT_S = 900.0  # default trial timeout: ONNX export, fp16 conversion, EXHAUSTIVE cuDNN search
COST_S = 20.0  # expected seconds of one trial, for the search to order paths by: ONNX export (cached), session creation, cuDNN search
DEVICES = ("cuda",)
FRAMEWORKS = ("torch", "onnx", "tf")  # tf: converted by tf2onnx (_onnx_export)
BASELINE = (("onnx", "cuda"),)
REFERENCE = ("cuda",)
PRECISION_CLASSES = ("fp32", "tf32", "fp16")
# The deprecated model-level parameters take numbers (onnxruntime_backend README).
LEGACY_ALGO_SEARCH = {"EXHAUSTIVE": "0", "HEURISTIC": "1", "DEFAULT": "2"}
LEGACY_ARENA = {"kNextPowerOfTwo": "0", "kSameAsRequested": "1"}
GRAPHS_NOTE = ("served by the python backend (templates/model.py): Triton's onnxruntime backend has no CUDA graph "
               "option for the CUDA execution provider, and ORT's CUDA graphs need inputs and outputs bound to "
               "fixed device buffers, which the twin does per input shape")


def available() -> str | None:
    if not installed("onnxruntime"):
        return "onnxruntime is not installed (pip install 'triton-navigator[gpu]')"
    if "CUDAExecutionProvider" not in _probe.ort_providers():
        return "onnxruntime has no CUDA execution provider (install onnxruntime-gpu)"
    if not _probe.cuda_gpus():
        return "no CUDA GPU is visible"
    return None


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    model = _ort_transformers.onnx_file(source, params, cache, use_gpu=True)
    return Artifact(NAME, model.parent, model.parent.name, dict(params), model)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    assert artifact.file is not None
    return rt_ort.open_session(artifact.file, params, "cuda")


def precision(params: Params) -> str:
    return "fp16" if params.get("precision") == "fp16" else ("tf32" if params.get("use_tf32", True) else "fp32")


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    assert artifact.file is not None
    twin = python_backend.spec_file("onnxruntime", "cuda", dict(params))
    if params.get("enable_cuda_graph"):
        served = python_backend.model(artifact.file, twin)
        served.warnings = (GRAPHS_NOTE,)
        return served
    options = {k: v for k, v in rt_ort.cuda_options(params).items() if k not in ("device_id", "enable_cuda_graph")}
    legacy = {}
    if "cudnn_conv_algo_search" in params:
        legacy["cudnn_conv_algo_search"] = LEGACY_ALGO_SEARCH[str(params["cudnn_conv_algo_search"])]
    if "arena_extend_strategy" in params:
        legacy["arena_extend_strategy"] = LEGACY_ARENA[str(params["arena_extend_strategy"])]
    if "do_copy_in_default_stream" in params:
        legacy["do_copy_in_default_stream"] = rt_ort.option_text(params["do_copy_in_default_stream"])
    if "gpu_mem_limit" in options:
        legacy["gpu_mem_limit"] = options["gpu_mem_limit"]
    level = TRITON_GRAPH_LEVEL[str(params.get("graph_optimization_level", "all"))]
    return TritonModel(backend="onnxruntime", files={"model.onnx": artifact.file, python_backend.SPEC: twin},
                       parameters=legacy,
                       graph_level=level or None, gpu_accelerators={"cuda": options}, kind="KIND_GPU")
