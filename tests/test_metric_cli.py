"""The user metric through the command line: measured on the source and in every trial, reported per
trial; bad metrics and drops are one line, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli

W = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32)
METRIC = '''
import numpy as np
X = np.random.default_rng(0).standard_normal((256, 8)).astype(np.float32)
LABELS = (X @ np.load({weights!r})).argmax(1)

def top1(runner):
    return float((runner({{"x": X}})[0].argmax(1) == LABELS).mean())

def boom(runner):
    raise RuntimeError("no labels here")

def nan(runner):
    return float("nan")

def text(runner):
    return "high"
'''


def linear_onnx(file: Path, w: np.ndarray) -> Path:
    """x @ w as an ONNX graph with a dynamic batch: logits of a linear classifier."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["logits"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", w.shape[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", w.shape[1]])],
        [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(file))
    return file


@pytest.fixture
def classifier(tmp_path: Path) -> tuple[Path, Path]:
    """A linear classifier as an ONNX graph (dynamic batch) and a metric file: top-1 agreement with the
    fp32 labels on 256 samples."""
    model = linear_onnx(tmp_path / "linear.onnx", W)
    np.save(tmp_path / "w.npy", W)
    metric = tmp_path / "metrics.py"
    metric.write_text(METRIC.format(weights=str(tmp_path / "w.npy")))
    return model, metric


def optimize(model: Path, out: Path, *extra: str):
    return run_cli("optimize", "--model", str(model), "--out", str(out), "--budget", "30s", "--trials", "3",
                   "--path", "ort_cpu", "--window", "0.05", "--no-progress", "--batch-size", "4", *extra)


def test_every_trial_carries_the_metric_and_the_report_shows_it(classifier, tmp_path):
    model, metric = classifier
    out = tmp_path / "out"
    proc = optimize(model, out, "--metric", f"{metric}:top1", "--trust-pickle", "--max-metric-drop", "0.5%")
    assert proc.returncode == 0, proc.stderr
    assert any(line.startswith("metric: source 1, winner 1") for line in proc.stdout.splitlines())
    report = json.loads((out / "report.json").read_text())
    ran = [o for o in report["outcomes"] if o["status"] in ("ok", "unstable", "screened")]
    assert ran and all(o["metric"] == 1.0 for o in ran), report["outcomes"]
    assert report["settings"]["metric_source"] == 1.0 and report["settings"]["max_metric_drop"] == "0.5%"
    assert report["metric"]["source"] == 1.0 and report["metric"]["winner"] == 1.0
    md = (out / "report.md").read_text()
    assert "| metric (vs source) |" in md and "| 1 | " in md and "**Metric** (user's, higher is better): source 1" in md
    assert "metric (vs source)" in (out / "report.html").read_text()


@pytest.mark.parametrize("args, message", [
    (("--metric", "{metric}:top1"), "imports and runs that code: pass --trust-pickle"),
    (("--metric", "{metric}:boom", "--trust-pickle"),
     "--metric on the source model: the metric raised RuntimeError: no labels here"),
    (("--metric", "{metric}:nan", "--trust-pickle"), "the metric returned nan, not a finite number"),
    (("--metric", "{metric}:text", "--trust-pickle"), "the metric returned str 'high', not a number"),
    (("--metric", "{metric}:top1", "--trust-pickle", "--max-metric-drop", "abc"), "--max-metric-drop 'abc'"),
    (("--metric", "{metric}:top1", "--trust-pickle", "--max-metric-drop", "-1%"), "must be at least 0"),
    (("--metric", "{metric}:top1", "--trust-pickle", "--max-metric-drop", "150%"), "at most 100%"),
    (("--max-metric-drop", "1%"), "--max-metric-drop needs --metric"),
])
def test_bad_metric_inputs_are_one_line_and_write_nothing(classifier, tmp_path, args, message):
    model, metric = classifier
    out = tmp_path / "out"
    proc = optimize(model, out, *(a.format(metric=metric) for a in args))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not out.exists()


def _bf16_cpu() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@pytest.mark.skipif(not _bf16_cpu(), reason="OpenVINO runs bf16 only on a CPU with bf16 instructions")
def test_a_lossy_bf16_trial_breaks_the_drop_and_cannot_win(tmp_path):
    """A classifier whose two top classes nearly tie: OpenVINO's bf16 inference passes the bf16 output
    tolerance but flips labels, so the metric (a closure, carried to the worker) rejects it; f32 wins."""
    pytest.importorskip("openvino")
    import navigator

    rng = np.random.default_rng(1)
    first = rng.standard_normal((64, 1)).astype(np.float32)
    w = np.concatenate([first, first * 1.001 + 1e-3 * rng.standard_normal((64, 1)).astype(np.float32),
                        0.1 * rng.standard_normal((64, 2)).astype(np.float32)], 1)
    model = linear_onnx(tmp_path / "tie.onnx", w)
    x = rng.standard_normal((256, 64)).astype(np.float32)
    labels = (x.astype(np.float64) @ w.astype(np.float64)).argmax(1)
    result = navigator.optimize(
        str(model), metric=lambda run: float((run({"x": x})[0].argmax(1) == labels).mean()),
        max_metric_drop="1%", paths=["openvino"], trials=3, budget=40, out=tmp_path / "out", progress=False,
        batch_size=4, window_s=0.05, enqueue={"bf16": ("openvino", {"inference_precision": "bf16"})})
    by_precision = {o.config.runtime["inference_precision"]: o for o in result.outcomes}
    lossy = by_precision["bf16"]
    assert lossy.status == "invalid" and lossy.metric is not None and lossy.metric < 0.99 and lossy.bench is None
    assert lossy.error == (f"metric {lossy.metric:.6g} vs the source's 1: below the 0.99 that "
                           "--max-metric-drop 1% allows")
    assert by_precision["f32"].metric == 1.0
    assert result.winner is not None and result.winner.config.runtime["inference_precision"] == "f32"
    assert result.metric["source"] == 1.0 and result.metric["winner"] == 1.0
    md = (tmp_path / "out" / "report.md").read_text()
    assert f"{lossy.metric:.6g} (" in md  # the lossy trial's metric and its drop in the trial table
