"""End to end on tree models: the CLI searches the tree paths with the library's predict as the
baseline, validates labels exactly, and writes a FIL (or onnxruntime) config that serves the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from navigator.triton.config import from_text
from tests.conftest import need_compiler, run_cli

FAST = ("--window", "0.05", "--no-progress")


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_cli_xgboost_binary_all_tree_paths(tree_models: dict[str, Path], tmp_path: Path) -> None:
    import xgboost as xgb

    need_compiler()
    out = tmp_path / "out"
    proc = run_cli("optimize", "--model", str(tree_models["xgb_binary.json"]), "--budget", "90s", "--trials", "3", "--batch-size", "16",
                   "--out", str(out), *FAST)
    assert proc.returncode == 0, proc.stderr
    report = _report(out)
    assert report["baseline"]["config"]["path"] == "tree_native" and report["outcomes"][0]["config"]["number"] == 0
    measured = {o["config"]["path"] for o in report["outcomes"] if o["status"] in ("ok", "unstable")}
    assert {"tree_native", "tree_onnx", "treelite"} <= measured
    for o in report["outcomes"]:
        if o["validation"]:
            label = next(c for c in o["validation"]["outputs"] if c["name"] == "label")
            assert label["agreement"] == 1.0 and label["ok"]
    assert "labels 100.00% agree" in (out / "report.md").read_text()
    model_dir = out / "model_repository" / "xgb_binary"
    config = from_text((model_dir / "config.pbtxt").read_text())
    winner = report["winner"]["config"]["path"]
    x = np.random.default_rng(5).standard_normal((16, 32)).astype(np.float32)
    p1 = xgb.Booster(model_file=str(tree_models["xgb_binary.json"])).inplace_predict(x)
    if winner == "tree_onnx":
        import onnxruntime as ort

        assert config.backend == "onnxruntime"
        label, proba = ort.InferenceSession(str(model_dir / "1" / "model.onnx")).run(None, {"input__0": x})
        np.testing.assert_allclose(proba[:, 1], p1, atol=1e-5)
        assert np.array_equal(label, (p1 > 0.5).astype(np.int64))
    else:
        assert config.backend == "fil"
        params = {k: v.string_value for k, v in config.parameters.items()}
        assert params["model_type"] == "xgboost_json" and params["is_classifier"] == "true"
        assert [list(o.dims) for o in config.output] == [[2]] and config.input[0].name == "input__0"
        served = xgb.Booster(model_file=str(model_dir / "1" / "xgboost.json")).inplace_predict(x)
        np.testing.assert_array_equal(served, p1)  # FIL is given the source's own model file


def test_cli_lightgbm_native_for_an_older_server(tree_models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("optimize", "--model", str(tree_models["lgb_regression.txt"]), "--budget", "8s", "--batch-size", "4",
                   "--path", "tree_native", "--triton-server", "25.02", "--out", str(out), *FAST)
    assert proc.returncode == 0, proc.stderr
    config = from_text((out / "model_repository" / "lgb_regression" / "config.pbtxt").read_text())
    params = {k: v.string_value for k, v in config.parameters.items()}
    assert config.backend == "fil" and params["model_type"] == "lightgbm"
    assert params["output_class"] == "false" and params["predict_proba"] == "false" and "algo" in params
    assert "is_classifier" not in params and [list(o.dims) for o in config.output] == [[1]]
    assert (out / "model_repository" / "lgb_regression" / "1" / "model.txt").is_file()
    assert _report(out)["settings"]["triton_server"] == "25.02"


def test_cli_pickle_needs_trust_and_forest_pickle_deploys(tree_models: dict[str, Path], tmp_path: Path) -> None:
    refused = run_cli("optimize", "--model", str(tree_models["gb_binary.pkl"]), "--budget", "5s",
                      "--out", str(tmp_path / "refused"), *FAST)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--trust-pickle" in refused.stderr
    assert not (tmp_path / "refused").exists()
    out = tmp_path / "out"
    proc = run_cli("optimize", "--model", str(tree_models["gb_binary.pkl"]), "--trust-pickle", "--budget", "8s",
                   "--path", "tree_native", "--out", str(out), *FAST)
    assert proc.returncode == 0, proc.stderr
    version = out / "model_repository" / "gb_binary" / "1"
    assert [f.name for f in version.iterdir()] == ["checkpoint.tl"]  # FIL takes a Treelite checkpoint, no pickle
    config = from_text((out / "model_repository" / "gb_binary" / "config.pbtxt").read_text())
    assert config.parameters["model_type"].string_value == "treelite_checkpoint"
    assert config.parameters["threshold"].string_value == "0.5"


def test_paths_command_lists_tree_and_tf_paths() -> None:
    proc = run_cli("paths", "--verbose")  # one line per device, framework and path
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(ln.split()[:4] == ["cpu", "trees", "tree_native", "available"] for ln in lines)
    assert any(ln.split()[:4] == ["cpu", "tf", "tf_baseline", "available"] for ln in lines)
    tf_trt = next(ln for ln in lines if ln.split()[:3] == ["cuda", "tf", "tf_trt"])
    assert "unavailable:" in tf_trt
