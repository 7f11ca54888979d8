"""Converts PyTorch to ONNX (or takes the user's ONNX file) for ONNX Runtime with the TensorRT execution
provider, the CUDA provider running what TensorRT does not take; timed through IO binding on the device.

The TensorRT options are session options (runtime parameters), but TensorRT builds an engine per
combination of them: engines and the timing cache are kept under the conversion cache, the engines in a
directory keyed by the options that shape them, so a repeated trial loads its engine instead of building
it. The optimization profile (trt_profile_min/opt/max_shapes) spans the dynamic batch axis, as for the
tensorrt path. ORT silently falls back to the next provider when TensorRT fails to load, so a session
without the TensorRT provider is an error here, not a CUDA trial under another name.

`quantize` int8 / fp8: the session runs the Q/DQ model that Model Optimizer's ONNX quantization makes
(paths/_modelopt.py) with trt_fp16_enable and trt_int8_enable off. The provider then builds a strongly
typed network (TensorRT > 8: kSTRONGLY_TYPED unless fp16 or int8 is enabled, in the provider's
tensorrt_execution_provider.cc as microsoft/onnxruntime's samples/tensorRTEp copy of it has it),
TensorRT's explicit-quantization mode, which takes the Q/DQ scales and the high-precision type from the
graph; trt_int8_enable is the implicit mode with a calibration table, which the provider's documentation
says must not be given for a QDQ model. Unverified: TensorRT does not install on the machines this is
built on.

Triton: the onnxruntime backend on KIND_GPU with a `tensorrt` gpu_execution_accelerator, in the keys the
backend parses (onnxruntime_backend README "ONNX Runtime with TensorRT optimization", src/onnxruntime.cc).
trt_cuda_graph_enable is measured here with fixed device buffers, which ORT's CUDA graphs need
(microsoft/onnxruntime#20050); Triton's backend binds each request's own buffers, so such a trial is
not exported (triton() raises and the next-best trial is deployed). A Q/DQ model is served with
precision_mode FP32, the backend's value that leaves both flags off, as measured.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np

from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.lazy import installed, require
from navigator.paths import _modelopt, _probe
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.paths._trt import engine_files_layers, gpu_reason, profile, shapes_text
from navigator.records import Artifact, Params, ParamSpec, TritonModel
from navigator.runtimes.ort import OrtCudaRunner
from navigator.source import ModelSource

NAME = "ort_tensorrt"
TIMEOUT_S = 1800.0  # default trial timeout: TensorRT builds its engines when the session starts
DEVICES = ("cuda",)
FRAMEWORKS = ("torch", "onnx", "tf")  # tf: converted by tf2onnx (_onnx_export)
PRECISION_CLASSES = ("tf32", "fp16", "int8", "fp8")
PROVIDER = "TensorrtExecutionProvider"
NVINFER = ("libnvinfer.so.10", "libnvinfer.so.11", "libnvinfer.so")
PROFILE = "trt_profile.json"
ENGINE_KEYS = ("trt_fp16_enable", "trt_max_workspace_size", "trt_builder_optimization_level")
TRITON_CACHE = "/tmp/navigator_trt_cache"  # engine and timing caches of the deployed model, on the server
# ONNX tensor type -> numpy dtype, for output buffers allocated before the first run
ONNX_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
              "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


def load_nvinfer() -> str | None:
    """Load TensorRT's runtime library into this process (None) or say why it cannot be loaded.

    onnxruntime-gpu lists the TensorRT provider whether or not TensorRT is there; the provider dlopens
    libnvinfer when a session starts. A library from the tensorrt wheel (tensorrt_libs) is not on the
    loader's path, but once loaded by its full path the provider's dlopen of the same soname finds it.
    """
    errors = []
    spec = importlib.util.find_spec("tensorrt_libs") if installed("tensorrt_libs") else None
    folders = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    for name in NVINFER:
        for candidate in [name, *(str(f / name) for f in folders if (f / name).is_file())]:
            try:
                ctypes.CDLL(candidate, mode=ctypes.RTLD_GLOBAL)
                return None
            except OSError as exc:
                errors.append(str(exc).strip())
    return f"TensorRT's runtime library libnvinfer does not load (tried {', '.join(NVINFER)}; {errors[0]})"


def available() -> str | None:
    if not installed("onnxruntime"):
        return "onnxruntime is not installed (pip install onnxruntime-gpu)"
    if PROVIDER not in _probe.ort_providers():
        return "onnxruntime has no TensorRT execution provider (install onnxruntime-gpu)"
    missing = load_nvinfer()
    if missing is not None:
        return missing + "; install TensorRT (pip install tensorrt) for onnxruntime's TensorRT provider"
    return gpu_reason(need_torch=False)


def narrow(spec: ParamSpec) -> ParamSpec:
    """`quantize` without the modes this machine cannot run (paths/_modelopt.py)."""
    return _modelopt.narrow(spec)


def _dynamic_inputs(model: Path) -> list[str]:
    """Inputs of the ONNX graph with a dimension that is not fixed (a name, or unset)."""
    onnx = require("onnx")
    graph = onnx.load(str(model), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    return [i.name for i in graph.input if i.name not in initializers
            and any(not d.HasField("dim_value") for d in i.type.tensor_type.shape.dim)]


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    """The ONNX file (Q/DQ where quantized), plus a cache entry of its own holding the optimization
    profile, where the session's engine and timing caches live too."""
    model = _modelopt.onnx_file(source, params, cache, target)
    shapes = profile(source, target)
    dynamic = _dynamic_inputs(model)
    wanted = {n: s for n, s in shapes.items() if n in dynamic}
    text = {end: shapes_text(wanted, i) for i, end in enumerate(("min", "opt", "max"))} if wanted else {}
    key: dict[str, Any] = {**{k: params[k] for k in ("exporter", "opset") if k in params},
                           **_modelopt.key(params, target), "profile": text}

    def build(out: Path) -> None:
        (out / PROFILE).write_text(json.dumps(text, sort_keys=True))

    d = cache.get(NAME, key, build)
    return Artifact(NAME, d, d.name, dict(params), model)


