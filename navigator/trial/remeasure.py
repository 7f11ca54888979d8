"""The finalists' re-measurement, in the trial worker: the chosen trials' runners loaded once and kept
warm, then measured in interleaved rounds (A B C, B C A, ...) so that every round sees each of them under
the same machine noise. search/finalists.py chooses the finalists and compares the rounds."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from navigator import paths
from navigator.records import Finalist, TrialOutcome
from navigator.trial.bench import Timer, measure, warm_up


def remeasure(ctx: Any, chosen: list[tuple[str, TrialOutcome]], rounds: int) -> list[Finalist]:
    """Each finalist once per round, the order rotated every round; runners stay loaded and warm, and are
    closed after the rounds. On a GPU study the calls are timed with CUDA events, as the trials were."""
    from navigator.trial.run import close, convert, timer

    calls, runners = [], []
    try:
        for _, o in chosen:
            module = paths.get(o.config.path)
            runners.append(module.load(convert(ctx, o.config), ctx.source, {**o.config.convert, **o.config.runtime}))
            call = runners[-1].prepare(ctx.inputs(o.config.batch_size))
            warm_up(call, 2 * ctx.settings.window_s)
            calls.append(call)
        figures = interleave([(c, o.config.batch_size) for c, (_, o) in zip(calls, chosen)], rounds,
                             ctx.settings.window_s, ctx.settings.window_calls, timer(ctx))
    finally:
        for runner in runners:
            close(runner)
    return [Finalist(o.config.number, o.config.path, role, t, p) for (role, o), (t, p) in zip(chosen, figures)]


def interleave(calls: list[tuple[Callable[[], Any], int]], rounds: int, window_s: float,
               window_calls: int = 0, clock: Timer | None = None) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
    """Measure each (warm call, batch size) once per round, the order rotated every round, so that each
    round sees every call under the same machine noise; (throughputs, p99s) per call."""
    thr: list[list[float]] = [[] for _ in calls]
    p99: list[list[float]] = [[] for _ in calls]
    for r in range(rounds):
        for i in np.roll(np.arange(len(calls)), -r):
            call, batch = calls[i]
            b = measure(call, batch, window_s, warmup_s=window_s / 4, window_calls=window_calls, timer=clock)
            thr[i].append(b.throughput)
            p99[i].append(b.p99_ms)
    return [(tuple(t), tuple(p)) for t, p in zip(thr, p99)]
