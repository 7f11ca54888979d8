"""The screening bar reaches the trial worker: a trial far behind it stops after its short measurement."""

from __future__ import annotations

from pathlib import Path

import torch

from navigator.records import SourceRecord, TrialConfig, WorkerSpec
from navigator.settings import StudySettings
from navigator.source import load_source, materialize
from navigator.trial.isolate import TrialWorker


def test_the_worker_screens_a_trial_against_the_bar(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)).eval()
    exported = torch.export.export(model, (torch.randn(2, 16),))
    file = tmp_path / "m.pt2"
    torch.export.save(exported, str(file))
    source = load_source(str(file))
    path, spec, data, trust = materialize(source, tmp_path / "source")
    settings = StudySettings(window_s=0.05)
    worker_spec = WorkerSpec(SourceRecord(path, spec, data, trust), source.name, source.fingerprint, 1,
                             str(tmp_path / "cache"))
    config = TrialConfig(3, "eager", {}, {"threads": 1, "channels_last": False}, 1)
    with TrialWorker(worker_spec, settings, tmp_path / "worker.log") as worker:
        far = worker.run(config, 120.0, bar=1e12)  # no model reaches a trillion inferences a second
        assert far.status == "screened" and far.bench is not None and far.bench.windows == 1
        assert "not measured in full" in far.error and far.validation is not None and far.validation.ok
        full = worker.run(config, 120.0, bar=1.0)
        assert full.status in ("ok", "unstable") and full.bench is not None and full.bench.windows >= 3
