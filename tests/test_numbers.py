"""The numbers a run reports: the re-measured finalist medians with their intervals everywhere (CLI,
report.md, report.html, report.json), two baselines (as given / with its own best settings, the
headline against the second), unstable baselines given as intervals, and the engines of a tree winner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from navigator.records import TUNED_BASELINE, Bench, Finalist, OutputCheck, Result, TrialConfig, TrialOutcome, Validation
from navigator.report import build, headline
from navigator.search.finalists import compare_all, pick, tuned_baseline

OK = Validation(True, "", (OutputCheck("y", 1e-7, 1e-6, 1e-4, 1e-3, 0, True),))


def _trial(number: int, path: str, thr: float, threads: int | None = None) -> TrialOutcome:
    bench = Bench(1, thr, 1000 / thr, 1000 / thr, 1000 / thr, 1000 / thr, 1000 / thr, 0.01, 3, 30, True)
    runtime = {"threads": threads} if threads else {}
    return TrialOutcome(TrialConfig(number, path, {}, runtime, 1), "ok", validation=OK, bench=bench)


def _fin(o: TrialOutcome, role: str, rounds: tuple[float, ...]) -> Finalist:
    return Finalist(o.config.number, o.config.path, role, rounds, tuple(1000 / r for r in rounds))


# Search-time figures that differ from the re-measured ones, as on a busy machine.
BASE, TUNED, WIN = _trial(0, "eager", 55.3), _trial(7, "eager", 1294.8, threads=1), _trial(5, "ort_cpu", 2751.4)
WIN_ROUNDS = (2000.0, 2010.0, 1990.0, 2020.0, 2005.0, 1995.0, 2007.0)


def _result(tuned_rounds: tuple[float, ...], base_rounds: tuple[float, ...] = (100.0, 102.0, 98.0, 101.0, 99.0, 100.0, 103.0),
            winner: TrialOutcome = WIN) -> Result:
    finalists = [_fin(winner, "top 1", WIN_ROUNDS), _fin(TUNED, f"top 2, {TUNED_BASELINE}", tuned_rounds),
                 _fin(BASE, "baseline", base_rounds)]
    comparisons = compare_all(winner.config.number, finalists, "throughput")
    return Result("m", "throughput", (BASE, WIN, TUNED), winner, BASE, None, None, None,
                  finalists=tuple(finalists), comparisons=tuple(comparisons))


def test_the_tuned_baseline_is_the_best_trial_of_the_baselines_path() -> None:
    ranked = [WIN, TUNED, BASE]
    assert tuned_baseline(ranked, BASE) is TUNED
    assert tuned_baseline([WIN, BASE], BASE) is BASE  # none beats the defaults: the defaults
    assert tuned_baseline(ranked, None) is None
    chosen = pick(ranked, {"baseline": BASE, TUNED_BASELINE: TUNED}, k=2)
    assert [(r, o.config.number) for r, o in chosen] == [("top 1", 5), (f"top 2, {TUNED_BASELINE}", 7),
                                                         ("baseline", 0)]


def test_headline_speedup_is_against_the_tuned_baseline_with_remeasured_medians() -> None:
    tuned = tuple(r * 0.5 for r in WIN_ROUNDS)  # the winner is clearly 2x the tuned baseline
    head = headline.build(_result(tuned))
    assert head.speedups[0].against == TUNED_BASELINE and head.speedups[1].against == "baseline"
    assert head.winner is not None and head.winner.throughput == pytest.approx(2005.0)  # not 2751.4
    text = "\n".join(head.lines)
    assert "2751.4" not in text and "2005.0 inferences/s" in text and "median of 7 interleaved rounds" in text
    assert "1294.8" not in text and "1002.5 inferences/s" in text  # the tuned baseline re-measured
    speed = next(line for line in head.lines if line.startswith("speedup: "))
    assert speed.startswith("speedup: 2.00x the throughput of the source framework with its own best settings")
    assert "20.00x the throughput of the source framework as given (trial 0; 95% CI" in speed  # the defaults second


def test_an_interval_holding_1_is_not_distinguishable_not_a_ratio() -> None:
    # Per-round ratios from 0.98 to 1.13: the median is 1.09, but the interval holds 1.
    factors = (1.13, 0.98, 1.09, 1.10, 0.99, 1.12, 1.09)
    head = headline.build(_result(tuple(w / f for w, f in zip(WIN_ROUNDS, factors))))
    s = head.speedups[0]
    assert not s.distinct and s.low <= 1.0 <= s.high
    assert s.text.startswith("not distinguishable from the source framework with its own best settings")
    assert "1.09x" not in s.text and f"{s.low:.2f}-{s.high:.2f}x" in s.text


def test_an_unstable_baseline_gives_its_interval_and_is_flagged() -> None:
    # A baseline whose rounds read 2, 2, 28, 2, 34 (a resumed run on a loaded machine).
    rounds = WIN_ROUNDS[:5]
    finalists = [_fin(WIN, "top 1", rounds), _fin(BASE, f"baseline, {TUNED_BASELINE}", (2.0, 2.0, 28.0, 2.0, 34.0))]
    comparisons = compare_all(5, finalists, "throughput")
    assert {c.against for c in comparisons} == {"baseline", TUNED_BASELINE} and all(c.unstable for c in comparisons)
    result = Result("m", "throughput", (BASE, WIN), WIN, BASE, None, None, None,
                    finalists=tuple(finalists), comparisons=tuple(comparisons))
    speed = next(line for line in headline.build(result).lines if line.startswith("speedup: "))
    assert "unstable: its rounds or the ratio vary by more than 2x, no point ratio" in speed
    assert f"{comparisons[0].ratio:.2f}x" not in speed.replace(f"-{comparisons[0].ratio:.2f}x", "")


def test_a_winner_that_is_the_tuned_baseline_says_so() -> None:
    finalists = [_fin(TUNED, f"top 1, {TUNED_BASELINE}", WIN_ROUNDS), _fin(BASE, "baseline", (100.0,) * 7)]
    comparisons = compare_all(7, finalists, "throughput")
    result = Result("m", "throughput", (BASE, TUNED), TUNED, BASE, None, None, None,
                    finalists=tuple(finalists), comparisons=tuple(comparisons))
    speed = next(line for line in headline.build(result).lines if line.startswith("speedup: "))
    assert speed.startswith("speedup: the winner is the source framework with its own best settings (trial 7)")


def test_not_remeasured_gives_no_ratio() -> None:
    result = Result("m", "throughput", (BASE, WIN), WIN, BASE, None, None, None)
    lines = headline.build(result).lines
    assert "search-time figure, not re-measured" in lines[0] and "2751.4" in lines[0]
    assert any(line.startswith("speedup: not given") for line in lines)


def test_every_report_and_the_cli_say_the_same(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from navigator.cli import _summary

    factors = (1.13, 0.98, 1.09, 1.10, 0.99, 1.12, 1.09)
    result = _result(tuple(w / f for w, f in zip(WIN_ROUNDS, factors)))
    from dataclasses import replace

    result = replace(result, report=tmp_path / "report.json", repository=tmp_path / "model_repository" / "m")
    result = replace(result, engines={"measured": "XGBoost's own predict", "served": "Triton's FIL backend"})
    build.write(result, tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    lines = data["headline"]["lines"]
    assert any(line.startswith("speedup: not distinguishable from") for line in lines)
    assert lines[-1] == "engine: measured with XGBoost's own predict; the written config runs Triton's FIL backend"
    md = (tmp_path / "report.md").read_text()
    header = md.split("## ")[0]
    for line in lines:
        assert line[1:] in header
    assert "2751.4" not in header and "1.09x" not in header
    _summary(result)
    printed = capsys.readouterr().out.splitlines()
    assert printed[1:1 + len(lines)] == lines
    html = (tmp_path / "report.html")
    if html.is_file():  # the report extra (jinja2, plotly) installed
        text = html.read_text()
        assert "not distinguishable (95% CI holds 1)" in text and "2005.0/s" in text


def _engines(path: str, kind: str, backend: str) -> dict[str, str]:
    from navigator import paths

    return headline.engines(path, paths.get(path).engine, kind, backend)


def test_engines_of_a_tree_winner() -> None:
    native = _engines("tree_native", "xgboost", "fil")
    assert native["measured"] == "XGBoost's own predict"
    assert native["served"].startswith("Triton's FIL backend") and "not what measured" in native["served"]
    fil = _engines("fil", "lightgbm", "fil")
    assert fil["measured"] == "FIL (nvForest) on the CPU" and "not what measured" not in fil["served"]
    assert _engines("tree_onnx", "sklearn", "onnxruntime")["served"] == "Triton's onnxruntime backend"


def test_a_tree_run_reports_both_engines_and_both_baselines(tmp_path: Path) -> None:
    """The whole pipeline on a small XGBoost model: the CLI's last lines are the report's headline,
    which names the engines and compares with the baseline as given and with its own best settings."""
    xgboost = pytest.importorskip("xgboost")
    import numpy as np

    from tests.conftest import run_cli

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 6)).astype(np.float32)
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 3}, xgboost.DMatrix(x, label=x[:, 0] > 0),
                            num_boost_round=8)
    model = tmp_path / "forest.json"
    booster.save_model(str(model))
    out = tmp_path / "out"
    proc = run_cli("optimize", "--model", str(model), "--budget", "20s", "--batch-size", "16", "--path",
                   "tree_native", "--out", str(out), "--no-progress", "--window", "0.05")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((out / "report.json").read_text())
    lines = data["headline"]["lines"]
    assert proc.stdout.splitlines()[1:1 + len(lines)] == lines
    roles = ", ".join(f["role"] for f in data["finalists"])
    assert "baseline" in roles and TUNED_BASELINE in roles
    assert {c["against"] for c in data["comparisons"]} >= {"baseline", TUNED_BASELINE}
    assert lines[-1].startswith("engine: measured with XGBoost's own predict; the written config runs "
                                "Triton's FIL backend")
    assert data["engines"]["measured"] == "XGBoost's own predict"
    md = (out / "report.md").read_text().split("## ")[0]
    assert "Engine: measured with XGBoost's own predict" in md and "Speedup: " in md


# The gate's output check and exit codes, on small real runs (tests/gate_runs.py).

@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.gate_runs import linear_onnx, optimized

    root = tmp_path_factory.mktemp("gate-outputs")
    return {"base": optimized(linear_onnx(root / "base.onnx"), root / "base"),
            # The same weights in another file and run: outputs equal, figures within noise.
            "same": optimized(linear_onnx(root / "same.onnx"), root / "same"),
            # Same graph, same speed, weights three times larger: outputs far off.
            "drift": optimized(linear_onnx(root / "drift.onnx", scale=3.0), root / "drift"),
            "root": root}


def test_gate_fails_a_candidate_whose_outputs_drift(runs: dict[str, Path], tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    from tests.conftest import run_cli

    proc = run_cli("check", "--baseline", str(runs["base"]), "--candidate", str(runs["drift"]),
                   "--junit", str(tmp_path / "junit.xml"), "--summary", str(tmp_path / "summary.md"),
                   "--max-regression", "0.9")  # speed is not what fails it
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failures = {c.get("name"): c.find("failure") for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")}
    assert failures["outputs"] is not None and "outputs drift from the baseline's: output y" in \
        failures["outputs"].get("message", "")
    assert [n for n, f in failures.items() if f is not None] == ["outputs"]
    summary = (tmp_path / "summary.md").read_text()
    assert "| outputs | **FAIL** | outputs drift" in summary and "regression (outputs)" in summary


def test_gate_passes_the_same_model_from_another_run(runs: dict[str, Path]) -> None:
    from navigator.report.check import check

    verdict = check(runs["base"], runs["same"], max_regression=0.9)
    outputs = next(c for c in verdict.criteria if c.name == "outputs")
    assert outputs.ok and "matches the baseline's reference outputs" in outputs.detail, outputs.detail
    assert verdict.exit_code == 0


def _copy_run(run: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(run.parent, to)
    return to / "report.json"


def test_gate_exit_codes(runs: dict[str, Path], tmp_path: Path) -> None:
    from tests.conftest import run_cli

    # 3: the candidate's recorded model file is no model any more.
    broken = _copy_run(runs["same"], tmp_path / "broken")
    data = json.loads(broken.read_text())
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not an onnx model" * 10)
    data["source"]["model"] = str(garbage)
    broken.write_text(json.dumps(data))
    proc = run_cli("check", "--baseline", str(runs["base"]), "--candidate", str(broken))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stderr.startswith("navigator: error: the candidate's model did not load") and "Traceback" not in proc.stderr
    # 3 as well for a --model that is no model.
    proc = run_cli("check", "--baseline", str(runs["base"]), "--model", str(garbage), "--budget", "5s")
    assert proc.returncode == 3 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    # 5: a candidate without a valid trial (every trial invalid), with the verdict printed.
    none = _copy_run(runs["same"], tmp_path / "none")
    data = json.loads(none.read_text())
    data["outcomes"] = [{**o, "status": "invalid", "bench": None} for o in data["outcomes"]]
    data["winner"] = None
    none.write_text(json.dumps(data))
    proc = run_cli("check", "--baseline", str(runs["base"]), "--candidate", str(none))
    assert proc.returncode == 5 and "no valid trial" in proc.stdout, proc.stdout + proc.stderr
    # 5 for a baseline without one; 2 for a usage error (a missing --model file).
    proc = run_cli("check", "--baseline", str(none), "--candidate", str(runs["base"]))
    assert proc.returncode == 5 and "has no winner" in proc.stderr
    proc = run_cli("check", "--baseline", str(runs["base"]), "--model", str(tmp_path / "nope.onnx"))
    assert proc.returncode == 2 and "no such file" in proc.stderr
    # 2: the baseline's validation data is gone.
    bare = _copy_run(runs["base"], tmp_path / "bare")
    import shutil

    shutil.rmtree(bare.parent / "validation")
    proc = run_cli("check", "--baseline", str(bare), "--candidate", str(runs["same"]))
    assert proc.returncode == 2 and "validation data" in proc.stderr


def test_an_untrusted_pickle_exits_4(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from navigator import cli
    from navigator.errors import UntrustedPickleError
    from navigator.report import check, drift

    def refuse(*args: object, **kwargs: object) -> None:
        raise UntrustedPickleError("model.pt is a pickle; pass --trust-pickle")

    monkeypatch.setattr(check, "check", refuse)
    result = CliRunner().invoke(cli.app, ["check", "--baseline", "b.json", "--candidate", "c.json"])
    assert result.exit_code == 4, result.output
    # The refusal comes back from the trial worker by name and is raised again as itself.
    with pytest.raises(UntrustedPickleError):
        drift._reraise("UntrustedPickleError: model.pt is a pickle")
    from navigator.errors import InvalidModelError

    with pytest.raises(InvalidModelError):
        drift._reraise("InputError: model.onnx: not an ONNX model")


def test_a_study_rebuilt_from_its_trials_gives_no_ratio(tmp_path: Path) -> None:
    """A killed run (no summary on the study): the report shows the trials' figures as such, and
    neither its header nor report.json's speedup is a ratio of two search-time figures."""
    import optuna

    from navigator.records import to_dict
    from navigator.report import store
    from navigator.search.study import OUTCOME_ATTR, storage_url

    url = storage_url(tmp_path)
    study = optuna.create_study(storage=url, study_name="navigator")
    for outcome, role in ((BASE, "baseline"), (WIN, None)):
        trial = study.ask()
        trial.set_user_attr(OUTCOME_ATTR, json.dumps(to_dict(outcome)))
        if role:
            trial.set_user_attr("role", role)
        study.tell(trial, 1.0)
    store.render_from_storage(url, "navigator", tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["speedup"] is None
    assert any(line.startswith("speedup: not given") for line in data["headline"]["lines"])
    assert "2751.4 inferences/s" in data["headline"]["lines"][0] and "not re-measured" in data["headline"]["lines"][0]


def test_gate_model_mode_fails_on_drift(runs: dict[str, Path], tmp_path: Path) -> None:
    """--model: the candidate is optimized here, then its winner runs on the baseline's inputs."""
    from tests.conftest import run_cli

    proc = run_cli("check", "--baseline", str(runs["base"]), "--model", str(runs["root"] / "drift.onnx"),
                   "--budget", "6s", "--path", "ort_cpu", "--rounds", "3", "--max-regression", "0.9",
                   "--out", str(tmp_path / "cand"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "| outputs | **FAIL** | outputs drift from the baseline's: output y" in proc.stdout


def test_a_winner_outside_the_finalists_gives_no_ratio() -> None:
    """The finalists' best could not be deployed: the written winner's figures are the search's."""
    finalists = (_fin(TUNED, f"top 1, {TUNED_BASELINE}", WIN_ROUNDS), _fin(BASE, "baseline", (100.0,) * 7))
    result = Result("m", "throughput", (BASE, TUNED, WIN), WIN, BASE, None, None, None, finalists=finalists,
                    comparisons=tuple(compare_all(5, list(finalists), "throughput")))
    lines = headline.build(result).lines
    assert "search-time figure, not re-measured" in lines[0]
    assert lines[-1] == "speedup: not given (the written winner was not among the re-measured finalists)"
