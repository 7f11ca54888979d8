"""Q/DQ quantization for the TensorRT paths (tensorrt, ort_tensorrt `quantize: int8 / fp8`): narrowing and
its reasons, the cache key's calibration fingerprint, the NO_CALIBRATION refusal, the builder flags of a
quantized trial, the Triton configs, and Model Optimizer's quantizer for real where it is installed (the
TensorRT half needs a GPU and TensorRT, which these tests never have)."""

from __future__ import annotations

import ctypes
import json
import types
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from navigator import paths
from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.paths import _modelopt, _probe, ort_tensorrt, tensorrt
from navigator.paths.base import NO_CALIBRATION, Target, TritonTarget
from navigator.records import Artifact, IOSpec, TensorSpec
from navigator.search import space as space_mod
from navigator.source import ModelSource
from navigator.trial.validate import AGREEMENT, TOLERANCES, validate
from navigator.triton import config as triton_config

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("tensorrt", "ort_tensorrt")
MODULES = {"tensorrt": tensorrt, "ort_tensorrt": ort_tensorrt}
LOGITS = (TensorSpec("logits", "float32", (None, 10)),)
INT8 = {"quantize": "int8", "calibration_method": "max", "high_precision_dtype": "fp16", "exclude": "none"}
GIB = 1073741824
pb = triton_config._pb()


def quantize_choices(name: str) -> tuple:
    return next(p for p in paths.space(name).params if p.name == "quantize").choices


@pytest.fixture
def machine(monkeypatch):
    """Sets what this machine has: set(modules installed of _modelopt.NEEDS), the GPU's capability."""
    def have(modules: set[str], capability: tuple[int, int] | None) -> None:
        monkeypatch.setattr(_modelopt, "installed", lambda name: name in modules)
        monkeypatch.setattr(_probe, "cuda_capability", lambda: capability)
    return have


# Narrowing, and the reasons


@pytest.mark.parametrize("name", NAMES)
def test_without_modelopt_only_none_is_left(name, machine):
    machine(set(), (9, 0))
    assert quantize_choices(name) == ("none",)
    assert _modelopt.reason("int8") == _modelopt.reason("fp8") == (
        "nvidia-modelopt is not installed (pip install 'triton-navigator[trt]'); int8/fp8 Q/DQ quantization needs it")
    machine(set(_modelopt.NEEDS) - {"lief"}, (9, 0))  # the quantizer imports lief through modelopt.onnx.trt_utils
    assert quantize_choices(name) == ("none",) and _modelopt.reason("int8").startswith("lief is not installed")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("capability, kept", [(None, ("none", "int8")), ((8, 0), ("none", "int8")),
                                              ((8, 6), ("none", "int8")), ((8, 9), ("none", "int8", "fp8")),
                                              ((9, 0), ("none", "int8", "fp8"))])
def test_fp8_needs_compute_capability_8_9(name, machine, capability, kept):
    machine(set(_modelopt.NEEDS), capability)
    assert quantize_choices(name) == kept
    reason = _modelopt.reason("fp8")
    if "fp8" in kept:
        assert reason is None
    elif capability is None:
        assert reason == "fp8 needs a CUDA GPU of compute capability 8.9 or newer; the driver shows none"
    else:
        assert reason is not None and f"this one is {capability[0]}.{capability[1]}" in reason


@pytest.mark.parametrize("name", NAMES)
def test_this_machine_never_keeps_fp8(name):
    """No GPU here: fp8 is narrowed away; int8 stays exactly where Model Optimizer is installed."""
    choices = quantize_choices(name)
    assert "fp8" not in choices and choices[0] == "none"
    assert ("int8" in choices) == (_modelopt.missing() is None)


