"""A trusted pickle runs; `import navigator` and `--help` stay light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from tests.conftest import run_cli


def test_trusted_pickle_runs(tmp_path: Path) -> None:
    from fixtures.make import mlp

    model, _ = mlp()
    file = tmp_path / "mlp.pt"
    torch.save(model, file)
    out = tmp_path / "out"
    proc = run_cli("optimize", "--model", str(file), "--trust-pickle", "--input-spec", "features:float32:-1x64",
                   "--budget", "6s", "--path", "eager", "--path", "ort_cpu", "--out", str(out), "--window", "0.05",
                   "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert (out / "model_repository" / "mlp" / "config.pbtxt").is_file()


def test_import_and_help_stay_light() -> None:
    heavy = ["torch", "onnx", "onnxruntime", "openvino", "tensorflow", "optuna", "xgboost", "tensorrt", "scipy"]
    code = ("import sys, navigator; heavy = %r; loaded = [m for m in heavy if m in sys.modules]; "
            "assert not loaded, loaded" % heavy)
    subprocess.run([sys.executable, "-c", code], check=True)
    code = ("import sys; from navigator.cli import app; sys.argv = ['navigator', '--help']\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            "heavy = %r; loaded = [m for m in heavy if m in sys.modules]; assert not loaded, loaded" % heavy)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "optimize" in proc.stdout
