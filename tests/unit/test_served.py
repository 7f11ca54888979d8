"""navigator/trial/served.py: the written max_batch_size is the largest batch the winner validates at."""

from __future__ import annotations

import types

import numpy as np

from navigator.records import IOSpec, TensorSpec, TrialConfig
from navigator.settings import StudySettings
from navigator.trial import served
from navigator.trial.run import TrialContext

IO = IOSpec((TensorSpec("x", "float32", (None, 2)),), (TensorSpec("y", "float32", (None, 2)),))


class Source:
    """A source whose reference doubles its input."""

    io = IO
    samples = {"x": np.arange(6, dtype=np.float32).reshape(3, 2)}

    def reference(self, inputs):
        return [inputs["x"] * 2]


def fake_path(monkeypatch, limit: int) -> None:
    """A conversion path whose runner is right up to `limit` rows and wrong (or raising) beyond."""
    def runner(inputs):
        x = inputs["x"]
        if len(x) > 2 * limit:
            raise RuntimeError("beyond the engine's profile")
        return [x * 2 if len(x) <= limit else x * 3]

    module = types.SimpleNamespace(load=lambda artifact, source, params: runner, precision=lambda params: "fp32")
    monkeypatch.setattr(served.paths, "get", lambda name: module)
    monkeypatch.setattr("navigator.trial.run.convert", lambda ctx, config: None)


def test_candidates_run_from_the_documented_default_down_to_the_validated_batch():
    assert served.candidates((1,), 1) == [64, 32, 16, 8, 4, 2]
    assert served.candidates((1, 8), 8) == [64, 32, 16]
    assert served.candidates((1, 128), 4) == [128, 64, 32, 16, 8]


def test_falls_back_to_the_largest_batch_that_validates(monkeypatch, tmp_path):
    fake_path(monkeypatch, 16)
    ctx = TrialContext(Source(), None, StudySettings())
    config = TrialConfig(3, "fake", {}, {}, 1)
    batch, failures = served.largest_valid(ctx, config, served.candidates((1,), 1))
    assert batch == 16
    assert failures[0].startswith("batch 64: RuntimeError: beyond the engine's profile")
    assert failures[1].startswith("batch 32: output y: max abs error")
    size, note = served.served_max(None, ctx, config, (1,))
    assert size == 16 and note.startswith("max_batch_size 16: trial 3 validated at batch 16; larger batches not served")


def test_the_trials_own_batch_when_nothing_larger_validates(monkeypatch, tmp_path):
    fake_path(monkeypatch, 1)
    ctx = TrialContext(Source(), None, StudySettings())
    assert served.largest_valid(ctx, TrialConfig(0, "fake", {}, {}, 1), [8, 4, 2])[0] == 1
