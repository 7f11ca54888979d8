"""Shared loading for the PyTorch-on-CUDA paths (torch_cuda, torch_compile); not a path itself."""

from __future__ import annotations

import copy
import io
from typing import Any

from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.lazy import installed, require
from navigator.paths import _torch_save
from navigator.paths._torch import DTYPES, CudaTorchRunner
from navigator.records import Artifact, Params, TritonModel
from navigator.source import ModelSource
from navigator.triton import python_backend


def available() -> str | None:
    if not installed("torch"):
        return "torch is not installed (pip install 'triton-navigator[torch]')"
    if not require("torch").cuda.is_available():
        return "PyTorch sees no CUDA GPU"
    return None


def convert(name: str, source: ModelSource, cache: Cache) -> Artifact:
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

        return move_to_device_pass(copy.deepcopy(source.model), device).module()
    if source.kind == "torchscript":
        buffer = io.BytesIO()
        torch.jit.save(source.model, buffer)
        buffer.seek(0)
        model = torch.jit.load(buffer, map_location=device).eval()
        graphs = [getattr(getattr(sub, "forward", None), "graph", None) for sub in model.modules()]
        for node in (n for g in graphs if g is not None for n in g.findAllNodes("prim::Constant")):
            if node.output().type().kind() == "DeviceObjType":  # a traced torch.arange(..., device="cpu")
                node.s_("value", str(torch.device(device)))
        return model
    return copy.deepcopy(source.model).to(device)


def module(source: ModelSource, params: Params) -> Any:
    """A GPU copy of the source model in the trial's precision and memory format."""
    torch = require("torch")
    model = on_device(source, "cuda")
    if params.get("cast", "weights") == "weights" and params["precision"] in ("fp16", "bf16"):
        model = model.to(getattr(torch, DTYPES[str(params["precision"])]))
    if params.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    return model


def runner(fn: Any, source: ModelSource, params: Params) -> CudaTorchRunner:
    return CudaTorchRunner(fn, [t.name for t in source.io.inputs], str(params["precision"]),
                           channels_last=bool(params.get("channels_last")),
                           autocast=params.get("cast") == "autocast",
                           cuda_graphs=bool(params.get("cuda_graphs")),
                           cudnn_benchmark=bool(params.get("cudnn_benchmark", True)))


def precision(params: Params) -> str:
    """Validation tolerance class: fp32 on CUDA runs cuDNN convolutions in TF32 (PyTorch's default)."""
    return {"fp32": "tf32", "fp32_strict": "fp32"}.get(str(params["precision"]), str(params["precision"]))


def triton(artifact: Artifact, params: Params, extra: dict[str, str]) -> TritonModel:
    """Python backend on the GPU with the tuned precision, memory format and compile mode."""
    if artifact.file is None:
        raise TrialError("the model could not be saved for serving")
    model = python_backend.model("torch", artifact.file, {
        "DEVICE": "cuda", "PRECISION": str(params["precision"]), "CAST": str(params.get("cast", "weights")),
        "CHANNELS_LAST": str(bool(params.get("channels_last"))),
        "CUDNN_BENCHMARK": str(bool(params.get("cudnn_benchmark", True))),
        "CUDA_GRAPHS": str(bool(params.get("cuda_graphs"))), **extra})
    model.kind = "KIND_GPU"
    return model
