"""The CUDA paths (torch_cuda, torch_compile, ort_cuda) on a machine without a GPU: they are gated with
a reason, their spaces load, and their Triton configs map the tuned settings to the backends' keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from navigator import paths
from navigator.paths import ort_cuda, torch_compile, torch_cuda
from navigator.paths.base import TritonTarget
from navigator.records import Artifact, IOSpec, TensorSpec
from navigator.triton import config as triton_config
from navigator.triton import python_backend

IO = IOSpec((TensorSpec("image", "float32", (None, 3, 8, 8)),), (TensorSpec("output__0", "float32", (None, 4)),))


def _build(model) -> object:  # noqa: ANN001
    config = triton_config.build("m", IO, model, 16)
    assert triton_config.from_text(triton_config.to_text(config)) == config
    return config


@pytest.mark.parametrize("name", ["torch_cuda", "torch_compile", "ort_cuda"])
def test_gated_here_with_a_reason(name: str) -> None:
    [candidate] = paths.candidates("torch", "cuda", (name,))
    assert candidate.reason and ("GPU" in candidate.reason or "CUDA" in candidate.reason)
    [on_cpu] = paths.candidates("torch", "cpu", (name,))
    assert on_cpu.reason == "runs on cuda, not cpu"


def test_ort_cuda_config_maps_provider_options(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    params = {"precision": "fp32", "graph_optimization_level": "extended", "cudnn_conv_algo_search": "HEURISTIC",
              "use_tf32": False, "arena_extend_strategy": "kSameAsRequested", "do_copy_in_default_stream": True,
              "prefer_nhwc": True, "gpu_mem_limit_gib": 4}
    config = _build(ort_cuda.triton(Artifact("ort_cuda", tmp_path, "k", params, model), params, TritonTarget()))
    assert config.backend == "onnxruntime" and config.optimization.graph.level == 1
    assert config.instance_group[0].kind == config.instance_group[0].KIND_GPU
    [cuda] = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert cuda.name == "cuda" and dict(cuda.parameters) == {
        "cudnn_conv_algo_search": "HEURISTIC", "use_tf32": "0", "arena_extend_strategy": "kSameAsRequested",
        "do_copy_in_default_stream": "1", "prefer_nhwc": "1", "gpu_mem_limit": "4294967296"}
    # the model-level keys the seed and older servers read, numbers per onnxruntime_backend's README
    legacy = {k: v.string_value for k, v in config.parameters.items()}
    assert legacy == {"cudnn_conv_algo_search": "1", "arena_extend_strategy": "1", "do_copy_in_default_stream": "1",
                      "gpu_mem_limit": "4294967296"}
    assert ort_cuda.precision(params) == "fp32" and ort_cuda.precision({"precision": "fp16"}) == "fp16"


@pytest.mark.parametrize(("search", "number"), [("EXHAUSTIVE", "0"), ("HEURISTIC", "1"), ("DEFAULT", "2")])
def test_ort_cuda_algo_search_mapping(search: str, number: str, tmp_path: Path) -> None:
    params = {"cudnn_conv_algo_search": search}
    model = ort_cuda.triton(Artifact("ort_cuda", tmp_path, "k", params, tmp_path / "model.onnx"), params,
                            TritonTarget())
    assert model.parameters["cudnn_conv_algo_search"] == number
    assert model.gpu_accelerators["cuda"]["cudnn_conv_algo_search"] == search


@pytest.mark.parametrize("module", [torch_cuda, torch_compile])
def test_torch_gpu_paths_serve_through_the_python_backend(module, tmp_path: Path) -> None:  # noqa: ANN001
    saved = tmp_path / "model.pt2"
    saved.write_bytes(b"pt2")
    params = {"precision": "fp16", "cast": "autocast", "channels_last": True, "mode": "max-autotune"}
    model = module.triton(Artifact(module.NAME, tmp_path, "k", {}, saved), params, TritonTarget())
    config = _build(model)
    values = {k: v.string_value for k, v in config.parameters.items()}
    assert config.backend == "python" and config.instance_group[0].kind == config.instance_group[0].KIND_GPU
    assert values == {"RUNTIME": "torch", "MODEL_FILE": "model.pt2"}
    assert python_backend.read_spec(model.files["twin.json"]) == {"runtime": "torch", "device": "cuda",
                                                                  "params": params, "unpickle": False}


def test_fp32_on_cuda_is_validated_as_tf32() -> None:
    # PyTorch's default runs cuDNN convolutions in TF32: the fp32 trial gets TF32's tolerance
    assert torch_cuda.precision({"precision": "fp32"}) == "tf32"
    assert torch_cuda.precision({"precision": "bf16"}) == "bf16"


def test_ort_cuda_graphs_deploy_as_the_python_twin(tmp_path: Path) -> None:
    params = {"precision": "fp32", "cudnn_conv_algo_search": "HEURISTIC", "use_tf32": False, "enable_cuda_graph": True}
    graphed = ort_cuda.triton(Artifact("ort_cuda", tmp_path, "k", params, tmp_path / "model.onnx"), params,
                              TritonTarget())
    assert graphed.backend == "python" and graphed.kind == "KIND_GPU" and "model.py" in graphed.files
    assert graphed.parameters == {"RUNTIME": "onnxruntime", "MODEL_FILE": "model.onnx"}
    assert python_backend.read_spec(graphed.files["twin.json"])["params"] == params  # use_tf32 False among them
    assert any("python backend" in w for w in graphed.warnings)
    plain = ort_cuda.triton(Artifact("ort_cuda", tmp_path, "k", params, tmp_path / "model.onnx"),
                            {**params, "enable_cuda_graph": False}, TritonTarget())
    assert plain.backend == "onnxruntime" and "enable_cuda_graph" not in plain.gpu_accelerators["cuda"]
    assert not plain.warnings


def _graphed_on_cpu(tmp_path: Path):  # noqa: ANN202
    """The CUDA-graph ORT runner on y = x * x, its buffers bound on the CPU."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from navigator.runtimes.ort import OrtCudaRunner

    graph = helper.make_graph([helper.make_node("Mul", ["x", "x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))

    class OnCpu(OrtCudaRunner):
        device = "cpu"

    return OnCpu(tmp_path / "m.onnx", {}, ["CPUExecutionProvider"], cuda_graph=True)


def test_ort_graph_binding_reuses_fixed_buffers_per_shape(tmp_path: Path) -> None:
    """The CUDA-graph runner's binding, on the CPU: the bound buffers stay, new inputs are copied in."""
    np = pytest.importorskip("numpy")
    runner = _graphed_on_cpu(tmp_path)
    a, b, c = (np.full((2, 3), v, np.float32) for v in (2.0, 3.0, 4.0))
    assert np.array_equal(runner({"x": a})[0], a * a)
    first = runner._graphs[next(iter(runner._graphs))][1]
    assert np.array_equal(runner({"x": b})[0], b * b) and runner._graphs[next(iter(runner._graphs))][1] is first
    assert np.array_equal(runner({"x": np.ones((5, 3), np.float32)})[0], np.ones((5, 3)))
    assert len(runner._graphs) == 2  # one graph per input signature
    call = runner.prepare({"x": c})
    call()
    assert np.array_equal(runner._graphs[next(iter(runner._graphs))][1][1].numpy(), c * c)


def test_cuda_paths_declare_their_expected_cost() -> None:
    """COST_S lets the search put torch.compile (max-autotune compiles for minutes) after the quick paths."""
    from navigator.paths import torch_tensorrt

    costs = {m.NAME: m.COST_S for m in (torch_cuda, torch_compile, ort_cuda, torch_tensorrt)}
    assert all(0 < c <= m for c, m in zip(costs.values(), (torch_cuda.TIMEOUT_S, torch_compile.TIMEOUT_S,
                                                            ort_cuda.TIMEOUT_S, torch_tensorrt.TIMEOUT_S)))
    assert costs["torch_compile"] > max(costs["torch_cuda"], costs["ort_cuda"])


def test_ort_graphs_stop_at_their_cap_and_still_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_GRAPHS input signatures (a dynamic batcher's shapes) a call runs uncaptured, right."""
    np = pytest.importorskip("numpy")
    from navigator.runtimes import ort as rt_ort

    monkeypatch.setattr(rt_ort, "MAX_GRAPHS", 1)
    runner = _graphed_on_cpu(tmp_path)
    for rows in (2, 3, 4, 2):
        x = np.full((rows, 3), float(rows), np.float32)
        assert np.array_equal(runner({"x": x})[0], x * x)
    assert len(runner._graphs) == 1
