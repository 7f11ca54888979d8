"""Shared ONNX Runtime session builder and runner (not a path itself).

Session options: https://onnxruntime.ai/docs/api/python/api_summary.html#sessionoptions
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from navigator.lazy import require
from navigator.paths.base import Runner
from navigator.records import Params

LEVELS = {  # searchspace name -> onnxruntime.GraphOptimizationLevel member
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def session_options(params: Params) -> Any:
    """SessionOptions from runtime params; a param left out keeps ORT's default."""
    ort = require("onnxruntime")
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if "graph_optimization_level" in params:
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[str(params["graph_optimization_level"])])
    if "intra_op_num_threads" in params:
        so.intra_op_num_threads = int(params["intra_op_num_threads"])
    if "execution_mode" in params:
        parallel = params["execution_mode"] == "parallel"
        so.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    if "inter_op_num_threads" in params:
        so.inter_op_num_threads = int(params["inter_op_num_threads"])
    if "enable_mem_pattern" in params:
        so.enable_mem_pattern = bool(params["enable_mem_pattern"])
    if "enable_cpu_mem_arena" in params:
        so.enable_cpu_mem_arena = bool(params["enable_cpu_mem_arena"])
    return so


class OrtRunner(Runner):
    def __init__(self, model: Path, params: Params, providers: list[str]) -> None:
        ort = require("onnxruntime")
        self.session = ort.InferenceSession(str(model), sess_options=session_options(params), providers=providers)
        self.names = [i.name for i in self.session.get_inputs()]

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(o) for o in self.session.run(None, {n: inputs[n] for n in self.names})]

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        feed = {n: np.ascontiguousarray(inputs[n]) for n in self.names}
        run = self.session.run
        return lambda: run(None, feed)


class OrtCudaRunner(Runner):
    """ONNX Runtime on the GPU through IO binding: inputs are copied to the device once in prepare(),
    outputs stay on the device, so the timed call is the model's own work (ORT's CUDA provider
    synchronises its stream at the end of each run).

    With `cuda_graph` (the provider option enable_cuda_graph) every input signature gets device buffers
    allocated once and its own graph (run option gpu_graph_id): a first run with graph id -1 (no
    capture) allocates the outputs, which then stay bound, so that replays read and write the same
    addresses; new inputs are copied into the bound buffers (OrtValue.update_inplace)."""

    device = "cuda"  # where the bound buffers live

    def __init__(self, model: Path, params: Params, providers: list[Any], cuda_graph: bool = False) -> None:
        self.ort = require("onnxruntime")
        self.session = self.ort.InferenceSession(str(model), sess_options=session_options(params),
                                                 providers=providers)
        self.names = [i.name for i in self.session.get_inputs()]
        self.outputs = self.session.get_outputs()
        self.cuda_graph = cuda_graph
        self._graphs: dict[tuple[Any, ...], tuple[Any, list[Any], Any]] = {}

    def _bind(self, inputs: dict[str, np.ndarray]) -> tuple[Any, list[Any]]:
        ort = self.ort
        binding = self.session.io_binding()
        keep = []
        for n in self.names:
            value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(inputs[n]), self.device, 0)
            binding.bind_ortvalue_input(n, value)
            keep.append(value)
        for out in self.outputs:
            binding.bind_output(out.name, self.device, 0)
        return binding, keep

    def _run_options(self, graph_id: int) -> Any:
        options = self.ort.RunOptions()
        options.add_run_config_entry("gpu_graph_id", str(graph_id))
        return options

    def _graph(self, inputs: dict[str, np.ndarray]) -> tuple[Any, list[Any], Any]:
        """(binding on fixed buffers, the input buffers, run options naming this signature's graph)."""
        key = tuple((n, inputs[n].shape, inputs[n].dtype.str) for n in self.names)
        if key in self._graphs:
            binding, buffers, options = self._graphs[key]
            for n, value in zip(self.names, buffers):
                value.update_inplace(np.ascontiguousarray(inputs[n]))
            return self._graphs[key]
        binding, buffers = self._bind(inputs)
        self.session.run_with_iobinding(binding, self._run_options(-1))
        outputs = binding.get_outputs()
        binding.clear_binding_outputs()
        for out, value in zip(self.outputs, outputs):
            binding.bind_ortvalue_output(out.name, value)
        self._graphs[key] = (binding, [*buffers, *outputs], self._run_options(len(self._graphs)))
        return self._graphs[key]

    def _binding(self, inputs: dict[str, np.ndarray]) -> tuple[Any, list[Any], Any]:
        return self._graph(inputs) if self.cuda_graph else (*self._bind(inputs), None)

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        binding, _, options = self._binding(inputs)
        self.session.run_with_iobinding(binding, options)
        return [np.asarray(o) for o in binding.copy_outputs_to_cpu()]

    def host_call(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        """The call with the copies a Triton client pays: inputs to the device, outputs back."""
        return lambda: self(inputs)

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        binding, keep, options = self._binding(inputs)
        run = self.session.run_with_iobinding

        def call() -> Any:
            run(binding, options)
            return keep

        return call
