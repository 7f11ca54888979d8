"""What a study optimises, in one record: the figure it reads, which way is better, how it is named.

Every stage that ranks, compares or shows trials asks the study's Objective instead of branching on its
name, so that a new objective (or a constraint) is one entry here.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Literal, Sequence

from navigator.errors import InputError
from navigator.records import MEASURED, Bench, Finalist, TrialOutcome
from navigator.settings import StudySettings, parse_metric_drop

Direction = Literal["maximize", "minimize"]  # optuna's names
Told = float | list[float]  # what optuna is told of a trial: one value per direction of the study


@dataclass(frozen=True)
class Objective:
    """`field`: the Bench (and Finalist) figure it reads; `label`: how plots and reports name it;
    `versus`: how a speedup against another trial is worded ("1.3x the throughput of the baseline");
    `shown`: the progress line's format of the figure.

    `constraints`: functions of a measured outcome, feasible where <= 0 (optuna's `constraints_func`
    convention), each named by its docstring: `for_study` adds those of the study's settings (the p99
    limit, `latency_limit`; the metric floor, `metric_drop`)."""

    name: str
    direction: Direction
    field: str
    label: str
    versus: str
    shown: str
    constraints: tuple[Callable[[TrialOutcome], float], ...] = ()
    # pareto: optuna is told every FRONT figure, the finalists are the front's points, and the winner is
    # the fastest of them (this record's own field and direction rank them)
    front: bool = False

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def value(self, bench: Bench) -> float:
        """The figure this objective ranks by: inferences/s or p99 ms."""
        return float(getattr(bench, self.field))

    @property
    def directions(self) -> list[Direction]:
        """optuna's study directions: one, or one per FRONT figure."""
        return [d for _, d in FRONT] if self.front else [self.direction]

    def told(self, bench: Bench) -> Told:
        """What optuna is told: the figure, or the FRONT figures of a multi-objective study."""
        return [float(getattr(bench, f)) for f, _ in FRONT] if self.front else self.value(bench)

    def score(self, bench: Bench) -> float:
        """Higher is better, whatever the direction."""
        return self.value(bench) if self.maximize else -self.value(bench)

    def show(self, bench: Bench) -> str:
        return self.shown.format(self.value(bench))

    def rounds(self, finalist: Finalist) -> tuple[float, ...]:
        """A finalist's interleaved rounds of this figure."""
        return finalist.throughput if self.field == "throughput" else finalist.p99_ms

    def rounds_score(self, throughput: Sequence[float], p99_ms: Sequence[float]) -> float:
        """Higher is better: the median of repeated measurements of this figure, signed by the direction."""
        median = statistics.median(throughput if self.field == "throughput" else p99_ms)
        return median if self.maximize else -median

    def finalist_score(self, finalist: Finalist) -> float:
        return self.rounds_score(finalist.throughput, finalist.p99_ms)

    def ratio(self, mine: Any, theirs: Any) -> Any:
        """How many times better `mine` is than `theirs` (> 1: better); works on numpy arrays too."""
        return mine / theirs if self.maximize else theirs / mine

    def best(self, values: Iterable[float]) -> float:
        return (max if self.maximize else min)(values)

    def violations(self, outcome: TrialOutcome) -> tuple[float, ...]:
        """Each constraint's value for `outcome` (<= 0: satisfied)."""
        return tuple(c(outcome) for c in self.constraints)

    def feasible(self, outcome: TrialOutcome) -> bool:
        return all(v <= 0 for v in self.violations(outcome))

    def broken(self, outcome: TrialOutcome) -> str:
        """What `outcome` breaks, as the reports say it ("over p99 <= 5 ms"); '' where it meets every
        constraint. A constraint is named by its docstring."""
        names = [c.__doc__ or c.__name__ for c, v in zip(self.constraints, self.violations(outcome)) if v > 0]
        return f"over {' and '.join(names)}" if names else ""

    def rank(self, outcomes: Iterable[TrialOutcome]) -> list[TrialOutcome]:
        """Measured trials that meet the constraints, best first: stable ones, then (only as a fallback)
        unstable ones."""
        measured = [o for o in outcomes if o.status in MEASURED and o.bench is not None and self.feasible(o)]
        return sorted(measured, key=lambda o: (o.status == "ok", self.score(o.bench)),  # type: ignore[arg-type]
                      reverse=True)

    def contenders(self, ranked: list[TrialOutcome], k: int) -> tuple[list[TrialOutcome], int]:
        """The trials the finalists are chosen from and how many: the top k, or a front's points (at most
        FRONT_CAP, the fastest first, so that the re-measurement stays a handful)."""
        if not self.front:
            return ranked, k
        points = pareto_front(ranked)[:FRONT_CAP]
        return points, len(points)

    def baseline_batch(self, sizes: Sequence[int]) -> int:
        """The batch the enqueued baselines run at: the largest for throughput, the smallest for latency."""
        return max(sizes) if self.maximize else min(sizes)


# The figures of `--objective pareto` (Bench field, direction). The user metric joins as a third entry
# once a trial's outcome carries it (then `told` and `dominates` read it like the others).
FRONT: tuple[tuple[str, Direction], ...] = (("throughput", "maximize"), ("p99_ms", "minimize"))
FRONT_CAP = 5  # front points re-measured as finalists


def dominates(a: Bench, b: Bench) -> bool:
    """`a` is at least as good as `b` on every FRONT figure and better on one."""
    signed = [(getattr(a, f), getattr(b, f)) if d == "maximize" else (-getattr(a, f), -getattr(b, f))
              for f, d in FRONT]
    return all(x >= y for x, y in signed) and any(x > y for x, y in signed)


