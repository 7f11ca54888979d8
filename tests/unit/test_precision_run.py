"""What a trial's runtime reports running (Runner.precision_run -> TrialOutcome.precision_run), read from the
loaded runtime and not from the params: the same params give another answer where the runtime does
something else (QDQ left unfused, fp16 weights cast back by a provider, a quantized model on an fp32 path),
and the field travels through report.json, report.md and report.html."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from navigator.records import TrialConfig, TrialOutcome
from navigator.runtimes import precision
from tests.unit.test_int8 import context, rows

LEVEL = {"intra_op_num_threads": 1}
OPENVINO = {"performance_hint": "LATENCY", "num_streams": 1, "inference_num_threads": 1}


def trial(tmp_path: Path, path: str, runtime: dict, model: Path | None = None, **convert: object) -> TrialOutcome:
    """One trial of `path` on the small classifier (or `model`), validated on real rows (INT8 calibrates on them)."""
    pytest.importorskip("onnxruntime")
    from navigator.trial.run import run_trial

    if not (tmp_path / "in.npz").exists():
        np.savez(tmp_path / "in.npz", **rows(64))
    ctx = context(tmp_path, input_data=tmp_path / "in.npz")
    if model is not None:
        from navigator.cache import Cache
        from navigator.source import load_source

        ctx.source = load_source(model, input_data=tmp_path / "in.npz")
        ctx.cache = Cache(tmp_path / "cache2", ctx.source.fingerprint)
    outcome = run_trial(ctx, TrialConfig(0, path, dict(convert), runtime, 8))
    assert outcome.status in ("ok", "unstable"), outcome.error
    return outcome


def counted(text: str, kind: str) -> int:
    """The count before the slash of `kind` in a summary ("int8 2/2 MatMul" -> 2), 0 where absent."""
    found = re.search(rf"(?:^|, ){re.escape(kind)} (\d+)/\d+", text)
    return int(found.group(1)) if found else 0


# ONNX Runtime -----------------------------------------------------------------------------------------

def test_ort_cpu_reports_fp32_operations_of_the_graph_it_optimised(tmp_path):
    fused = trial(tmp_path, "ort_cpu", {**LEVEL, "graph_optimization_level": "all"})
    plain = trial(tmp_path, "ort_cpu", {**LEVEL, "graph_optimization_level": "disable"})
    assert fused.precision_run == "fp32 2/2 Gemm"  # MatMul+Add fused by ORT: the optimised graph, not the file
    assert plain.precision_run == "fp32 2/2 MatMul"


def test_ort_int8_static_quantization_reports_int8_kernels_unless_the_qdq_pairs_stay_unfused(tmp_path):
    fused = trial(tmp_path, "ort_int8", {**LEVEL, "graph_optimization_level": "all"}, mode="static")
    # quant_pre_process fused MatMul+Add into Gemm before quantizing: QGemm kernels here
    assert counted(fused.precision_run, "int8") > 0 and fused.precision_run == "int8 2/2 Gemm; IO fp32"
    # The same INT8 artifact with graph optimisations off: ORT dequantizes the weights and multiplies in fp32.
    unfused = trial(tmp_path, "ort_int8", {**LEVEL, "graph_optimization_level": "disable"}, mode="static")
    assert counted(unfused.precision_run, "int8") == 0
    assert unfused.precision_run == "fp32 2/2 Gemm (2 on dequantized int8 weights: QDQ not fused)"


def test_ort_int8_dynamic_quantization_reports_integer_matmuls(tmp_path):
    dynamic = trial(tmp_path, "ort_int8", {**LEVEL, "graph_optimization_level": "all"}, mode="dynamic")
    assert counted(dynamic.precision_run, "int8") == 2, dynamic.precision_run


def quantized(tmp_path: Path) -> Path:
    """The classifier quantized by the ort_int8 path (static, QDQ), as a model file of its own."""
    pytest.importorskip("onnxruntime")
    from navigator import paths

    np.savez(tmp_path / "in.npz", **rows(64))
    ctx = context(tmp_path, input_data=tmp_path / "in.npz")
    artifact = paths.get("ort_int8").convert(ctx.source, {"mode": "static"}, ctx.cache, ctx.target)
    assert artifact.file is not None
    target = tmp_path / "q" / "model.onnx"
    target.parent.mkdir()
    target.write_bytes(artifact.file.read_bytes())
    return target


def test_an_int8_model_on_an_fp32_path_reports_int8(tmp_path):
    from navigator import paths

    outcome = trial(tmp_path, "ort_cpu", {**LEVEL, "graph_optimization_level": "all"}, quantized(tmp_path))
    assert paths.get("ort_cpu").precision({}) == "fp32"  # what the params ask for
    assert outcome.precision_run == "int8 2/2 Gemm; IO fp32"  # what ran


def test_a_model_over_the_size_limit_is_read_as_given_and_says_so(tmp_path, monkeypatch):
    from navigator.runtimes import ort as rt_ort

    monkeypatch.setattr(rt_ort, "OPTIMIZED_MAX_BYTES", 0)
    runner = rt_ort.open_session(quantized(tmp_path), {"graph_optimization_level": "disable"}, "cpu")
    assert runner.precision_run() == "QDQ int8 2/2 Gemm; IO fp32 (the model as given: over 0 MiB, not opened twice)"


def test_fp16_weights_run_in_fp32_on_the_cpu_provider(tmp_path):
    """The file computes in fp16; ONNX Runtime's CPU provider has no fp16 MatMul here and casts the weights."""
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from navigator.runtimes.ort import open_session

    weights = numpy_helper.from_array(np.random.default_rng(0).random((16, 8)).astype(np.float16), "w")
    nodes = [helper.make_node("Cast", ["x"], ["xh"], to=TensorProto.FLOAT16), helper.make_node("MatMul", ["xh", "w"], ["yh"]),
             helper.make_node("Cast", ["yh"], ["y"], to=TensorProto.FLOAT)]
    graph = helper.make_graph(nodes, "half", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "half.onnx"))
    assert precision.onnx_graph(model.graph) == "fp16 1/1 MatMul; IO fp32"  # the file as given
    runner = open_session(tmp_path / "half.onnx", {"graph_optimization_level": "disable"}, "cpu")
    assert runner.precision_run() == "fp32 1/1 MatMul"  # what the session runs


