"""What a study optimises, in one record: the figure it reads, which way is better, how it is named.

Every stage that ranks, compares or shows trials asks the study's Objective instead of branching on its
name, so that a new objective (or a constraint) is one entry here.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Literal, Sequence

from navigator.errors import InputError
from navigator.records import MEASURED, Bench, Finalist, TrialOutcome
from navigator.settings import StudySettings, parse_metric_drop

Direction = Literal["maximize", "minimize"]  # optuna's names


@dataclass(frozen=True)
class Objective:
    """`field`: the Bench (and Finalist) figure it reads; `label`: how plots and reports name it;
    `versus`: how a speedup against another trial is worded ("1.3x the throughput of the baseline");
    `shown`: the progress line's format of the figure.

    `constraints`: functions of a measured outcome, feasible where <= 0 (optuna's `constraints_func`
    convention); empty today: a latency SLA or an accuracy floor goes here."""

    name: str
    direction: Direction
    field: str
    label: str
    versus: str
    shown: str
    constraints: tuple[Callable[[TrialOutcome], float], ...] = ()

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def value(self, bench: Bench) -> float:
        """The figure optuna is told: inferences/s or p99 ms."""
        return float(getattr(bench, self.field))

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

    def rank(self, outcomes: Iterable[TrialOutcome]) -> list[TrialOutcome]:
        """Measured trials that meet the constraints, best first: stable ones, then (only as a fallback)
        unstable ones."""
        measured = [o for o in outcomes if o.status in MEASURED and o.bench is not None and self.feasible(o)]
        return sorted(measured, key=lambda o: (o.status == "ok", self.score(o.bench)),  # type: ignore[arg-type]
                      reverse=True)

    def baseline_batch(self, sizes: Sequence[int]) -> int:
        """The batch the enqueued baselines run at: the largest for throughput, the smallest for latency."""
        return max(sizes) if self.maximize else min(sizes)


OBJECTIVES = {
    "throughput": Objective("throughput", "maximize", "throughput", "throughput (inferences/s)", "the throughput of",
                            "{:.1f}/s"),
    "latency": Objective("latency", "minimize", "p99_ms", "p99 latency (ms)", "lower p99 than", "{:.3f} ms p99"),
}


def metric_floor(source: float, drop: str) -> float:
    """The lowest metric a trial may have: the source's value less the allowed drop (a share of the
    source's magnitude with %, else in the metric's units)."""
    amount, relative = parse_metric_drop(drop)
    return source - (abs(source) * amount if relative else amount)


def metric_drop(source: float, drop: str) -> Callable[[TrialOutcome], float]:
    """The constraint of --max-metric-drop: how far a trial's metric lies below the floor (<= 0: within
    it); a trial without a metric value is 1.0 over, for it cannot show that it is within."""
    floor = metric_floor(source, drop)

    def within_metric_drop(outcome: TrialOutcome) -> float:
        return 1.0 if outcome.metric is None else floor - outcome.metric

    return within_metric_drop


def constraints(settings: StudySettings) -> tuple[Callable[[TrialOutcome], float], ...]:
    """The constraints a study's settings put on its trials."""
    found: list[Callable[[TrialOutcome], float]] = []
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
