"""Runs the source PyTorch model as it is (the baseline); serves it through Triton's python backend.

Conversion only saves the model for serving: the source file as given, or a live module exported to
an ExportedProgram (model.pt2). Benchmarks run the source object itself.
"""

from __future__ import annotations

import copy

from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.lazy import installed
from navigator.paths import _torch_save
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.runtimes import torch as rt_torch
from navigator.source import ModelSource
from navigator.triton import python_backend

NAME = "eager"
TIMEOUT_S = 120.0  # default trial timeout: loading and timing the source model
COST_S = 5.0  # expected trial cost (until the study measures its own): loading and timing the source model
DEVICES = ("cpu",)
FRAMEWORKS = ("torch",)
BASELINE = (("torch", "cpu"),)  # the source framework as given, on the CPU


def available() -> str | None:
    return None if installed("torch") else "torch is not installed (pip install 'triton-navigator[torch]')"


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    return _torch_save.saved(source, params, cache)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    settings = rt_torch.settings(params, "cpu")
    model = rt_torch.program_module(source.model) if source.kind == "exported" else source.model
    if settings.channels_last and source.kind == "module":
        model = rt_torch.place(copy.deepcopy(model), settings)  # never touch the source
    return rt_torch.runner(model, [t.name for t in source.io.inputs], settings)


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    if artifact.file is None:
        reason = (artifact.dir / "unsaved.txt").read_text().strip() if (artifact.dir / "unsaved.txt").exists() else ""
        raise TrialError(f"the eager model could not be saved for serving ({reason})")
    # the source's own pickle (a module saved with torch.save) is the only file the twin may unpickle
    return python_backend.model(artifact.file, python_backend.spec_file(
        "torch", "cpu", dict(params), unpickle=rt_torch.is_pickle(artifact.file)))
