"""Shared by the TensorFlow paths (not a path itself): the source as a SavedModel directory, TF -> ONNX
through tf2onnx, and a runner for TensorFlow callables.

tf2onnx: github.com/onnx/tensorflow-onnx (tf2onnx.convert.from_function). The ONNX graph is given the
source's input and output names, so that the ORT/OpenVINO paths and their Triton configs need no mapping.
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np

from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.lazy import require
from navigator.paths.base import Runner, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.runtimes.precision import DTYPE_NAMES, mix
from navigator.settings import parse_release
from navigator.source import ModelSource
from navigator.source import tf as tf_source

SAVEDMODEL = "model.savedmodel"
ONNX_FILE = "model.onnx"
DEPRECATED = (25, 3)  # the first release whose TensorFlow backend is deprecated
WARNING = ("tensorflow_savedmodel config: Triton's TensorFlow backend is deprecated since release 25.03 "
           "and absent from newer servers; prefer the ONNX Runtime or OpenVINO configs")
# TensorFlow ops that do a model's arithmetic (grappler's fused forms included), by family; their "T"
# attribute is the type they compute in.
COMPUTE_OPS = {"MatMul": "MatMul", "BatchMatMulV2": "MatMul", "BatchMatMulV3": "MatMul", "_FusedMatMul": "MatMul",
               "Einsum": "MatMul", "Conv2D": "Conv", "Conv3D": "Conv", "_FusedConv2D": "Conv",
               "DepthwiseConv2dNative": "Conv", "Conv2DBackpropInput": "Conv"}


def savedmodel(source: ModelSource, cache: Cache) -> Path:
    """A SavedModel of the source: the user's directory, or a Keras model exported once (model.export:
    a serving_default signature with output_0, output_1, ...)."""
    if source.kind == "savedmodel":
        assert source.file is not None
        return source.file

    def export(out: Path) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            source.model.model.export(str(out / SAVEDMODEL), verbose=False)

    return cache.get("tf_savedmodel", {}, export) / SAVEDMODEL


def signature_specs(source: ModelSource) -> tuple[Any, ...]:
    """tf.TensorSpecs of the inputs, named as the source's, batch axis dynamic."""
    tf = require("tensorflow")
    return tuple(tf.TensorSpec(t.shape, tf.as_dtype(np.dtype(t.dtype)), name=t.name) for t in source.io.inputs)


def _rename(graph: Any, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for value in list(graph.input) + list(graph.output):
        if value.name == old:
            value.name = new


def _to_onnx(source: ModelSource, opset: int, out: Path) -> None:
    tf = require("tensorflow")
    tf2onnx = require("tf2onnx")
    onnx = require("onnx")
    model: tf_source.TFModel = source.model
    fn = tf.function(lambda *xs: model.fn(*xs), input_signature=signature_specs(source))
    with contextlib.redirect_stdout(io.StringIO()):
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=signature_specs(source), opset=opset)
    graph = proto.graph
    if len(graph.output) != len(source.io.outputs):
        raise TrialError(f"tf2onnx gave {len(graph.output)} outputs, the source has {len(source.io.outputs)}")
    for value, spec in zip(list(graph.input), source.io.inputs):
        _rename(graph, value.name, spec.name)
    for value, spec in zip(list(graph.output), source.io.outputs):
        _rename(graph, value.name, spec.name)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out / ONNX_FILE))


def onnx_file(source: ModelSource, params: Params, cache: Cache) -> Path:
    """model.onnx converted by tf2onnx at the trial's opset, cached under its own key."""
    key = {"opset": int(params["opset"])}
    return cache.get("tf2onnx", key, lambda out: _to_onnx(source, key["opset"], out)) / ONNX_FILE


