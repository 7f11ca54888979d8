"""What a conversion path module provides (the ConversionPath Protocol: a module inherits nothing), what it
is told (Target, TritonTarget) and what it returns (Artifact, a Runner, TritonModel); the registry
(navigator/paths/__init__.py) turns a module into a Plugin. Runner classes subclass Runner for its
defaults (`host_call`, `close`, `precision_run`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np

from navigator.errors import TrialError
from navigator.records import Artifact, Params, ParamSpec, TritonModel

if TYPE_CHECKING:
    from navigator.cache import Cache
    from navigator.source import ModelSource


class Runner(Protocol):
    """A loaded model: NumPy in, NumPy out (for validation), plus a hot call for the benchmark."""

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]: ...

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        """A zero-argument call on inputs already converted for the runtime (the timed region)."""
        ...

    def host_call(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any] | None:
        """The hot call with the copies a Triton client pays (host arrays in, host arrays out), timed
        beside `prepare`'s; None where `prepare`'s call takes and gives host arrays already. A runner
        class that subclasses Runner inherits this None."""
        return None

    def close(self) -> None:
        """Releases what the runner holds (sessions, compiled models, CUDA graphs); called once, last.
        A runner class that subclasses Runner inherits this no-op."""
        return None

    def precision_run(self) -> str | None:
        """What the loaded model computes in, read from the runtime's own objects after loading (an
        optimised graph's operations, a compiled model's layer precisions, a module's weights), never
        from the trial's params: "int8 20/21, fp32 1/21 Conv+MatMul" (runtimes/precision.py). It is the
        report's "precision run" beside the tolerance class the trial was validated at (`precision`).
        None where nothing is cheaply readable; a runner class that subclasses Runner inherits that."""
        return None


@dataclass(frozen=True)
class Target:
    """What `convert` builds for: the study's device and batch sizes (TensorRT profiles span 1..max_batch
    and are tuned at opt_batch), and calibration inputs for an INT8 path: --calibration-data, else the
    validation inputs; None where those were drawn at random (an INT8 path then refuses: NO_CALIBRATION)."""

    device: str = "cpu"
    max_batch: int = 1
    opt_batch: int = 1
    calibration: dict[str, np.ndarray] | None = None

    @classmethod
    def of(cls, source: ModelSource, device: str, batch_sizes: tuple[int, ...] = ()) -> Target:
        """The target of a study of `batch_sizes` (the largest both max and opt, as the samples of its
        worker are made); without sizes, the samples' own batch."""
        rows = int(next(iter(source.samples.values())).shape[0]) if source.samples and source.io.batched else 1
        top = max(batch_sizes) if batch_sizes else rows
        calibration = (source.calibration if source.calibration is not None else source.samples) \
            if source.calibratable else None
        return cls(device, max(1, top), max(1, top), calibration)


# Why an INT8 path refuses a Target without calibration inputs (the trial's reason, the report's note).
NO_CALIBRATION = ("no calibration inputs: navigator drew the validation inputs at random, and INT8 calibrated "
                  "on random inputs would not be validated on real ones; pass --calibration-data file.npz "
                  "(or --input-data)")


@dataclass(frozen=True)
class TritonTarget:
    """What `triton` writes for: the server release (YY.MM; None: current servers, whose renamed keys and
    removed backends apply) and whether the model is deployed natively or as its python-backend twin."""

    release: str | None = None
    python: bool = False


class ConversionPath(Protocol):
    """The module-level interface of navigator/paths/<NAME>.py: every hook any consumer reads. The ones
    after `triton` are optional; the registry's Plugin fills their defaults (named in each comment), and
    the registry refuses a module whose public name looks like a misspelt hook (paths.problems)."""

    NAME: str
    FRAMEWORKS: tuple[str, ...]
    DEVICES: tuple[str, ...]  # "cpu" and/or "cuda": where the path runs
    TIMEOUT_S: float  # default limit of one trial (convert + validate + bench) on this path

    def available(self) -> str | None: ...

    def convert(self, source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact: ...

    def load(self, artifact: Artifact, source: ModelSource, params: Params) -> Runner: ...

    def triton(self, artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel: ...

    # Optional.
    COST_S: float  # expected seconds of one trial until the study measures its own (TIMEOUT_S / 10)
    COST_BY: dict[str, dict[Any, float]]  # COST_S by the value of a param that decides the cost, e.g.
    #              torch.compile's mode ({})
    ENGINE: str  # what measured a winner of this path, for the headline; "{library}" = the tree library
    #              ("the <NAME> path")
    PRECISION_CLASSES: tuple[str, ...]  # every tolerance class precision() returns (("fp32",))
    BASELINE: tuple[tuple[str, str], ...]  # the (framework, device) studies whose baseline (the
    #              framework's own runtime, defaults) this path with defaults is (())
    REFERENCE: tuple[str, ...]  # the devices where this path with defaults is the report's second
    #              reference, ONNX Runtime with default options (())
    TWIN_ONLY: tuple[str, ...]  # runtime parameters the native Triton config cannot express: the
    #              python-backend twin serves them, where the path has one (())
    CALIBRATES: bool  # whether its quantized trials read calibration inputs and so refuse generated ones
    #              ("int8" in PRECISION_CLASSES)

    def narrow(self, spec: ParamSpec) -> ParamSpec:
        """The searched parameter restricted to what this machine supports (the spec unchanged)."""
        ...

    def precision(self, params: Params) -> str:
        """The tolerance class (navigator/trial/validate.py TOLERANCES) a trial's params ask for ("fp32");
        what the runtime did run is its runner's `precision_run`."""
        ...



@dataclass(frozen=True)
class Plugin:
    """A path module as its consumers see it: every hook of ConversionPath present, the optional ones
    with their defaults filled (navigator.paths.get builds it), so no consumer probes a module."""

    name: str
    frameworks: tuple[str, ...]
    devices: tuple[str, ...]
    timeout_s: float
    cost_s: float
    cost_by: dict[str, dict[Any, float]]
    engine: str
    precision_classes: tuple[str, ...]
    baseline: tuple[tuple[str, str], ...]
    reference: tuple[str, ...]
    twin_only: tuple[str, ...]
    calibrates: bool
    available: Callable[[], str | None]
    convert: Callable[[ModelSource, Params, Cache, Target], Artifact]
    load: Callable[[Artifact, ModelSource, Params], Runner]
    triton: Callable[[Artifact, Params, TritonTarget], TritonModel]
    narrow: Callable[[ParamSpec], ParamSpec]
    tolerance_class: Callable[[Params], str]  # the module's precision()

    def precision(self, params: Params) -> str:
        """The trial's tolerance class, refused unless the path declares it (PRECISION_CLASSES), so
        that a class nobody gave a tolerance never reaches validation. It is what the params ask for;
        TrialOutcome.precision_run is what the runner reported running."""
        got = self.tolerance_class(params)
        if got not in self.precision_classes:
            raise TrialError(f"path {self.name}: precision() gave {got!r}, which is not one of its "
                             f"PRECISION_CLASSES {self.precision_classes}")
        return got
