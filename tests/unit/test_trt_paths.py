"""The TensorRT paths (ort_tensorrt, tensorrt, torch_tensorrt) on a machine without TensorRT or a GPU:
gating and its reasons, search spaces, Triton configs, and the pieces that need no GPU."""

from __future__ import annotations

import ctypes
import inspect
import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from typer.testing import CliRunner

from navigator import paths
from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.paths import _probe, _trt, ort_tensorrt, tensorrt, torch_tensorrt
from navigator.paths.base import Target, TritonTarget
from navigator.records import Artifact, IOSpec, TensorSpec
from navigator.search import space as space_mod
from navigator.source import ModelSource
from navigator.source.iospec import DYNAMIC_AXIS_SIZE
from navigator.triton import config as triton_config

optuna.logging.set_verbosity(optuna.logging.ERROR)

NAMES = ("ort_tensorrt", "tensorrt", "torch_tensorrt")
MODULES = {"ort_tensorrt": ort_tensorrt, "tensorrt": tensorrt, "torch_tensorrt": torch_tensorrt}
GIB = 1073741824
IO = IOSpec(inputs=(TensorSpec("x", "float32", (None, 3, None)), TensorSpec("ids", "int64", (None, 16))),
            outputs=(TensorSpec("output__0", "float32", (None, 10)),))
pb = triton_config._pb()


def source(batch: int = 8, io: IOSpec = IO) -> ModelSource:
    samples = {"x": np.zeros((batch, 3, DYNAMIC_AXIS_SIZE), np.float32), "ids": np.zeros((batch, 16), np.int64)}
    return ModelSource("torch", "module", "demo", None, None, io, "fingerprint", samples)


def artifact(tmp_path: Path, path: str, file: str, profile: dict[str, str] | None = None) -> Artifact:
    (tmp_path / file).write_bytes(b"not really a model")
    if profile is not None:
        (tmp_path / ort_tensorrt.PROFILE).write_text(json.dumps(profile))
    return Artifact(path, tmp_path, "key", {}, tmp_path / file)


def round_trip(model, io: IOSpec = IO):
    config = triton_config.build("demo", io, model, 8)
    parsed = triton_config.from_text(triton_config.to_text(config))
    assert parsed == config
    return parsed


# (1) unavailable here, with a reason, quickly; listed so by the registry and the CLI


@pytest.mark.parametrize("name", NAMES)
def test_unavailable_here_with_a_reason(name):
    start = time.perf_counter()
    reason = MODULES[name].available()
    assert time.perf_counter() - start < 2.0
    assert isinstance(reason, str) and reason.strip()
    for framework in MODULES[name].FRAMEWORKS:
        (candidate,) = paths.candidates(framework, "cuda", (name,))
        assert candidate.reason == reason
    assert MODULES[name].DEVICES == ("cuda",) and MODULES[name].TIMEOUT_S == 1800.0


def test_registry_and_cli_list_them_as_unavailable():
    listed = {c.name: c.reason for c in paths.candidates("torch", "cuda")}
    for name in NAMES:
        assert listed[name] == MODULES[name].available()
    assert {c.name for c in paths.candidates("onnx", "cuda")} >= {"ort_tensorrt", "tensorrt"}
    assert next(c for c in paths.candidates("onnx", "cuda") if c.name == "torch_tensorrt").reason == \
        "does not take onnx models"
    from navigator.cli import app

    result = CliRunner().invoke(app, ["paths", "--verbose"])
    assert result.exit_code == 0, result.output
    for name in NAMES:
        line = next(ln for ln in result.output.splitlines() if ln.split()[:3] == ["cuda", "torch", name])
        assert f"unavailable: {MODULES[name].available()}" in line


# (2) search spaces load and sample


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", [("torch", "module"), ("torch", "exported"), ("onnx", "onnx")])
def test_space_loads_and_suggests(name, kind):
    space = paths.space(name)
    assert space.path == name
    assert {p.stage for p in space.params} <= {"convert", "runtime"}
    for seed in range(8):
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()
        convert, runtime = space_mod.suggest(trial, space, kind)
        for key, value in {**convert, **runtime}.items():
            spec = next(p for p in space.params if p.name == key)
            assert value in spec.choices if spec.choices else spec.low <= value <= spec.high
    defaults = space_mod.defaults(space, kind, {})
    assert all(k.startswith(f"{name}.") for k in defaults)


