"""navigator/objective.py: one record decides how trials are valued, ranked, compared and named."""

from __future__ import annotations

import typing
from dataclasses import replace

import numpy as np
import pytest

from navigator import objective as objectives
from navigator.errors import InputError
from navigator.records import Bench, Finalist, TrialConfig, TrialOutcome
from navigator.settings import OBJECTIVE_NAMES, ObjectiveName, StudySettings


def _outcome(number: int, throughput: float, p99: float, status: str = "ok") -> TrialOutcome:
    bench = Bench(1, throughput, p99, p99, p99, p99, p99, 0.01, 3, 100, status == "ok")
    return TrialOutcome(TrialConfig(number, "eager", {}, {}, 1), status, bench=bench)  # type: ignore[arg-type]


FAST_BUT_SLOW_TAIL = _outcome(1, 2000.0, 9.0)
STEADY = _outcome(2, 1500.0, 2.0)
UNSTABLE_BEST = _outcome(3, 5000.0, 1.0, "unstable")
BROKEN = TrialOutcome(TrialConfig(4, "eager", {}, {}, 1), "failed", "boom")


def test_every_objective_name_has_a_record_and_settings_take_only_those() -> None:
    assert tuple(objectives.OBJECTIVES) == OBJECTIVE_NAMES == typing.get_args(ObjectiveName)
    with pytest.raises(InputError, match="'speed' is not throughput or latency or pareto"):
        objectives.get("speed")
    with pytest.raises(InputError, match="speed"):
        StudySettings(objective="speed")  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "direction", "best_first"), [
    ("throughput", "maximize", [1, 2, 3]),  # stable trials first, the unstable one only as a fallback
    ("latency", "minimize", [2, 1, 3]),
])
def test_rank_value_and_direction(name: str, direction: str, best_first: list[int]) -> None:
    goal = objectives.get(name)
    assert goal.direction == direction and goal.maximize == (direction == "maximize")
    ranked = goal.rank([FAST_BUT_SLOW_TAIL, BROKEN, UNSTABLE_BEST, STEADY])
    assert [o.config.number for o in ranked] == best_first
    assert STEADY.bench is not None
    assert goal.value(STEADY.bench) == (1500.0 if name == "throughput" else 2.0)
    assert goal.score(STEADY.bench) == (1500.0 if name == "throughput" else -2.0)  # higher is better


def test_ratio_rounds_and_words() -> None:
    thr, lat = objectives.get("throughput"), objectives.get("latency")
    assert thr.ratio(200.0, 100.0) == 2.0 and lat.ratio(1.0, 2.0) == 2.0  # > 1: `mine` is better
    assert list(lat.ratio(np.array([1.0, 2.0]), np.array([2.0, 2.0]))) == [2.0, 1.0]
    f = Finalist(1, "eager", "top 1", (10.0, 30.0, 20.0), (3.0, 1.0, 2.0))
    assert thr.rounds(f) == (10.0, 30.0, 20.0) and lat.rounds(f) == (3.0, 1.0, 2.0)
    assert thr.finalist_score(f) == 20.0 and lat.finalist_score(f) == -2.0
    assert thr.best([1.0, 3.0]) == 3.0 and lat.best([1.0, 3.0]) == 1.0
    assert STEADY.bench is not None
    assert thr.show(STEADY.bench) == "1500.0/s" and lat.show(STEADY.bench) == "2.000 ms p99"
    assert thr.label == "throughput (inferences/s)" and lat.versus == "lower p99 than"


def test_constraints_slot_keeps_infeasible_trials_out_of_the_ranking() -> None:
    """Empty today; a constraint (here: p99 at most 5 ms, feasible where <= 0 as optuna's
    constraints_func has it) takes a trial out of the ranking whatever its figure."""
    plain = objectives.get("throughput")
    assert plain.constraints == () and plain.violations(FAST_BUT_SLOW_TAIL) == ()
    sla = replace(plain, constraints=(lambda o: o.bench.p99_ms - 5.0,))
    assert sla.violations(FAST_BUT_SLOW_TAIL) == (4.0,) and not sla.feasible(FAST_BUT_SLOW_TAIL)
    assert [o.config.number for o in sla.rank([FAST_BUT_SLOW_TAIL, STEADY])] == [2]


def test_baseline_batch_follows_the_objective() -> None:
    assert objectives.get("throughput").baseline_batch((1, 8, 32)) == 32
    assert objectives.get("latency").baseline_batch((1, 8, 32)) == 1
