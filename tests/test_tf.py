"""End to end on TensorFlow models (a Keras file and a SavedModel): TensorFlow itself is the baseline,
tf2onnx and OpenVINO paths are validated against it, and the deployed config is ONNX Runtime/OpenVINO
by default or tensorflow_savedmodel for a server older than 25.03, with a warning. TensorFlow runs in
subprocesses only (the CLI, and a helper for reference outputs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from navigator.triton.config import from_text
from tests.conftest import ROOT, run_cli
from tests.repo_loader import load

FAST = ("--window", "0.05", "--no-progress")


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _keras_reference(model: Path, x: np.ndarray, tmp_path: Path) -> np.ndarray:
    np.save(tmp_path / "x.npy", x)
    code = ("import sys, numpy as np, keras; m = keras.saving.load_model(sys.argv[1]); "
            "np.save(sys.argv[3], np.asarray(m(np.load(sys.argv[2]), training=False)))")
    proc = subprocess.run([sys.executable, "-c", code, str(model), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return np.load(tmp_path / "y.npy")


def test_cli_keras_cnn_deploys_onnx_or_openvino(tf_models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("optimize", "--model", str(tf_models["cnn.keras"]), "--budget", "60s", "--batch-size", "4",
                   "--path", "tf_baseline", "--path", "ort_cpu", "--path", "tf_openvino", "--out", str(out), *FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _report(out)
    assert report["baseline"]["config"]["path"] == "tf_baseline"
    inputs = report["outcomes"][0]["config"]
    assert inputs["number"] == 0
    valid = {o["config"]["path"] for o in report["outcomes"] if o["status"] in ("ok", "unstable")}
    assert {"tf_baseline", "ort_cpu", "tf_openvino"} <= valid
    model_dir = out / "model_repository" / "cnn"
    config, run = load(model_dir)
    assert config.backend in ("onnxruntime", "openvino") and report["winner"]["config"]["path"] != "tf_baseline"
    assert [i.name for i in config.input] == ["image"] and list(config.input[0].dims) == [32, 32, 3]
    assert [o.name for o in config.output] == ["logits"]
    x = np.random.default_rng(7).standard_normal((4, 32, 32, 3)).astype(np.float32)
    (got,) = run({"image": x})
    np.testing.assert_allclose(got, _keras_reference(tf_models["cnn.keras"], x, tmp_path), atol=5e-2, rtol=5e-2)


def test_cli_savedmodel_for_an_older_server(tf_models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("optimize", "--model", str(tf_models["cnn_savedmodel"]), "--budget", "8s", "--batch-size", "2",
            "--path", "tf_baseline", *FAST)
    current = run_cli(*args, "--out", str(tmp_path / "current"))
    assert current.returncode == 1 and "could be written as a Triton model" in current.stdout, current.stderr[-2000:]
    notes = _report(tmp_path / "current")["notes"]
    assert any("TensorFlow backend is deprecated" in n for n in notes)
    proc = run_cli(*args, "--triton-server", "25.02", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    model_dir = out / "model_repository" / "cnn_savedmodel"
    config = from_text((model_dir / "config.pbtxt").read_text())
    assert config.platform == "tensorflow_savedmodel"
    assert [o.name for o in config.output] == ["output_0"]  # the serving signature's names
    assert (model_dir / "1" / "model.savedmodel" / "saved_model.pb").is_file()
    assert any(n.startswith("warning: tensorflow_savedmodel") for n in _report(out)["notes"])
    assert "## Notes" in (out / "report.md").read_text()


def test_damaged_savedmodel_and_keras_files_are_one_line_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken_savedmodel"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a protobuf")
    proc = run_cli("optimize", "--model", str(broken), "--budget", "5s", "--out", str(tmp_path / "o1"), *FAST)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "SavedModel" in proc.stderr
    keras_file = tmp_path / "model.keras"
    keras_file.write_bytes(b"PK not really")
    proc = run_cli("optimize", "--model", str(keras_file), "--budget", "5s", "--out", str(tmp_path / "o2"), *FAST)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Keras could not load it" in proc.stderr
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    proc = run_cli("optimize", "--model", str(empty_dir), "--budget", "5s", "--out", str(tmp_path / "o3"), *FAST)
    assert proc.returncode == 2 and "nor a TensorFlow SavedModel" in proc.stderr
