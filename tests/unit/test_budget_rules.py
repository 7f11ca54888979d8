"""The search loop and its budget without a worker: repeats answered from the study, conversion failures
that do not depend on a parameter, an exhausted space, interrupted trials, the budget's rules."""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import optuna
import pytest

from navigator import paths
from navigator.records import Bench, Finalist, TrialConfig, TrialOutcome, to_dict
from navigator.search import space as space_mod
from navigator.search.budget import DEPLOY_S, Budget, reserve
from navigator.search.seen import Seen
from navigator.search.storage import StudyStorage
from navigator.search.study import Search
from navigator.settings import StudySettings

SPACE = """
path: ort_cpu
params:
  exporter: {stage: convert, choices: [dynamo, torchscript]}
  opset:    {stage: convert, int: [13, 18], when: {exporter: torchscript}}
  level:    {stage: convert, choices: [all, basic]}
  threads:  {stage: runtime, int: [1, 2]}
"""


def _bench(throughput: float) -> Bench:
    return Bench(1, throughput, 1.0, 1.0, 1.0, 1.0, 1.0, 0.01, 3, 30, True)


def _search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str = SPACE, **kw: object) -> Search:
    monkeypatch.setattr(paths, "space", lambda name, framework=None, narrowing=None: space_mod.parse(text, "test.yaml"))
    settings = StudySettings(budget_s=600, sampler="random", **kw)  # type: ignore[arg-type]
    storage = StudyStorage(f"sqlite:///{tmp_path / 'study.db'}")
    return Search(storage, settings, ("onnx", "file"), ["ort_cpu"], "fp")


def test_points_count_the_conditional_space() -> None:
    found = space_mod.points(space_mod.parse(SPACE, "t"), ("onnx", "file"))
    assert found is not None
    # dynamo: 2 levels x 2 threads; torchscript: 6 opsets x 2 levels x 2 threads
    assert len(found) == 4 + 24 and len({repr(p) for p in found}) == len(found)
    assert found[0] == ({"exporter": "dynamo", "level": "all"}, {"threads": 2})  # the defaults come first
    assert space_mod.points(space_mod.parse(SPACE, "t"), ("onnx", "file"), cap=10) is None


def test_a_small_space_ends_the_search_without_repeats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path with few points (tree_native threads) used to spend most trials on one configuration."""
    search = _search(tmp_path, monkeypatch, "path: ort_cpu\nparams:\n  threads: {stage: runtime, int: [1, 3]}\n")
    ran: list[TrialConfig] = []

    def run(config: TrialConfig, timeout: float, bar: float | None = None) -> TrialOutcome:
        ran.append(config)
        return TrialOutcome(config, "ok", bench=_bench(100.0 + config.runtime["threads"]), duration_s=0.01)

    search.run(run)
    assert sorted(c.runtime["threads"] for c in ran) == [1, 2, 3]  # each point once, then it stops
    assert "search space exhausted after 3 trials" in search.notes


def test_a_conversion_failure_independent_of_a_param_skips_its_other_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An export that fails whatever the opset is tried with two opsets, not with all six."""
    search = _search(tmp_path, monkeypatch, trials=40)
    ran: list[TrialConfig] = []

    def run(config: TrialConfig, timeout: float, bar: float | None = None) -> TrialOutcome:
        ran.append(config)
        if config.convert["exporter"] == "torchscript":  # a message with numbers that change
            return TrialOutcome(config, "failed", f"export failed at node {config.number * 7}: unsupported op",
                                duration_s=0.01)
        return TrialOutcome(config, "ok", bench=_bench(100.0), convert_s=0.01, duration_s=0.01)

    search.run(run)
    torchscript = [c for c in ran if c.convert["exporter"] == "torchscript"]
    keys = [repr(sorted({**c.convert, **c.runtime}.items())) for c in ran]
    assert len(keys) == len(set(keys))  # nothing ran twice
    # failures with two opsets (for each level, at worst) show that the opset does not matter: at most
    # 4 of the 12 torchscript configurations run
    assert 2 <= len(torchscript) <= 4 and len({c.convert["opset"] for c in torchscript}) <= 4
    assert len([c for c in ran if c.convert["exporter"] == "dynamo"]) == 4
    assert any("search space exhausted" in n for n in search.notes)
    assert any("whatever its opset" in n for n in search.seen.notes())


def test_a_proposed_repeat_is_answered_from_the_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = Seen({"ort_cpu": space_mod.parse(SPACE, "t")}, ("onnx", "file"), (1,))
    first = TrialOutcome(TrialConfig(3, "ort_cpu", {"exporter": "dynamo", "level": "all"}, {"threads": 1}, 1), "ok",
                         bench=_bench(5.0))
    seen.add(first)
    again = TrialConfig(9, "ort_cpu", {"exporter": "dynamo", "level": "all"}, {"threads": 1}, 1)
    answer = seen.answer(again)
    assert answer is not None and answer.number == 3 and answer.outcome is first
    assert seen.answer(TrialConfig(9, "ort_cpu", {"exporter": "dynamo", "level": "all"}, {"threads": 2}, 1)) is None
    # a failed conversion fails again with other runtime params, not with another conversion setting
    broken = TrialOutcome(TrialConfig(4, "ort_cpu", {"exporter": "dynamo", "level": "basic"}, {"threads": 1}, 1),
                          "failed", "boom")
    seen.add(broken)
    assert seen.answer(TrialConfig(10, "ort_cpu", {"exporter": "dynamo", "level": "basic"}, {"threads": 2}, 1))
    assert seen.answer(TrialConfig(10, "ort_cpu", {"exporter": "torchscript", "opset": 13, "level": "basic"},
                                   {"threads": 2}, 1)) is None


