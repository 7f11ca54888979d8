"""run_trial: convert (cached) -> load -> validate against the source -> bench -> TrialOutcome.

Every failure of a conversion path becomes a recorded outcome; nothing a path raises escapes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from navigator import objective as objectives
from navigator import paths
from navigator.cache import Cache
from navigator.errors import one_line
from navigator.paths.base import Target
from navigator.records import Artifact, Bench, TrialConfig, TrialOutcome, Validation
from navigator.settings import StudySettings
from navigator.source import ModelSource
from navigator.source.iospec import perturb, resize_batch, shape_variants
from navigator.trial import traced
from navigator.trial.bench import (SCREEN_MARGIN, STABLE_WINDOWS, Timer, could_lead, cuda_timer, measure, screen,
                                   uncounted_rows)
from navigator.trial.validate import AGREEMENT, tolerance, validate

# The stage a trial is in, for the worker's log (trial/worker.py shows these; a killed worker's error
# names the last one): a trial that runs past its timeout says where.
STAGES = logging.getLogger("navigator.trial.stage")


# The second validation set of perturbed inputs (negated, rescaled): outside the range a calibrated
# (INT8) trial was calibrated on by design, so those trials skip it; the other sets and the traced
# rule still apply to them, and to dynamically quantized trials (torch_ao), which calibrate nothing.
PERTURBED = "perturbed inputs"


@dataclass
class TrialContext:
    """What every trial of one study shares: the source, the cache, settings, reference outputs."""

    source: ModelSource
    cache: Cache
    settings: StudySettings
    metric: Callable[[Any], float] | None = None  # the user metric (source/metric.py), run in every trial
    _inputs: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    _references: dict[int, list[np.ndarray]] = field(default_factory=dict)
    _second: dict[int, list[tuple[str, dict[str, np.ndarray], list[np.ndarray]]]] = field(default_factory=dict)

    @property
    def target(self) -> Target:
        """What the study's trials convert for: its device and batch sizes."""
        return Target.of(self.source, self.settings.device, self.settings.batch_sizes)

    def inputs(self, batch: int) -> dict[str, np.ndarray]:
        if batch not in self._inputs:
            batched = self.source.io.batched
            self._inputs[batch] = resize_batch(self.source.samples, batch) if batched else self.source.samples
        return self._inputs[batch]

    def reference(self, batch: int) -> list[np.ndarray]:
        if batch not in self._references:
            self._references[batch] = self.source.reference(self.inputs(batch))
        return self._references[batch]

    def second_sets(self, batch: int) -> list[tuple[str, dict[str, np.ndarray], list[np.ndarray]]]:
        """(label, inputs, source outputs) beyond the samples: each group of dynamic axes at another
        size, and the samples perturbed; a set the source itself fails on is left out."""
        if batch not in self._second:
            sets = [*shape_variants(self.source.io.inputs, self.inputs(batch), self.source.bounds),
                    (PERTURBED, perturb(self.inputs(batch)))]
            self._second[batch] = []
            for label, data in sets:
                try:
                    self._second[batch].append((label, data, self.source.reference(data)))
                except Exception:  # no reference there, nothing to compare with
                    continue
        return self._second[batch]


def convert(ctx: TrialContext, config: TrialConfig) -> Artifact:
    return paths.get(config.path).convert(ctx.source, config.convert, ctx.cache, ctx.target)


def _precision(config: TrialConfig) -> str:
    return paths.get(config.path).precision({**config.convert, **config.runtime})


def metric_governs(ctx: TrialContext, config: TrialConfig) -> bool:
    """Whether the user metric, not output agreement, judges this trial's accuracy: a quantized trial
    (INT8/FP8, a class of validate.AGREEMENT) in a study with --metric and --max-metric-drop. Its outputs
    are still checked for shape and NaN/Inf, and their errors are still recorded."""
    return ctx.metric is not None and ctx.settings.max_metric_drop is not None and _precision(config) in AGREEMENT


def tolerances(ctx: TrialContext, config: TrialConfig) -> tuple[float, float]:
    """(atol, rtol) of the trial's precision, the source's own run-to-run noise added to atol; atol
    unbounded where the metric governs (rtol 0: inf * 0 would be NaN at a zero reference value)."""
    if metric_governs(ctx, config):
        return math.inf, 0.0
    atol, rtol = tolerance(_precision(config), ctx.settings.atol, ctx.settings.rtol)
    return atol + ctx.settings.noise_atol, rtol


