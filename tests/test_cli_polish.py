"""What the CLI prints: Ctrl-C says how to continue (and the rerun retries the interrupted trial), the
last lines name report.html, `navigator paths` groups the unavailable paths by reason, the refusal of
an --out holding another study names --force, serve-check's advice names its own --budget."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from navigator.errors import UnavailableError
from tests.conftest import ROOT, run_cli
from tests.test_shared_stale import counts, tiny_onnx


def _trials(out: Path) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="navigator", storage=f"sqlite:///{out / 'study.db'}").get_trials(
            deepcopy=False)
    except Exception:  # not created yet, or locked for a moment
        return []


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _interrupt_mid_trial(proc: subprocess.Popen, out: Path) -> optuna.trial.FrozenTrial:
    """Ctrl-C (SIGINT) while a trial runs, after the first: the trial worker is frozen first, so the
    trial cannot finish between the look and the signal."""
    deadline = time.time() + 300
    while time.time() < deadline:
        done, running = counts(out / "study.db")
        if done >= 1 and running == 1:
            children = _children(proc.pid)
            for child in children:
                os.kill(child, signal.SIGSTOP)
            time.sleep(0.5)  # a reply already on its way is told by then
            if counts(out / "study.db")[1] == 1:
                trial = next(t for t in _trials(out) if t.state.name == "RUNNING")  # blocked on the frozen worker
                proc.send_signal(signal.SIGINT)
                return trial
            for child in children:
                os.kill(child, signal.SIGCONT)
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("no trial to interrupt")


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory):
    """One optimize run interrupted by Ctrl-C mid-trial, then the same command again."""
    root = tmp_path_factory.mktemp("polish")
    out = root / "out"
    args = ("optimize", "--model", str(tiny_onnx(root / "tiny.onnx")), "--budget", "10m", "--trials", "4",
            "--path", "ort_cpu", "--window", "0.1", "--no-progress", "--out", str(out))
    # SIGINT at its default: a test run started in the background (bash `&`) ignores it, and Python keeps an
    # inherited SIG_IGN, so the Ctrl-C below would never reach the run.
    proc = subprocess.Popen([sys.executable, "-m", "navigator", *args], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    trial = _interrupt_mid_trial(proc, out)
    stdout, stderr = proc.communicate(timeout=120)
    kept = sum("outcome" in t.user_attrs for t in _trials(out))
    rerun = run_cli(*args)
    return out, proc.returncode, stdout, stderr, trial, kept, rerun


def test_ctrl_c_says_how_to_continue(interrupted) -> None:
    out, code, stdout, stderr, _, kept, _ = interrupted
    assert code == 130, stdout + stderr
    own = "".join(line for line in stderr.splitlines(keepends=True)  # this machine's load is not the run's to say
                  if not line.startswith("navigator: warning: the machine is loaded"))
    assert own == (f"navigator: interrupted; rerun the same command to continue the study ({kept} trials kept "
                   f"in {(out / 'study.db').resolve()})\n")


def test_rerun_retries_the_interrupted_trial(interrupted) -> None:
    out, _, _, _, trial, _, rerun = interrupted
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    trials = _trials(out)
    assert trials[trial.number].state.name == "FAIL"
    retries = [t for t in trials if t.user_attrs.get("retry_of") == trial.number]
    assert len(retries) == 1 and "outcome" in retries[0].user_attrs
    assert trial.params.items() <= retries[0].params.items()


def test_last_lines_name_report_html(interrupted) -> None:
    out, *_, rerun = interrupted
    last = rerun.stdout.strip().splitlines()[-1]
    assert last == f"report: {out / 'report.html'} (also report.md, report.json)"
    assert (out / "report.html").is_file()


def test_paths_groups_the_unavailable_ones_by_reason() -> None:
    from navigator import paths as registry

    short = run_cli("paths")
    assert short.returncode == 0, short.stderr
    lines = short.stdout.splitlines()
    assert len(lines) < 30
    available: set[str] = set()
    unavailable: list[tuple[str, list[str]]] = []  # (reason, paths), one line each
    section = ""
    for line in lines:
        if not line.startswith("  "):
            section = line
            continue
        head, _, tail = line.strip().partition(": ")
        if section == "available here:":
            available |= set(tail.strip().split(", "))
        else:
            assert section == "unavailable here:", line
            unavailable.append((tail, head.split(", ")))
    reasons = [reason for reason, _ in unavailable]
    assert len(set(reasons)) == len(reasons)  # one line per reason
    assert not [r for r in reasons if r.startswith("does not take") or r.startswith("runs on")]  # not this machine's
    assert available | {n for _, names in unavailable for n in names} == set(registry.NAMES)
    verbose = run_cli("paths", "--verbose")
    assert len(verbose.stdout.splitlines()) == 8 * len(registry.NAMES)  # every device, framework, path


def test_out_holding_another_study_names_force(tmp_path: Path) -> None:
    from navigator.search import storage
    from navigator.search.study import Search
    from navigator.settings import StudySettings

    out = tmp_path / "out"
    out.mkdir()
    Search(storage.default(out), StudySettings(paths=("ort_cpu",)), ("onnx", "onnx"), ["ort_cpu"],
           "the fingerprint of another model")
    done = run_cli("optimize", "--model", str(tiny_onnx(tmp_path / "tiny.onnx")), "--path", "ort_cpu",
                   "--out", str(out), "--no-progress")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "holds a study of another fingerprint" in done.stderr and "pass --force" in done.stderr


def _have_triton() -> bool:
    from navigator.triton import server

    try:
        server.find("tritonserver"), server.find("perf_analyzer")
    except UnavailableError:
        return os.environ.get("NAVIGATOR_REQUIRE_TRITON") == "1"  # CI: fail below rather than skip
    return True


@pytest.mark.skipif(not _have_triton(), reason="tritonserver not installed (tools/install-triton.sh)")
def test_serve_check_advice_names_its_own_budget_flag(interrupted) -> None:
    out, *_ = interrupted
    done = run_cli("serve-check", str(out), "--tune", "--budget", "1s", "--concurrency", "1", timeout=300)
    assert "left no time for a search trial" in done.stdout, done.stdout + done.stderr
    assert "raise --budget (e.g. --budget 2m)" in done.stdout and "--serving-budget" not in done.stdout
