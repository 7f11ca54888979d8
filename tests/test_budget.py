"""The budget through the CLI: a run ends within its budget plus the grace, shows its phases without a
terminal, and a rerun with the same budget changes nothing; a small space ends the search early."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import run_cli


def test_a_run_keeps_its_budget_and_a_rerun_changes_nothing(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("optimize", "--model", str(models["mlp.pt2"]), "--batch-size", "4", "--out", str(out),
            "--window", "0.05", "--budget", "30s")
    start = time.monotonic()
    first = run_cli(*args)
    wall = time.monotonic() - start
    assert first.returncode == 0, first.stderr
    assert wall <= 30 + 60, wall  # the budget plus the grace, max(60 s, 10%): everything included
    lines = first.stderr.splitlines()  # stderr is no terminal here: one line per trial, then the phases
    assert any(line.startswith("trial 0 eager: ") and "| spent " in line for line in lines), first.stderr
    assert any(line.startswith("finalists (") for line in lines) and any(line.startswith("deploying") for line in lines)
    report = json.loads((out / "report.json").read_text())
    config = (out / "model_repository" / "mlp" / "config.pbtxt").read_bytes()

    again = run_cli(*args)  # the same budget: nothing left, the stored finalists decide again
    assert again.returncode == 0, again.stderr
    assert "no trial ran: earlier runs spent the budget" in again.stderr
    rebuilt = json.loads((out / "report.json").read_text())
    assert len(rebuilt["outcomes"]) == len(report["outcomes"])
    assert rebuilt["finalists"] == report["finalists"] and rebuilt["winner"] == report["winner"]
    assert (out / "model_repository" / "mlp" / "config.pbtxt").read_bytes() == config


def test_a_small_space_ends_the_search_early(tree_models: dict[str, Path], tmp_path: Path) -> None:
    """tree_native has one parameter (threads, 1..cores): each value once, then the search stops."""
    import os

    cores = len(os.sched_getaffinity(0))
    out = tmp_path / "out"
    proc = run_cli("optimize", "--model", str(tree_models["xgb_binary.json"]), "--path", "tree_native",
                   "--budget", "5m", "--batch-size", "16", "--out", str(out), "--window", "0.05", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert f"search space exhausted after {cores} trials" in proc.stderr
    outcomes = json.loads((out / "report.json").read_text())["outcomes"]
    assert sorted(o["config"]["runtime"]["threads"] for o in outcomes) == list(range(1, cores + 1))
