"""Runner.close(): every runner class releases what it holds, and the trial worker closes each runner it
loaded once the trial (or the finalists' rounds) are over, also when the trial fails."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import navigator.paths
import navigator.runtimes
from navigator.records import Artifact, TrialConfig
from navigator.trial import run as trial_run


def _runner_classes() -> list[type]:
    found = []
    for package in (navigator.paths, navigator.runtimes):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            found += [c for _, c in inspect.getmembers(module, inspect.isclass)
                      if c.__module__ == module.__name__ and callable(getattr(c, "prepare", None))]
    return found


def test_every_runner_class_has_close() -> None:
    classes = _runner_classes()
    assert len(classes) >= 10  # the ORT, OpenVINO, torch, TensorRT, TF, tree runners
    assert [c.__qualname__ for c in classes if not callable(getattr(c, "close", None))] == []


class Runner:
    closed = 0

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self.fail:
            raise RuntimeError("out of memory")
        return [inputs["x"]]

    def prepare(self, inputs: dict[str, np.ndarray]) -> Any:
        return lambda: None

    def close(self) -> None:
        Runner.closed += 1


@pytest.mark.parametrize("fail", [True, False])
def test_run_trial_closes_its_runner(fail: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Runner.closed = 0
    path = SimpleNamespace(convert=lambda source, params, cache, target: Artifact("fake", tmp_path, "k", {}),
                           load=lambda artifact, source, params: Runner(fail), precision=lambda params: "fp32")
    monkeypatch.setattr(trial_run.paths, "get", lambda name: path)
    monkeypatch.setattr(trial_run, "second_checks", lambda *a: ("invalid", "stops here", None))
    x = np.ones((2, 3), np.float32)
    from navigator.records import IOSpec, TensorSpec

    source = SimpleNamespace(io=IOSpec((TensorSpec("x", "float32", (None, 3)),), (TensorSpec("y", "float32", (None, 3)),)))
    ctx = SimpleNamespace(source=source, metric=None, cache=SimpleNamespace(misses=0), reference=lambda batch: [x], target=None,
                          inputs=lambda batch: {"x": x},
                          settings=SimpleNamespace(atol=1e-5, rtol=1e-5, noise_atol=0.0))
    outcome = trial_run.run_trial(ctx, TrialConfig(0, "fake", {}, {}, 2))  # type: ignore[arg-type]
    assert outcome.status == ("failed" if fail else "invalid"), outcome
    assert Runner.closed == 1


def test_ort_runners_drop_their_session_and_graphs(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, save

    from navigator.runtimes.ort import OrtCudaRunner, open_session

    graph = helper.make_graph([helper.make_node("Mul", ["x", "x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 3])])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    cpu = open_session(tmp_path / "m.onnx", {}, "cpu")
    cpu.close()
    assert cpu.session is None

    class OnCpu(OrtCudaRunner):
        device = "cpu"

    graphed = OnCpu(tmp_path / "m.onnx", {}, ["CPUExecutionProvider"], cuda_graph=True)
    graphed({"x": np.ones((2, 3), np.float32)})
    assert graphed._graphs
    graphed.close()
    assert graphed._graphs == {} and graphed.session is None


def test_the_finalists_rounds_close_their_runners(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from navigator.trial import remeasure as finalists

    Runner.closed = 0
    path = SimpleNamespace(convert=lambda source, params, cache, target: Artifact("fake", tmp_path, "k", {}),
                           load=lambda artifact, source, params: Runner(False))
    monkeypatch.setattr(trial_run.paths, "get", lambda name: path)
    monkeypatch.setattr(finalists.paths, "get", lambda name: path)
    ctx = SimpleNamespace(source=None, cache=None, target=None, inputs=lambda batch: {"x": np.ones((2, 3), np.float32)},
                          settings=SimpleNamespace(window_s=0.002, window_calls=0, device="cpu"))
    chosen = [(role, SimpleNamespace(config=TrialConfig(i, "fake", {}, {}, 2))) for i, role in enumerate(("top1", "top2"))]
    figures = finalists.remeasure(ctx, chosen, rounds=1)  # type: ignore[arg-type]
    assert [f.role for f in figures] == ["top1", "top2"] and Runner.closed == 2
