"""Triton python-backend model written by navigator: runs a converted model with the runtime settings
navigator tuned, for servers without that runtime's native backend (PyTriton, a python-only server).

config.pbtxt parameters:
  RUNTIME     torch | onnxruntime | openvino;  MODEL_FILE  the file in this version directory
  torch       THREADS (or INTRA_OP_THREAD_COUNT), INTER_OP_THREAD_COUNT, CHANNELS_LAST, and on a GPU
              DEVICE=cuda, PRECISION (fp32/fp32_strict/tf32/fp16/bf16), CAST (weights/autocast), COMPILE_MODE,
              CUDNN_BENCHMARK, CUDA_GRAPHS (one graph per input shape, captured on its first request)
  onnxruntime the onnxruntime backend's own keys (intra_op_thread_count, inter_op_thread_count,
              execution_mode, enable_mem_pattern, enable_mem_arena, cudnn_conv_algo_search, gpu_mem_limit),
              the CUDA provider's use_tf32, prefer_nhwc and enable_cuda_graph (IO bound per input shape)
              and GRAPH_LEVEL (ModelConfig.optimization.graph.level: 0 all, -1 basic, 1 extended, 2 off)
  openvino    the openvino backend's keys (PERFORMANCE_HINT, NUM_STREAMS, INFERENCE_NUM_THREADS, HINT_BF16)
With max_batch_size > 0 the requests of one execute() call (Triton's dynamic batcher) run as one batch.
Tensors cross the stub through DLPack, which works with NumPy 1 and 2 alike (the stub's NumPy path does
not: with NumPy 2 it returns empty outputs).
"""

import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils


def _quiet_dlpack_deleter(hook):
    # NumPy's DLPack capsule destructor reports the stub's renamed (consumed) capsule as an error; the
    # stub owns the tensor by then, so the report is noise on every response.
    def unraisable(info):
        if not (isinstance(info.exc_value, ValueError) and "PyCapsule_GetPointer" in str(info.exc_value)):
            hook(info)
    return unraisable


sys.unraisablehook = _quiet_dlpack_deleter(sys.unraisablehook)


def _load_torch(torch, path, device):
    """The model on `device`, with the devices its graph was captured on rewritten: `.to()` moves the
    weights only, and an ExportedProgram or traced TorchScript creating tensors inside forward would
    mix devices."""
    if path.endswith(".pt2"):
        from torch.export.passes import move_to_device_pass

        return move_to_device_pass(torch.export.load(path), device).module()
    try:
        model = torch.jit.load(path, map_location=device).eval()
    except RuntimeError:  # a torch.save pickle, trusted by whoever deployed it
        return torch.load(path, map_location="cpu", weights_only=False).eval().to(device)
    graphs = [getattr(getattr(sub, "forward", None), "graph", None) for sub in model.modules()]
    for node in (n for g in graphs if g is not None for n in g.findAllNodes("prim::Constant")):
        if node.output().type().kind() == "DeviceObjType":  # a traced device argument
            node.s_("value", str(torch.device(device)))
    return model


