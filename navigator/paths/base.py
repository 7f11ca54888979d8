"""What a conversion path module provides (a Protocol; nothing to inherit) and what it returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np

from navigator.records import Artifact, Params, TritonModel

if TYPE_CHECKING:
    from navigator.source import ModelSource
    from navigator.cache import Cache


class Runner(Protocol):
    """A loaded model: NumPy in, NumPy out (for validation), plus a hot call for the benchmark."""

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]: ...

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        """A zero-argument call on inputs already converted for the runtime (the timed region)."""
        ...


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

