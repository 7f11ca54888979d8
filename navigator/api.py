"""The one orchestration page: source -> search -> Triton repository -> report."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from navigator import env
from navigator import paths as registry
from navigator.errors import InputError, NavigatorError, UnavailableError
from navigator.records import (BROKEN, MEASURED, Comparison, Finalist, Result, ServingReport, TrialConfig,
                               TrialOutcome, WorkerSpec, from_dict, to_dict)
from navigator.search import storage as study_storage
from navigator.search.finalists import compare, is_top, pick, score
from navigator.trial import traced
from navigator.search.storage import StudyStorage
from navigator.serving import ServingOptions, parse_concurrency, save_validation
from navigator.settings import (OptimizeSettings, default_memory_cap, parse_batch_sizes, parse_budget,
                                parse_memory)
from navigator.source import ModelSource, load_source



def _slug(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_")
    return cleaned or "model"


def _rank(outcomes: list[TrialOutcome], objective: str) -> list[TrialOutcome]:
    """Valid trials, best first: stable ones, then (only as a fallback) unstable ones."""
    def value(o: TrialOutcome) -> tuple[bool, float]:
        assert o.bench is not None
        return o.status == "ok", o.bench.throughput if objective == "throughput" else -o.bench.p99_ms

    return sorted((o for o in outcomes if o.status in MEASURED), key=value, reverse=True)


def _compare(winner: TrialOutcome | None, finalists: list[Finalist], objective: str) -> list[Comparison]:
    """The winner against every baseline role and against the runner-up, from the interleaved rounds."""
    mine = next((f for f in finalists if winner and f.number == winner.config.number), None)
    if mine is None:
        return []
    others = [f for f in finalists if f is not mine]
    runner_up = next((f for f in others if is_top(f.role)), None)
    picked = [f for f in others if not is_top(f.role) or "," in f.role]
    if runner_up is not None:
        picked.append(Finalist(runner_up.number, runner_up.path, "runner-up", runner_up.throughput, runner_up.p99_ms))
    return [compare(mine, f, objective) for f in picked]


def _deploy(source: ModelSource, ctx: Any, ranked: list[TrialOutcome], settings: OptimizeSettings,
            repository: Path, python: bool = False) -> tuple[TrialOutcome | None, list[str]]:
    """Write the best trial that can be served (as its python-backend twin with `python`); a winner whose
    Triton export fails yields to the next."""
    from navigator.records import ServingConfig
    from navigator.triton.deployment import Deployment
    from navigator.trial.run import convert, one_line

    notes = []
    for o in ranked:
        try:
            artifact = convert(ctx, o.config)
            module, params = registry.get(o.config.path), {**o.config.convert, **o.config.runtime}
            # A path whose config depends on the server release (deprecated backends, renamed keys).
            for_server = getattr(module, "triton_for_server", None)
            model = for_server(artifact, params, settings.triton_server) if for_server and settings.triton_server \
                else module.triton(artifact, params)
            deployment = Deployment(_slug(source.name), model.io or source.io, model,
                                    ServingConfig(max(settings.batch_sizes)))
            (deployment.python() if python else deployment).write(repository)
            notes += [f"warning: {w}" for w in model.warnings]
            return o, notes
        except Exception as exc:  # a path's Triton export failing: record it, try the runner-up
            notes.append(f"trial {o.config.number} ({o.config.path}) not deployable: {one_line(exc)}")
    return None, notes


def _finalists(worker: Any, ranked: list[TrialOutcome], roles: dict[str, TrialOutcome],
               settings: OptimizeSettings) -> tuple[list[Finalist], str]:
    """Re-measure the top trials and the baselines interleaved in the worker; ([], why) if it fails."""
    from navigator.search.study import FINALIST_ROLES, USER_ROLE, finalist_cost, finalist_rounds
    from navigator.trial.isolate import WorkerDied

    measured = {r: o for r, o in roles.items() if r in FINALIST_ROLES or r.startswith(USER_ROLE)}
    chosen = pick(ranked, measured, settings.finalists)
    rounds = finalist_rounds(settings)
    request = {"op": "remeasure", "rounds": rounds, "chosen": [[r, to_dict(o)] for r, o in chosen]}
    # A window lasts window_s, or MIN_CALLS_PER_WINDOW calls of the slowest finalist when those take
    # longer (a batch of 1024 images on a CPU): the timeout grows with it.
    from navigator.trial.bench import MIN_CALLS_PER_WINDOW

    slowest = max((o.bench.mean_ms / 1e3 for _, o in chosen if o.bench), default=0.0)
    stretch = max(1.0, MIN_CALLS_PER_WINDOW * slowest / settings.window_s)
    try:
        raw = worker.call(request, timeout=10 * finalist_cost(settings, rounds) * stretch + 60)
    except (WorkerDied, RuntimeError) as exc:
        return [], f"finalists not re-measured: {exc}"
    finalists = [from_dict(Finalist, f) for f in raw]
    return sorted(finalists, key=lambda f: score(f, settings.objective), reverse=True), ""


def _trial_runner(worker: Any, settings: OptimizeSettings, done: list[TrialOutcome],
                  remaining: Callable[[], float]) -> Callable[[TrialConfig], TrialOutcome]:
    """Runs trials in the worker; an exact repeat of a configuration that crashed, hung, failed or gave
    wrong outputs is not run again (a hang would cost the whole timeout each time). A trial may not
    outlast the budget left (a minute at least): compile and conversion time count against it."""
    def key(c: TrialConfig) -> str:
        return json.dumps([c.path, c.convert, c.runtime, c.batch_size], sort_keys=True)

    bad = {key(o.config): o for o in done if o.status in BROKEN}

    def run(config: TrialConfig) -> TrialOutcome:
        if key(config) in bad:
            old = bad[key(config)]
            return replace(old, config=config, error=f"same as trial {old.config.number}: {old.error}",
                           duration_s=0.0)
        timeout = min(settings.trial_timeout_s or registry.get(config.path).TIMEOUT_S, max(60.0, remaining()))
        outcome = worker.run(config, timeout)
        if outcome.status in BROKEN:
            bad[key(config)] = outcome
        return outcome

    return run


def _serve(out: Path, winner: TrialOutcome, batch_size: int, options: ServingOptions) -> ServingReport:
    """The serving stage on the written repository, with the winner's validation tolerances."""
    from navigator import serving

    inputs, reference = serving.load_validation(out / "validation")
    model_dir = next(d for d in (out / "model_repository").iterdir() if d.is_dir())
    atol, rtol = serving.tolerances_of(to_dict(winner.validation.outputs) if winner.validation else [])
    return serving.run(model_dir, inputs, reference, atol, rtol, batch_size, options, out / "serving")


