"""Example tensors for tracing and export, shared by the PyTorch paths (not a path itself); the runners
are navigator/runtimes/torch.py's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from navigator.lazy import require
from navigator.source.iospec import resize_batch

if TYPE_CHECKING:
    from navigator.source import ModelSource


def example_args(source: ModelSource) -> tuple[Any, ...]:
    """Positional example tensors for tracing/export: at least two rows on a batched axis, because
    torch.export and the tracer specialise a batch of size 1 to a constant."""
    torch = require("torch")
    rows = max(2, next(iter(source.samples.values())).shape[0]) if source.io.batched else 0
    data = resize_batch(source.samples, rows) if rows else source.samples
    return tuple(torch.from_numpy(data[t.name]) for t in source.io.inputs)
