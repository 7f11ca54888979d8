"""Registry of conversion paths: one module per path, same stem as searchspace/<name>.yaml.

`get` turns a module into a Plugin (every hook present, defaults filled); a module missing a required
hook, or with a public name that looks like a misspelt one, is refused. A path whose module fails to
import, or whose `available()` names a reason, becomes an unavailable Candidate; one broken path never
breaks a study. The roles (a study's baseline, the ONNX Runtime reference) are declared by the paths.
"""

from __future__ import annotations

import difflib
import importlib
import types
from dataclasses import dataclass, replace
from typing import Any

from navigator.errors import InputError, NavigatorError, one_line
from navigator.paths.base import NO_CALIBRATION, ConversionPath, Plugin
from navigator.records import QUANTIZED
from navigator.search import space as space_mod

# Order matters only for display.
NAMES = ("eager", "torchscript", "ort_cpu", "ort_int8", "openvino", "openvino_int8", "torch_cuda", "torch_compile",
         "torch_ao", "ort_cuda",
         "ort_tensorrt", "tensorrt", "torch_tensorrt", "tf_baseline", "tf_openvino", "tf_trt",
         "tree_native", "tree_onnx", "treelite", "fil")
# Path name -> module, for paths outside NAMES: empty for users; tests register a fake path here.
EXTRA: dict[str, str] = {}

CONSTANTS = dict(ConversionPath.__annotations__)  # hook name -> its annotation (a string)
FUNCTIONS = tuple(n for n, v in vars(ConversionPath).items() if callable(v) and not n.startswith("_"))
HOOKS = (*CONSTANTS, *FUNCTIONS)
REQUIRED = ("NAME", "FRAMEWORKS", "DEVICES", "TIMEOUT_S", "available", "convert", "load", "triton")
TYPES: dict[str, type | tuple[type, ...]] = {"float": (int, float), "str": str, "tuple": tuple, "dict": dict,
                                             "bool": bool}


class PathModuleError(NavigatorError):
    """A path module that breaks the ConversionPath contract (a missing or misspelt hook)."""


@dataclass(frozen=True)
class Candidate:
    name: str
    reason: str | None  # None = usable


def problems(module: types.ModuleType) -> list[str]:
    """What breaks the contract in a path module: a required hook missing, a hook of the wrong kind, a
    public name close to a hook's (a misspelt `precison` would otherwise be ignored silently)."""
    found = [f"no {n}" for n in REQUIRED if not hasattr(module, n)]
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, types.ModuleType):
            continue
        if name in FUNCTIONS and not callable(value):
            found.append(f"{name} is not a function")
        elif name in CONSTANTS:
            kind = CONSTANTS[name].split("[")[0]
            if not isinstance(value, TYPES[kind]):
                found.append(f"{name} is not a {CONSTANTS[name]}")
        elif name not in HOOKS and difflib.get_close_matches(name, HOOKS, 1, 0.8):
            found.append(f"{name} looks like a misspelt {difflib.get_close_matches(name, HOOKS, 1, 0.8)[0]}")
    return found


def _module(name: str) -> types.ModuleType:
    if name not in NAMES and name not in EXTRA:
        raise InputError(f"unknown conversion path {name!r}; known: {', '.join(NAMES)}")
    return importlib.import_module(EXTRA.get(name, f"navigator.paths.{name}"))


def plugin(module: types.ModuleType) -> Plugin:
    """The module's Plugin, its optional hooks defaulted; PathModuleError where it breaks the contract."""
    found = problems(module)
    if found:
        raise PathModuleError(f"path module {module.__name__}: {'; '.join(found)}")
    m: Any = module
    hook = vars(module).get
    classes = tuple(hook("PRECISION_CLASSES", ("fp32",)))
    return Plugin(m.NAME, tuple(m.FRAMEWORKS), tuple(m.DEVICES), float(m.TIMEOUT_S),
                  float(hook("COST_S", m.TIMEOUT_S / 10)), dict(hook("COST_BY", {})),
                  hook("ENGINE", f"the {m.NAME} path"), classes, tuple(hook("BASELINE", ())),
                  tuple(hook("REFERENCE", ())), tuple(hook("TWIN_ONLY", ())),
                  bool(hook("CALIBRATES", "int8" in classes)),
                  m.available, m.convert, m.load, m.triton, hook("narrow", lambda spec: spec),
                  hook("precision", lambda params: "fp32"))


def get(name: str) -> Plugin:
    return plugin(_module(name))


def _role(pick: Any) -> str | None:
    """The one path of NAMES whose Plugin `pick` holds (paths that do not import are skipped)."""
    for name in NAMES:
        try:
            found = get(name)
        except Exception:  # a broken path module declares nothing
            continue
        if pick(found):
            return name
    return None


def calibrating(framework: str, device: str, wanted: tuple[str, ...] | None = None) -> list[str]:
    """The paths of `wanted` (default all) for this framework and device that calibrate (CALIBRATES;
    paths that do not import are skipped)."""
    found = []
    for name in wanted or NAMES:
        try:
            plugin = get(name)
        except Exception:  # a broken path module declares nothing
            continue
        if plugin.calibrates and framework in plugin.frameworks and device in plugin.devices:
            found.append(name)
    return found


def only_calibrated(path: Any) -> bool:
    """Whether every trial of the path calibrates (every precision class it runs is quantized): without
    calibration inputs such a path is not searched at all."""
    return bool(path.calibrates) and set(path.precision_classes) <= set(QUANTIZED)


def baseline(framework: str, device: str) -> str | None:
    """The baseline of a (framework, device) study: the framework's own runtime with default settings,
    the path that declares it in BASELINE."""
    return _role(lambda p: (framework, device) in p.baseline)


def reference(device: str) -> str | None:
    """ONNX Runtime with its default options on `device`, the report's second reference (REFERENCE)."""
    return _role(lambda p: device in p.reference)


def space(name: str, framework: str | None = None, narrowing: str | None = None) -> space_mod.PathSpace:
    """The path's search space, narrowed by the user (`--search-space` DIR, search/narrowing.py), by the
    path's `narrow` hook (e.g. CPU features) and, for a source of `framework`, to the ONNX opsets its
    installed converter accepts."""
    loaded = space_mod.narrowed(space_mod.load(name), narrowing)
    params = tuple(get(name).narrow(p) for p in loaded.params)
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


def candidates(framework: str, device: str, wanted: tuple[str, ...] | None = None,
               calibration: bool = True) -> list[Candidate]:
    """Every path with the reason it cannot run for this framework and device here (None when it can).
    Without `calibration` inputs (the validation inputs were drawn at random), a path all of whose trials
    calibrate (CALIBRATES, every precision class quantized) is not searched: each of its trials would fail."""
    out = []
    for name in wanted or NAMES:
        try:
            path = get(name)
        except PathModuleError as exc:
            out.append(Candidate(name, str(exc)))
            continue
        except Exception as exc:  # a broken path module must not break the others
            out.append(Candidate(name, f"import failed: {one_line(exc)}"))
            continue
        if framework not in path.frameworks:
            out.append(Candidate(name, f"does not take {framework} models"))
        elif device not in path.devices:
            out.append(Candidate(name, f"runs on {'/'.join(path.devices)}, not {device}"))
        elif not calibration and only_calibrated(path):
            out.append(Candidate(name, NO_CALIBRATION))
        else:
            out.append(Candidate(name, path.available()))
    return out
