"""Choosing the finalists and comparing the winner with them."""

from __future__ import annotations

import pytest

from navigator.records import Bench, Finalist, TrialConfig, TrialOutcome
from navigator.search.finalists import compare, pick


def _outcome(number: int, path: str, status: str = "ok", threads: int = 1) -> TrialOutcome:
    bench = Bench(1, 100.0, 1, 1, 1, 1, 1, 0.01, 3, 30, status == "ok")
    return TrialOutcome(TrialConfig(number, path, {}, {"threads": threads}, 1), status, bench=bench)  # type: ignore[arg-type]


def test_pick_keeps_an_unstable_baseline_and_merges_identical_configs() -> None:
    top = [_outcome(5, "ort_cpu"), _outcome(6, "openvino"), _outcome(7, "ort_cpu", threads=2), _outcome(8, "eager")]
    roles = {"baseline": _outcome(0, "eager", "unstable"), "ort_cpu defaults": _outcome(1, "ort_cpu"),
             "broken": _outcome(2, "openvino", "failed")}
    chosen = pick(top, roles, k=3)
    labels = [(role, o.config.number) for role, o in chosen]
    assert labels == [("top 1, ort_cpu defaults", 5), ("top 2", 6), ("top 3", 7), ("baseline", 0)]


def test_compare_pairs_rounds_and_says_when_within_noise() -> None:
    winner = Finalist(1, "ort_cpu", "top 1", (200.0, 210.0, 190.0, 205.0, 195.0), (1.0,) * 5)
    slow = Finalist(0, "eager", "baseline", (100.0, 105.0, 95.0, 102.0, 98.0), (2.0,) * 5)
    close = Finalist(2, "openvino", "top 2", (210.0, 200.0, 200.0, 195.0, 205.0), (1.0,) * 5)
    c = compare(winner, slow, "throughput")
    assert c.ratio == pytest.approx(2.0, rel=0.01) and c.distinct and c.low <= c.ratio <= c.high
    assert not compare(winner, close, "throughput").distinct
    assert compare(winner, slow, "latency").ratio == pytest.approx(2.0)


def test_a_tuned_baseline_the_baseline_beats_once_re_measured_gives_it_the_role() -> None:
    from navigator.records import TUNED_BASELINE
    from navigator.search.finalists import compare_all, settle_tuned

    winner = Finalist(9, "ort_cpu", "top 1", (300.0,) * 3, (1.0,) * 3)
    base = Finalist(0, "eager", "baseline", (250.0, 247.0, 252.0), (1.0,) * 3)
    tuned = Finalist(6, "eager", TUNED_BASELINE, (217.0, 215.0, 219.0), (1.0,) * 3)  # ahead only in the search
    settled = settle_tuned([winner, base, tuned], "throughput")
    assert [f.role for f in settled] == ["top 1", f"baseline, {TUNED_BASELINE}", "re-measured"]
    against = {c.against: c for c in compare_all(9, settled, "throughput")}
    assert set(against) == {"baseline", TUNED_BASELINE}
    assert against[TUNED_BASELINE].ratio == against["baseline"].ratio == pytest.approx(300 / 250, rel=0.02)
    ahead = Finalist(6, "eager", TUNED_BASELINE, (260.0,) * 3, (1.0,) * 3)
    assert settle_tuned([winner, base, ahead], "throughput") == [winner, base, ahead]
    assert settle_tuned([winner, base, tuned], "latency") == [winner, base, tuned]  # equal p99: it keeps the role


def _timed(number: int, throughput: float, p99: float, path: str = "ort_cpu") -> TrialOutcome:
    bench = Bench(1, throughput, p99, p99, p99, p99, p99, 0.01, 3, 30, True)
    return TrialOutcome(TrialConfig(number, path, {}, {}, 1), "ok", bench=bench)


def test_a_finalist_over_the_p99_limit_in_its_rounds_cannot_win_and_the_report_says_so() -> None:
    """Feasibility is judged on the figures the decision uses: a finalist whose search-time p99 met the
    limit but whose re-measured median does not drops out, and the next finalist within it wins."""
    from navigator import objective as objectives
    from navigator.search.finalists import deploy_order
    from navigator.settings import StudySettings

    goal = objectives.for_study(StudySettings(latency_limit_ms=5.0))
    lucky, steady, slow, unmeasured = _timed(1, 900.0, 4.8), _timed(2, 800.0, 3.0), _timed(3, 100.0, 2.0), \
        _timed(4, 700.0, 4.0)
    ranked = goal.rank([lucky, steady, slow, unmeasured])
    assert [o.config.number for o in ranked] == [1, 2, 4, 3]  # by the search's figures all four are within
    finalists = [Finalist(1, "ort_cpu", "top 1", (910.0, 905.0, 900.0), (5.6, 5.4, 5.9)),
                 Finalist(2, "ort_cpu", "top 2", (790.0, 800.0, 810.0), (3.1, 2.9, 3.0)),
                 Finalist(3, "ort_cpu", "baseline", (100.0, 99.0, 101.0), (2.0, 2.1, 1.9))]
    order, dropped = deploy_order(finalists, ranked, goal)
    assert [o.config.number for o in order] == [2, 3, 4]  # the finalists within, then the rest of the ranking
    assert dropped == ["finalist trial 1 (ort_cpu, top 1) cannot win: re-measured it is over p99 <= 5 ms "
                       "(p99 5.600 ms, the median of 3 rounds; 4.800 ms in the search)"]


def test_where_every_trial_breaks_the_limit_once_re_measured_the_no_winner_line_says_so() -> None:
    from navigator import objective as objectives
    from navigator.cli import _no_winner
    from navigator.records import Result
    from navigator.search.finalists import deploy_order
    from navigator.settings import StudySettings

    settings = StudySettings(latency_limit_ms=5.0)
    lucky = _timed(1, 900.0, 4.8)
    rounds = (Finalist(1, "ort_cpu", "top 1, baseline", (910.0, 905.0, 900.0), (5.6, 5.4, 5.9)),)
    order, dropped = deploy_order(list(rounds), [lucky], objectives.for_study(settings))
    assert order == [] and len(dropped) == 1
    result = Result("m", "throughput", (lucky,), None, None, None, None, None, finalists=rounds, settings=settings)
    assert _no_winner(result) == ("no measured trial meets p99 <= 5 ms: the lowest p99 was 5.600 ms (trial 1, "
                                  "ort_cpu); no repository written")
