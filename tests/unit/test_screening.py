"""Low-fidelity screening, cost keys (torch.compile's mode), skipping what cannot finish, GPU event timing
hooks and the report's budget section: the rules without a worker or a framework."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import optuna
import pytest

from navigator import paths
from navigator.records import Bench, Result, TrialConfig, TrialOutcome
from navigator.report import spend
from navigator.search import budget as budget_mod
from navigator.search import space as space_mod
from navigator.search.storage import StudyStorage
from navigator.search.study import Search
from navigator.settings import StudySettings
from navigator.trial import bench as bench_mod
from navigator.trial.run import _bench

SPACE = "path: ort_cpu\nparams:\n  threads: {stage: runtime, int: [1, 12]}\n"


def _b(throughput: float, p99: float = 1.0) -> Bench:
    return Bench(1, throughput, 1.0, p99 / 2, p99, p99, p99, 0.01, 3, 30, True)


def _ok(n: int, throughput: float, path: str = "ort_cpu", **kw: Any) -> TrialOutcome:
    return TrialOutcome(TrialConfig(n, path, {}, {}, 1), "ok", bench=_b(throughput), **kw)


def test_the_bar_is_the_third_best_full_measurement() -> None:
    assert budget_mod.screen_bar([_ok(0, 10.0), _ok(1, 30.0)], "throughput") is None  # all measured in full
    outcomes = [_ok(0, 10.0), _ok(1, 30.0), _ok(2, 20.0), _ok(3, 5.0),
                TrialOutcome(TrialConfig(4, "ort_cpu", {}, {}, 1), "screened", bench=_b(99.0))]  # not a full one
    assert budget_mod.screen_bar(outcomes, "throughput") == 10.0
    latency = [TrialOutcome(TrialConfig(i, "ort_cpu", {}, {}, 1), "ok", bench=_b(1.0, p99)) for i, p99 in
               enumerate([4.0, 1.0, 2.0, 3.0])]
    assert budget_mod.screen_bar(latency, "latency") == 3.0


def test_could_lead_allows_the_margin() -> None:
    assert bench_mod.could_lead(_b(90.0), 100.0, "throughput")  # within 15%
    assert not bench_mod.could_lead(_b(80.0), 100.0, "throughput")
    assert bench_mod.could_lead(_b(1.0, p99=2.2), 1.0, "latency")  # its p50 (1.1 ms) is within 15% of 1 ms
    assert not bench_mod.could_lead(_b(1.0, p99=2.4), 1.0, "latency")


class _Runner:
    """A runner whose call sleeps `seconds`; counts the host-copy measurements asked for."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.host_calls = seconds, 0

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], None]:
        import time

        return lambda: time.sleep(self.seconds)

    def host_call(self, inputs: dict[str, np.ndarray]) -> Callable[[], None]:
        self.host_calls += 1
        return self.prepare(inputs)


def test_a_trial_far_behind_the_bar_stops_after_its_short_measurement(tmp_path: Path) -> None:
    ctx: Any = SimpleNamespace(settings=StudySettings(window_s=0.02))
    config = TrialConfig(5, "eager", {}, {}, 1)
    slow = _Runner(0.004)  # about 250/s
    quick, screened = _bench(ctx, config, slow, {}, bar=1000.0)
    assert screened and quick.windows == 1 and not quick.stable and slow.host_calls == 0
    assert quick.throughput < 300  # sleeping 4 ms a call
    full, screened = _bench(ctx, config, slow, {}, bar=1.0)  # well within reach: measured in full
    assert not screened and full.windows >= bench_mod.STABLE_WINDOWS and slow.host_calls == 1
    _, screened = _bench(ctx, config, slow, {}, bar=None)  # no bar: always in full
    assert not screened


def test_measure_times_calls_with_the_given_timer() -> None:
    b = bench_mod.measure(lambda: None, 4, window_s=0.01, timer=lambda call: (call(), 0.002)[1])
    assert b.throughput == pytest.approx(2000.0) and b.p50_ms == pytest.approx(2.0) and b.clock == "cuda events"
    assert bench_mod.measure(lambda: None, 1, window_s=0.01).clock == "host"


def _search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Search:
    monkeypatch.setattr(paths, "space", lambda name, framework=None, narrowing=None: space_mod.parse(SPACE, "t.yaml"))
    settings = StudySettings(budget_s=600, sampler="random", **kw)
    return Search(StudyStorage(f"sqlite:///{tmp_path / 'study.db'}"), settings, ("onnx", "file"), ["ort_cpu"], "fp")


def test_the_search_screens_once_three_trials_are_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    search = _search(tmp_path, monkeypatch, trials=8)
    bars: list[float | None] = []

    def run(config: TrialConfig, timeout: float, bar: float | None = None) -> TrialOutcome:
        bars.append(bar)
        figure = 100.0 / (1 + config.number)  # each trial slower than the one before
        if bar is not None and figure * 1.15 < bar:
            return TrialOutcome(config, "screened", bench=_b(figure), duration_s=0.1)
        return TrialOutcome(config, "ok", bench=_b(figure), duration_s=0.1)

    search.run(run)
    assert bars[:3] == [None, None, None]  # the baseline, then until three are measured in full
    assert bars[3] == pytest.approx(100.0 / 3) and all(b is not None for b in bars[3:])
    screened = [o.config.number for o in search.outcomes() if o.status == "screened"]
    trials = search.study.get_trials(deepcopy=False)
    assert screened and all(trials[n].state == optuna.trial.TrialState.COMPLETE and trials[n].value == 100.0 / (1 + n)
                            for n in screened)  # screened trials tell the sampler their short figure
    assert search.outcomes()[0].config.number == 0 and bars[0] is None  # trial 0, the baseline, in full


