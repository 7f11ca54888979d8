"""Tree-ensemble sources: XGBoost (JSON/UBJ), LightGBM (text), scikit-learn forests (skops, or a pickle
only with trust_pickle). The task (binary, multiclass, regression), the feature and class counts are
read from the model; the library's own predict is the reference.

Every tree source has one input, `input__0` (float32, rows x features, Triton's FIL convention), and
outputs `label` (int64 class index, argmax of the probabilities) and `probabilities` (float32, rows x
classes; binary models give two columns) for classifiers, or `prediction` (float32, rows x 1) for
regressors.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from navigator.errors import InputError, UntrustedPickleError
from navigator.lazy import installed, require
from navigator.records import TensorSpec

INPUT = "input__0"
XGBOOST_SUFFIXES = {".json": "xgboost_json", ".ubj": "xgboost_ubj"}
LIGHTGBM_SUFFIXES = (".txt", ".lgb", ".model")
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
# scikit-learn estimators Treelite, skl2onnx and the FIL backend all take.
SKLEARN_FORESTS = ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
                   "ExtraTreesRegressor", "GradientBoostingClassifier", "GradientBoostingRegressor")
XGB_REFUSED = ("binary:logitraw", "binary:hinge", "rank:", "survival:", "multi:softmax")
LGB_REFUSED = ("lambdarank", "rank_xendcg", "multiclassova")


@dataclass
class Forest:
    """A loaded tree ensemble and what its outputs mean."""

    library: str  # "xgboost" | "lightgbm" | "sklearn"
    model: Any  # xgboost.Booster | lightgbm.Booster | scikit-learn estimator
    task: str  # "binary" | "multiclass" | "regression"
    n_features: int
    n_classes: int  # 1 for regression
    file_format: str  # "xgboost_json" | "xgboost_ubj" | "lightgbm" | "sklearn"

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"


def is_tree_file(path: Path) -> bool:
    """Whether the file's suffix (and, for LightGBM, its first line) names a tree model."""
    suffix = path.suffix.lower()
    if suffix in XGBOOST_SUFFIXES or suffix in PICKLE_SUFFIXES or suffix == ".skops":
        return True
    return suffix in LIGHTGBM_SUFFIXES and _first_line(path) == b"tree"


