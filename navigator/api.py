"""The one orchestration page: source -> search -> Triton repository -> report."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from navigator import env
from navigator import paths as registry
from navigator.errors import (InputError, InvalidModelError, NavigatorError, UnavailableError,
                              UntrustedPickleError)
from navigator.records import (MEASURED, TUNED_BASELINE, Comparison, Finalist, Result, ServingReport,
                               TrialConfig, TrialOutcome, WorkerSpec, from_dict, to_dict)
from navigator.search import storage as study_storage
from navigator.search.finalists import compare_all, pick, score, tuned_baseline
from navigator.trial import traced
from navigator.search.storage import StudyStorage
from navigator.serving import ServingOptions, parse_concurrency, save_validation
from navigator.settings import (OptimizeSettings, default_memory_cap, parse_batch_sizes, parse_budget,
                                parse_memory)
from navigator.source import ModelSource, load_source
from navigator.source.iospec import searched_batches



def slug(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_")
    return cleaned or "model"


def rank(outcomes: list[TrialOutcome], objective: str) -> list[TrialOutcome]:
    """Valid trials, best first: stable ones, then (only as a fallback) unstable ones."""
    def value(o: TrialOutcome) -> tuple[bool, float]:
        assert o.bench is not None
        return o.status == "ok", o.bench.throughput if objective == "throughput" else -o.bench.p99_ms

    return sorted((o for o in outcomes if o.status in MEASURED), key=value, reverse=True)


def _compare(winner: TrialOutcome | None, finalists: list[Finalist], objective: str) -> list[Comparison]:
    """The winner against every baseline role and against the runner-up, from the interleaved rounds."""
    return compare_all(winner.config.number, finalists, objective) if winner else []


def _deploy(source: ModelSource, ctx: Any, ranked: list[TrialOutcome], settings: OptimizeSettings,
            repository: Path, python: bool = False, worker: Any = None) -> tuple[TrialOutcome | None, list[str], str]:
    """Write the best trial that can be served (as its python-backend twin with `python`); a winner whose
    Triton export fails yields to the next. A dynamic-batch model's max_batch_size is the largest batch
    the trial validates at (trial/served.py), checked in `worker`. Also returns the written backend."""
    from navigator.paths.base import TritonTarget
    from navigator.records import ServingConfig
    from navigator.triton.deployment import Deployment
    from navigator.trial.run import convert, one_line
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
               settings: OptimizeSettings, search: Any, progress: Any = None) -> tuple[list[Finalist], str]:
    """Re-measure the top trials and the baselines interleaved in the worker, in as many rounds as the
    budget has room for; ([], why) if it fails. Where no trial ran since the last re-measurement, its
    finalists are reused (a rerun changes nothing)."""
    from navigator.search.budget import finalists_cost
    from navigator.search.study import FINALIST_ROLES, USER_ROLE
    from navigator.trial.isolate import WorkerDied

    chosen_from = sorted(o.config.number for o in ranked)
    stored = search.stored_finalists(chosen_from)
    if stored is not None:
        return stored, "finalists: no trial ran since they were re-measured; their rounds are reused"
    measured = {r: o for r, o in roles.items()
                if r in FINALIST_ROLES or r == TUNED_BASELINE or r.startswith(USER_ROLE)}
    chosen = pick(ranked, measured, settings.finalists)
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
    finalists = sorted((from_dict(Finalist, f) for f in raw), key=lambda f: score(f, settings.objective), reverse=True)
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
    atol, rtol = serving.tolerances_of(to_dict(winner.validation.outputs) if winner.validation else [])
    return serving.run(model_dir, inputs, reference, atol, rtol, batch_size, options, out / "serving")


def run(source: ModelSource, settings: OptimizeSettings, on_trial: Callable[[TrialOutcome], None] | None = None,
        enqueue: dict[str, tuple[str, dict[str, Any]]] | None = None, storage: StudyStorage | None = None,
        wall_s: float | None = None, join: bool = False, serving: ServingOptions | None = None,
        notes: tuple[str, ...] = (), own_trials: int | None = None, started: float | None = None) -> Result:
    """Search, deploy the winner and write the reports for an already loaded source.

    `storage`: a shared study (default: SQLite in the output directory); `join`: this process joins it as
    a worker with the settings its creator published (it publishes none); `wall_s`: this worker's own
    time limit; `own_trials`: its own trial cap. In a shared study, only the last worker to finish picks
    the winner and writes the repository and report; the others return their trials with `report` None.
    `serving`: how the winner is deployed and whether a real server checks, measures and tunes it;
    `notes` go into the report. `started`: when the run began (monotonic; default now), the start of
    its budget."""
    from navigator.progress import Progress
    from navigator.search.study import Search
    from navigator.source import materialize
    from navigator.cache import Cache
    from navigator.trial.isolate import TrialWorker
    from navigator.trial.run import TrialContext

    candidates = registry.candidates(source.framework, settings.device, settings.paths)
    usable = [c.name for c in candidates if c.reason is None]
    if not usable:
        raise UnavailableError("no conversion path can run here: " +
                               "; ".join(f"{c.name}: {c.reason}" for c in candidates))
    out = settings.out
    new_out = next((p for p in [*reversed(out.absolute().parents), out.absolute()] if not p.exists()), None)
    out.mkdir(parents=True, exist_ok=True)
    try:
        model, spec_text, data, trust = materialize(source, out / "source")
        search = Search(storage or study_storage.default(out), settings, (source.framework, source.kind), usable,
                        source.fingerprint, enqueue,
                        publish=published(settings, model, spec_text, data) if storage and not join else None,
                        started=started)
    except NavigatorError:  # e.g. a shared study of another model: leave no output behind
        if new_out is not None:
            shutil.rmtree(new_out, ignore_errors=True)
        raise
    ctx = TrialContext(source, Cache(out / "cache", source.fingerprint), settings)
    spec = WorkerSpec(model, source.name, source.fingerprint, spec_text, data, trust, max(settings.batch_sizes),
                      str(ctx.cache.root))
    with TrialWorker(spec, settings, out / "logs" / "worker.log") as worker:
        with Progress(settings, search.budget, enabled=settings.show_progress) as bar:
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
                return Result(model=source.name, objective=settings.objective, outcomes=tuple(search.outcomes()),
                              winner=None, baseline=None, speedup=None, repository=None, report=None,
                              environment=env.snapshot())
            notes = (*notes, *search.notes, *bar.warnings, *search.seen.notes(), *search.cost_notes())
            result = finish(source, settings, search, ctx, worker, candidates, notes, serving=serving,
                            materialized=(model, spec_text, data, trust), progress=bar)
        search.save_spent()
        return result


def published(settings: OptimizeSettings, model: str, input_spec: str | None, data: str | None) -> dict[str, Any]:
    """What a worker joining a shared study reads from it besides its own model file: the search settings
    (the latest `optimize` sets them) and where the creator's model and inputs are."""
    machine = ("out", "show_progress", "memory_bytes")  # each worker's own
    return {"settings": {k: v for k, v in to_dict(settings).items() if k not in machine},
            "source": {"model": str(Path(model).resolve()), "input_spec": input_spec,
                       "input_data": str(Path(data).resolve()) if data else None}}