def run(source: ModelSource, settings: OptimizeSettings, on_trial: Callable[[TrialOutcome], None] | None = None,
        enqueue: dict[str, tuple[str, dict[str, Any]]] | None = None, storage: StudyStorage | None = None,
        wall_s: float | None = None, join: bool = False, serving: ServingOptions | None = None) -> Result:
    """Search, deploy the winner and write the reports for an already loaded source.

    `storage`: a shared study (default: SQLite in the output directory); `join`: this process joins it as
    a worker with the settings its creator published (it publishes none); `wall_s`: this worker's own
    time limit. In a shared study, only the last worker to finish picks the winner and writes the
    repository and report; the others return their trials with `report` None. `serving`: how the winner
    is deployed and whether a real server checks, measures and tunes it."""
    from navigator.progress import Progress
    from navigator.search.study import Search
    from navigator.source import materialize
    from navigator.trial.cache import Cache
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
                        publish=published(settings, model, spec_text, data) if storage and not join else None)
    except NavigatorError:  # e.g. a shared study of another model: leave no output behind
        if new_out is not None:
            shutil.rmtree(new_out, ignore_errors=True)
        raise
    ctx = TrialContext(source, Cache(out / "cache", source.fingerprint), settings)
    spec = WorkerSpec(model, source.name, source.fingerprint, spec_text, data, trust, max(settings.batch_sizes),
                      str(ctx.cache.root))
    with TrialWorker(spec, settings, out / "logs" / "worker.log") as worker:
        with Progress(settings, search.elapsed(), enabled=settings.show_progress) as bar:
            def tick(outcome: TrialOutcome) -> None:
                bar.update(outcome)
                if on_trial:
                    on_trial(outcome)

            search.run(_trial_runner(worker, settings, search.outcomes(), search.remaining), tick, wall_s)
        if search.storage.shared and search.running_elsewhere():  # not the last worker: no report
            return Result(model=source.name, objective=settings.objective, outcomes=tuple(search.outcomes()),
                          winner=None, baseline=None, speedup=None, repository=None, report=None,
                          environment=env.snapshot())
        return finish(source, settings, search, ctx, worker, candidates, serving=serving,
                      materialized=(model, spec_text, data, trust))


