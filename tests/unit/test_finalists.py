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