def finish(source: ModelSource, settings: OptimizeSettings, search: Any, ctx: Any, worker: Any,
           candidates: list[Any], notes: tuple[str, ...] = (), serving: ServingOptions | None = None,
           materialized: tuple[str, str | None, str | None, bool] | None = None, progress: Any = None) -> Result:
    """From the study's trials (every worker's): the finalists re-measured in `worker` (None: not
    re-measured, the trials' own figures decide), the winner deployed (and served, with `serving`),
    the reports written. `materialized`: the source as saved for the trial workers (materialize()'s
    answer), recorded in the report so that the model can be found again. `progress` shows the phases."""
    from navigator.report import build as report
    from navigator.report import headline, spend
    from navigator.source import materialize

    model, spec_text, data, trust = materialized or materialize(source, settings.out / "source")
    if trust:  # this process loaded the model with trust (or wrote it): runner() here may load it again
        from navigator.results import vouch

        vouch(model)

    out = settings.out
    outcomes = sorted(search.outcomes() + search.interrupted(), key=lambda o: o.config.number)
    by_number = {o.config.number: o for o in outcomes}
    roles = {role: by_number[n] for role, n in search.roles().items() if n in by_number}
    ranked = rank(search.outcomes(comparable=True), settings.objective)
    phases = {"search": time.monotonic() - search.budget.started}
    tuned = tuned_baseline(ranked, roles.get("baseline"))
    if tuned is not None:
        roles[TUNED_BASELINE] = tuned
    finalists, why = _finalists(worker, ranked, roles, settings, search, progress) if ranked and worker else ([], "")
    phases["finalists"] = time.monotonic() - search.budget.started - phases["search"]
    if progress is not None:
        progress.phase("deploying", 0.0)
    first = [by_number[f.number] for f in finalists]  # deploy in the finalists' order, then the rest
    serving = serving or ServingOptions()
    winner, deploy_notes, backend = _deploy(source, ctx, first + [o for o in ranked if o not in first], settings,
                                            out / "model_repository", python=serving.deployment == "python",
                                            worker=worker)
    save_validation(out / "validation", source.samples, source.io.outputs, source.sample_outputs)
    served = None
    if winner is not None and serving.active:
        try:
            served = _serve(out, winner, max(settings.batch_sizes), serving)
        except NavigatorError as exc:  # the search's result stands; the report says what the server did
            served = ServingReport(serving.deployment, slug(source.name), notes=(f"serving failed: {exc}",))
    phases["deploy"] = time.monotonic() - search.budget.started - phases["search"] - phases["finalists"]
    comparisons = _compare(winner, finalists, settings.objective)
    baseline = roles.get("baseline")
    vs_tuned = next((c for c in comparisons if c.against == TUNED_BASELINE), None)
    result = Result(
        model=source.name, objective=settings.objective, outcomes=tuple(outcomes), winner=winner,
        baseline=baseline, speedup=vs_tuned.ratio if vs_tuned else None,
        repository=(out / "model_repository" / slug(source.name)) if winner else None,
        report=out / "report.json", environment=env.snapshot(), finalists=tuple(finalists),
        comparisons=tuple(comparisons), serving=served,
        spend=spend.per_path(outcomes, [p for p, _ in search.deferred.values()],
                             [label.split()[0] for label in search.skipped]),
        phases={k: round(v, 1) for k, v in phases.items()})
    from navigator.trial.validate import nonfinite_notes, reference_nonfinite

    nonfinite = reference_nonfinite(source.io.outputs, source.sample_outputs)
    extra = {"notes": [n for n in [*source.notes, *notes, why, *deploy_notes, traced.note(outcomes),
                                   *nonfinite_notes(nonfinite)] if n],
             "source_nonfinite": nonfinite,
             "engines": headline.engines(winner.config.path, source.kind, backend) if winner else {},
             "cache": {"hits": ctx.cache.hits, "misses": ctx.cache.misses},
             "unavailable": {c.name: c.reason for c in candidates if c.reason},
             "source": {"model": str(Path(model).resolve()), "input_spec": spec_text,
                        "input_data": str(Path(data).resolve()) if data else None,
                        "trust_pickle": trust, "fingerprint": source.fingerprint if source.file else None},
             "settings": {"budget_s": settings.budget_s, "trials": settings.trials, "sampler": settings.sampler,
                          "batch_sizes": list(settings.batch_sizes), "objective": settings.objective,
                          "finalists": settings.finalists, "rounds": settings.rounds, "window_s": settings.window_s,
                          "trial_timeout_s": settings.trial_timeout_s, "memory_bytes": settings.memory_bytes,
                          "window_calls": settings.window_calls, "noise_atol": settings.noise_atol,
                          "triton_server": settings.triton_server, "dynamic_batching": settings.dynamic_batching,
                          "allow_traced": settings.allow_traced,
                          "study_elapsed_s": round(search.elapsed(), 1)}}
    if search.storage.shared:
        extra["study"] = search.summary()
    report.write(result, out, extra)
    from navigator.report import store

    store.save(search.study, result, extra)  # `navigator report DIR` rebuilds the reports from the study
    return result