def published(settings: OptimizeSettings, model: str, input_spec: str | None, data: str | None) -> dict[str, Any]:
    """What a worker joining a shared study reads from it besides its own model file: the search settings
    (the latest `optimize` sets them) and where the creator's model and inputs are."""
    machine = ("out", "show_progress", "memory_bytes")  # each worker's own
    return {"settings": {k: v for k, v in to_dict(settings).items() if k not in machine},
            "source": {"model": str(Path(model).resolve()), "input_spec": input_spec,
                       "input_data": str(Path(data).resolve()) if data else None}}


def finish(source: ModelSource, settings: OptimizeSettings, search: Any, ctx: Any, worker: Any,
           candidates: list[Any], notes: tuple[str, ...] = (), serving: ServingOptions | None = None,
           materialized: tuple[str, str | None, str | None, bool] | None = None) -> Result:
    """From the study's trials (every worker's): the finalists re-measured in `worker` (None: not
    re-measured, the trials' own figures decide), the winner deployed (and served, with `serving`),
    the reports written. `materialized`: the source as saved for the trial workers (materialize()'s
    answer), recorded in the report so that the model can be found again."""
    from navigator.report import build as report
    from navigator.source import materialize

    model, spec_text, data, trust = materialized or materialize(source, settings.out / "source")

    out = settings.out
    outcomes = search.outcomes()
    by_number = {o.config.number: o for o in outcomes}
    roles = {role: by_number[n] for role, n in search.roles().items() if n in by_number}
    ranked = _rank(search.outcomes(comparable=True), settings.objective)
    finalists, why = _finalists(worker, ranked, roles, settings) if ranked and worker else ([], "")
    first = [by_number[f.number] for f in finalists]  # deploy in the finalists' order, then the rest
    serving = serving or ServingOptions()
    winner, deploy_notes = _deploy(source, ctx, first + [o for o in ranked if o not in first], settings,
                                   out / "model_repository", python=serving.deployment == "python")
    save_validation(out / "validation", source.samples, source.io.outputs, source.sample_outputs)
    served = None
    if winner is not None and serving.active:
        try:
            served = _serve(out, winner, max(settings.batch_sizes), serving)
        except NavigatorError as exc:  # the search's result stands; the report says what the server did
            served = ServingReport(serving.deployment, _slug(source.name), notes=(f"serving failed: {exc}",))
    comparisons = _compare(winner, finalists, settings.objective)
    baseline = roles.get("baseline")
    vs_base = next((c for c in comparisons if c.against.endswith("baseline")), None)
    result = Result(
        model=source.name, objective=settings.objective, outcomes=tuple(outcomes), winner=winner,
        baseline=baseline, speedup=vs_base.ratio if vs_base else (1.0 if winner and winner is baseline else None),
        repository=(out / "model_repository" / _slug(source.name)) if winner else None,
        report=out / "report.json", environment=env.snapshot(), finalists=tuple(finalists),
        comparisons=tuple(comparisons), serving=served)
    extra = {"notes": [n for n in [*notes, why, *deploy_notes, traced.note(outcomes)] if n],
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
                          "triton_server": settings.triton_server, "allow_traced": settings.allow_traced,
                          "study_elapsed_s": round(search.elapsed(), 1)}}
    if search.storage.shared:
        extra["study"] = search.summary()
    report.write(result, out, extra)
    from navigator.report import store

    store.save(search.study, result, extra)  # `navigator report DIR` rebuilds the reports from the study
    return result


