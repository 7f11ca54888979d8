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
import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from navigator import objective as objectives
from navigator.errors import InputError
from navigator.records import Result, TrialOutcome
from navigator.report.check import Verdict, check
from navigator.results import load_result, load_runner
from navigator.settings import StudySettings, memory_cap, parse_batch_sizes, parse_budget


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
        return objectives.get(self.objective).value(self.best.bench)


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


# Batches of a calibration dataloader read at most: ONNX Runtime's and NNCF's own defaults calibrate on
# a few hundred samples.
CALIBRATION_BATCHES = 64


def calibration_of(model: Any, calibration: Any) -> Any:
    """`calibration` as load_source takes it: a file path or a dict of arrays as given; a dataloader-like
    iterable of batches (the leading tensors of (features, labels) batches, as `dataloader` keeps them)
    concatenated along the batch axis."""
    if calibration is None or isinstance(calibration, (str, Path, dict)):
        return calibration
    import numpy as np

    def arr(v: Any) -> Any:
        return v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)

    batches = []
    for batch in itertools.islice(iter(calibration), CALIBRATION_BATCHES):
        batch = inputs_from_dataloader(model, [batch])
        batches.append({k: arr(v) for k, v in batch.items()} if isinstance(batch, dict) else
                       [arr(v) for v in (batch if isinstance(batch, tuple) else (batch,))])
    if not batches:
        raise InputError("the calibration dataloader yields no batch")
    if isinstance(batches[0], dict):
        return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    return tuple(np.concatenate([b[i] for b in batches]) for i in range(len(batches[0])))


def _metric(metric: Callable[[Any], float] | str | None, max_metric_drop: str | None,
            trust_pickle: bool) -> Callable[[Any], float] | None:
    """The user metric: a callable, or the command line's module:function (imported with trust only)."""
    if max_metric_drop is not None and metric is None:
        raise InputError("--max-metric-drop needs --metric: the drop is measured on the metric")
    if isinstance(metric, str):
        from navigator.source.metric import load

        return load(metric, trust_pickle)
    if metric is not None and not callable(metric):
        raise InputError(f"metric must be a function of the runner, not {type(metric).__name__}")
    return metric


class _Progress:
    """The callbacks' view of the study: trials finished in this call, the best valid one so far."""

    def __init__(self, settings: StudySettings, callbacks: Sequence[Callable[[ProgressEvent], None]],
                 on_trial: Callable[[TrialOutcome], None] | None, started: float) -> None:
        self.goal = objectives.for_study(settings)  # the best is the best within every constraint
        self.budget_s, self.callbacks, self.on_trial = settings.budget_s, callbacks, on_trial
        self.start, self.seen = started, 0
        self.best: TrialOutcome | None = None

    def __call__(self, outcome: TrialOutcome) -> None:
        if self.on_trial is not None:
            self.on_trial(outcome)
        self.seen += 1
        if outcome.status == "ok" and outcome.bench is not None and self.goal.feasible(outcome) and (
                self.best is None or self.best.bench is None or
                self.goal.score(outcome.bench) > self.goal.score(self.best.bench)):
            self.best = outcome
        event = ProgressEvent(outcome, self.seen, time.monotonic() - self.start, self.budget_s, self.best,
                              self.goal.name)
        for callback in self.callbacks:
            callback(event)


