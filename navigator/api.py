"""The one orchestration page: source -> search -> Triton repository -> report (`navigator.optimize`,
in pyapi.py, parses the settings and calls `launch`; a shared study's workers call `run` and `finish`)."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from navigator import env
from navigator import objective as objectives
from navigator import paths as registry
from navigator.errors import (InputError, InvalidModelError, NavigatorError, UnavailableError,
                              UntrustedPickleError, one_line)
from navigator.records import (TUNED_BASELINE, CacheStats, Finalist, Result, ServingReport, SourceRecord, TrialConfig, TrialOutcome,
                               WorkerSpec, from_dict, to_dict)
from navigator.search import storage as study_storage
from navigator.search.finalists import (compare_all, deploy_order, pick, precision_roles, quantized_must_win,
                                        settle_tuned, tuned_baseline)
from navigator.search.storage import StudyStorage
from navigator.serving import ServingOptions, save_validation
from navigator.settings import LocalSettings, StudySettings
from navigator.source import ModelSource, load_source
from navigator.source.iospec import searched_batches
from navigator.trial import traced


def slug(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_")
    return cleaned or "model"


def _deploy(source: ModelSource, ctx: Any, ranked: list[TrialOutcome], settings: StudySettings,
            repository: Path, python: bool = False, worker: Any = None) -> tuple[TrialOutcome | None, list[str], str]:
    """Write the best trial that can be served (as its python-backend twin with `python`); a winner whose
    Triton export fails yields to the next. A dynamic-batch model's max_batch_size is the largest batch
    the trial validates at (trial/served.py), checked in `worker`. Also returns the written backend."""
    from navigator.paths.base import TritonTarget
    from navigator.records import ServingConfig
    from navigator.triton.deployment import Deployment
    from navigator.trial.run import convert
    from navigator.trial.served import served_max

    notes = []
    for o in ranked:
        try:
            artifact = convert(ctx, o.config)
            params = {**o.config.convert, **o.config.runtime}
            model = registry.get(o.config.path).triton(artifact, params, TritonTarget(settings.triton_server, python))
            io = model.io or source.io
            served, why = served_max(worker, ctx, o.config, settings.batch_sizes) if io.batched else (0, "")
            deployment = Deployment(slug(source.name), io, model,
                                    ServingConfig(served, dynamic_batching=settings.dynamic_batching))
            (deployment.python() if python else deployment).write(repository)
            notes += [f"warning: {w}" for w in model.warnings] + ([why] if why else [])
            return o, notes, "python" if python else (model.backend or model.platform)
        except Exception as exc:  # a path's Triton export failing: record it, try the runner-up
            notes.append(f"trial {o.config.number} ({o.config.path}) not deployable: {one_line(exc)}")
    return None, notes, ""


def _finalists(worker: Any, ranked: list[TrialOutcome], roles: dict[str, TrialOutcome],
               settings: StudySettings, search: Any, progress: Any = None) -> tuple[list[Finalist], str]:
    """Re-measure the top trials and the baselines interleaved in the worker, in as many rounds as the
    budget has room for; ([], why) if it fails. Where no trial ran since the last re-measurement, its
    finalists are reused (a rerun changes nothing)."""
    from navigator.search.budget import finalists_cost
    from navigator.search.proposals import FINALIST_ROLES, USER_ROLE
    from navigator.trial.isolate import WorkerDied

    chosen_from = sorted(o.config.number for o in ranked)
    stored = search.stored_finalists(chosen_from)
    if stored is not None:
        return stored, "finalists: no trial ran since they were re-measured; their rounds are reused"
    measured = {r: o for r, o in roles.items()
                if r in FINALIST_ROLES or r == TUNED_BASELINE or r.startswith(USER_ROLE)}
    contenders, k = objectives.for_study(settings).contenders(ranked, settings.finalists)
    chosen = pick(contenders, {**measured, **precision_roles(ranked)}, k)
    load_s, round_s = finalists_cost([o for _, o in chosen], settings)
    rounds, timeout = search.budget.finalist_plan(load_s, round_s, settings.rounds)
    if not rounds:
        return [], f"finalists not re-measured: the budget is spent (a round takes about {round_s:.0f} s)"
    if progress is not None:
        progress.phase(f"finalists ({len(chosen)} x {rounds} rounds)", load_s + rounds * round_s)
    request = {"op": "remeasure", "rounds": rounds, "chosen": [[r, to_dict(o)] for r, o in chosen]}
    try:
        raw = worker.call(request, timeout=timeout)
    except (WorkerDied, RuntimeError) as exc:
        return [], f"finalists not re-measured: {exc}"
    goal = objectives.get(settings.objective)
    finalists = sorted((from_dict(Finalist, f) for f in raw), key=goal.finalist_score, reverse=True)
    search.store_finalists(chosen_from, finalists)
    return finalists, ""


def _trial_runner(worker: Any, progress: Any, on_trial: Callable[[TrialOutcome], None] | None
                  ) -> tuple[Callable[[TrialConfig, float, float | None], TrialOutcome], Callable[[TrialOutcome], None]]:
    """(run a trial in the worker with its timeout, after each trial); repeats never reach it (the
    search answers them from the study). A loaded machine is warned about as soon as it is seen."""
    def run(config: TrialConfig, timeout: float, bar: float | None) -> TrialOutcome:
        progress.start_trial(config)
        return worker.run(config, timeout, bar)

    def done(outcome: TrialOutcome) -> None:
        progress.update(outcome)
        progress.warn(env.overloaded())
        if on_trial:
            on_trial(outcome)

    return run, done


def _serve(out: Path, winner: TrialOutcome, batch_size: int, options: ServingOptions) -> ServingReport:
    """The serving stage on the written repository, with the winner's validation tolerances."""
    from navigator import serving

    inputs, reference = serving.load_validation(out / "validation")
    model_dir = next(d for d in (out / "model_repository").iterdir() if d.is_dir())
    atol, rtol = serving.tolerances_of(winner.validation.outputs if winner.validation else ())
    return serving.run(model_dir, inputs, reference, atol, rtol, batch_size, options, out / "serving")


