"""The regression gate's decisions on recorded reports: noise-aware intervals, each criterion, the exit
codes of the CLI (0 / 1 / 2 / 5), the Markdown summary and the JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from navigator.errors import InputError
from navigator.records import (Bench, Finalist, OutputCheck, Result, TrialConfig, TrialOutcome, Validation,
                               to_dict)
from navigator.report import gate
from navigator.report.check import check, evaluate, ratio_interval, side
from tests.conftest import run_cli

OK = Validation(True, "", (OutputCheck("output__0", 1e-7, 1e-6, 1e-4, 1e-3, 0, True),))


def _result(rounds: tuple[float, ...], p99: tuple[float, ...] | None = None, path: str = "ort_cpu",
            extra_paths: tuple[str, ...] = ("eager",), valid: bool = True) -> Result:
    """A report whose winner (trial 1 on `path`) was re-measured with these interleaved rounds."""
    p99 = p99 or tuple(1000.0 / t for t in rounds)
    med = float(np.median(rounds))
    bench = Bench(4, med, 1, 1, 1, 1, float(np.median(p99)), 0.02, 3, 100, True)
    winner = TrialOutcome(TrialConfig(1, path, {}, {}, 4), "ok", validation=OK, bench=bench)
    others = tuple(TrialOutcome(TrialConfig(2 + i, p, {}, {}, 4), "ok", validation=OK, bench=bench)
                   for i, p in enumerate(extra_paths))
    broken = TrialOutcome(TrialConfig(9, "openvino", {}, {}, 4), "invalid", "max abs error 3.1 > atol",
                          Validation(False, "max abs error 3.1 > atol", ()))
    if not valid:
        return Result("m", "throughput", (broken,), None, None, None, None, None)
    fin = (Finalist(1, path, "top 1", rounds, p99),)
    return Result("m", "throughput", (winner, *others, broken), winner, others[0] if others else None, 1.0,
                  None, None, finalists=fin)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run whose model, validation data and cache the reports of a check point at: the gate runs
    the candidate's winner on the baseline's validation inputs."""
    from tests.gate_runs import linear_onnx, optimized

    root = tmp_path_factory.mktemp("real")
    return optimized(linear_onnx(root / "model.onnx"), root / "run")


def _write(tmp: Path, name: str, result: Result, real: Path | None = None, **extra: object) -> Path:
    """`result` as a report.json; with `real`, its winner is that run's (under its own number) and
    the report has that run's model, validation data and cache, for the gate's output check."""
    path = tmp / name / "report.json"
    path.parent.mkdir(parents=True)
    data = {**to_dict(result), **extra}
    if real is not None:
        ran = json.loads(real.read_text())
        data["source"] = ran["source"]
        data["winner"]["config"] = {**ran["winner"]["config"], "number": data["winner"]["config"]["number"]}
        for name in ("validation", "cache"):
            (path.parent / name).symlink_to(real.parent / name)
    path.write_text(json.dumps(data))
    return path


BASE = (1000.0, 1010.0, 990.0, 1005.0, 995.0)


def test_interval_paired_and_unpaired() -> None:
    same = ratio_interval(BASE, BASE, paired=True)
    assert same == (1.0, 1.0, 1.0)
    half = tuple(t / 2 for t in BASE)
    r, low, high = ratio_interval(half, BASE, paired=False)
    assert r == pytest.approx(0.5, rel=0.02) and low < r < high < 0.55
    # One figure per side: the interval is widened by the stated noise, never exact.
    r, low, high = ratio_interval((90.0,), (100.0,), paired=False, noise=0.05)
    assert r == pytest.approx(0.9) and low < 0.9 < high and high == pytest.approx(0.9 * np.exp(1.96 * 0.05))


def test_identical_reports_pass_and_a_clear_slowdown_fails() -> None:
    base = side("baseline", _result(BASE))
    assert evaluate(base, side("candidate", _result(BASE)), 0.1, paired=False).exit_code == 0
    slow = evaluate(base, side("candidate", _result(tuple(t * 0.6 for t in BASE))), 0.1, paired=False)
    failed = {c.name for c in slow.criteria if not c.ok}
    assert slow.exit_code == 1 and failed == {"throughput", "p99 latency"}


def test_a_slowdown_hidden_in_noise_or_within_the_margin_passes() -> None:
    base = side("baseline", _result(BASE))
    noisy = side("candidate", _result((400.0, 1300.0, 850.0, 1200.0, 500.0)))  # median 0.85x, huge spread
    assert evaluate(base, noisy, 0.1, paired=False).exit_code == 0
    within = side("candidate", _result(tuple(t * 0.95 for t in BASE)))
    assert evaluate(base, within, 0.1, paired=False).exit_code == 0
    assert evaluate(base, within, 0.01, paired=False).exit_code == 1  # a tighter margin catches it


