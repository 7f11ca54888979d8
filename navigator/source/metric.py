"""The user metric, `metric(runner) -> float` (higher is better; `runner({input name: array})` returns
the output arrays): found by `path/to/file.py:function` or `module:function`, saved for the trial worker
with cloudpickle (as a live model is), checked to give a finite number.

Importing a user's module runs its code, as unpickling does: the command line does it only with
--trust-pickle in the same invocation.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import numbers
import pickle
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from navigator.errors import InputError, one_line

Metric = Callable[[Any], float]


class MetricError(InputError):
    """The user metric raised, or gave something other than a finite number."""


def _module(name: str) -> Any:
    """The module of a metric spec: a .py file (loaded under a private name, so that cloudpickle saves its
    functions by value for the worker) or an importable name (the current directory first, as python -m)."""
    if name.endswith(".py"):
        file = Path(name)
        if not file.is_file():
            raise InputError(f"--metric {name}: no such file")
        spec = importlib.util.spec_from_file_location(f"_navigator_metric_{file.stem}", file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    if "" not in sys.path:
        sys.path.insert(0, "")
    return importlib.import_module(name)


def load(spec: str, trust: bool) -> Metric:
    """The function `spec` names; InputError without `trust`, or where it cannot be imported."""
    name, _, function = spec.rpartition(":")
    if not name or not function:
        raise InputError(f"--metric {spec!r} is not path/to/file.py:function or module:function")
    if not trust:
        raise InputError(f"--metric {spec} imports and runs that code: pass --trust-pickle to allow it (the "
                         "rule for pickles: only files you trust, named in this invocation)")
    try:
        module = _module(name)
    except InputError:
        raise
    except Exception as exc:  # the user's module failing to import in any way is an input error
        raise InputError(f"--metric {spec}: importing {name} failed: {one_line(exc)}") from None
    found = getattr(module, function, None)
    if not callable(found):
        raise InputError(f"--metric {spec}: {name} has no function {function!r}")
    return found  # type: ignore[no-any-return]


def save(metric: Metric, directory: Path) -> Path:
    """The metric as a file the trial worker reads back (`restore`)."""
    from navigator.lazy import require

    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "metric.pkl"
    try:
        target.write_bytes(require("cloudpickle").dumps(metric))
    except Exception as exc:  # e.g. a closure over a lock or an open session
        raise InputError(f"the metric cannot be carried to the trial worker: {one_line(exc)}") from None
    return target


def restore(file: str) -> Metric:
    """The metric `save` wrote; navigator wrote the file from the caller's own function."""
    with open(file, "rb") as f:
        return pickle.load(f)  # type: ignore[no-any-return]


def evaluate(metric: Metric, runner: Any) -> float:
    """metric(runner) as a float; MetricError where it raises or gives no finite number."""
    try:
        value = metric(runner)
    except Exception as exc:  # the user's function failing in any way
        raise MetricError(f"the metric raised {one_line(exc)}"[:500]) from None
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise MetricError(f"the metric returned {type(value).__name__} {str(value)[:60]!r}, not a number")
    if not math.isfinite(float(value)):
        raise MetricError(f"the metric returned {float(value)}, not a finite number")
    return float(value)


class SourceRunner:
    """The source framework as a runner: what the metric's value on the source is measured with."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return list(self.source.reference(feeds))


def on_source(metric: Metric, source: Any) -> float:
    """The metric on the source model; an InputError naming the metric where it fails there."""
    try:
        return evaluate(metric, SourceRunner(source))
    except MetricError as exc:
        raise MetricError(f"--metric on the source model: {exc}") from None