def pareto_front(outcomes: Iterable[TrialOutcome]) -> list[TrialOutcome]:
    """The measured trials no other one dominates, fastest first (one of equal figures kept)."""
    measured = [o for o in outcomes if o.status in MEASURED and o.bench is not None]
    front: list[TrialOutcome] = []
    for o in measured:
        if not any(dominates(p.bench, o.bench) or (p in front and p.bench == o.bench)  # type: ignore[arg-type]
                   for p in measured if p is not o):
            front.append(o)
    return sorted(front, key=lambda o: -o.bench.throughput)  # type: ignore[union-attr]


def remeasured(outcomes: Iterable[TrialOutcome], finalists: Iterable[Finalist]) -> list[TrialOutcome]:
    """The outcomes with the figures the decision uses: a trial re-measured as a finalist has the medians
    of its interleaved rounds for throughput and p99 (the figures the finalists are ranked by, measured
    under the same machine noise as the others'); the other trials keep their search-time figures."""
    rounds = {f.number: f for f in finalists if f.throughput and f.p99_ms}
    out = []
    for o in outcomes:
        f = rounds.get(o.config.number)
        if f is None or o.bench is None:
            out.append(o)
            continue
        bench = replace(o.bench, throughput=statistics.median(f.throughput), p99_ms=statistics.median(f.p99_ms))
        out.append(replace(o, bench=bench))
    return out


def latency_limit(limit_ms: float) -> Callable[[TrialOutcome], float]:
    """The constraint of `--latency-limit-ms`: a trial's p99 over the limit (ms, <= 0: within it). A
    trial without a figure has nothing to break; it cannot win for its status anyway."""
    def over_limit(outcome: TrialOutcome) -> float:
        if outcome.bench is None:
            return 0.0
        p99 = outcome.bench.p99_ms
        return p99 - limit_ms if math.isfinite(p99) else math.inf

    over_limit.__doc__ = f"p99 <= {limit_ms:g} ms"
    return over_limit


OBJECTIVES = {
    "throughput": Objective("throughput", "maximize", "throughput", "throughput (inferences/s)", "the throughput of",
                            "{:.1f}/s"),
    "latency": Objective("latency", "minimize", "p99_ms", "p99 latency (ms)", "lower p99 than", "{:.3f} ms p99"),
    "pareto": Objective("pareto", "maximize", "throughput", "throughput (inferences/s)", "the throughput of",
                        "{:.1f}/s", front=True),
}


def metric_floor(source: float, drop: str) -> float:
    """The lowest metric a trial may have: the source's value less the allowed drop (a share of the
    source's magnitude with %, else in the metric's units)."""
    amount, relative = parse_metric_drop(drop)
    return source - (abs(source) * amount if relative else amount)


def metric_drop(source: float, drop: str) -> Callable[[TrialOutcome], float]:
    """The constraint of --max-metric-drop: how far a trial's metric lies below the floor (<= 0: within
    it); a measured trial without a metric value is 1.0 over, for it cannot show that it is within. A trial
    with neither (failed, timed out before its metric ran) has nothing to break, as for latency_limit."""
    floor = metric_floor(source, drop)

    def within_metric_drop(outcome: TrialOutcome) -> float:
        if outcome.metric is None:
            return 0.0 if outcome.bench is None else 1.0
        return floor - outcome.metric

    within_metric_drop.__doc__ = f"metric >= {floor:.6g}"
    return within_metric_drop


def constraints(settings: StudySettings) -> tuple[Callable[[TrialOutcome], float], ...]:
    """The constraints a study's settings put on its trials."""
    found: list[Callable[[TrialOutcome], float]] = []
    if settings.latency_limit_ms is not None:
        found.append(latency_limit(settings.latency_limit_ms))
    if settings.metric_source is not None and settings.max_metric_drop is not None:
        found.append(metric_drop(settings.metric_source, settings.max_metric_drop))
    return tuple(found)


def for_study(settings: StudySettings) -> Objective:
    """The study's objective with the constraints of its settings."""
    goal = get(settings.objective)
    return replace(goal, constraints=goal.constraints + constraints(settings))


def get(name: str) -> Objective:
    """The objective named `name`; InputError for an unknown one."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise InputError(f"objective {name!r} is not {' or '.join(OBJECTIVES)}") from None


def infeasible_note(goal: Objective, outcomes: Iterable[TrialOutcome]) -> str:
    """The line a run ends with where measured trials exist but none meets every constraint ('' else),
    with the figure closest to each constraint (the lowest p99, the highest metric). `outcomes` carry the
    figures the decision used: a finalist's re-measured ones (`remeasured`)."""
    measured = [o for o in outcomes if o.status in MEASURED and o.bench is not None]
    if not goal.constraints or not measured or any(goal.feasible(o) for o in measured):
        return ""
    names = " and ".join(c.__doc__ or c.__name__ for c in goal.constraints)
    kinds = {c.__name__ for c in goal.constraints}
    closest = []
    if "over_limit" in kinds:
        fast = min(measured, key=lambda o: o.bench.p99_ms)  # type: ignore[union-attr]
        closest.append(f"the lowest p99 was {fast.bench.p99_ms:.3f} ms (trial {fast.config.number}, "  # type: ignore[union-attr]
                       f"{fast.config.path})")
    scored = [o for o in measured if o.metric is not None]
    if "within_metric_drop" in kinds and scored:
        top = max(scored, key=lambda o: o.metric)  # type: ignore[arg-type,return-value]
        closest.append(f"the highest metric was {top.metric:.6g} (trial {top.config.number}, {top.config.path})")
    return f"no measured trial meets {names}{': ' if closest else ''}{'; '.join(closest)}; no repository written"
