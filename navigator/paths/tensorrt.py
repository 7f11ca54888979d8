"""Converts ONNX (exported from PyTorch, or the user's file) to a native TensorRT plan (model.plan) with the
TensorRT Python API, and runs it with an execution context on CUDA buffers that PyTorch allocates.

Precision: TensorRT <= 10 builds a weakly typed network and takes BuilderFlag.FP16 / BF16; TF32 is on by
default there (BuilderFlag.TF32) and is cleared for "fp32". TensorRT 11 removed the precision flags and
builds strongly typed networks only, so fp16 / bf16 come from an ONNX file converted beforehand, inputs
and outputs kept in fp32 (ModelOpt AutoCast when installed, else onnxconverter-common's float16 for fp16).
`quantize` int8 / fp8: the ONNX model gets Q/DQ nodes from Model Optimizer's ONNX quantization first
(paths/_modelopt.py, calibrated on Target.calibration), and TensorRT builds it as a strongly typed network
without precision flags, its explicit-quantization mode ("Use explicit quantization with Strong Typing.
Precision-control build flags are not required and should not be specified": TensorRT developer guide,
Explicit Quantization; TensorRT 11 removed BuilderFlag.INT8/FP8 for it). Unverified: TensorRT does not
install on the machines this is built on.

One optimization profile spans the dynamic batch axis (see `batches`); the builder's timing cache is a
file under the cache root, reused by every build. A plan is specific to the TensorRT version and the GPU
model, so both are part of its cache key.

Triton: platform tensorrt_plan on KIND_GPU; optimization.cuda.graphs follows the cuda_graphs parameter.
(TensorRT API: docs.nvidia.com/deeplearning/tensorrt, python/src/infer/pyCore.cpp of NVIDIA/TensorRT.)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.lazy import installed, require
from navigator.paths import _modelopt
from navigator.paths._trt import Profile, engine_layers, gpu_reason, profile, shapes_text
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, ParamSpec, TritonModel
from navigator.source import ModelSource

NAME = "tensorrt"
TIMEOUT_S = 1800.0  # default trial timeout: an engine build at optimization level 5 takes many minutes
DEVICES = ("cuda",)
FRAMEWORKS = ("torch", "onnx")
PRECISION_CLASSES = ("fp16", "tf32", "fp32", "bf16", "int8", "fp8")
PLAN = "model.plan"
LOW = ("fp16", "bf16")
BUILD_KEYS = ("exporter", "opset", "precision", "workspace", "builder_optimization_level")
# TensorRT DataType member name -> torch dtype name (python/src/infer/pyFoundationalTypes.cpp)
TORCH_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32",
                "INT64": "int64", "BOOL": "bool", "UINT8": "uint8"}

def available() -> str | None:
    if not installed("tensorrt"):
        return "TensorRT is not installed (pip install tensorrt; it needs an NVIDIA GPU and driver)"
    try:
        require("tensorrt")
    except Exception as exc:  # the wheel is there but its libraries do not load (driver, CUDA version)
        text = str(exc).strip()
        return f"TensorRT does not import: {text.splitlines()[0] if text else type(exc).__name__}"
    return gpu_reason(need_torch=True)


def narrow(spec: ParamSpec) -> ParamSpec:
    """`quantize` without the modes this machine cannot run (paths/_modelopt.py)."""
    return _modelopt.narrow(spec)


def _major(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


def _typed_onnx(onnx_file: Path, precision: str, out: Path) -> Path:
    """The ONNX model in fp16/bf16 with fp32 inputs and outputs, for a strongly typed network."""
    onnx = require("onnx")
    if installed("modelopt"):
        autocast = require("modelopt.onnx.autocast")
        model = autocast.convert_to_mixed_precision(onnx_path=str(onnx_file), low_precision_type=precision,
                                                    keep_io_types=True)
    elif precision == "fp16" and installed("onnxconverter_common"):
        float16 = require("onnxconverter_common.float16")
        model = float16.convert_float_to_float16(onnx.load(str(onnx_file)), keep_io_types=True)
    else:
        raise TrialError(f"TensorRT 11 builds strongly typed networks only: {precision} needs the ONNX model converted "
                         "first; install nvidia-modelopt (AutoCast: fp16 and bf16) or onnxconverter-common (fp16)")
    target = out / f"model_{precision}.onnx"
    onnx.save_model(model, str(target), save_as_external_data=True, location=f"{target.name}.data")
    return target


def build_flags(trt: Any, params: Params) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
    """(strongly typed network, BuilderFlag names to set, names to clear) for this trial and TensorRT."""
    quantize = _modelopt.mode(params)
    if quantize != "none":  # explicit quantization: the Q/DQ graph's types decide, no precision flags
        if not hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
            raise TrialError(f"TensorRT {trt.__version__} has no strongly typed networks, which {quantize} Q/DQ "
                             "models are built as here (TensorRT 10 or newer)")
        return True, (), ()
    precision = str(params.get("precision", "fp32"))
    # TF32 is on by default: fp32 layers would compute in TF32 unless it is cleared.
    clear = ("TF32",) if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32") else ()
    if precision not in LOW or _major(trt) >= 11:  # TensorRT 11: strongly typed only, types from the ONNX
        return _major(trt) >= 11, (), clear
    name = "FP16" if precision == "fp16" else "BF16"
    if not hasattr(trt.BuilderFlag, name):
        raise TrialError(f"TensorRT {trt.__version__} has no BuilderFlag for {precision}")
    return False, (name,), clear


def _configure(trt: Any, builder: Any, network: Any, params: Params, shapes: Profile) -> Any:
    """The builder config: workspace pool, optimization level, precision flags (build_flags), profile."""
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(params["workspace"]))
    config.builder_optimization_level = int(params["builder_optimization_level"])
    # Layer precisions in the engine, for its inspector (TrialOutcome.precision_run); NVTX ranges carry the
    # same detail, which costs nothing unless a profiler is attached (TensorRT "Engine Inspector" docs).
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    _, flags, cleared = build_flags(trt, params)
    for name in cleared:
        config.clear_flag(getattr(trt.BuilderFlag, name))
    for name in flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    dynamic = [network.get_input(i) for i in range(network.num_inputs)
               if any(int(d) < 0 for d in network.get_input(i).shape)]
    if dynamic:
        opt_profile = builder.create_optimization_profile()
        for tensor in dynamic:
            if tensor.name not in shapes:
                raise TrialError(f"network input {tensor.name!r} has a dynamic shape but is not a model input here")
            opt_profile.set_shape(tensor.name, *shapes[tensor.name])
        config.add_optimization_profile(opt_profile)
    return config


def _timing_cache(config: Any, file: Path) -> None:
    """Give the builder the shared timing cache (a new one when the file is missing or unreadable)."""
    data = file.read_bytes() if file.is_file() else b""
    cache = config.create_timing_cache(data)
    if cache is None or not config.set_timing_cache(cache, False):
        config.set_timing_cache(config.create_timing_cache(b""), False)


def _save_timing_cache(config: Any, file: Path) -> None:
    cache = config.get_timing_cache()
    if cache is None:
        return
    tmp = file.with_name(f".{file.name}.{os.getpid()}")
    tmp.write_bytes(bytes(cache.serialize()))
    os.replace(tmp, file)  # atomic: a concurrent reader sees the old or the new cache, never half of one


def _build(onnx_file: Path, params: Params, shapes: Profile, timing: Path, out: Path) -> None:
    trt = require("tensorrt")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    computes = precision(params)  # int8 / fp8 for a Q/DQ model: its types are in the graph already
    typed = build_flags(trt, params)[0]
    model = _typed_onnx(onnx_file, computes, out) if typed and computes in LOW else onnx_file
    # Strong typing is the only mode of TensorRT 11 (the flag is kept there, and ignored).
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None) if typed else None
    network = builder.create_network(0 if flag is None else 1 << int(flag))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(model)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TrialError(f"TensorRT's ONNX parser rejected the model: {errors or 'no details'}")
    config = _configure(trt, builder, network, params, shapes)
    _timing_cache(config, timing)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise TrialError(f"TensorRT could not build an engine ({computes}, workspace {params['workspace']} bytes, "
                         f"level {params['builder_optimization_level']}); its log has the reason")
    (out / PLAN).write_bytes(bytes(plan))
    _save_timing_cache(config, timing)


def device_key() -> dict[str, str]:
    """What makes a TensorRT engine non-portable: the TensorRT version and the GPU model."""
    return {"tensorrt": str(require("tensorrt").__version__), "gpu": str(require("torch").cuda.get_device_name())}


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    onnx_file = _modelopt.onnx_file(source, params, cache, target)
    shapes = profile(source, target)
    device = device_key()
    key = {**{k: params[k] for k in BUILD_KEYS if k in params}, **_modelopt.key(params, target), **device,
           "profile": [shapes_text(shapes, i) for i in range(3)]}
    slug = re.sub(r"[^A-Za-z0-9.]+", "_", f"{device['tensorrt']}-{device['gpu']}")
    timing = cache.root / f"tensorrt-timing-{slug}.cache"
    cache.root.mkdir(parents=True, exist_ok=True)
    d = cache.get(NAME, key, lambda out: _build(onnx_file, params, shapes, timing, out))
    return Artifact(NAME, d, d.name, dict(params), d / PLAN)


class TensorRTRunner(Runner):
    """An execution context over torch CUDA tensors (TensorRT 10 name-based API: set_input_shape,
    set_tensor_address, execute_async_v3); optionally its launch captured in a CUDA graph."""

    def __init__(self, plan: Path, source: ModelSource, params: Params) -> None:
        trt = require("tensorrt")
        self.torch = require("torch")
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(plan.read_bytes())
        if self.engine is None:
            raise TrialError(f"TensorRT could not deserialize {plan.name} (built by another TensorRT or GPU?)")
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise TrialError("TensorRT could not create an execution context (out of GPU memory?)")
        self.inputs = [t.name for t in source.io.inputs]
        self.outputs = [t.name for t in source.io.outputs]
        self.cuda_graphs = bool(params.get("cuda_graphs", False))
        self.stream = self.torch.cuda.Stream()
        self._held: list[Any] = []  # the context holds raw addresses: the tensors live as long as it uses them
        self._graph: Any = None

    def _dtype(self, name: str) -> Any:
        kind = str(self.engine.get_tensor_dtype(name)).split(".")[-1]  # 'DataType.FLOAT' -> 'FLOAT'
        if kind not in TORCH_DTYPES:
            raise TrialError(f"tensor {name!r} has TensorRT type {kind}, which this runner does not serve")
        return getattr(self.torch, TORCH_DTYPES[kind])

    def _bind(self, inputs: dict[str, np.ndarray]) -> list[Any]:
        """Copy the inputs to the GPU, set shapes and addresses; the output tensors, in output order."""
        torch, context = self.torch, self.context
        self._held = []
        for name in self.inputs:
            t = torch.from_numpy(np.ascontiguousarray(inputs[name])).to("cuda").to(self._dtype(name)).contiguous()
            if not context.set_input_shape(name, tuple(t.shape)):
                raise TrialError(f"input {name!r} of shape {tuple(t.shape)} is outside the engine's profile")
            context.set_tensor_address(name, t.data_ptr())
            self._held.append(t)
        outs = []
        for name in self.outputs:
            shape = tuple(int(d) for d in context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise TrialError(f"output {name!r} has a data-dependent shape {shape}, not served by this runner")
            t = torch.empty(shape, dtype=self._dtype(name), device="cuda")
            context.set_tensor_address(name, t.data_ptr())
            outs.append(t)
        self._held.extend(outs)
        return outs

    def _execute(self, handle: int) -> None:
        if not self.context.execute_async_v3(handle):
            raise TrialError("TensorRT's execute_async_v3 failed")

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        torch, stream = self.torch, self.stream
        outs = self._bind(inputs)
        stream.wait_stream(torch.cuda.current_stream())  # the copies and allocations above were queued there
        self._execute(stream.cuda_stream)  # warm-up: TensorRT finishes shape-dependent setup before a capture
        stream.synchronize()
        if not self.cuda_graphs:
            def call() -> Any:
                self._execute(stream.cuda_stream)
                stream.synchronize()
                return outs

            return call
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            self._execute(stream.cuda_stream)
        self._graph = graph

        def replay() -> Any:
            graph.replay()
            torch.cuda.synchronize()
            return outs

        return replay

    def close(self) -> None:
        """Frees the CUDA graph, the bound buffers, then the execution context before its engine."""
        self._graph = None
        self._held = []
        self.context = None
        self.engine = None

    def precision_run(self) -> str | None:
        """The engine's compute layers by the precision TensorRT chose (_trt.engine_layers); None for a
        plan cached before its builds recorded them (ProfilingVerbosity.DETAILED)."""
        return engine_layers(self.engine)

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        outs = self.prepare(inputs)()  # the same launch (plain or graph) that is benchmarked
        return [(t.float() if t.is_floating_point() else t).cpu().numpy() for t in outs]


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    assert artifact.file is not None
    return TensorRTRunner(artifact.file, source, params)


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    assert artifact.file is not None
    return TritonModel(platform="tensorrt_plan", files={PLAN: artifact.file}, kind="KIND_GPU",
                       cuda_graphs=bool(params.get("cuda_graphs", False)))


def precision(params: Params) -> str:
    """The precision the trial computes in, which sets its validation tolerance: int8 / fp8 for a Q/DQ
    model (the int8 class's agreement rule, navigator/trial/validate.py), else `precision`."""
    quantize = _modelopt.mode(params)
    return quantize if quantize != "none" else str(params.get("precision", "fp32"))
