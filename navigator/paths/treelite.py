"""Tree ensemble -> Treelite model -> C code compiled by TL2cgen into a shared library (gcc), run by
tl2cgen.Predictor with a thread count.

Conversion parameter `quantize` is TL2cgen's threshold quantization (thresholds replaced by their
index among the distinct thresholds of a feature). Triton has no backend for the compiled library:
the config is the FIL backend's for the same forest (FIL is built on Treelite's model too), with the
measured thread count as cpu_nthread; FIL's own engine cannot run here and is not what was measured.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from navigator.cache import Cache
from navigator.lazy import installed, require
from navigator.paths import _trees
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.env import ncpu
from navigator.source import ModelSource
from navigator.source import trees as tree_source

NAME = "treelite"
TIMEOUT_S = 900.0  # default trial timeout: compiling thousands of trees with gcc takes minutes
COST_S = 60.0  # expected trial cost (until the study measures its own): compiling the trees with gcc
DEVICES = ("cpu",)
FRAMEWORKS = ("trees",)
ENGINE = "Treelite (a predictor compiled by TL2cgen)"
LIBRARY = "predictor.so"


def _compiler() -> str | None:
    return shutil.which("gcc") or shutil.which("cc")


def available() -> str | None:
    missing = [m for m in ("treelite", "tl2cgen") if not installed(m)]
    if missing:
        return f"{' and '.join(missing)} not installed (pip install 'triton-navigator[trees]')"
    return None if _compiler() else "no C compiler (gcc or cc) to compile the predictor"


def _build(source: ModelSource, quantize: int, out: Path) -> None:
    tl2cgen = require("tl2cgen")
    model = _trees.treelite_model(source.model)
    toolchain = "clang" if "clang" in Path(_compiler() or "gcc").name else "gcc"  # cc: gcc on Linux
    tl2cgen.export_lib(model, toolchain=toolchain, libpath=str(out / LIBRARY),
                       params={"parallel_comp": max(1, ncpu()), "quantize": quantize}, verbose=False)
    (out / "fil").mkdir()
    _trees.save_for_fil(source, out / "fil")


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    key = {"quantize": int(params["quantize"])}
    d = cache.get(NAME, key, lambda out: _build(source, key["quantize"], out))
    return Artifact(NAME, d, d.name, dict(params), d / LIBRARY)


class TreeliteRunner(Runner):
    def __init__(self, library: Path, forest: tree_source.Forest, threads: int) -> None:
        self.tl2cgen = require("tl2cgen")
        self.predictor = self.tl2cgen.Predictor(str(library), nthread=threads, verbose=False)
        self.forest = forest
        self.dtype = np.dtype(self.predictor.threshold_type)  # float32, or float64 (LightGBM, scikit-learn)

    def _matrix(self, inputs: dict[str, np.ndarray]) -> Any:
        return np.ascontiguousarray(inputs[tree_source.INPUT], dtype=self.dtype)

    def close(self) -> None:
        """Drops the predictor, which unloads the compiled library."""
        self.predictor = None

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        raw = self.predictor.predict(self.tl2cgen.DMatrix(self._matrix(inputs)))
        return tree_source.outputs(self.forest, raw)

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        x = self._matrix(inputs)
        predict, matrix, forest = self.predictor.predict, self.tl2cgen.DMatrix, self.forest
        return lambda: tree_source.outputs(forest, predict(matrix(x)))


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    assert artifact.file is not None
    return TreeliteRunner(artifact.file, source.model, int(params["threads"]))


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    return _trees.fil_model(artifact.dir / "fil", params, target.release)