def test_space_defaults_are_the_sensible_ones():
    torch_module = ("torch", "module")
    assert space_mod.defaults(paths.space("tensorrt"), torch_module, {}) == {
        "tensorrt.exporter": "dynamo", "tensorrt.opset": 18, "tensorrt.quantize": "none", "tensorrt.precision": "fp16",
        "tensorrt.workspace": 4 * GIB, "tensorrt.builder_optimization_level": 3, "tensorrt.cuda_graphs": False}
    assert space_mod.defaults(paths.space("ort_tensorrt"), ("onnx", "onnx"), {}) == {
        "ort_tensorrt.quantize": "none", "ort_tensorrt.trt_fp16_enable": True, "ort_tensorrt.trt_max_workspace_size": 4 * GIB,
        "ort_tensorrt.trt_builder_optimization_level": 3, "ort_tensorrt.trt_cuda_graph_enable": False}
    assert space_mod.defaults(paths.space("torch_tensorrt"), torch_module, {}) == {
        "torch_tensorrt.precision": "fp16", "torch_tensorrt.cast": "weights", "torch_tensorrt.use_fp32_acc": True,
        "torch_tensorrt.optimization_level": 3, "torch_tensorrt.workspace_size": 4 * GIB}
    fp32 = space_mod.defaults(paths.space("torch_tensorrt"), torch_module, {"precision": "fp32"})
    assert "torch_tensorrt.cast" not in fp32 and "torch_tensorrt.use_fp32_acc" not in fp32


# (3) Triton configs


def test_triton_ort_tensorrt_accelerator(tmp_path):
    profile = {"min": "x:1x3x16", "opt": "x:8x3x16", "max": "x:8x3x16"}
    params = {"trt_fp16_enable": True, "trt_max_workspace_size": GIB, "trt_builder_optimization_level": 3,
              "trt_cuda_graph_enable": False}
    model = ort_tensorrt.triton(artifact(tmp_path, "ort_tensorrt", "model.onnx", profile), params, TritonTarget())
    assert model.files == {"model.onnx": tmp_path / "model.onnx"}
    parsed = round_trip(model)
    assert parsed.backend == "onnxruntime" and not parsed.platform
    assert [g.kind for g in parsed.instance_group] == [pb.ModelInstanceGroup.KIND_GPU]
    (accelerator,) = parsed.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert dict(accelerator.parameters) == {
        "precision_mode": "FP16", "max_workspace_size_bytes": "1073741824", "trt_builder_optimization_level": "3",
        "trt_engine_cache_enable": "true", "trt_engine_cache_path": "/tmp/navigator_trt_cache",
        "trt_timing_cache_enable": "true", "trt_timing_cache_path": "/tmp/navigator_trt_cache",
        "trt_profile_min_shapes": "x:1x3x16", "trt_profile_opt_shapes": "x:8x3x16",
        "trt_profile_max_shapes": "x:8x3x16"}
    assert not parsed.optimization.execution_accelerators.cpu_execution_accelerator
    assert not parsed.optimization.cuda.graphs


def test_triton_ort_tensorrt_fp32_without_profile_and_cuda_graphs_refused(tmp_path):
    model = ort_tensorrt.triton(artifact(tmp_path, "ort_tensorrt", "model.onnx"),
                                {"trt_fp16_enable": False, "trt_max_workspace_size": 4 * GIB}, TritonTarget())
    params = dict(round_trip(model).optimization.execution_accelerators.gpu_execution_accelerator[0].parameters)
    assert params["precision_mode"] == "FP32" and params["max_workspace_size_bytes"] == "4294967296"
    assert not any(k.startswith("trt_profile") for k in params)
    with pytest.raises(TrialError, match="trt_cuda_graph_enable"):
        ort_tensorrt.triton(artifact(tmp_path, "ort_tensorrt", "model.onnx"), {"trt_cuda_graph_enable": True},
                            TritonTarget())


