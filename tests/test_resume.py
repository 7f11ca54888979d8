"""kill -9 in the middle of a study, then the same command again: the study resumes from its storage;
no finished trial is lost or repeated, the interrupted trial is failed and retried, conversions are
reused from the cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna

from tests.conftest import ROOT, run_cli


def _trials(out: Path) -> list[optuna.trial.FrozenTrial]:
    try:
        study = optuna.load_study(study_name="navigator", storage=f"sqlite:///{out / 'study.db'}")
    except Exception:  # not created yet, or locked for a moment
        return []
    return study.get_trials(deepcopy=False)


def test_kill_9_then_rerun_resumes(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    # Four paths: their defaults and presets stay few enough that the retry (enqueued behind any that still
    # wait) runs within the 8-trial cap.
    args = ["optimize", "--model", str(models["mlp.pt2"]), "--budget", "10m", "--trials", "8", "--batch-size", "4",
            "--out", str(out), "--window", "0.1", "--no-progress", "--path", "eager", "--path", "torchscript",
            "--path", "ort_cpu", "--path", "openvino"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-m", "navigator", *args], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def measuring() -> bool:
        """A trial runs and has no outcome yet (one killed after its outcome was stored is closed on the
        rerun, not retried)."""
        trials = _trials(out)
        return sum("outcome" in t.user_attrs for t in trials) >= 3 and any(
            t.state == optuna.trial.TrialState.RUNNING and "outcome" not in t.user_attrs for t in trials)

    deadline = time.time() + 240
    while time.time() < deadline:
        if measuring():
            parent.send_signal(signal.SIGSTOP)  # frozen, it cannot store an outcome while checked again
            if measuring():
                break
            parent.send_signal(signal.SIGCONT)
        time.sleep(0.1)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    before = {t.number: t.user_attrs["outcome"] for t in _trials(out) if "outcome" in t.user_attrs}
    interrupted = [t for t in _trials(out) if t.state == optuna.trial.TrialState.RUNNING]
    assert len(before) >= 3 and len(interrupted) == 1
    killed = interrupted[0]

    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    trials = _trials(out)
    after = {t.number: t.user_attrs["outcome"] for t in trials if "outcome" in t.user_attrs}
    assert all(after[n] == o for n, o in before.items())  # nothing finished was lost or rerun
    assert len(after) == 8
    states = {t.number: t.state for t in trials}
    assert states[killed.number] == optuna.trial.TrialState.FAIL and killed.number not in after
    retries = [t for t in trials if t.user_attrs.get("retry_of") == killed.number]
    # the retry has the interrupted trial's parameters (those it had drawn before the kill)
    assert len(retries) == 1 and killed.params.items() <= retries[0].params.items() and retries[0].number in after
    # the rerun says so, and the report lists the interrupted trial beside the 8 that finished
    assert f"resumed: {len(before)} trials from earlier runs; trial {killed.number} was interrupted, retried " \
           f"as trial {retries[0].number}" in again.stderr
    report = json.loads((out / "report.json").read_text())
    assert len(report["outcomes"]) == 9
    lost = next(o for o in report["outcomes"] if o["config"]["number"] == killed.number)
    assert lost["status"] == "failed" and lost["error"] == f"interrupted, retried as trial {retries[0].number}"
    assert any(n.startswith(f"resumed: {len(before)} trials") for n in report["notes"])
    assert report["cache"]["hits"] > 0  # the rerun used conversions made before the kill
