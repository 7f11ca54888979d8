"""Registry of conversion paths: one module per path, same stem as searchspace/<name>.yaml.

A path whose module fails to import, or whose `available()` names a reason, becomes an unavailable
Candidate; one broken path never breaks a study.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import cast

from navigator.errors import InputError
from navigator.paths.base import ConversionPath
from navigator.search import space as space_mod

# Order matters only for display; "eager" is the baseline of torch sources.
NAMES = ("eager", "torchscript", "ort_cpu", "openvino")
# The baseline path of each source framework: the framework's own runtime, default settings.
BASELINE = {"torch": "eager", "onnx": "ort_cpu"}


@dataclass(frozen=True)
class Candidate:
    name: str
    reason: str | None  # None = usable


def get(name: str) -> ConversionPath:
    if name not in NAMES:
        raise InputError(f"unknown conversion path {name!r}; known: {', '.join(NAMES)}")
    return cast(ConversionPath, importlib.import_module(f"navigator.paths.{name}"))


def space(name: str) -> space_mod.PathSpace:
    """The path's search space, narrowed by the path's optional `narrow` hook (e.g. CPU features)."""
    loaded = space_mod.load(name)
    narrow = getattr(get(name), "narrow", None)
    if narrow is None:
        return loaded
    return space_mod.PathSpace(loaded.path, tuple(narrow(p) for p in loaded.params))


def candidates(framework: str, wanted: tuple[str, ...] | None = None) -> list[Candidate]:
    """Every path with the reason it cannot run for this framework here (None when it can)."""
    out = []
    for name in wanted or NAMES:
        try:
            module = get(name)
        except ImportError as exc:
            out.append(Candidate(name, f"import failed: {exc}"))
            continue
        if framework not in module.FRAMEWORKS:
            out.append(Candidate(name, f"does not take {framework} models"))
            continue
        out.append(Candidate(name, module.available()))
    return out