def test_tree_ensembles_are_read_by_their_threshold_type():
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    def forest(**thresholds: object):
        node = helper.make_node("TreeEnsembleRegressor", ["x"], ["y"], domain="ai.onnx.ml", n_targets=1,
                                nodes_treeids=[0], nodes_nodeids=[0], nodes_featureids=[0], nodes_modes=["LEAF"],
                                nodes_truenodeids=[0], nodes_falsenodeids=[0], target_treeids=[0], target_nodeids=[0],
                                target_ids=[0], target_weights=[1.0], **thresholds)
        return helper.make_graph([node], "f", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
                                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])])

    assert precision.onnx_graph(forest(nodes_values=[0.5])) == "fp32 1/1 tree ensemble thresholds"
    double = numpy_helper.from_array(np.array([0.5]), "nodes_values_as_tensor")
    assert precision.onnx_graph(forest(nodes_values_as_tensor=double)) == "fp64 1/1 tree ensemble thresholds"


# OpenVINO ---------------------------------------------------------------------------------------------

def test_openvino_reports_the_precision_its_cpu_plugin_chose(tmp_path):
    ov = pytest.importorskip("openvino")
    f32 = trial(tmp_path, "openvino", {**OPENVINO, "inference_precision": "f32"})
    assert f32.precision_run == "fp32 2/2 FullyConnected"
    # The quantized model on the fp32 request: the plugin runs its FakeQuantize'd layers in int8.
    int8 = trial(tmp_path, "openvino", {**OPENVINO, "inference_precision": "f32"}, quantized(tmp_path))
    assert int8.precision_run == "int8 2/2 FullyConnected"
    if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("this CPU has no bf16: OpenVINO would run the bf16 hint in fp32")
    bf16 = trial(tmp_path, "openvino", {**OPENVINO, "inference_precision": "bf16"})
    assert bf16.precision_run == "bf16 2/2 FullyConnected"


