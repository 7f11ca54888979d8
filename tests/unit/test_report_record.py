"""report.json is exactly `to_dict(Result)` and every reader takes it back through `from_dict`: no
section lives beside the typed record, unknown keys and reports of the previous layout are refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from navigator.errors import InputError
from navigator.records import (Bench, CacheStats, OutputCheck, Result, SourceRecord, StudySummary, TrialConfig,
                               TrialOutcome, Validation, WorkerRecord, from_dict, to_dict)
from navigator.report import build, store
from navigator.results import read_report
from navigator.settings import LocalSettings, StudySettings

OK = Validation(True, "", (OutputCheck("y", 1e-6, 1e-6, 1e-4, 1e-3, 0, True),))
BENCH = Bench(4, 1000.0, 1.0, 1.0, 1.1, 1.2, 1.5, 0.02, 3, 300, True)
WIN = TrialOutcome(TrialConfig(1, "ort_cpu", {"opset": 18}, {"intra_op_num_threads": 2}, 4), "ok", validation=OK,
                   bench=BENCH)
BASE = TrialOutcome(TrialConfig(0, "eager", {}, {}, 4), "ok", validation=OK, bench=replace(BENCH, throughput=500.0))


def _result(tmp: Path) -> Result:
    summary = StudySummary("s", "postgresql://db", "cpu:x", {"host:1": WorkerRecord({"cpu": "x"}, (0, 1))}, (2,),
                           {"3": 2}, (), ("version.torch",), 0)
    return Result(
        "m", "latency", (BASE, WIN), WIN, BASE, None, tmp / "model_repository" / "m", tmp / "report.json",
        environment={"python": "3.11"}, notes=("a note",), unavailable={"openvino": "not installed"},
        source=SourceRecord(str(tmp / "m.onnx"), "x:float32:-1,3", None, False, "ab" * 32),
        settings=StudySettings(objective="latency", batch_sizes=(1, 4), triton_server="25.02"),
        local=LocalSettings(tmp, False, 1 << 30), study_elapsed_s=12.5, study=summary, cache=CacheStats(3, 1),
        metric={"winner": 0.9}, engines={"measured": "ONNX Runtime", "served": "Triton's onnxruntime backend"},
        source_nonfinite={"y": {"count": 1, "of": 8, "first": [[0, 1]]}})


def test_report_json_is_exactly_the_record(tmp_path: Path) -> None:
    result = _result(tmp_path)
    path = build.write(result, tmp_path)
    data = json.loads(path.read_text())
    done = build.completed(result)
    assert data == to_dict(done)  # nothing merged beside the record
    assert data["version"] == 2 and data["headline"]["lines"] and data["trials_by_status"] == {"ok": 2}
    assert data["settings"]["triton_server"] == "25.02" and data["cache"] == {"hits": 3, "misses": 1}
    back = read_report(path)
    assert back == done and back.study == result.study and back.local == result.local
    md = (tmp_path / "report.md").read_text()
    assert "- a note" in md and "`openvino`: not installed" in md and "Study `s` in `postgresql://db`" in md


def test_unknown_keys_are_refused_unless_asked(tmp_path: Path) -> None:
    path = build.write(_result(tmp_path), tmp_path)
    data = json.loads(path.read_text())
    data["extra_section"] = {"x": 1}
    data["settings"]["memory_bytes"] = 5
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="unknown report keys .*extra_section"):
        read_report(path)
    assert read_report(path, unknown=True).settings == _result(tmp_path).settings


def test_a_report_of_the_previous_layout_is_refused_with_its_version(tmp_path: Path) -> None:
    """Version 1 merged a dict of extra sections into report.json and had no version key; its settings
    lacked the device and paths, so it is not migrated: the study rewrites it."""
    old = {k: v for k, v in to_dict(_result(tmp_path)).items() if k not in ("version", "local", "study_elapsed_s")}
    old["settings"] = {"budget_s": 60, "batch_sizes": [1], "objective": "latency", "memory_bytes": 1 << 30,
                       "study_elapsed_s": 12.5}
    (tmp_path / "report.json").write_text(json.dumps(old))
    with pytest.raises(InputError, match=f"report of version 1, this navigator reads version 2: rewrite it "
                                         f"with `navigator report {tmp_path}`"):
        read_report(tmp_path / "report.json")
    # A version-1 report whose keys happen to parse is refused all the same.
    (tmp_path / "report.json").write_text(json.dumps({**to_dict(_result(tmp_path)), "version": 1}))
    with pytest.raises(InputError, match="version 1"):
        read_report(tmp_path / "report.json")


def test_the_study_keeps_the_record_and_an_older_summary_falls_back_to_the_trials(tmp_path: Path) -> None:
    import optuna

    from navigator.search.study import OUTCOME_ATTR, storage_url

    url = storage_url(tmp_path)
    study = optuna.create_study(storage=url, study_name="navigator")
    for outcome in (BASE, WIN):
        trial = study.ask()
        trial.set_user_attr(OUTCOME_ATTR, json.dumps(to_dict(outcome)))
        study.tell(trial, 1.0)
    result = build.completed(_result(tmp_path))
    store.save(study, result)
    assert store.load(url, "navigator") == result
    study.set_user_attr(store.SUMMARY_ATTR, json.dumps({k: v for k, v in to_dict(result).items() if k != "outcomes"}))
    older = store.load(url, "navigator")  # the summary layout of the previous version: not read as a Result
    assert older.notes == ("rebuilt from the study's trials alone (its summary was written by an older navigator): "
                           "the winner is the best valid trial, not re-measured against the others",)
    assert from_dict(Result, to_dict(older)) == older