class TorchModel:
    def __init__(self, path, p):
        import torch

        self.torch = torch
        torch.set_num_threads(int(p.get("THREADS", p.get("INTRA_OP_THREAD_COUNT", os.cpu_count() or 1))))
        if "INTER_OP_THREAD_COUNT" in p:
            try:
                torch.set_num_interop_threads(int(p["INTER_OP_THREAD_COUNT"]))
            except RuntimeError:  # already set by another instance in this process
                pass
        self.device = p.get("DEVICE", "cpu")
        precision = p.get("PRECISION", "fp32")
        self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
        self.autocast = p.get("CAST") == "autocast"
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision != "fp32_strict"
        torch.backends.cudnn.benchmark = p.get("CUDNN_BENCHMARK", "False") == "True"
        self.graphs = {} if p.get("CUDA_GRAPHS") == "True" and self.device == "cuda" else None
        model = _load_torch(torch, path, self.device)
        if not self.autocast and self.dtype != torch.float32:
            model = model.to(self.dtype)
        self.channels_last = p.get("CHANNELS_LAST") == "True"
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if p.get("COMPILE_MODE"):
            model = torch.compile(model, mode=p["COMPILE_MODE"], dynamic=False)
        self.model = model

    def _tensor(self, array):
        t = self.torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
        if t.is_floating_point() and not self.autocast:
            t = t.to(self.dtype)
        return t.contiguous(memory_format=self.torch.channels_last) if self.channels_last and t.dim() == 4 else t

    def _forward(self, tensors):
        torch = self.torch
        with torch.inference_mode(), torch.autocast(self.device, dtype=self.dtype, enabled=self.autocast):
            out = self.model(*tensors)
        return [t for t in torch.utils._pytree.tree_flatten(out)[0] if isinstance(t, torch.Tensor)]

    def _graph(self, tensors):
        """A CUDA graph for this input signature: warmed up on a side stream, captured once, replayed on
        static inputs (at most 32 signatures are kept: the batch sizes the dynamic batcher forms)."""
        torch = self.torch
        key = tuple((tuple(t.shape), t.dtype) for t in tensors)
        if key not in self.graphs:
            if len(self.graphs) >= 32:
                return None
            static = [t.clone() for t in tensors]
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    self._forward(static)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                outputs = self._forward(static)
            self.graphs[key] = (graph, static, outputs)
        graph, static, outputs = self.graphs[key]
        for dst, src in zip(static, tensors):
            dst.copy_(src)
        graph.replay()
        return outputs

    def __call__(self, arrays):
        tensors = [self._tensor(a) for a in arrays]
        leaves = (self._graph(tensors) if self.graphs is not None else None) or self._forward(tensors)
        return [(t.float() if t.is_floating_point() else t).cpu().numpy() for t in leaves]


class OrtModel:
    LEVELS = {"0": "ORT_ENABLE_ALL", "-1": "ORT_ENABLE_BASIC", "1": "ORT_ENABLE_EXTENDED", "2": "ORT_DISABLE_ALL"}
    ALGO_SEARCH = {"0": "EXHAUSTIVE", "1": "HEURISTIC", "2": "DEFAULT"}

    def __init__(self, path, p, gpu):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, self.LEVELS[p.get("GRAPH_LEVEL", "0")])
        so.intra_op_num_threads = int(p.get("intra_op_thread_count", 0))
        so.inter_op_num_threads = int(p.get("inter_op_thread_count", 0))
        so.execution_mode = (ort.ExecutionMode.ORT_PARALLEL if p.get("execution_mode") == "1"
                             else ort.ExecutionMode.ORT_SEQUENTIAL)
        so.enable_mem_pattern = p.get("enable_mem_pattern", "1") == "1"
        so.enable_cpu_mem_arena = p.get("enable_mem_arena", "1") == "1"
        providers = ["CPUExecutionProvider"]
        if gpu:
            cuda = {"cudnn_conv_algo_search": self.ALGO_SEARCH[p.get("cudnn_conv_algo_search", "0")]}
            cuda.update({k: p[k] for k in ("gpu_mem_limit", "use_tf32", "prefer_nhwc", "enable_cuda_graph") if k in p})
            providers.insert(0, ("CUDAExecutionProvider", cuda))
        self.ort = ort
        self.session = ort.InferenceSession(path, so, providers=providers)
        self.names = [i.name for i in self.session.get_inputs()]
        self.graphs = {} if gpu and p.get("enable_cuda_graph") == "1" else None

    def _graph(self, arrays):
        """ORT's CUDA graphs replay on fixed device addresses: per input signature (at most 32), inputs
        and outputs are bound once to device buffers (outputs allocated by a first run with graph id -1,
        which captures nothing), and its own graph id; a request's inputs are copied into the buffers."""
        key = tuple((a.shape, a.dtype.str) for a in arrays)
        if key not in self.graphs:
            if len(self.graphs) >= 32:
                return None
            binding = self.session.io_binding()
            buffers = [self.ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a), "cuda", 0) for a in arrays]
            for name, value in zip(self.names, buffers):
                binding.bind_ortvalue_input(name, value)
            for out in self.session.get_outputs():
                binding.bind_output(out.name, "cuda", 0)
            self.session.run_with_iobinding(binding, self._options(-1))
            outputs = binding.get_outputs()
            binding.clear_binding_outputs()
            for out, value in zip(self.session.get_outputs(), outputs):
                binding.bind_ortvalue_output(out.name, value)
            self.graphs[key] = (binding, buffers, outputs, self._options(len(self.graphs)))
        binding, buffers, _, options = self.graphs[key]
        for value, array in zip(buffers, arrays):
            value.update_inplace(np.ascontiguousarray(array))
        self.session.run_with_iobinding(binding, options)
        return binding.copy_outputs_to_cpu()

    def _options(self, graph_id):
        options = self.ort.RunOptions()
        options.add_run_config_entry("gpu_graph_id", str(graph_id))
        return options

    def __call__(self, arrays):
        graphed = self._graph(arrays) if self.graphs is not None else None
        if graphed is not None:
            return graphed
        options = self._options(-1) if self.graphs is not None else None  # past the graphs kept: no capture
        return self.session.run(None, dict(zip(self.names, arrays)), options)


