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
from navigator.lazy import installed, require
from navigator.paths import _ort_transformers
from navigator.paths._ort import OrtCudaRunner
from navigator.paths._ort_triton import TRITON_GRAPH_LEVEL
from navigator.paths.base import Runner
from navigator.records import Artifact, Params, TritonModel
from navigator.source import ModelSource
from navigator.triton import python_backend

NAME = "ort_cuda"
TIMEOUT_S = 900.0  # default trial timeout: ONNX export, fp16 conversion, EXHAUSTIVE cuDNN search
COST_S = 20.0  # expected seconds of one trial, for the search to order paths by: ONNX export (cached), session creation, cuDNN search
DEVICES = ("cuda",)
FRAMEWORKS = ("torch", "onnx", "tf")  # tf: converted by tf2onnx (_onnx_export)
# The deprecated model-level parameters take numbers (onnxruntime_backend README).
LEGACY_ALGO_SEARCH = {"EXHAUSTIVE": "0", "HEURISTIC": "1", "DEFAULT": "2"}
LEGACY_ARENA = {"kNextPowerOfTwo": "0", "kSameAsRequested": "1"}
PROVIDER_OPTIONS = ("cudnn_conv_algo_search", "use_tf32", "arena_extend_strategy", "do_copy_in_default_stream",
                    "prefer_nhwc", "enable_cuda_graph")
# Provider options the python-backend twin passes on as they are (templates/model.py, OrtModel).
TWIN_OPTIONS = ("use_tf32", "prefer_nhwc", "enable_cuda_graph")
GRAPHS_NOTE = ("served by the python backend (templates/model.py): Triton's onnxruntime backend has no CUDA graph "
               "option for the CUDA execution provider, and ORT's CUDA graphs need inputs and outputs bound to "
               "fixed device buffers, which the twin does per input shape")


def available() -> str | None:
    if not installed("onnxruntime"):
        return "onnxruntime is not installed (pip install 'triton-navigator[gpu]')"
    if "CUDAExecutionProvider" not in require("onnxruntime").get_available_providers():
        return "onnxruntime has no CUDA execution provider (install onnxruntime-gpu)"
    if installed("torch") and not require("torch").cuda.is_available():
        return "no CUDA GPU is visible"
    return None


def convert(source: ModelSource, params: Params, cache: Cache) -> Artifact:
    model = _ort_transformers.onnx_file(source, params, cache, use_gpu=True)
    return Artifact(NAME, model.parent, model.parent.name, dict(params), model)


def _option(value: object) -> str:
    return ("1" if value else "0") if isinstance(value, bool) else str(value)


def provider_options(params: Params) -> dict[str, str]:
    options = {"device_id": "0", **{k: _option(params[k]) for k in PROVIDER_OPTIONS if k in params}}
    if int(params.get("gpu_mem_limit_gib", 0)) > 0:  # 0: ORT's default, no limit (SIZE_MAX)
        options["gpu_mem_limit"] = str(int(params["gpu_mem_limit_gib"]) * 2**30)
    return options


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    assert artifact.file is not None
    providers = [("CUDAExecutionProvider", provider_options(params)), "CPUExecutionProvider"]
    return OrtCudaRunner(artifact.file, params, providers, cuda_graph=bool(params.get("enable_cuda_graph")))


def precision(params: Params) -> str:
    return "fp16" if params.get("precision") == "fp16" else ("tf32" if params.get("use_tf32", True) else "fp32")


def triton(artifact: Artifact, params: Params) -> TritonModel:
    assert artifact.file is not None
    options = {k: v for k, v in provider_options(params).items() if k != "device_id"}
    legacy = {}
    if "cudnn_conv_algo_search" in params:
        legacy["cudnn_conv_algo_search"] = LEGACY_ALGO_SEARCH[str(params["cudnn_conv_algo_search"])]
    if "arena_extend_strategy" in params:
        legacy["arena_extend_strategy"] = LEGACY_ARENA[str(params["arena_extend_strategy"])]
    if "do_copy_in_default_stream" in params:
        legacy["do_copy_in_default_stream"] = _option(params["do_copy_in_default_stream"])
    if "gpu_mem_limit" in options:
        legacy["gpu_mem_limit"] = options["gpu_mem_limit"]
    level = TRITON_GRAPH_LEVEL[str(params.get("graph_optimization_level", "all"))]
    if params.get("enable_cuda_graph"):
        twin = python_backend.model("onnxruntime", artifact.file, {
            **legacy, **{k: options[k] for k in TWIN_OPTIONS if k in options}, "GRAPH_LEVEL": str(level)})
        twin.kind, twin.warnings = "KIND_GPU", (GRAPHS_NOTE,)
        return twin
    options.pop("enable_cuda_graph", None)
    return TritonModel(backend="onnxruntime", files={"model.onnx": artifact.file}, parameters=legacy,
                       graph_level=level or None, gpu_accelerators={"cuda": options}, kind="KIND_GPU")
