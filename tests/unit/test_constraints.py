"""--latency-limit-ms as a constraint of the search and --objective pareto, on fabricated outcomes: the
constraint's values (optuna's convention, feasible where <= 0), what the ranking, the finalists' choice
and the reports make of a trial over it, the Pareto front, and what optuna is told."""

from __future__ import annotations

import math

import pytest

from navigator import objective as objectives
from navigator.records import Bench, Result, TrialConfig, TrialOutcome
from navigator.settings import StudySettings


def _outcome(number: int, throughput: float, p99: float, status: str = "ok", path: str = "eager") -> TrialOutcome:
    bench = Bench(1, throughput, p99, p99, p99, p99, p99, 0.01, 3, 100, status == "ok")
    return TrialOutcome(TrialConfig(number, path, {}, {}, 1), status, bench=bench)  # type: ignore[arg-type]


FAST_SLOW_TAIL = _outcome(1, 2000.0, 9.0)
STEADY = _outcome(2, 1500.0, 2.0)
LOW_P99 = _outcome(3, 900.0, 1.0)
DOMINATED = _outcome(4, 800.0, 3.0)
FAILED = TrialOutcome(TrialConfig(5, "eager", {}, {}, 1), "failed", "boom")


def test_latency_limit_is_p99_over_the_limit() -> None:
    over = objectives.latency_limit(5.0)
    assert over(FAST_SLOW_TAIL) == 4.0 and over(STEADY) == -3.0
    assert over(FAILED) == 0.0  # no figure: nothing to break (its status keeps it from winning)
    assert over(_outcome(6, 10.0, math.nan)) == math.inf  # optuna refuses NaN constraints
    assert over.__doc__ == "p99 <= 5 ms"


def test_a_trial_over_the_limit_keeps_its_status_and_can_never_rank() -> None:
    goal = objectives.for_study(StudySettings(latency_limit_ms=5.0))
    assert objectives.for_study(StudySettings()) == objectives.get("throughput")  # no limit: no constraint
    ranked = goal.rank([FAST_SLOW_TAIL, STEADY, LOW_P99, FAILED])
    assert [o.config.number for o in ranked] == [2, 3]  # the fastest trial breaks the limit
    assert FAST_SLOW_TAIL.status == "ok" and goal.broken(FAST_SLOW_TAIL) == "over p99 <= 5 ms"
    assert goal.broken(STEADY) == ""
    # nor is it a finalist: they are chosen from the ranking
    assert goal.contenders(ranked, 3) == (ranked, 3)
    assert objectives.infeasible_note(goal, [FAST_SLOW_TAIL, STEADY]) == ""


def test_no_trial_within_the_limit_is_one_line_naming_the_closest() -> None:
    goal = objectives.for_study(StudySettings(objective="latency", latency_limit_ms=0.5))
    assert goal.rank([FAST_SLOW_TAIL, STEADY, LOW_P99]) == []
    note = objectives.infeasible_note(goal, [FAST_SLOW_TAIL, STEADY, LOW_P99, FAILED])
    assert note == ("no measured trial meets p99 <= 0.5 ms: the lowest p99 was 1.000 ms (trial 3, eager); "
                    "no repository written")
    assert objectives.infeasible_note(goal, [FAILED]) == ""  # nothing measured: the run says that instead


def test_pareto_front_keeps_the_undominated_trials_fastest_first() -> None:
    twin = _outcome(7, 1500.0, 2.0)  # the same figures as STEADY: one of them is kept
    unstable = _outcome(8, 700.0, 0.5, "unstable")
    front = objectives.pareto_front([DOMINATED, FAST_SLOW_TAIL, STEADY, twin, LOW_P99, FAILED, unstable])
    assert [o.config.number for o in front] == [1, 2, 3, 8]
    assert objectives.pareto_front([]) == []


def test_pareto_objective_tells_optuna_both_figures_and_picks_the_front_as_finalists() -> None:
    goal = objectives.for_study(StudySettings(objective="pareto", latency_limit_ms=5.0))
    assert goal.front and goal.directions == ["maximize", "minimize"]
    assert objectives.get("latency").directions == ["minimize"]
    assert STEADY.bench is not None
    assert goal.told(STEADY.bench) == [1500.0, 2.0] and objectives.get("latency").told(STEADY.bench) == 2.0
    ranked = goal.rank([DOMINATED, FAST_SLOW_TAIL, STEADY, LOW_P99])  # fastest first, within the limit
    assert [o.config.number for o in ranked] == [2, 3, 4]
    contenders, k = goal.contenders(ranked, 1)
    assert [o.config.number for o in contenders] == [2, 3] and k == 2  # the front, not the top 1
    many = [_outcome(10 + i, 100.0 + i, 1.0 + i) for i in range(9)]  # all on one front
    plain = objectives.get("pareto")  # no limit: every one of them is in
    contenders, k = plain.contenders(plain.rank(many), 3)
    assert k == objectives.FRONT_CAP and [o.config.number for o in contenders] == [18, 17, 16, 15, 14]