@pytest.mark.parametrize("name", NAMES)
def test_the_narrowed_space_still_samples_and_defaults_unquantized(name, machine):
    machine(set(_modelopt.NEEDS), (9, 0))
    space = paths.space(name)
    defaults = space_mod.defaults(space, ("onnx", "onnx"), {})
    assert defaults[f"{name}.quantize"] == "none" and f"{name}.calibration_method" not in defaults
    quantized = space_mod.defaults(space, ("onnx", "onnx"), {"quantize": "fp8"})
    assert quantized[f"{name}.calibration_method"] == "entropy" and quantized[f"{name}.high_precision_dtype"] == "fp16"
    assert f"{name}.exclude" not in quantized  # fp8 quantizes Conv/Gemm/MatMul only: nothing to exclude
    assert space_mod.defaults(space, ("onnx", "onnx"), {"quantize": "int8"})[f"{name}.exclude"] == "none"
    assert f"{name}.trt_fp16_enable" not in quantized and f"{name}.precision" not in quantized


def test_cuda_capability_asks_the_driver(monkeypatch):
    calls = []

    class Driver:
        def cuDeviceGet(self, device, ordinal):
            device._obj.value = 0
            return 0

        def cuDeviceGetAttribute(self, value, attribute, device):
            calls.append(attribute)
            value._obj.value = {75: 8, 76: 9}[attribute]
            return 0

    monkeypatch.setattr(ctypes, "CDLL", lambda name, *a, **k: Driver())
    monkeypatch.setattr(_probe, "cuda_gpus", lambda: 1)
    _probe.cuda_capability.cache_clear()
    try:
        assert _probe.cuda_capability() == (8, 9) and calls == [75, 76]
        _probe.cuda_capability.cache_clear()
        monkeypatch.setattr(_probe, "cuda_gpus", lambda: 0)
        assert _probe.cuda_capability() is None
    finally:
        _probe.cuda_capability.cache_clear()


# The conversion: calibration inputs, cache keys, refusals


def rows(n: int, seed: int) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).standard_normal((n, 16)).astype(np.float32)}


def linear_onnx(folder: Path) -> ModelSource:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((16, 10)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["logits"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], [weight])
    file = folder / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(file))
    io = IOSpec((TensorSpec("x", "float32", (None, 16)),), LOGITS)
    return ModelSource("onnx", "onnx", "m", file, None, io, "fingerprint", rows(8, 1))


@pytest.fixture
def recorded(monkeypatch):
    """Model Optimizer replaced by a recorder that writes the model it was given, so that the caching around
    it runs on any machine; returns the calibration_shapes of each call."""
    calls: list[str] = []

    def record(model, params, calibration, batched, out):
        calls.append(_modelopt.calibration_feed(calibration, batched)[1] or "")
        (out / "model.onnx").write_bytes(model.read_bytes())

    monkeypatch.setattr(_modelopt, "quantize", record)
    monkeypatch.setattr(_modelopt, "missing", lambda: None)
    return calls


def test_quantized_conversions_are_cached_by_the_calibration_inputs(tmp_path, recorded):
    src = linear_onnx(tmp_path)
    cache = Cache(tmp_path / "cache", src.fingerprint)
    first = ort_tensorrt.convert(src, INT8, cache, Target("cuda", 8, 8, rows(64, 2)))
    again = ort_tensorrt.convert(src, INT8, cache, Target("cuda", 8, 8, rows(64, 2)))
    assert again.dir == first.dir and again.file == first.file and len(recorded) == 1
    assert first.file.parent.name.startswith(_modelopt.STEP) and first.file != src.file
    other = ort_tensorrt.convert(src, INT8, cache, Target("cuda", 8, 8, rows(64, 3)))  # other calibration rows
    assert other.file != first.file and other.dir != first.dir and len(recorded) == 2
    stored = json.loads((first.file.parent / "params.json").read_text())["params"]
    assert stored["calibration"] == _modelopt.key(INT8, Target(calibration=rows(64, 2)))["calibration"]
    assert recorded[0] == "x:16x16"  # 16 rows a calibration step
    plain = ort_tensorrt.convert(src, {"quantize": "none"}, cache, Target("cuda", 8, 8, None))
    assert plain.file == src.file and len(recorded) == 2  # unquantized: no calibration needed, none made


