"""Shared PyTorch runner for the eager and TorchScript paths (not a path itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from navigator.lazy import require
from navigator.source import torch as torch_source
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


class TorchRunner:
    """Calls a torch callable with positional tensors in input order, on the CPU, in inference mode."""

    def __init__(self, fn: Any, names: list[str], threads: int, channels_last: bool = False) -> None:
        self.torch = require("torch")
        self.fn = fn
        self.names = names
        self.threads = threads
        self.channels_last = channels_last

    def _tensors(self, inputs: dict[str, np.ndarray]) -> list[Any]:
        torch = self.torch
        out = []
        for n in self.names:
            t = torch.from_numpy(np.ascontiguousarray(inputs[n]))
            if self.channels_last and t.dim() == 4 and t.is_floating_point():
                t = t.contiguous(memory_format=torch.channels_last)
            out.append(t)
        return out

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.torch.set_num_threads(self.threads)
        with self.torch.inference_mode():
            return torch_source.flatten(self.fn(*self._tensors(inputs)))

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        tensors = self._tensors(inputs)
        torch, fn, threads = self.torch, self.fn, self.threads

        def call() -> Any:
            # The thread count is process-wide: re-assert it when runners are measured interleaved.
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            with torch.inference_mode():
                return fn(*tensors)

        return call
