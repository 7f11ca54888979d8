"""perf_analyzer's CSV and input data, the serving score, python-backend twins, --concurrency parsing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from navigator.paths.base import TritonTarget
from navigator.errors import InputError
from navigator.paths import openvino, ort_cpu
from navigator.records import Artifact, PerfPoint, ServingConfig, ServingTrial, TritonModel
from navigator.serving import ServingOptions, parse_concurrency
from navigator.triton import perf, python_backend, tune

CSV = """Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency
1,3657.83,2,148,15,12,274,86,1,523,577,600,774
4,4308.65,2,198,1199,12,342,96,1,1753,2194,2281,5047
"""


def test_parse_csv_in_milliseconds(tmp_path):
    (tmp_path / "p.csv").write_text(CSV)
    one, four = perf.parse_csv(tmp_path / "p.csv")
    assert (one.concurrency, one.throughput) == (1, 3657.83)
    assert one.p50_ms == pytest.approx(0.523) and one.p99_ms == pytest.approx(0.774)
    assert four.queue_ms == pytest.approx(1.199)
    assert four.compute_ms == pytest.approx((12 + 342 + 96) / 1000)


def test_input_data_rows_without_batch_axis(tmp_path):
    inputs = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array([[1, 2], [3, 4]], dtype=np.int64)}
    data = json.loads(perf.input_data(inputs, True, tmp_path / "d.json").read_text())["data"]
    assert len(data) == 2
    assert data[1]["x"] == {"content": [3.0, 4.0, 5.0], "shape": [3]}
    assert data[0]["ids"]["content"] == [1, 2]
    whole = json.loads(perf.input_data(inputs, False, tmp_path / "e.json").read_text())["data"]
    assert whole[0]["x"]["shape"] == [2, 3]


def point(c, t, p99):
    return PerfPoint(c, t, p99 / 2, p99, p99, p99, 0.0, 0.1)


def test_score_is_the_best_throughput_within_the_latency_limit():
    points = (point(1, 100.0, 2.0), point(4, 300.0, 9.0), point(8, 350.0, 20.0))
    assert tune.score(points, None) == 350.0
    assert tune.score(points, 10.0) == 300.0
    assert tune.score(points, 1.0) is None


def test_median_of_repeated_runs():
    runs = [ServingTrial(0, ServingConfig(8), (point(1, t, p),)) for t, p in ((100, 3), (300, 1), (200, 2))]
    merged = tune._median_trial(runs, None)
    assert merged.points[0].throughput == 200 and merged.points[0].p99_ms == 2 and merged.score == 200


def test_suggest_covers_the_joint_space():
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    configs = [tune.suggest(study.ask(), 4, 2) for _ in range(60)]
    assert {c.max_batch_size for c in configs} == {4, 8, 16, 32}
    assert {c.threads for c in configs} == {1, 2} and {c.instances for c in configs} == {1, 2}
    assert all(c.max_queue_delay_us == 0 for c in configs if not c.dynamic_batching)
    assert all(c.streams is None for c in configs)
    with_streams = [tune.suggest(study.ask(), 4, 2, streams=True) for _ in range(20)]
    assert {c.streams for c in with_streams} == {1, 2}


def test_openvino_streams_and_threads_reach_the_config(tmp_path):
    from navigator.records import IOSpec, TensorSpec
    from navigator.triton import config as triton_config

    io = IOSpec((TensorSpec("x", "float32", (None, 4)),), (TensorSpec("y", "float32", (None, 2)),))
    native = openvino.triton(_openvino_artifact(tmp_path), {"performance_hint": "LATENCY", "num_streams": 1},
                              TritonTarget())
    for model, keys in ((native, ("NUM_STREAMS", "INFERENCE_NUM_THREADS")),
                        (python_backend.from_native(native), ("num_streams", "inference_num_threads"))):
        config = triton_config.build("m", io, model, 8, ServingConfig(8, instances=2, threads=1, streams=2))
        assert config.parameters[keys[0]].string_value == "2"
        assert config.parameters[keys[1]].string_value == "1"
        assert config.instance_group[0].count == 2


def _openvino_artifact(tmp_path):
    (tmp_path / "model.xml").write_text("<net/>")
    (tmp_path / "model.bin").write_bytes(b"")
    return Artifact("openvino", tmp_path, "k", {}, tmp_path / "model.xml")


def test_python_twin_of_openvino_runs_the_xml(tmp_path):
    params = {"performance_hint": "LATENCY", "inference_precision": "bf16"}
    twin = python_backend.from_native(openvino.triton(_openvino_artifact(tmp_path), params, TritonTarget()))
    assert twin.backend == "python" and twin.parameters == {"RUNTIME": "openvino", "MODEL_FILE": "model.xml"}
    assert set(twin.files) == {"model.xml", "model.bin", "model.py", "runtimes", "twin.json"}
    assert python_backend.read_spec(twin.files["twin.json"]) == {"runtime": "openvino", "device": "cpu",
                                                                 "params": params, "unpickle": False}


def test_python_twin_carries_the_trials_params_and_refuses_tensorrt(tmp_path):
    """No mapping back from Triton's keys: the twin gets the params the trial's runner got."""
    (tmp_path / "m.onnx").write_bytes(b"")
    params = {"graph_optimization_level": "basic", "intra_op_num_threads": 2}
    native = ort_cpu.triton(Artifact("ort_cpu", tmp_path, "k", {}, tmp_path / "m.onnx"), params, TritonTarget())
    twin = python_backend.from_native(native)
    assert twin.parameters == {"RUNTIME": "onnxruntime", "MODEL_FILE": "model.onnx"}
    assert python_backend.read_spec(twin.files["twin.json"])["params"] == params
    with pytest.raises(InputError, match="twin.json"):  # a repository navigator did not write
        python_backend.from_native(TritonModel(backend="onnxruntime", files={"model.onnx": tmp_path / "m.onnx"}))
    with pytest.raises(InputError, match="tensorrt"):
        python_backend.from_native(TritonModel(backend="onnxruntime", files={"model.onnx": tmp_path / "m.onnx"},
                                               gpu_accelerators={"tensorrt": {}}))
    with pytest.raises(InputError, match="tensorrt_plan"):
        python_backend.from_native(TritonModel(platform="tensorrt_plan", files={"model.plan": tmp_path / "p"}))


@pytest.mark.parametrize("text, expected", [("1,4", (1, 4)), ("4,1,4", (1, 4)), ("1:8", (1, 2, 4, 8)), ("3", (3,))])
def test_parse_concurrency(text, expected):
    assert parse_concurrency(text) == expected


@pytest.mark.parametrize("text", ["", "0", "a,b", "1:x", "-2"])
def test_bad_concurrency(text):
    with pytest.raises(InputError, match="--concurrency"):
        parse_concurrency(text)


def test_bad_serving_options():
    with pytest.raises(InputError, match="--serving"):
        ServingOptions("docker")
    with pytest.raises(InputError, match="--latency-limit-ms"):
        ServingOptions(latency_limit_ms=0)


def test_suggest_stays_within_the_validated_batch_and_the_opt_out():
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    configs = [tune.suggest(study.ask(), 4, 2, max_batch=16, batching=False) for _ in range(40)]
    assert {c.max_batch_size for c in configs} == {4, 8, 16}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))  # other choices, other study
    wide = [tune.suggest(study.ask(), 1, 2, max_batch=64) for _ in range(60)]
    assert {c.max_batch_size for c in wide} == {1, 2, 4, 8, 64}  # the written default is a choice
    assert not any(c.dynamic_batching for c in configs)
