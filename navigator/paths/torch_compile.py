"""Compiles the source PyTorch model with torch.compile (inductor) on a CUDA GPU: modes default /
reduce-overhead (CUDA graphs) / max-autotune, in the trial's precision. Compilation happens on the
first call and is reported per trial (TrialOutcome.load_s); inductor's caches live in the conversion
cache, so a rerun does not pay again where torch can reuse them.

Triton: the python backend on KIND_GPU, compiling with the same mode at model load.
"""

from __future__ import annotations

import os

from navigator.cache import Cache
from navigator.lazy import require
from navigator.paths import _torch_gpu
from navigator.paths.base import Runner
from navigator.records import Artifact, Params, TritonModel
from navigator.source import ModelSource

NAME = "torch_compile"
TIMEOUT_S = 1200.0  # default trial timeout: max-autotune compiles for minutes
COST_S = 90.0  # expected seconds of one trial (until the study measures its own): inductor compiles on the first call; max-autotune for minutes
DEVICES = ("cuda",)
FRAMEWORKS = ("torch",)
available = _torch_gpu.available
precision = _torch_gpu.precision


def convert(source: ModelSource, params: Params, cache: Cache) -> Artifact:
    # inductor's FX-graph and autotuning caches, kept with navigator's own cache (read at compile time)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache.root / "inductor"))
    return _torch_gpu.convert(NAME, source, cache)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    torch = require("torch")
    model = _torch_gpu.module(source, params)
    compiled = torch.compile(model, mode=str(params["mode"]), dynamic=False)
    return _torch_gpu.runner(compiled, source, {**params, "cuda_graphs": False})


def triton(artifact: Artifact, params: Params) -> TritonModel:
    return _torch_gpu.triton(artifact, params, {"COMPILE_MODE": str(params["mode"])})
