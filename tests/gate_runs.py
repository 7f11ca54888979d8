"""Small real runs for the gate's tests: an ONNX model (y = x @ w + b) optimized briefly, whose
output directory holds what `navigator check` reads (report.json, validation/, cache/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def linear_onnx(path: Path, scale: float = 1.0, seed: int = 0) -> Path:
    """y = x @ (scale * w) + b with x float32 [batch, 8] (batch dynamic) and y [batch, 4]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array((scale * rng.normal(size=(8, 4))).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], initializer=[w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def optimized(model: Path, out: Path) -> Path:
    """A short search of `model` on ort_cpu; its report.json."""
    import navigator

    navigator.optimize(str(model), budget="6s", batch_size=4, out=out, progress=False, window_s=0.03,
                       paths=["ort_cpu"], trials=4)
    return out / "report.json"
