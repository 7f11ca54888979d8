"""TritonModel + IOSpec -> tritonclient's ModelConfig protobuf, and its text format (config.pbtxt).

Field reference: github.com/triton-inference-server/common protobuf/model_config.proto.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from navigator.errors import InputError
from navigator.records import IOSpec, ServingConfig, TensorSpec, TritonModel

# numpy dtype name -> model_config.proto DataType name
DATA_TYPES = {
    "bool": "TYPE_BOOL", "uint8": "TYPE_UINT8", "uint16": "TYPE_UINT16", "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64", "int8": "TYPE_INT8", "int16": "TYPE_INT16", "int32": "TYPE_INT32",
    "int64": "TYPE_INT64", "float16": "TYPE_FP16", "float32": "TYPE_FP32", "float64": "TYPE_FP64",
    "bfloat16": "TYPE_BF16", "object": "TYPE_STRING", "str": "TYPE_STRING",
}


def _pb() -> Any:
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2


def _tensor(message: Any, spec: TensorSpec, batched: bool) -> None:
    pb = _pb()
    message.name = spec.name
    type_name = DATA_TYPES.get(np.dtype(spec.dtype).name if spec.dtype != "bfloat16" else "bfloat16")
    if type_name is None:
        raise InputError(f"tensor {spec.name!r}: dtype {spec.dtype} has no Triton data type")
    message.data_type = pb.DataType.Value(type_name)
    dims = spec.shape[1:] if batched else spec.shape
    message.dims.extend([-1 if d is None else int(d) for d in dims] or [1])
    if not dims:  # one value per batch row: Triton wants dims [1] reshaped to a scalar
        message.reshape.SetInParent()


# The runtime's per-instance thread count, by backend; sources in backends.py. The python twin takes the
# trial's own param name (templates/model.py replaces that param with it), by the template's RUNTIME.
THREAD_KEYS = {"onnxruntime": "intra_op_thread_count", "openvino": "INFERENCE_NUM_THREADS",
               "pytorch": "INTRA_OP_THREAD_COUNT", "fil": "cpu_nthread", "python:torch": "threads",
               "python:onnxruntime": "intra_op_num_threads", "python:openvino": "inference_num_threads"}
STREAM_KEYS = {"openvino": "NUM_STREAMS", "python:openvino": "num_streams"}


def _runtime(model: TritonModel) -> str:
    runtime = model.parameters.get("RUNTIME", "torch")
    return f"python:{runtime}" if model.backend == "python" else (model.backend or "pytorch")


def thread_key(model: TritonModel) -> str | None:
    """The parameter that sets one instance's runtime threads, or None where there is none."""
    return THREAD_KEYS.get(_runtime(model))


def stream_key(model: TritonModel) -> str | None:
    """The parameter that sets one instance's OpenVINO streams, or None for other runtimes."""
    return STREAM_KEYS.get(_runtime(model))


def build(name: str, io: IOSpec, model: TritonModel, max_batch_size: int,
          serving: ServingConfig | None = None) -> Any:
    """The full ModelConfig: the path's backend part plus the shared IO, batching and instances;
    `serving` (Triton's own knobs) overrides max_batch_size and adds instances, dynamic batching, threads."""
    pb = _pb()
    io = model.io or io
    serving = serving or ServingConfig(max_batch_size)
    max_batch_size = serving.max_batch_size
    config = pb.ModelConfig(name=name)
    if model.backend:
        config.backend = model.backend
    if model.platform:
        config.platform = model.platform
    if model.default_model_filename:
        config.default_model_filename = model.default_model_filename
    config.max_batch_size = max_batch_size if io.batched else 0
    for spec in io.inputs:
        _tensor(config.input.add(), spec, io.batched)
    for spec in io.outputs:
        _tensor(config.output.add(), spec, io.batched)
    config.instance_group.add(kind=pb.ModelInstanceGroup.Kind.Value(model.kind), count=serving.instances)
    if serving.dynamic_batching and config.max_batch_size > 0:
        batching = config.dynamic_batching
        batching.SetInParent()  # dynamic_batching {} even with every field at its default
        batching.max_queue_delay_microseconds = serving.max_queue_delay_us
        batching.preferred_batch_size.extend(serving.preferred_batch_sizes)
    parameters = dict(model.parameters)
    for key, count in ((thread_key(model), serving.threads), (stream_key(model), serving.streams)):
        if key and count is not None:
            parameters[key] = str(count)
    for key, value in parameters.items():
        config.parameters[key].string_value = value
    if model.graph_level is not None:
        config.optimization.graph.level = model.graph_level
    accelerators = config.optimization.execution_accelerators
    for acc_name, acc_params in model.cpu_accelerators.items():
        accelerators.cpu_execution_accelerator.add(name=acc_name).parameters.update(acc_params)
    for acc_name, acc_params in model.gpu_accelerators.items():
        accelerators.gpu_execution_accelerator.add(name=acc_name).parameters.update(acc_params)
    if model.cuda_graphs:
        config.optimization.cuda.graphs = True
    return config


def to_text(config: Any) -> str:
    from google.protobuf import text_format

    return text_format.MessageToString(config)


def from_text(text: str) -> Any:
    from google.protobuf import text_format

    return text_format.Parse(text, _pb().ModelConfig())
