"""Several workers on one study through a real PostgreSQL server: `optimize --storage --study` plus
`navigator worker` share the trials; a worker killed with -9 leaves no RUNNING trial (heartbeats fail
it, another worker retries it); `navigator report` builds the winner from every worker's trials.

Needs NAVIGATOR_TEST_POSTGRES_URL (a role that may create databases; .ci/setup.d/30-postgres.sh starts
a server): skipped without it, failed without it where NAVIGATOR_REQUIRE_POSTGRES=1 (CI)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.conftest import ROOT, run_cli

FAST = ("--batch-size", "4", "--window", "0.1", "--no-progress")
HEARTBEAT = ("--heartbeat", "2")  # a dead worker's trial is failed after 6 s of silence


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway database on the test server, dropped afterwards."""
    url = os.environ.get("NAVIGATOR_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("NAVIGATOR_REQUIRE_POSTGRES") == "1":
            pytest.fail("NAVIGATOR_REQUIRE_POSTGRES=1 but NAVIGATOR_TEST_POSTGRES_URL is not set "
                        "(.ci/setup.d/30-postgres.sh starts the server)")
        pytest.skip("no PostgreSQL server: set NAVIGATOR_TEST_POSTGRES_URL (see .ci/setup.d/30-postgres.sh)")
    import psycopg  # the postgres extra, part of the test extra
    name = f"navigator_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "navigator", *args], env=env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    from navigator.search.storage import driver_url

    try:
        return optuna.load_study(study_name=study, storage=driver_url(url)).get_trials(deepcopy=False)
    except KeyError:  # not created yet
        return []


def _wait(predicate, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


def _described(url: str, study: str) -> bool:
    from navigator.search.storage import driver_url

    try:
        return "identity" in optuna.load_study(study_name=study, storage=driver_url(url)).user_attrs
    except KeyError:
        return False


def test_two_workers_share_one_study(models: dict[str, Path], tmp_path: Path, postgres: str) -> None:
    study, trials = "two-workers", 12
    # three paths: their defaults and presets (queued ahead of the sampler) fit under the trial cap, so
    # none is left waiting when it is reached
    first = _start("optimize", "--model", str(models["mlp.pt2"]), "--trials", str(trials), *FAST,
                   "--path", "eager", "--path", "ort_cpu", "--path", "openvino",
                   "--out", str(tmp_path / "a"), "--storage", postgres, "--study", study, *HEARTBEAT)
    _wait(lambda: _described(postgres, study))
    second = _start("worker", "--storage", postgres, "--study", study, "--model", str(models["mlp.pt2"]),
                    "--out", str(tmp_path / "b"), "--no-progress", *HEARTBEAT)
    outs = [p.communicate(timeout=600) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs

    all_trials = _trials(postgres, study)
    done = [t for t in all_trials if "outcome" in t.user_attrs]
    states = Counter(t.state.name for t in all_trials)
    by_worker = Counter(t.user_attrs["worker"] for t in done)
    distinct = len({json.dumps(t.params, sort_keys=True) for t in done})
    print(f"two workers: {len(all_trials)} trials in the study, {len(done)} with an outcome, states {dict(states)}, "
          f"per worker {dict(by_worker)}, {distinct} distinct parameter sets")
    assert len(done) == trials  # the cap holds across workers
    assert not [t for t in all_trials if t.state.name in ("RUNNING", "WAITING")]
    assert all("skipped" in t.user_attrs for t in all_trials if t.state.name == "FAIL")  # no dead worker here
    assert len(by_worker) == 2  # both workers ran trials
    for t in done:  # each trial ran once, with the parameters the sampler gave that trial
        outcome = json.loads(t.user_attrs["outcome"])
        config = outcome["config"]
        assert config["number"] == t.number and config["path"] == t.params["path"]
        assert {f"{config['path']}.{k}": v for k, v in {**config["convert"], **config["runtime"]}.items()} == \
            {k: v for k, v in t.params.items() if k != "path"}
        assert {"cpu", "class", "host", "version.optuna", "version.onnxruntime"} <= set(t.user_attrs["hardware"])
    roles = Counter(t.user_attrs["role"] for t in done if "role" in t.user_attrs)
    assert roles and set(roles.values()) == {1}  # each baseline enqueued and run once, not once per worker

    reports = [d for d in (tmp_path / "a", tmp_path / "b") if (d / "report.json").is_file()]
    assert len(reports) >= 1  # the last worker to finish wrote it
    report = json.loads((reports[-1] / "report.json").read_text())
    assert len(report["outcomes"]) == trials and len(report["study"]["workers"]) == 2
    assert report["winner"]["status"] in ("ok", "unstable")  # a loaded machine may leave no trial stable

    again = run_cli("report", "--storage", postgres, "--study", study, "--out", str(tmp_path / "r"))
    assert again.returncode == 0, again.stderr
    rebuilt = json.loads((tmp_path / "r" / "report.json").read_text())
    assert len(rebuilt["outcomes"]) == trials and (tmp_path / "r" / "model_repository" / "mlp" / "config.pbtxt").is_file()

    other = run_cli("worker", "--storage", postgres, "--study", study, "--model", str(models["cnn.pt2"]),
                    "--out", str(tmp_path / "c"), "--no-progress")
    assert other.returncode == 2 and other.stderr.count("\n") == 1 and "fingerprint" in other.stderr
    assert "Traceback" not in other.stderr and not (tmp_path / "c").exists()
    missing = run_cli("worker", "--storage", postgres, "--study", "no-such-study", "--no-progress")
    assert missing.returncode == 2 and "no study 'no-such-study'" in missing.stderr


def test_killed_worker_leaves_no_running_trial(models: dict[str, Path], tmp_path: Path, postgres: str) -> None:
    study, trials = "killed-worker", 8
    # Four paths: their defaults and presets stay few enough that the dead worker's retry (queued behind any
    # that still wait) runs within the 8-trial cap.
    victim = _start("optimize", "--model", str(models["mlp.pt2"]), "--trials", str(trials), *FAST,
                    "--out", str(tmp_path / "a"), "--storage", postgres, "--study", study, *HEARTBEAT,
                    "--path", "eager", "--path", "torchscript", "--path", "ort_cpu", "--path", "openvino")

    def measuring(t: Any) -> bool:
        """Running and not measured yet: a trial whose outcome is stored is not retried (storage.settle)."""
        return t.state.name == "RUNNING" and "worker" in t.user_attrs and "outcome" not in t.user_attrs

    def mid_trial() -> bool:
        current = _trials(postgres, study)
        return sum("outcome" in t.user_attrs for t in current) >= 2 and any(measuring(t) for t in current)

    def frozen_mid_trial() -> bool:
        """Freeze the worker (it cannot tell a result while stopped); keep it frozen only mid-trial."""
        if not mid_trial():
            return False
        victim.send_signal(signal.SIGSTOP)
        if any(measuring(t) for t in _trials(postgres, study)):
            return True
        victim.send_signal(signal.SIGCONT)  # it finished that trial in between: try again
        return False

    _wait(frozen_mid_trial)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    stuck = [t for t in _trials(postgres, study) if t.state.name == "RUNNING"]
    assert len(stuck) == 1
    killed = stuck[0]

    survivor = run_cli("worker", "--storage", postgres, "--study", study, "--model", str(models["mlp.pt2"]),
                       "--out", str(tmp_path / "b"), "--no-progress", *HEARTBEAT)
    assert survivor.returncode == 0, survivor.stderr
    after = _trials(postgres, study)
    assert not [t for t in after if t.state.name == "RUNNING"]
    assert next(t for t in after if t.number == killed.number).state.name == "FAIL"
    retries = [t for t in after if t.user_attrs.get("retry_of") == killed.number]
    assert len(retries) == 1 and "outcome" in retries[0].user_attrs
    assert killed.params.items() <= retries[0].params.items()  # the same configuration, run again
    assert retries[0].user_attrs["worker"] != killed.user_attrs["worker"]
    assert sum("outcome" in t.user_attrs for t in after) == trials
    print(f"killed worker: trial {killed.number} left RUNNING by kill -9, FAIL after the heartbeat grace, "
          f"retried as trial {retries[0].number} by {retries[0].user_attrs['worker']}; states "
          f"{dict(Counter(t.state.name for t in after))}, {trials} trials with an outcome")
    report = json.loads((tmp_path / "b" / "report.json").read_text())  # the survivor finished last
    assert report["study"]["dead_worker_trials"] == [killed.number]
    assert report["study"]["retries"] == {str(retries[0].number): killed.number}
