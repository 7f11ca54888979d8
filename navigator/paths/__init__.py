"""Registry of conversion paths: one module per path, same stem as searchspace/<name>.yaml.

A path whose module fails to import, or whose `available()` names a reason, becomes an unavailable
Candidate; one broken path never breaks a study.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from typing import cast

from navigator.errors import InputError
from navigator.paths.base import ConversionPath
from navigator.search import space as space_mod

# Order matters only for display.
NAMES = ("eager", "torchscript", "ort_cpu", "openvino", "torch_cuda", "torch_compile", "ort_cuda",
         "ort_tensorrt", "tensorrt", "torch_tensorrt", "tf_baseline", "tf_openvino", "tf_trt",
         "tree_native", "tree_onnx", "treelite", "fil")
# The baseline of each (framework, device): the framework's own runtime with default settings.
# TensorFlow and the tree libraries run on the CPU here; on a CUDA study their baseline is absent
# unless the path runs there.
BASELINE = {("torch", "cpu"): "eager", ("onnx", "cpu"): "ort_cpu",
            ("torch", "cuda"): "torch_cuda", ("onnx", "cuda"): "ort_cuda",
            ("tf", "cpu"): "tf_baseline", ("tf", "cuda"): "tf_baseline",
            ("trees", "cpu"): "tree_native", ("trees", "cuda"): "tree_native"}
# ONNX Runtime with its default options, the second reference of the report, by device.
ORT_DEFAULTS = {"cpu": "ort_cpu", "cuda": "ort_cuda"}


@dataclass(frozen=True)
class Candidate:
    name: str
    reason: str | None  # None = usable


def get(name: str) -> ConversionPath:
    if name not in NAMES:
        raise InputError(f"unknown conversion path {name!r}; known: {', '.join(NAMES)}")
    return cast(ConversionPath, importlib.import_module(f"navigator.paths.{name}"))


def space(name: str, framework: str | None = None) -> space_mod.PathSpace:
    """The path's search space, narrowed by the path's optional `narrow` hook (e.g. CPU features)
    and, for a source of `framework`, to the ONNX opsets its installed converter accepts."""
    loaded = space_mod.load(name)
    narrow = getattr(get(name), "narrow", None)
    params = tuple(narrow(p) for p in loaded.params) if narrow is not None else loaded.params
    if framework is not None:
        params = tuple(_opsets(p, framework) for p in params)
    return replace(loaded, params=params)


def _opsets(spec: space_mod.ParamSpec, framework: str) -> space_mod.ParamSpec:
    """An `opset` parameter without the values above what the framework's ONNX converter supports
    (tf2onnx stops below the newest opsets)."""
    if spec.name != "opset" or (spec.sources and framework not in spec.sources):
        return spec
    from navigator.paths._onnx_export import max_opset

    highest = max_opset(framework)
    if highest is None:
        return spec
    kept = tuple(c for c in spec.choices if int(c) <= highest) or (highest,)
    return replace(spec, choices=kept)


def candidates(framework: str, device: str, wanted: tuple[str, ...] | None = None) -> list[Candidate]:
    """Every path with the reason it cannot run for this framework and device here (None when it can)."""
    out = []
    for name in wanted or NAMES:
        try:
            module = get(name)
        except Exception as exc:  # a broken path module must not break the others
            out.append(Candidate(name, f"import failed: {type(exc).__name__}: {exc}"))
            continue
        if framework not in module.FRAMEWORKS:
            out.append(Candidate(name, f"does not take {framework} models"))
        elif device not in module.DEVICES:
            out.append(Candidate(name, f"runs on {'/'.join(module.DEVICES)}, not {device}"))
        else:
            out.append(Candidate(name, module.available()))
    return out