@pytest.mark.parametrize("graphs", [True, False])
def test_triton_tensorrt_plan(tmp_path, graphs):
    model = tensorrt.triton(artifact(tmp_path, "tensorrt", "model.plan"),
                            {"precision": "fp16", "workspace": GIB, "builder_optimization_level": 3,
                             "cuda_graphs": graphs}, TritonTarget())
    assert model.files == {"model.plan": tmp_path / "model.plan"}
    parsed = round_trip(model)
    assert parsed.platform == "tensorrt_plan" and not parsed.backend
    assert [g.kind for g in parsed.instance_group] == [pb.ModelInstanceGroup.KIND_GPU]
    assert parsed.optimization.cuda.graphs is graphs
    assert parsed.max_batch_size == 8 and [list(i.dims) for i in parsed.input] == [[3, -1], [16]]


def test_triton_torch_tensorrt(tmp_path):
    model = torch_tensorrt.triton(artifact(tmp_path, "torch_tensorrt", "model.pt"), {"precision": "fp16"},
                                  TritonTarget())
    assert model.files == {"model.pt": tmp_path / "model.pt"}
    parsed = round_trip(model)
    assert parsed.platform == "pytorch_libtorch"
    assert [g.kind for g in parsed.instance_group] == [pb.ModelInstanceGroup.KIND_GPU]
    assert parsed.parameters["INFERENCE_MODE"].string_value == "true"
    assert not parsed.optimization.cuda.graphs


def test_precision_hooks():
    assert ort_tensorrt.precision({"trt_fp16_enable": True}) == "fp16"
    assert ort_tensorrt.precision({"trt_fp16_enable": False}) == "tf32"  # TensorRT's default for fp32 layers
    assert tensorrt.precision({"precision": "bf16"}) == "bf16"
    assert torch_tensorrt.precision({"precision": "fp32"}) == "fp32"


# (4) the gating logic


@pytest.fixture
def trt_provider(monkeypatch):
    monkeypatch.setattr(_probe, "ort_providers", lambda: {"TensorrtExecutionProvider", "CUDAExecutionProvider"})


def test_ort_provider_listed_but_library_missing(monkeypatch, trt_provider):
    def no_library(name, *args, **kwargs):
        raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    reason = ort_tensorrt.available()
    assert reason is not None and "libnvinfer" in reason and "libnvinfer.so.10" in reason
    with pytest.raises(TrialError, match="libnvinfer"):
        ort_tensorrt.load(Artifact("ort_tensorrt", Path("."), "k", {}, Path("model.onnx")), source(), {})


def test_ort_library_loads_but_no_gpu(monkeypatch, trt_provider):
    loaded = []
    monkeypatch.setattr(ctypes, "CDLL", lambda name, *a, **k: loaded.append(name))
    monkeypatch.setattr(_probe, "cuda_gpus", lambda: 0)
    reason = ort_tensorrt.available()
    assert reason is not None and "GPU" in reason
    assert loaded == ["libnvinfer.so.10"]
    monkeypatch.setattr(_probe, "cuda_gpus", lambda: 1)
    assert ort_tensorrt.available() is None


def test_ort_without_the_provider(monkeypatch):
    monkeypatch.setattr(_probe, "ort_providers", lambda: set())
    assert "TensorRT execution provider" in ort_tensorrt.available()


@pytest.mark.parametrize("module,package", [(tensorrt, "tensorrt"), (torch_tensorrt, "torch_tensorrt")])
def test_found_and_importable_but_no_gpu(monkeypatch, module, package):
    real = module.installed
    monkeypatch.setattr(module, "installed", lambda name: name == package or real(name))
    monkeypatch.setitem(sys.modules, package, types.ModuleType(package))
    monkeypatch.setattr(_probe, "torch_has_cuda", lambda: True)
    monkeypatch.setattr(_probe, "cuda_gpus", lambda: 0)
    reason = module.available()
    assert reason is not None and "GPU" in reason
    monkeypatch.setattr(_probe, "cuda_gpus", lambda: 1)
    assert module.available() is None


@pytest.mark.parametrize("module,package", [(tensorrt, "tensorrt"), (torch_tensorrt, "torch_tensorrt")])
def test_found_but_not_importable(monkeypatch, module, package):
    real = module.installed
    monkeypatch.setattr(module, "installed", lambda name: name == package or real(name))
    monkeypatch.setitem(sys.modules, package, None)  # import raises ImportError
    reason = module.available()
    assert reason is not None and "does not import" in reason