def test_the_key_holds_the_quantization_and_the_fingerprint():
    one, two = Target(calibration=rows(32, 1)), Target(calibration=rows(32, 2))
    assert _modelopt.key({"quantize": "none", "precision": "fp16"}, Target()) == {}
    assert _modelopt.key(INT8, one) == _modelopt.key(INT8, Target(calibration=rows(32, 1)))
    assert _modelopt.key(INT8, one) != _modelopt.key(INT8, two)
    assert _modelopt.key(INT8, one) != _modelopt.key({**INT8, "calibration_method": "entropy"}, one)
    assert set(_modelopt.key(INT8, one)) == {*INT8, "calibration"}


@pytest.mark.parametrize("mode", ["int8", "fp8"])
def test_no_calibration_inputs_refused(tmp_path, recorded, monkeypatch, mode):
    monkeypatch.setattr(_probe, "cuda_capability", lambda: (9, 0))
    src = linear_onnx(tmp_path)
    with pytest.raises(TrialError) as refused:
        ort_tensorrt.convert(src, {**INT8, "quantize": mode}, Cache(tmp_path / "c", "f"), Target("cuda", 8, 8, None))
    assert str(refused.value) == NO_CALIBRATION and recorded == []


def test_a_quantize_mode_this_machine_lacks_is_refused_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(_modelopt, "installed", lambda name: False)
    src = linear_onnx(tmp_path)
    with pytest.raises(TrialError, match=r"nvidia-modelopt is not installed \(pip install 'triton-navigator\[trt\]'\)"):
        ort_tensorrt.convert(src, INT8, Cache(tmp_path / "c", "f"), Target("cuda", 8, 8, rows(16, 1)))
    monkeypatch.setattr(_modelopt, "installed", lambda name: True)
    monkeypatch.setattr(_probe, "cuda_capability", lambda: (8, 0))
    with pytest.raises(TrialError, match="this one is 8.0"):
        ort_tensorrt.convert(src, {**INT8, "quantize": "fp8"}, Cache(tmp_path / "c", "f"), Target("cuda", 8, 8, rows(16, 1)))


def test_calibration_feed_steps():
    data, shapes = _modelopt.calibration_feed({"x": np.zeros((200, 3, 4), np.float32),
                                               "ids": np.zeros((200, 7), np.int64)}, batched=True)
    assert shapes == "x:16x3x4,ids:16x7" and data["x"].shape[0] == data["ids"].shape[0] == 128  # ROWS
    data, shapes = _modelopt.calibration_feed({"x": np.zeros((37, 5), np.float32)}, batched=True)
    assert shapes == "x:16x5" and data["x"].shape == (32, 5)  # whole steps only
    data, shapes = _modelopt.calibration_feed({"x": np.zeros((5, 5), np.float32)}, batched=True)
    assert shapes == "x:5x5" and data["x"].shape == (5, 5)
    whole = {"x": np.zeros((1, 3), np.float32)}
    assert _modelopt.calibration_feed(whole, batched=False) == (whole, None)


# TensorRT: the builder flags, precision classes, Triton configs


def fake_trt(version: str) -> types.SimpleNamespace:
    flags = {"TF32": "TF32", "FP16": "FP16", "BF16": "BF16"} if not version.startswith("11") else {"TF32": "TF32"}
    network = {} if version.startswith("8.") else {"STRONGLY_TYPED": 5}
    return types.SimpleNamespace(__version__=version, BuilderFlag=types.SimpleNamespace(**flags),
                                 NetworkDefinitionCreationFlag=types.SimpleNamespace(**network))