def _profile(artifact: Artifact) -> dict[str, str]:
    file = artifact.dir / PROFILE
    return json.loads(file.read_text()) if file.is_file() else {}


def provider_options(params: Params, engines: Path, shapes: dict[str, str]) -> dict[str, Any]:
    """TensorRT provider options (onnxruntime.ai TensorRT-ExecutionProvider, "Execution Provider Options");
    ORT turns every value into a string and reads True/False for its booleans."""
    options: dict[str, Any] = {
        "device_id": 0,
        "trt_fp16_enable": fp16(params),
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(engines),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(engines.parent),  # one timing cache for every engine of this model
        "trt_cuda_graph_enable": bool(params.get("trt_cuda_graph_enable", False)),
    }
    if "trt_max_workspace_size" in params:
        options["trt_max_workspace_size"] = int(params["trt_max_workspace_size"])
    if "trt_builder_optimization_level" in params:
        options["trt_builder_optimization_level"] = int(params["trt_builder_optimization_level"])
    for end in ("min", "opt", "max"):
        if shapes.get(end):
            options[f"trt_profile_{end}_shapes"] = shapes[end]
    return options


def fp16(params: Params) -> bool:
    """Whether the provider's FP16 flag is on: never for a Q/DQ model, whose network must stay strongly typed."""
    return bool(params.get("trt_fp16_enable", False)) and _modelopt.mode(params) == "none"


def engine_dir(artifact: Artifact, params: Params) -> Path:
    """Where the engines of these options are cached: under the artifact's cache entry."""
    blob = json.dumps({k: params.get(k) for k in ENGINE_KEYS}, sort_keys=True)
    return artifact.dir / "trt_cache" / hashlib.sha256(blob.encode()).hexdigest()[:16]