def test_openvino_int8_reports_int8_layers(tmp_path):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    outcome = trial(tmp_path, "openvino_int8", OPENVINO, subset_size=32)
    assert counted(outcome.precision_run, "int8") > 0, outcome.precision_run


# PyTorch ----------------------------------------------------------------------------------------------

def test_eager_torch_reports_its_weights(tmp_path):
    torch = pytest.importorskip("torch")
    from navigator import paths
    from navigator.source import load_source

    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.LayerNorm(32), torch.nn.Linear(32, 4)).eval()
    source = load_source(model, sample_inputs=torch.randn(4, 16))
    runner = paths.get("eager").load(None, source, {})  # type: ignore[arg-type]  # eager loads the source itself
    assert runner.precision_run() == "fp32 3/3 (LayerNorm+Linear) weights"
    half = runner.__class__(model.to(torch.bfloat16), runner.names, runner.settings)  # what ran, not what was asked
    assert half.precision_run() == "bf16 3/3 (LayerNorm+Linear) weights"


def test_torchao_quantized_linear_weights_are_named_by_their_tensor_type():
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchao")
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    from navigator.runtimes import torch as rt_torch

    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.LayerNorm(32), torch.nn.Linear(32, 4)).eval()
    quantize_(model, Int8WeightOnlyConfig())
    runner = rt_torch.runner(model, ["x"], rt_torch.settings({}, "cpu"))
    assert runner.settings.precision == "fp32"  # the settings ask for nothing else
    assert runner.precision_run() == "Int8Tensor 2/3 (Linear), fp32 1/3 (LayerNorm) weights"
    assert runner(({"x": np.ones((2, 16), np.float32)}))[0].shape == (2, 4)


def test_a_torchscript_module_and_autocast_are_read_too():
    torch = pytest.importorskip("torch")
    model = torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval())
    assert precision.torch_module(model) == "fp32 1/1 (Conv2d) weights"
    assert precision.torch_module(model, "fp16") == "fp32 1/1 (Conv2d) weights; under autocast fp16"
    assert precision.torch_module(lambda x: x) is None  # a callable that is no module: nothing to read


# TensorFlow (in a subprocess, as tests/test_tf.py runs it) -------------------------------------------------

TF_SCRIPT = """
import sys
from pathlib import Path
import keras
from navigator import paths
from navigator.source import load_source

out = Path(sys.argv[1])
for policy in ("float32", "mixed_float16"):
    keras.mixed_precision.set_global_policy(policy)
    x = keras.Input((8,), name="x")
    model = keras.Model(x, keras.layers.Dense(4)(keras.layers.Dense(8)(x)))
    model.save(str(out / f"{policy}.keras"))
    model.export(str(out / policy), verbose=False)
    for file in (out / f"{policy}.keras", out / policy):
        runner = paths.get("tf_baseline").load(None, load_source(file), {"mode": "eager"})
        print(policy, file.suffix or "savedmodel", runner.precision_run(), sep="|")
"""