@dataclass(frozen=True)
class Stage:
    """What the search, the finalists and the deployment share for one source in one output directory:
    the paths considered, the trials' context (source, cache, settings), the source as files."""

    candidates: list[Any]
    ctx: Any
    record: SourceRecord
    spec: WorkerSpec

    def worker(self, local: LocalSettings) -> Any:
        """The trial worker process (a context manager) that loads this source."""
        from navigator.trial.isolate import TrialWorker

        return TrialWorker(self.spec, self.ctx.settings, local.out / "logs" / "worker.log", local.memory_bytes)


def stage(source: ModelSource, study: StudySettings, local: LocalSettings, candidates: list[Any],
          metric: Callable[[Any], float] | None = None) -> Stage:
    """The source saved as files for the trial workers (a live object is saved in OUT/source, as is the
    user `metric`) and the trials' context, caching conversions in OUT/cache."""
    from navigator.source import calibration_file, materialize
    from navigator.source import metric as metric_mod
    from navigator.cache import Cache
    from navigator.trial.run import TrialContext

    model, spec_text, data, trust = materialize(source, local.out / "source")
    if trust:  # this process loaded the model with trust (or wrote it): runner() here may load it again
        from navigator.results import vouch

        vouch(model)
    record = SourceRecord(str(Path(model).resolve()), spec_text, str(Path(data).resolve()) if data else None,
                          trust, source.fingerprint if source.file else None,
                          calibration_file(source, local.out / "source"), source.generated)
    ctx = TrialContext(source, Cache(local.out / "cache", source.fingerprint), study, metric)
    saved = str(metric_mod.save(metric, local.out / "source")) if metric is not None else None
    spec = WorkerSpec(record, source.name, source.fingerprint, max(study.batch_sizes), str(ctx.cache.root), saved)
    return Stage(candidates, ctx, record, spec)


