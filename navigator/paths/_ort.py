"""Shared ONNX Runtime session builder and runner (not a path itself).

Session options: https://onnxruntime.ai/docs/api/python/api_summary.html#sessionoptions
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from navigator.lazy import require
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


class OrtRunner:
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


class OrtCudaRunner:
    """ONNX Runtime on the GPU through IO binding: inputs are copied to the device once in prepare(),
    outputs stay on the device, so the timed call is the model's own work (ORT's CUDA provider
    synchronises its stream at the end of each run)."""

    def __init__(self, model: Path, params: Params, providers: list[Any]) -> None:
        self.ort = require("onnxruntime")
        self.session = self.ort.InferenceSession(str(model), sess_options=session_options(params),
                                                 providers=providers)
        self.names = [i.name for i in self.session.get_inputs()]
        self.outputs = self.session.get_outputs()

    def _bind(self, inputs: dict[str, np.ndarray]) -> tuple[Any, list[Any]]:
        ort = self.ort
        binding = self.session.io_binding()
        keep = []
        for n in self.names:
            value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(inputs[n]), "cuda", 0)
            binding.bind_ortvalue_input(n, value)
            keep.append(value)
        for out in self.outputs:
            binding.bind_output(out.name, "cuda", 0)
        return binding, keep

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        binding, _ = self._bind(inputs)
        self.session.run_with_iobinding(binding)
        return [np.asarray(o) for o in binding.copy_outputs_to_cpu()]

    def host_call(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        """The call with the copies a Triton client pays: inputs to the device, outputs back."""
        return lambda: self(inputs)

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        binding, keep = self._bind(inputs)
        run = self.session.run_with_iobinding

        def call() -> Any:
            run(binding)
            return keep

        return call
