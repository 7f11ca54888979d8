"""The one orchestration page: source -> search -> Triton repository -> report."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from navigator import env
from navigator import paths as registry
from navigator.errors import InputError, NavigatorError, UnavailableError
from navigator.records import (BROKEN, MEASURED, Comparison, Finalist, Result, TrialConfig, TrialOutcome,
                               WorkerSpec, from_dict, to_dict)
from navigator.search.finalists import compare, is_top, pick, score
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
            repository: Path) -> tuple[TrialOutcome | None, list[str]]:
    """Write the best trial that can be served; a winner whose Triton export fails yields to the next."""
    from navigator.triton import config as triton_config
    from navigator.triton import repository as triton_repo
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
            cfg = triton_config.build(_slug(source.name), source.io, model, max(settings.batch_sizes))
            triton_repo.write(repository, _slug(source.name), cfg, model.files)
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


def run(source: ModelSource, settings: OptimizeSettings, on_trial: Callable[[TrialOutcome], None] | None = None,
        enqueue: dict[str, tuple[str, dict[str, Any]]] | None = None) -> Result:
    """Search, deploy the winner and write the reports for an already loaded source."""
    from navigator.progress import Progress
    from navigator.report import build as report
    from navigator.search.study import Search, storage_url
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
    out.mkdir(parents=True, exist_ok=True)
    search = Search(storage_url(out), settings, (source.framework, source.kind), usable, source.fingerprint, enqueue)
    ctx = TrialContext(source, Cache(out / "cache", source.fingerprint), settings)
    model, spec_text, data, trust = materialize(source, out / "source")
    spec = WorkerSpec(model, source.name, source.fingerprint, spec_text, data, trust, max(settings.batch_sizes),
                      str(ctx.cache.root))
    with TrialWorker(spec, settings, out / "logs" / "worker.log") as worker:
        with Progress(settings, search.elapsed(), enabled=settings.show_progress) as bar:
            def tick(outcome: TrialOutcome) -> None:
                bar.update(outcome)
                if on_trial:
                    on_trial(outcome)

            search.run(_trial_runner(worker, settings, search.outcomes(), search.remaining), tick)
        outcomes = search.outcomes()
        by_number = {o.config.number: o for o in outcomes}
        roles = {role: by_number[n] for role, n in search.roles().items() if n in by_number}
        ranked = _rank(outcomes, settings.objective)
        finalists, why = _finalists(worker, ranked, roles, settings) if ranked else ([], "")
    first = [by_number[f.number] for f in finalists]  # deploy in the finalists' order, then the rest
    winner, notes = _deploy(source, ctx, first + [o for o in ranked if o not in first], settings,
                            out / "model_repository")
    comparisons = _compare(winner, finalists, settings.objective)
    baseline = roles.get("baseline")
    vs_base = next((c for c in comparisons if c.against.endswith("baseline")), None)
    result = Result(
        model=source.name, objective=settings.objective, outcomes=tuple(outcomes), winner=winner,
        baseline=baseline, speedup=vs_base.ratio if vs_base else (1.0 if winner and winner is baseline else None),
        repository=(out / "model_repository" / _slug(source.name)) if winner else None,
        report=out / "report.json", environment=env.snapshot(), finalists=tuple(finalists),
        comparisons=tuple(comparisons))
    extra = {"notes": [n for n in [why, *notes] if n], "cache": {"hits": ctx.cache.hits, "misses": ctx.cache.misses},
             "unavailable": {c.name: c.reason for c in candidates if c.reason},
             "settings": {"budget_s": settings.budget_s, "trials": settings.trials, "sampler": settings.sampler,
                          "batch_sizes": list(settings.batch_sizes), "objective": settings.objective,
                          "finalists": settings.finalists, "rounds": settings.rounds, "window_s": settings.window_s,
                          "trial_timeout_s": settings.trial_timeout_s, "memory_bytes": settings.memory_bytes,
                          "window_calls": settings.window_calls, "noise_atol": settings.noise_atol,
                          "triton_server": settings.triton_server,
                          "study_elapsed_s": round(search.elapsed(), 1)}}
    report.write(result, out, extra)
    return result


def optimize(model: Any, sample_inputs: Any = None, *, budget: str | float = "10m", out: str | Path | None = None,
             trials: int | None = None, batch_size: str | int = 1, objective: str = "throughput",
             sampler: str = "tpe", paths: list[str] | None = None, input_spec: str | None = None,
             input_data: str | Path | None = None, trust_pickle: bool = False, atol: float | None = None,
             rtol: float | None = None, progress: bool = True, window_s: float = 0.25,
             trial_timeout: str | float | None = None, trial_memory: str | int | None = "default",
             window_calls: int = 0, force: bool = False, device: str = "auto",
             enqueue: dict[str, tuple[str, dict[str, Any]]] | None = None, on_trial: Callable[[TrialOutcome], None] | None = None,
             triton_server: str | None = None) -> Result:
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
        on_trial: called with each TrialOutcome as it finishes.

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
                         triton_server=triton_server)
    OptimizeSettings(out=Path("."), **settings_args)  # check the settings before loading anything
    for name in paths or ():
        registry.get(name)  # an unknown path name is an InputError before anything loads
    source = load_source(model, sample_inputs=sample_inputs, input_spec=input_spec,
                         input_data=Path(input_data) if input_data else None, trust_pickle=trust_pickle,
                         batch=max(settings_args["batch_sizes"]))  # type: ignore[arg-type]
    target = Path(out) if out else Path("navigator-out") / _slug(source.name)
    _check_out(target, force)
    noise = nondeterminism(source)
    settings = OptimizeSettings(out=target, noise_atol=2 * noise, **settings_args)  # type: ignore[arg-type]
    return run(source, settings, on_trial, enqueue)


def _check_out(out: Path, force: bool) -> None:
    """An output directory is new, empty, or one of navigator's (then its study continues)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a directory")
    ours = (out / "study.db").is_file()
    if out.is_dir() and any(out.iterdir()) and not ours and not force:
        raise InputError(f"--out {out} holds other files and no navigator study; pass --force to write there")
    if force and ours:
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