def run(source: ModelSource, study: StudySettings, local: LocalSettings,
        on_trial: Callable[[TrialOutcome], None] | None = None,
        enqueue: dict[str, tuple[str, dict[str, Any]]] | None = None, storage: StudyStorage | None = None,
        wall_s: float | None = None, join: bool = False, serving: ServingOptions | None = None,
        notes: tuple[str, ...] = (), own_trials: int | None = None, started: float | None = None,
        metric: Callable[[Any], float] | None = None) -> Result:
    """Search, deploy the winner and write the reports for an already loaded source.

    `storage`: a shared study (default: SQLite in the output directory); `join`: this process joins it as
    a worker with the settings its creator published (it publishes none); `wall_s`: this worker's own
    time limit; `own_trials`: its own trial cap. In a shared study, only the last worker to finish picks
    the winner and writes the repository and report; the others return their trials with `report` None.
    `serving`: how the winner is deployed and whether a real server checks, measures and tunes it;
    `notes` go into the report. `started`: when the run began (monotonic; default now), the start of
    its budget. `metric`: the user metric, evaluated in every trial."""
    from navigator.progress import Progress
    from navigator.search.study import Search

    candidates = registry.candidates(source.framework, study.device, study.paths, source.calibratable)
    usable = [c.name for c in candidates if c.reason is None]
    if not usable:
        raise UnavailableError("no conversion path can run here: " +
                               "; ".join(f"{c.name}: {c.reason}" for c in candidates))
    out = local.out
    new_out = next((p for p in [*reversed(out.absolute().parents), out.absolute()] if not p.exists()), None)
    out.mkdir(parents=True, exist_ok=True)
    try:
        staged = stage(source, study, local, candidates, metric)
        search = Search(storage or study_storage.default(out), study, (source.framework, source.kind), usable,
                        source.fingerprint, enqueue, publish=published(study, staged.record)
                        if storage and not join else None, started=started)
    except NavigatorError:  # e.g. a shared study of another model: leave no output behind
        if new_out is not None:
            shutil.rmtree(new_out, ignore_errors=True)
        raise
    with staged.worker(local) as worker:
        with Progress(study, search.budget, enabled=local.show_progress) as bar:
            shown = len(search.notes)
            for note in search.notes:
                bar.say(note)
            bar.warn(env.overloaded())
            run_trial = _trial_runner(worker, bar, on_trial)
            search.run(*run_trial, wall_s, own_trials)
            running = 0
            while search.storage.shared:  # fail dead workers' trials; retry them here while the budget lasts
                settled = study_storage.settle(search.study, search.storage.heartbeat_s)  # type: ignore[arg-type]  # shared
                running = settled.running
                if not settled.failed:
                    break
                search.run(*run_trial, None, own_trials)
            for note in search.notes[shown:]:
                bar.say(note)
            if running:  # other workers are still running: the last of them writes the report
                return Result(model=source.name, objective=study.objective, outcomes=tuple(search.outcomes()),
                              winner=None, baseline=None, speedup=None, repository=None, report=None,
                              environment=env.snapshot())
            notes = (*notes, *search.notes, *bar.warnings, *search.seen.notes(), *search.cost_notes())
            result = finish(source, local, search, staged, worker, notes, serving=serving, progress=bar)
        search.save_spent()
        return result


def published(study: StudySettings, record: SourceRecord) -> dict[str, Any]:
    """What a worker joining a shared study reads from it besides its own model file: the study's
    settings (the latest `optimize` sets them) and where the creator's model and inputs are (never
    its trust: each machine decides whether it unpickles)."""
    return {"settings": to_dict(study), "source": to_dict(replace(record, trust_pickle=False))}


