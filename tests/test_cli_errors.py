"""Bad input ends in one line on stderr, exit code 2, and no output directory; `--help` is instant."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import run_cli


def _bad_files(tmp: Path, models: dict[str, Path]) -> dict[str, tuple[list[str], str]]:
    empty = tmp / "empty.pt"
    empty.write_bytes(b"")
    text = tmp / "notes.pt"
    text.write_text("this is not a model\n")
    corrupt = tmp / "corrupt.onnx"
    corrupt.write_bytes(models["mlp.onnx"].read_bytes()[:500])
    pickled = tmp / "pickled.pt"
    torch.save(torch.nn.Linear(2, 2), pickled)
    wrong_data = tmp / "wrong.npz"
    np.savez(wrong_data, other=np.zeros((2, 64), np.float32))
    return {
        "missing file": (["--model", str(tmp / "nope.pt")], "no such file"),
        "empty file": (["--model", str(empty)], "empty"),
        "text named .pt": (["--model", str(text)], "not a PyTorch model"),
        "corrupt onnx": (["--model", str(corrupt)], "not a valid ONNX model"),
        "pickle untrusted": (["--model", str(pickled), "--input-spec", "input:float32:-1x2"], "--trust-pickle"),
        "malformed spec": (["--model", str(models["cnn.ts.pt"]), "--input-spec", "image:float32"], "name:dtype:shape"),
        "spec wrong rank": (["--model", str(models["cnn.ts.pt"]), "--input-spec", "image:float32:-1x3x32"], "fails on inputs"),
        "spec wrong name": (["--model", str(models["cnn.ts.pt"]), "--input-spec", "x:float32:-1x3x32x32"], "do not match"),
        "no spec": (["--model", str(models["cnn.ts.pt"])], "--input-spec"),
        "wrong npz": (["--model", str(models["mlp.onnx"]), "--input-data", str(wrong_data)], "input data"),
        "bad budget": (["--model", str(models["mlp.onnx"]), "--budget", "soon"], "budget"),
        "bad batch": (["--model", str(models["mlp.onnx"]), "--batch-size", "0"], "batch size"),
        "unknown path": (["--model", str(models["mlp.onnx"]), "--path", "warp_drive"], "unknown conversion path"),
        "bad objective": (["--model", str(models["mlp.onnx"]), "--objective", "fame"], "objective"),
    }


CASES = ["missing file", "empty file", "text named .pt", "corrupt onnx", "pickle untrusted", "malformed spec",
         "spec wrong rank", "spec wrong name", "no spec", "wrong npz", "bad budget", "bad batch", "unknown path",
         "bad objective"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case: str, models: dict[str, Path], tmp_path: Path) -> None:
    args, needle = _bad_files(tmp_path, models)[case]
    out = tmp_path / "out"
    budget = [] if "--budget" in args else ["--budget", "5s"]
    proc = run_cli("optimize", *args, *budget, "--out", str(out), "--no-progress")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("navigator: error:"), proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


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
