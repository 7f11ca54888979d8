"""The gate's output check: the candidate's winner, run on the baseline's validation inputs
(OUT/validation/inputs.npz), must give the baseline's reference outputs (validation/reference.npz) within
tolerance. Same speed with outputs far off is a failed gate, not a pass.

The candidate's winner is loaded through its path's runner from the candidate run's model file and
cache, in a trial worker process (as the search runs trials): a hostile or broken model file crashes
that process, not the gate. The tolerances are the looser of the two winners' validation tolerances:
each winner may differ from its own source by its precision's tolerance, so only a larger difference is
the model's drift.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from navigator import errors
from navigator.errors import InvalidModelError
from navigator.records import Result, TensorSpec, TrialOutcome, WorkerSpec, to_dict

NAME = "outputs"


def _tolerances(*winners: TrialOutcome) -> tuple[float, float]:
    from navigator.serving import tolerances_of

    pairs = [tolerances_of(w.validation.outputs if w.validation else ()) for w in winners]
    return max(a for a, _ in pairs), max(r for _, r in pairs)


def _reraise(message: str) -> None:
    """A load failure reported by the worker as 'ErrorType: text', raised again as that navigator error
    (an untrusted pickle stays one; anything else about loading is an invalid model)."""
    name, _, text = message.partition(": ")
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, errors.UntrustedPickleError):
        raise cls(text)
    raise InvalidModelError(f"the candidate's model did not load: {message}")


def _candidate_outputs(candidate: Result, inputs_file: Path, trust_pickle: bool, work: Path) -> list[np.ndarray]:
    """The candidate's winner run on `inputs_file` in a trial worker; InvalidModelError when its model
    is gone or does not load, RuntimeError (its one-line reason) when the winner fails on the inputs."""
    from navigator import paths
    from navigator.results import source_record
    from navigator.settings import StudySettings
    from navigator.source import file_sha256
    from navigator.trial.isolate import TrialWorker, WorkerDied

    report, winner = candidate.report, candidate.winner
    assert report is not None and winner is not None
    record = source_record(candidate)
    model = Path(record.model)
    if not model.exists():
        raise InvalidModelError(f"the candidate's model is gone: {model} (recorded in {report})")
    memory = candidate.local.memory_bytes if candidate.local else None
    # The cache is keyed by the file's contents: a model changed since its run is converted again.
    spec = WorkerSpec(replace(record, trust_pickle=trust_pickle), model.stem, file_sha256(model),
                      winner.config.batch_size, str(report.parent / "cache"))
    out_file = work / "candidate_outputs.npz"
    with TrialWorker(spec, StudySettings(), work / "worker.log", memory) as worker:
        try:
            worker.start()
        except RuntimeError as exc:  # the worker could not load the model
            _reraise(str(exc))
        except WorkerDied as died:
            raise InvalidModelError(f"loading the candidate's model killed its worker: {died}") from None
        request = {"op": "outputs", "config": to_dict(winner.config), "inputs": str(inputs_file),
                   "out": str(out_file)}
        try:
            worker.call(request, timeout=paths.get(winner.config.path).timeout_s + 60)
        except WorkerDied as died:
            raise RuntimeError(str(died)) from None
    with np.load(out_file, allow_pickle=False) as f:
        return [f[k] for k in sorted(f.files)]


def criterion(base_report: Path, cand_report: Path, trust_pickle: bool) -> Any:
    """The `outputs` Criterion of the gate. InputError when the baseline has no validation data."""
    from navigator.report.check import Criterion
    from navigator.results import read_report
    from navigator.serving import load_validation
    from navigator.trial.validate import validate

    base, cand = read_report(base_report), read_report(cand_report)
    assert base.winner is not None and cand.winner is not None  # the gate checks both have one first
    inputs, reference = load_validation(base_report.parent / "validation")
    atol, rtol = _tolerances(base.winner, cand.winner)
    who = f"the candidate's winner ({cand.winner.config.path}, trial {cand.winner.config.number})"
    rows = next(iter(inputs.values())).shape[0] if inputs else 0
    with tempfile.TemporaryDirectory(prefix="navigator-drift-") as tmp:
        try:
            got = _candidate_outputs(cand, base_report.parent / "validation" / "inputs.npz", trust_pickle, Path(tmp))
        except RuntimeError as exc:
            return Criterion(NAME, False, f"{who} could not run on the baseline's validation inputs: {exc}")
    specs = tuple(TensorSpec(name, str(ref.dtype), ref.shape) for name, ref in reference.items())
    result = validate(specs, got, list(reference.values()), atol, rtol)
    worst = max((c.max_abs for c in result.outputs), default=0.0)
    where = f"{who} on the baseline's {rows} validation rows"
    if result.ok:
        return Criterion(NAME, True, f"{where} matches the baseline's reference outputs (max abs error "
                                     f"{worst:.3g}; atol {atol:g} + rtol {rtol:g})")
    return Criterion(NAME, False, f"outputs drift from the baseline's: {result.reason} ({where})")

