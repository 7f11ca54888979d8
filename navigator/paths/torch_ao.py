"""Quantizes the source PyTorch model's linear layers with torchao on a CUDA GPU: INT8 weight-only,
INT8 dynamic (activations quantized per call) and FP8 dynamic (Hopper / Ada: compute capability >= 8.9),
on bf16 or fp16 weights, run eagerly (optionally in one CUDA graph) or compiled with torch.compile, which
fuses the activations' quantization into the matmuls (torchao's inference recipe:
https://docs.pytorch.org/ao/stable/quick_start.html). Dynamic quantization needs no calibration data.

Triton: the python backend on KIND_GPU, quantizing with the same settings at model load (the server's
Python environment needs torchao).
"""

from __future__ import annotations

from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.lazy import installed
from navigator.paths import _probe, _torch_gpu
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, ParamSpec, TritonModel
from navigator.source import ModelSource

NAME = "torch_ao"
TIMEOUT_S = 1200.0  # default trial timeout: max-autotune compiles for minutes
# Expected seconds of one trial: quantizing, then inductor compiling on the first call and again for each
# other batch size validated (dynamic=False). Compiled INT8 dynamic on an H100 took 231 s for BERT-base at
# batch 64 (reports/gpu/quant/h100-fourth): the default trial costs minutes, so on a short budget it waits
# behind cheaper ones.
COST_S = 240.0
COST_BY = {"mode": {"none": 20.0, "default": 240.0, "max-autotune": 600.0}}
DEVICES = ("cuda",)
FRAMEWORKS = ("torch",)
PRECISION_CLASSES = ("int8", "fp8")
CALIBRATES = False  # dynamic and weight-only quantization read no calibration data


def available() -> str | None:
    reason = _torch_gpu.available()
    if reason is None and not installed("torchao"):
        return "torchao is not installed (pip install 'triton-navigator[gpu]')"
    return reason


def narrow(spec: ParamSpec) -> ParamSpec:
    """FP8 only where the GPU has FP8 tensor cores."""
    capability = _probe.cuda_capability()
    if spec.name != "quant" or capability is None or capability >= _probe.FP8_CAPABILITY:
        return spec
    kept = tuple(c for c in spec.choices if not str(c).startswith("fp8"))
    return ParamSpec(spec.name, spec.stage, kept, when=spec.when, sources=spec.sources)


def precision(params: Params) -> str:
    return "fp8" if str(params["quant"]).startswith("fp8") else "int8"


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    if source.kind == "torchscript":
        raise TrialError("torchao quantizes Python modules; a TorchScript archive cannot hold its tensor "
                         "subclasses (export the model with torch.export for this path)")
    return _torch_gpu.convert(NAME, source, cache, target)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    try:
        model = _torch_gpu.module(source, params)  # cast, quantized, compiled by runtimes/torch.place
    except ValueError as exc:  # nothing to quantize, or a setting torchao refuses
        raise TrialError(str(exc)) from exc
    return _torch_gpu.runner(model, source, params)


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    model = _torch_gpu.triton(artifact, params)
    model.warnings = (*model.warnings, "torch_ao: the Triton server's Python environment needs torchao "
                      "(pip install torchao)")
    return model