def test_no_screening_when_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    search = _search(tmp_path, monkeypatch, trials=5, screen=False)
    bars: list[float | None] = []
    search.run(lambda c, t, bar=None: (bars.append(bar), _ok(c.number, 50.0))[1])
    assert bars == [None] * 5


def test_expected_cost_follows_the_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    compile_ = paths.get("torch_compile")  # its Plugin: cost_by is torch_compile.COST_BY
    def tried(n: int, mode: str, s: float, status: str = "ok") -> TrialOutcome:
        return TrialOutcome(TrialConfig(n, "torch_compile", {}, {"mode": mode}, 1), status, duration_s=s)  # type: ignore[arg-type]
    costs = budget_mod.Costs(["torch_compile"])
    assert costs.expected("torch_compile", {"mode": "max-autotune"}) == compile_.cost_by["mode"]["max-autotune"]
    seen = budget_mod.Costs(["torch_compile"], [tried(0, "default", 20.0), tried(1, "default", 30.0)])
    assert seen.expected("torch_compile", {"mode": "default"}) == 25.0  # learnt
    # the default mode's trials say nothing of max-autotune's cost
    assert seen.expected("torch_compile", {"mode": "max-autotune"}) == 600.0
    cut = budget_mod.Costs(["torch_compile"], [tried(2, "reduce-overhead", 90.0, "timeout")])
    assert cut.expected("torch_compile", {"mode": "reduce-overhead"}) == 90.0  # stopped at 90 s: at least that
    assert seen.per_path() == {"torch_compile": 25.0}
    assert costs.label("torch_compile", {"mode": "max-autotune", "precision": "fp16"}) == \
        "torch_compile mode=max-autotune"
    costs.learn(tried(3, "max-autotune", 400.0))  # what a finished trial teaches, added as it finishes
    assert costs.expected("torch_compile", {"mode": "max-autotune"}) == 400.0 and costs.tried == {"torch_compile"}


def test_weighing_a_trial_reads_the_registry_once_per_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The paths' declared costs are read when the study opens; each trial adds only what it taught."""
    search = _search(tmp_path, monkeypatch, trials=6)
    builds: list[str] = []
    real = paths.get
    monkeypatch.setattr(paths, "get", lambda name: (builds.append(name), real(name))[1])
    search.run(lambda config, timeout, bar=None: _ok(config.number, 10.0, duration_s=0.5))
    assert len(search.outcomes()) == 6 and builds == []
    assert search.costs.expected("ort_cpu", {}) == 0.5  # learnt from the six trials as they finished


def test_a_trial_that_cannot_finish_in_time_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import navigator.paths.ort_cpu  # noqa: F401  # its COST_BY, as the study reads it when it opens

    monkeypatch.setattr(sys.modules["navigator.paths.ort_cpu"], "COST_BY", {"threads": {7: 5000.0}}, raising=False)
    search = _search(tmp_path, monkeypatch, trials=4)
    for n in (7, 1, 2, 3):
        search.study.enqueue_trial({"path": "ort_cpu", "ort_cpu.threads": n})
    ran: list[int] = []

    def run(config: TrialConfig, timeout: float, bar: float | None = None) -> TrialOutcome:
        ran.append(int(config.runtime["threads"]))
        return _ok(config.number, 10.0, duration_s=0.1)

    search.run(run)
    assert 7 not in ran and len(ran) == 4
    [note] = [n for n in search.cost_notes() if n.startswith("skipped for cost")]
    assert "ort_cpu threads=7 (expected 5000 s) cannot finish" in note
    failed = [t for t in search.study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1 and "cannot finish" in failed[0].user_attrs["deferred"]


def test_the_report_says_where_the_budget_went() -> None:
    outcomes = [_ok(0, 10.0, "eager", duration_s=3.0, convert_s=1.0, load_s=0.5),
                TrialOutcome(TrialConfig(1, "ort_cpu", {}, {}, 1), "screened", bench=_b(2.0), duration_s=2.0),
                _ok(2, 12.0, "ort_cpu", duration_s=4.0, convert_s=2.0, load_s=1.0)]
    rows = spend.per_path(outcomes, deferred=["torch_compile"], skipped=["torch_compile", "torch_compile"])
    assert [r.path for r in rows] == ["eager", "ort_cpu", "torch_compile"]
    assert rows[1].trials == 2 and rows[1].by_status == {"ok": 1, "screened": 1} and rows[1].trial_s == 6.0
    assert (rows[2].trials, rows[2].deferred, rows[2].skipped) == (0, 1, 2)
    result = Result("m", "throughput", tuple(outcomes), None, None, None, None, None, spend=rows,
                    phases={"search": 9.0, "finalists": 2.0, "deploy": 1.0})
    text = "\n".join(spend.markdown(result))
    assert "## Where the budget went" in text and "This run: search 9 s, finalists 2 s, deploy 1 s." in text
    assert "| ort_cpu | 2 | 1 ok, 1 screened | 6.0 | 2.0 | 1.0 | 0 | 0 |" in text