class OpenVinoModel:
    def __init__(self, path, p):
        import openvino as ov

        config = {k: p[k] for k in ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS") if k in p}
        config["INFERENCE_PRECISION_HINT"] = "bf16" if p.get("HINT_BF16") == "YES" else "f32"
        self.compiled = ov.Core().compile_model(path, "CPU", config)
        self.request = self.compiled.create_infer_request()

    def __call__(self, arrays):
        result = self.request.infer([np.ascontiguousarray(a) for a in arrays])
        return [np.array(v) for v in result.to_tuple()]


RUNTIMES = {"torch": lambda path, p, gpu: TorchModel(path, p), "onnxruntime": OrtModel,
            "openvino": lambda path, p, gpu: OpenVinoModel(path, p)}


def _numpy(tensor):
    try:
        return np.from_dlpack(tensor)
    except (TypeError, BufferError, RuntimeError):  # strings and types DLPack has no code for
        return tensor.as_numpy()


def _tensor(name, array):
    array = np.ascontiguousarray(array)
    try:
        return pb_utils.Tensor.from_dlpack(name, array)
    except (TypeError, BufferError, RuntimeError):
        return pb_utils.Tensor(name, array)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        p = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        path = os.path.join(args["model_repository"], args["model_version"], p["MODEL_FILE"])
        runtime = p.get("RUNTIME", "torch")
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown RUNTIME {runtime!r}; expected one of {sorted(RUNTIMES)}")
        self.model = RUNTIMES[runtime](path, p, args.get("model_instance_kind") == "GPU")
        self.inputs = [t["name"] for t in config["input"]]
        self.outputs = [t["name"] for t in config["output"]]
        self.batching = config.get("max_batch_size", 0) > 0

    def _run(self, batches):
        """batches: per request, its input arrays; one model call when the requests' rows can be stacked."""
        stackable = self.batching and len(batches) > 1 and all(
            [a.shape[1:] for a in b] == [a.shape[1:] for a in batches[0]] for b in batches)
        if not stackable:
            return [self.model(b) for b in batches]
        rows = np.cumsum([b[0].shape[0] for b in batches])[:-1]
        outputs = self.model([np.concatenate(column) for column in zip(*batches)])
        return list(zip(*[np.split(o, rows) for o in outputs]))

    def execute(self, requests):
        batches = [[_numpy(pb_utils.get_input_tensor_by_name(r, n)) for n in self.inputs] for r in requests]
        try:
            results = self._run(batches)
        except Exception as exc:  # every request of the batch gets the error; the model stays up
            error = pb_utils.TritonError(f"{type(exc).__name__}: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        return [pb_utils.InferenceResponse(output_tensors=[_tensor(n, a) for n, a in zip(self.outputs, outs)])
                for outs in results]
