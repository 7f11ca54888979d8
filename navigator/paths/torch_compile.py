"""Compiles the source PyTorch model with torch.compile (inductor) on a CUDA GPU: modes default /
reduce-overhead (CUDA graphs) / max-autotune, in the trial's precision. Compilation happens on the
first call and is reported per trial (TrialOutcome.load_s); inductor's caches live in the conversion
cache, so a rerun does not pay again where torch can reuse them.

Triton: the python backend on KIND_GPU, compiling with the same mode at model load.
"""

from __future__ import annotations

import os

from navigator.cache import Cache
from navigator.paths import _torch_gpu
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.source import ModelSource

NAME = "torch_compile"
TIMEOUT_S = 1200.0  # default trial timeout: max-autotune compiles for minutes
COST_S = 45.0  # expected seconds of one trial (until the study measures its own): inductor compiles on the first call
# The mode decides the cost: max-autotune benchmarks kernel choices for minutes (a 5-minute study
# cannot afford it; a 2-hour one can). The study learns each mode's cost from its own trials.
COST_BY = {"mode": {"default": 45.0, "reduce-overhead": 60.0, "max-autotune": 600.0}}
DEVICES = ("cuda",)
FRAMEWORKS = ("torch",)
PRECISION_CLASSES = _torch_gpu.PRECISION_CLASSES
available = _torch_gpu.available
precision = _torch_gpu.precision


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    # inductor's FX-graph and autotuning caches, kept with navigator's own cache (read at compile time)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache.root / "inductor"))
    return _torch_gpu.convert(NAME, source, cache, target)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    return _torch_gpu.runner(_torch_gpu.module(source, params), source, params)  # compiled by module()


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    return _torch_gpu.triton(artifact, params)