def finish(source: ModelSource, local: LocalSettings, search: Any, staged: Stage, worker: Any,
           notes: tuple[str, ...] = (), serving: ServingOptions | None = None, progress: Any = None) -> Result:
    """From the study's trials (every worker's): the finalists re-measured in `worker` (None: not
    re-measured, the trials' own figures decide), the winner deployed (and served, with `serving`),
    the reports written. `progress` shows the phases."""
    from navigator.report import build as report
    from navigator.report import headline, spend, store
    from navigator.trial.validate import nonfinite_notes, reference_nonfinite

    study, out, ctx = search.settings, local.out, staged.ctx
    outcomes = sorted(search.outcomes() + search.interrupted(), key=lambda o: o.config.number)
    by_number = {o.config.number: o for o in outcomes}
    roles = {role: by_number[n] for role, n in search.roles().items() if n in by_number}
    goal = objectives.for_study(study)  # with every constraint of the settings (p99 limit, metric drop)
    ranked = goal.rank(search.outcomes(comparable=True))  # within every constraint
    phases = {"search": time.monotonic() - search.budget.started}
    tuned = tuned_baseline(ranked, roles.get("baseline"))
    if tuned is not None:
        roles[TUNED_BASELINE] = tuned
    finalists, why = _finalists(worker, ranked, roles, study, search, progress) if ranked and worker else ([], "")
    finalists = settle_tuned(finalists, study.objective)
    phases["finalists"] = time.monotonic() - search.budget.started - phases["search"]
    if progress is not None:
        progress.phase("deploying", 0.0)
    serving = serving or ServingOptions()
    order, dropped = deploy_order(finalists, ranked, goal)
    order, tie = quantized_must_win(order, finalists, study.objective)
    winner, deploy_notes, backend = _deploy(source, ctx, order, study, out / "model_repository",
                                            python=serving.deployment == "python", worker=worker)
    save_validation(out / "validation", source.samples, source.io.outputs, source.sample_outputs)
    served = None
    if winner is not None and serving.active:
        try:
            served = _serve(out, winner, max(study.batch_sizes), serving)
        except NavigatorError as exc:  # the search's result stands; the report says what the server did
            served = ServingReport(serving.deployment, slug(source.name), notes=(f"serving failed: {exc}",))
    phases["deploy"] = time.monotonic() - search.budget.started - phases["search"] - phases["finalists"]
    comparisons = compare_all(winner.config.number, finalists, study.objective) if winner else []
    vs_tuned = next((c for c in comparisons if c.against == TUNED_BASELINE), None)
    nonfinite = reference_nonfinite(source.io.outputs, source.sample_outputs)
    result = Result(
        model=source.name, objective=study.objective, outcomes=tuple(outcomes), winner=winner,
        baseline=roles.get("baseline"), speedup=vs_tuned.ratio if vs_tuned else None,
        repository=(out / "model_repository" / slug(source.name)) if winner else None,
        report=out / "report.json", environment=env.snapshot(), finalists=tuple(finalists),
        comparisons=tuple(comparisons), serving=served,
        notes=tuple(n for n in [*source.notes, *notes, why, *dropped, tie, *deploy_notes, traced.note(outcomes),
                                objectives.infeasible_note(goal, objectives.remeasured(
                                    search.outcomes(comparable=True), finalists)),
                                *nonfinite_notes(nonfinite)] if n),
        unavailable={c.name: c.reason for c in staged.candidates if c.reason}, source=staged.record,
        settings=study, local=local, study_elapsed_s=round(search.elapsed(), 1),
        study=search.summary() if search.storage.shared else None,
        cache=CacheStats(ctx.cache.hits, ctx.cache.misses), source_nonfinite=nonfinite,
        engines=headline.engines(winner.config.path, registry.get(winner.config.path).engine, source.kind,
                                 backend) if winner else {},
        spend=spend.per_path(outcomes, [p for p, _ in search.deferred.values()],
                             [label.split()[0] for label in search.skipped]),
        phases={k: round(v, 1) for k, v in phases.items()})
    result = report.completed(result)
    report.write(result, out)
    store.save(search.study, result)  # `navigator report DIR` rebuilds the reports from the study
    return result


