"""Shared by the tree paths (not a path itself): the forest as FIL serves it, cached per source, and
the FIL config for a trial."""

from __future__ import annotations

import shutil
from pathlib import Path

from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.lazy import require
from navigator.records import Artifact, Params, TritonModel
from navigator.settings import parse_release
from navigator.source import ModelSource
from navigator.source.trees import Forest
from navigator.triton import fil

UNSAVED = "unsaved.txt"


def treelite_model(forest: Forest) -> object:
    """The forest as a treelite.Model (Treelite's own importers)."""
    treelite = require("treelite")
    if forest.library == "xgboost":
        return treelite.frontend.from_xgboost(forest.model)
    if forest.library == "lightgbm":
        return treelite.frontend.from_lightgbm(forest.model)
    return treelite.sklearn.import_model(forest.model)


def save_for_fil(source: ModelSource, out: Path) -> None:
    """The model file FIL loads, under FIL's default name, and its META. XGBoost and LightGBM files
    are served as they are; a scikit-learn forest becomes a Treelite checkpoint (FIL takes no pickle).
    Where that needs Treelite and it is missing, the reason is kept and the FIL config refused."""
    forest: Forest = source.model
    model_type = "treelite_checkpoint" if forest.library == "sklearn" else forest.file_format
    target = out / fil.FILES[model_type]
    if forest.library == "sklearn":
        try:
            treelite_model(forest).serialize(str(target))  # type: ignore[attr-defined]
        except Exception as exc:  # no treelite, or a model it cannot import
            (out / UNSAVED).write_text(f"no Treelite checkpoint: {type(exc).__name__}: {exc}\n")
            return
    else:
        assert source.file is not None
        shutil.copyfile(source.file, target)
    fil.write_meta(out, model_type, forest.task, forest.n_features, forest.n_classes)


def fil_dir(source: ModelSource, cache: Cache) -> Path:
    return cache.get("fil_model", {}, lambda out: save_for_fil(source, out))


def fil_model(directory: Path, params: Params, release: str | None = None) -> TritonModel:
    if not (directory / fil.META).is_file():
        reason = (directory / UNSAVED).read_text().strip() if (directory / UNSAVED).is_file() else "no model file"
        raise TrialError(f"the forest could not be saved for the FIL backend ({reason})")
    return fil.model(directory, params, parse_release(release) if release else None)


def artifact_fil(artifact: Artifact) -> Path:
    """Where an artifact of a tree path keeps its FIL copy: in its `fil` subdirectory or beside it."""
    return artifact.dir / "fil" if (artifact.dir / "fil").is_dir() else artifact.dir
