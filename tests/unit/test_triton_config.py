"""navigator/triton/config.py with the Triton parts of the ort_cpu, openvino and torchscript paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from navigator.errors import InputError
from navigator.paths import _ort_triton, openvino, ort_cpu, torchscript
from navigator.paths.base import TritonTarget
from navigator.records import Artifact, IOSpec, TensorSpec, TritonModel
from navigator.triton import config as triton_config
from navigator.triton.config import build, from_text, to_text

BATCHED = IOSpec(
    inputs=(
        TensorSpec("x", "float32", (None, 3, None)),
        TensorSpec("ids", "int64", (None, 16)),
    ),
    outputs=(TensorSpec("output__0", "float32", (None, 10)),),
)
pb = triton_config._pb()


def artifact(tmp_path: Path, name: str, path: str) -> Artifact:
    file = tmp_path / name
    file.write_bytes(b"not really a model")
    return Artifact(path, tmp_path, "key", {}, file)


def ort_config(tmp_path, params, io=BATCHED, max_batch=8):
    model = ort_cpu.triton(artifact(tmp_path, "model.onnx", "ort_cpu"), params, TritonTarget())
    return model, build("demo", io, model, max_batch)


def test_batched_config_fields_and_round_trip(tmp_path):
    model, config = ort_config(tmp_path, {"graph_optimization_level": "basic", "intra_op_num_threads": 3})
    assert model.backend == "onnxruntime"
    assert model.files["model.onnx"] == tmp_path / "model.onnx" and set(model.files) == {"model.onnx", "twin.json"}
    text = to_text(config)
    parsed = from_text(text)
    assert parsed == config
    assert to_text(parsed) == text

    assert parsed.name == "demo"
    assert parsed.backend == "onnxruntime"
    assert parsed.max_batch_size == 8
    x, ids = parsed.input
    assert (x.name, list(x.dims), x.data_type) == ("x", [3, -1], pb.DataType.Value("TYPE_FP32"))
    assert (ids.name, list(ids.dims), ids.data_type) == ("ids", [16], pb.DataType.Value("TYPE_INT64"))
    (out,) = parsed.output
    assert (out.name, list(out.dims), out.data_type) == ("output__0", [10], pb.DataType.Value("TYPE_FP32"))
    assert "TYPE_FP32" in text and "TYPE_INT64" in text
    assert [g.kind for g in parsed.instance_group] == [pb.ModelInstanceGroup.KIND_CPU]
    assert parsed.parameters["intra_op_thread_count"].string_value == "3"


def test_the_twin_spec_is_never_written_beside_the_model(tmp_path):
    """An ONNX source run as it is: the artifact's directory is the user's, which export leaves as it was."""
    (tmp_path / "model.onnx").write_bytes(b"user's model")
    model, _ = ort_config(tmp_path, {"intra_op_num_threads": 3})
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    assert model.files["twin.json"].is_file() and model.files["twin.json"].parent != tmp_path
    assert ort_config(tmp_path, {"intra_op_num_threads": 2})[0].files["twin.json"] != model.files["twin.json"]


@pytest.mark.parametrize("planted", ["writable", "file", "link"])
def test_a_twin_directory_others_could_write_is_refused(tmp_path, monkeypatch, planted):
    """A spec found in the directory is trusted as written (its unpickle flag too): one that another user
    could have planted, or a link to elsewhere, is refused in one line."""
    import os
    import tempfile

    from navigator.triton import python_backend

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    where = tmp_path / f"navigator-twins-{os.getuid()}"
    if planted == "writable":
        where.mkdir()
        where.chmod(0o777)
    elif planted == "file":
        where.write_text("")
    else:
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        where.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InputError, match="not a directory of this user's only"):
        python_backend.spec_file("onnxruntime", "cpu", {})
    assert [p.name for p in tmp_path.glob("elsewhere/*")] == []


def test_unbatched_config_keeps_all_dims(tmp_path):
    io = IOSpec((TensorSpec("x", "float32", (2, 3)),), (TensorSpec("y", "float32", (2, None)),))
    _, config = ort_config(tmp_path, {}, io=io, max_batch=8)
    parsed = from_text(to_text(config))
    assert parsed.max_batch_size == 0
    assert list(parsed.input[0].dims) == [2, 3]
    assert list(parsed.output[0].dims) == [2, -1]


def test_one_value_per_row_gets_dims_1_and_empty_reshape(tmp_path):
    io = IOSpec((TensorSpec("x", "float32", (None,)),), (TensorSpec("y", "int64", (None,)),))
    _, config = ort_config(tmp_path, {}, io=io)
    parsed = from_text(to_text(config))
    for tensor in (parsed.input[0], parsed.output[0]):
        assert list(tensor.dims) == [1]
        assert tensor.HasField("reshape") and list(tensor.reshape.shape) == []
    # a tensor with dims has no reshape
    _, config = ort_config(tmp_path, {})
    assert not from_text(to_text(config)).input[0].HasField("reshape")


@pytest.mark.parametrize(
    ("dtype", "type_name"),
    [("bool", "TYPE_BOOL"), ("uint8", "TYPE_UINT8"), ("int32", "TYPE_INT32"), ("float16", "TYPE_FP16"),
     ("float64", "TYPE_FP64"), ("bfloat16", "TYPE_BF16")],
)
def test_data_types(tmp_path, dtype, type_name):
    io = IOSpec((TensorSpec("x", dtype, (None, 2)),), ())
    _, config = ort_config(tmp_path, {}, io=io)
    assert from_text(to_text(config)).input[0].data_type == pb.DataType.Value(type_name)


def test_unsupported_dtype_is_an_input_error(tmp_path):
    io = IOSpec((TensorSpec("z", "complex64", (None, 2)),), ())
    with pytest.raises(InputError, match="'z'"):
        ort_config(tmp_path, {}, io=io)


EXPECTED_LEVEL = {"all": None, "basic": -1, "extended": 1, "disable": 2}


@pytest.mark.parametrize("level", ["all", "basic", "extended", "disable"])
def test_graph_level_mapping_both_ways(tmp_path, level):
    model, config = ort_config(tmp_path, {"graph_optimization_level": level})
    parsed = from_text(to_text(config))
    emitted = parsed.optimization.graph.level if parsed.HasField("optimization") else None
    if EXPECTED_LEVEL[level] is None:
        assert emitted in (None, 0)  # absent/0 is ORT_ENABLE_ALL in the onnxruntime backend
        assert "level" not in to_text(config)
    else:
        assert emitted == EXPECTED_LEVEL[level]
    inverse = {v: k for k, v in _ort_triton.TRITON_GRAPH_LEVEL.items()}
    assert len(inverse) == len(_ort_triton.TRITON_GRAPH_LEVEL)  # the mapping is one-to-one
    assert inverse[emitted or 0] == level


def test_graph_level_absent_param_means_all(tmp_path):
    model, config = ort_config(tmp_path, {})
    assert model.graph_level is None
    assert not from_text(to_text(config)).HasField("optimization")


@pytest.mark.parametrize(("mode", "value"), [("parallel", "1"), ("sequential", "0")])
def test_ort_session_options_map_to_backend_parameters(tmp_path, mode, value):
    params = {"intra_op_num_threads": 4, "execution_mode": mode, "inter_op_num_threads": 2,
              "enable_mem_pattern": False, "enable_cpu_mem_arena": True}
    _, config = ort_config(tmp_path, params)
    got = {k: v.string_value for k, v in from_text(to_text(config)).parameters.items()}
    assert got == {"intra_op_thread_count": "4", "execution_mode": value, "inter_op_thread_count": "2",
                   "enable_mem_pattern": "0", "enable_mem_arena": "1"}


def test_ort_params_left_out_emit_nothing(tmp_path):
    model, _ = ort_config(tmp_path, {"graph_optimization_level": "all"})
    assert model.parameters == {}


OV_PARAMS = {"performance_hint": "THROUGHPUT", "num_streams": 2, "inference_num_threads": 4}


@pytest.mark.parametrize(("precision", "bf16"), [("bf16", True), ("f32", False), (None, False)])
def test_openvino_triton(tmp_path, precision, bf16):
    params = dict(OV_PARAMS) if precision is None else {**OV_PARAMS, "inference_precision": precision}
    xml = artifact(tmp_path, "model.xml", "openvino")
    model = openvino.triton(xml, params, TritonTarget())
    assert model.backend == "openvino"
    assert {k: v for k, v in model.files.items() if k != "twin.json"} == {"model.xml": tmp_path / "model.xml",
                                                                         "model.bin": tmp_path / "model.bin"}
    expected = {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": "2", "INFERENCE_NUM_THREADS": "4"}
    if bf16:
        expected["HINT_BF16"] = "YES"
    assert model.parameters == expected
    parsed = from_text(to_text(build("ov", BATCHED, model, 4)))
    assert parsed.backend == "openvino"
    assert {k: v.string_value for k, v in parsed.parameters.items()} == expected


def test_openvino_precision_sets_validation_tolerance():
    assert openvino.precision({"inference_precision": "bf16"}) == "bf16"
    assert openvino.precision({"inference_precision": "f32"}) == "fp32"
    assert openvino.precision({}) == "fp32"


def test_torchscript_triton(tmp_path):
    pt = artifact(tmp_path, "model.pt", "torchscript")
    model = torchscript.triton(pt, {"threads": 3, "freeze": True}, TritonTarget())
    assert model.platform == "pytorch_libtorch"
    assert model.files["model.pt"] == tmp_path / "model.pt" and set(model.files) == {"model.pt", "twin.json"}
    assert model.parameters["INTRA_OP_THREAD_COUNT"] == "3"
    parsed = from_text(to_text(build("ts", BATCHED, model, 16)))
    assert parsed.platform == "pytorch_libtorch"
    assert parsed.parameters["INTRA_OP_THREAD_COUNT"].string_value == "3"
    assert parsed.max_batch_size == 16


def test_build_cpu_accelerators_and_default_filename():
    model = TritonModel(backend="onnxruntime", default_model_filename="m.onnx",
                        cpu_accelerators={"openvino": {"precision": "FP32"}})
    parsed = from_text(to_text(build("acc", BATCHED, model, 1)))
    assert parsed.default_model_filename == "m.onnx"
    (acc,) = parsed.optimization.execution_accelerators.cpu_execution_accelerator
    assert acc.name == "openvino" and dict(acc.parameters) == {"precision": "FP32"}


def test_dynamic_batching_by_default_for_every_batched_backend(tmp_path):
    """onnxruntime, openvino, pytorch and python configs get dynamic_batching {} (no delay, no preferred
    sizes: Triton's batcher guide) where max_batch_size > 0, and none when opted out or unbatched."""
    from navigator.records import ServingConfig
    from navigator.triton import python_backend

    native = [ort_cpu.triton(artifact(tmp_path, "model.onnx", "ort_cpu"), {}, TritonTarget()),
              openvino.triton(artifact(tmp_path, "model.xml", "openvino"), dict(OV_PARAMS), TritonTarget()),
              torchscript.triton(artifact(tmp_path, "model.pt", "torchscript"), {"threads": 1, "freeze": True},
                                 TritonTarget())]
    for model in native + [python_backend.from_native(native[0])]:
        config = from_text(to_text(build("m", BATCHED, model, 8)))
        assert config.HasField("dynamic_batching"), model.backend
        assert config.dynamic_batching.max_queue_delay_microseconds == 0
        assert not config.dynamic_batching.preferred_batch_size
        assert "dynamic_batching {" in to_text(config)
        off = build("m", BATCHED, model, 8, ServingConfig(8, dynamic_batching=False))
        assert not off.HasField("dynamic_batching")
        unbatched = IOSpec((TensorSpec("x", "float32", (1, 3)),), (TensorSpec("y", "float32", (1, 2)),))
        assert not build("m", unbatched, model, 8).HasField("dynamic_batching")
