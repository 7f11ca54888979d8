"""INT8 through calibration: the calibration inputs (given, defaulted, refused when random), the int8
tolerance class, and the ort_int8 path on small ONNX models built here."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from navigator.paths.base import NO_CALIBRATION
from navigator.records import TensorSpec
from navigator.trial.validate import AGREEMENT, TOLERANCES, validate

ROOT = Path(__file__).resolve().parents[2]


def classifier(path: Path, features: int = 16, classes: int = 10, seed: int = 0) -> Path:
    """x[N, features] -> MatMul, Add, Relu, MatMul, Add -> logits[N, classes]: near-identity weights plus
    noise, so that the class of a row of `rows` (its largest feature) wins by a margin INT8 keeps."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1, w2 = np.zeros((features, 32)), np.zeros((32, classes))
    w1[:, :features], w2[:classes, :] = 2 * np.eye(features), 2 * np.eye(classes)
    weights = {"w1": w1 + 0.1 * rng.standard_normal(w1.shape), "b1": rng.standard_normal(32) * 0.1,
               "w2": w2 + 0.1 * rng.standard_normal(w2.shape), "b2": rng.standard_normal(classes) * 0.1}
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["o"]),
             helper.make_node("Add", ["o", "b2"], ["logits"])]
    graph = helper.make_graph(
        nodes, "classifier", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def rows(n: int, features: int = 16, seed: int = 1) -> dict[str, np.ndarray]:
    """Rows of noise with one of the first 10 features raised: that feature's class."""
    rng = np.random.default_rng(seed)
    x = 0.3 * rng.standard_normal((n, features))
    x[np.arange(n), rng.integers(0, 10, n)] += 3.0
    return {"x": x.astype(np.float32)}


def context(tmp_path: Path, **load: object):
    from navigator.cache import Cache
    from navigator.settings import StudySettings
    from navigator.source import load_source
    from navigator.trial.run import TrialContext

    source = load_source(classifier(tmp_path / "m.onnx"), **load)  # type: ignore[arg-type]
    return TrialContext(source, Cache(tmp_path / "cache", source.fingerprint), StudySettings(batch_sizes=(8,)))


RUNTIME = {"ort_int8": {"intra_op_num_threads": 1},
           "openvino_int8": {"performance_hint": "LATENCY", "num_streams": 1, "inference_num_threads": 1}}


def config(path: str = "ort_int8", **convert: object):
    from navigator.records import TrialConfig

    return TrialConfig(0, path, dict(convert), RUNTIME[path], 8)


# Calibration inputs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, convert", [("ort_int8", {"mode": "static"}), ("openvino_int8", {})])
def test_int8_refuses_to_calibrate_on_generated_inputs(tmp_path, path, convert):
    from navigator.trial.run import run_trial

    ctx = context(tmp_path)  # no --input-data: navigator draws the validation inputs
    assert ctx.source.generated and ctx.target.calibration is None
    outcome = run_trial(ctx, config(path, **convert))
    assert outcome.status == "failed" and NO_CALIBRATION in outcome.error


def test_a_study_without_calibration_inputs_does_not_search_the_paths_whose_every_trial_calibrates(tmp_path):
    from navigator import paths

    source = context(tmp_path).source
    assert not source.calibratable
    wanted = ("ort_cpu", "ort_int8", "openvino_int8", "tensorrt")
    reasons = {c.name: c.reason for c in paths.candidates("onnx", "cpu", wanted, source.calibratable)}
    assert reasons["ort_int8"] == reasons["openvino_int8"] == NO_CALIBRATION
    assert reasons["ort_cpu"] is None and reasons["tensorrt"] != NO_CALIBRATION  # some of its trials do not calibrate
    assert {c.name: c.reason for c in paths.candidates("onnx", "cpu", wanted)}["ort_int8"] is None
    np.savez(tmp_path / "in.npz", **rows(8))
    assert context(tmp_path, input_data=tmp_path / "in.npz").source.calibratable


def test_calibration_data_wins_over_the_validation_inputs_and_a_generated_set_is_not_calibrated_on(tmp_path):
    np.savez(tmp_path / "cal.npz", **rows(40, seed=7))
    ctx = context(tmp_path, calibration=tmp_path / "cal.npz")
    assert ctx.target.calibration is not None
    np.testing.assert_array_equal(ctx.target.calibration["x"], rows(40, seed=7)["x"])
    np.savez(tmp_path / "in.npz", **rows(8))
    defaulted = context(tmp_path, input_data=tmp_path / "in.npz")
    assert defaulted.target.calibration is defaulted.source.samples
    # a live model's generated samples, saved for the worker, stay generated there
    again = context(tmp_path, input_data=tmp_path / "in.npz", generated=True)
    assert again.target.calibration is None


def test_the_worker_loads_the_calibration_file_of_its_spec(tmp_path):
    from navigator.records import SourceRecord, WorkerSpec
    from navigator.settings import StudySettings
    from navigator.trial.worker import _load

    model = classifier(tmp_path / "m.onnx")
    np.savez(tmp_path / "cal.npz", **rows(24, seed=3))
    record = SourceRecord(str(model), calibration_data=str(tmp_path / "cal.npz"))
    ctx = _load(WorkerSpec(record, "m", "f", 8, str(tmp_path / "cache")), StudySettings())
    assert ctx.target.calibration["x"].shape == (24, 16)


def test_a_result_loads_its_source_with_the_runs_calibration(tmp_path):
    from navigator.records import Result, SourceRecord
    from navigator.results import load_source_of

    model = classifier(tmp_path / "m.onnx")
    np.savez(tmp_path / "cal.npz", **rows(24, seed=3))
    record = SourceRecord(str(model), calibration_data=str(tmp_path / "cal.npz"))
    result = Result("m", "throughput", (), None, None, None, None, tmp_path / "report.json", source=record)
    source = load_source_of(result, 8)
    assert source.calibration is not None and source.calibration["x"].shape == (24, 16)
    generated = Result("m", "throughput", (), None, None, None, None, None,
                       source=SourceRecord(str(model), generated_inputs=True))
    assert load_source_of(generated, 8).generated  # its winner is never re-calibrated on random inputs


def test_api_calibration_dataloader_is_concatenated(tmp_path):
    from navigator.pyapi import calibration_of

    batches = [(np.ones((4, 16), np.float32) * i, np.zeros(4)) for i in range(3)]  # (features, labels)
    got = calibration_of(str(tmp_path / "m.onnx"), batches)
    assert isinstance(got, tuple) and got[0].shape == (12, 16) and got[0][-1, 0] == 2
    ctx = context(tmp_path, calibration=got)
    assert ctx.target.calibration["x"].shape == (12, 16)


@pytest.mark.parametrize("data, expected", [
    ({"x": rows(4)["x"], "y": rows(4)["x"]}, "calibration data: input data has tensors ['x', 'y']"),
    ({"x": rows(4)["x"].astype(np.float64)}, "data of dtype float64, the model expects float32"),
    ({"x": np.zeros((4, 3), np.float32)}, "does not fit"),
    (None, "--calibration-data"),  # not an .npz archive
])
def test_bad_calibration_data_is_one_line_exit_2_and_nothing_written(tmp_path, data, expected):
    model = classifier(tmp_path / "m.onnx")
    bad = tmp_path / "cal.npz"
    if data is None:
        bad.write_bytes(b"not a zip")
    else:
        np.savez(bad, **data)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "navigator", "optimize", "--model", str(model), "--budget", "20s",
                           "--calibration-data", str(bad), "--path", "ort_int8", "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.strip().splitlines() if not line.startswith("navigator: warning")]
    assert len(errors) == 1 and expected in errors[0], done.stderr
    assert not out.exists()


def paths_available(name: str) -> bool:
    from navigator import paths

    return paths.get(name).available() is None


def test_the_report_notes_say_where_calibration_comes_from(tmp_path, monkeypatch):
    from navigator import paths
    from navigator.api import calibration_notes
    from navigator.settings import StudySettings

    study = StudySettings(paths=("ort_cpu", "ort_int8"))
    # without calibration inputs ort_int8 is not searched: "Paths not searched" gives the reason, once
    assert calibration_notes(context(tmp_path).source, study) == ()
    np.savez(tmp_path / "in.npz", **rows(8))
    [note] = calibration_notes(context(tmp_path, input_data=tmp_path / "in.npz").source, study)
    assert "calibrated on the validation inputs" in note
    assert calibration_notes(context(tmp_path, input_data=tmp_path / "in.npz",
                                     calibration=tmp_path / "in.npz").source, study) == ()
    assert calibration_notes(context(tmp_path).source, StudySettings(paths=("ort_cpu",))) == ()
    # a path whose trials calibrate only in some precisions stays searched: the note names it
    tensorrt, get = paths.get("tensorrt"), paths.get
    monkeypatch.setattr(paths, "get", lambda name: dataclasses.replace(tensorrt, available=lambda: None)
                        if name == "tensorrt" else get(name))
    [note] = calibration_notes(context(tmp_path).source, StudySettings(device="cuda", paths=("tensorrt",)))
    assert note.startswith("tensorrt: their INT8 trials are refused: ") and NO_CALIBRATION in note
    monkeypatch.undo()
    # a calibrating path that cannot run here (TensorRT without its libraries) is not named
    assert calibration_notes(context(tmp_path).source, StudySettings(device="cuda", paths=("tensorrt",))) == () \
        or paths_available("tensorrt")


def test_int8_trials_skip_only_the_perturbed_inputs_they_were_not_calibrated_on(tmp_path):
    from navigator.records import TrialConfig
    from navigator.trial.run import PERTURBED, second_checks

    np.savez(tmp_path / "in.npz", **rows(8))
    ctx = context(tmp_path, input_data=tmp_path / "in.npz")
    samples = ctx.inputs(8)

    def runner(data):  # right on the samples, wrong on anything else
        ref = ctx.source.reference(data)
        return ref if data is samples else [-r for r in ref]

    fp32 = TrialConfig(0, "ort_cpu", {}, {}, 8)
    status, reason, _ = second_checks(ctx, fp32, runner, 1e-4, 1e-3)
    assert status == "invalid" and reason.startswith(f"on {PERTURBED}:")
    assert second_checks(ctx, config(mode="static"), runner, 0.1, 0.1) is None


def test_with_a_metric_drop_the_metric_not_output_agreement_judges_an_int8_trial(tmp_path):
    """A quantized trial whose class scores lose the top-1 rule passes validation when --metric and
    --max-metric-drop are given (the metric decides), still fails on NaN, and an fp32 trial keeps its bounds."""
    from dataclasses import replace

    from navigator.records import TrialConfig
    from navigator.trial.run import check, metric_governs

    np.savez(tmp_path / "in.npz", **rows(8))
    ctx = context(tmp_path, input_data=tmp_path / "in.npz")
    reference = ctx.reference(8)
    shuffled = [np.roll(r, 1, axis=1) for r in reference]  # every row's top-1 class moved

    def runner(data):
        return shuffled

    int8, fp32 = config(mode="static"), TrialConfig(0, "ort_cpu", {}, {}, 8)
    assert not check(ctx, int8, runner, 8)[1].ok  # no metric: the agreement rule
    governed = replace(ctx, metric=lambda r: 1.0, settings=replace(ctx.settings, max_metric_drop="1%", metric_source=1.0))
    assert metric_governs(governed, int8) and not metric_governs(governed, fp32)
    assert not metric_governs(replace(ctx, metric=lambda r: 1.0), int8)  # a metric without a drop: no constraint
    assert check(governed, int8, runner, 8)[1].ok
    assert not check(governed, fp32, runner, 8)[1].ok
    nan = [np.full_like(r, np.nan) for r in reference]
    assert not check(governed, int8, lambda data: nan, 8)[1].ok


def test_navigator_paths_says_what_the_int8_paths_calibrate_on():
    done = subprocess.run([sys.executable, "-m", "navigator", "paths"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if "calibrated on" in line)
    # the TensorRT paths calibrate where `quantize` is int8 or fp8 (tests/unit/test_trt_qdq.py)
    assert line.startswith("openvino_int8, ort_int8, ort_tensorrt, tensorrt: INT8 (FP8), calibrated on --calibration-data")


# The int8 tolerance class ------------------------------------------------------------------------------

SCORES = (TensorSpec("logits", "float32", (None, 10)),)


def scores(n: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal((n, 10)).astype(np.float32)
    ref[np.arange(n), rng.integers(0, 10, n)] += 4.0  # one clear winner per row
    return ref


def test_class_scores_pass_int8_by_top1_and_cosine_where_fp16_bounds_fail():
    ref = scores()
    got = ref + np.random.default_rng(1).normal(0, 0.05, ref.shape).astype(np.float32)
    assert not validate(SCORES, [got], [ref], *TOLERANCES["fp16"]).ok
    result = validate(SCORES, [got], [ref], *TOLERANCES["int8"], AGREEMENT["int8"])
    assert result.ok, result.reason
    assert result.outputs[0].agreement >= 0.99 and result.outputs[0].cosine > 0.99


def test_int8_fails_where_top1_changes_on_more_than_1_percent_of_rows():
    ref = scores()
    got = ref.copy()
    for row in range(3):  # 1.5% of the rows: another class on top, the scores otherwise equal
        got[row, (ref[row].argmax() + 1) % 10] = ref[row].max() + 1.0
    result = validate(SCORES, [got], [ref], *TOLERANCES["int8"], AGREEMENT["int8"])
    assert not result.ok and "top-1 class agrees with the source on 98.50% of the rows" in result.reason
    assert validate(SCORES, [got[3:]], [ref[3:]], *TOLERANCES["int8"], AGREEMENT["int8"]).ok


def test_int8_fails_on_low_cosine_with_the_same_top1():
    ref = scores()
    got = ref.copy()
    got[:, :] = np.where(ref == ref.max(axis=1, keepdims=True), ref, -ref)  # winners kept, the rest flipped
    result = validate(SCORES, [got], [ref], *TOLERANCES["int8"], AGREEMENT["int8"])
    assert not result.ok and "mean cosine similarity" in result.reason


def test_int8_outputs_that_are_not_class_scores_get_wider_bounds_than_fp16():
    spec = (TensorSpec("features", "float32", (None, 4, 8)),)
    ref = np.random.default_rng(0).standard_normal((16, 4, 8)).astype(np.float32)
    got = ref + np.float32(0.05)
    assert not validate(spec, [got], [ref], *TOLERANCES["fp16"], AGREEMENT["int8"]).ok
    assert validate(spec, [got], [ref], *TOLERANCES["int8"], AGREEMENT["int8"]).ok
    far = ref + np.float32(0.5)
    result = validate(spec, [far], [ref], *TOLERANCES["int8"], AGREEMENT["int8"])
    assert not result.ok and "beyond atol 0.1" in result.reason


def test_int8_class_scores_with_nan_where_the_source_is_finite_fail():
    ref = scores()
    got = ref.copy()
    got[5, 2] = np.nan
    result = validate(SCORES, [got], [ref], *TOLERANCES["int8"], AGREEMENT["int8"])
    assert not result.ok and "NaN/Inf at 1 positions" in result.reason


# The ort_int8 path -------------------------------------------------------------------------------------

@pytest.mark.parametrize("convert", [
    {"mode": "static"},
    {"mode": "static", "per_channel": False, "calibrate_method": "Entropy", "activation_type": "QUInt8",
     "weight_type": "QUInt8", "exclude": "softmax_layernorm"},
    {"mode": "dynamic"},
])
def test_ort_int8_quantizes_a_small_classifier_and_validates(tmp_path, convert):
    pytest.importorskip("onnxruntime")
    from navigator import paths
    from navigator.paths.base import TritonTarget
    from navigator.trial.run import run_trial

    np.savez(tmp_path / "in.npz", **rows(64))
    ctx = context(tmp_path, input_data=tmp_path / "in.npz")
    outcome = run_trial(ctx, config(**convert))
    assert outcome.status in ("ok", "unstable"), outcome.error
    assert outcome.precision == "int8"  # what the report's beside-the-quantized-winner figures key on
    assert outcome.validation is not None and outcome.validation.outputs[0].cosine is not None
    artifact = paths.get("ort_int8").convert(ctx.source, config(**convert).convert, ctx.cache, ctx.target)
    onnx = pytest.importorskip("onnx")
    ops = {n.op_type for n in onnx.load(str(artifact.file)).graph.node}
    assert ops & {"QuantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "QLinearMatMul"}, ops
    model = paths.get("ort_int8").triton(artifact, config(**convert).runtime, TritonTarget())
    assert model.backend == "onnxruntime" and model.files["model.onnx"] == artifact.file


@pytest.mark.parametrize("convert", [{"preset": "performance", "subset_size": 32},
                                     {"preset": "mixed", "model_type": "transformer", "subset_size": 128}])
def test_openvino_int8_quantizes_a_small_classifier_and_validates(tmp_path, convert):
    ov = pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from navigator import paths
    from navigator.paths.base import TritonTarget
    from navigator.trial.run import run_trial

    np.savez(tmp_path / "in.npz", **rows(64))
    ctx = context(tmp_path, input_data=tmp_path / "in.npz")
    outcome = run_trial(ctx, config("openvino_int8", **convert))
    assert outcome.status in ("ok", "unstable"), outcome.error
    artifact = paths.get("openvino_int8").convert(ctx.source, convert, ctx.cache, ctx.target)
    ops = {op.get_type_name() for op in ov.Core().read_model(str(artifact.file)).get_ops()}
    assert "FakeQuantize" in ops, ops
    model = paths.get("openvino_int8").triton(artifact, RUNTIME["openvino_int8"], TritonTarget())
    assert model.backend == "openvino" and model.files["model.xml"] == artifact.file


@pytest.mark.skipif(__import__("platform").machine().lower() not in ("x86_64", "amd64"),
                    reason="the x86-64 rule: ARM fuses int8 activations too (session.qdqisint8allowed)")
def test_ort_int8_default_static_model_runs_integer_kernels_on_x86(tmp_path):
    """The default static trial (uint8 activations) is fused into integer kernels at the searched graph
    levels, no float MatMul/Gemm left; at the basic level, which the path no longer searches, it is not."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from navigator import paths
    from navigator.search.space import load

    np.savez(tmp_path / "in.npz", **rows(64))
    ctx = context(tmp_path, input_data=tmp_path / "in.npz")

    def optimized_ops(convert: dict[str, object], level: str) -> list[str]:
        artifact = paths.get("ort_int8").convert(ctx.source, convert, ctx.cache, ctx.target)
        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        so.optimized_model_filepath = str(tmp_path / f"{level}.onnx")
        ort.InferenceSession(str(artifact.file), so, providers=["CPUExecutionProvider"])
        return [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]

    levels = next(p for p in load("ort_int8").params if p.name == "graph_optimization_level").choices
    assert set(levels) == {"all", "extended"}
    floating = {"MatMul", "Gemm"}  # quant_pre_process fuses MatMul + Add into Gemm
    for level in ("ORT_ENABLE_ALL", "ORT_ENABLE_EXTENDED"):
        ops = optimized_ops({"mode": "static"}, level)
        assert ops.count("QGemm") + ops.count("QLinearMatMul") == 2 and not floating & set(ops), ops
    assert floating & set(optimized_ops({"mode": "static"}, "ORT_ENABLE_BASIC"))  # why basic is not searched


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_ort_int8_exclude_ends_leaves_the_first_and_last_matmul_in_fp32(tmp_path, mode):
    onnx = pytest.importorskip("onnx")
    from navigator import paths

    np.savez(tmp_path / "in.npz", **rows(64))
    ctx = context(tmp_path, input_data=tmp_path / "in.npz")
    quantized = paths.get("ort_int8").convert(ctx.source, {"mode": mode}, ctx.cache, ctx.target)
    kept = paths.get("ort_int8").convert(ctx.source, {"mode": mode, "exclude": "ends"}, ctx.cache, ctx.target)

    def float_matmuls(file: Path) -> list[list[str]]:  # quant_pre_process fuses MatMul + Add into Gemm
        return [list(n.input) for n in onnx.load(str(file)).graph.node if n.op_type in ("MatMul", "Gemm")]

    assert [i[1] for i in float_matmuls(kept.file)] == ["w1", "w2"]  # the fp32 weights, as in the source
    assert not any(i[1] in ("w1", "w2") for i in float_matmuls(quantized.file))


def test_openvino_int8_ignore_ends_leaves_the_first_and_last_matmul_unquantized(tmp_path):
    ov = pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from navigator import paths

    np.savez(tmp_path / "in.npz", **rows(64))
    ctx = context(tmp_path, input_data=tmp_path / "in.npz")
    path = paths.get("openvino_int8")

    def fake_quantized(convert: dict[str, object]) -> int:
        artifact = path.convert(ctx.source, convert, ctx.cache, ctx.target)
        return sum(op.get_type_name() == "FakeQuantize" for op in ov.Core().read_model(str(artifact.file)).get_ops())

    assert fake_quantized({}) > 0
    assert fake_quantized({"ignore": "ends"}) == 0  # this model's two MatMuls are its ends
    assert fake_quantized({"fast_bias_correction": False}) > 0


def test_openvino_int8_unquantized_layers_take_the_inference_precision_the_cpu_has(tmp_path):
    ov = pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from dataclasses import replace

    from navigator import paths
    from navigator.paths.base import TritonTarget
    from navigator.trial.run import run_trial

    spec = next(p for p in paths.space("openvino_int8", "onnx").params if p.name == "inference_precision")
    bf16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert spec.choices == (("bf16", "f32") if bf16 else ("f32",))
    if not bf16:
        pytest.skip("this CPU has no bf16: the choice is narrowed to f32")
    np.savez(tmp_path / "in.npz", **rows(64))
    ctx = context(tmp_path, input_data=tmp_path / "in.npz")
    trial = config("openvino_int8", ignore="ends")
    trial = replace(trial, runtime={**trial.runtime, "inference_precision": "bf16"})
    outcome = run_trial(ctx, trial)
    assert outcome.status in ("ok", "unstable") and outcome.precision == "int8", outcome.error
    artifact = paths.get("openvino_int8").convert(ctx.source, trial.convert, ctx.cache, ctx.target)
    assert paths.get("openvino_int8").triton(artifact, trial.runtime, TritonTarget()).parameters["HINT_BF16"] == "YES"


def test_ort_int8_calibration_is_part_of_the_cache_key(tmp_path):
    from dataclasses import replace

    from navigator import paths

    np.savez(tmp_path / "in.npz", **rows(64))
    ctx = context(tmp_path, input_data=tmp_path / "in.npz")
    path, params = paths.get("ort_int8"), config(mode="static").convert
    first = path.convert(ctx.source, params, ctx.cache, ctx.target)
    other = replace(ctx.target, calibration=rows(64, seed=9))
    assert path.convert(ctx.source, params, ctx.cache, other).dir != first.dir
    assert path.convert(ctx.source, params, ctx.cache, ctx.target).dir == first.dir


def test_the_report_row_of_an_int8_trial_shows_what_it_was_validated_by():
    from navigator.records import OutputCheck, TrialOutcome, Validation
    from navigator.report.build import _row

    check = OutputCheck("logits", 0.5, 0.2, 0.1, 0.1, 0, True, 0.995, 0, 0.9987)
    row = _row(TrialOutcome(config(mode="static"), "ok", "", Validation(True, "", (check,))), None, "ok")
    assert "(top-1 99.50% agree, cosine 0.9987)" in row


def test_optimize_carries_api_calibration_arrays_to_the_trial_worker(tmp_path):
    pytest.importorskip("onnxruntime")
    import navigator

    model = classifier(tmp_path / "m.onnx")
    np.savez(tmp_path / "in.npz", **rows(8))
    result = navigator.optimize(str(model), input_data=tmp_path / "in.npz", calibration={"x": rows(32, seed=4)["x"]},
                                paths=["ort_int8"], budget="40s", trials=1, batch_size=8, out=tmp_path / "out",
                                progress=False, screen=False, device="cpu")
    assert result.source is not None and result.source.calibration_data is not None
    saved = np.load(result.source.calibration_data)
    np.testing.assert_array_equal(saved["x"], rows(32, seed=4)["x"])
    [outcome] = result.outcomes
    assert outcome.status in ("ok", "unstable"), outcome.error
    import json

    from navigator.paths import _calibration

    keys = [json.loads(p.read_text())["params"] for p in (tmp_path / "out" / "cache").rglob("params.json")
            if json.loads(p.read_text())["step"] == "ort_int8"]  # what the worker quantized with
    assert [k["calibration"] for k in keys] == [_calibration.fingerprint({"x": rows(32, seed=4)["x"]})]


def test_the_gate_calibrates_the_candidate_on_the_baselines_calibration_inputs(tmp_path):
    """`check --model` optimizes the candidate on the baseline's calibration inputs (its --calibration-data;
    the candidate is given no inputs of its own, so without them its INT8 trials would refuse): each INT8
    winner, and the other side's re-validated on it, is quantized on the inputs it was measured with.
    Where those inputs are gone, the gate refuses before it spends its budget."""
    pytest.importorskip("onnxruntime")
    import navigator
    from navigator.errors import InputError

    model = classifier(tmp_path / "m.onnx")
    np.savez(tmp_path / "in.npz", **rows(8))
    np.savez(tmp_path / "cal.npz", **rows(64, seed=5))
    navigator.optimize(str(model), input_data=tmp_path / "in.npz", calibration=tmp_path / "cal.npz",
                       paths=["ort_int8"], budget="40s", trials=2, batch_size=8, out=tmp_path / "base",
                       progress=False, window_s=0.05, device="cpu")
    base = tmp_path / "base" / "report.json"
    verdict = navigator.check(base, model=str(model), budget="20s", out=tmp_path / "cand", paths=["ort_int8"],
                              rounds=3)
    assert verdict.candidate.failure == "" and verdict.candidate.path == "ort_int8", verdict.candidate.failure
    candidate = navigator.load_result(tmp_path / "cand")
    assert candidate.source is not None and candidate.source.calibration_data == str((tmp_path / "cal.npz").resolve())
    (tmp_path / "cal.npz").unlink()
    with pytest.raises(InputError, match=r"the calibration inputs of .*report.json are gone: .*cal.npz"):
        navigator.check(base, model=str(model), budget="20s", out=tmp_path / "again", paths=["ort_int8"], rounds=3)
    assert not (tmp_path / "again").exists()
