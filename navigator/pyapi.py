"""The Python API for training scripts: `navigator.optimize` with sample inputs or a dataloader, progress
callbacks and an optional user metric; `navigator.check`; `navigator.load_result`; `navigator.load_runner`.

    import navigator
    result = navigator.optimize(model, dataloader=train_loader, budget="2m", out="navigator-out/tiny",
                                callbacks=[lambda p: print(p.trials, p.best_value)])
    run = navigator.load_runner(result)         # the winner, loaded here: run({"x": array}) -> [array]
    result.best, result.repository, result.reports["html"]
"""

from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from navigator.errors import InputError
from navigator.records import MEASURED, Result, TrialOutcome
from navigator.report.check import Verdict, check
from navigator.results import load_result, load_runner
from navigator.settings import parse_budget


@dataclass(frozen=True)
class ProgressEvent:
    """What a progress callback receives after each trial."""

    outcome: TrialOutcome  # the trial that just finished
    trials: int  # trials finished in this call
    elapsed_s: float  # seconds since this call started
    budget_s: float  # the study's budget
    best: TrialOutcome | None  # the best valid trial so far in this call
    objective: str

    @property
    def best_value(self) -> float | None:
        """The best trial's throughput (inferences/s) or p99 latency (ms), as the objective says."""
        if self.best is None or self.best.bench is None:
            return None
        return self.best.bench.throughput if self.objective == "throughput" else self.best.bench.p99_ms


def _positional_inputs(model: Any) -> int | None:
    """How many tensors a live model's forward takes (positional, without defaults); None if unknown."""
    forward = getattr(model, "forward", None)
    if forward is None:
        return None
    try:
        params = inspect.signature(forward).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in kinds and p.default is inspect.Parameter.empty for p in params)


def inputs_from_dataloader(model: Any, dataloader: Iterable[Any]) -> Any:
    """The first batch of a dataloader as the model's sample inputs. A (features, labels) batch keeps as
    many leading tensors as the model's forward takes."""
    try:
        batch = next(iter(dataloader))
    except StopIteration:
        raise InputError("the dataloader yields no batch") from None
    except TypeError:
        raise InputError(f"dataloader of type {type(dataloader).__name__} is not iterable") from None
    if isinstance(batch, (tuple, list)):
        count = _positional_inputs(model)
        batch = tuple(batch[:count]) if count else tuple(batch)
        return batch[0] if len(batch) == 1 else batch
    return batch


def _metric_values(result: Result, metric: Callable[[Any], float]) -> dict[str, float]:
    """The user metric on the winner's Runner (and on the baseline's, the source runtime's defaults)."""
    from dataclasses import replace

    values = {"winner": float(metric(load_runner(result)))}
    baseline = result.baseline
    if baseline is not None and baseline.status in MEASURED and baseline != result.winner:
        values["baseline"] = float(metric(load_runner(replace(result, winner=baseline))))
    return values


def _store_metric(result: Result, values: dict[str, float]) -> None:
    """Add the metric to the stored summary and rebuild the reports (json, md, html) with it."""
    from navigator.report import store
    from navigator.search.storage import STUDY_NAME

    assert result.report is not None
    out = result.report.parent
    study = store.open_study(store.storage_for_dir(out), STUDY_NAME)
    data = json.loads(study.user_attrs.get(store.SUMMARY_ATTR, "{}"))
    data["metric"] = values
    study.set_user_attr(store.SUMMARY_ATTR, json.dumps(data, default=str))
    store.render_from_storage(store.storage_for_dir(out), STUDY_NAME, out)


