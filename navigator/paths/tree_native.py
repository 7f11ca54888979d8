"""The tree library's own predict (XGBoost inplace_predict, LightGBM predict, scikit-learn
predict_proba/predict): the baseline of tree sources, with the thread count as a parameter.

Triton: the FIL backend serving the same model file (XGBoost JSON/UBJ, LightGBM text) or a Treelite
checkpoint of a scikit-learn forest; `threads` becomes cpu_nthread. FIL's own engine cannot run here,
so what was measured is the library's predict, not FIL.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from navigator.cache import Cache
from navigator.lazy import installed
from navigator.paths import _trees
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.source import ModelSource
from navigator.source import trees as tree_source

NAME = "tree_native"
TIMEOUT_S = 120.0  # default trial timeout: predict only
COST_S = 5.0  # expected trial cost (until the study measures its own): predict only
DEVICES = ("cpu",)
FRAMEWORKS = ("trees",)
# The tree libraries predict on the CPU: on a CUDA study the baseline is absent.
BASELINE = (("trees", "cpu"), ("trees", "cuda"))
# What measured the trial (the report names it beside the engine the written FIL config runs).
ENGINE = "{library}'s own predict"


def available() -> str | None:
    if any(installed(m) for m in ("xgboost", "lightgbm", "sklearn")):
        return None
    return "no tree library is installed (pip install 'triton-navigator[trees]')"


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    d = _trees.fil_dir(source, cache)
    return Artifact(NAME, d, d.name, dict(params), None)


class NativeRunner(Runner):
    def __init__(self, forest: tree_source.Forest, threads: int) -> None:
        self.forest = tree_source.with_threads(forest, threads)
        self.threads = threads

    def close(self) -> None:
        """Nothing to release: the runner holds the source's own forest, which the study keeps."""

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = np.ascontiguousarray(inputs[tree_source.INPUT], dtype=np.float32)
        return tree_source.outputs(self.forest, tree_source.predict_raw(self.forest, x, self.threads))

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        x = np.ascontiguousarray(inputs[tree_source.INPUT], dtype=np.float32)
        forest, threads = self.forest, self.threads
        return lambda: tree_source.outputs(forest, tree_source.predict_raw(forest, x, threads))


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    return NativeRunner(source.model, int(params["threads"]))


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    return _trees.fil_model(artifact.dir, params, target.release)
