"""Calibration inputs as the INT8 paths' quantizers take them (not a path): batches of rows, and their
identity for the conversion cache's key."""

from __future__ import annotations

import hashlib
from typing import Iterator

import numpy as np

from navigator.errors import TrialError
from navigator.paths.base import NO_CALIBRATION, Target

ROWS = 128  # rows of the calibration inputs read by default (a few hundred is the quantizers' own default)


def of(target: Target) -> dict[str, np.ndarray]:
    """The target's calibration inputs; TrialError(NO_CALIBRATION) where it has none."""
    if target.calibration is None:
        raise TrialError(NO_CALIBRATION)
    return target.calibration


def fingerprint(data: dict[str, np.ndarray]) -> str:
    """The calibration inputs' identity in a cache key: names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for name in sorted(data):
        arr = np.ascontiguousarray(data[name])
        digest.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()[:16]


def batches(data: dict[str, np.ndarray], batched: bool, size: int, rows: int = ROWS) -> Iterator[dict[str, np.ndarray]]:
    """Up to `rows` rows of the calibration inputs in batches of `size` (a model without a batch axis
    takes the arrays whole)."""
    if not batched:
        yield data
        return
    count = min(rows, min(int(v.shape[0]) for v in data.values()))
    for start in range(0, count, size):
        yield {k: v[start:start + size] for k, v in data.items()}
