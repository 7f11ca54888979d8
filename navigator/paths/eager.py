"""Runs the source PyTorch model as it is (the baseline); serves it through Triton's python backend.

Conversion only saves the model for serving: the source file as given, or a live module exported to
an ExportedProgram (model.pt2). Benchmarks run the source object itself.
"""

from __future__ import annotations

import copy

from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.lazy import installed, require
from navigator.paths import _torch_save
from navigator.paths._torch import TorchRunner
from navigator.paths.base import Runner
from navigator.records import Artifact, Params, TritonModel
from navigator.source import ModelSource
from navigator.triton import python_backend

NAME = "eager"
TIMEOUT_S = 120.0  # default trial timeout: loading and timing the source model
COST_S = 5.0  # expected trial cost (until the study measures its own): loading and timing the source model
DEVICES = ("cpu",)
FRAMEWORKS = ("torch",)


def available() -> str | None:
    return None if installed("torch") else "torch is not installed (pip install 'triton-navigator[torch]')"


def convert(source: ModelSource, params: Params, cache: Cache) -> Artifact:
    return _torch_save.saved(source, params, cache)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    model = source.model.module() if source.kind == "exported" else source.model
    if params.get("channels_last") and source.kind == "module":
        torch = require("torch")
        model = copy.deepcopy(model).to(memory_format=torch.channels_last)  # never touch the source
    return TorchRunner(model, [t.name for t in source.io.inputs], int(params["threads"]),
                       bool(params.get("channels_last")))


def triton(artifact: Artifact, params: Params) -> TritonModel:
    if artifact.file is None:
        reason = (artifact.dir / "unsaved.txt").read_text().strip() if (artifact.dir / "unsaved.txt").exists() else ""
        raise TrialError(f"the eager model could not be saved for serving ({reason})")
    return python_backend.model("torch", artifact.file, {"THREADS": str(params["threads"]),
                                                    "CHANNELS_LAST": str(bool(params.get("channels_last")))})