@pytest.mark.parametrize("version, params, expected", [
    ("10.13.0", INT8, (True, (), ())),  # explicit quantization: strongly typed, no precision flags
    ("10.13.0", {**INT8, "quantize": "fp8"}, (True, (), ())),
    ("11.1.0", INT8, (True, (), ())),
    ("10.13.0", {"quantize": "none", "precision": "fp16"}, (False, ("FP16",), ())),
    ("10.13.0", {"quantize": "none", "precision": "bf16"}, (False, ("BF16",), ())),
    ("10.13.0", {"quantize": "none", "precision": "fp32"}, (False, (), ("TF32",))),
    ("10.13.0", {"quantize": "none", "precision": "tf32"}, (False, (), ())),
    ("11.1.0", {"quantize": "none", "precision": "fp16"}, (True, (), ())),
    ("11.1.0", {"precision": "fp32"}, (True, (), ("TF32",))),
])
def test_builder_flags_for_quantized_and_unquantized_trials(version, params, expected):
    assert tensorrt.build_flags(fake_trt(version), params) == expected


def test_quantized_trials_need_strongly_typed_networks():
    assert tensorrt.build_flags(fake_trt("8.6.1"), {"precision": "fp16"}) == (False, ("FP16",), ())
    with pytest.raises(TrialError, match="no strongly typed networks"):
        tensorrt.build_flags(fake_trt("8.6.1"), INT8)


@pytest.mark.parametrize("name", NAMES)
def test_precision_classes_of_quantized_trials(name):
    plugin = paths.get(name)
    assert plugin.precision(INT8) == "int8" and plugin.precision({**INT8, "quantize": "fp8"}) == "fp8"
    unquantized = {"quantize": "none", "precision": "bf16", "trt_fp16_enable": True}
    assert plugin.precision(unquantized) == {"tensorrt": "bf16", "ort_tensorrt": "fp16"}[name]
    assert name in paths.calibrating("onnx", "cuda")  # the report's calibration notes name them
    assert TOLERANCES["fp8"] == TOLERANCES["int8"] and AGREEMENT["fp8"] == AGREEMENT["int8"]


def round_trip(model):
    io = IOSpec((TensorSpec("x", "float32", (None, 16)),), LOGITS)
    config = triton_config.build("demo", io, model, 8)
    parsed = triton_config.from_text(triton_config.to_text(config))
    assert parsed == config
    return parsed


@pytest.mark.parametrize("graphs", [False, True])
def test_triton_config_of_a_quantized_plan(tmp_path, graphs):
    (tmp_path / "model.plan").write_bytes(b"not really a plan")
    art = Artifact("tensorrt", tmp_path, "key", dict(INT8), tmp_path / "model.plan")
    model = tensorrt.triton(art, {**INT8, "workspace": GIB, "builder_optimization_level": 3, "cuda_graphs": graphs},
                            TritonTarget())
    assert model.files == {"model.plan": tmp_path / "model.plan"}
    parsed = round_trip(model)
    assert parsed.platform == "tensorrt_plan" and parsed.optimization.cuda.graphs is graphs
    assert [g.kind for g in parsed.instance_group] == [pb.ModelInstanceGroup.KIND_GPU]
    assert [i.data_type for i in parsed.input] == [pb.TYPE_FP32]  # Q/DQ stays inside: fp32 in and out


def test_ort_tensorrt_runs_and_serves_the_qdq_model_with_fp16_off(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not really a model")
    art = Artifact("ort_tensorrt", tmp_path, "key", dict(INT8), tmp_path / "model.onnx")
    params = {**INT8, "trt_fp16_enable": True, "trt_max_workspace_size": GIB}  # fp16 asked, but quantized
    options = ort_tensorrt.provider_options(params, tmp_path / "engines", {})
    assert options["trt_fp16_enable"] is False and "trt_int8_enable" not in options
    assert ort_tensorrt.precision(params) == "int8"
    parsed = round_trip(ort_tensorrt.triton(art, params, TritonTarget()))
    (accelerator,) = parsed.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP32"
    assert ort_tensorrt.triton(art, {"quantize": "none", "trt_fp16_enable": True}, TritonTarget()) \
        .gpu_accelerators["tensorrt"]["precision_mode"] == "FP16"


def test_readme_says_the_qdq_route_is_unverified():
    text = (ROOT / "README.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")}
    for name in NAMES:
        assert "`quantize`" in rows[f"`{name}`"] and "Q/DQ" in rows[f"`{name}`"] and "int8 / fp8" in rows[f"`{name}`"]
    assert "**The TensorRT Q/DQ route is unverified too**" in text
    assert "no TensorRT engine has been\nbuilt from one" in text


