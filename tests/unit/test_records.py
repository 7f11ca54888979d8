"""navigator/records.py: the JSON round-trip of nested records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from navigator.records import (
    Bench,
    IOSpec,
    OutputCheck,
    Result,
    TensorSpec,
    TrialConfig,
    TrialOutcome,
    UnknownKeys,
    Validation,
    from_dict,
    to_dict,
)

CONFIG = TrialConfig(3, "ort_cpu", {"exporter": "dynamo", "opset": 18},
                     {"intra_op_num_threads": 4, "execution_mode": "parallel", "enable_mem_pattern": False}, 8)
VALIDATION = Validation(
    False, "output y: shape mismatch",
    (OutputCheck("y", 0.25, 0.5, 1e-4, 1e-3, 0, True), OutputCheck("z", math.inf, math.inf, 1e-4, 1e-3, 2, False)),
)
BENCH = Bench(8, 1234.5, 6.4, 6.1, 7.0, 7.5, 9.25, 0.03, 12, 480, True)
OUTCOME = TrialOutcome(CONFIG, "ok", "", VALIDATION, BENCH, 1.5, True, 3.25)


def test_trial_outcome_round_trip_through_json():
    data = json.loads(json.dumps(to_dict(OUTCOME)))
    back = from_dict(TrialOutcome, data)
    assert back == OUTCOME
    assert isinstance(back.config, TrialConfig)
    assert isinstance(back.validation, Validation)
    assert isinstance(back.validation.outputs, tuple)
    assert all(isinstance(c, OutputCheck) for c in back.validation.outputs)
    assert isinstance(back.bench, Bench)
    assert back.config.runtime["enable_mem_pattern"] is False
    assert back.validation.outputs[1].max_abs == math.inf


def test_to_dict_is_plain_json_data():
    data = to_dict(OUTCOME)
    assert data["config"]["path"] == "ort_cpu"
    assert data["validation"]["outputs"][0] == {"name": "y", "max_abs": 0.25, "max_rel": 0.5, "atol": 1e-4,
                                                "rtol": 1e-3, "nonfinite": 0, "ok": True, "agreement": None,
                                                "source_nonfinite": 0, "cosine": None}
    assert isinstance(data["validation"]["outputs"], list)
    assert data["bench"]["p99_ms"] == 9.25


def test_outcome_without_validation_or_bench():
    failed = TrialOutcome(CONFIG, "failed", "RuntimeError: boom")
    back = from_dict(TrialOutcome, json.loads(json.dumps(to_dict(failed))))
    assert back == failed
    assert back.validation is None and back.bench is None


def test_from_dict_refuses_unknown_keys_unless_told():
    data = to_dict(OUTCOME)
    data["added_in_a_later_version"] = 1
    with pytest.raises(UnknownKeys, match="TrialOutcome has no field 'added_in_a_later_version'"):
        from_dict(TrialOutcome, data)
    assert from_dict(TrialOutcome, data, unknown=True) == OUTCOME


def test_iospec_round_trip_keeps_none_dims_and_tuples():
    io = IOSpec((TensorSpec("x", "float32", (None, 3)),), (TensorSpec("y", "int64", (None,)),))
    back = from_dict(IOSpec, json.loads(json.dumps(to_dict(io))))
    assert back == io
    assert back.batched
    assert isinstance(back.inputs[0].shape, tuple)


def test_result_round_trip_with_paths(tmp_path):
    result = Result("resnet", "throughput", (OUTCOME,), OUTCOME, None, 2.5, tmp_path / "repo", None,
                    {"cpu": "test"})
    data = json.loads(json.dumps(to_dict(result)))
    assert data["repository"] == str(tmp_path / "repo")
    back = from_dict(Result, data)
    assert back == result
    assert isinstance(back.repository, Path)
    assert back.best == OUTCOME