class OrtTensorRTRunner(OrtCudaRunner):
    """OrtCudaRunner on a session that must hold the TensorRT provider. With trt_cuda_graph_enable the
    binding is made once and reused: a captured graph replays on the addresses of the run that captured
    it, so new inputs are copied into the bound buffers and the outputs are preallocated."""

    def __init__(self, model: Path, params: Params, providers: list[Any]) -> None:
        super().__init__(model, params, providers)
        if PROVIDER not in self.session.get_providers():
            fallback = self.session.get_providers()
            raise TrialError(f"the TensorRT provider did not start; onnxruntime fell back to {fallback}")
        self.cuda_graph = bool(params.get("trt_cuda_graph_enable", False))
        self._fixed: tuple[Any, Any, list[Any]] | None = None

    def precision_run(self) -> str | None:
        """The layers of the engines the TensorRT provider built, read from its engine cache (the path the
        session reports in its provider options); ORT's optimised graph cannot be saved around compiled
        TensorRT nodes. None where the engines do not record their layer precisions: the provider builds
        them at TensorRT's default ProfilingVerbosity (LAYER_NAMES_ONLY) and has no option to raise it."""
        options = self.session.get_provider_options().get(PROVIDER, {})
        cache = options.get("trt_engine_cache_path")
        return engine_files_layers(Path(cache).glob("*.engine")) if cache else None

    def _output_shape(self, out: Any, arrays: dict[str, np.ndarray]) -> list[int]:
        sizes: dict[str, int] = {}
        for i in self.session.get_inputs():
            for dim, size in zip(i.shape, arrays[i.name].shape):
                if isinstance(dim, str):
                    sizes[dim] = int(size)
        shape = [d if isinstance(d, int) else sizes.get(d) for d in out.shape]
        if any(d is None for d in shape):
            raise TrialError(f"output {out.name!r} has shape {out.shape}, not fixed by the input shapes; "
                             "trt_cuda_graph_enable needs output buffers allocated before the first run")
        return [int(d) for d in shape if d is not None]

    def _bind(self, inputs: dict[str, np.ndarray]) -> tuple[Any, list[Any]]:
        if not self.cuda_graph:
            return super()._bind(inputs)
        arrays = {n: np.ascontiguousarray(inputs[n]) for n in self.names}
        signature = [(n, a.shape, a.dtype.str) for n, a in arrays.items()]
        if self._fixed is not None:
            if self._fixed[0] != signature:
                raise TrialError("with trt_cuda_graph_enable the input shapes cannot change between runs")
            for n, value in zip(self.names, self._fixed[2]):
                value.update_inplace(arrays[n])
            return self._fixed[1], self._fixed[2]
        ort = self.ort
        binding = self.session.io_binding()
        values = []
        for n in self.names:
            values.append(ort.OrtValue.ortvalue_from_numpy(arrays[n], "cuda", 0))
            binding.bind_ortvalue_input(n, values[-1])
        for out in self.outputs:
            if out.type not in ONNX_TYPES:
                raise TrialError(f"output {out.name!r} of type {out.type} cannot be preallocated for a CUDA graph")
            values.append(ort.OrtValue.ortvalue_from_shape_and_type(
                self._output_shape(out, arrays), ONNX_TYPES[out.type], "cuda", 0))
            binding.bind_ortvalue_output(out.name, values[-1])
        self._fixed = (signature, binding, values)
        return binding, values


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    assert artifact.file is not None
    missing = load_nvinfer()  # this worker process needs the library loaded before the session starts
    if missing is not None:
        raise TrialError(missing)
    engines = engine_dir(artifact, params)
    engines.mkdir(parents=True, exist_ok=True)
    providers = [(PROVIDER, provider_options(params, engines, _profile(artifact))),
                 ("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
    return OrtTensorRTRunner(artifact.file, params, providers)


def precision(params: Params) -> str:
    """int8 / fp8 for a Q/DQ model; fp16 when enabled; otherwise TF32, which TensorRT uses for fp32 layers
    by default (BuilderFlag.TF32 is on unless cleared, and the TensorRT provider has no option to clear it)."""
    quantize = _modelopt.mode(params)
    if quantize != "none":
        return quantize
    return "fp16" if fp16(params) else "tf32"


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    assert artifact.file is not None
    if params.get("trt_cuda_graph_enable"):
        raise TrialError("trt_cuda_graph_enable cannot be served: Triton's onnxruntime backend binds each "
                         "request's own buffers, and ORT's CUDA graphs replay on fixed addresses")
    accelerator = {"precision_mode": "FP16" if fp16(params) else "FP32",
                   "trt_engine_cache_enable": "true", "trt_engine_cache_path": TRITON_CACHE,
                   "trt_timing_cache_enable": "true", "trt_timing_cache_path": TRITON_CACHE}
    if "trt_max_workspace_size" in params:
        accelerator["max_workspace_size_bytes"] = str(int(params["trt_max_workspace_size"]))
    if "trt_builder_optimization_level" in params:
        accelerator["trt_builder_optimization_level"] = str(int(params["trt_builder_optimization_level"]))
    for end, text in _profile(artifact).items():
        if text:
            accelerator[f"trt_profile_{end}_shapes"] = text
    return TritonModel(backend="onnxruntime", files={"model.onnx": artifact.file}, kind="KIND_GPU",
                       gpu_accelerators={"tensorrt": accelerator})