def test_latency_only_regression() -> None:
    base = side("baseline", _result(BASE, p99=(1.0, 1.01, 0.99, 1.0, 1.02)))
    cand = side("candidate", _result(BASE, p99=(2.0, 2.1, 1.9, 2.05, 2.0)))
    verdict = evaluate(base, cand, 0.1, paired=False)
    assert [c.name for c in verdict.criteria if not c.ok] == ["p99 latency"]


def test_no_valid_candidate_and_a_vanished_winner_path() -> None:
    base = side("baseline", _result(BASE))
    invalid = evaluate(base, side("candidate", _result(BASE, valid=False)), 0.1, paired=False)
    assert invalid.exit_code == 5 and not invalid.criteria[0].ok and "invalid" in invalid.criteria[0].detail
    moved = evaluate(base, side("candidate", _result(BASE, path="openvino", extra_paths=("eager",))), 0.1, False)
    assert [c.name for c in moved.criteria if not c.ok] == ["winner path"]
    with pytest.raises(InputError, match="baseline"):
        evaluate(side("baseline", _result(BASE, valid=False)), base, 0.1, paired=False)


def test_metric_drop(tmp_path: Path, real: Path) -> None:
    b = _write(tmp_path, "b", _result(BASE), real, metric={"winner": 0.91})
    assert check(b, _write(tmp_path, "c", _result(BASE), real, metric={"winner": 0.90})).exit_code == 1
    assert check(b, _write(tmp_path, "d", _result(BASE), real, metric={"winner": 0.90}),
                 max_metric_drop=0.02).exit_code == 0


def test_cli_exit_codes_summary_and_junit(tmp_path: Path, real: Path) -> None:
    base = _write(tmp_path, "base", _result(BASE), real)
    same = _write(tmp_path, "same", _result(tuple(reversed(BASE))), real)
    slow = _write(tmp_path, "slow", _result(tuple(t * 0.5 for t in BASE)), real)
    proc = run_cli("check", "--baseline", str(base), "--candidate", str(same), "--junit", str(tmp_path / "ok.xml"))
    assert proc.returncode == 0, proc.stderr
    assert "no regression" in proc.stdout
    assert ET.parse(tmp_path / "ok.xml").getroot().get("failures") == "0"
    proc = run_cli("check", "--baseline", str(base), "--candidate", str(slow), "--junit", str(tmp_path / "bad.xml"),
                   "--summary", str(tmp_path / "summary.md"))
    assert proc.returncode == 1, proc.stderr
    failures = ET.parse(tmp_path / "bad.xml").getroot().iter("failure")
    assert {f.get("type") for f in failures} == {"regression"}
    assert "| throughput | **FAIL** |" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a readable JSON report"),
    ('{"outcomes": 3, "winner": null}', "not a navigator report.json"),
    ('{"outcomes": [{"config": 5}], "winner": null}', "malformed navigator report"),
    ("[]", "not a navigator report.json"),
])
def test_malformed_reports_exit_2(tmp_path: Path, content: str, message: str) -> None:
    good = _write(tmp_path, "good", _result(BASE))
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    for args in (("--baseline", str(bad), "--candidate", str(good)),
                 ("--baseline", str(good), "--candidate", str(bad))):
        proc = run_cli("check", *args)
        assert proc.returncode == 2, (content, proc.stdout, proc.stderr)
        assert proc.stderr.startswith("navigator: error:") and message in proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    good = _write(tmp_path, "good", _result(BASE))
    for args in (("--baseline", str(good)),
                 ("--baseline", str(good), "--candidate", str(good), "--model", str(good)),
                 ("--baseline", str(tmp_path / "missing.json"), "--candidate", str(good)),
                 ("--baseline", str(good), "--candidate", str(good), "--max-regression", "1.5")):
        proc = run_cli("check", *args)
        assert proc.returncode == 2 and "navigator: error:" in proc.stderr, args


def test_markdown_names_both_sides() -> None:
    verdict = evaluate(side("baseline", _result(BASE)), side("candidate", _result(BASE)), 0.1, paired=True)
    text = gate.markdown(replace(verdict, mode="interleaved"))
    assert "interleaved" in text and "baseline: winner ort_cpu (trial 1, batch 4)" in text