def optimize(model: Any, sample_inputs: Any = None, *, budget: str | float = "10m", out: str | Path | None = None,
             trials: int | None = None, batch_size: str | int | None = 1, objective: str = "throughput",
             sampler: str = "tpe", paths: list[str] | None = None, input_spec: str | None = None,
             input_data: str | Path | None = None, trust_pickle: bool = False, atol: float | None = None,
             rtol: float | None = None, progress: bool = True, window_s: float = 0.25,
             trial_timeout: str | float | None = None, trial_memory: str | int | None = "default",
             window_calls: int = 0, screen: bool = True, force: bool = False, device: str = "auto",
             enqueue: dict[str, tuple[str, dict[str, Any]]] | None = None,
             on_trial: Callable[[TrialOutcome], None] | None = None, storage: str | None = None,
             study: str | None = None, heartbeat: int = 10, serving: str = "native", serve_check: bool = False,
             tune_serving: bool = False, serving_budget: str | float = "2m", concurrency: str = "1,4",
             latency_limit_ms: float | None = None,
             triton_server: str | None = None, dynamic_batching: bool = True, allow_traced: bool = False) -> Result:
    """Find the fastest correct way to serve `model` on Triton.

    Args:
        model: a live nn.Module / ScriptModule / ExportedProgram, or a model file path (.pt, .pt2, .onnx,
            a TensorFlow SavedModel directory or .keras file, an XGBoost .json/.ubj, a LightGBM text
            model, a scikit-learn forest as .skops or, with trust_pickle, a pickle).
        sample_inputs: example inputs for a live model (tensor, tuple of tensors or dict name -> tensor);
            they are the validation data.
        budget: wall-clock budget of the whole study ('90s', '10m', '2h'), summed over reruns.
        out: output directory (default ./navigator-out/<model name>); rerunning continues its study.
        trials: cap on the study's number of trials.
        batch_size: 'N', 'LOW:HIGH' (powers of two searched) or 'N,M,...'; None: the rows of the sample
            inputs (a dynamic-batch model), else 1. A model without a dynamic batch axis takes batch 1 only.
        objective: 'throughput' (inferences/s, maximised) or 'latency' (p99 ms, minimised).
        sampler: 'tpe', 'random' or 'grid'.
        paths: conversion paths to search (default: all available).
        trial_timeout: limit of one trial ('90s', '10m'); default: each path's own.
        trial_memory: address-space cap of the trial worker ('8G'; '0' or None: none; default 80% of RAM).
        window_calls: count-based benchmark windows of this many calls (default: time windows of window_s).
        screen: once 3 trials are measured, measure a new one in full only where its short first
            measurement comes within 15% of the third best (the others are recorded as `screened`).
        device: 'cpu', 'cuda' or 'auto' (cuda when PyTorch sees a GPU).
        enqueue: configurations to try first and re-measure beside the winner, as
            {name: (path, {param: value})}, unnamed params at their defaults.
        force: use an output directory that holds other files, or start over where it holds another study.
        triton_server: the Triton release the config targets ('25.02'; default: a current server). Before
            25.03 a TensorFlow winner may be written for tensorflow_savedmodel; before 25.09 FIL configs
            use the old parameter names (output_class, algo, threads_per_tree).
        allow_traced: let a traced artifact win although tracing found control flow that depends on the
            input values (it is still validated on perturbed inputs).
        on_trial: called with each TrialOutcome as it finishes.
        storage, study: a database URL (postgresql://user@host/db) and a study name: create or join a study
            that several workers share (`navigator worker`); default: SQLite in `out`.
        heartbeat: seconds between a shared study's heartbeats; a worker silent for 3 is dead and its trial
            is retried by the others.
        serving: 'native' (the runtime's own Triton backend, default) or 'python' (a python-backend
            model.py running the same artifact with the same settings, for servers without that backend).
        serve_check: serve the written repository with a real tritonserver, compare its HTTP and gRPC answers
            with the source framework's and measure it with perf_analyzer over `concurrency`.
        tune_serving: also search max_batch_size, dynamic batching, instance count and per-instance threads
            for `serving_budget`, maximising throughput within `latency_limit_ms` (p99); the best is written.
        concurrency: perf_analyzer concurrencies, 'N,M' or 'LOW:HIGH' (powers of two).
        dynamic_batching: write `dynamic_batching {}` (Triton's batcher, no queue delay) in the config of a
            model with max_batch_size > 0; False leaves it out and the serving search keeps it off.

    Returns:
        Result with every trial, the winner (`result.best`), the repository and report paths.

    Raises:
        NavigatorError: bad model, inputs or settings (InputError), nothing can run (UnavailableError),
            or the output directory holds another study (StudyMismatchError).
    """
    started = time.monotonic()  # the budget covers the whole run, loading the model included
    asked = parse_batch_sizes(batch_size) if batch_size is not None else None
    settings_args = dict(budget_s=parse_budget(budget), trials=trials, batch_sizes=asked or (1,),
                         objective=objective, sampler=sampler, paths=tuple(paths) if paths else None,
                         atol=atol, rtol=rtol, show_progress=progress, window_s=window_s,
                         trial_timeout_s=parse_budget(trial_timeout) if trial_timeout is not None else None,
                         memory_bytes=None if device == "cuda" else (
                             default_memory_cap() if trial_memory == "default" else parse_memory(trial_memory)),
                         window_calls=window_calls, screen=screen, device=env.default_device() if device == "auto" else device,
                         triton_server=triton_server, dynamic_batching=dynamic_batching, allow_traced=allow_traced)
    OptimizeSettings(out=Path("."), **settings_args)  # type: ignore[arg-type]  # check the settings before loading anything
    shared = study_storage.shared(storage, study, heartbeat)
    serving_options = ServingOptions(serving, serve_check or tune_serving, tune_serving, parse_budget(serving_budget),
                                     parse_concurrency(concurrency), latency_limit_ms,
                                     dynamic_batching=dynamic_batching)
    if serving_options.active:  # before the search, not after it
        from navigator.triton.server import find

        find("tritonserver"), find("perf_analyzer")
    for name in paths or ():
        registry.get(name)  # an unknown path name is an InputError before anything loads
    try:
        source = load_source(model, sample_inputs=sample_inputs, input_spec=input_spec,
                             input_data=Path(input_data) if input_data else None, trust_pickle=trust_pickle,
                             batch=max(settings_args["batch_sizes"]))  # type: ignore[arg-type]
    except (UntrustedPickleError, InvalidModelError):
        raise
    except InputError as exc:  # the model (or its inputs) did not load: `navigator check` exits 3 on it
        raise InvalidModelError(str(exc)) from exc
    settings_args["batch_sizes"] = searched_batches(source.io, source.samples, asked)
    dropped = sorted(set(asked or ()) - set(settings_args["batch_sizes"]))  # type: ignore[arg-type]
    notes = (f"batch sizes {', '.join(map(str, dropped))} not searched: the model has no dynamic batch axis, "
             "so one call is one inference (batch 1)",) if dropped else ()
    for note in source.notes:  # also in the report's notes
        print(f"navigator: warning: {note}", file=sys.stderr)
    target = Path(out) if out else Path("navigator-out") / slug(source.name)
    check_out(target, force, shared is not None)
    noise = nondeterminism(source)
    settings = OptimizeSettings(out=target, noise_atol=2 * noise, **settings_args)  # type: ignore[arg-type]
    try:
        return run(source, settings, on_trial, enqueue, storage=shared, serving=serving_options, notes=notes,
                   started=started)
    except KeyboardInterrupt:
        raise study_storage.interrupted(shared or study_storage.default(target)) from None


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


__all__ = ["optimize", "run", "NavigatorError"]
