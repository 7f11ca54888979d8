"""What the written repository holds for models whose inputs are unlike the fixtures: a batch fixed at 1,
ONNX weights in external data, a dynamic batch served above the optimisation batch, dynamic batching,
NaN/Inf in the source's own outputs. Every model here is built by the test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from navigator.cache import Cache
from navigator.records import TrialConfig
from navigator.settings import StudySettings
from navigator.source import load_source
from navigator.trial.run import TrialContext, run_trial
from tests.conftest import run_cli

FAST = ("--budget", "20s", "--window", "0.05", "--no-progress")


def save(path: Path, nodes: list, inputs: list, outputs: list, initializers: list = (), **save_args) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path), **save_args)
    return path


def value(name: str, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def matmul_model(path: Path, weights: np.ndarray, batch: str | int = "batch", **save_args) -> Path:
    """y = x @ W with W an initializer (in external data with save_as_external_data=True)."""
    w = numpy_helper.from_array(weights.astype(np.float32), "W")
    return save(path, [helper.make_node("MatMul", ["x", "W"], ["y"])], [value("x", [batch, weights.shape[0]])],
                [value("y", [batch, weights.shape[1]])], [w], **save_args)


def external_model(directory: Path, weights: np.ndarray) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = matmul_model(directory / "net.onnx", weights, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="net.weights", size_threshold=0)
    assert (directory / "net.weights").is_file()
    return path


def in_process(model: Path, tmp_path: Path, batch: int = 1) -> TrialContext:
    source = load_source(model, batch=batch)
    return TrialContext(source, Cache(tmp_path / "cache", source.fingerprint), StudySettings())


# 1. A batch fixed by the model --------------------------------------------------------------------------

def test_fixed_batch_model_refuses_a_larger_batch_before_the_search(tmp_path):
    model = save(tmp_path / "static.onnx", [helper.make_node("Relu", ["x"], ["y"])], [value("x", [1, 3, 8, 8])],
                 [value("y", [1, 3, 8, 8])])
    done = run_cli("optimize", "--model", str(model), "--batch-size", "8", "--out", str(tmp_path / "out"), *FAST)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "input 'x'" in lines[0] and "fixed first dimension 1" in lines[0] and "batch 1 only" in lines[0]
    assert not (tmp_path / "out").exists()
    done = run_cli("optimize", "--model", str(model), "--batch-size", "1:16", "--trials", "1", "--out",
                   str(tmp_path / "out"), *FAST)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {o["config"]["batch_size"] for o in report["outcomes"]} == {1}
    assert "batch sizes 2, 4, 8, 16 not searched: the model has no dynamic batch axis" in " ".join(report["notes"])
    assert "max_batch_size" not in (tmp_path / "out" / "model_repository" / "static" / "config.pbtxt").read_text()


def test_a_dynamic_batch_model_whose_outputs_lack_the_batch_rows_fails_its_trial(tmp_path):
    """y = sum over the batch axis: at batch 8 one call computes one row, not 8."""
    model = save(tmp_path / "reduce.onnx", [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)],
                 [value("x", ["batch", 4])], [value("y", [4])],
                 [numpy_helper.from_array(np.array([0], np.int64), "axes")])
    ctx = in_process(model, tmp_path, batch=8)
    outcome = run_trial(ctx, TrialConfig(0, "ort_cpu", {}, {}, 8))
    assert outcome.status == "failed" and outcome.bench is None
    assert "output 'y' has 4 rows for a batch of 8" in outcome.error


# 2. ONNX weights in external data ------------------------------------------------------------------------

def test_external_data_changes_the_fingerprint(tmp_path):
    first = load_source(external_model(tmp_path / "a", np.ones((4, 3))))
    second = load_source(external_model(tmp_path / "b", 2 * np.ones((4, 3))))
    assert (tmp_path / "a" / "net.onnx").read_bytes() == (tmp_path / "b" / "net.onnx").read_bytes()
    assert first.fingerprint != second.fingerprint


def run_written(repository: Path, x: np.ndarray, tmp_path: Path) -> np.ndarray:
    """The written model file, copied elsewhere with its directory, run by onnxruntime."""
    import onnxruntime as ort

    moved = tmp_path / "moved"
    shutil.copytree(repository, moved)
    session = ort.InferenceSession(str(moved / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_external_data_repository_loads_from_a_fresh_directory(tmp_path):
    weights = np.random.default_rng(0).standard_normal((4, 3))
    model = external_model(tmp_path / "src", weights)
    out = tmp_path / "out"
    done = run_cli("optimize", "--model", str(model), "--trials", "2", "--path", "ort_cpu", "--out", str(out), *FAST)
    assert done.returncode == 0, done.stderr
    shutil.rmtree(tmp_path / "src")
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(run_written(out / "model_repository" / "net", x, tmp_path), x @ weights, rtol=1e-5)


@pytest.mark.parametrize("path", ["ort_cpu", "openvino"])
def test_every_onnx_path_takes_the_external_data_from_the_cache(tmp_path, path):
    from navigator import paths

    weights = np.random.default_rng(1).standard_normal((4, 3))
    ctx = in_process(external_model(tmp_path / "src", weights), tmp_path)
    module = paths.get(path)
    if module.available() is not None:
        pytest.skip(module.available())
    from navigator.search import space

    defaults = space.defaults(space.load(path), ("onnx", "onnx"), {})
    params = {k.split(".", 1)[1]: v for k, v in defaults.items()}
    artifact = module.convert(ctx.source, params, ctx.cache, ctx.target)
    shutil.rmtree(tmp_path / "src")
    x = np.ones((2, 4), np.float32)
    got = module.load(artifact, ctx.source, params)({"x": x})[0]
    np.testing.assert_allclose(got, x @ weights, rtol=1e-5)


def test_past_the_one_file_limit_the_external_data_goes_into_the_repository(tmp_path, monkeypatch):
    from navigator.paths import ort_cpu
    from navigator.paths.base import TritonTarget
    from navigator.source import onnx as onnx_source
    from navigator.triton import repository

    monkeypatch.setattr(onnx_source, "ONE_FILE_LIMIT", 0)
    weights = np.random.default_rng(2).standard_normal((4, 3))
    ctx = in_process(external_model(tmp_path / "src", weights), tmp_path)
    artifact = ort_cpu.convert(ctx.source, {}, ctx.cache, ctx.target)
    assert artifact.file is not None and (artifact.file.parent / "model.onnx.data").is_file()
    model = ort_cpu.triton(artifact, {}, TritonTarget())
    from navigator.triton import config as triton_config

    repository.write(tmp_path / "repo", "net", triton_config.build("net", ctx.source.io, model, 8), model.files)
    shutil.rmtree(tmp_path / "src")
    shutil.rmtree(tmp_path / "cache")
    x = np.ones((3, 4), np.float32)
    np.testing.assert_allclose(run_written(tmp_path / "repo" / "net", x, tmp_path), x @ weights, rtol=1e-5)


# 3-5. The served maximum batch, dynamic batching, NaN in the source's outputs -----------------------------

def test_served_maximum_dynamic_batching_and_nan_outputs_through_the_cli(tmp_path):
    """log(relu(x)) gives -inf for x < 0 and log(x - 3) NaN for most x: the report names them, no numpy
    warning leaks, the config serves batch 64 with dynamic batching at the default --batch-size 1."""
    three = numpy_helper.from_array(np.array(3.0, np.float32), "three")
    model = save(tmp_path / "logs.onnx", [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Log", ["r"], ["y"]),
                                          helper.make_node("Sub", ["x", "three"], ["s"]),
                                          helper.make_node("Log", ["s"], ["z"])],
                 [value("x", ["batch", 6])], [value("y", ["batch", 6]), value("z", ["batch", 6])], [three])
    out = tmp_path / "out"
    done = run_cli("optimize", "--model", str(model), "--trials", "2", "--path", "ort_cpu", "--out", str(out), *FAST)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    config = (out / "model_repository" / "logs" / "config.pbtxt").read_text()
    assert "max_batch_size: 64" in config and "dynamic_batching {" in config
    report = json.loads((out / "report.json").read_text())
    assert set(report["source_nonfinite"]) == {"y", "z"}
    assert report["source_nonfinite"]["z"]["count"] >= 1 and report["source_nonfinite"]["z"]["first"]
    assert report["winner"]["validation"]["outputs"][1]["source_nonfinite"] == report["source_nonfinite"]["z"]["count"]
    for name in ("report.md", "report.html"):
        text = (out / name).read_text()
        assert "output z: the source model gives NaN/Inf at" in text
    assert any("max_batch_size 64: trial" in n for n in report["notes"])


def test_the_api_takes_the_sample_batch_as_its_default_and_opts_out_of_dynamic_batching(tmp_path):
    import navigator

    model = matmul_model(tmp_path / "mm.onnx", np.ones((4, 3)))
    sample = {"x": np.random.default_rng(3).standard_normal((8, 4)).astype(np.float32)}
    result = navigator.optimize(str(model), sample, budget="20s", trials=1, paths=["ort_cpu"], out=tmp_path / "out",
                                progress=False, window_s=0.05, dynamic_batching=False)
    assert result.winner is not None and result.winner.config.batch_size == 8
    config = (result.repository / "config.pbtxt").read_text()
    assert "max_batch_size: 64" in config and "dynamic_batching" not in config
