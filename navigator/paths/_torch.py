"""Shared PyTorch runner for the eager and TorchScript paths (not a path itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from navigator.lazy import require
from navigator.paths.base import Runner
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


class TorchRunner(Runner):
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


# precision name -> torch dtype the weights and floating inputs are cast to ("tf32" computes fp32
# matmuls/convolutions on TF32 tensor cores; the tensors stay float32).
DTYPES = {"fp32": "float32", "fp32_strict": "float32", "tf32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def set_cuda_flags(torch: Any, precision: str, cudnn_benchmark: bool) -> None:
    """Process-wide cuDNN/cuBLAS switches for one runner; re-asserted when runners interleave.
    fp32 keeps PyTorch's defaults (TF32 in cuDNN convolutions, not in matmuls), which is what a
    user's `model.cuda()` runs; fp32_strict turns TF32 off everywhere; tf32 turns it on for matmuls too."""
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision != "fp32_strict"
    torch.backends.cudnn.benchmark = cudnn_benchmark


class CudaTorchRunner(Runner):
    """Runs a torch callable on the GPU: weights and floating inputs in the trial's precision, optional
    channels_last, autocast, and CUDA graphs; the hot call ends with a device synchronisation, so the
    benchmark times the GPU work and not only its launch."""

    def __init__(self, fn: Any, names: list[str], precision: str, *, channels_last: bool = False,
                 autocast: bool = False, cuda_graphs: bool = False, cudnn_benchmark: bool = True) -> None:
        self.torch = require("torch")
        self.fn, self.names, self.precision = fn, names, precision
        self.dtype = getattr(self.torch, DTYPES[precision])
        self.channels_last, self.autocast = channels_last, autocast
        self.cuda_graphs, self.cudnn_benchmark = cuda_graphs, cudnn_benchmark

    def _tensors(self, inputs: dict[str, np.ndarray]) -> list[Any]:
        torch = self.torch
        out = []
        for n in self.names:
            t = torch.from_numpy(np.ascontiguousarray(inputs[n])).to("cuda")
            if t.is_floating_point() and not self.autocast:
                t = t.to(self.dtype)
            if self.channels_last and t.dim() == 4:
                t = t.contiguous(memory_format=torch.channels_last)
            out.append(t)
        return out

    def _run(self, tensors: list[Any]) -> Any:
        torch = self.torch
        with torch.inference_mode():
            if self.autocast:
                with torch.autocast("cuda", dtype=self.dtype):
                    return self.fn(*tensors)
            return self.fn(*tensors)

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        set_cuda_flags(self.torch, self.precision, self.cudnn_benchmark)
        call = self.prepare(inputs) if self.cuda_graphs else None
        out = call() if call else self._run(self._tensors(inputs))
        leaves = self.torch.utils._pytree.tree_flatten(out)[0]
        return [t.detach().float().cpu().numpy() for t in leaves if isinstance(t, self.torch.Tensor)]

    def host_call(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        """The hot call with the copies a Triton client pays: host arrays into the device inputs
        (cast and laid out by copy_), the run, the outputs back to host memory."""
        torch = self.torch
        call = self.prepare(inputs)
        host = [torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in self.names]
        device = self._prepared

        def run() -> list[Any]:
            for dst, src in zip(device, host):
                dst.copy_(src)
            leaves = torch.utils._pytree.tree_flatten(call())[0]
            return [t.cpu() for t in leaves if isinstance(t, torch.Tensor)]

        return run

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        torch = self.torch
        set_cuda_flags(torch, self.precision, self.cudnn_benchmark)
        tensors = self._tensors(inputs)
        self._prepared = tensors  # the device inputs the returned call reads (graph replays too)
        if not self.cuda_graphs:
            def call() -> Any:
                set_cuda_flags(torch, self.precision, self.cudnn_benchmark)
                out = self._run(tensors)
                torch.cuda.synchronize()
                return out

            return call
        # CUDA graphs: warm up on a side stream (allocations, cuDNN autotuning), then capture once
        # and replay on the same static input tensors.
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                self._run(tensors)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self._run(tensors)

        def replay() -> Any:
            graph.replay()
            torch.cuda.synchronize()
            return static_out

        return replay