def _first_line(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.readline(64).strip()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Native stdout/stderr silenced: the libraries print their own copy of a load error ("[LightGBM]
    [Fatal] ...", XGBoost's warnings), which would break the one-line error; the exception keeps it."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def _fail(path: Path, library: str, exc: Exception) -> InputError:
    text = str(exc).strip().splitlines()
    return InputError(f"{path}: {library} could not load it ({type(exc).__name__}: {text[-1] if text else ''})")


def _xgboost(path: Path) -> Forest:
    xgb = require("xgboost")
    try:
        with _quiet():
            booster = xgb.Booster(model_file=str(path))
    except Exception as exc:  # XGBoostError on a damaged or foreign file
        raise _fail(path, "XGBoost", exc) from None
    learner = json.loads(booster.save_config())["learner"]
    objective = learner["objective"]["name"]
    if objective.startswith(XGB_REFUSED):
        raise InputError(f"{path}: XGBoost objective {objective} is not supported (binary:logistic, "
                         "multi:softprob and regression objectives are)")
    params = learner["learner_model_param"]
    classes = int(params.get("num_class", "0"))
    task = "binary" if objective == "binary:logistic" else "multiclass" if objective.startswith("multi:") else "regression"
    if int(params.get("num_target", "1")) > 1:
        raise InputError(f"{path}: multi-target XGBoost models are not supported")
    return Forest("xgboost", booster, task, int(params["num_feature"]),
                  2 if task == "binary" else classes if task == "multiclass" else 1, XGBOOST_SUFFIXES[path.suffix.lower()])


def _lightgbm(path: Path) -> Forest:
    lgb = require("lightgbm")
    try:
        with _quiet():
            booster = lgb.Booster(model_file=str(path))
    except Exception as exc:  # LightGBMError on a damaged file
        raise _fail(path, "LightGBM", exc) from None
    dump = booster.dump_model(num_iteration=0)
    objective = str(dump.get("objective", "regression")).split()[0]
    if objective.startswith(LGB_REFUSED):
        raise InputError(f"{path}: LightGBM objective {objective} is not supported")
    task = "binary" if objective == "binary" else "multiclass" if objective in ("multiclass", "softmax") else "regression"
    classes = int(dump.get("num_class", 1))
    return Forest("lightgbm", booster, task, booster.num_feature(),
                  2 if task == "binary" else classes if task == "multiclass" else 1, "lightgbm")


def _sklearn(estimator: Any, path: Path) -> Forest:
    name = type(estimator).__name__
    if name not in SKLEARN_FORESTS or not type(estimator).__module__.startswith("sklearn."):
        raise InputError(f"{path}: holds a {name}; supported scikit-learn models: {', '.join(SKLEARN_FORESTS)}")
    if not hasattr(estimator, "n_features_in_"):
        raise InputError(f"{path}: the {name} is not fitted")
    if name.endswith("Classifier"):
        classes = len(estimator.classes_)
        return Forest("sklearn", estimator, "binary" if classes == 2 else "multiclass", int(estimator.n_features_in_),
                      classes, "sklearn")
    if getattr(estimator, "n_outputs_", 1) != 1:
        raise InputError(f"{path}: multi-output regressors are not supported")
    return Forest("sklearn", estimator, "regression", int(estimator.n_features_in_), 1, "sklearn")


def _skops(path: Path, trust_pickle: bool) -> Any:
    """A .skops file, loaded with scikit-learn's and NumPy's own types trusted; any other type it holds
    needs trust_pickle (skops then loads it as a pickle would)."""
    if not installed("skops"):
        raise InputError(f"{path}: reading .skops files needs skops (pip install 'triton-navigator[trees]')")
    sio = require("skops.io")
    try:
        untrusted = sio.get_untrusted_types(file=str(path))
        unknown = [t for t in untrusted if not t.startswith(("sklearn.", "numpy."))]
        if unknown and not trust_pickle:
            raise UntrustedPickleError(f"{path}: holds types other than scikit-learn's "
                                       f"({', '.join(unknown[:3])}); pass --trust-pickle if you trust it")
        return sio.load(str(path), trusted=untrusted)
    except InputError:
        raise
    except Exception as exc:  # a damaged or foreign file
        raise _fail(path, "skops", exc) from None


def _pickle(path: Path, trust_pickle: bool) -> Any:
    if not trust_pickle:
        raise UntrustedPickleError(f"{path} is a pickle; unpickling runs arbitrary code. Pass --trust-pickle if you "
                                   "trust it, or save the model with skops (skops.io.dump)")
    require("sklearn")
    try:
        if path.suffix.lower() == ".joblib":
            return require("joblib").load(str(path))
        with open(path, "rb") as fh:
            return pickle.load(fh)  # noqa: S301 - the user passed --trust-pickle
    except Exception as exc:  # any failure of the unpickler is the user's input
        raise _fail(path, "pickle", exc) from None


def load_file(path: Path, trust_pickle: bool) -> tuple[str, Forest]:
    """(kind, Forest) from a model file; kind is the library's name."""
    suffix = path.suffix.lower()
    if suffix in XGBOOST_SUFFIXES:
        forest = _xgboost(path)
    elif suffix in LIGHTGBM_SUFFIXES:
        forest = _lightgbm(path)
    elif suffix == ".skops":
        forest = _sklearn(_skops(path, trust_pickle), path)
    else:
        forest = _sklearn(_pickle(path, trust_pickle), path)
    return forest.library, forest


def io_specs(forest: Forest) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    inputs = (TensorSpec(INPUT, "float32", (None, forest.n_features)),)
    if forest.is_classifier:
        return inputs, (TensorSpec("label", "int64", (None,)),
                        TensorSpec("probabilities", "float32", (None, forest.n_classes)))
    return inputs, (TensorSpec("prediction", "float32", (None, 1)),)


def outputs(forest: Forest, raw: np.ndarray) -> list[np.ndarray]:
    """A predictor's raw scores (rows, rows x 1 or rows x classes) -> the source's outputs."""
    rows = raw.shape[0]
    values = np.asarray(raw, dtype=np.float32).reshape(rows, -1)
    if not forest.is_classifier:
        return [values[:, :1]]
    if forest.task == "binary" and values.shape[1] == 1:  # P(class 1) only
        values = np.concatenate([1.0 - values, values], axis=1)
    return [values.argmax(axis=1).astype(np.int64), values]


def with_threads(forest: Forest, threads: int) -> Forest:
    """A Forest whose predict uses `threads` threads, leaving the source's own model untouched: XGBoost's
    booster is copied, a scikit-learn estimator shallow-copied (GradientBoosting* has no n_jobs: it
    predicts in one thread); LightGBM takes the count per call (predict_raw)."""
    model = forest.model
    if forest.library == "xgboost":
        model = model.copy()
        model.set_param({"nthread": threads})
    elif forest.library == "sklearn" and "n_jobs" in model.get_params():
        model = copy.copy(model)
        model.n_jobs = threads
    return dataclasses.replace(forest, model=model)


def predict_raw(forest: Forest, x: np.ndarray, threads: int = 0) -> np.ndarray:
    """The library's predict: probabilities for classifiers, values for regressors (threads 0 = its default)."""
    if forest.library == "xgboost":
        return forest.model.inplace_predict(x)
    if forest.library == "lightgbm":
        return forest.model.predict(x, num_threads=threads) if threads else forest.model.predict(x)
    return forest.model.predict_proba(x) if forest.is_classifier else forest.model.predict(x)


def run(forest: Forest, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    return outputs(forest, predict_raw(forest, np.ascontiguousarray(inputs[INPUT], dtype=np.float32)))
