"""`navigator export OUT --trial N`: any valid trial of a finished run (another point of its Pareto front,
the best trial over a latency limit) written as a Triton repository, by the deploy code of the run
itself, from the run's study and conversion cache."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from navigator.errors import InputError
from navigator.records import MEASURED, Result, TrialOutcome


def trial_of(result: Result, number: int) -> TrialOutcome:
    """Trial `number` of the run; InputError where there is none or it has no valid measured outputs."""
    outcome = next((o for o in result.outcomes if o.config.number == number), None)
    if outcome is None:
        numbers = sorted(o.config.number for o in result.outcomes)
        known = f"its trials are {numbers[0]}-{numbers[-1]}" if numbers else "it has no trial"
        raise InputError(f"the run in {result.report.parent if result.report else '?'} has no trial {number} "
                         f"({known})")
    if outcome.status not in MEASURED:
        why = f": {outcome.error}" if outcome.error else ""
        raise InputError(f"trial {number} ({outcome.config.path}) is {outcome.status}{why}; only a valid "
                         "measured trial can be exported")
    return outcome


def export(out: Path, number: int, to: Path | None = None, python: bool = False,
           trust_pickle: bool = False) -> Path:
    """Write trial `number` of the run in `out` as a Triton repository in `to` (default
    OUT/export/trial-N), built in a temporary directory beside it and renamed into place, so that a
    failure leaves nothing; returns the repository. `python`: the python-backend twin."""
    from navigator import api
    from navigator.cache import Cache
    from navigator.results import load_result, load_source_of
    from navigator.trial.run import TrialContext

    if not (out / "study.db").is_file() and not (out / "report.json").is_file():
        raise InputError(f"{out} is not the output directory of a navigator optimize run (no study.db)")
    result = load_result(out)
    outcome = trial_of(result, number)
    if result.settings is None:
        raise InputError(f"{out}/report.json does not record the run's settings; rerun navigator optimize")
    target = to or out / "export" / f"trial-{number}"
    if target.exists():
        raise InputError(f"{target} exists; remove it or pass another --to")
    source = load_source_of(result, max(result.settings.batch_sizes), trust_pickle=trust_pickle)
    settings = result.settings
    ctx = TrialContext(source, Cache(out / "cache", source.fingerprint), settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        written, notes, _ = api._deploy(source, ctx, [outcome], settings, staging, python=python)
        if written is None:
            raise InputError(f"trial {number} cannot be written as a Triton model: {'; '.join(notes)}")
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
