"""Trial isolation: an abort, a hang, unbounded memory and NaN outputs each cost one trial only; the
study finishes with a valid winner, and no worker outlives a killed parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

SPEC = ("--input-spec", "x:float32:-1x16", "--trust-pickle", "--window", "0.05", "--no-progress")


def _hostile(kind: str, tmp: Path) -> Path:
    from fixtures.hostile import save

    path = tmp / f"{kind}.pt"
    save(kind, str(path))
    return path


@pytest.mark.parametrize(("kind", "status", "needle", "extra"), [
    ("abort", "crashed", "SIGABRT", ()),
    ("hang", "timeout", "no answer within", ("--trial-timeout", "8s")),
    ("hog", None, "", ("--trial-memory", "3G")),
    ("nan", "invalid", "NaN", ()),
])
def test_failure_costs_one_trial(kind: str, status: str | None, needle: str, extra: tuple[str, ...],
                                 tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("optimize", "--model", str(_hostile(kind, tmp_path)), "--budget", "40s", "--trials", "3",
                   "--path", "eager", "--path", "torchscript", "--out", str(out), *SPEC, *extra)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    converted = [o for o in report["outcomes"] if o["config"]["path"] == "torchscript"]
    assert converted and all(o["status"] != "ok" for o in converted)
    if status is None:  # out of memory: a MemoryError (failed) or a killed allocator (crashed)
        assert {o["status"] for o in converted} <= {"failed", "crashed"}
        assert any("MemoryError" in o["error"] or "SIG" in o["error"] for o in converted)
    else:
        assert {o["status"] for o in converted} == {status}
        assert all(needle in o["error"] for o in converted), [o["error"] for o in converted]
    assert report["winner"]["config"]["path"] == "eager" and report["winner"]["status"] in ("ok", "unstable")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_no_worker_survives_a_killed_parent(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-m", "navigator", "optimize", "--model",
                               str(_hostile("hang", tmp_path)), "--path", "torchscript", "--budget", "5m",
                               "--out", str(tmp_path / "out"), *SPEC], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    workers: list[int] = []
    while time.time() < deadline and not workers:
        workers = _children(parent.pid)
        time.sleep(0.5)
    assert workers, "the worker process never started"
    time.sleep(3)  # the worker is now hanging in the conversion
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)
