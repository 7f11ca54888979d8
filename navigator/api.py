"""The one orchestration page: source -> search -> Triton repository -> report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from navigator import env
from navigator import paths as registry
from navigator.errors import NavigatorError, UnavailableError
from navigator.records import Comparison, Finalist, Result, TrialOutcome
from navigator.search.finalists import compare, is_top, pick, remeasure, score
from navigator.settings import OptimizeSettings, parse_batch_sizes, parse_budget
from navigator.source import ModelSource, load_source

log = logging.getLogger("navigator")


def _slug(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_")
    return cleaned or "model"


def _value(o: TrialOutcome, objective: str) -> float:
    assert o.bench is not None
    return o.bench.throughput if objective == "throughput" else -o.bench.p99_ms


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
            model = registry.get(o.config.path).triton(artifact, {**o.config.convert, **o.config.runtime})
            cfg = triton_config.build(_slug(source.name), source.io, model, max(settings.batch_sizes))
            triton_repo.write(repository, _slug(source.name), cfg, model.files)
            return o, notes
        except Exception as exc:  # a path's Triton export failing: record it, try the runner-up
            notes.append(f"trial {o.config.number} ({o.config.path}) not deployable: {one_line(exc)}")
    return None, notes


def run(source: ModelSource, settings: OptimizeSettings,
        on_trial: Callable[[TrialOutcome], None] | None = None) -> Result:
    """Search, deploy the winner and write the reports for an already loaded source."""
    from navigator.report import build as report
    from navigator.search.study import FINALIST_ROLES, Search, finalist_rounds, storage_url
    from navigator.trial.cache import Cache
    from navigator.trial.run import TrialContext, run_trial

    candidates = registry.candidates(source.framework, settings.paths)
    usable = [c.name for c in candidates if c.reason is None]
    if not usable:
        raise UnavailableError("no conversion path can run here: " +
                               "; ".join(f"{c.name}: {c.reason}" for c in candidates))
    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    search = Search(storage_url(out), settings, (source.framework, source.kind), usable, source.fingerprint)
    ctx = TrialContext(source, Cache(out / "cache", source.fingerprint), settings)
    from navigator.progress import Progress

    with Progress(settings, search.elapsed(), enabled=settings.show_progress) as bar:
        def tick(outcome: TrialOutcome) -> None:
            bar.update(outcome)
            if on_trial:
                on_trial(outcome)

        search.run(lambda cfg: run_trial(ctx, cfg), tick)
    outcomes = search.outcomes()
    by_number = {o.config.number: o for o in outcomes}
    roles = {role: by_number[n] for role, n in search.roles().items() if n in by_number}
    ranked = sorted((o for o in outcomes if o.status == "ok"), key=lambda o: _value(o, settings.objective),
                    reverse=True)
    finalists: list[Finalist] = []
    if ranked:
        measured_roles = {r: o for r, o in roles.items() if r in FINALIST_ROLES}
        finalists = sorted(remeasure(ctx, pick(ranked, measured_roles, settings.finalists), finalist_rounds(settings)),
                           key=lambda f: score(f, settings.objective), reverse=True)
        # Deploy in the finalists' order first, then the rest of the search's ranking.
        first = [by_number[f.number] for f in finalists]
        ranked = first + [o for o in ranked if o not in first]
    winner, notes = _deploy(source, ctx, ranked, settings, out / "model_repository")
    comparisons = _compare(winner, finalists, settings.objective)
    baseline = roles.get("baseline")
    vs_base = next((c for c in comparisons if c.against.endswith("baseline")), None)
    result = Result(
        model=source.name, objective=settings.objective, outcomes=tuple(outcomes), winner=winner,
        baseline=baseline, speedup=vs_base.ratio if vs_base else (1.0 if winner and winner is baseline else None),
        repository=(out / "model_repository" / _slug(source.name)) if winner else None,
        report=out / "report.json", environment=env.snapshot(), finalists=tuple(finalists),
        comparisons=tuple(comparisons))
    extra = {"notes": notes, "cache": {"hits": ctx.cache.hits, "misses": ctx.cache.misses},
             "unavailable": {c.name: c.reason for c in candidates if c.reason},
             "settings": {"budget_s": settings.budget_s, "trials": settings.trials, "sampler": settings.sampler,
                          "batch_sizes": list(settings.batch_sizes), "objective": settings.objective,
                          "finalists": settings.finalists, "rounds": settings.rounds, "window_s": settings.window_s,
                          "study_elapsed_s": round(search.elapsed(), 1)}}
    report.write(result, out, extra)
    return result


def optimize(model: Any, sample_inputs: Any = None, *, budget: str | float = "10m", out: str | Path | None = None,
             trials: int | None = None, batch_size: str | int = 1, objective: str = "throughput",
             sampler: str = "tpe", paths: list[str] | None = None, input_spec: str | None = None,
             input_data: str | Path | None = None, trust_pickle: bool = False, atol: float | None = None,
             rtol: float | None = None, progress: bool = True, window_s: float = 0.25,
             on_trial: Callable[[TrialOutcome], None] | None = None) -> Result:
    """Find the fastest correct way to serve `model` on Triton.

    Args:
        model: a live nn.Module / ScriptModule / ExportedProgram, or a model file path (.pt, .pt2, .onnx).
        sample_inputs: example inputs for a live model (tensor, tuple of tensors or dict name -> tensor);
            they are the validation data.
        budget: wall-clock budget of the whole study ('90s', '10m', '2h'), summed over reruns.
        out: output directory (default ./navigator-out/<model name>); rerunning continues its study.
        trials: cap on the study's number of trials.
        batch_size: 'N', 'LOW:HIGH' (powers of two searched) or 'N,M,...'.
        objective: 'throughput' (inferences/s, maximised) or 'latency' (p99 ms, minimised).
        sampler: 'tpe', 'random' or 'grid'.
        paths: conversion paths to search (default: all available).
        on_trial: called with each TrialOutcome as it finishes.

    Returns:
        Result with every trial, the winner (`result.best`), the repository and report paths.

    Raises:
        NavigatorError: bad model, inputs or settings (InputError), nothing can run (UnavailableError),
            or the output directory holds another study (StudyMismatchError).
    """
    settings_args = dict(budget_s=parse_budget(budget), trials=trials, batch_sizes=parse_batch_sizes(batch_size),
                         objective=objective, sampler=sampler, paths=tuple(paths) if paths else None,
                         atol=atol, rtol=rtol, show_progress=progress, window_s=window_s)
    OptimizeSettings(out=Path("."), **settings_args)  # check the settings before loading anything
    for name in paths or ():
        registry.get(name)  # an unknown path name is an InputError before anything loads
    source = load_source(model, sample_inputs=sample_inputs, input_spec=input_spec,
                         input_data=Path(input_data) if input_data else None, trust_pickle=trust_pickle,
                         batch=max(settings_args["batch_sizes"]))  # type: ignore[arg-type]
    target = Path(out) if out else Path("navigator-out") / _slug(source.name)
    settings = OptimizeSettings(out=target, **settings_args)  # type: ignore[arg-type]
    return run(source, settings, on_trial)


__all__ = ["optimize", "run", "NavigatorError"]
