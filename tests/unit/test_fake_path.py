"""The finalists and the deploy fallbacks on the fake path (tests/fakepath.py), which fails, crashes or
hangs where a parameter asks: no framework runs in the path itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from navigator import paths
from navigator.errors import InputError, ServeError
from navigator.records import IOSpec, ServingConfig, SourceRecord, TensorSpec, TrialConfig, TrialOutcome, WorkerSpec, to_dict
from navigator.settings import StudySettings
from navigator.source import ModelSource
from navigator.cache import Cache
from navigator.trial.run import TrialContext
from tests import fakepath

ROOT = Path(__file__).resolve().parents[2]
IO = IOSpec((TensorSpec("x", "float32", (4,)),), (TensorSpec("y", "float32", (4,)),))


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setitem(paths.EXTRA, "fake", fakepath.MODULE)
    fakepath.EVENTS.clear()


def context(tmp_path: Path, **settings) -> TrialContext:
    source = ModelSource("onnx", "onnx", "demo", None, None, IO, "fingerprint", {"x": np.ones(4, np.float32)})
    return TrialContext(source, Cache(tmp_path / "cache", "fingerprint"), StudySettings(**settings))


def outcome(number: int, convert: dict | None = None, **runtime) -> TrialOutcome:
    return TrialOutcome(TrialConfig(number, "fake", convert or {}, {"label": str(number), **runtime}, 1), "ok")


def test_the_fake_path_is_registered_only_by_tests(monkeypatch):
    assert "fake" not in paths.NAMES and "fake" not in {c.name for c in paths.candidates("onnx", "cpu")}
    with pytest.raises(InputError, match="unknown conversion path 'fake'"):
        paths.get("fake")
    monkeypatch.setitem(paths.EXTRA, "fake", fakepath.MODULE)
    assert paths.get("fake").cost_s == 0.5 and paths.candidates("onnx", "cpu", ("fake",))[0].reason is None


# Finalists ----------------------------------------------------------------------------------------------

def test_finalists_load_once_and_are_measured_in_rotated_rounds(fake, tmp_path):
    from navigator.trial.remeasure import remeasure

    ctx = context(tmp_path, window_s=0.01, window_calls=3)
    chosen = [("top 1", outcome(1)), ("top 2", outcome(2)), ("baseline", outcome(0))]
    finalists = remeasure(ctx, chosen, rounds=3)
    assert [(f.number, f.role, len(f.throughput), len(f.p99_ms)) for f in finalists] == [
        (1, "top 1", 3, 3), (2, "top 2", 3, 3), (0, "baseline", 3, 3)]
    assert [e for e in fakepath.EVENTS if e.startswith("load")] == ["load 1", "load 2", "load 0"]
    calls = [e.split()[1] for e in fakepath.EVENTS if e.startswith("call")]
    order = [c for i, c in enumerate(calls) if i == 0 or c != calls[i - 1]]  # runs of one finalist
    assert order == ["1", "2", "0",  # warm-up, in order
                     "1", "2", "0", "2", "0", "1", "0", "1", "2"]  # each round starts one later


def test_a_finalist_that_fails_to_load_stops_the_remeasurement_with_its_reason(fake, tmp_path):
    from navigator.errors import TrialError
    from navigator.trial.remeasure import remeasure

    chosen = [("top 1", outcome(1)), ("baseline", outcome(0, fail_at="load"))]
    with pytest.raises(TrialError, match="asked to fail at load"):
        remeasure(context(tmp_path, window_s=0.01), chosen, rounds=2)


@pytest.fixture
def worker(fake, tmp_path, monkeypatch):
    """A real trial worker process with the fake path registered in it, its source a tiny ONNX file."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    from navigator.trial.isolate import TrialWorker

    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    model = tmp_path / "double.onnx"
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8  # what older ONNX Runtime releases load too
    onnx.save(proto, str(model))
    env = fakepath.worker_env(tmp_path / "site", ROOT)
    monkeypatch.setenv("PYTHONPATH", env["PYTHONPATH"])
    spec = WorkerSpec(SourceRecord(str(model)), "double", "fp", 1, str(tmp_path / "cache"))
    with TrialWorker(spec, StudySettings(window_s=0.01), tmp_path / "worker.log") as w:
        yield w


def test_a_trial_that_crashes_or_hangs_is_recorded_and_the_worker_restarts(worker):
    crashed = worker.run(TrialConfig(1, "fake", {}, {"crash_at": "load"}, 1), timeout=30)
    assert crashed.status == "crashed" and "(SIGABRT) while loading and validating" in crashed.error
    hung = worker.run(TrialConfig(2, "fake", {}, {"hang_at": "call"}, 1), timeout=3)
    assert hung.status == "timeout" and "killed while loading and validating" in hung.error, hung.error
    ok = worker.run(TrialConfig(3, "fake", {}, {}, 1), timeout=30)
    assert ok.status in ("ok", "unstable") and ok.validation is not None and ok.validation.ok, ok.error