def optimize(model: Any, inputs: Any = None, *, dataloader: Iterable[Any] | None = None,
             budget: str | float = "10m", out: str | Path | None = None, trials: int | None = None,
             batch_size: str | int | None = None, objective: str = "throughput", sampler: str = "tpe",
             paths: Sequence[str] | None = None, device: str | None = "auto", input_spec: str | None = None,
             input_data: str | Path | None = None, trust_pickle: bool = False, atol: float | None = None,
             rtol: float | None = None, progress: bool = True, window_s: float = 0.25, window_calls: int = 0,
             screen: bool = True, trial_timeout: str | float | None = None, trial_memory: str | int | None = "default",
             force: bool = False, metric: Callable[[Any], float] | str | None = None,
             max_metric_drop: str | None = None,
             callbacks: Sequence[Callable[[ProgressEvent], None]] | None = None,
             on_trial: Callable[[TrialOutcome], None] | None = None,
             enqueue: dict[str, tuple[str, dict[str, Any]]] | None = None, storage: str | None = None,
             study: str | None = None, heartbeat: int = 10, serving: str = "native", serve_check: bool = False,
             tune_serving: bool = False, serving_budget: str | float = "2m", concurrency: str = "1,4",
             latency_limit_ms: float | None = None, triton_server: str | None = None,
             dynamic_batching: bool = True, allow_traced: bool = False, calibration: Any = None,
             search_space: str | Path | None = None) -> Result:
    """Find the fastest correct way to serve `model` on Triton (the command line's `navigator optimize`
    calls this too: its options are these arguments).

    Args:
        model: a live nn.Module / ScriptModule / ExportedProgram, or a model file path (.pt, .pt2, .onnx,
            a TensorFlow SavedModel directory or .keras file, an XGBoost .json/.ubj, a LightGBM text
            model, a scikit-learn forest as .skops or, with trust_pickle, a pickle).
        inputs: sample inputs for a live model (tensor, tuple of tensors or dict name -> tensor): the
            validation data.
        dataloader: instead of `inputs`, an iterable of batches (a torch DataLoader): its first batch
            is the validation data ((features, labels) batches keep the tensors forward takes), and
            its batch size is the default `batch_size`.
        budget: wall-clock budget of the whole study ('90s', '10m', '2h'), summed over reruns.
        out: output directory (default ./navigator-out/<model name>); rerunning continues its study.
        trials: cap on the study's number of trials.
        batch_size: 'N', 'LOW:HIGH' (powers of two searched) or 'N,M,...'; None: the rows of the sample
            inputs (a dynamic-batch model), else 1. A model without a dynamic batch axis takes batch 1 only.
        objective: 'throughput' (inferences/s, maximised), 'latency' (p99 ms, minimised) or 'pareto' (both:
            the report lists the front; the repository is its fastest point within every constraint).
        sampler: 'tpe', 'random' or 'grid'.
        paths: conversion paths to search (default: all available).
        device: 'cpu', 'cuda' or 'auto' (cuda when PyTorch sees a GPU).
        trial_timeout: limit of one trial ('90s', '10m'); default: each path's own.
        trial_memory: address-space cap of the trial worker ('8G'; '0' or None: none; default 80% of RAM).
        window_calls: count-based benchmark windows of this many calls (default: time windows of window_s).
        screen: once 3 trials are measured, measure a new one in full only where its short first
            measurement comes within 15% of the third best (the others are recorded as `screened`).
        force: use an output directory that holds other files, or start over where it holds another study.
        metric: `metric(runner) -> float`, higher is better (`runner({input: array}) -> [outputs]`), e.g.
            accuracy on a held-out set: evaluated once on the source model and in every trial after
            validation (carried to the trial worker with cloudpickle); recorded per trial in the reports
            and compared by `navigator check`. A string 'path/to/file.py:function' or 'module:function'
            is imported, with trust_pickle only (importing runs its code).
        max_metric_drop: with `metric`: '0.5%' (of the source's value) or '0.01' (absolute): a trial whose
            metric falls further below the source's is invalid and never wins.
        callbacks: each called with a ProgressEvent after every trial.
        on_trial: called with each TrialOutcome as it finishes (before the callbacks).
        enqueue: configurations to try first and re-measure beside the winner, as
            {name: (path, {param: value})}, unnamed params at their defaults.
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
        latency_limit_ms: p99 limit (ms) of the search itself too: a trial above it is kept with its
            figures but never wins nor is a finalist; where no trial meets it, no repository is written.
        concurrency: perf_analyzer concurrencies, 'N,M' or 'LOW:HIGH' (powers of two).
        triton_server: the Triton release the config targets ('25.02'; default: a current server). Before
            25.03 a TensorFlow winner may be written for tensorflow_savedmodel; before 25.09 FIL configs
            use the old parameter names (output_class, algo, threads_per_tree).
        dynamic_batching: write `dynamic_batching {}` (Triton's batcher, no queue delay) in the config of a
            model with max_batch_size > 0; False leaves it out and the serving search keeps it off.
        allow_traced: let a traced artifact win although tracing found control flow that depends on the
            input values (it is still validated on perturbed inputs).
        calibration: the INT8 paths' calibration inputs: an .npz path (read without pickle), a dict of
            arrays by input name, or a dataloader-like iterable of batches (up to CALIBRATION_BATCHES);
            default: the validation inputs, unless navigator drew those at random (INT8 trials then fail).
        search_space: a directory of <path>.yaml files, each keeping a subset of that path's values (and
            optionally its own presets); the other paths are searched as packaged (docs/searchspace.md).

    Returns:
        Result: `best` (the winning TrialOutcome), `runner()` (the winner loaded here), `repository`
        (the Triton model directory), `reports` ({'json', 'md', 'html'} paths), `outcomes`.

    Raises:
        NavigatorError: bad model, inputs or settings (InputError), nothing can run (UnavailableError),
            or the output directory holds another study (StudyMismatchError).
    """
    from navigator import api, env
    from navigator.paths import NAMES as PATH_NAMES
    from navigator.search import narrowing
    from navigator.search import storage as study_storage
    from navigator.serving import ServingOptions, parse_concurrency

    started = time.monotonic()  # the budget covers the whole run, loading the model included
    if inputs is not None and dataloader is not None:
        raise InputError("give sample inputs or a dataloader, not both")
    if dataloader is not None:
        inputs = inputs_from_dataloader(model, dataloader)
    asked = parse_batch_sizes(batch_size) if batch_size is not None else None
    where = env.default_device() if device in (None, "auto") else str(device)
    study_settings = StudySettings(  # checked before anything loads
        budget_s=parse_budget(budget), trials=trials, batch_sizes=asked or (1,), objective=objective,  # type: ignore[arg-type]
        sampler=sampler, paths=tuple(paths) if paths else None, atol=atol, rtol=rtol,  # type: ignore[arg-type]
        window_s=window_s, window_calls=window_calls, screen=screen, device=where,  # type: ignore[arg-type]
        trial_timeout_s=parse_budget(trial_timeout) if trial_timeout is not None else None,
        triton_server=triton_server, dynamic_batching=dynamic_batching, allow_traced=allow_traced,
        latency_limit_ms=latency_limit_ms, max_metric_drop=max_metric_drop,
        search_space=str(narrowing.directory(search_space, PATH_NAMES)) if search_space is not None else None)
    metric = _metric(metric, max_metric_drop, trust_pickle)
    memory = memory_cap(where, trial_memory)
    shared = study_storage.shared(storage, study, heartbeat)
    serving_options = ServingOptions(serving, serve_check or tune_serving, tune_serving, parse_budget(serving_budget),
                                     parse_concurrency(concurrency), latency_limit_ms,
                                     dynamic_batching=dynamic_batching)
    return api.launch(model, inputs, study_settings, out=out, progress=progress, memory_bytes=memory,
                        input_spec=input_spec, input_data=input_data, trust_pickle=trust_pickle, force=force,
                        shared=shared, serving=serving_options, asked=asked, enqueue=enqueue,
                        watch=lambda settings: _Progress(settings, callbacks or (), on_trial, started),
                        started=started, metric=metric,
                        calibration=calibration_of(model, calibration))


__all__ = ["ProgressEvent", "Verdict", "check", "load_result", "load_runner", "optimize"]
