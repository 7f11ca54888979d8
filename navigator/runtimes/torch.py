"""PyTorch: a trial's settings record (device, precision, memory format, cuDNN, CUDA graphs, compile
mode), the model placed accordingly, and the runners that call it.

Precisions: fp32 keeps PyTorch's defaults (TF32 in cuDNN convolutions, not in matmuls), which is what a
user's `model.cuda()` runs; fp32_strict turns TF32 off everywhere; tf32 turns it on for matmuls too;
fp16/bf16 cast the weights and floating inputs (cast "weights") or run under autocast.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

# precision name -> torch dtype the weights and floating inputs are cast to ("tf32" computes fp32
# matmuls/convolutions on TF32 tensor cores; the tensors stay float32).
DTYPES = {"fp32": "float32", "fp32_strict": "float32", "tf32": "float32", "fp16": "float16", "bf16": "bfloat16"}
# Input signatures that get their own CUDA graph (the batch sizes a dynamic batcher forms); past these
# a call runs without one.
MAX_GRAPHS = 32


@dataclass(frozen=True)
class TorchSettings:
    """How one trial runs its torch callable; built from the trial's params by settings()."""

    device: str = "cpu"
    threads: int | None = None  # torch.set_num_threads (CPU)
    precision: str = "fp32"
    autocast: bool = False
    channels_last: bool = False
    cudnn_benchmark: bool = False
    cuda_graphs: bool = False
    compile_mode: str | None = None  # torch.compile(mode=...), None: not compiled
    quant: str | None = None  # torchao quantization of the linear layers (runtimes/quantize.py CONFIGS)
    granularity: str | None = None  # its FP8 scale granularity (per_row, per_tensor)


def settings(params: dict[str, Any], device: str) -> TorchSettings:
    """The settings record of a trial's runtime params on `device` ("cpu" or "cuda")."""
    threads = int(params["threads"]) if "threads" in params else None
    if device != "cuda":
        return TorchSettings("cpu", threads, channels_last=bool(params.get("channels_last")))
    mode = params.get("mode", "none")
    return TorchSettings("cuda", threads, str(params.get("precision", "fp32")), params.get("cast") == "autocast",
                         bool(params.get("channels_last")), bool(params.get("cudnn_benchmark", True)),
                         bool(params.get("cuda_graphs")), None if mode == "none" else str(mode),
                         str(params["quant"]) if "quant" in params else None,
                         str(params["granularity"]) if "granularity" in params else None)


def _torch() -> Any:
    import torch

    return torch


def dtype(s: TorchSettings) -> Any:
    return getattr(_torch(), DTYPES[s.precision])


def set_cuda_flags(s: TorchSettings) -> None:
    """Process-wide cuDNN/cuBLAS switches of one runner; re-asserted when runners interleave."""
    torch = _torch()
    torch.backends.cuda.matmul.allow_tf32 = s.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = s.precision != "fp32_strict"
    torch.backends.cudnn.benchmark = s.cudnn_benchmark


def place(model: Any, s: TorchSettings) -> Any:
    """The model (already on s.device) in the trial's weight dtype and memory format, its linear layers
    quantized (torchao), compiled with its mode."""
    torch = _torch()
    if s.device == "cuda" and not s.autocast and s.precision in ("fp16", "bf16"):
        model = model.to(dtype(s))
    if s.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if s.quant is not None:
        from . import quantize  # relative: the twin ships runtimes/ under another package name

        quantize.quantize(model, s.quant, s.granularity)
    if s.compile_mode is not None:
        model = torch.compile(model, mode=s.compile_mode, dynamic=False)
    return model