def test_an_interrupted_trial_is_reported_and_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    search = _search(tmp_path, monkeypatch)
    done = search.study.ask()
    done.set_user_attr("outcome", json.dumps(to_dict(TrialOutcome(search.config(done), "ok", bench=_bench(1.0)))))
    search.study.tell(done, 1.0)
    killed = search.study.ask()  # left RUNNING, as by kill -9
    search.config(killed)
    again = _search(tmp_path, monkeypatch)
    [lost] = again.interrupted()
    retry = again.study.get_trials(deepcopy=False)[-1]
    assert lost.config.number == killed.number and lost.status == "failed"
    assert lost.error == f"interrupted, retried as trial {retry.number}"
    assert retry.user_attrs["retry_of"] == killed.number
    assert f"resumed: 1 trials from earlier runs; trial {killed.number} was interrupted, retried as trial " \
           f"{retry.number}" in again.notes
    assert again.study.trials[killed.number].state == optuna.trial.TrialState.FAIL


def test_stored_finalists_are_reused_only_for_the_same_trials(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    search = _search(tmp_path, monkeypatch)
    finalists = [Finalist(2, "ort_cpu", "top 1", (1.0, 2.0), (3.0, 4.0))]
    search.store_finalists([0, 1, 2], finalists)
    assert _search(tmp_path, monkeypatch).stored_finalists([0, 1, 2]) == finalists
    assert search.stored_finalists([0, 1, 2, 3]) is None


def test_budget_caps_trial_timeouts_and_keeps_the_reserve() -> None:
    budget = Budget(100.0, prior_s=30.0, started=time.monotonic(), reserve_s=20.0)
    assert budget.left() == pytest.approx(70.0, abs=0.5)
    assert budget.search_left() == pytest.approx(70.0 - 20.0 - DEPLOY_S, abs=0.5)
    # a trial may not outlast what the search has left plus half the grace (60 s at least)
    assert budget.trial_timeout(600.0) == pytest.approx(50.0 - DEPLOY_S + 30.0, abs=0.5)
    assert budget.trial_timeout(10.0) == 10.0
    spent = Budget(100.0, prior_s=200.0, started=time.monotonic())
    assert spent.trial_timeout(600.0) == 20.0  # the shortest timeout where nothing is left


def test_finalist_rounds_fit_what_is_left() -> None:
    budget = Budget(100.0, prior_s=64.0 - DEPLOY_S, started=time.monotonic())  # 36 s left after the deploy
    rounds, timeout = budget.finalist_plan(load_s=5.0, round_s=10.0, want=5)
    assert rounds == 3 and timeout == pytest.approx(36.0 + 30.0, abs=0.5)
    assert Budget(100.0, prior_s=100.0 - DEPLOY_S).finalist_plan(5.0, 10.0, 5)[0] == 2  # within the grace
    assert Budget(100.0, prior_s=100.0 - DEPLOY_S).finalist_plan(5.0, 40.0, 5)[0] == 0  # not even that: skipped


def test_reserve_is_sized_from_measured_trials() -> None:
    settings = StudySettings(budget_s=3600, window_s=0.1, finalists=3, rounds=5)
    slow = TrialOutcome(TrialConfig(0, "eager", {}, {}, 1), "ok", bench=_bench(1.0), load_s=4.0)
    # 5 finalists x (4 s load + 1 s + 2 windows, then 5 rounds of 3.25 windows)
    assert reserve([slow], settings) == pytest.approx(5 * (4.0 + 1.0 + 0.2 + 5 * 3.25 * 0.1))
    assert reserve([slow], StudySettings(budget_s=30)) == pytest.approx(10.0)  # a third
    # a measured INT8 trial brings the best of each precision group into the finalists' rounds
    quantized = TrialOutcome(TrialConfig(1, "ort_int8", {}, {}, 1), "ok", bench=_bench(1.0), load_s=4.0,
                             precision="int8")
    assert reserve([slow, quantized], settings) == pytest.approx(8 * (4.0 + 1.0 + 0.2 + 5 * 3.25 * 0.1))


MODES = "path: eager\nparams:\n  mode: {stage: runtime, choices: [slow, fast]}\n"
ORT_SPACE = "path: ort_cpu\nparams:\n  level: {stage: runtime, choices: [all, basic]}\n"


def _two_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, eager_space: str, settings: StudySettings,
               costs: dict[tuple[str, str], object]) -> Search:
    """A local study over eager (its space given) and ort_cpu (level all|basic); `costs`: (path, COST_S or
    COST_BY) -> the value the path declares."""
    spaces = {"eager": eager_space, "ort_cpu": ORT_SPACE}
    monkeypatch.setattr(paths, "space", lambda name, framework=None, narrowing=None: space_mod.parse(spaces[name], f"{name}.yaml"))
    for (name, attr), value in costs.items():
        monkeypatch.setattr(importlib.import_module(f"navigator.paths.{name}"), attr, value, raising=False)
    return Search(StudyStorage(f"sqlite:///{tmp_path / 'study.db'}"), settings, ("torch", "exported"),
                  ["eager", "ort_cpu"], "fp")