class TFRunner(Runner):
    """Calls a TensorFlow callable with tensors in input order; outputs are brought back as NumPy inside
    the timed call (TensorFlow's eager results are handles until read)."""

    def __init__(self, fn: Callable[..., Any], source: ModelSource, reads: Any = None) -> None:
        self.fn = fn
        self.model: tf_source.TFModel = source.model
        self.reads = reads  # what precision_run reads: the Keras model or the ConcreteFunction `fn` runs

    def precision_run(self) -> str | None:
        """A Keras model's layers by the dtype they compute in (a mixed_float16 policy keeps float32
        variables and computes in float16), or a graph's compute ops by their "T" type, the functions
        it calls included; TF-TRT engine segments are counted beside them. None for anything else."""
        if self.reads is None:
            return None
        if hasattr(self.reads, "layers"):
            return _keras_layers(self.reads)
        return _graph_ops(self.reads.graph.as_graph_def())

    def close(self) -> None:
        """Drops the concrete function (its graph and variables' references)."""
        self.fn = None  # type: ignore[assignment]  # the runner is not called after close()

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(o) for o in require("tensorflow").nest.flatten(self.fn(*tf_source.tensors(self.model, inputs)))]

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        tensors = tf_source.tensors(self.model, inputs)
        fn, flatten = self.fn, require("tensorflow").nest.flatten
        return lambda: [o.numpy() for o in flatten(fn(*tensors))]


def savedmodel_model(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    """tensorflow_savedmodel for a server older than 25.03 (tf_baseline, tf_trt); refused for current ones,
    whose TensorFlow backend is gone."""
    if target.release is None or parse_release(target.release) >= DEPRECATED:
        raise TrialError("Triton's TensorFlow backend is deprecated since release 25.03: the ONNX Runtime/OpenVINO "
                         "trial is deployed instead (--triton-server 25.02 or older writes tensorflow_savedmodel)")
    assert artifact.file is not None
    xla = params.get("mode") == "graph" and bool(params.get("jit_compile"))
    return TritonModel(platform="tensorflow_savedmodel", files={"model.savedmodel": artifact.file},
                       graph_level=1 if xla else None, warnings=(WARNING,))


def _keras_layers(model: Any) -> str | None:
    """The layers holding weights (nested models' included) by their compute dtype (Layer.compute_dtype)."""
    kinds: Counter[str] = Counter()
    families: list[str] = []
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        stack.extend(getattr(layer, "layers", []))
        if layer.weights and not hasattr(layer, "layers"):
            dtype = str(layer.compute_dtype)
            kinds[DTYPE_NAMES.get(dtype, dtype)] += 1
            families.append(type(layer).__name__)
    return mix(kinds, "+".join(sorted(set(families))) + " layers")


def _graph_ops(graph_def: Any) -> str | None:
    """The compute ops of a graph and of the library functions it reaches (a SavedModel's signature calls
    its model through StatefulPartitionedCall; unreached functions, such as a training trace, are not
    counted), by their "T" type."""
    tf = require("tensorflow")
    library = {f.signature.name: f for f in graph_def.library.function}
    kinds: Counter[str] = Counter()
    families: list[str] = []
    engines, seen, pending = 0, set(), [list(graph_def.node)]
    while pending:
        for node in pending.pop():
            called = [node.op] + [a.func.name for a in node.attr.values() if a.HasField("func")]
            for name in (c for c in called if c in library and c not in seen):
                seen.add(name)
                pending.append(list(library[name].node_def))
            engines += node.op == "TRTEngineOp"
            if node.op in COMPUTE_OPS and "T" in node.attr:
                dtype = tf.dtypes.as_dtype(node.attr["T"].type).name
                kinds[DTYPE_NAMES.get(dtype, dtype)] += 1
                families.append(COMPUTE_OPS[node.op])
    text = mix(kinds, "+".join(sorted(set(families))))
    if engines:  # TF-TRT builds these at run time and picks their layer precisions itself
        segments = f"{engines} TF-TRT engine segment(s), layer precisions chosen by TensorRT at build"
        text = f"{text}; {segments}" if text else segments
    return text