def optimize(model: Any, sample_inputs: Any = None, *, budget: str | float = "10m", out: str | Path | None = None,
             trials: int | None = None, batch_size: str | int = 1, objective: str = "throughput",
             sampler: str = "tpe", paths: list[str] | None = None, input_spec: str | None = None,
             input_data: str | Path | None = None, trust_pickle: bool = False, atol: float | None = None,
             rtol: float | None = None, progress: bool = True, window_s: float = 0.25,
             trial_timeout: str | float | None = None, trial_memory: str | int | None = "default",
             window_calls: int = 0, force: bool = False, device: str = "auto",
             enqueue: dict[str, tuple[str, dict[str, Any]]] | None = None,
             on_trial: Callable[[TrialOutcome], None] | None = None, storage: str | None = None,
             study: str | None = None, heartbeat: int = 10, serving: str = "native", serve_check: bool = False,
             tune_serving: bool = False, serving_budget: str | float = "2m", concurrency: str = "1,4",
             latency_limit_ms: float | None = None,
             triton_server: str | None = None, allow_traced: bool = False) -> Result:
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
        batch_size: 'N', 'LOW:HIGH' (powers of two searched) or 'N,M,...'.
        objective: 'throughput' (inferences/s, maximised) or 'latency' (p99 ms, minimised).
        sampler: 'tpe', 'random' or 'grid'.
        paths: conversion paths to search (default: all available).
        trial_timeout: limit of one trial ('90s', '10m'); default: each path's own.
        trial_memory: address-space cap of the trial worker ('8G'; '0' or None: none; default 80% of RAM).
        window_calls: count-based benchmark windows of this many calls (default: time windows of window_s).
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

    Returns:
        Result with every trial, the winner (`result.best`), the repository and report paths.

    Raises:
        NavigatorError: bad model, inputs or settings (InputError), nothing can run (UnavailableError),
            or the output directory holds another study (StudyMismatchError).
    """
    settings_args = dict(budget_s=parse_budget(budget), trials=trials, batch_sizes=parse_batch_sizes(batch_size),
                         objective=objective, sampler=sampler, paths=tuple(paths) if paths else None,
                         atol=atol, rtol=rtol, show_progress=progress, window_s=window_s,
                         trial_timeout_s=parse_budget(trial_timeout) if trial_timeout is not None else None,
                         memory_bytes=None if device == "cuda" else (
                             default_memory_cap() if trial_memory == "default" else parse_memory(trial_memory)),
                         window_calls=window_calls, device=env.default_device() if device == "auto" else device,
                         triton_server=triton_server, allow_traced=allow_traced)
    OptimizeSettings(out=Path("."), **settings_args)  # check the settings before loading anything
    shared = study_storage.shared(storage, study, heartbeat)
    serving_options = ServingOptions(serving, serve_check or tune_serving, tune_serving, parse_budget(serving_budget),
                                     parse_concurrency(concurrency), latency_limit_ms)
    if serving_options.active:  # before the search, not after it
        from navigator.triton.server import find

        find("tritonserver"), find("perf_analyzer")
    for name in paths or ():
        registry.get(name)  # an unknown path name is an InputError before anything loads
    source = load_source(model, sample_inputs=sample_inputs, input_spec=input_spec,
                         input_data=Path(input_data) if input_data else None, trust_pickle=trust_pickle,
                         batch=max(settings_args["batch_sizes"]))  # type: ignore[arg-type]
    target = Path(out) if out else Path("navigator-out") / _slug(source.name)
    _check_out(target, force, shared is not None)
    noise = nondeterminism(source)
    settings = OptimizeSettings(out=target, noise_atol=2 * noise, **settings_args)  # type: ignore[arg-type]
    return run(source, settings, on_trial, enqueue, storage=shared, serving=serving_options)


def _check_out(out: Path, force: bool, shared: bool = False) -> None:
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
    diffs = [float(np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
             for a, b in zip(first, second)]
    return max(diffs, default=0.0)


__all__ = ["optimize", "run", "NavigatorError"]
