"""navigator/export.py: which trial of a run can be exported."""

from __future__ import annotations

from pathlib import Path

import pytest

from navigator.errors import InputError
from navigator.export import trial_of
from navigator.records import Bench, Result, TrialConfig, TrialOutcome


def _result() -> Result:
    bench = Bench(1, 100.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.01, 3, 100, True)
    ok = TrialOutcome(TrialConfig(0, "eager", {}, {}, 1), "ok", bench=bench)
    bad = TrialOutcome(TrialConfig(1, "ort_cpu", {}, {}, 1), "invalid", "output y: max abs err 3.0")
    return Result("m", "throughput", (ok, bad), ok, ok, None, None, Path("/runs/m/report.json"))


def test_a_valid_trial_is_found() -> None:
    assert trial_of(_result(), 0).config.path == "eager"


def test_an_invalid_or_unknown_trial_is_refused_with_the_reason() -> None:
    with pytest.raises(InputError, match=r"trial 1 \(ort_cpu\) is invalid: output y: max abs err 3.0; only a valid"):
        trial_of(_result(), 1)
    with pytest.raises(InputError, match=r"the run in /runs/m has no trial 7 \(its trials are 0-1\)"):
        trial_of(_result(), 7)
