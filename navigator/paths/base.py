"""What a conversion path module provides (a Protocol; nothing to inherit) and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np

from navigator.records import Artifact, IOSpec, Params

if TYPE_CHECKING:
    from navigator.source import ModelSource
    from navigator.cache import Cache


class Runner(Protocol):
    """A loaded model: NumPy in, NumPy out (for validation), plus a hot call for the benchmark."""

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]: ...

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        """A zero-argument call on inputs already converted for the runtime (the timed region)."""
        ...


@dataclass
class TritonModel:
    """A path's part of the Triton model: backend or platform, files for the version dir, settings.

    `parameters` become ModelConfig.parameters; `graph_level` ModelConfig.optimization.graph.level;
    `cpu_accelerators` / `gpu_accelerators` name -> parameters for optimization.execution_accelerators;
    `cuda_graphs` sets optimization.cuda.graphs; `kind` is the instance group's kind.
    `io` replaces the source's IOSpec where the backend fixes its own tensors (fil: input__0/output__0);
    a `files` entry may be a directory (a SavedModel); `warnings` are written to the report's notes when
    this model is deployed.
    """

    backend: str = ""
    platform: str = ""
    files: dict[str, Path] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    graph_level: int | None = None
    cpu_accelerators: dict[str, dict[str, str]] = field(default_factory=dict)
    gpu_accelerators: dict[str, dict[str, str]] = field(default_factory=dict)
    cuda_graphs: bool = False
    kind: str = "KIND_CPU"
    default_model_filename: str = ""
    io: IOSpec | None = None
    warnings: tuple[str, ...] = ()


class ConversionPath(Protocol):
    """The module-level interface of navigator/paths/<NAME>.py (checked by the contract test)."""

    NAME: str
    FRAMEWORKS: tuple[str, ...]
    DEVICES: tuple[str, ...]  # "cpu" and/or "cuda": where the path runs
    TIMEOUT_S: float  # default limit of one trial (convert + validate + bench) on this path

    def available(self) -> str | None: ...

    def convert(self, source: ModelSource, params: Params, cache: Cache) -> Artifact: ...

    def load(self, artifact: Artifact, source: ModelSource, params: Params) -> Runner: ...

    def triton(self, artifact: Artifact, params: Params) -> TritonModel: ...