def classes(ctx: TrialContext, config: TrialConfig) -> tuple[float, float] | None:
    """The agreement its class scores are held to where the trial's precision has one (validate.AGREEMENT)
    and the metric does not govern."""
    return None if metric_governs(ctx, config) else AGREEMENT.get(_precision(config))


def check(ctx: TrialContext, config: TrialConfig, runner: Any, batch: int) -> tuple[list[np.ndarray], Validation]:
    """A loaded runner's outputs at `batch` and their validation against the source, with the tolerances
    of the trial's precision."""
    atol, rtol = tolerances(ctx, config)
    got = runner(ctx.inputs(batch))
    return got, validate(ctx.source.io.outputs, got, ctx.reference(batch), atol, rtol, classes(ctx, config))


def second_checks(ctx: TrialContext, config: TrialConfig, runner: Any, atol: float,
                  rtol: float) -> tuple[str, str, Validation | None] | None:
    """(status, reason, validation) of the first check beyond the samples that fails: another size of
    each dynamic axis, perturbed inputs, and whether a traced artifact may win; None when all pass."""
    found = traced.evidence(ctx.source, ctx.cache) if traced.is_traced(ctx.source, config) else ""
    why = f"; {traced.reason(found)}" if found else ""  # the likely cause of a traced artifact's divergence
    calibrated = paths.get(config.path).calibrates and _precision(config) in AGREEMENT
    for label, data, reference in ctx.second_sets(config.batch_size):
        if calibrated and label == PERTURBED:
            continue
        try:
            got = runner(data)
        except Exception as exc:  # e.g. an artifact that fixed a dynamic axis at the sample's size
            return "failed", f"fails on {label}: {one_line(exc)}{why}", None
        validation = validate(ctx.source.io.outputs, got, reference, atol, rtol, classes(ctx, config))
        if not validation.ok:
            return "invalid", f"on {label}: {validation.reason}{why}", validation
    if found and not ctx.settings.allow_traced:
        return "invalid", traced.reason(found), None
    return None


def metric_check(ctx: TrialContext, config: TrialConfig, runner: Any) -> tuple[float | None, str, str]:
    """(the user metric on the trial's runner, status, reason): ("", "") where it holds; "failed" where
    the metric raises or gives no finite number; "invalid" where it falls below --max-metric-drop."""
    s = ctx.settings
    if ctx.metric is None:
        if s.max_metric_drop is not None and s.metric_source is not None:  # a joining worker given none
            return None, "invalid", "the study has --max-metric-drop but this worker has no --metric"
        return None, "", ""
    from navigator.source.metric import MetricError, evaluate

    try:
        value = evaluate(ctx.metric, runner)
    except MetricError as exc:
        return None, "failed", f"{exc} on this trial"
    if s.metric_source is not None and s.max_metric_drop is not None and \
            objectives.metric_drop(s.metric_source, s.max_metric_drop)(TrialOutcome(config, "ok", metric=value)) > 0:
        floor = objectives.metric_floor(s.metric_source, s.max_metric_drop)
        return value, "invalid", (f"metric {value:.6g} vs the source's {s.metric_source:.6g}: below the "
                                  f"{floor:.6g} that --max-metric-drop {s.max_metric_drop} allows")
    return value, "", ""


def timer(ctx: TrialContext) -> Timer | None:
    """CUDA events on a GPU study, the host clock elsewhere."""
    return cuda_timer() if ctx.settings.device == "cuda" else None


def _bench(ctx: TrialContext, config: TrialConfig, runner: Any, inputs: dict[str, np.ndarray],
           bar: float | None) -> tuple[Bench, bool]:
    """The trial's benchmark: with a `bar`, a short first measurement, and the full one (stability
    windows, then the host copies a GPU client pays) only where that could still reach the top trials.
    Also whether it stopped at the short measurement."""
    call, clock, s = runner.prepare(inputs), timer(ctx), ctx.settings
    if bar is not None:
        quick = screen(call, config.batch_size, s.window_s, s.window_calls, clock)
        if not could_lead(quick, bar, s.objective):
            return quick, True
    bench = measure(call, config.batch_size, s.window_s, window_calls=s.window_calls, timer=clock)
    host_call = runner.host_call(inputs)
    if host_call is not None:
        host = measure(host_call, config.batch_size, s.window_s, window_calls=s.window_calls, timer=clock)
        bench = replace(bench, host_throughput=host.throughput, host_p99_ms=host.p99_ms)
    return bench, False


