"""The report's figures from a Result: the Pareto front and optuna's parameter importances."""

from __future__ import annotations

from navigator.records import Bench, Result, TrialConfig, TrialOutcome
from navigator.report import plots


def _trial(n: int, path: str, threads: int, mode: str, throughput: float) -> TrialOutcome:
    bench = Bench(1, throughput, 1, 1, 1, 1, 1000 / throughput, 0.01, 3, 30, True)
    return TrialOutcome(TrialConfig(n, path, {}, {"threads": threads, "mode": mode}, 1), "ok", bench=bench)


def test_pareto_front_keeps_only_undominated_points() -> None:
    points = [(100.0, 5.0), (200.0, 4.0), (150.0, 3.0), (90.0, 6.0), (250.0, 9.0)]
    assert plots.pareto_front(points) == [2, 1, 4]  # by p99: (150, 3), (200, 4), (250, 9)


def test_importance_finds_the_parameter_that_matters() -> None:
    # Throughput follows threads; mode is noise-free but irrelevant.
    trials = [_trial(i, "ort_cpu", t, m, 100.0 * t + (i % 2)) for i, (t, m) in
              enumerate([(t, m) for t in (1, 2, 4) for m in ("a", "b")] * 2)]
    trials += [_trial(20 + i, "eager", 1, "a", 50.0 + i) for i in range(4)]
    result = Result("m", "throughput", tuple(trials), trials[0], trials[-1], 1.0, None, None)
    found = plots.importances(result)
    assert set(found) == {"all trials", "ort_cpu"}  # eager's parameters never varied
    assert max(found["ort_cpu"], key=found["ort_cpu"].get) == "threads"
    assert found["ort_cpu"]["threads"] > 0.8
    for make in plots.FIGURES.values():  # every figure builds from this Result
        assert make(result).to_dict()["data"] is not None
