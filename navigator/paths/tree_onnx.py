"""Tree ensemble -> ONNX-ML (onnxmltools for XGBoost and LightGBM, skl2onnx for scikit-learn) -> ONNX
Runtime on the CPU.

The graph is given the source's tensor names (input__0; label, probabilities / prediction), so that the
onnxruntime config needs no mapping. The label is the class index, as the source's: a converter that
emits class values (scikit-learn classes other than 0..n-1) gets an ArgMax over the probabilities.
Triton: the onnxruntime backend, as ort_cpu writes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.lazy import installed, require
from navigator.paths import _ort_triton
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.runtimes import ort as rt_ort
from navigator.source import ModelSource
from navigator.source import trees as tree_source

NAME = "tree_onnx"
TIMEOUT_S = 300.0  # default trial timeout: conversion of a large forest takes a while
COST_S = 15.0  # expected trial cost (until the study measures its own): converting the forest to ONNX
DEVICES = ("cpu",)
FRAMEWORKS = ("trees",)
PRECISION_CLASSES = ("trees",)
ENGINE = "ONNX Runtime (the ONNX-ML tree ensemble)"
ONNX_FILE = "model.onnx"


def available() -> str | None:
    if not installed("onnxruntime"):
        return "onnxruntime is not installed (pip install 'triton-navigator[onnx]')"
    if not (installed("onnxmltools") or installed("skl2onnx")):
        return "neither onnxmltools nor skl2onnx is installed (pip install 'triton-navigator[trees]')"
    return None


def _convert(forest: tree_source.Forest, opset: int) -> Any:
    n = forest.n_features
    if forest.library in ("xgboost", "lightgbm"):
        onnxmltools = require("onnxmltools")
        types = [(tree_source.INPUT, require("onnxmltools.convert.common.data_types").FloatTensorType([None, n]))]
        if forest.library == "xgboost":
            return onnxmltools.convert_xgboost(forest.model, initial_types=types, target_opset=opset)
        return onnxmltools.convert_lightgbm(forest.model, initial_types=types, target_opset=opset, zipmap=False)
    skl2onnx = require("skl2onnx")
    types = [(tree_source.INPUT, require("skl2onnx.common.data_types").FloatTensorType([None, n]))]
    options = {id(forest.model): {"zipmap": False}} if forest.is_classifier else None
    return skl2onnx.convert_sklearn(forest.model, initial_types=types, target_opset=opset, options=options)


def _rename(graph: Any, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for value in graph.output:
        if value.name == old:
            value.name = new


def _name_outputs(model: Any, forest: tree_source.Forest) -> None:
    """Graph outputs -> the source's names and order: (label, probabilities) or (prediction)."""
    onnx = require("onnx")
    graph = model.graph
    if not forest.is_classifier:
        _rename(graph, graph.output[0].name, "prediction")
        return
    if len(graph.output) != 2:
        raise TrialError(f"the converter gave {len(graph.output)} outputs, not label and probabilities")
    label, probabilities = graph.output[0].name, graph.output[1].name
    _rename(graph, probabilities, "probabilities")
    classes = getattr(forest.model, "classes_", None)
    if classes is None or np.array_equal(np.asarray(classes), np.arange(forest.n_classes)):
        _rename(graph, label, "label")
        return
    graph.node.append(onnx.helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0))
    graph.output[0].CopyFrom(onnx.helper.make_tensor_value_info("label", onnx.TensorProto.INT64, [None]))


def _build(source: ModelSource, opset: int, out: Path) -> None:
    onnx = require("onnx")
    model = _convert(source.model, opset)
    _name_outputs(model, source.model)
    onnx.checker.check_model(model)
    onnx.save(model, str(out / ONNX_FILE))


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    key = {"opset": int(params["opset"])}
    d = cache.get(NAME, key, lambda out: _build(source, key["opset"], out))
    return Artifact(NAME, d, d.name, dict(params), d / ONNX_FILE)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    assert artifact.file is not None
    return rt_ort.open_session(artifact.file, params, "cpu")


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    return _ort_triton.cpu_model(artifact, params)


def precision(params: Params) -> str:
    """ONNX-ML tree ensembles compute with float32 thresholds and sums (validate.py's "trees")."""
    return "trees"
