"""Runs the source PyTorch model on a CUDA GPU (the GPU baseline in fp32): precision fp32 / tf32 /
fp16 / bf16 (converted weights or autocast), channels_last, cudnn.benchmark and CUDA graphs.

Triton: the python backend (model.py from navigator/triton/templates) on KIND_GPU.
"""

from __future__ import annotations

from navigator.cache import Cache
from navigator.paths import _torch_gpu
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.source import ModelSource

NAME = "torch_cuda"
TIMEOUT_S = 300.0  # default trial timeout: cuDNN autotuning and CUDA graph capture included
COST_S = 15.0  # expected seconds of one trial, for the search to order paths by: loading and timing, CUDA graph capture included
DEVICES = ("cuda",)
FRAMEWORKS = ("torch",)
BASELINE = (("torch", "cuda"),)
PRECISION_CLASSES = _torch_gpu.PRECISION_CLASSES
available = _torch_gpu.available
precision = _torch_gpu.precision


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    return _torch_gpu.convert(NAME, source, cache, target)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    return _torch_gpu.runner(_torch_gpu.module(source, params), source, params)


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    return _torch_gpu.triton(artifact, params)
