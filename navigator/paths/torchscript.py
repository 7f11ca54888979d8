"""PyTorch -> TorchScript (trace or script, optionally frozen and optimize_for_inference), run by libtorch.

Triton: the pytorch backend (platform pytorch_libtorch) with its thread parameters
(github.com/triton-inference-server/pytorch_backend README, "Parameters").
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from navigator.cache import Cache
from navigator.errors import TrialError, one_line
from navigator.lazy import installed, require
from navigator.paths._torch import example_args
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.runtimes import torch as rt_torch
from navigator.source import ModelSource
from navigator.source import torch as torch_source
from navigator.triton import python_backend

NAME = "torchscript"
TIMEOUT_S = 300.0  # default trial timeout: tracing/scripting, freezing
COST_S = 10.0  # expected trial cost (until the study measures its own): tracing, freezing
DEVICES = ("cpu",)
FRAMEWORKS = ("torch",)
MODEL_FILE = "model.pt"


def available() -> str | None:
    return None if installed("torch") else "torch is not installed (pip install 'triton-navigator[torch]')"


def _script(source: ModelSource, params: Params) -> Any:
    """The TorchScript module, returning its output tensors as a flat tuple (Triton's libtorch backend
    maps a tuple to the config's outputs in order; it takes no dict)."""
    torch = require("torch")
    if source.kind == "torchscript" and (as_is := torch_source.flat_script(source.model, example_args(source))) is not None:
        return as_is
    if source.kind == "module" and params.get("method") == "script":
        kind, inner = "module", torch.jit.script(source.model)
    else:
        kind, inner = source.kind, source.model
    # Tracing the flattening wrapper keeps a scripted module's code (its branches) as it is.
    return torch.jit.trace(torch_source.flat_module(kind, inner), example_args(source), strict=False,
                           check_trace=False)


def _build(source: ModelSource, params: Params, out: Path) -> None:
    torch = require("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation and tracer warnings (see trial/traced.py)
        scripted = _script(source, params).eval()
        if params.get("freeze"):
            scripted = torch.jit.freeze(scripted)
            if params.get("optimize_for_inference"):
                scripted = torch.jit.optimize_for_inference(scripted)
        torch.jit.save(scripted, str(out / MODEL_FILE))
        try:  # Triton loads the file: an artifact that cannot be read back is no artifact
            torch.jit.load(str(out / MODEL_FILE), map_location="cpu")
        except Exception as exc:  # optimize_for_inference's MKLDNN constants do not reload on every build
            raise TrialError(f"the saved TorchScript does not load back ({one_line(exc)})") from None


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    d = cache.get(NAME, params, lambda out: _build(source, params, out))
    return Artifact(NAME, d, d.name, dict(params), d / MODEL_FILE)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    torch = require("torch")
    module = torch.jit.load(str(artifact.file), map_location="cpu").eval()
    return rt_torch.runner(module, [t.name for t in source.io.inputs], rt_torch.settings(params, "cpu"))


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    assert artifact.file is not None
    twin = python_backend.spec_file("torch", "cpu", dict(params))  # for a server without libtorch
    return TritonModel(platform="pytorch_libtorch", backend="pytorch",
                       files={MODEL_FILE: artifact.file, python_backend.SPEC: twin},
                       parameters={"INTRA_OP_THREAD_COUNT": str(params["threads"]),
                                   "INTER_OP_THREAD_COUNT": "1", "INFERENCE_MODE": "true"})