def test_optuna_learns_the_constraint_from_the_stored_outcome(tmp_path, monkeypatch) -> None:
    """Each trial's constraint values (over the p99 limit: > 0) are stored on it for the sampler: a user
    attribute, and optuna's own constraint record (TPE ranks a trial that breaks one below every
    feasible one); a repeat answered from the study carries those of the trial that answers it."""
    from navigator import paths
    from navigator.search import space as space_mod
    from navigator.search.storage import StudyStorage
    from navigator.search.proposals import CONSTRAINTS_ATTR
    from navigator.search.study import Search

    space = "path: ort_cpu\nparams:\n  threads: {stage: runtime, int: [1, 2]}\n"
    monkeypatch.setattr(paths, "space", lambda name, framework=None, narrowing=None: space_mod.parse(space, "t.yaml"))
    settings = StudySettings(budget_s=600, sampler="random", trials=3, latency_limit_ms=5.0)
    storage = StudyStorage(f"sqlite:///{tmp_path / 'study.db'}")
    search = Search(storage, settings, ("onnx", "file"), ["ort_cpu"], "fp")
    figures = {1: FAST_SLOW_TAIL, 2: STEADY}

    def run(config: TrialConfig, timeout: float, bar: float | None = None) -> TrialOutcome:
        o = figures[int(config.runtime["threads"])]
        return TrialOutcome(config, "ok", bench=o.bench, duration_s=0.1)

    search.run(run)
    stored = {t.params["ort_cpu.threads"]: t.user_attrs.get(CONSTRAINTS_ATTR) for t in search.study.get_trials()}
    assert stored[1] == [4.0] and stored[2] == [-3.0]  # p99 9 ms and 2 ms against a 5 ms limit


def test_settings_refuse_a_limit_that_is_not_positive() -> None:
    from navigator.errors import InputError

    with pytest.raises(InputError, match="--latency-limit-ms 0"):
        StudySettings(latency_limit_ms=0)


def test_reports_mark_a_trial_over_the_limit_and_list_the_front() -> None:
    from navigator.report import build, front

    outcomes = (FAST_SLOW_TAIL, STEADY, LOW_P99, DOMINATED)
    result = Result("m", "pareto", outcomes, STEADY, STEADY, None, None, None,
                    settings=StudySettings(objective="pareto", latency_limit_ms=5.0))
    assert front.status(result, FAST_SLOW_TAIL) == "ok, over p99 <= 5 ms" and front.status(result, STEADY) == "ok"
    assert [o.config.number for o in front.points(result)] == [2, 3]
    text = build.markdown(result)
    assert "| 1 | eager | 1 | defaults |  | ok, over p99 <= 5 ms |" in text  # precision run not read here
    assert "1 measured trial(s) over them" in text and "## Pareto front (throughput, p99)" in text
    assert "| 2 **winner** | eager | 1 | 1500.0 | 2.000 |" in text and "| 3 | eager | 1 | 900.0 | 1.000 |" in text
    assert "| 4 | eager | 1 | 800.0" not in text  # dominated: not on the front
    from navigator.report import plots

    names = [t.get("name") for t in plots.throughput_latency(result).to_dict()["data"]]
    assert "Pareto front" in names


def test_every_reader_of_a_study_sees_its_metric_floor_too() -> None:
    """The CLI's no-winner line, the progress line and the API's callbacks judge trials by every
    constraint of the settings, the metric floor as much as the p99 limit."""
    from navigator.cli import _no_winner
    from navigator.progress import Progress
    from navigator.pyapi import _Progress
    from navigator.search.budget import Budget

    settings = StudySettings(metric_source=0.95, max_metric_drop="1%")
    lossy = TrialOutcome(STEADY.config, "ok", bench=STEADY.bench, metric=0.90)
    result = Result("m", "throughput", (lossy,), None, None, None, None, None, settings=settings)
    assert _no_winner(result) == ("no measured trial meets metric >= 0.9405: the highest metric was 0.9 (trial 2, "
                                  "eager); no repository written")
    bar = Progress(settings, Budget(60.0), enabled=False)
    bar.update(lossy)
    assert bar.best == ""  # under the floor: never the best so far
    events: list = []
    tick = _Progress(settings, [events.append], None, 0.0)
    tick(lossy)
    assert events[0].best is None


def test_the_no_winner_line_of_both_constraints_names_the_closest_figure_of_each() -> None:
    settings = StudySettings(metric_source=0.95, max_metric_drop="1%", latency_limit_ms=1.5)
    lossy = TrialOutcome(STEADY.config, "ok", bench=STEADY.bench, metric=0.90)
    note = objectives.infeasible_note(objectives.for_study(settings), [lossy, FAILED])
    assert note == ("no measured trial meets p99 <= 1.5 ms and metric >= 0.9405: the lowest p99 was 2.000 ms "
                    "(trial 2, eager); the highest metric was 0.9 (trial 2, eager); no repository written")