def test_a_trial_that_spoils_the_cuda_context_fails_alone_the_worker_restarts_for_the_next(worker):
    worker.start()
    first = worker.proc.pid
    spoilt = worker.run(TrialConfig(1, "fake", {}, {"taint_at": "load"}, 1), timeout=30)
    assert spoilt.status == "failed" and "CUDA error" in spoilt.error and worker.proc is None
    ok = worker.run(TrialConfig(2, "fake", {}, {}, 1), timeout=30)
    assert ok.status in ("ok", "unstable"), ok.error
    assert worker.proc.pid != first
    failed = worker.run(TrialConfig(3, "fake", {}, {"fail_at": "load"}, 1), timeout=30)
    assert failed.status == "failed" and worker.proc is not None  # an ordinary failure keeps the worker


@pytest.mark.parametrize("params, status", [({"crash_at": "call"}, "crashed"), ({"hang_at": "load"}, "timeout")])
def test_a_finalist_that_crashes_or_hangs_ends_the_remeasurement_not_the_study(worker, params, status):
    from navigator.trial.isolate import WorkerDied

    chosen = [["top 1", to_dict(outcome(1))], ["baseline", to_dict(outcome(0, **params))]]
    with pytest.raises(WorkerDied) as died:
        worker.call({"op": "remeasure", "rounds": 2, "chosen": chosen}, timeout=5)
    assert died.value.status == status
    again = worker.call({"op": "remeasure", "rounds": 2, "chosen": chosen[:1]}, timeout=30)
    assert [f["number"] for f in again] == [1]


# Deploy fallbacks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("stage", ["triton", "convert"])
def test_a_winner_that_cannot_be_exported_yields_to_the_runner_up(fake, tmp_path, stage):
    from navigator.api import _deploy

    ctx = context(tmp_path)
    ranked = [outcome(1, {"fail_at": stage}), outcome(2)]
    chosen, notes, backend = _deploy(ctx.source, ctx, ranked, ctx.settings, tmp_path / "repo")
    assert chosen is not None and chosen.config.number == 2 and backend == "onnxruntime"
    assert notes == [f"trial 1 (fake) not deployable: TrialError: fake path: asked to fail at {stage}"]
    assert (tmp_path / "repo" / "demo" / "config.pbtxt").is_file()


def test_no_deployable_trial_writes_nothing(fake, tmp_path):
    from navigator.api import _deploy

    ctx = context(tmp_path)
    chosen, notes, backend = _deploy(ctx.source, ctx, [outcome(1, fail_at="triton")], ctx.settings, tmp_path / "repo")
    assert (chosen, backend, len(notes)) == (None, "", 1) and not (tmp_path / "repo").exists()


def deployment_of(ctx: TrialContext, **params):
    from navigator.paths.base import TritonTarget
    from navigator.trial.run import convert
    from navigator.triton.deployment import Deployment

    config = outcome(1, **params).config
    model = paths.get("fake").triton(convert(ctx, config), config.runtime, TritonTarget())
    return Deployment("demo", IO, model, ServingConfig(0))


def test_a_server_without_the_backend_gets_the_python_twin(fake, tmp_path):
    from navigator.triton.deployment import servable

    native = deployment_of(context(tmp_path))
    assert servable(native, {"onnxruntime", "python"}) == (native, "")
    twin, note = servable(native, {"python"})
    assert twin.model.backend == "python" and "no onnxruntime backend" in note


def test_a_backend_without_a_twin_is_refused_with_the_reason(fake, tmp_path):
    from navigator.triton.deployment import servable

    native = deployment_of(context(tmp_path), backend="fil")
    with pytest.raises(ServeError, match="this server has no fil backend"):
        servable(native, {"python"})


def test_a_dead_workers_last_words_name_its_stage_and_leave_warnings_out():
    import datetime

    from navigator.trial.isolate import last_words
    from navigator.trial.worker import STAGE_MARK

    def at(seconds: float) -> str:
        return datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]

    t0 = datetime.datetime(2026, 1, 2, 3, 4, 5).timestamp()
    log = [f"{STAGE_MARK} {at(t0)} answering trial", f"{STAGE_MARK} {at(t0 + 0.5)} converting for torch_ao",
           "inductor: compiling graph 1", f"{STAGE_MARK} {at(t0 + 1)} loading and validating (compiles)",
           "inductor: compiling graph 2",
           "/x/torchao/quant_api.py:12: FutureWarning: Config is deprecated", "  warnings.warn(msg)",
           "<unknown>:1: SyntaxWarning: invalid escape sequence '\\.'"]
    said = last_words(log, now=t0 + 131)
    assert said == " while loading and validating (compiles) (130 s into it). Last output: inductor: compiling graph 2"
    assert last_words(["segfault here"], now=0.0) == ". Last output: segfault here"
    assert last_words([f"{STAGE_MARK} {at(t0)} benchmarking"], now=t0 + 4) == \
        " while benchmarking (4 s into it). Last output: none"