def test_narrow_keeps_the_space_when_unavailable():
    cast = next(p for p in space_mod.load("torch_tensorrt").params if p.name == "cast")
    assert torch_tensorrt.narrow(cast) == cast
    assert next(p for p in paths.space("torch_tensorrt").params if p.name == "cast").choices == ("weights", "autocast")


# The pieces that need no GPU


def test_profile_spans_the_batch_axis():
    shapes = _trt.profile(source(batch=8), Target.of(source(batch=8), "cuda"))
    assert shapes == {"x": ((1, 3, 16), (8, 3, 16), (8, 3, 16)), "ids": ((1, 16), (8, 16), (8, 16))}
    assert _trt.shapes_text(shapes, 0) == "x:1x3x16,ids:1x16"
    assert _trt.shapes_text(shapes, 2) == "x:8x3x16,ids:8x16"
    assert _trt.batches(Target("cuda", max_batch=32, opt_batch=2)) == (2, 32)
    wide = _trt.profile(source(batch=8), Target("cuda", max_batch=32, opt_batch=2))
    assert wide["ids"] == ((1, 16), (2, 16), (32, 16))
    fixed = IOSpec((TensorSpec("x", "float32", (2, None)),), (TensorSpec("y", "float32", (2,)),))
    one = ModelSource("onnx", "onnx", "d", None, None, fixed, "f", {"x": np.zeros((2, 5), np.float32)})
    assert _trt.profile(one, Target.of(one, "cuda")) == {"x": ((2, 5), (2, 5), (2, 5))}


class FakeConfig:
    def __init__(self) -> None:
        self.flags = {"TF32"}  # TensorRT's default
        self.pools: dict[str, int] = {}
        self.profiles: list[FakeProfile] = []
        self.builder_optimization_level = 3
        self.profiling_verbosity = "LAYER_NAMES_ONLY"  # TensorRT's default

    def set_memory_pool_limit(self, pool, size):
        self.pools[pool] = size

    def set_flag(self, flag):
        self.flags.add(flag)

    def clear_flag(self, flag):
        self.flags.discard(flag)

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)


class FakeProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, name, low, opt, high):
        self.shapes[name] = (low, opt, high)


class FakeBuilder:
    create_builder_config = FakeConfig
    create_optimization_profile = FakeProfile


class FakeNetwork:
    def __init__(self, *inputs) -> None:
        self.inputs = [types.SimpleNamespace(name=n, shape=s) for n, s in inputs]
        self.num_inputs = len(self.inputs)

    def get_input(self, i):
        return self.inputs[i]


def fake_trt(version: str):
    """TensorRT's enums as names: 10 has the precision flags, 11 removed them (its 10.x-to-11.x migration
    guide), 8 has no strongly typed networks."""
    flags = {"TF32": "TF32", "FP16": "FP16", "BF16": "BF16"} if version[:2] in ("8.", "10") else {"TF32": "TF32"}
    network = {} if version.startswith("8.") else {"STRONGLY_TYPED": 5}
    return types.SimpleNamespace(__version__=version, MemoryPoolType=types.SimpleNamespace(WORKSPACE="workspace"),
                                 BuilderFlag=types.SimpleNamespace(**flags),
                                 NetworkDefinitionCreationFlag=types.SimpleNamespace(**network),
                                 ProfilingVerbosity=types.SimpleNamespace(DETAILED="DETAILED",
                                                                          LAYER_NAMES_ONLY="LAYER_NAMES_ONLY"),
                                 LayerInformationFormat=types.SimpleNamespace(JSON="JSON"))


