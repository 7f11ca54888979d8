"""FIL backend configs: model_type, is_classifier/predict_proba/threshold and tensor dims for binary,
multiclass and regression forests; current key names and the pre-25.09 ones on request."""

from __future__ import annotations

from pathlib import Path

import pytest

from navigator.errors import InputError, TrialError
from navigator.paths import _trees
from navigator.records import IOSpec, TensorSpec
from navigator.settings import StudySettings, parse_release
from navigator.triton import config as triton_config
from navigator.triton import fil

# The source IOSpec of a tree model, which the FIL config replaces with input__0/output__0.
SOURCE_IO = IOSpec((TensorSpec("input__0", "float32", (None, 32)),),
                   (TensorSpec("label", "int64", (None,)), TensorSpec("probabilities", "float32", (None, 4))))


def _config(tmp_path: Path, model_type: str, task: str, classes: int, params: dict, release: str | None = None):
    fil.write_meta(tmp_path, model_type, task, 32, classes)
    (tmp_path / fil.FILES[model_type]).write_text("{}")
    model = _trees.fil_model(tmp_path, params, release)
    config = triton_config.build("forest", SOURCE_IO, model, 1024)
    return model, triton_config.from_text(triton_config.to_text(config))


def _params(config) -> dict[str, str]:
    return {k: v.string_value for k, v in config.parameters.items()}


@pytest.mark.parametrize("task, classes, width", [("multiclass", 4, 4), ("binary", 2, 2), ("regression", 1, 1)])
def test_tasks_map_to_classifier_flags_and_output_width(tmp_path, task, classes, width):
    model, config = _config(tmp_path, "xgboost_ubj", task, classes, {"threads": 2})
    p = _params(config)
    assert config.backend == "fil" and config.max_batch_size == 1024
    assert [(i.name, list(i.dims)) for i in config.input] == [("input__0", [32])]
    assert [(o.name, list(o.dims)) for o in config.output] == [("output__0", [width])]
    assert config.output[0].data_type == config.input[0].data_type  # both TYPE_FP32
    assert p["model_type"] == "xgboost_ubj"
    assert p["is_classifier"] == p["predict_proba"] == ("false" if task == "regression" else "true")
    assert ("threshold" in p) == (task == "binary")
    assert p["cpu_nthread"] == "2"
    assert p["layout"] == "depth_first" and p["chunk_size"] == "1"
    assert not {"output_class", "algo", "threads_per_tree"} & set(p)
    assert config.HasField("dynamic_batching")
    assert list(model.files) == ["xgboost.ubj"]


def test_old_key_names_for_servers_before_25_09(tmp_path):
    _, config = _config(tmp_path, "lightgbm", "multiclass", 4, {"layout": "breadth_first", "chunk_size": 8}, "25.08")
    p = _params(config)
    assert p["output_class"] == "true" and p["algo"] == "NAIVE" and p["threads_per_tree"] == "8"
    assert not {"is_classifier", "layout", "chunk_size"} & set(p)
    assert p["model_type"] == "lightgbm"
    _, current = _config(tmp_path, "lightgbm", "multiclass", 4, {"layout": "breadth_first", "chunk_size": 8}, "25.09")
    assert _params(current)["layout"] == "breadth_first" and _params(current)["chunk_size"] == "8"


def test_missing_forest_file_refuses_the_config(tmp_path):
    (tmp_path / _trees.UNSAVED).write_text("no Treelite checkpoint: UnavailableError: treelite is not installed\n")
    with pytest.raises(TrialError, match="treelite is not installed"):
        _trees.fil_model(tmp_path, {})


@pytest.mark.parametrize("text", ["25", "2502", "25.13", "v25.02", ""])
def test_bad_release_is_an_input_error(text):
    with pytest.raises(InputError, match="Triton release"):
        StudySettings(triton_server=text)


def test_release_parses_and_orders():
    assert parse_release("25.02") == (25, 2) < fil.RENAMED <= parse_release("25.09")