def optimize(model: Any, inputs: Any = None, *, dataloader: Iterable[Any] | None = None,
             budget: str | float = "10m", paths: Sequence[str] | None = None, device: str | None = None,
             out: str | Path | None = None, metric: Callable[[Any], float] | None = None,
             callbacks: Sequence[Callable[[ProgressEvent], None]] | None = None, progress: bool = True,
             batch_size: int | str | None = None, trials: int | None = None, objective: str = "throughput",
             sampler: str = "tpe", input_spec: str | None = None, input_data: str | Path | None = None,
             trust_pickle: bool = False, atol: float | None = None, rtol: float | None = None,
             window_s: float = 0.25, window_calls: int = 0, trial_timeout: str | float | None = None,
             trial_memory: str | int | None = "default", force: bool = False,
             enqueue: dict[str, tuple[str, dict[str, Any]]] | None = None,
             on_trial: Callable[[TrialOutcome], None] | None = None, **options: Any) -> Result:
    """Find the fastest correct way to serve `model` on Triton; returns the Result.

    Args:
        model: a live nn.Module / ScriptModule / ExportedProgram, or a model file (.pt, .pt2, .onnx).
        inputs: sample inputs (tensor, tuple of tensors, or dict name -> tensor): the validation data.
        dataloader: instead of `inputs`, an iterable of batches (a torch DataLoader): its first batch
            is the validation data ((features, labels) batches keep the tensors forward takes), and
            its batch size is the default `batch_size`.
        budget: wall-clock budget of the study ('90s', '10m', '2h'), summed over reruns.
        paths: conversion paths to search (default: every path available here).
        device: 'cpu' or 'cuda' (default: cuda when PyTorch sees a GPU).
        out: output directory (default ./navigator-out/<model name>).
        metric: `metric(runner) -> float`, higher is better: evaluated on the winner's Runner (and the
            baseline's) after the search, e.g. accuracy on a held-out set; recorded in the reports
            and compared by `navigator check`.
        callbacks: each called with a ProgressEvent after every trial.
        progress: show a progress bar on the terminal.
        batch_size: 'N', 'LOW:HIGH' or 'N,M'; default: the batch of the sample inputs (or the dataloader's
            first batch) for a model with a dynamic batch axis, else 1.
        on_trial: called with each TrialOutcome as it finishes (before the callbacks).
        The other arguments are those of the command line (see `navigator.api.optimize`), `options`
        included: serving, serve_check, tune_serving, serving_budget, concurrency, latency_limit_ms
        (a real Triton server checks, measures and tunes the result) and storage, study, heartbeat (a study
        shared by several workers).

    Returns:
        Result: `best` (the winning TrialOutcome), `runner()` (the winner loaded here), `repository`
        (the Triton model directory), `reports` ({'json', 'md', 'html'} paths), `outcomes`.

    Raises:
        NavigatorError: bad model, inputs or settings; nothing can run; another study in `out`.
    """
    from navigator import api

    if inputs is not None and dataloader is not None:
        raise InputError("give sample inputs or a dataloader, not both")
    if dataloader is not None:
        inputs = inputs_from_dataloader(model, dataloader)
    start = time.monotonic()
    seen: list[TrialOutcome] = []
    best: list[TrialOutcome] = []

    def tick(outcome: TrialOutcome) -> None:
        if on_trial is not None:
            on_trial(outcome)
        seen.append(outcome)
        if outcome.status == "ok" and outcome.bench is not None:
            value = outcome.bench.throughput if objective == "throughput" else -outcome.bench.p99_ms
            old = best[0].bench if best else None
            if old is None or value > (old.throughput if objective == "throughput" else -old.p99_ms):
                best[:] = [outcome]
        event = ProgressEvent(outcome, len(seen), time.monotonic() - start, parse_budget(budget),
                              best[0] if best else None, objective)
        for callback in callbacks or ():
            callback(event)

    result = api.optimize(model, inputs, budget=budget, out=out, trials=trials, batch_size=batch_size,
                          objective=objective, sampler=sampler, paths=list(paths) if paths else None,
                          input_spec=input_spec, input_data=input_data, trust_pickle=trust_pickle, atol=atol,
                          rtol=rtol, progress=progress, window_s=window_s, trial_timeout=trial_timeout,
                          trial_memory=trial_memory, window_calls=window_calls, force=force,
                          device=device or "auto", enqueue=enqueue, on_trial=tick, **options)
    if metric is not None and result.winner is not None:
        _store_metric(result, _metric_values(result, metric))
    return result


__all__ = ["ProgressEvent", "Verdict", "check", "load_result", "optimize"]