def run_trial(ctx: TrialContext, config: TrialConfig, bar: float | None = None) -> TrialOutcome:
    """One trial, with the tolerance class it computes in; `bar` (budget.screen_bar): the figure its short
    first measurement is held against."""
    outcome = _attempt(ctx, config, bar)
    try:
        precision = _precision(config)
    except Exception:  # a path refusing its own params has failed the trial already
        precision = ""
    return replace(outcome, precision=precision)


def _attempt(ctx: TrialContext, config: TrialConfig, bar: float | None) -> TrialOutcome:
    start = time.perf_counter()
    path = paths.get(config.path)
    params = {**config.convert, **config.runtime}
    misses = ctx.cache.misses
    convert_s = 0.0
    runner, ran = None, None
    try:
        STAGES.info("converting for %s", config.path)
        artifact = convert(ctx, config)
        convert_s = time.perf_counter() - start
        cached = ctx.cache.misses == misses
        ctx.reference(config.batch_size)  # before the clock of loading starts
        loading = time.perf_counter()
        STAGES.info("loading and validating (a compiled runner compiles on its first call)")
        runner = path.load(artifact, ctx.source, params)
        inputs = ctx.inputs(config.batch_size)
        got, validation = check(ctx, config, runner, config.batch_size)
        load_s = time.perf_counter() - loading
        ran = precision_run(runner)
        STAGES.info("validating other shapes and perturbed inputs")
        second = None if not validation.ok else second_checks(ctx, config, runner, *tolerances(ctx, config))
        if not validation.ok or second is not None:
            status, reason, checked = ("invalid", validation.reason, validation) if second is None else second
            return TrialOutcome(config, status, reason, checked or validation, None,  # type: ignore[arg-type]
                                convert_s, cached, time.perf_counter() - start, load_s, precision_run=ran)
        if ctx.metric is not None:
            STAGES.info("evaluating the metric")
        metric, broken, why = metric_check(ctx, config, runner)
        if broken:
            return TrialOutcome(config, broken, why, validation, None, convert_s, cached,  # type: ignore[arg-type]
                                time.perf_counter() - start, load_s, metric, ran)
        uncounted = uncounted_rows(ctx.source.io, got, config.batch_size)
        if uncounted:
            return TrialOutcome(config, "failed", uncounted, validation, None, convert_s, cached,
                                time.perf_counter() - start, load_s, metric, ran)
        STAGES.info("benchmarking")
        bench, screened = _bench(ctx, config, runner, inputs, bar)
        if screened:
            status, error = "screened", (f"its short first measurement was over {SCREEN_MARGIN:.0%} behind the "
                                         f"third best trial's {bar:.4g}: not measured in full")
        elif bench.stable:
            status, error = "ok", ""
        else:
            status, error = "unstable", (f"no {STABLE_WINDOWS} windows agreed within 10% in {bench.windows} "
                                         f"windows (CV {bench.cv:.1%})")
        return TrialOutcome(config, status, error, validation, bench, convert_s, cached,  # type: ignore[arg-type]
                            time.perf_counter() - start, load_s, metric, ran)
    except Exception as exc:  # a conversion path failing in any way is this trial's outcome
        return TrialOutcome(config, "failed", one_line(exc), None, None, convert_s, False,
                            time.perf_counter() - start, precision_run=ran)
    finally:
        close(runner)


def precision_run(runner: Any) -> str | None:
    """What a loaded runner reports computing in (Runner.precision_run; None from a runner without the
    hook). The trial does not fail on it: a summary that cannot be read says why, in the report's cell."""
    hook = getattr(runner, "precision_run", None)
    try:
        return hook() if hook is not None else None
    except Exception as exc:  # reading a runtime's internals, which a version may have moved
        return f"not read: {one_line(exc)}"[:200]


def close(runner: Any) -> None:
    """Release a runner's sessions and graphs now, not whenever the collector gets to them; a runner
    failing to close has already given its outcome, which its teardown does not change."""
    if runner is not None:
        with contextlib.suppress(Exception):
            runner.close()