# Model Optimizer for real (where installed): the Q/DQ model it makes runs in ONNX Runtime on the CPU


def conv_classifier(path: Path) -> Path:
    """x[N,3,16,16] -> Conv 3->32, Relu, Conv 32->32, Relu, GlobalAveragePool, Flatten, Gemm -> logits[N,10]:
    32 channels, so that modelopt's FP8 rules quantize the second convolution (it skips channels < 16)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = {"c1": rng.standard_normal((32, 3, 3, 3)) * 0.3, "b1": rng.standard_normal(32) * 0.1,
               "c2": rng.standard_normal((32, 32, 3, 3)) * 0.1, "b2": rng.standard_normal(32) * 0.1,
               "fw": rng.standard_normal((10, 32)), "fb": rng.standard_normal(10) * 0.1}
    nodes = [helper.make_node("Conv", ["x", "c1", "b1"], ["h1"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["h1"], ["r1"]),
             helper.make_node("Conv", ["r1", "c2", "b2"], ["h2"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["h2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "classifier",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


SCALES = {"fp32": "FLOAT", "fp16": "FLOAT16"}


def images(n: int, seed: int) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).standard_normal((n, 3, 16, 16)).astype(np.float32)}


def run(model: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    # Basic level: the CPU provider's level-2 Q/DQ fusions miscompute some Conv + Q/DQ graphs
    # (microsoft/onnxruntime#24711); on this model's FP8 Q/DQ (fp32 high precision) they brought the rows'
    # cosine with fp32 down to 0.77 at ORT_ENABLE_EXTENDED and above, from 0.9998 at basic.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"]).run(None, inputs)[0]


@pytest.mark.skipif(_modelopt.missing() is not None, reason=_modelopt.missing() or "")
@pytest.mark.parametrize("mode, high, zero_point", [("int8", "fp32", "INT8"), ("int8", "fp16", "INT8"),
                                                    ("fp8", "fp16", "FLOAT8E4M3FN"), ("fp8", "fp32", "FLOAT8E4M3FN")])
def test_modelopt_makes_a_qdq_model_that_agrees_with_fp32(tmp_path, mode, high, zero_point):
    onnx = pytest.importorskip("onnx")
    source_dir = tmp_path / "source"
    source_dir.mkdir()
    model = conv_classifier(source_dir / "model.onnx")
    out = tmp_path / "out"
    out.mkdir()
    params = {"quantize": mode, "calibration_method": "max", "high_precision_dtype": high, "exclude": "none"}
    _modelopt.quantize(model, params, images(64, 1), True, out)
    assert sorted(p.name for p in source_dir.iterdir()) == ["model.onnx"]  # nothing written beside the input
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx"]
    graph = onnx.load(str(out / "model.onnx")).graph
    ops = Counter(n.op_type for n in graph.node)
    assert ops["QuantizeLinear"] >= 1 and ops["DequantizeLinear"] >= 1
    types_of = {i.name: onnx.TensorProto.DataType.Name(i.data_type) for i in graph.initializer}
    quantizers = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    assert {types_of[n.input[2]] for n in quantizers} == {zero_point}  # the zero point's type is the quantized type
    assert {types_of[n.input[1]] for n in quantizers} == {SCALES[high]}  # scales in the high-precision type
    test = images(32, 7)
    got, ref = run(out / "model.onnx", test), run(model, test)
    assert got.dtype == np.float32 and got.shape == (32, 10)  # fp32 in and out, whatever runs inside
    assert not np.array_equal(got, ref)  # quantized for real
    result = validate(LOGITS, [got], [ref], *TOLERANCES[mode], AGREEMENT[mode])
    assert result.ok, result.reason

