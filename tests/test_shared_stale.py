"""A shared study whose worker is killed with -9 while the others finish: the trial it leaves RUNNING
is failed once its heartbeat grace has passed (search/storage.py settle()), by the finishing worker or
by `navigator report --storage`, and the last live worker writes the repository and the report;
`navigator worker --trials N` caps one worker's trials. SQLite with heartbeats stands in for
PostgreSQL (one live process at a time here; tests/test_workers.py runs several on PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from navigator.search import storage
from navigator.search.storage import Settled, StudyStorage
from tests.conftest import ROOT, run_cli

HEARTBEAT = 5  # s; a silent trial is stale after 3 beats (15 s): longer than a worker takes to start here
JOIN = ("--no-progress", "--heartbeat", str(HEARTBEAT))  # a worker takes the study's settings
FAST = ("--path", "ort_cpu", "--window", "0.1", *JOIN)


def tiny_onnx(path: Path) -> Path:
    """A one-MatMul ONNX model with a dynamic batch axis: its trials take a second or two."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


# ---- settle() on its own: one study in SQLite, trials made RUNNING by hand ----

def _study(tmp_path: Path, heartbeat: int = 1) -> optuna.Study:
    where = StudyStorage(f"sqlite:///{tmp_path / 'shared.db'}", "s", heartbeat)
    return optuna.create_study(storage=where.open(), study_name="s")


def _running(study: optuna.Study) -> optuna.Trial:
    trial = study.ask()
    trial.suggest_int("x", 0, 9)
    study._storage.record_heartbeat(trial._trial_id)  # a worker started it and beat once
    return trial


def test_settle_waits_out_the_grace_of_a_dead_worker_and_fails_its_trial(tmp_path: Path) -> None:
    study = _study(tmp_path)
    dead = _running(study)  # its worker died just after its last beat: the heartbeat is still fresh
    assert study._storage._get_stale_trial_ids(study._study_id) == []  # optuna alone: not stale yet
    assert storage.settle(study, 1) == Settled(failed=1, running=0)
    trials = study.get_trials(deepcopy=False)
    assert trials[dead.number].state == optuna.trial.TrialState.FAIL
    retry = [t for t in trials if t.state == optuna.trial.TrialState.WAITING]
    assert len(retry) == 1 and retry[0].params == {"x": dead.params["x"]}  # enqueued for a live worker


def test_a_dead_workers_measured_trial_is_not_retried(tmp_path: Path) -> None:
    """Killed between storing its outcome and telling optuna: optuna's retry would copy that outcome
    into a waiting trial, and the study would count it twice."""
    study = _study(tmp_path)
    measured = _running(study)
    measured.set_user_attr("outcome", "{}")
    assert storage.settle(study, 1) == Settled(failed=1, running=0)
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["FAIL"]  # no WAITING copy
    assert sum("outcome" in t.user_attrs for t in trials) == 1


def test_settle_fails_a_trial_that_never_beat(tmp_path: Path) -> None:
    """Its worker died between starting it and optuna's first heartbeat: optuna never fails such a trial."""
    study = _study(tmp_path)
    silent = study.ask()
    assert storage.settle(study, 1) == Settled(failed=1, running=0)
    assert study.get_trials(deepcopy=False)[silent.number].state == optuna.trial.TrialState.FAIL


def test_settle_counts_a_live_worker_without_failing_it(tmp_path: Path) -> None:
    study = _study(tmp_path)
    live = _running(study)
    stop = threading.Event()

    def beat() -> None:  # what optuna's heartbeat thread does for a running trial
        while not stop.wait(1.0):
            study._storage.record_heartbeat(live._trial_id)

    beater = threading.Thread(target=beat)
    beater.start()
    try:
        settled = storage.settle(study, 1)
    finally:
        stop.set()
        beater.join()
    assert settled == Settled(failed=0, running=1)
    assert study.get_trials(deepcopy=False)[live.number].state == optuna.trial.TrialState.RUNNING


# ---- through the CLI: a worker killed with -9 at its last trial ----

def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "navigator", *args], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            cwd=ROOT, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="s", storage=url).get_trials(deepcopy=False)
    except Exception:  # not created yet, or locked for a moment
        return []


