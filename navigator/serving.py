"""The serving stage, after the search: a real tritonserver loads the written deployment, its answers over
HTTP and gRPC are compared with the source framework's, perf_analyzer measures it over a concurrency range,
and (optionally) Triton's own knobs are searched; the best serving configuration is written back."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from navigator.errors import InputError, ServeError
from navigator.records import OutputCheck, ServingReport, TensorSpec

DEPLOYMENTS = ("native", "python")


@dataclass(frozen=True)
class ServingOptions:
    deployment: str = "native"  # what the repository holds: the native backend's config or the python twin
    check: bool = False  # serve it for real: answers over HTTP and gRPC, perf_analyzer figures
    tune: bool = False  # search Triton's knobs and the per-instance threads
    budget_s: float = 120.0
    concurrency: tuple[int, ...] = (1, 4)
    latency_limit_ms: float | None = None
    interval_ms: int = 1500
    dynamic_batching: bool = True  # False: the serving search keeps Triton's dynamic batcher off
    budget_flag: str = "--serving-budget"  # how the command being run names budget_s, for advice

    def __post_init__(self) -> None:
        if self.deployment not in DEPLOYMENTS:
            raise InputError(f"--serving {self.deployment!r}: expected one of {', '.join(DEPLOYMENTS)}")
        if not self.concurrency or any(c < 1 for c in self.concurrency):
            raise InputError(f"--concurrency {self.concurrency}: expected positive integers")
        if self.latency_limit_ms is not None and self.latency_limit_ms <= 0:
            raise InputError(f"--latency-limit-ms {self.latency_limit_ms}: expected a positive number")

    @property
    def active(self) -> bool:
        return self.check or self.tune


def parse_concurrency(text: str) -> tuple[int, ...]:
    """'1,4' or '1:8' (powers of two from LOW to HIGH)."""
    try:
        if ":" in text:
            low, high = (int(v) for v in text.split(":"))
            values = [c for c in (2 ** i for i in range(12)) if low <= c <= high] or [low]
        else:
            values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--concurrency {text!r}: expected N,M,... or LOW:HIGH") from None
    if not values or any(v < 1 for v in values):
        raise InputError(f"--concurrency {text!r}: expected positive integers")
    return tuple(sorted(set(values)))


def save_validation(out: Path, inputs: dict[str, np.ndarray], outputs: tuple[TensorSpec, ...],
                    reference: list[np.ndarray]) -> None:
    """The validation inputs and the source framework's outputs, for a later `navigator serve-check`."""
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "inputs.npz", **inputs)  # type: ignore[arg-type]  # numpy's stub takes **arrays for allow_pickle
    np.savez(out / "reference.npz", **{spec.name: array for spec, array in zip(outputs, reference)})  # type: ignore[arg-type]  # numpy's stub takes **arrays for allow_pickle


def load_validation(out: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    try:
        with np.load(out / "inputs.npz", allow_pickle=False) as i, np.load(out / "reference.npz",
                                                                         allow_pickle=False) as r:
            return {k: i[k] for k in i.files}, {k: r[k] for k in r.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{out}: no readable validation data (inputs.npz, reference.npz): {exc}") from None


def tolerances_of(checks: Sequence[OutputCheck]) -> tuple[float, float]:
    """The loosest (atol, rtol) of a trial's output checks: what its validation allowed (fp32's if none)."""
    return max((c.atol for c in checks), default=1e-4), max((c.rtol for c in checks), default=1e-3)


def tolerances(out: Path) -> tuple[float, float]:
    """The winner's validation tolerances from `out`/report.json (fp32's where it records none);
    InputError when report.json is there but not a report this navigator reads."""
    from navigator.report.read import read_report

    if not (out / "report.json").is_file():
        return tolerances_of([])
    winner = read_report(out / "report.json").winner
    return tolerances_of(winner.validation.outputs if winner and winner.validation else ())


def run(model_dir: Path, inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], atol: float,
        rtol: float, batch_size: int, options: ServingOptions, work: Path) -> ServingReport:
    """Serve-check, measure and (with options.tune) tune the deployment in `model_dir`; a tuned serving
    configuration replaces the one in `model_dir`'s repository."""
    from navigator.triton import deployment as dep
    from navigator.triton import server as triton_server
    from navigator.triton import tune

    written = dep.load(model_dir)
    missing = [s.name for s in written.io.inputs if s.name not in inputs]
    missing += [s.name for s in written.io.outputs if s.name not in reference]
    if missing:
        raise InputError(f"validation data lacks {', '.join(missing)} for {model_dir}")
    ref = [reference[s.name] for s in written.io.outputs]
    log = work / "tritonserver.log"
    served, note = dep.servable(written, triton_server.backends(triton_server.find("tritonserver")))
    checks = dep.serve_check(served, inputs, ref, atol, rtol, log)
    notes = [note] if note else []
    report = ServingReport(deployment="python" if served.model.backend == "python" else served.model.backend,
                           model=written.name, checks=tuple(checks), batch_size=batch_size,
                           concurrency=options.concurrency, latency_limit_ms=options.latency_limit_ms)
    if not all(c.ok for c in checks):
        return replace(report, notes=tuple(notes + ["not measured: the served answers are wrong"]))
    settings = tune.TuneSettings(batch_size, options.concurrency, options.budget_s if options.tune else 0.0,
                                 options.latency_limit_ms, options.interval_ms,
                                 dynamic_batching=options.dynamic_batching)
    try:
        default, best, trials = tune.tune(served, inputs, settings, work / "perf", log)
    except ServeError as exc:  # the answers were checked; the figures could not be had
        return replace(report, notes=tuple(notes + [f"serving failed: {exc}"]))
    if options.tune and len(trials) < 2:
        notes.append(f"the serving budget ({options.budget_s:.0f}s) left no time for a search trial after the "
                     f"default configuration's measurement: raise {options.budget_flag} "
                     f"(e.g. {options.budget_flag} {max(2, math.ceil(2 * options.budget_s / 60))}m)")
    if (best is not default and best.config != written.serving and best.score is not None
            and best.score > (default.score or 0.0)):
        replace(written, serving=best.config).write(model_dir.parent)
        notes.append(f"serving configuration {best.number} written to {model_dir / 'config.pbtxt'}")
    elif best is not default:
        notes.append(f"serving configuration {best.number} did not beat the default when re-measured: kept the default")
    return replace(report, default=default, best=best, trials=tuple(trials) if options.tune else (),
                   notes=tuple(notes))