@pytest.mark.parametrize("version,precision,flags", [
    ("10.3.0", "fp16", {"TF32", "FP16"}), ("10.3.0", "bf16", {"TF32", "BF16"}), ("10.3.0", "tf32", {"TF32"}),
    ("10.3.0", "fp32", set()), ("11.1.0", "fp16", {"TF32"}), ("11.1.0", "fp32", set()),
])
def test_builder_config_precision_by_tensorrt_version(version, precision, flags):
    params = {"precision": precision, "workspace": GIB, "builder_optimization_level": 5}
    shapes = _trt.profile(source(batch=4), Target.of(source(batch=4), "cuda"))
    network = FakeNetwork(("x", (-1, 3, 16)), ("ids", (-1, 16)))
    config = tensorrt._configure(fake_trt(version), FakeBuilder(), network, params, shapes)
    assert config.flags == flags
    assert config.pools == {"workspace": GIB} and config.builder_optimization_level == 5
    assert config.profiling_verbosity == "DETAILED"  # layer precisions for the engine inspector
    (profile,) = config.profiles
    assert profile.shapes == {"x": ((1, 3, 16), (4, 3, 16), (4, 3, 16)), "ids": ((1, 16), (4, 16), (4, 16))}
    static = tensorrt._configure(fake_trt(version), FakeBuilder(), FakeNetwork(("x", (4, 3, 16))), params, shapes)
    assert static.profiles == []


class FakeEngine:
    def __init__(self, verbosity: str, info: str) -> None:
        self.profiling_verbosity, self.info = verbosity, info

    def create_engine_inspector(self):
        return types.SimpleNamespace(get_engine_information=lambda fmt: self.info if fmt == "JSON" else "")


def test_an_engine_reports_its_layer_precisions_only_when_built_detailed(monkeypatch):
    monkeypatch.setattr(_trt, "require", lambda name: fake_trt("10.3.0"))
    layers = [{"Name": "c", "LayerType": "CaskConvolution", "Inputs": [{"Format/Datatype": "Half"}]},
              {"Name": "g", "LayerType": "gemm", "Inputs": [{"Format/Datatype": "Float"}]}]
    detailed = FakeEngine("DETAILED", json.dumps({"Layers": layers}))
    assert _trt.engine_layers(detailed) == "fp16 1/2, fp32 1/2 TensorRT compute layers"
    runner = tensorrt.TensorRTRunner.__new__(tensorrt.TensorRTRunner)  # no GPU: the engine alone
    runner.engine = detailed
    assert runner.precision_run() == "fp16 1/2, fp32 1/2 TensorRT compute layers"
    assert _trt.engine_layers(FakeEngine("LAYER_NAMES_ONLY", json.dumps({"Layers": ["c", "g"]}))) is None


def test_tensorrt_11_low_precision_needs_a_converter(monkeypatch, tmp_path):
    real = tensorrt.installed
    monkeypatch.setattr(tensorrt, "installed", lambda name: False if name in ("modelopt", "onnxconverter_common")
                        else real(name))
    with pytest.raises(TrialError, match="bf16.*nvidia-modelopt"):
        tensorrt._typed_onnx(tmp_path / "model.onnx", "bf16", tmp_path)


def test_ort_provider_options_and_engine_dirs(tmp_path):
    art = Artifact("ort_tensorrt", tmp_path, "k", {}, tmp_path / "model.onnx")
    base = {"trt_fp16_enable": True, "trt_max_workspace_size": GIB, "trt_builder_optimization_level": 3}
    engines = ort_tensorrt.engine_dir(art, {**base, "trt_cuda_graph_enable": False})
    assert engines == ort_tensorrt.engine_dir(art, {**base, "trt_cuda_graph_enable": True})  # same engine
    assert engines != ort_tensorrt.engine_dir(art, {**base, "trt_fp16_enable": False})
    assert engines != ort_tensorrt.engine_dir(art, {**base, "trt_builder_optimization_level": 5})
    assert engines.is_relative_to(tmp_path)
    options = ort_tensorrt.provider_options(base, engines, {"min": "x:1x3", "opt": "x:8x3", "max": "x:8x3"})
    assert options["trt_fp16_enable"] is True and options["trt_max_workspace_size"] == GIB
    assert options["trt_builder_optimization_level"] == 3 and options["trt_engine_cache_enable"] is True
    assert options["trt_engine_cache_path"] == str(engines)
    assert options["trt_timing_cache_enable"] is True and options["trt_timing_cache_path"] == str(engines.parent)
    assert options["trt_profile_opt_shapes"] == "x:8x3" and options["trt_cuda_graph_enable"] is False


