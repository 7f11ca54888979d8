"""Many workers on one study, through a shared optuna storage (PostgreSQL across machines).

`optimize(..., storage=URL, study=NAME)` creates the study (or joins it) and publishes its settings
and model location in the study's user attributes; `worker(URL, NAME)` joins it from another
machine with the same model file, search space and hardware class (the study's identity refuses
anything else); `report(URL, NAME, OUT)` picks the winner from every worker's trials and writes the
Triton repository and reports. Converted artifacts never travel through the database: each worker
converts into its own cache, and the report converts the winner again where it runs.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

from navigator import env
from navigator import paths as registry
from navigator.api import check_out, slug, finish, run, stage
from navigator.errors import InputError, StudyMismatchError
from navigator.records import Result, SourceRecord, TrialOutcome, from_dict
from navigator.search import storage as study_storage
from navigator.search.storage import StudyStorage
from navigator.settings import LocalSettings, StudySettings, memory_cap, parse_budget
from navigator.source import ModelSource, load_source
from navigator.source import metric as metric_mod
from navigator.source.metric import Metric


def _published(storage: StudyStorage) -> tuple[Any, StudySettings, SourceRecord]:
    """The study, and the settings and source its creator published."""
    from navigator.search.study import IDENTITY_WAIT_S, existing

    study = existing(storage)
    deadline = time.monotonic() + IDENTITY_WAIT_S
    while "identity" not in study.user_attrs and time.monotonic() < deadline:  # its creator is writing it
        time.sleep(1.0)
    attrs = study.user_attrs
    settings, source = attrs.get("settings"), attrs.get("source")
    if settings is None or source is None or "identity" not in attrs:
        raise InputError(f"study {storage.study!r} in {storage.describe()} was not created by "
                         "navigator optimize --storage (or its creator died before describing it)")
    try:
        return study, from_dict(StudySettings, settings), from_dict(SourceRecord, source)
    except (TypeError, ValueError) as exc:
        raise InputError(f"study {storage.study!r} in {storage.describe()} was created by another navigator "
                         f"version ({exc}): create a new study with this one") from None


def _source(published: SourceRecord, model: str | Path | None, input_data: str | Path | None,
            trust_pickle: bool, batch: int) -> ModelSource:
    """The study's model from this machine's copy: --model, else the path its creator used."""
    path = Path(model) if model else Path(published.model)
    if not path.is_file():
        raise InputError(f"model file {path} is not on this machine: pass --model with its copy of the study's model")
    data = input_data or published.input_data
    if data and not Path(data).is_file():
        raise InputError(f"input data {data} is not on this machine: pass --input-data with its copy")
    calibration = published.calibration_data
    if calibration and not Path(calibration).is_file():
        raise InputError(f"calibration data {calibration} is not on this machine (the study's INT8 paths need it)")
    return load_source(str(path), input_spec=published.input_spec, input_data=Path(data) if data else None,
                       trust_pickle=trust_pickle, batch=batch, calibration=Path(calibration) if calibration else None,
                       generated=published.generated_inputs and not input_data)


def _metric(metric: Metric | str | None, settings: StudySettings, trust_pickle: bool, study: str) -> Metric | None:
    """The worker's user metric, which must be the study's: its trials are held to the floor of the value
    the study's creator measured. Refused where the study has a metric drop and the worker no metric (its
    every trial would be invalid), or where the study has no metric (its trials would differ from the
    others'); a --metric is imported with --trust-pickle only, as `optimize` does."""
    if metric is None:
        if settings.max_metric_drop is not None:
            raise InputError(f"study {study!r} holds its trials to --max-metric-drop {settings.max_metric_drop} of a "
                             "user metric: join it with the metric its creator passed (--metric FILE.py:FUNCTION "
                             "--trust-pickle)")
        if settings.metric_source is not None:
            print(f"navigator: warning: study {study!r} records a user metric on its trials; this worker's trials "
                  "will have none (join with --metric FILE.py:FUNCTION --trust-pickle)", file=sys.stderr)
        return None
    if settings.metric_source is None:
        raise InputError(f"--metric: study {study!r} has no user metric (its creator passed none); join it without one")
    if isinstance(metric, str):
        return metric_mod.load(metric, trust_pickle)
    if not callable(metric):
        raise InputError(f"metric must be a function of the runner, not {type(metric).__name__}")
    return metric


def _same_metric(metric: Metric, source: ModelSource, settings: StudySettings, study: str) -> None:
    """Refuse a metric whose value on the study's model here is not the one the study's creator measured:
    another function, or the same one on other data, would judge this worker's trials against a floor
    that is not theirs. The same metric on the same data differs between machines of one hardware class
    by summation order at most, far below this tolerance."""
    here, there = metric_mod.on_source(metric, source), settings.metric_source
    assert there is not None  # _metric refused a study without one
    if not math.isclose(here, there, rel_tol=1e-4, abs_tol=1e-9):
        raise StudyMismatchError(f"--metric gives {here:.6g} on the model of study {study!r} here, its creator "
                                 f"measured {there:.6g}: a worker joins with the study's metric on the same data")


def worker(storage: str, study: str, *, model: str | Path | None = None, out: str | Path | None = None,
           budget: str | float | None = None, input_data: str | Path | None = None, trust_pickle: bool = False,
           trial_memory: str | int | None = "default", progress: bool = True, heartbeat: int = 10,
           trials: int | None = None, metric: Metric | str | None = None,
           on_trial: Callable[[TrialOutcome], None] | None = None) -> Result:
    """Join the shared study `study` in `storage` and run trials until its budget is spent.

    Args:
        model: this machine's copy of the study's model file (default: the path its creator used).
        out: this worker's own directory (conversion cache, logs; the report if it finishes last).
        budget: this worker's own time limit ('30m'); default: until the study's budget is spent.
        trials: this worker's own cap on the trials it runs (optuna's n_trials); the study's cap holds too.
        trust_pickle: never taken from the study: each machine decides whether it unpickles.
        metric: the study's user metric (a function, or 'path/to/file.py:function' / 'module:function',
            imported with trust_pickle only); needed where the study has a --max-metric-drop.

    Returns:
        Result with the study's trials; `report` is None unless this worker finished last.

    Raises:
        StudyMismatchError: the study is of another model, search space or hardware class, or the metric
            gives another value on its model.
    """
    shared = study_storage.shared(storage, study, heartbeat)
    assert shared is not None
    wall = parse_budget(budget) if budget is not None else None
    if trials is not None and trials < 1:
        raise InputError(f"--trials {trials}: a worker runs at least one trial")
    _, settings, record = _published(shared)
    function = _metric(metric, settings, trust_pickle, study)
    source = _source(record, model, input_data, trust_pickle, max(settings.batch_sizes))
    if function is not None:
        _same_metric(function, source, settings, study)
    target = Path(out) if out else Path("navigator-out") / f"{slug(study)}-worker"
    check_out(target, False, shared=True)
    local = LocalSettings(target, progress, memory_cap(settings.device, trial_memory))
    try:
        return run(source, settings, local, on_trial, storage=shared, wall_s=wall, join=True, own_trials=trials,
                   metric=function)
    except KeyboardInterrupt:
        raise study_storage.interrupted(shared) from None


def report(storage_url: str, study_name: str, out_dir: str | Path, *, model: str | Path | None = None,
           input_data: str | Path | None = None, trust_pickle: bool = False, force: bool = False,
           heartbeat: int = 10) -> Result:
    """The winner, Triton repository and reports of a shared study, from every worker's trials, in
    `out_dir`. On a machine of the study's hardware class the finalists are re-measured interleaved as
    `optimize` does; elsewhere the trials' own figures decide (the report says so)."""
    from navigator.search.study import Search

    shared = study_storage.shared(storage_url, study_name, heartbeat)
    assert shared is not None
    study, settings, record = _published(shared)
    identity = study.user_attrs["identity"]
    out = Path(out_dir)
    source = _source(record, model, input_data, trust_pickle, max(settings.batch_sizes))
    if source.fingerprint != identity.get("fingerprint"):
        raise StudyMismatchError(f"model {source.file or source.name} is not the model of study {study_name!r} "
                                 "(another fingerprint): pass --model with a copy of the study's model file")
    check_out(out, force, shared=True)
    local = LocalSettings(out, show_progress=False, memory_bytes=memory_cap(settings.device, "default"))
    out.mkdir(parents=True, exist_ok=True)
    search = Search.load(shared, settings)
    staged = stage(source, settings, local, registry.candidates(source.framework, settings.device, settings.paths,
                                                                      source.calibratable))
    notes = []
    running = study_storage.settle(search.study, heartbeat).running  # dead workers' trials failed first
    if running:
        notes.append(f"{running} trials were still running on workers: this report covers the finished ones")
    here, there = env.hardware_class(settings.device), identity.get("hardware")
    if there and here != there:
        notes.append(f"finalists not re-measured: this machine ({here}) is not of the study's hardware class "
                     f"({there}); the best trial as the workers measured it wins")
        return finish(source, local, search, staged, None, tuple(notes))
    with staged.worker(local) as trial_worker:
        return finish(source, local, search, staged, trial_worker, tuple(notes))
