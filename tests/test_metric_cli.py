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


def test_a_worker_joins_a_study_with_a_metric_drop_only_with_its_metric(classifier, tmp_path):
    """A shared study's creator records the metric in its report; a worker without the metric, without
    trust to import it, or with another one (0.5 on the model, where the creator measured 1) is one
    line, exit 2, nothing written; with the study's own it joins."""
    model, metric = classifier
    metric.write_text(metric.read_text() + "\ndef half(runner):\n    return 0.5 * top1(runner)\n")
    shared = ("--storage", f"sqlite:///{tmp_path / 'shared.db'}", "--study", "s")
    creator = optimize(model, tmp_path / "a", "--metric", f"{metric}:top1", "--trust-pickle", "--max-metric-drop",
                       "0.5%", *shared)
    assert creator.returncode == 0, creator.stderr
    assert json.loads((tmp_path / "a" / "report.json").read_text())["metric"] == {
        "source": 1.0, "winner": 1.0, "baseline": 1.0}
    refused = [((), "study 's' holds its trials to --max-metric-drop 0.5% of a user metric: join it with the metric"),
               (("--metric", f"{metric}:top1"), "imports and runs that code: pass --trust-pickle"),
               (("--metric", f"{metric}:half", "--trust-pickle"),
                "--metric gives 0.5 on the model of study 's' here, its creator measured 1")]
    for extra, message in refused:
        proc = run_cli("worker", *shared, "--out", str(tmp_path / "b"), "--no-progress", *extra)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and message in lines[-1] and lines[-1].startswith("navigator: error:"), proc.stderr
        assert not (tmp_path / "b").exists()
    joined = run_cli("worker", *shared, "--out", str(tmp_path / "b"), "--no-progress", "--metric", f"{metric}:top1",
                     "--trust-pickle")
    assert joined.returncode == 0, joined.stderr
    assert any(line.startswith("metric: source 1, winner 1") for line in joined.stdout.splitlines())


def test_a_worker_evaluates_the_study_metric_in_its_own_trials(classifier, tmp_path):
    """After the creator's first trial, a second worker runs one trial of the study: the metric is
    evaluated there too, so that the trial is held to the study's floor like the creator's."""
    import optuna

    import navigator

    model, metric = classifier
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    joined: list = []

    def join(outcome) -> None:
        if not joined:
            joined.append(run_cli("worker", "--storage", url, "--study", "s", "--out", str(tmp_path / "b"),
                                  "--no-progress", "--trials", "1", "--heartbeat", "2", "--metric",
                                  f"{metric}:top1", "--trust-pickle"))

    navigator.optimize(str(model), budget="2m", trials=4, paths=["ort_cpu"], batch_size=4, window_s=0.05,
                       progress=False, out=tmp_path / "a", metric=f"{metric}:top1", trust_pickle=True,
                       max_metric_drop="0.5%", storage=url, study="s", heartbeat=2, on_trial=join)
    assert joined[0].returncode == 0, joined[0].stderr
    trials = optuna.load_study(study_name="s", storage=url).get_trials(deepcopy=False)
    workers = {t.user_attrs["worker"] for t in trials if "outcome" in t.user_attrs}
    assert len(workers) == 2  # the creator's trials and the joining worker's
    outcomes = [json.loads(t.user_attrs["outcome"]) for t in trials if "outcome" in t.user_attrs]
    assert all(o["metric"] == 1.0 and o["status"] in ("ok", "unstable", "screened") for o in outcomes), outcomes
