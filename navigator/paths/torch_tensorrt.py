"""Converts a PyTorch model to TensorRT engines embedded in TorchScript with Torch-TensorRT's dynamo frontend
(torch_tensorrt.compile(ir="dynamo")), saved by torch_tensorrt.save(output_format="torchscript") as
model.pt, and run with torch.jit.load on the GPU.

Precision: current Torch-TensorRT builds strongly typed networks (use_explicit_typing) and no longer takes
enabled_precisions (pytorch/TensorRT#4195). fp16 / bf16 come either from Autocast (enable_autocast +
autocast_low_precision_type, where the installed version has it) or from the weights: the model is cast,
with a wrapper that casts floating inputs to that type and the outputs back to their source types, so the
served model keeps the source's input and output types (use_fp32_acc keeps fp16 matmul sums in fp32).
Versions with neither get enabled_precisions. Every option is checked against
inspect.signature(torch_tensorrt.dynamo.compile); fp32 also sets disable_tf32. The batch axis is dynamic
(torch_tensorrt.Input(min_shape, opt_shape, max_shape)) over the tensorrt path's profile.

Triton: platform pytorch_libtorch on KIND_GPU with INFERENCE_MODE; the server's PyTorch backend runs the
embedded engines with the Torch-TensorRT runtime ("Serving a Torch-TensorRT model with Triton",
pytorch.org/TensorRT/tutorials/serving_torch_tensorrt_with_triton.html).
"""

from __future__ import annotations

import inspect
import keyword
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.lazy import installed, require
from navigator.paths import _torch_gpu
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.paths._trt import batches, gpu_reason, profile
from navigator.records import Artifact, ParamSpec, Params, TritonModel
from navigator.runtimes.precision import tensorrt_layers
from navigator.source import ModelSource
from navigator.source.iospec import resize_batch

NAME = "torch_tensorrt"
TIMEOUT_S = 1800.0  # default trial timeout: tracing plus TensorRT engine builds
COST_S = 300.0  # expected seconds of one trial, for the search to order paths by: TensorRT engine builds
DEVICES = ("cuda",)
FRAMEWORKS = ("torch",)
PRECISION_CLASSES = ("fp16", "tf32", "fp32", "bf16")
MODEL_FILE = "model.pt"
LOW = {"fp16": "float16", "bf16": "bfloat16"}
BUILD_KEYS = ("precision", "cast", "use_fp32_acc", "optimization_level", "workspace_size")


def available() -> str | None:
    if not installed("torch_tensorrt"):
        return "Torch-TensorRT is not installed (pip install torch-tensorrt, built for the installed PyTorch)"
    try:
        require("torch_tensorrt")
    except Exception as exc:  # a build for another PyTorch, or TensorRT's libraries missing
        text = str(exc).strip()
        return f"Torch-TensorRT does not import: {text.splitlines()[0] if text else type(exc).__name__}"
    return gpu_reason(need_torch=True)


def _compile_parameters() -> set[str]:
    return set(inspect.signature(require("torch_tensorrt").dynamo.compile).parameters)


def narrow(spec: ParamSpec) -> ParamSpec:
    """Offer Autocast only where the installed Torch-TensorRT has it."""
    if spec.name != "cast" or available() is not None or "enable_autocast" in _compile_parameters():
        return spec
    return ParamSpec(spec.name, spec.stage, tuple(c for c in spec.choices if c != "autocast") or ("weights",),
                     when=spec.when, sources=spec.sources)


def options(params: Params, names: set[str], timing: Path) -> tuple[dict[str, Any], str | None]:
    """(keyword arguments of torch_tensorrt.compile, torch dtype name the weights are cast to or None),
    keeping only the arguments this version's dynamo.compile takes."""
    precision = str(params["precision"])
    low = LOW.get(precision)
    torch = require("torch")
    kwargs: dict[str, Any] = {"optimization_level": int(params["optimization_level"]),
                              "workspace_size": int(params["workspace_size"]),
                              "timing_cache_path": str(timing)}
    if precision == "fp32":
        kwargs["disable_tf32"] = True
    cast = None
    if low is not None and params.get("cast", "weights") == "autocast":
        if "enable_autocast" not in names:
            raise TrialError("this Torch-TensorRT has no Autocast (enable_autocast); use cast=weights")
        kwargs.update(enable_autocast=True, autocast_low_precision_type=getattr(torch, low), use_explicit_typing=True)
    elif low is not None:
        cast = low
        if "use_explicit_typing" in names:
            kwargs["use_explicit_typing"] = True
            if precision == "fp16" and params.get("use_fp32_acc"):
                kwargs["use_fp32_acc"] = True
        else:  # a version from before strong typing: precisions the builder may pick
            kwargs["enabled_precisions"] = {getattr(torch, low)}
    return {k: v for k, v in kwargs.items() if k in names or k == "enabled_precisions"}, cast


def _named(names: list[str], run: Callable[..., Any]) -> Callable[..., Any]:
    """forward(self, <input names>) calling run(self, *inputs): torch.export keeps the argument names, and
    Triton's PyTorch backend matches inputs by them."""
    if not all(n.isidentifier() and not keyword.iskeyword(n) for n in names):
        return lambda self, *args: run(self, *args)
    scope: dict[str, Any] = {"run": run}
    args = ", ".join(names)
    exec(f"def forward(self, {args}):\n    return run(self, {args})\n", scope)  # noqa: S102 - names checked above
    return scope["forward"]


