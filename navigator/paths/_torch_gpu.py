"""Shared loading for the PyTorch-on-CUDA paths (torch_cuda, torch_compile); not a path itself."""

from __future__ import annotations

import copy
import io
from typing import Any

from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.lazy import installed, require
from navigator.paths import _probe, _torch_save
from navigator.paths.base import Target
from navigator.records import Artifact, Params, TritonModel
from navigator.runtimes import torch as rt_torch
from navigator.source import ModelSource
from navigator.triton import python_backend


def available() -> str | None:
    if not installed("torch"):
        return "torch is not installed (pip install 'triton-navigator[torch]')"
    if not _probe.torch_has_cuda():
        return "this PyTorch is a CPU build: it has no CUDA (install a CUDA wheel of torch)"
    if not _probe.cuda_gpus():
        return "no CUDA GPU: the driver shows none"
    return None


def convert(name: str, source: ModelSource, cache: Cache, target: Target) -> Artifact:
    """The source saved for serving, as the eager path saves it (one cache entry for all three)."""
    saved = _torch_save.saved(source, {}, cache)
    return Artifact(name, saved.dir, saved.key, {}, saved.file)


def on_device(source: ModelSource, device: str) -> Any:
    """A copy of the source's callable whose weights and graph live on `device`, the source untouched.

    `.to(device)` moves parameters and buffers only: an ExportedProgram's graph and a traced TorchScript
    keep the device they were captured on in their ops' arguments (torch.arange, torch.zeros, .to), so
    such a model fails on the GPU with "Expected all tensors to be on the same device". torch.export's
    move_to_device_pass rewrites the program's state, constants and device arguments; a TorchScript is
    reloaded with map_location and its graphs' Device constants are rewritten."""
    torch = require("torch")
    if source.kind == "exported":
        from torch.export.passes import move_to_device_pass

        return rt_torch.program_module(move_to_device_pass(copy.deepcopy(source.model), device))
    if source.kind == "torchscript":
        buffer = io.BytesIO()
        torch.jit.save(source.model, buffer)
        buffer.seek(0)
        return rt_torch.retarget_script(torch.jit.load(buffer, map_location=device).eval(), device)
    return copy.deepcopy(source.model).to(device)


def module(source: ModelSource, params: Params) -> Any:
    """A GPU copy of the source model in the trial's precision and memory format (compiled with
    torch_compile's mode)."""
    return rt_torch.place(on_device(source, "cuda"), rt_torch.settings(params, "cuda"))


def runner(fn: Any, source: ModelSource, params: Params) -> rt_torch.TorchRunner:
    return rt_torch.runner(fn, [t.name for t in source.io.inputs], rt_torch.settings(params, "cuda"))


# What precision() gives: fp32 on CUDA runs cuDNN convolutions in TF32 (PyTorch's default).
PRECISION_CLASSES = ("tf32", "fp32", "fp16", "bf16")


def precision(params: Params) -> str:
    """Validation tolerance class: fp32 on CUDA runs cuDNN convolutions in TF32 (PyTorch's default)."""
    return {"fp32": "tf32", "fp32_strict": "fp32"}.get(str(params["precision"]), str(params["precision"]))


def triton(artifact: Artifact, params: Params) -> TritonModel:
    """Python backend on the GPU, built from the trial's params by the runner's own code."""
    if artifact.file is None:
        raise TrialError("the model could not be saved for serving")
    return python_backend.model(artifact.file, python_backend.spec_file(
        "torch", "cuda", dict(params), unpickle=rt_torch.is_pickle(artifact.file)))
