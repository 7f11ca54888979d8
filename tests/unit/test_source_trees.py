"""Tree sources: each library's file loads with its task, feature and class counts read from the model;
pickles need trust; the tree paths reproduce the library's outputs with exact labels."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from navigator import paths
from navigator.cache import Cache
from navigator.errors import InputError
from navigator.paths.base import Target
from navigator.source import load_source
from navigator.trial.validate import tolerance, validate
from tests.conftest import need_compiler

EXPECTED = {  # fixture -> (framework kind, task, classes)
    "xgb_multiclass.json": ("xgboost", "multiclass", 4),
    "xgb_multiclass.ubj": ("xgboost", "multiclass", 4),
    "xgb_binary.json": ("xgboost", "binary", 2),
    "xgb_regression.ubj": ("xgboost", "regression", 1),
    "lgb_multiclass.txt": ("lightgbm", "multiclass", 4),
    "lgb_regression.txt": ("lightgbm", "regression", 1),
    "rf.pkl": ("sklearn", "multiclass", 4),
    "gb_binary.pkl": ("sklearn", "binary", 2),
    "rf.skops": ("sklearn", "multiclass", 4),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tree_files_load_with_their_task(tree_models, name):
    kind, task, classes = EXPECTED[name]
    src = load_source(tree_models[name], trust_pickle=name.endswith(".pkl"), batch=16)
    assert (src.framework, src.kind, src.model.task) == ("trees", kind, task)
    assert [(t.name, t.dtype, t.shape) for t in src.io.inputs] == [("input__0", "float32", (None, 32))]
    if task == "regression":
        assert [(t.name, t.shape) for t in src.io.outputs] == [("prediction", (None, 1))]
        assert src.sample_outputs[0].shape == (16, 1)
    else:
        assert [(t.name, t.dtype, t.shape) for t in src.io.outputs] == [
            ("label", "int64", (None,)), ("probabilities", "float32", (None, classes))]
        label, proba = src.sample_outputs
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
        assert np.array_equal(label, proba.argmax(axis=1))


def test_pickle_is_refused_without_trust(tree_models):
    with pytest.raises(InputError, match="--trust-pickle") as err:
        load_source(tree_models["rf.pkl"])
    assert "\n" not in str(err.value)


def test_pickle_of_an_unsupported_object_is_an_input_error(tmp_path):
    file = tmp_path / "model.pkl"
    file.write_bytes(pickle.dumps({"not": "a forest"}))
    with pytest.raises(InputError, match="supported scikit-learn models"):
        load_source(file, trust_pickle=True)


@pytest.mark.parametrize("suffix, text", [(".json", "{\"learner\": 1}"), (".ubj", "garbage"), (".txt", "tree\nbroken")])
def test_damaged_tree_files_are_input_errors(tmp_path, suffix, text):
    file = tmp_path / f"model{suffix}"
    file.write_text(text)
    with pytest.raises(InputError, match="could not load it"):
        load_source(file)


def test_text_file_that_is_not_lightgbm_is_not_taken_for_one(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("hello\n")
    with pytest.raises(InputError, match="not a PyTorch model"):  # falls through to the torch sniffing
        load_source(file)


def test_skops_loads_without_trust(tree_models):
    src = load_source(tree_models["rf.skops"])
    assert type(src.model.model).__name__ == "RandomForestClassifier"


@pytest.mark.parametrize("name", ["xgb_binary.json", "lgb_regression.txt", "gb_binary.pkl"])
@pytest.mark.parametrize("path, params", [("tree_native", {"threads": 1}),
                                          ("tree_onnx", {"opset": 15, "intra_op_num_threads": 1}),
                                          ("treelite", {"quantize": 1, "threads": 1})])
def test_tree_paths_reproduce_the_library(tree_models, tmp_path, name, path, params):
    if path == "treelite":
        need_compiler()
    src = load_source(tree_models[name], trust_pickle=True, batch=64)
    module = paths.get(path)
    artifact = module.convert(src, params, Cache(tmp_path, src.fingerprint), Target())
    got = module.load(artifact, src, params)(src.samples)
    atol, rtol = tolerance(module.precision(params))
    v = validate(src.io.outputs, got, src.sample_outputs, atol, rtol)
    assert v.ok, v.reason
    if src.model.is_classifier:
        assert v.outputs[0].agreement == 1.0 and got[0].dtype == np.int64


def test_threads_leave_the_source_model_untouched(tree_models):
    src = load_source(tree_models["xgb_binary.json"])
    before = src.model.model.save_config()
    paths.get("tree_native").load(None, src, {"threads": 1})  # type: ignore[arg-type]
    assert src.model.model.save_config() == before


def test_label_disagreement_fails_validation_with_the_rate():
    from navigator.records import TensorSpec

    specs = (TensorSpec("label", "int64", (None,)),)
    ref = np.array([0, 1, 2, 3], dtype=np.int64)
    got = np.array([0, 1, 2, 2], dtype=np.int64)
    v = validate(specs, [got], [ref], 1.0, 1.0)  # tolerances do not apply to labels
    assert not v.ok and v.outputs[0].agreement == 0.75 and "75.00%" in v.reason
    assert validate(specs, [ref.copy()], [ref], 0.0, 0.0).ok


def test_unsupported_xgboost_objective_is_named(tmp_path):
    import xgboost as xgb

    x = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    booster = xgb.train({"objective": "binary:hinge", "nthread": 1}, xgb.DMatrix(x, label=x[:, 0] > 0), 2)
    file = tmp_path / "hinge.json"
    booster.save_model(str(file))
    with pytest.raises(InputError, match="binary:hinge is not supported"):
        load_source(file)


def test_unfitted_forest_is_refused(tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    file = tmp_path / "rf.pkl"
    file.write_bytes(pickle.dumps(RandomForestClassifier()))
    with pytest.raises(InputError, match="not fitted"):
        load_source(file, trust_pickle=True)


def test_paths_for_trees_are_registered():
    listed = {c.name: c.reason for c in paths.candidates("trees", "cpu")}
    assert listed["tree_native"] is None and listed["tree_onnx"] is None
    assert paths.baseline("trees", "cpu") == "tree_native"
    assert listed["eager"] == "does not take trees models"
    assert Path(paths.space("treelite").path) == Path("treelite")
