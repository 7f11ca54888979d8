"""Triton FIL backend configs for tree ensembles (github.com/triton-inference-server/fil_backend,
docs/model_config.md).

FIL fixes its tensors: `input__0` (FP32, features) and `output__0` (FP32): the class probabilities with
`predict_proba` (a binary model gives two columns), or the value of a regressor. Release 25.09 renamed
keys: output_class -> is_classifier, algo -> layout, threads_per_tree -> chunk_size (storage_type and
blocks_per_sm were dropped); `release` before (25, 9) writes the old names.
"""

from __future__ import annotations

import json
from pathlib import Path

from navigator.records import IOSpec, Params, TensorSpec, TritonModel

META = "forest.json"
RENAMED = (25, 9)
# FIL's default file name per model_type.
FILES = {"xgboost_json": "xgboost.json", "xgboost_ubj": "xgboost.ubj", "lightgbm": "model.txt",
         "treelite_checkpoint": "checkpoint.tl"}
# layout -> the old `algo`. The old docs: NAIVE uses a breadth-first layout; TREE_REORG and
# BATCH_TREE_REORG reorganise trees for coalescing; ALGO_AUTO lets the backend choose. The new
# depth_first and layered layouts had no old counterpart, so they leave the choice to the backend.
LEGACY_ALGO = {"breadth_first": "NAIVE", "depth_first": "ALGO_AUTO", "layered": "ALGO_AUTO"}


def write_meta(directory: Path, model_type: str, task: str, n_features: int, n_classes: int) -> None:
    (directory / META).write_text(json.dumps({"model_type": model_type, "task": task, "n_features": n_features,
                                              "n_classes": n_classes}))


def model(directory: Path, params: Params, release: tuple[int, int] | None = None, kind: str = "KIND_CPU") -> TritonModel:
    """The FIL TritonModel for the forest saved in `directory` (FILES name + META), with the trial's
    parameters: `threads` -> cpu_nthread, `layout`, `chunk_size` (GPU, FIL's defaults where absent)."""
    meta = json.loads((directory / META).read_text())
    classifier = meta["task"] != "regression"
    width = int(meta["n_classes"]) if classifier else 1
    layout = str(params.get("layout", "depth_first"))
    chunk = str(params.get("chunk_size", 1))
    parameters = {"model_type": meta["model_type"], "predict_proba": str(classifier).lower()}
    if release is not None and release < RENAMED:
        parameters.update({"output_class": str(classifier).lower(), "algo": LEGACY_ALGO[layout],
                           "threads_per_tree": chunk})
    else:
        parameters.update({"is_classifier": str(classifier).lower(), "layout": layout, "chunk_size": chunk})
    if meta["task"] == "binary":
        parameters["threshold"] = "0.5"  # FIL's implicit value, written out: it decides the class without predict_proba
    if "threads" in params:
        parameters["cpu_nthread"] = str(params["threads"])
    io = IOSpec((TensorSpec("input__0", "float32", (None, int(meta["n_features"]))),),
                (TensorSpec("output__0", "float32", (None, width)),))
    name = FILES[meta["model_type"]]
    return TritonModel(backend="fil", files={name: directory / name}, parameters=parameters, io=io,
                       kind=kind)
