"""INT8 through calibration: the calibration inputs (given, defaulted, refused when random), the int8
tolerance class, and the ort_int8 path on small ONNX models built here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from navigator.paths.base import NO_CALIBRATION, Target
from navigator.records import TensorSpec
from navigator.trial.validate import AGREEMENT, TOLERANCES, validate

ROOT = Path(__file__).resolve().parents[2]


def classifier(path: Path, features: int = 16, classes: int = 10, seed: int = 0) -> Path:
    """x[N, features] -> MatMul, Add, Relu, MatMul, Add -> logits[N, classes], random weights."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = {"w1": rng.standard_normal((features, 32)), "b1": rng.standard_normal(32) * 0.1,
               "w2": rng.standard_normal((32, classes)), "b2": rng.standard_normal(classes) * 0.1}
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["o"]),
             helper.make_node("Add", ["o", "b2"], ["logits"])]
    graph = helper.make_graph(
        nodes, "classifier", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def rows(n: int, features: int = 16, seed: int = 1) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).standard_normal((n, features)).astype(np.float32)}


def context(tmp_path: Path, **load: object):
    from navigator.cache import Cache
    from navigator.settings import StudySettings
    from navigator.source import load_source
    from navigator.trial.run import TrialContext

    source = load_source(classifier(tmp_path / "m.onnx"), **load)  # type: ignore[arg-type]
    return TrialContext(source, Cache(tmp_path / "cache", source.fingerprint), StudySettings(batch_sizes=(8,)))


def config(**convert: object):
    from navigator.records import TrialConfig

    return TrialConfig(0, "ort_int8", dict(convert), {"intra_op_num_threads": 1}, 8)