def test_ort_convert_keeps_the_profile_of_dynamic_inputs(tmp_path):
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 3])])
    file = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph), str(file))
    io = IOSpec((TensorSpec("x", "float32", (None, 3)),), (TensorSpec("y", "float32", (None, 3)),))
    src = ModelSource("onnx", "onnx", "m", file, None, io, "f", {"x": np.zeros((4, 3), np.float32)})
    cache = Cache(tmp_path / "cache", "f")
    art = ort_tensorrt.convert(src, {}, cache, Target.of(src, "cuda"))
    assert art.file == file and art.dir.parent == cache.root
    assert json.loads((art.dir / ort_tensorrt.PROFILE).read_text()) == {"min": "x:1x3", "opt": "x:4x3", "max": "x:4x3"}
    assert ort_tensorrt.convert(src, {}, cache, Target.of(src, "cuda")).dir == art.dir and cache.hits == 1


def test_torch_tensorrt_options_follow_the_installed_version(tmp_path):
    timing = tmp_path / "timing.bin"
    new = {"optimization_level", "workspace_size", "timing_cache_path", "disable_tf32", "use_explicit_typing",
           "use_fp32_acc", "enable_autocast", "autocast_low_precision_type"}
    params = {"precision": "fp16", "cast": "weights", "use_fp32_acc": True, "optimization_level": 3,
              "workspace_size": GIB}
    kwargs, cast = torch_tensorrt.options(params, new, timing)
    assert cast == "float16" and kwargs == {"optimization_level": 3, "workspace_size": GIB,
                                            "timing_cache_path": str(timing), "use_explicit_typing": True,
                                            "use_fp32_acc": True}
    kwargs, cast = torch_tensorrt.options({**params, "precision": "bf16", "cast": "autocast"}, new, timing)
    assert cast is None and kwargs["enable_autocast"] is True
    assert kwargs["autocast_low_precision_type"] is torch.bfloat16 and "use_fp32_acc" not in kwargs
    with pytest.raises(TrialError, match="Autocast"):
        torch_tensorrt.options({**params, "cast": "autocast"}, new - {"enable_autocast"}, timing)
    old = {"optimization_level", "workspace_size", "disable_tf32"}
    kwargs, cast = torch_tensorrt.options(params, old, timing)
    assert cast == "float16" and kwargs["enabled_precisions"] == {torch.float16} and "timing_cache_path" not in kwargs
    kwargs, cast = torch_tensorrt.options({**params, "precision": "fp32"}, new, timing)
    assert cast is None and kwargs["disable_tf32"] is True
    kwargs, _ = torch_tensorrt.options({**params, "precision": "tf32"}, new, timing)
    assert "disable_tf32" not in kwargs


class TwoInputs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)

    def forward(self, x, ids):
        return self.linear(x) + ids.float().mean(), x.sum(dim=1)


def test_served_wrapper_keeps_names_and_source_types():
    io = IOSpec((TensorSpec("x", "float32", (None, 3)), TensorSpec("ids", "int64", (None, 4))),
                (TensorSpec("output__0", "float32", (None, 2)), TensorSpec("output__1", "float32", (None,))))
    src = ModelSource("torch", "module", "m", None, None, io, "f",
                      {"x": np.ones((2, 3), np.float32), "ids": np.ones((2, 4), np.int64)})
    served = torch_tensorrt._served(src, TwoInputs().eval(), "bfloat16")
    assert list(inspect.signature(served.forward).parameters) == ["x", "ids"]
    assert served.inner.linear.weight.dtype == torch.bfloat16
    args = (torch.ones(2, 3), torch.ones(2, 4, dtype=torch.int64))
    out = served(*args)
    assert [t.dtype for t in out] == [torch.float32, torch.float32] and out[0].shape == (2, 2)
    program = torch.export.export(served, args)
    names = [s.arg.name for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    assert names == ["x", "ids"]  # what Triton's PyTorch backend matches the config's inputs against


def test_torchscript_sources_are_refused(tmp_path):
    src = source()
    src.kind = "torchscript"
    with pytest.raises(TrialError, match="TorchScript"):
        torch_tensorrt._compile(src, {"precision": "fp32"}, Target.of(src, "cuda"), tmp_path / "timing.bin", tmp_path)