def test_tensorflow_reports_keras_compute_dtypes_and_the_savedmodel_graph_ops(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    done = subprocess.run([sys.executable, "-c", TF_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    got = dict((line.rsplit("|", 1)[0], line.rsplit("|", 1)[1]) for line in done.stdout.splitlines() if "|" in line)
    assert got["float32|.keras"] == "fp32 2/2 Dense layers"
    assert got["float32|savedmodel"] == "fp32 2/2 MatMul"
    # mixed_float16 keeps float32 variables: what the layers and the graph compute in is float16
    assert got["mixed_float16|.keras"] == "fp16 2/2 Dense layers"
    assert got["mixed_float16|savedmodel"] == "fp16 2/2 MatMul"


# TensorRT's engine inspector (the format of LayerInformationFormat.JSON; no TensorRT here) ---------------

def test_tensorrt_layers_are_counted_from_a_detailed_inspector_json():
    layer = {"Name": "conv1", "LayerType": "CaskConvolution", "Inputs": [{"Format/Datatype": "Int8"}],
             "TacticName": "sm90_xmma_fprop_implicit_gemm_indexed_i8i8_i8i32_f32"}
    half = {"Name": "fc", "LayerType": "CaskGemmConvolution",
            "Inputs": [{"Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}]}
    tf32 = {"Name": "mm", "LayerType": "gemm", "Inputs": [{"Format/Datatype": "Row major linear FP32"}],
            "TacticName": "sm90_xmma_gemm_tf32f32_tf32f32_f32_nn_n"}
    reformat = {"Name": "r", "LayerType": "Reformat", "Inputs": [{"Format/Datatype": "Float"}]}
    info = json.dumps({"Layers": [layer, layer, half, tf32, reformat], "Bindings": ["x", "y"]})
    assert precision.tensorrt_layers(info) == "int8 2/4, fp16 1/4, tf32 1/4 TensorRT compute layers"
    names_only = json.dumps({"Layers": ["conv1", "fc"], "Bindings": ["x", "y"]})  # LAYER_NAMES_ONLY
    assert precision.tensorrt_layers(names_only) is None


# The trial and the reports ----------------------------------------------------------------------------

def test_a_runner_without_the_hook_says_nothing_and_one_that_fails_says_why():
    from navigator.trial.run import precision_run

    class Broken:
        def precision_run(self) -> str:
            raise RuntimeError("moved in this version")

    assert precision_run(object()) is None
    assert precision_run(Broken()) == "not read: RuntimeError: moved in this version"


def test_precision_run_travels_through_report_json_md_and_html_and_old_reports_load(tmp_path):
    from navigator.records import Result
    from navigator.report.build import write
    from navigator.report.read import read_report

    config = TrialConfig(3, "ort_int8", {"mode": "static"}, {}, 8)
    ran = "int8 20/21, fp32 1/21 Conv+MatMul; IO fp32"
    outcome = TrialOutcome(config, "failed", "boom", precision_run=ran)
    write(Result("m", "throughput", (outcome,), None, None, None, None, None), tmp_path)
    assert read_report(tmp_path / "report.json").outcomes[0].precision_run == ran
    row = next(line for line in (tmp_path / "report.md").read_text().splitlines() if line.startswith("| 3 |"))
    assert f"| {ran} |" in row and "| precision run |" in (tmp_path / "report.md").read_text()
    if importlib.util.find_spec("jinja2") and importlib.util.find_spec("plotly"):  # the `report` extra
        assert f"<td>{ran}</td>" in (tmp_path / "report.html").read_text()
    data = json.loads((tmp_path / "report.json").read_text())
    del data["outcomes"][0]["precision_run"]  # written before the field existed
    (tmp_path / "report.json").write_text(json.dumps(data))
    assert read_report(tmp_path / "report.json").outcomes[0].precision_run is None


def test_the_winner_line_says_what_ran():
    from navigator.records import Bench, Result
    from navigator.report import headline

    bench = Bench(8, 1000.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.01, 5, 100, True)
    winner = TrialOutcome(TrialConfig(1, "ort_int8", {}, {}, 8), "ok", bench=bench, precision_run="int8 2/2 MatMul")
    result = Result("m", "throughput", (winner,), winner, None, None, None, None)
    assert headline.build(result).lines[0].endswith("; precision run: int8 2/2 MatMul")
