"""The Python API for training scripts: the runnable example (train a few steps, then optimize with a
dataloader, a metric and a progress callback), load_result, Result.runner and the dataloader handling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import navigator
from navigator.pyapi import inputs_from_dataloader
from tests.conftest import ROOT

EXAMPLE = ROOT / "docs" / "examples" / "train_and_optimize.py"


def test_example_trains_and_optimizes(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--budget", "15s", "--out", str(out), "--steps", "30",
                           "--no-progress", "--window", "0.05"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("trained 30 steps")
    assert sum(line.startswith("trial ") for line in lines) >= 1  # the progress callback ran per trial
    diff = next(line for line in lines if line.startswith("runner matches the trained model"))
    assert float(diff.rsplit(" ", 1)[1]) < 1e-3
    accuracy = float(next(line for line in lines if line.startswith("held-out accuracy")).rsplit(" ", 1)[1])
    assert accuracy > 0.8  # four separable blobs after 30 steps

    result = navigator.load_result(out)
    assert result.best is not None and result.repository is not None and (result.repository / "config.pbtxt").is_file()
    assert set(result.reports) == {"json", "md", "html"}
    report = json.loads(result.reports["json"].read_text())
    assert report["metric"]["winner"] == pytest.approx(accuracy)
    # The Runner from a reloaded result answers like the source model on the validation inputs. The run
    # saved the live module as a pickle: this process unpickles it only when told to.
    with pytest.raises(navigator.InputError, match="--trust-pickle"):
        navigator.load_runner(result)
    data = np.load(out / "source" / "inputs.npz")
    got = navigator.load_runner(result, trust_pickle=True)({"x": data["x"]})[0]
    assert got.shape == (data["x"].shape[0], 4) and np.isfinite(got).all()


def test_load_result_reads_the_study_when_reports_are_gone(models: dict[str, Path], tmp_path: Path) -> None:
    events: list[navigator.ProgressEvent] = []
    out = tmp_path / "out"
    first = navigator.optimize(str(models["mlp.pt2"]), budget="8s", batch_size=4, out=out, progress=False,
                               window_s=0.05, callbacks=[events.append], paths=["eager", "ort_cpu"])
    assert events and [e.trials for e in events] == list(range(1, len(events) + 1))
    assert all(e.budget_s == 8 and e.objective == "throughput" for e in events)
    assert all(e.best is None or e.best.status == "ok" for e in events)
    for name in ("report.json", "report.md", "report.html"):
        (out / name).unlink()
    again = navigator.load_result(out)
    assert again.winner == first.winner and again.outcomes == first.outcomes
    assert again.finalists == first.finalists and again.headline == first.headline
    assert again.source == first.source and again.settings == first.settings and again.cache == first.cache
    assert set(again.reports) == set()  # a read writes nothing; `navigator report OUT` rewrites the reports


def test_dataloader_batches_and_bad_input() -> None:
    import torch
    from torch import nn

    class One(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    x, y = torch.ones(5, 3), torch.zeros(5)
    assert inputs_from_dataloader(One(), [(x, y)]) is x  # labels dropped: forward takes one tensor
    assert inputs_from_dataloader(One(), [{"x": x}]) == {"x": x}
    with pytest.raises(navigator.InputError, match="no batch"):
        inputs_from_dataloader(One(), [])
    with pytest.raises(navigator.InputError, match="not both"):
        navigator.optimize(One(), x, dataloader=[x])
    with pytest.raises(navigator.InputError, match="no such report|no navigator study"):
        navigator.load_result(Path("/nonexistent-navigator-dir"))
