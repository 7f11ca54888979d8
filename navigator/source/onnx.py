"""ONNX sources: a model file (opset >= 13), its IOSpec read from the graph, ORT as the reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from navigator.errors import InputError, one_line
from navigator.lazy import require
from navigator.records import TensorSpec

MIN_OPSET = 13
# Protobuf's limit on one serialized message: a model with external data below it is saved as one file.
ONE_FILE_LIMIT = 2**31 - 1


def load_file(path: Path) -> Any:
    """The checked ONNX ModelProto (weights stay external where the file keeps them so)."""
    onnx = require("onnx")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(str(path))
    except Exception as exc:  # the protobuf/checker errors have no common base
        raise InputError(f"{path}: not a valid ONNX model ({one_line(exc)})") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise InputError(f"{path}: opset {opset} is below {MIN_OPSET}; re-export with opset >= {MIN_OPSET}")
    return model


def _tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto of a graph: initializers and node attributes, subgraphs (If, Loop, Scan) included."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _tensors(sub)


def external_files(path: Path) -> list[Path]:
    """The files holding an ONNX model's external tensors, as paths relative to the model's directory."""
    onnx = require("onnx")
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    model = onnx.load(str(path), load_external_data=False)
    found = sorted({ExternalDataInfo(t).location for t in _tensors(model.graph) if uses_external_data(t)})
    base = path.parent.resolve()
    for location in found:
        if not (base / location).resolve().is_relative_to(base):
            raise InputError(f"{path}: external data {location!r} lies outside the model's directory")
    return [Path(location) for location in found]


def save_whole(source: Path, target: Path) -> None:
    """The model with its external data as `target`: one file below protobuf's 2 GB limit, else `target`
    with every tensor in one `target`.data beside it (copy_external() copies it with the model)."""
    onnx = require("onnx")
    model = onnx.load(str(source))
    if model.ByteSize() < ONE_FILE_LIMIT:
        onnx.save_model(model, str(target))
    else:
        onnx.save_model(model, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=f"{target.name}.data", size_threshold=0)


def copy_external(source: Path, target: Path) -> None:
    """Copy the external data files of the model `source` beside its copy `target`, at their relative places."""
    import shutil

    for rel in external_files(source):
        (target.parent / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source.parent / rel, target.parent / rel)


def _spec(value: Any) -> TensorSpec:
    onnx = require("onnx")
    tensor = value.type.tensor_type
    if not value.type.HasField("tensor_type"):
        raise InputError(f"ONNX value {value.name!r} is not a tensor (sequences/maps are not supported)")
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim)
    return TensorSpec(value.name, dtype, dims)


def io_specs(model: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """(inputs, outputs) of the graph; initializers listed as inputs are not inputs."""
    initializers = {i.name for i in model.graph.initializer}
    inputs = tuple(_spec(v) for v in model.graph.input if v.name not in initializers)
    outputs = tuple(_spec(v) for v in model.graph.output)
    if not inputs or not outputs:
        raise InputError("the ONNX graph has no inputs or no outputs")
    return inputs, outputs


def reference_session(path: Path) -> Any:
    """ONNX Runtime on the CPU with its default session options: the source framework's own run."""
    ort = require("onnxruntime")
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
        raise InputError(f"{path}: ONNX Runtime cannot load it ({str(exc).splitlines()[0]})") from None


def run(session: Any, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(o) for o in session.run(None, inputs)]
