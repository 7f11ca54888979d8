"""navigator's --metric for benchmarks/int8_cpu.py: top-1 agreement with the fp32 source model.

    INT8_METRIC_DATA=metric.npz navigator optimize ... --metric benchmarks/int8_metric.py:top1_agreement \
        --trust-pickle --max-metric-drop 1%

metric.npz holds the model's inputs (>= 256 rows, by the model's input names) and `reference_top1`, the
source model's top-1 class of each row (int8_cpu.py writes it from the fp32 PyTorch model). The value is
the share of rows whose top-1 class (argmax of the first output) is the source's: 1.0 on the source.
navigator loads this file in the parent process (reading INT8_METRIC_DATA there) and carries the
function to the trial worker by value (navigator/source/metric.py); the arrays are read there, once.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

DATA = os.environ.get("INT8_METRIC_DATA", "")
CHUNK = 32  # rows per call: what a runner is called with stays near the benchmarked batch
MIN_ROWS = 256
_cache: dict[str, dict[str, np.ndarray]] = {}


def samples(path: str) -> dict[str, np.ndarray]:
    """The metric's rows and reference classes, read once per process."""
    if path not in _cache:
        if not path:
            raise RuntimeError("INT8_METRIC_DATA is not set: the .npz of inputs and reference_top1")
        with np.load(path) as data:
            _cache[path] = {k: data[k] for k in data.files}
        if len(_cache[path]["reference_top1"]) < MIN_ROWS:
            raise RuntimeError(f"{path}: fewer than {MIN_ROWS} rows")
    return _cache[path]


def agreement(runner: Callable[[dict[str, np.ndarray]], Any], data: dict[str, np.ndarray]) -> float:
    """The share of rows whose top-1 class under `runner` is `data["reference_top1"]`."""
    reference = data["reference_top1"]
    inputs = {k: v for k, v in data.items() if k != "reference_top1"}
    top1 = np.concatenate([np.asarray(runner({k: v[i:i + CHUNK] for k, v in inputs.items()})[0]).argmax(-1)
                           for i in range(0, len(reference), CHUNK)])
    return float(np.mean(top1 == reference))


def top1_agreement(runner: Callable[[dict[str, np.ndarray]], Any]) -> float:
    """navigator's metric contract: runner({input name: array}) -> outputs; higher is better."""
    return agreement(runner, samples(DATA))
