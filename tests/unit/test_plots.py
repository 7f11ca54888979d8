"""The report's figures from a Result: the Pareto front and optuna's parameter importances."""

from __future__ import annotations

from navigator.records import Bench, Result, TrialConfig, TrialOutcome
from navigator.report import plots


def _trial(n: int, path: str, threads: int, mode: str, throughput: float) -> TrialOutcome:
    bench = Bench(1, throughput, 1, 1, 1, 1, 1000 / throughput, 0.01, 3, 30, True)
    return TrialOutcome(TrialConfig(n, path, {}, {"threads": threads, "mode": mode}, 1), "ok", bench=bench)


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
    for name, make in plots.FIGURES.items():  # every figure builds from this Result
        if name == "serving":
            assert make(result) is None  # this run was not served
            continue
        assert make(result).to_dict()["data"] is not None


def test_serving_curve_has_the_default_and_the_tuned_config() -> None:
    from dataclasses import replace

    from navigator.records import PerfPoint, ServingConfig, ServingReport, ServingTrial

    def trial(n: int, scale: float) -> ServingTrial:
        points = tuple(PerfPoint(c, scale * c, 1, 2, 3, 4, 0.5, 1.0) for c in (1, 4))
        return ServingTrial(n, ServingConfig(8, instances=n + 1), points, scale * 4)

    trials = [_trial(0, "ort_cpu", 1, "a", 10.0)]
    result = Result("m", "throughput", tuple(trials), trials[0], trials[0], 1.0, None, None)
    default, best = trial(0, 100.0), trial(1, 150.0)
    served = replace(result, serving=ServingReport("python", "m", default=default, best=best, trials=(default, best)))
    data = plots.serving_curve(served).to_dict()["data"]
    assert [d["name"] for d in data] == ["default serving config", "tuned serving config"]
    assert list(data[1]["y"]) == [150.0, 600.0] and list(data[0]["x"]) == [1, 4]
    only_default = replace(result, serving=ServingReport("python", "m", default=default, best=default))
    assert len(plots.serving_curve(only_default).to_dict()["data"]) == 1


def test_without_the_report_extra_the_other_reports_are_still_written(tmp_path, monkeypatch) -> None:
    from navigator.errors import UnavailableError
    from navigator.report import build, html_page

    def missing(*_: object) -> str:
        raise UnavailableError("plotly is not installed; install it with: pip install 'triton-navigator[report]'")

    monkeypatch.setattr(html_page, "render", missing)
    trials = [_trial(i, "ort_cpu", 1 + i % 2, "a", 100.0 + i) for i in range(3)]
    result = Result("m", "throughput", tuple(trials), trials[0], trials[0], 1.0, None, tmp_path / "report.json")
    build.write(result, tmp_path)
    assert (tmp_path / "report.json").is_file() and not (tmp_path / "report.html").exists()
    assert "report.html not written: plotly is not installed" in (tmp_path / "report.md").read_text()