def counts(db: Path) -> tuple[int, int]:
    """(trials with an outcome, trials a worker is running) in an optuna SQLite file, read
    directly: optuna.load_study is too slow to catch a trial of a second."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            outcomes = conn.execute("SELECT count(*) FROM trial_user_attributes WHERE key = 'outcome'").fetchone()
            running = conn.execute(  # started by a worker, no outcome stored yet
                "SELECT count(*) FROM trials t WHERE t.state = 'RUNNING' AND EXISTS (SELECT 1 FROM "
                "trial_user_attributes a WHERE a.trial_id = t.trial_id AND a.key = 'worker') AND NOT EXISTS "
                "(SELECT 1 FROM trial_user_attributes a WHERE a.trial_id = t.trial_id AND a.key = 'outcome')"
            ).fetchone()
        return outcomes[0], running[0]
    except sqlite3.Error:  # not created yet
        return 0, 0


def _kill_mid_trial(victim: subprocess.Popen, db: Path, outcomes: int) -> optuna.trial.FrozenTrial:
    """kill -9 `victim` while it runs a trial, after `outcomes` trials with an outcome: frozen first
    (SIGSTOP) so that the trial cannot finish between the look and the kill."""
    deadline = time.time() + 300
    while time.time() < deadline:
        if counts(db) == (outcomes, 1):
            victim.send_signal(signal.SIGSTOP)
            if counts(db) == (outcomes, 1):
                victim.send_signal(signal.SIGKILL)
                victim.communicate()
                return next(t for t in _trials(f"sqlite:///{db}") if t.state.name == "RUNNING")
            victim.send_signal(signal.SIGCONT)  # it finished that trial in between: look again
        assert victim.poll() is None, f"the victim ended before trial {outcomes} was caught: {victim.communicate()[1]}"
        time.sleep(0.02)
    raise AssertionError("the victim never ran the trial to kill")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_onnx(tmp_path_factory.mktemp("stale") / "tiny.onnx")


def test_last_live_worker_writes_the_report_after_a_kill(model: Path, tmp_path: Path) -> None:
    """The victim dies at the study's last trial; the survivor, started at once, finds the study's
    trial cap taken (the dead trial still counts as running) and must wait out its grace."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    victim = _start("optimize", "--model", str(model), "--trials", "3", "--out", str(tmp_path / "a"),
                    "--storage", url, "--study", "s", *FAST)
    killed = _kill_mid_trial(victim, tmp_path / "shared.db", outcomes=2)
    survivor = run_cli("worker", "--storage", url, "--study", "s", "--model", str(model),
                       "--out", str(tmp_path / "b"), *JOIN)
    assert survivor.returncode == 0, survivor.stdout + survivor.stderr
    assert "other workers are still running" not in survivor.stdout
    assert "report: " in survivor.stdout and (tmp_path / "b" / "report.json").is_file()
    assert (tmp_path / "b" / "model_repository" / "tiny" / "config.pbtxt").is_file()
    after = _trials(url)
    assert not [t for t in after if t.state.name == "RUNNING"]
    assert after[killed.number].state.name == "FAIL"
    retries = [t for t in after if t.user_attrs.get("retry_of") == killed.number and "outcome" in t.user_attrs]
    assert len(retries) == 1 and killed.params.items() <= retries[0].params.items()  # run again, here
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert len(report["outcomes"]) == 3 and report["study"]["dead_worker_trials"] == [killed.number]
    assert report["study"]["still_running"] == 0


def test_report_fails_the_trial_of_a_dead_worker(model: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    victim = _start("optimize", "--model", str(model), "--trials", "4", "--out", str(tmp_path / "a"),
                    "--storage", url, "--study", "s", *FAST)
    killed = _kill_mid_trial(victim, tmp_path / "shared.db", outcomes=1)
    done = run_cli("report", "--storage", url, "--study", "s", "--out", str(tmp_path / "r"), "--heartbeat",
                   str(HEARTBEAT))
    assert done.returncode == 0, done.stdout + done.stderr
    assert _trials(url)[killed.number].state.name == "FAIL"
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert not [n for n in report["notes"] if "still running" in n]
    assert report["study"]["dead_worker_trials"] == [killed.number] and report["study"]["still_running"] == 0


def test_worker_trials_caps_that_workers_trials(model: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    victim = _start("optimize", "--model", str(model), "--budget", "10m", "--out", str(tmp_path / "a"),
                    "--storage", url, "--study", "s", *FAST)
    killed = _kill_mid_trial(victim, tmp_path / "shared.db", outcomes=1)
    done = run_cli("worker", "--storage", url, "--study", "s", "--model", str(model), "--trials", "2",
                   "--out", str(tmp_path / "b"), *JOIN)
    assert done.returncode == 0, done.stdout + done.stderr
    after = _trials(url)
    mine = [t for t in after if "outcome" in t.user_attrs and t.user_attrs["worker"] != killed.user_attrs["worker"]]
    assert len(mine) == 2  # the study's budget (10 minutes) would have taken many more
    assert not [t for t in after if t.state.name == "RUNNING"]
    assert (tmp_path / "b" / "report.json").is_file()  # no other worker is left: this one writes it
    bad = run_cli("worker", "--storage", url, "--study", "s", "--trials", "0", "--no-progress")
    assert bad.returncode == 2 and "--trials 0" in bad.stderr and "Traceback" not in bad.stderr
