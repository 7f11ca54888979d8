"""The records that describe a model and what a conversion path makes of it: the model's tensors
(TensorSpec, IOSpec), a path's searched parameters (ParamSpec), the converted model on disk (Artifact)
and the path's part of its Triton model (TritonModel). navigator.records imports them for its users."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

Scalar = Union[str, int, float, bool]
Params = dict[str, Scalar]


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: name, numpy dtype name, shape with None for a dynamic axis."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]


@dataclass(frozen=True)
class IOSpec:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def batched(self) -> bool:
        """True when every input's first axis is dynamic: Triton's max_batch_size > 0 applies."""
        return bool(self.inputs) and all(t.shape and t.shape[0] is None for t in self.inputs)


@dataclass(frozen=True)
class Artifact:
    """A converted model on disk: its main file, in a directory of the conversion cache."""

    path: str
    dir: Path
    key: str
    convert: Params
    file: Path | None = None


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


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter of a path (searchspace/<path>.yaml): `choices`, or an int range
    [`low`, `high`] (`log`-scaled); `when` and `sources` as in navigator/search/space.py."""

    name: str
    stage: str
    choices: tuple[Scalar, ...] = ()
    low: int = 0
    high: int = 0
    log: bool = False
    when: dict[str, Scalar | list[Scalar]] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