def launch(model: Any, inputs: Any, study: StudySettings, *, out: str | Path | None, progress: bool,
           memory_bytes: int | None, input_spec: str | None, input_data: str | Path | None, trust_pickle: bool,
           force: bool, shared: StudyStorage | None, serving: ServingOptions, asked: tuple[int, ...] | None,
           enqueue: dict[str, tuple[str, dict[str, Any]]] | None = None,
           watch: Callable[[StudySettings], Callable[[TrialOutcome], None]] | None = None,
           started: float | None = None, metric: Callable[[Any], float] | None = None,
           calibration: Any = None) -> Result:
    """Load the source and run the study with the settings `navigator.optimize` parsed. `asked`: the batch
    sizes the caller asked for (None: the samples' rows, for a dynamic-batch model); what the model can
    take is decided once it is loaded, as are the default `out` and the noise tolerance. `watch` makes
    the callback told of each trial from the study's complete settings (the metric's value on the source
    is one of them, measured here)."""
    if serving.active:  # before the search, not after it
        from navigator.triton.server import find

        find("tritonserver"), find("perf_analyzer")
    for name in study.paths or ():
        registry.get(name)  # an unknown path name is an InputError before anything loads
    try:
        source = load_source(model, sample_inputs=inputs, input_spec=input_spec,
                             input_data=Path(input_data) if input_data else None, trust_pickle=trust_pickle,
                             batch=max(study.batch_sizes), calibration=calibration)
    except (UntrustedPickleError, InvalidModelError):
        raise
    except InputError as exc:  # the model (or its inputs) did not load: `navigator check` exits 3 on it
        raise InvalidModelError(str(exc)) from exc
    batches = searched_batches(source.io, source.samples, asked)
    dropped = sorted(set(asked or ()) - set(batches))
    notes: tuple[str, ...] = (f"batch sizes {', '.join(map(str, dropped))} not searched: the model has no dynamic batch axis, "
             "so one call is one inference (batch 1)",) if dropped else ()
    notes += calibration_notes(source, study)
    for note in source.notes:  # also in the report's notes
        print(f"navigator: warning: {note}", file=sys.stderr)
    target = Path(out) if out else Path("navigator-out") / slug(source.name)
    check_out(target, force, shared is not None)
    study = replace(study, batch_sizes=batches, noise_atol=2 * nondeterminism(source))
    if metric is not None:  # its value on the source, once; a metric failing there is the user's to fix
        from navigator.source.metric import on_source

        study = replace(study, metric_source=on_source(metric, source))
    local = LocalSettings(target, progress, memory_bytes)
    try:
        return run(source, study, local, watch(study) if watch else None, enqueue, storage=shared,
                   serving=serving, notes=notes, started=started, metric=metric)
    except KeyboardInterrupt:
        raise study_storage.interrupted(shared or study_storage.default(target)) from None


def calibration_notes(source: ModelSource, study: StudySettings) -> tuple[str, ...]:
    """What the report says of the INT8 paths' calibration inputs, where the study searches such a path."""
    int8 = [name for name in registry.calibrating(source.framework, study.device, study.paths)
            if registry.get(name).available() is None]  # not a path that cannot run here (TensorRT)
    if not int8 or source.calibration is not None:
        return ()
    from navigator.paths.base import NO_CALIBRATION

    if not source.calibratable:  # the paths that only calibrate are listed as not searched, with this reason
        partly = [name for name in int8 if not registry.only_calibrated(registry.get(name))]
        return (f"{', '.join(partly)}: their INT8 trials are refused: {NO_CALIBRATION}",) if partly else ()
    return (f"{', '.join(int8)}: calibrated on the validation inputs (no --calibration-data given); "
            "a model calibrated and validated on the same inputs may do worse on others",)


def check_out(out: Path, force: bool, shared: bool = False) -> None:
    """An output directory is new, empty, or one of navigator's (then its study continues; a worker of a
    shared study keeps its cache and logs there)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a directory")
    study_db = (out / "study.db").is_file()
    ours = study_db or (shared and any((out / name).exists() for name in ("cache", "logs", "report.json")))
    if out.is_dir() and any(out.iterdir()) and not ours and not force:
        raise InputError(f"--out {out} holds other files and no navigator study; pass --force to write there")
    if force and study_db and not shared:
        (out / "study.db").unlink()  # start the study over; cached conversions stay valid by their keys
    probe = out if out.is_dir() else next((p for p in out.resolve().parents if p.exists()), Path("."))
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write in {probe} ({exc.strerror})") from None


def nondeterminism(source: ModelSource) -> float:
    """Largest difference between two identical runs of the source model (0.0 when deterministic): the
    run load_source made, and one more."""
    first, second = source.sample_outputs, source.reference(source.samples)
    from navigator.trial.validate import finite_difference

    diffs = [finite_difference(a, b) for a, b in zip(first, second)]
    return max(diffs, default=0.0)


__all__ = ["launch", "run", "finish", "stage", "Stage", "NavigatorError"]
