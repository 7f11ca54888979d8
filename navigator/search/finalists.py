"""Noise-aware choice of the winner: the top trials and the baselines are re-measured in interleaved
rounds (A B C, B C A, ...), and the winner is chosen on the medians of those rounds. Comparisons are
paired by round (the same moment of machine noise) with a bootstrap confidence interval."""

from __future__ import annotations

import statistics
from typing import Any, Callable

import numpy as np

from navigator import paths
from navigator.records import MEASURED, Comparison, Finalist, TrialOutcome
from navigator.trial.bench import measure, warm_up


def pick(ranked: list[TrialOutcome], roles: dict[str, TrialOutcome], k: int) -> list[tuple[str, TrialOutcome]]:
    """The top k distinct configurations plus every baseline role, each configuration once; a
    baseline with the same configuration as a top trial shares its entry ("top 1, baseline")."""
    chosen: dict[str, tuple[str, TrialOutcome]] = {}

    def ident(o: TrialOutcome) -> str:
        return repr((o.config.path, sorted({**o.config.convert, **o.config.runtime}.items()), o.config.batch_size))

    for o in ranked:
        if len(chosen) < k and ident(o) not in chosen:
            chosen[ident(o)] = (f"top {len(chosen) + 1}", o)
    for role, o in roles.items():
        if o.status not in MEASURED:  # an unstable baseline is re-measured all the same
            continue
        key = ident(o)
        chosen[key] = (f"{chosen[key][0]}, {role}", chosen[key][1]) if key in chosen else (role, o)
    return list(chosen.values())


def is_top(role: str) -> bool:
    return role.startswith("top")


def remeasure(ctx: Any, chosen: list[tuple[str, TrialOutcome]], rounds: int) -> list[Finalist]:
    """Each finalist once per round, the order rotated every round; runners stay loaded and warm."""
    from navigator.trial.run import convert

    calls = []
    for _, o in chosen:
        module = paths.get(o.config.path)
        runner = module.load(convert(ctx, o.config), ctx.source, {**o.config.convert, **o.config.runtime})
        call = runner.prepare(ctx.inputs(o.config.batch_size))
        warm_up(call, 2 * ctx.settings.window_s)
        calls.append(call)
    figures = interleave([(c, o.config.batch_size) for c, (_, o) in zip(calls, chosen)], rounds,
                         ctx.settings.window_s, ctx.settings.window_calls)
    return [Finalist(o.config.number, o.config.path, role, t, p) for (role, o), (t, p) in zip(chosen, figures)]


def interleave(calls: list[tuple[Callable[[], Any], int]], rounds: int, window_s: float,
               window_calls: int = 0) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
    """Measure each (warm call, batch size) once per round, the order rotated every round, so that each
    round sees every call under the same machine noise; (throughputs, p99s) per call."""
    thr: list[list[float]] = [[] for _ in calls]
    p99: list[list[float]] = [[] for _ in calls]
    for r in range(rounds):
        for i in np.roll(np.arange(len(calls)), -r):
            call, batch = calls[i]
            b = measure(call, batch, window_s, warmup_s=window_s / 4, window_calls=window_calls)
            thr[i].append(b.throughput)
            p99[i].append(b.p99_ms)
    return [(tuple(t), tuple(p)) for t, p in zip(thr, p99)]


def score(f: Finalist, objective: str) -> float:
    """Higher is better: median throughput, or minus median p99 latency."""
    return statistics.median(f.throughput) if objective == "throughput" else -statistics.median(f.p99_ms)


def compare(winner: Finalist, other: Finalist, objective: str, seed: int = 0) -> Comparison:
    """Winner / other per round (for latency: other p99 / winner p99), median and 95% bootstrap CI."""
    if objective == "throughput":
        ratios = np.asarray(winner.throughput) / np.asarray(other.throughput)
    else:
        ratios = np.asarray(other.p99_ms) / np.asarray(winner.p99_ms)
    if ratios.size < 2 or np.ptp(ratios) == 0:
        low = high = float(np.median(ratios))
    else:
        from scipy import stats

        ci = stats.bootstrap((ratios,), np.median, confidence_level=0.95, method="percentile",
                             n_resamples=2000, rng=np.random.default_rng(seed)).confidence_interval
        low, high = float(ci.low), float(ci.high)
    return Comparison(other.role, other.number, float(np.median(ratios)), low, high, not (low <= 1.0 <= high))
