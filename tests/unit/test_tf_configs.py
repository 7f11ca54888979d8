"""Triton configs of the TensorFlow paths, built without TensorFlow: none by default (the TensorFlow
backend is deprecated since 25.03), tensorflow_savedmodel with a warning for older servers, and the
TF-TRT accelerator block for tf_trt."""

from __future__ import annotations

from pathlib import Path

import pytest

from navigator.errors import TrialError
from navigator.paths import tf_baseline, tf_trt
from navigator.paths.base import TritonTarget
from navigator.records import Artifact, IOSpec, TensorSpec
from navigator.triton import config as triton_config

IO = IOSpec((TensorSpec("image", "float32", (None, 32, 32, 3)),), (TensorSpec("logits", "float32", (None, 10)),))


def _savedmodel(tmp_path: Path) -> Path:
    d = tmp_path / "model.savedmodel"
    d.mkdir()
    (d / "saved_model.pb").write_bytes(b"")
    return d


def test_baseline_writes_no_config_for_current_servers(tmp_path):
    artifact = Artifact("tf_baseline", tmp_path, "k", {}, _savedmodel(tmp_path))
    with pytest.raises(TrialError, match="deprecated since release 25.03"):
        tf_baseline.triton(artifact, {"mode": "eager"}, TritonTarget())
    with pytest.raises(TrialError, match="deprecated"):
        tf_baseline.triton(artifact, {"mode": "eager"}, TritonTarget("25.03"))


@pytest.mark.parametrize("params, level", [({"mode": "eager"}, None), ({"mode": "graph", "jit_compile": True}, 1),
                                           ({"mode": "graph", "jit_compile": False}, None)])
def test_baseline_savedmodel_config_for_older_servers(tmp_path, params, level):
    saved = _savedmodel(tmp_path)
    model = tf_baseline.triton(Artifact("tf_baseline", tmp_path, "k", {}, saved), params, TritonTarget("25.02"))
    assert model.platform == "tensorflow_savedmodel" and model.files == {"model.savedmodel": saved}
    assert model.warnings and "deprecated" in model.warnings[0]
    config = triton_config.from_text(triton_config.to_text(triton_config.build("cnn", IO, model, 8)))
    assert config.platform == "tensorflow_savedmodel"
    assert (config.optimization.graph.level if config.HasField("optimization") else None) == level


def test_tf_trt_config_carries_the_accelerator_block_and_the_original_model(tmp_path):
    original = _savedmodel(tmp_path)
    converted = tmp_path / "tf_trt-entry"
    converted.mkdir()
    (converted / tf_trt.ORIGINAL).write_text(str(original))
    params = {"precision": "fp16", "max_workspace_size_bytes": 1073741824, "minimum_segment_size": 5}
    artifact = Artifact("tf_trt", converted, "k", params, converted / "model.savedmodel")
    with pytest.raises(TrialError, match="deprecated"):
        tf_trt.triton(artifact, params, TritonTarget())
    model = tf_trt.triton(artifact, params, TritonTarget("24.12"))
    config = triton_config.from_text(triton_config.to_text(triton_config.build("cnn", IO, model, 8)))
    (acc,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert acc.name == "tensorrt"
    assert dict(acc.parameters) == {"precision_mode": "FP16", "max_workspace_size_bytes": "1073741824",
                                    "minimum_segment_size": "5"}
    assert config.instance_group[0].kind == config.instance_group[0].KIND_GPU
    assert model.files == {"model.savedmodel": original}  # Triton converts the original at load
    assert tf_trt.precision(params) == "fp16"
