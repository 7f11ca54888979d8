"""End to end on the fixtures: the CLI and the API search, write a Triton repository that reproduces
the source model, and a report that lists the baseline and several paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from navigator.records import Result
from tests.conftest import run_cli
from tests.repo_loader import load

FAST = ("--window", "0.05", "--no-progress")


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _check_repository(result: dict, model_dir: Path, inputs: dict[str, np.ndarray], reference: list[np.ndarray],
                      backend_by_path: dict[str, str]) -> None:
    config, run = load(model_dir)
    winner = result["winner"]["config"]["path"]
    assert (config.backend or config.platform) == backend_by_path[winner]
    assert [i.name for i in config.input] == list(inputs)
    got = run(inputs)
    assert len(got) == len(reference)
    for g, r in zip(got, reference):
        np.testing.assert_allclose(g, r, atol=5e-2, rtol=5e-2)  # bf16 OpenVINO may win


BACKENDS = {"eager": "python", "torchscript": "pytorch", "ort_cpu": "onnxruntime", "openvino": "openvino"}


def test_cli_default_cnn(models: dict[str, Path], tmp_path: Path) -> None:
    import torch

    from fixtures.make import cnn

    out = tmp_path / "out"
    proc = run_cli("optimize", "--model", str(models["cnn.pt2"]), "--budget", "5m", "--trials", "8", "--batch-size", "4",
                   "--out", str(out), *FAST)
    assert proc.returncode == 0, proc.stderr
    assert "triton repository:" in proc.stdout and "report:" in proc.stdout
    report = _report(out)
    outcomes = report["outcomes"]
    assert outcomes[0]["config"]["path"] == "eager" and report["baseline"]["config"]["number"] == 0
    assert len({o["config"]["path"] for o in outcomes if o["status"] == "ok"}) >= 3
    assert report["winner"]["status"] == "ok" and report["speedup"] > 0
    config_text = (out / "model_repository" / "cnn" / "config.pbtxt").read_text()
    from navigator.triton.config import from_text

    config = from_text(config_text)
    # Served above the optimisation batch, up to what the winner validated at (64 by default).
    assert config.max_batch_size >= 4 and list(config.input[0].dims) == [3, 32, 32]
    assert f"max_batch_size {config.max_batch_size}: trial {report['winner']['config']['number']} validated" in \
        " ".join(report["notes"])
    assert list(config.output[0].dims) == [10]
    model, _ = cnn()
    x = np.random.default_rng(3).standard_normal((4, 3, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        ref = [model(torch.from_numpy(x)).numpy()]
    _check_repository(report, out / "model_repository" / "cnn", {"image": x}, ref, BACKENDS)
    assert (out / "report.md").read_text().startswith("# navigator report: cnn")


def test_cli_torchscript_transformer_int64(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("optimize", "--model", str(models["transformer.ts.pt"]), "--input-spec", "input_ids:int64:-1x16",
                   "--budget", "3m", "--trials", "5", "--batch-size", "1:4", "--out", str(out), *FAST)
    assert proc.returncode == 0, proc.stderr
    report = _report(out)
    assert {o["config"]["batch_size"] for o in report["outcomes"]} <= {1, 2, 4}
    assert report["outcomes"][0]["config"]["path"] == "eager"
    # The model has two outputs (a tuple): both are validated.
    ok = [o for o in report["outcomes"] if o["status"] == "ok"]
    assert ok and all(len(o["validation"]["outputs"]) == 2 for o in ok)


def test_cli_onnx_source(models: dict[str, Path], tmp_path: Path) -> None:
    import onnxruntime as ort

    out = tmp_path / "out"
    proc = run_cli("optimize", "--model", str(models["mlp.onnx"]), "--budget", "15s", "--batch-size", "8",
                   "--out", str(out), *FAST)
    assert proc.returncode == 0, proc.stderr
    report = _report(out)
    assert report["baseline"]["config"]["path"] == "ort_cpu"
    assert {"eager", "torchscript"} <= set(report["unavailable"])
    x = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    ref = ort.InferenceSession(str(models["mlp.onnx"]), providers=["CPUExecutionProvider"]).run(None, {"input_0": x})
    _check_repository(report, out / "model_repository" / "mlp", {"input_0": x}, ref, {**BACKENDS, "ort_cpu": "onnxruntime"})


def test_api_live_module(tmp_path: Path) -> None:
    import navigator
    from fixtures.make import mlp

    model, example = mlp()
    seen = []
    # the budget is the run's wall clock, worker start included: a trial cap keeps the run short
    result = navigator.optimize(model, example, budget="2m", trials=6, out=tmp_path / "api", progress=False,
                                window_s=0.05, batch_size=4, on_trial=seen.append)
    assert isinstance(result, Result)
    assert result.best is not None and result.best.status == "ok"
    assert result.repository == tmp_path / "api" / "model_repository" / "mlp"
    assert (result.repository / "config.pbtxt").is_file() and result.report.is_file()
    assert len(seen) == len(result.outcomes) >= 4
    assert result.baseline is not None and result.baseline.config.path == "eager"
    # the live module is left as it was (eval mode, same weights)
    assert not model.training


def test_rerun_continues_the_study(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("optimize", "--model", str(models["mlp.pt2"]), "--batch-size", "4", "--out", str(out), *FAST)
    # trial caps, not budgets: the budget counts each run's wall clock (tests/test_budget.py checks it)
    first = run_cli(*args, "--budget", "10m", "--trials", "2")
    assert first.returncode == 0, first.stderr
    n1 = len(_report(out)["outcomes"])
    again = run_cli(*args, "--budget", "10m", "--trials", "2")  # cap already reached: no new trial, report rebuilt
    assert again.returncode == 0, again.stderr
    assert len(_report(out)["outcomes"]) == n1 == 2 and "resumed: 2 trials from earlier runs" in again.stderr
    more = run_cli(*args, "--budget", "10m", "--trials", "4")
    assert more.returncode == 0, more.stderr
    outcomes = _report(out)["outcomes"]
    assert len(outcomes) > n1
    numbers = [o["config"]["number"] for o in outcomes]
    assert numbers == sorted(set(numbers))
    assert sum(o["config"]["path"] == "eager" and o["config"]["number"] == 0 for o in outcomes) == 1
    assert _report(out)["cache"]["misses"] == 0 or _report(out)["cache"]["hits"] > 0


def test_other_model_in_same_out_is_refused(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_cli("optimize", "--model", str(models["mlp.onnx"]), "--budget", "5s", "--out", str(out), *FAST)
    assert first.returncode == 0, first.stderr
    other = run_cli("optimize", "--model", str(models["cnn.onnx"]), "--budget", "5s", "--out", str(out), *FAST)
    assert other.returncode == 2
    assert other.stderr.count("\n") == 1 and "another fingerprint" in other.stderr


@pytest.mark.parametrize("objective", ["latency"])
def test_latency_objective(models: dict[str, Path], tmp_path: Path, objective: str) -> None:
    out = tmp_path / "out"
    proc = run_cli("optimize", "--model", str(models["mlp.onnx"]), "--budget", "3m", "--trials", "3", "--objective", objective,
                   "--out", str(out), *FAST)
    assert proc.returncode == 0, proc.stderr
    report = _report(out)
    ok = [o for o in report["outcomes"] if o["status"] == "ok"]
    best_p99 = min(f["p99_ms"] for f in ok for f in [f["bench"]])
    assert report["winner"]["bench"]["p99_ms"] <= 3 * best_p99  # chosen on re-measured p99, not throughput