def program_module(program: Any) -> Any:
    """An ExportedProgram's module, called with its inputs flat, in graph_signature.user_inputs order, as
    every runner calls a model: a program exported with keyword or nested arguments expects them as it
    was called (model(input_ids=..., attention_mask=...)), which its FlatInputs wrapper rebuilds."""
    torch = _torch()
    from torch.utils import _pytree as pytree

    module, spec = program.module(), program.call_spec.in_spec
    if spec is None:
        return module
    args, kwargs = spec.children()
    if kwargs.num_children == 0 and all(c.is_leaf() for c in args.children()):
        return module

    class FlatInputs(torch.nn.Module):  # type: ignore[name-defined]  # torch is imported lazily
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, *flat: Any) -> Any:
            call_args, call_kwargs = pytree.tree_unflatten(list(flat), spec)
            return self.inner(*call_args, **call_kwargs)

    return FlatInputs()


def retarget_script(model: Any, device: str) -> Any:
    """A TorchScript loaded with map_location=device, its graphs' Device constants (a traced
    torch.arange(..., device="cpu")) rewritten too: map_location moves the weights only."""
    torch = _torch()
    graphs = [getattr(getattr(sub, "forward", None), "graph", None) for sub in model.modules()]
    for node in (n for g in graphs if g is not None for n in g.findAllNodes("prim::Constant")):
        if node.output().type().kind() == "DeviceObjType":
            node.s_("value", str(torch.device(device)))
    return model