def _ran(search: Search) -> list[tuple[str, dict[str, object]]]:
    """The study run to its end with every trial ok: (path, runtime params) of each trial that ran."""
    ran: list[tuple[str, dict[str, object]]] = []

    def run(config: TrialConfig, timeout: float, bar: float | None = None) -> TrialOutcome:
        ran.append((config.path, config.runtime))
        return TrialOutcome(config, "ok", bench=_bench(1.0), duration_s=1.0)

    search.run(run)
    return ran


def test_a_costly_trial_waits_for_cheaper_untried_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # eager over a quarter of what a 600 s budget leaves
    search = _two_paths(tmp_path, monkeypatch, "path: eager\nparams:\n  threads: {stage: runtime, int: [1, 2]}\n",
                        StudySettings(budget_s=600, trials=2), {("eager", "COST_S"): 500.0})
    assert [path for path, _ in _ran(search)] == ["ort_cpu", "eager"]  # the baseline came first in the queue, and waited
    [note] = search.cost_notes()
    assert note.startswith("deferred for cost: eager (expected 500 s") and "cheaper untried paths: ort_cpu" in note


def test_two_costly_paths_do_not_wait_for_each_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # eager's default (mode slow) costs more than ort_cpu's, and ort_cpu more than eager's declared cost:
    # each is "cheaper and untried" for the other. Waiting queues ort_cpu's cheapest configuration first
    # and a trial waits only once; before, the two took turns waiting and nothing ran.
    search = _two_paths(tmp_path, monkeypatch, MODES, StudySettings(budget_s=7200, trials=3),
                        {("eager", "COST_S"): 100.0, ("eager", "COST_BY"): {"mode": {"slow": 2000.0, "fast": 100.0}},
                         ("ort_cpu", "COST_S"): 1500.0})
    ran = _ran(search)
    assert [path for path, _ in ran[:2]] == ["ort_cpu", "eager"] and ran[1][1] == {"mode": "slow"}
    assert len(ran) == 3  # the search went on: no proposal loop
    [note] = search.cost_notes()
    assert "eager mode=slow (expected 2000 s" in note and "cheaper untried paths: ort_cpu (ort_cpu queued already)" in note


def test_a_wait_queues_the_cheapest_unseen_configuration_of_a_cheaper_path_not_queued(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    search = _two_paths(tmp_path, monkeypatch, MODES, StudySettings(budget_s=7200),
                        {("ort_cpu", "COST_S"): 100.0, ("ort_cpu", "COST_BY"): {"level": {"all": 300.0, "basic": 200.0}}})
    waiting = optuna.trial.TrialState.WAITING
    for _ in search.study.get_trials(states=(waiting,)):  # the queue gone (run, or dropped for cost)
        search.study.tell(search.study.ask(), state=optuna.trial.TrialState.FAIL)
    sampled = search.study.ask()
    assert search._wait_behind(sampled, "eager", 2000.0, "eager mode=slow") == \
        "cheaper untried paths: ort_cpu (ort_cpu queued first)"
    [queued] = search.study.get_trials(states=(waiting,))
    assert queued.system_attrs["fixed_params"] == {"path": "ort_cpu", "ort_cpu.level": "basic"}
    assert queued.user_attrs == {"waited": "eager mode=slow"}
    # asked again, the wait sees it queued; with no cheaper untried path (eager costs more than 1 s), a
    # sampled trial does not wait
    assert search._wait_behind(sampled, "eager", 2000.0, "") == "cheaper untried paths: ort_cpu (ort_cpu queued already)"
    assert search._wait_behind(sampled, "ort_cpu", 1.0, "") == ""


def test_a_costly_enqueued_trial_waits_behind_cheaper_queued_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the H100 BERT run: after the baseline, another path's defaults (a compile that timed out) ran before
    # the baseline path's own cheap preset, and took the whole budget
    search = _two_paths(tmp_path, monkeypatch,
                        "path: eager\nparams:\n  threads: {stage: runtime, int: [1, 2]}\npresets:\n  - {threads: 1}\n",
                        StudySettings(budget_s=3600, trials=3), {("eager", "COST_S"): 10.0, ("ort_cpu", "COST_S"): 1500.0})
    assert _ran(search) == [("eager", {"threads": 2}), ("eager", {"threads": 1}), ("ort_cpu", {"level": "all"})]
    [note] = search.cost_notes()
    assert note.startswith("deferred for cost: ort_cpu (expected 1500 s") and "waited for 1 cheaper queued trial(s)" in note
