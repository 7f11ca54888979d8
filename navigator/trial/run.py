"""run_trial: convert (cached) -> load -> validate against the source -> bench -> TrialOutcome.

Every failure of a conversion path becomes a recorded outcome; nothing a path raises escapes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from navigator import paths
from navigator.records import Artifact, TrialConfig, TrialOutcome, Validation
from navigator.settings import OptimizeSettings
from navigator.source import ModelSource
from navigator.source.iospec import resize_batch
from navigator.trial.bench import STABLE_WINDOWS, measure, uncounted_rows
from navigator.trial.cache import Cache
from navigator.trial.validate import tolerance, validate


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


@dataclass
class TrialContext:
    """What every trial of one study shares: the source, the cache, settings, reference outputs."""

    source: ModelSource
    cache: Cache
    settings: OptimizeSettings
    _inputs: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    _references: dict[int, list[np.ndarray]] = field(default_factory=dict)

    def inputs(self, batch: int) -> dict[str, np.ndarray]:
        if batch not in self._inputs:
            batched = self.source.io.batched
            self._inputs[batch] = resize_batch(self.source.samples, batch) if batched else self.source.samples
        return self._inputs[batch]

    def reference(self, batch: int) -> list[np.ndarray]:
        if batch not in self._references:
            self._references[batch] = self.source.reference(self.inputs(batch))
        return self._references[batch]


def convert(ctx: TrialContext, config: TrialConfig) -> Artifact:
    return paths.get(config.path).convert(ctx.source, config.convert, ctx.cache)


def check(ctx: TrialContext, config: TrialConfig, runner: Any, batch: int) -> tuple[list[np.ndarray], Validation]:
    """A loaded runner's outputs at `batch` and their validation against the source, with the tolerances
    of the trial's precision."""
    module = paths.get(config.path)
    precision = getattr(module, "precision", lambda p: "fp32")({**config.convert, **config.runtime})
    atol, rtol = tolerance(precision, ctx.settings.atol, ctx.settings.rtol)
    got = runner(ctx.inputs(batch))
    return got, validate(ctx.source.io.outputs, got, ctx.reference(batch), atol + ctx.settings.noise_atol, rtol)


def run_trial(ctx: TrialContext, config: TrialConfig) -> TrialOutcome:
    start = time.perf_counter()
    module = paths.get(config.path)
    params = {**config.convert, **config.runtime}
    misses = ctx.cache.misses
    convert_s = 0.0
    try:
        artifact = convert(ctx, config)
        convert_s = time.perf_counter() - start
        cached = ctx.cache.misses == misses
        ctx.reference(config.batch_size)  # before the clock of loading starts
        loading = time.perf_counter()
        runner = module.load(artifact, ctx.source, params)
        inputs = ctx.inputs(config.batch_size)
        got, validation = check(ctx, config, runner, config.batch_size)
        load_s = time.perf_counter() - loading
        if not validation.ok:
            return TrialOutcome(config, "invalid", validation.reason, validation, None, convert_s, cached,
                                time.perf_counter() - start, load_s)
        uncounted = uncounted_rows(ctx.source.io, got, config.batch_size)
        if uncounted:
            return TrialOutcome(config, "failed", uncounted, validation, None, convert_s, cached,
                                time.perf_counter() - start, load_s)
        bench = measure(runner.prepare(inputs), config.batch_size, ctx.settings.window_s,
                        window_calls=ctx.settings.window_calls)
        host_call = getattr(runner, "host_call", None)
        if host_call is not None:
            host = measure(host_call(inputs), config.batch_size, ctx.settings.window_s,
                           window_calls=ctx.settings.window_calls)
            bench = replace(bench, host_throughput=host.throughput, host_p99_ms=host.p99_ms)
        status = "ok" if bench.stable else "unstable"
        error = "" if bench.stable else f"no {STABLE_WINDOWS} windows agreed within 10% in {bench.windows} windows (CV {bench.cv:.1%})"
        return TrialOutcome(config, status, error, validation, bench, convert_s, cached, time.perf_counter() - start,
                            load_s)
    except Exception as exc:  # a conversion path failing in any way is this trial's outcome
        return TrialOutcome(config, "failed", one_line(exc), None, None, convert_s, False,
                            time.perf_counter() - start)