def is_torchscript(path: Path) -> bool:
    """Whether a .pt file is a TorchScript archive (code/ inside), not a torch.save pickle."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def is_pickle(path: Path) -> bool:
    """Whether load_file() would have to unpickle this file (neither .pt2 nor TorchScript)."""
    return not str(path).endswith(".pt2") and not is_torchscript(path)


def load_file(path: Path, device: str, unpickle: bool = False) -> Any:
    """A saved model (ExportedProgram .pt2, TorchScript, or with `unpickle` a torch.save pickle of a
    module) on `device`, with the devices its graph was captured on rewritten. Without `unpickle` a
    pickle is refused rather than loaded."""
    torch = _torch()
    if str(path).endswith(".pt2"):
        from torch.export.passes import move_to_device_pass

        return program_module(move_to_device_pass(torch.export.load(str(path)), device))
    if not is_pickle(path):
        return retarget_script(torch.jit.load(str(path), map_location=device).eval(), device)
    if not unpickle:
        raise ValueError(f"{path} is neither an ExportedProgram nor a TorchScript, and unpickling it was not allowed")
    return torch.load(str(path), map_location="cpu", weights_only=False).eval().to(device)


def outputs(out: Any) -> list[np.ndarray]:
    """The tensors of an output pytree in order, on the host; bf16/fp16 as float32 on a GPU
    (NumPy has no bf16; the source's outputs were float32), bf16 as float32 on the CPU."""
    torch = _torch()
    low = (torch.bfloat16, torch.float16)
    leaves = [t for t in torch.utils._pytree.tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
    if not leaves:
        raise ValueError("the model returned no tensors")
    return [(t.detach().float() if t.dtype in low and (t.is_cuda or t.dtype == torch.bfloat16) else t.detach())
            .cpu().numpy() for t in leaves]


def runner(fn: Any, names: list[str], s: TorchSettings) -> TorchRunner:
    return CudaTorchRunner(fn, names, s) if s.device == "cuda" else TorchRunner(fn, names, s)


class TorchRunner:
    """Calls a torch callable with positional tensors in input order, on the CPU, in inference mode."""

    def __init__(self, fn: Any, names: list[str], settings: TorchSettings) -> None:
        self.torch = _torch()
        self.fn, self.names, self.settings = fn, names, settings

    def _tensor(self, array: np.ndarray) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(array))

    def _tensors(self, inputs: dict[str, np.ndarray]) -> list[Any]:
        out = []
        for n in self.names:
            t = self._tensor(inputs[n])
            if self.settings.channels_last and t.dim() == 4 and t.is_floating_point():
                t = t.contiguous(memory_format=self.torch.channels_last)
            out.append(t)
        return out

    def _flags(self) -> None:
        # The thread count is process-wide: re-asserted when runners are measured interleaved.
        threads = self.settings.threads
        if threads is not None and self.torch.get_num_threads() != threads:
            self.torch.set_num_threads(threads)

    def _run(self, tensors: list[Any]) -> Any:
        with self.torch.inference_mode():
            return self.fn(*tensors)

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        self._flags()
        return outputs(self._run(self._tensors(inputs)))

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        tensors = self._tensors(inputs)

        def call() -> Any:
            self._flags()
            return self._run(tensors)

        return call

    def host_call(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any] | None:
        """None: prepare()'s call takes and gives host arrays already (navigator's Runner protocol)."""
        return None

    def close(self) -> None:
        self.fn = None

    def precision_run(self) -> str | None:
        """The weights of the module this runner calls, by precision or tensor subclass, and the
        autocast dtype it calls under (runtimes/precision.py)."""
        from . import precision  # relative: the twin ships runtimes/ under another package name

        autocast = precision.DTYPE_NAMES[DTYPES[self.settings.precision]] if self.settings.autocast else None
        return precision.torch_module(self.fn, autocast)


class CudaTorchRunner(TorchRunner):
    """The GPU runner: weights and floating inputs in the trial's precision, optional channels_last,
    autocast and CUDA graphs (one per input signature, captured on its first call); the hot call ends
    with a device synchronisation, so the benchmark times the GPU work and not only its launch."""

    def __init__(self, fn: Any, names: list[str], settings: TorchSettings) -> None:
        super().__init__(fn, names, settings)
        self.dtype = dtype(settings)
        self._graphs: dict[tuple[Any, ...], tuple[Any, list[Any], Any]] = {}
        self._prepared: list[Any] = []

    def _tensor(self, array: np.ndarray) -> Any:
        t = super()._tensor(array).to("cuda")
        return t.to(self.dtype) if t.is_floating_point() and not self.settings.autocast else t

    def _flags(self) -> None:
        set_cuda_flags(self.settings)

    def _run(self, tensors: list[Any]) -> Any:
        torch = self.torch
        with torch.inference_mode(), torch.autocast("cuda", dtype=self.dtype, enabled=self.settings.autocast):
            return self.fn(*tensors)

    def _graph(self, tensors: list[Any]) -> tuple[Any, list[Any], Any] | None:
        """(graph, its static inputs, its static outputs) for this input signature, `tensors` copied
        into the inputs; None past MAX_GRAPHS. A capture warms up on a side stream first (allocations,
        cuDNN autotuning), then records one call on static copies of the inputs."""
        torch = self.torch
        key = tuple((tuple(t.shape), t.dtype, t.stride()) for t in tensors)
        if key not in self._graphs:
            if len(self._graphs) >= MAX_GRAPHS:
                return None
            static = [t.clone() for t in tensors]
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    self._run(static)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = self._run(static)
            self._graphs[key] = (graph, static, out)
        entry = self._graphs[key]
        for dst, src in zip(entry[1], tensors):
            dst.copy_(src)
        return entry

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        self._flags()
        tensors = self._tensors(inputs)
        entry = self._graph(tensors) if self.settings.cuda_graphs else None
        if entry is None:
            return outputs(self._run(tensors))
        entry[0].replay()
        return outputs(entry[2])

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        torch = self.torch
        self._flags()
        tensors = self._tensors(inputs)
        entry = self._graph(tensors) if self.settings.cuda_graphs else None
        if entry is None:
            self._prepared = tensors  # the device inputs the returned call reads

            def call() -> Any:
                self._flags()
                out = self._run(tensors)
                torch.cuda.synchronize()
                return out

            return call
        graph, self._prepared, static_out = entry

        def replay() -> Any:
            graph.replay()
            torch.cuda.synchronize()
            return static_out

        return replay

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

    def close(self) -> None:
        """Frees the captured graphs and their static buffers, then the model."""
        self._graphs.clear()
        self._prepared = []
        super().close()
        if self.torch.cuda.is_available():
            self.torch.cuda.empty_cache()
