"""ONNX Runtime: session options and providers from a trial's params, and its runners.

Session options: https://onnxruntime.ai/docs/api/python/api_summary.html#sessionoptions
CUDA provider options: https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

LEVELS = {  # searchspace name -> onnxruntime.GraphOptimizationLevel member
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
# Params passed to the CUDA execution provider under their own names (values as ORT's strings).
PROVIDER_OPTIONS = ("cudnn_conv_algo_search", "use_tf32", "arena_extend_strategy", "do_copy_in_default_stream",
                    "prefer_nhwc", "enable_cuda_graph")
# Input signatures that get their own CUDA graph; past these (a server's dynamic batcher forming ever
# new shapes) a request runs without capture rather than holding one more graph's memory.
MAX_GRAPHS = 32
# Models up to this size (file and external data) are opened a second time to read the graph ONNX Runtime
# optimised (precision_run); a larger one is read as given, not loaded twice. Measured on a 2-core CPU
# under load: a 384 MiB model took 1.9 s to load and 3-9 s more to load again and save its optimised graph.
OPTIMIZED_MAX_BYTES = 256 << 20


def _ort() -> Any:
    import onnxruntime

    return onnxruntime


def session_options(params: dict[str, Any]) -> Any:
    """SessionOptions from runtime params; a param left out keeps ORT's default."""
    ort = _ort()
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


def option_text(value: object) -> str:
    """A provider option's string: booleans as ORT's 0/1."""
    return ("1" if value else "0") if isinstance(value, bool) else str(value)


def cuda_options(params: dict[str, Any]) -> dict[str, str]:
    """The CUDA execution provider's options from runtime params (gpu_mem_limit_gib 0: no limit)."""
    options = {"device_id": "0", **{k: option_text(params[k]) for k in PROVIDER_OPTIONS if k in params}}
    if int(params.get("gpu_mem_limit_gib", 0)) > 0:  # 0: ORT's default, no limit (SIZE_MAX)
        options["gpu_mem_limit"] = str(int(params["gpu_mem_limit_gib"]) * 2**30)
    return options


def providers(params: dict[str, Any], device: str) -> list[Any]:
    if device == "cuda":
        return [("CUDAExecutionProvider", cuda_options(params)), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def open_session(model: Path, params: dict[str, Any], device: str) -> OrtRunner:
    """The runner a trial on `device` measures (and the twin serves) for these params."""
    if device == "cuda":
        return OrtCudaRunner(model, params, providers(params, device), bool(params.get("enable_cuda_graph")))
    return OrtRunner(model, params, providers(params, device))


class OrtRunner:
    def __init__(self, model: Path, params: dict[str, Any], providers: list[Any]) -> None:
        self.ort = _ort()
        self.session = self.ort.InferenceSession(str(model), sess_options=session_options(params),
                                                 providers=providers)
        self.names = [i.name for i in self.session.get_inputs()]
        self.model, self.params, self.providers = Path(model), params, providers

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(o) for o in self.session.run(None, {n: inputs[n] for n in self.names})]

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        feed = {n: np.ascontiguousarray(inputs[n]) for n in self.names}
        run = self.session.run
        return lambda: run(None, feed)

    def host_call(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any] | None:
        """None: prepare()'s call takes and gives host arrays already (navigator's Runner protocol)."""
        return None

    def close(self) -> None:
        """Drops the session (its arena and, on a GPU, its device memory and CUDA graphs)."""
        self.session = None

    def precision_run(self) -> str | None:
        """The compute operations of the graph this session runs, by precision (runtimes/precision.py).

        ONNX Runtime keeps its optimised graph to itself; a second session of the same model, options and
        providers writes it out (SessionOptions.optimized_model_filepath, weights to a side file:
        onnxruntime_session_options_config_keys.h "session.optimized_model_external_initializers_*"), so
        QDQ pairs fused into QLinear kernels, or left unfused at a low graph optimisation level, and the
        Casts inserted around fp16 operations a provider lacks are what is counted. A model over
        OPTIMIZED_MAX_BYTES is read as given."""
        import onnx
        from onnx.external_data_helper import ExternalDataInfo, uses_external_data

        from . import precision  # relative: the twin ships runtimes/ under another package name

        given = onnx.load(str(self.model), load_external_data=False)
        data = {ExternalDataInfo(t).location for t in given.graph.initializer if uses_external_data(t)}
        size = self.model.stat().st_size + sum(f.stat().st_size for f in (self.model.parent / d for d in data)
                                               if f.is_file())
        if size > OPTIMIZED_MAX_BYTES:
            text = precision.onnx_graph(given.graph, optimised=False)
            return None if text is None else f"{text} (the model as given: over {OPTIMIZED_MAX_BYTES >> 20} MiB, not opened twice)"
        with tempfile.TemporaryDirectory(prefix="navigator-ort-") as tmp:
            options = session_options(self.params)
            options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
            options.add_session_config_entry("session.optimized_model_external_initializers_file_name", "weights.bin")
            self.ort.InferenceSession(str(self.model), sess_options=options, providers=self.providers)
            graph = onnx.load(options.optimized_model_filepath, load_external_data=False).graph
        text = precision.onnx_graph(graph)
        cuda = self.session.get_provider_options().get("CUDAExecutionProvider", {}) if self.session else {}
        if text is not None and "fp32" in text and cuda.get("use_tf32") == "1":
            text += "; CUDA provider use_tf32=1 (fp32 convolutions and matmuls in TF32 on Ampere and newer)"
        return text


class OrtCudaRunner(OrtRunner):
    """ONNX Runtime on the GPU through IO binding: inputs are copied to the device once in prepare(),
    outputs stay on the device, so the timed call is the model's own work (ORT's CUDA provider
    synchronises its stream at the end of each run).

    With `cuda_graph` (the provider option enable_cuda_graph) every input signature (up to MAX_GRAPHS)
    gets device buffers allocated once and its own graph (run option gpu_graph_id): a first run with
    graph id -1 (no capture) allocates the outputs, which then stay bound, so that replays read and
    write the same addresses; new inputs are copied into the bound buffers (OrtValue.update_inplace)."""

    device = "cuda"  # where the bound buffers live

    def __init__(self, model: Path, params: dict[str, Any], providers: list[Any], cuda_graph: bool = False) -> None:
        super().__init__(model, params, providers)
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
            buffers = self._graphs[key][1]
            for n, value in zip(self.names, buffers):
                value.update_inplace(np.ascontiguousarray(inputs[n]))
            return self._graphs[key]
        binding, buffers = self._bind(inputs)
        if len(self._graphs) >= MAX_GRAPHS:  # graph id -1: run without capturing
            return binding, buffers, self._run_options(-1)
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

    def close(self) -> None:
        self._graphs.clear()  # the bound device buffers first, then the session holding the graphs
        super().close()
