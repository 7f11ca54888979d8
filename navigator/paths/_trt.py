"""Shared by the TensorRT paths (tensorrt, ort_tensorrt, torch_tensorrt; not a path itself): whether a CUDA
GPU is usable, the optimization profile over the batch axis, and what an engine's layers compute in."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from navigator.lazy import installed, require
from navigator.paths import _probe
from navigator.paths.base import Target
from navigator.runtimes.precision import tensorrt_layers
from navigator.source import ModelSource
from navigator.source.iospec import DYNAMIC_AXIS_SIZE

Shape = tuple[int, ...]
Profile = dict[str, tuple[Shape, Shape, Shape]]  # input name -> (min, opt, max)


def gpu_reason(need_torch: bool) -> str | None:
    """Why no CUDA GPU is usable here (the driver asked, without importing a framework); with
    `need_torch`, also why the path's PyTorch cannot drive one. None when all is there."""
    if need_torch and not installed("torch"):
        return "PyTorch is not installed (pip install 'triton-navigator[torch]'); this path needs it"
    if need_torch and not _probe.torch_has_cuda():
        return "this PyTorch is a CPU build: it has no CUDA (install a CUDA wheel of torch)"
    if not _probe.cuda_gpus():
        return "no CUDA GPU: the driver shows none"
    return None


def batches(target: Target) -> tuple[int, int]:
    """(opt, max) of the batch axis: the target's, opt within 1..max."""
    top = max(1, target.max_batch)
    return min(max(1, target.opt_batch), top), top


def profile(source: ModelSource, target: Target) -> Profile:
    """min/opt/max shape of every input: batch from 1 to the target's max batch where the source is
    batched, every other axis at the samples' size (a dynamic one at DYNAMIC_AXIS_SIZE when there is no
    sample)."""
    opt, top = batches(target)
    out: Profile = {}
    for spec in source.io.inputs:
        sample = source.samples.get(spec.name)
        dims = [int(d) if d is not None else (int(sample.shape[i]) if sample is not None and i < sample.ndim
                                               else DYNAMIC_AXIS_SIZE) for i, d in enumerate(spec.shape)]
        if source.io.batched:
            rest = tuple(dims[1:])
            out[spec.name] = ((1, *rest), (opt, *rest), (top, *rest))
        else:
            out[spec.name] = (tuple(dims), tuple(dims), tuple(dims))
    return out


def shapes_text(shapes: Profile, which: int) -> str:
    """One end of a profile in trtexec / ORT TensorRT EP syntax: 'x:1x3x224x224,y:1x16' (0 min, 1 opt, 2 max)."""
    return ",".join(f"{name}:{'x'.join(str(d) for d in dims[which])}" for name, dims in shapes.items())


def engine_layers(engine: Any) -> str | None:
    """A deserialized engine's compute layers by precision, from its engine inspector's JSON
    (runtimes/precision.tensorrt_layers). Layer precisions are recorded only in an engine built with
    ProfilingVerbosity.DETAILED (the inspector otherwise lists names: TensorRT "Engine Inspector"
    docs); None for any other."""
    trt = require("tensorrt")
    if engine is None or engine.profiling_verbosity != trt.ProfilingVerbosity.DETAILED:
        return None
    return tensorrt_layers(engine.create_engine_inspector().get_engine_information(
        trt.LayerInformationFormat.JSON))


def engine_files_layers(files: Iterable[Path]) -> str | None:
    """engine_layers over serialized engine files (ONNX Runtime's TensorRT engine cache), joined; None
    where TensorRT's Python module is missing or no engine records its layer precisions."""
    if not installed("tensorrt"):
        return None
    trt = require("tensorrt")
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    found = [text for f in sorted(files) if (text := engine_layers(runtime.deserialize_cuda_engine(f.read_bytes())))]
    return "; ".join(found) or None
