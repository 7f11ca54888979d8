"""A quantized winner is shown beside the best fp32 and the best fp16/bf16 trial: where a quantized trial
meets the constraints, the best trial of each precision group joins the finalists (re-measured in the
same interleaved rounds), and every report (headline lines, report.md, report.json's headline) gives the
figures and ratios beside a quantized winner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from navigator.records import (Bench, Finalist, OutputCheck, Result, TrialConfig, TrialOutcome, Validation,
                               from_dict)
from navigator.report import build, headline
from navigator.search.finalists import compare_all, pick, precision_roles

OK = Validation(True, "", (OutputCheck("y", 1e-3, 1e-3, 1e-1, 1e-1, 0, True),))


def _trial(number: int, path: str, thr: float, precision: str) -> TrialOutcome:
    bench = Bench(8, thr, 8000 / thr, 8000 / thr, 8000 / thr, 8000 / thr, 8000 / thr, 0.01, 3, 30, True)
    return TrialOutcome(TrialConfig(number, path, {}, {}, 8), "ok", validation=OK, bench=bench, precision=precision)


INT8, INT8_B = _trial(4, "openvino_int8", 400.0, "int8"), _trial(5, "ort_int8", 120.0, "int8")
FP32, BF16 = _trial(1, "ort_cpu", 40.0, "fp32"), _trial(2, "openvino", 230.0, "bf16")
RANKED = [INT8, BF16, INT8_B, FP32]  # best first


def test_a_quantized_trial_brings_the_best_of_each_precision_into_the_finalists() -> None:
    roles = precision_roles(RANKED)
    assert roles == {"best fp32": FP32, "best fp16/bf16": BF16, "best int8/fp8": INT8}
    chosen = pick(RANKED, {"baseline": FP32, **roles}, k=2)
    assert [(r, o.config.number) for r, o in chosen] == [
        ("top 1, best int8/fp8", 4), ("top 2, best fp16/bf16", 2), ("baseline, best fp32", 1)]
    # a quantized trial outside the top k is re-measured too: its ratio to the winner is then measured
    chosen = pick([BF16, FP32, INT8_B], precision_roles([BF16, FP32, INT8_B]), k=1)
    assert [(r, o.config.number) for r, o in chosen] == [("top 1, best fp16/bf16", 2), ("best fp32", 1),
                                                         ("best int8/fp8", 5)]
    assert precision_roles([BF16, FP32]) == {}  # no quantized trial: nothing added
    assert precision_roles([INT8]) == {"best int8/fp8": INT8}


def _result(finalists: list[Finalist]) -> Result:
    comparisons = compare_all(INT8.config.number, finalists, "throughput")
    return Result("m", "throughput", (FP32, BF16, INT8, INT8_B), INT8, None, None, None, None,
                  finalists=tuple(finalists), comparisons=tuple(comparisons))


def _fin(o: TrialOutcome, role: str, scale: float) -> Finalist:
    rounds = tuple(scale * r for r in (100.0, 101.0, 99.0, 100.5, 99.5))
    return Finalist(o.config.number, o.config.path, role, rounds, tuple(8000 / r for r in rounds))


REMEASURED = [_fin(INT8, "top 1", 4.0), _fin(BF16, "top 2, best fp16/bf16", 2.0), _fin(FP32, "best fp32", 0.4)]


def test_the_headline_gives_the_remeasured_figures_and_ratios_beside_a_quantized_winner(tmp_path: Path) -> None:
    result = _result(REMEASURED)
    head = headline.build(result)
    assert [(f.role, f.number, f.throughput) for f in head.beside] == [("best fp32", 1, pytest.approx(40.0)),
                                                                        ("best fp16/bf16", 2, pytest.approx(200.0))]
    fp32_line = next(line for line in head.lines if line.startswith("beside the int8 winner, the best fp32 trial"))
    assert "trial 1 ort_cpu" in fp32_line and "40.0 inferences/s" in fp32_line and "median of 5 interleaved rounds" in fp32_line
    assert "the winner: 10.00x the throughput of the best fp32 trial (trial 1; 95% CI" in fp32_line
    half = next(line for line in head.lines if line.startswith("beside the int8 winner, the best fp16/bf16 trial"))
    assert "2.00x the throughput of the best fp16/bf16 trial (trial 2" in half
    build.write(result, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert fp32_line[1:] in md and "| best fp32 (trial 1) | 10.000x |" in md
    saved = json.loads((tmp_path / "report.json").read_text())["headline"]["beside"]
    assert [f["number"] for f in saved] == [1, 2] and saved[0]["rounds"] == list(REMEASURED[2].throughput)
    assert from_dict(Result, json.loads((tmp_path / "report.json").read_text())).headline == head


def test_without_remeasurement_the_search_figures_are_given_and_no_ratio() -> None:
    head = headline.build(_result([]))
    assert [f.number for f in head.beside] == [1, 2]
    line = next(line for line in head.lines if "the best fp32 trial" in line)
    assert "search-time figure, not re-measured" in line and "no ratio (not re-measured with the winner)" in line


def test_an_unquantized_winner_has_nothing_beside_it() -> None:
    finalists = [_fin(BF16, "top 1", 2.0), _fin(FP32, "top 2", 0.4)]
    result = Result("m", "throughput", (FP32, BF16), BF16, None, None, None, None, finalists=tuple(finalists),
                    comparisons=tuple(compare_all(BF16.config.number, finalists, "throughput")))
    head = headline.build(result)
    assert head.beside == () and not any(line.startswith("beside") for line in head.lines)


def _rounds(o: TrialOutcome, role: str, *thr: float) -> Finalist:
    return Finalist(o.config.number, o.config.path, role, thr, tuple(8000 / t for t in thr))


def test_a_quantized_trial_is_deployed_only_where_it_wins_beyond_the_interval() -> None:
    from navigator.search.finalists import quantized_must_win

    order = [INT8, BF16, INT8_B, FP32]
    clear = [_rounds(INT8, "top 1", 400, 402, 398, 401, 399), _rounds(BF16, "top 2", 230, 231, 229, 230, 232),
             _rounds(FP32, "best fp32", 40, 41, 39, 40, 40)]
    assert quantized_must_win(order, clear, "throughput") == (order, "")
    # 1% ahead by the median, the paired rounds on both sides of a tie: the bf16 trial goes first
    tie = [_rounds(INT8, "top 1", 233, 226, 234, 228, 232), _rounds(BF16, "top 2", 230, 231, 229, 230, 227),
           clear[2]]
    kept, note = quantized_must_win(order, tie, "throughput")
    assert [o.config.number for o in kept] == [2, 4, 5, 1]
    assert "trial 4 (openvino_int8, int8)" in note and "unquantized trial 2 is deployed" in note, note
    # latency: the same rule on p99
    assert quantized_must_win(order, tie, "latency")[0][0] is BF16
    # nothing unquantized re-measured, or an unquantized trial first: as it was
    assert quantized_must_win(order, tie[:1], "throughput") == (order, "")
    assert quantized_must_win([BF16, INT8], tie, "throughput") == ([BF16, INT8], "")
