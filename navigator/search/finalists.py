"""Noise-aware choice of the winner: the top trials and the baselines are re-measured in interleaved
rounds (A B C, B C A, ...), and the winner is chosen on the medians of those rounds. Comparisons are
paired by round (the same moment of machine noise) with a bootstrap confidence interval."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import numpy as np

from navigator import paths
from navigator import objective as objectives
from navigator.records import MEASURED, Comparison, Finalist, TrialOutcome
from navigator.trial.bench import measure, warm_up


# The source framework with its own best settings: the best valid trial of the baseline's path (threads,
# its own options), re-measured with the finalists; the headline speedup is against it, so that a
# thread setting the baseline could have had is not sold as the conversion's gain.
TUNED_BASELINE = "tuned baseline"
# A finalist whose rounds differ by more than this factor (or a ratio whose 95% interval spans more)
# was not measured steadily: its ratio is reported as the interval, flagged unstable.
UNSTABLE_SPREAD = 2.0


def tuned_baseline(ranked: list[TrialOutcome], baseline: TrialOutcome | None) -> TrialOutcome | None:
    """The best-ranked valid trial on the baseline's path (the baseline itself when none beats it)."""
    if baseline is None:
        return None
    return next((o for o in ranked if o.config.path == baseline.config.path), None)


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


def _spread(values: np.ndarray) -> float:
    """Largest / smallest round (inf when a round measured nothing)."""
    return float(values.max() / values.min()) if values.size and values.min() > 0 else float("inf")


def compare(winner: Finalist, other: Finalist, objective: str, seed: int = 0) -> Comparison:
    """Winner / other per round (for latency: other p99 / winner p99), median and 95% bootstrap CI."""
    goal = objectives.get(objective)
    mine = np.asarray(goal.rounds(winner), dtype=float)
    theirs = np.asarray(goal.rounds(other), dtype=float)
    ratios = goal.ratio(mine, theirs)
    if ratios.size < 2 or np.ptp(ratios) == 0:
        low = high = float(np.median(ratios))
    else:
        from scipy import stats

        ci = stats.bootstrap((ratios,), np.median, confidence_level=0.95, method="percentile",
                             n_resamples=2000, rng=np.random.default_rng(seed)).confidence_interval
        low, high = float(ci.low), float(ci.high)
    width = high / low if low > 0 else float("inf")
    unstable = max(_spread(mine), _spread(theirs), width) > UNSTABLE_SPREAD
    return Comparison(other.role, other.number, float(np.median(ratios)), low, high, not (low <= 1.0 <= high),
                      unstable)


def compare_all(winner: int, finalists: list[Finalist], objective: str) -> list[Comparison]:
    """The winner against every role a finalist holds (the baselines, ORT's defaults, enqueued
    configurations; the winner's own roles give 1.0) and against the runner-up, from the rounds."""
    mine = next((f for f in finalists if f.number == winner), None)
    if mine is None:
        return []
    out = [compare(mine, replace(f, role=role), objective)
           for f in finalists for role in f.role.split(", ") if not is_top(role)]
    runner_up = next((f for f in finalists if f is not mine and is_top(f.role)), None)
    if runner_up is not None:
        out.append(compare(mine, replace(runner_up, role="runner-up"), objective))
    return out
