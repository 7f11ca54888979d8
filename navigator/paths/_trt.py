"""Shared by the TensorRT paths (tensorrt, ort_tensorrt, torch_tensorrt; not a path itself): whether a CUDA
GPU is usable, and the optimization profile over the batch axis."""

from __future__ import annotations

from navigator.lazy import installed, require
from navigator.records import Params
from navigator.source import ModelSource
from navigator.source.iospec import DYNAMIC_AXIS_SIZE

Shape = tuple[int, ...]
Profile = dict[str, tuple[Shape, Shape, Shape]]  # input name -> (min, opt, max)


def gpu_reason(need_torch: bool) -> str | None:
    """Why no CUDA GPU is usable here, asked through PyTorch; None when it sees one (or when PyTorch is
    absent and the caller can do without it)."""
    if not installed("torch"):
        return ("PyTorch is not installed (pip install 'triton-navigator[torch]'); this path needs it"
                if need_torch else None)
    if not require("torch").cuda.is_available():
        return "no CUDA GPU: PyTorch sees none (torch.cuda.is_available() is False)"
    return None


def batches(source: ModelSource, params: Params) -> tuple[int, int]:
    """(opt, max) of the batch axis. convert() is not told the study's batch sizes, so the samples' batch
    stands in for both (a worker makes its samples with max(--batch-size) rows); a caller that knows the
    trial's batch and the deployment's maximum passes them as `batch_size` / `max_batch_size`."""
    rows = int(next(iter(source.samples.values())).shape[0]) if source.samples else 1
    top = max(1, int(params.get("max_batch_size", rows)))
    return min(max(1, int(params.get("batch_size", top))), top), top


def profile(source: ModelSource, params: Params) -> Profile:
    """min/opt/max shape of every input: batch from 1 to the max batch where the source is batched, every
    other axis at the samples' size (a dynamic one at DYNAMIC_AXIS_SIZE when there is no sample)."""
    opt, top = batches(source, params)
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
