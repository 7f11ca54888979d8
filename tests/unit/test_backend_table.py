"""Every config navigator can emit is one its Triton backend takes: the table in navigator/triton/backends.py,
checked over each path's search space (random points and the defaults) and each python-backend twin."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from navigator import paths as registry
from navigator.errors import InputError, TrialError
from navigator.paths.base import TritonTarget
from navigator.records import Artifact, IOSpec, ServingConfig, TensorSpec
from navigator.search import space as search_space
from navigator.triton import backends, fil, python_backend
from navigator.triton import config as triton_config

IO = IOSpec(inputs=(TensorSpec("x", "float32", (None, 3, 8, 8)),), outputs=(TensorSpec("y", "float32", (None, 10)),))
KINDS = {"torch": "exported", "onnx": "onnx", "tf": "savedmodel", "trees": "xgboost"}
SAMPLES = 12
OLD_SERVER = "25.02"  # before FIL's renames (25.09) and the TensorFlow backend's deprecation (25.03)
optuna.logging.set_verbosity(optuna.logging.WARNING)


def params_of(name: str, framework: str) -> list[dict]:
    space = search_space.load(name)
    source = (framework, KINDS.get(framework, framework))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    points = []
    for _ in range(SAMPLES):
        convert, runtime = search_space.suggest(study.ask(), space, source)
        points.append({**convert, **runtime})
    prefix = f"{name}."
    points.append({k[len(prefix):]: v for k, v in search_space.defaults(space, source, {}).items()})
    return points


def emitted(tmp_path: Path):
    file = tmp_path / "artifact.bin"
    file.write_bytes(b"x")
    # What the tree and TF-TRT paths read from their artifact directory: a forest saved for FIL (its
    # metadata and model file) and the SavedModel that Triton's TF-TRT accelerator converts itself.
    for forest in (tmp_path, tmp_path / "fil"):  # beside the artifact, or in its fil/ (treelite)
        forest.mkdir(exist_ok=True)
        fil.write_meta(forest, "xgboost_json", "multiclass", 4, 3)
        (forest / fil.FILES["xgboost_json"]).write_text("{}")
    (tmp_path / "saved").mkdir()
    (tmp_path / "original.txt").write_text(str(tmp_path / "saved"))
    for name in registry.NAMES:
        module = registry.get(name)
        for framework in module.frameworks:
            for params in params_of(name, framework):
                artifact = Artifact(name, tmp_path, "key", dict(params), file)
                # The config an older Triton release takes (old names, TF backend), and a current one's.
                for target in (TritonTarget(OLD_SERVER), TritonTarget()):
                    try:
                        model = module.triton(artifact, params, target)
                    except TrialError as exc:  # a setting or backend Triton cannot serve, with the reason
                        assert "cannot be served" in str(exc) or ("deprecated" in str(exc) and not target.release)
                        continue
                    yield name, params, model


def assert_accepted(model, serving=None):
    config = triton_config.build("demo", IO, model, 8, serving)
    again = triton_config.from_text(triton_config.to_text(config))
    assert again == config
    found = backends.problems(again, sorted(model.files))
    assert found == [], (model.backend, model.platform, model.parameters, found)


def test_every_emitted_config_is_accepted_by_its_backend(tmp_path):
    seen = set()
    for name, params, model in emitted(tmp_path):
        assert_accepted(model)
        seen.add((name, model.backend or model.platform))
    assert {n for n, _ in seen} == set(registry.NAMES)


def test_python_twins_and_serving_knobs_are_accepted(tmp_path):
    twins = 0
    for name, params, model in emitted(tmp_path):
        try:
            twin = python_backend.from_native(model)
        except InputError as exc:  # TensorRT plans, engines and accelerators, FIL, TensorFlow: no python runtime
            assert name in ("tensorrt", "ort_tensorrt", "torch_tensorrt", "fil", "tree_native", "treelite",
                            "tf_baseline", "tf_trt"), (name, exc)
            assert python_backend.SPEC not in model.files, name  # a path that ships a twin spec gets its twin
            continue
        twins += 1
        assert twin.parameters["MODEL_FILE"] in twin.files and "model.py" in twin.files
        assert python_backend.read_spec(twin.files[python_backend.SPEC])["params"] == params, name
        assert_accepted(twin, ServingConfig(16, instances=2, dynamic_batching=True, max_queue_delay_us=100,
                                            preferred_batch_sizes=(8, 16), threads=1))
        assert_accepted(model, ServingConfig(16, instances=3, dynamic_batching=True, threads=2))
    assert twins > 0


def test_threads_go_to_each_backends_own_key(tmp_path):
    keys = {}
    for name, params, model in emitted(tmp_path):
        config = triton_config.build("demo", IO, model, 8, ServingConfig(8, threads=1))
        key = triton_config.thread_key(model)
        if key:
            assert config.parameters[key].string_value == "1"
            runtime = model.parameters.get("RUNTIME", "") if model.backend == "python" else ""
            keys[":".join(filter(None, (model.backend or model.platform, runtime)))] = key
    assert keys["onnxruntime"] == "intra_op_thread_count"
    assert keys["openvino"] == "INFERENCE_NUM_THREADS"
    assert keys["pytorch"] == "INTRA_OP_THREAD_COUNT"
    assert keys["python:torch"] == "threads"  # the twin replaces the trial's param of that name
    assert keys["python:onnxruntime"] == "intra_op_num_threads"  # ort_cuda's CUDA-graph twin


@pytest.mark.parametrize("mutate, expected", [
    (lambda c: c.parameters["intra_op_threads"].__setattr__("string_value", "2"), "no parameter 'intra_op_threads'"),
    (lambda c: c.parameters["execution_mode"].__setattr__("string_value", "parallel"), "not a legal value"),
    (lambda c: c.__setattr__("platform", "tensorrt_plan"), "platform"),
    (lambda c: c.optimization.graph.__setattr__("level", 3), "graph level 3"),
    (lambda c: c.optimization.execution_accelerators.gpu_execution_accelerator.add(name="tensorrt")
     .parameters.__setitem__("precision_mode", "FP8"), "precision_mode"),
    (lambda c: c.optimization.execution_accelerators.cpu_execution_accelerator.add(name="dnnl"), "'dnnl'"),
    (lambda c: c.dynamic_batching.preferred_batch_size.append(64), "preferred batch size"),
])
def test_illegal_configs_are_caught(tmp_path, mutate, expected):
    file = tmp_path / "model.onnx"
    file.write_bytes(b"x")
    model = registry.get("ort_cpu").triton(Artifact("ort_cpu", tmp_path, "k", {}, file), {"execution_mode": "sequential"},
                                          TritonTarget())
    config = triton_config.build("demo", IO, model, 8)
    assert backends.problems(config, sorted(model.files)) == []
    mutate(config)
    assert any(expected in p for p in backends.problems(config, sorted(model.files)))


def test_missing_model_file_and_fil_layouts():
    pb = triton_config._pb()
    config = pb.ModelConfig(name="m", backend="onnxruntime")
    assert backends.problems(config, []) == ["version directory lacks model.onnx"]
    fil = pb.ModelConfig(name="t", backend="fil", max_batch_size=64)
    for key, value in {"model_type": "xgboost_json", "is_classifier": "true", "layout": "depth_first"}.items():
        fil.parameters[key].string_value = value
    assert backends.problems(fil, ["xgboost.json"]) == []
    assert backends.problems(fil, ["model.txt"]) == ["version directory lacks xgboost.json"]
    fil.parameters["output_class"].string_value = "true"  # an old name beside a new one
    assert any("is_classifier" in p for p in backends.problems(fil, ["xgboost.json"]))
