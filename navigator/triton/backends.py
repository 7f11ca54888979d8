"""What each Triton backend accepts: model file layout, `parameters` keys and values, execution accelerators.

One table, checked against every config navigator emits (tests/unit/test_backend_table.py). Sources, at the
revisions ../reference/anchors.md names:
  onnxruntime  onnxruntime_backend README "Model Config Options" and src/onnxruntime.cc (graph level -1/1/2,
               CUDA / TensorRT / OpenVINO accelerators; OpenVINO takes no parameters)
  openvino     openvino_backend README "Configuration"
  pytorch      pytorch_backend README "Parameters" (platform pytorch_libtorch, model.pt)
  tensorrt     tensorrt_backend README (platform tensorrt_plan, model.plan)
  tensorflow   tensorflow_backend README (platform tensorflow_savedmodel, model.savedmodel/, TF-TRT accelerator,
               graph level 1 = XLA)
  fil          fil_backend docs/model_config.md (names of 25.09; the older names on request)
  python       python_backend README (model.py; navigator's template reads its own keys, documented there)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from navigator.triton.fil import FILES

Rule = Callable[[str], bool]


def one_of(*values: str) -> Rule:
    return lambda v: v in values


def integer(low: int | None = None, high: int | None = None) -> Rule:
    def ok(v: str) -> bool:
        return bool(re.fullmatch(r"-?\d+", v)) and (low is None or int(v) >= low) and (high is None or int(v) <= high)
    return ok


def number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def text(v: str) -> bool:
    return bool(v)


BIT = one_of("0", "1")
# Triton's ParseBoolValue (backend common utilities), used for the TensorRT accelerator's switches
BOOL = one_of("0", "1", "true", "false", "True", "False", "yes", "no", "on", "off")
TRUE_FALSE = one_of("true", "false")
SHAPES = re.compile(r"^[\w.:/-]+:\d+(x\d+)*(,[\w.:/-]+:\d+(x\d+)*)*$").fullmatch


@dataclass(frozen=True)
class Backend:
    files: tuple[str, ...]  # what the version directory must hold (the default model file first)
    platform: str = ""
    parameters: dict[str, Rule] = field(default_factory=dict)
    accelerators: dict[str, dict[str, Rule]] = field(default_factory=dict)  # "gpu:tensorrt" -> its keys
    graph_levels: tuple[int, ...] = ()


ORT_CUDA = {
    "cudnn_conv_algo_search": one_of("EXHAUSTIVE", "HEURISTIC", "DEFAULT"), "gpu_mem_limit": integer(0),
    "arena_extend_strategy": one_of("kNextPowerOfTwo", "kSameAsRequested"),
    "cudnn_conv_use_max_workspace": BIT, "cudnn_conv1d_pad_to_nc1d": BIT, "enable_cuda_graph": BIT,
    "do_copy_in_default_stream": BIT, "use_ep_level_unified_stream": BIT, "prefer_nhwc": BIT,
    "tunable_op_enable": BIT, "tunable_op_tuning_enable": BIT, "tunable_op_max_tuning_duration_ms": integer(0),
    "enable_skip_layer_norm_strict_mode": BIT,
    "use_tf32": BIT,  # onnxruntime.ai CUDA-ExecutionProvider "use_tf32" (ORT >= 1.18; 1 by default)
}
ORT_TENSORRT = {
    "precision_mode": one_of("FP32", "FP16", "BF16", "INT8"), "max_workspace_size_bytes": integer(1),
    "int8_calibration_table_name": text, "int8_use_native_calibration_table": BOOL,
    "trt_engine_cache_enable": BOOL, "trt_engine_cache_path": text, "trt_engine_cache_prefix": text,
    "trt_timing_cache_enable": BOOL, "trt_timing_cache_path": text, "trt_force_timing_cache": BOOL,
    "trt_builder_optimization_level": integer(0, 5), "trt_max_partition_iterations": integer(1),
    "trt_min_subgraph_size": integer(1), "trt_auxiliary_streams": integer(-1), "trt_tactic_sources": text,
    "trt_sparsity_enable": BOOL, "trt_build_heuristics_enable": BOOL, "trt_layer_norm_fp32_fallback": BIT,
    "trt_context_memory_sharing_enable": BOOL, "trt_force_sequential_engine_build": BOOL,
    "trt_dla_enable": BOOL, "trt_dla_core": integer(0), "trt_cuda_graph_enable": BOOL,
    "trt_profile_min_shapes": lambda v: bool(SHAPES(v)), "trt_profile_opt_shapes": lambda v: bool(SHAPES(v)),
    "trt_profile_max_shapes": lambda v: bool(SHAPES(v)), "trt_extra_plugin_lib_paths": text,
    "trt_dump_subgraphs": BOOL, "trt_detailed_build_log": BOOL,
}
FIL_COMMON = {
    "model_type": one_of("xgboost", "xgboost_json", "xgboost_ubj", "lightgbm", "treelite_checkpoint"),
    "predict_proba": TRUE_FALSE, "threshold": number, "xgboost_allow_unknown_field": TRUE_FALSE,
    "transfer_threshold": integer(0), "use_experimental_optimizations": TRUE_FALSE, "cpu_nthread": integer(-1),
}
POW2_32 = one_of("1", "2", "4", "8", "16", "32")

BACKENDS: dict[str, Backend] = {
    "onnxruntime": Backend(
        files=("model.onnx",), platform="onnxruntime_onnx", graph_levels=(-1, 0, 1, 2),
        parameters={"intra_op_thread_count": integer(0), "inter_op_thread_count": integer(0),
                    "execution_mode": BIT, "enable_mem_arena": BIT, "enable_mem_pattern": BIT,
                    "memory.enable_memory_arena_shrinkage": text,
                    "session.use_device_allocator_for_initializers": BIT,
                    # deprecated model-level CUDA keys, still parsed by the backend
                    "cudnn_conv_algo_search": one_of("0", "1", "2"), "gpu_mem_limit": integer(0),
                    "arena_extend_strategy": BIT, "do_copy_in_default_stream": BIT},
        accelerators={"gpu:cuda": ORT_CUDA, "gpu:tensorrt": ORT_TENSORRT, "cpu:openvino": {}}),
    "openvino": Backend(
        files=("model.xml", "model.bin"),
        parameters={"PERFORMANCE_HINT": one_of("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT"),
                    "NUM_STREAMS": lambda v: v in ("AUTO", "NUMA") or integer(1)(v),
                    "INFERENCE_NUM_THREADS": integer(0), "COMPILATION_NUM_THREADS": integer(0),
                    "HINT_BF16": one_of("YES", "NO"), "TARGET_DEVICE": one_of("CPU", "GPU", "NPU", "AUTO"),
                    "ENABLE_BATCH_PADDING": one_of("YES", "NO"), "SKIP_OV_DYNAMIC_BATCHSIZE": one_of("YES", "NO"),
                    "RESHAPE_IO_LAYERS": one_of("YES", "NO"), "CPU_EXTENSION_PATH": text}),
    "pytorch": Backend(
        files=("model.pt",), platform="pytorch_libtorch",
        parameters={k: TRUE_FALSE for k in ("DISABLE_OPTIMIZED_EXECUTION", "INFERENCE_MODE", "DISABLE_CUDNN",
                                            "ENABLE_WEIGHT_SHARING", "ENABLE_CACHE_CLEANING",
                                            "ENABLE_JIT_EXECUTOR", "ENABLE_JIT_PROFILING")}
        | {"INTER_OP_THREAD_COUNT": integer(1), "INTRA_OP_THREAD_COUNT": integer(1)}),
    "tensorrt": Backend(
        files=("model.plan",), platform="tensorrt_plan",
        parameters={"execution_context_allocation_strategy": one_of("STATIC", "ON_PROFILE_CHANGE")}),
    "tensorflow": Backend(
        files=("model.savedmodel",), platform="tensorflow_savedmodel", graph_levels=(0, 1),  # 1: XLA
        accelerators={"gpu:tensorrt": {"precision_mode": one_of("FP32", "FP16", "INT8"),
                                       "max_workspace_size_bytes": integer(1), "minimum_segment_size": integer(1),
                                       "max_cached_engines": integer(1)},
                      "gpu:auto_mixed_precision": {}}),
    "fil": Backend(
        files=(), parameters={**FIL_COMMON, "is_classifier": TRUE_FALSE, "layout": one_of(
            "depth_first", "breadth_first", "layered"), "chunk_size": POW2_32}),
    "fil_legacy": Backend(
        files=(), parameters={**FIL_COMMON, "output_class": TRUE_FALSE, "algo": one_of(
            "ALGO_AUTO", "NAIVE", "TREE_REORG", "BATCH_TREE_REORG"), "threads_per_tree": POW2_32,
            "storage_type": one_of("AUTO", "DENSE", "SPARSE", "SPARSE8"), "blocks_per_sm": integer(0)}),
    "python": Backend(
        files=("model.py", "twin.json", "runtimes"),
        # the runtime and file; the session settings are the trial's params in twin.json, and these
        # serving knobs replace the param of their name
        parameters={"RUNTIME": one_of("torch", "onnxruntime", "openvino"), "MODEL_FILE": text,
                    "threads": integer(1), "intra_op_num_threads": integer(1), "inference_num_threads": integer(1),
                    "num_streams": integer(1)}),
}
# model_type -> the file the FIL backend loads by default (fil_backend docs/model_config.md): navigator's
# own table, plus the legacy binary XGBoost format navigator does not write
FIL_FILES = {**FILES, "xgboost": "xgboost.model"}


def problems(config: Any, files: list[str]) -> list[str]:
    """Everything in a ModelConfig (and its version directory's file names) that its backend would not take."""
    name = config.backend or {b.platform: k for k, b in BACKENDS.items() if b.platform}.get(config.platform, "")
    params = {k: v.string_value for k, v in config.parameters.items()}
    if name == "fil" and any(k in params for k in ("output_class", "algo", "threads_per_tree")):
        name = "fil_legacy"
    spec = BACKENDS.get(name)
    if spec is None:
        return [f"unknown backend {config.backend!r} / platform {config.platform!r}"]
    found = []
    if spec.platform and config.platform and config.platform != spec.platform:
        found.append(f"platform {config.platform!r} is not {name}'s {spec.platform!r}")
    wanted = list(spec.files)
    if name.startswith("fil"):
        wanted = [FIL_FILES.get(params.get("model_type", ""), "?")]
    if config.default_model_filename:
        wanted[:1] = [config.default_model_filename]
    found += [f"version directory lacks {f}" for f in wanted if f not in files]
    if name == "python" and params.get("MODEL_FILE") not in files:
        found.append(f"MODEL_FILE {params.get('MODEL_FILE')!r} is not in the version directory")
    rules = spec.parameters
    for key, value in params.items():
        rule = rules.get(key)
        if rule is None:
            found.append(f"{name} has no parameter {key!r}")
        elif not rule(value):
            found.append(f"{name} parameter {key}={value!r} is not a legal value")
    accelerators = config.optimization.execution_accelerators
    for where, items in (("gpu", accelerators.gpu_execution_accelerator),
                         ("cpu", accelerators.cpu_execution_accelerator)):
        for acc in items:
            acc_rules = spec.accelerators.get(f"{where}:{acc.name}")
            if acc_rules is None:
                found.append(f"{name} has no {where} execution accelerator {acc.name!r}")
                continue
            found += [f"{acc.name} accelerator: {k}={v!r} is not legal" for k, v in acc.parameters.items()
                      if k not in acc_rules or not acc_rules[k](v)]
    if config.optimization.graph.level and config.optimization.graph.level not in spec.graph_levels:
        found.append(f"{name} takes no graph level {config.optimization.graph.level}")
    if config.HasField("dynamic_batching") and config.max_batch_size == 0:
        found.append("dynamic_batching needs max_batch_size > 0")
    if any(p > config.max_batch_size for p in config.dynamic_batching.preferred_batch_size):
        found.append("a preferred batch size exceeds max_batch_size")
    return found