def _served(source: ModelSource, model: Any, cast: str | None) -> Any:
    """The module compiled for a low precision: weights cast to `cast` (if set), floating inputs cast on
    the way in, outputs cast back to the source's output types on the way out."""
    torch = require("torch")
    dtype = getattr(torch, cast) if cast else None
    out_types = [getattr(torch, t.dtype) for t in source.io.outputs]

    def run(self: Any, *args: Any) -> Any:
        if dtype is not None:
            args = tuple(a.to(dtype) if a.is_floating_point() else a for a in args)
        leaves = torch.utils._pytree.tree_flatten(self.inner(*args))[0]
        leaves = [t.to(out_types[i]) if t.is_floating_point() and i < len(out_types) else t
                  for i, t in enumerate(leaves)]
        return leaves[0] if len(leaves) == 1 else tuple(leaves)

    forward = _named([t.name for t in source.io.inputs], run)
    served = type("Served", (torch.nn.Module,), {"forward": forward})()
    served.inner = model.to(dtype) if dtype is not None else model
    return served.eval()


def _inputs(source: ModelSource, target: Target) -> list[Any]:
    tt, torch = require("torch_tensorrt"), require("torch")
    shapes = profile(source, target)
    out = []
    for spec in source.io.inputs:
        low, opt, top = shapes[spec.name]
        dtype = getattr(torch, spec.dtype)
        out.append(tt.Input(shape=top, dtype=dtype) if low == top else
                   tt.Input(min_shape=low, opt_shape=opt, max_shape=top, dtype=dtype))
    return out


def _compile(source: ModelSource, params: Params, target: Target, timing: Path, out: Path) -> None:
    if source.kind == "torchscript":
        raise TrialError("Torch-TensorRT's dynamo frontend cannot take a TorchScript model; pass the nn.Module "
                         "or an ExportedProgram")
    torch, tt = require("torch"), require("torch_tensorrt")
    kwargs, cast = options(params, _compile_parameters(), timing)
    model = _torch_gpu.on_device(source, "cuda")  # an ExportedProgram's module is in eval mode already
    if str(params["precision"]) in LOW:
        model = _served(source, model, cast)
    compiled = tt.compile(model, ir="dynamo", inputs=_inputs(source, target), **kwargs)
    opt, _ = batches(target)
    data = resize_batch(source.samples, opt) if source.io.batched else source.samples
    example = [torch.from_numpy(np.ascontiguousarray(data[t.name])).to("cuda") for t in source.io.inputs]
    tt.save(compiled, str(out / MODEL_FILE), output_format="torchscript", inputs=example)


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    tt, torch = require("torch_tensorrt"), require("torch")
    shapes = profile(source, target)
    device = {"torch_tensorrt": str(tt.__version__), "gpu": str(torch.cuda.get_device_name())}
    key = {**{k: params[k] for k in BUILD_KEYS if k in params}, **device,
           "profile": {n: [list(s) for s in ends] for n, ends in shapes.items()}}
    slug = re.sub(r"[^A-Za-z0-9.]+", "_", f"{device['torch_tensorrt']}-{device['gpu']}")
    timing = cache.root / f"torch_tensorrt-timing-{slug}.bin"
    cache.root.mkdir(parents=True, exist_ok=True)
    d = cache.get(NAME, key, lambda out: _compile(source, params, target, timing, out))
    return Artifact(NAME, d, d.name, dict(params), d / MODEL_FILE)


class TorchTensorRTRunner(Runner):
    """The saved TorchScript on the GPU, in inference mode; the hot call ends with a device synchronisation."""

    def __init__(self, file: Path, source: ModelSource) -> None:
        self.torch = require("torch")
        require("torch_tensorrt")  # registers the TensorRT engine class the TorchScript refers to
        self.model = self.torch.jit.load(str(file), map_location="cuda").eval()
        self.names = [t.name for t in source.io.inputs]

    def _tensors(self, inputs: dict[str, np.ndarray]) -> list[Any]:
        return [self.torch.from_numpy(np.ascontiguousarray(inputs[n])).to("cuda") for n in self.names]

    def precision_run(self) -> str | None:
        """The layers of the TensorRT engines embedded in the module (each TorchTensorRTModule's `engine`,
        a torch.classes.tensorrt.Engine whose get_engine_layer_info is the engine inspector's JSON). None
        where they do not record layer precisions: Torch-TensorRT builds at ProfilingVerbosity.DETAILED
        only under its debugger (dynamo/conversion/_TRTInterpreter.py), LAYER_NAMES_ONLY otherwise."""
        engines = [e for _, sub in self.model.named_modules() if (e := getattr(sub, "engine", None)) is not None]
        found = [text for e in engines if (text := tensorrt_layers(e.get_engine_layer_info()))]
        return "; ".join(found) or None

    def close(self) -> None:
        """Drops the module and its TensorRT engines, and returns their cached device memory."""
        self.model = None
        self.torch.cuda.empty_cache()

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            out = self.model(*self._tensors(inputs))
        torch.cuda.synchronize()
        leaves = torch.utils._pytree.tree_flatten(out)[0]
        return [(t.float() if t.is_floating_point() else t).cpu().numpy() for t in leaves]

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        torch, model, tensors = self.torch, self.model, self._tensors(inputs)

        def call() -> Any:
            with torch.inference_mode():
                out = model(*tensors)
            torch.cuda.synchronize()
            return out

        return call


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    assert artifact.file is not None
    return TorchTensorRTRunner(artifact.file, source)


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    assert artifact.file is not None
    return TritonModel(platform="pytorch_libtorch", backend="pytorch", files={MODEL_FILE: artifact.file},
                       parameters={"INFERENCE_MODE": "true"}, kind="KIND_GPU")


def precision(params: Params) -> str:
    """The precision the trial computes in, which sets its validation tolerance."""
    return str(params.get("precision", "fp32"))
