"""The Forest Inference Library itself: nvForest (the FIL engine of RAPIDS, split out of cuML) on the
CPU, loading the same model file the Triton FIL backend loads, with the FIL parameters searched:
layout, chunk_size and the OpenMP thread count (cpu_nthread in Triton).

nvForest's Python API: docs.rapids.ai/api/nvforest (nvforest.load_model: model_type, device, layout,
default_chunk_size, precision). It ships CUDA libraries as wheels and is not part of triton-navigator[trees]:
install triton-navigator[fil]. FIL computes in float32 (precision "single"), as the Triton backend does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from navigator.cache import Cache
from navigator.lazy import installed, require
from navigator.paths import _trees
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.source import ModelSource
from navigator.source import trees as tree_source
from navigator.triton import fil as fil_config

NAME = "fil"
TIMEOUT_S = 300.0  # default trial timeout: loading the forest
DEVICES = ("cpu",)
FRAMEWORKS = ("trees",)
PRECISION_CLASSES = ("trees",)
ENGINE = "FIL (nvForest) on the CPU"


def available() -> str | None:
    if not installed("nvforest"):
        return "nvForest (FIL's engine) is not installed (pip install 'triton-navigator[fil]')"
    if not installed("threadpoolctl"):
        return "threadpoolctl is not installed (pip install 'triton-navigator[trees]')"
    return None


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    d = _trees.fil_dir(source, cache)
    meta = json.loads((d / fil_config.META).read_text()) if (d / fil_config.META).is_file() else None
    return Artifact(NAME, d, d.name, dict(params), d / fil_config.FILES[meta["model_type"]] if meta else None)


class FilRunner(Runner):
    """nvForest on the CPU. Its OpenMP pool is process-wide: the thread count is set on every call
    through the OpenMP runtimes' omp_set_num_threads (threadpoolctl's controllers, a few µs) and
    restored after it, because a threadpool_limits context per call costs milliseconds."""

    def __init__(self, model_file: Path, forest: tree_source.Forest, params: Params) -> None:
        meta = json.loads((model_file.parent / fil_config.META).read_text())
        self.model = require("nvforest").load_model(
            str(model_file), model_type=meta["model_type"], device="cpu", layout=str(params["layout"]),
            default_chunk_size=int(params["chunk_size"]), precision="single")
        self.forest = forest
        self.threads = int(params["threads"])
        controller = require("threadpoolctl").ThreadpoolController()
        self.openmp = controller.select(user_api="openmp").lib_controllers

    def _predict(self, x: np.ndarray) -> list[np.ndarray]:
        before = [lib.get_num_threads() for lib in self.openmp]
        for lib in self.openmp:
            lib.set_num_threads(self.threads)
        try:
            raw = self.model.predict_proba(x) if self.forest.is_classifier else self.model.predict(x)
        finally:  # the count is process-wide: leave it as found (TL2cgen checks nthread against it)
            for lib, n in zip(self.openmp, before):
                lib.set_num_threads(n)
        return tree_source.outputs(self.forest, np.asarray(raw))

    def close(self) -> None:
        """Drops the loaded forest (its host and device copies)."""
        self.model = None

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._predict(np.ascontiguousarray(inputs[tree_source.INPUT], dtype=np.float32))

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        x = np.ascontiguousarray(inputs[tree_source.INPUT], dtype=np.float32)
        return lambda: self._predict(x)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    if artifact.file is None:
        _trees.fil_model(artifact.dir, params)  # raises with the reason the forest was not saved
    assert artifact.file is not None
    return FilRunner(artifact.file, source.model, params)


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    return _trees.fil_model(artifact.dir, params, target.release)


def precision(params: Params) -> str:
    """FIL computes in float32 (validate.py's "trees" tolerance)."""
    return "trees"
