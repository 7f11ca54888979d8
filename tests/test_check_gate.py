"""`navigator check --model` end to end: the candidate is optimized with the baseline's settings and both
winners are re-measured interleaved. A planted regression (the same network with 15 more layers, about 10x the work, so that
it stands out of a loaded machine's noise) exits 1;
the unchanged model exits 0 on every one of repeated runs (no flapping on a busy machine)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import run_cli

FAST = ("--path", "eager", "--path", "ort_cpu")


def _model(path: Path, hidden_layers: int) -> Path:
    import torch
    from torch import nn

    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(64, 512), nn.ReLU()]
    for _ in range(hidden_layers):
        layers += [nn.Linear(512, 512), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(512, 8)).eval()
    example = (torch.randn(8, 64),)
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.export.save(torch.export.export(model, example, dynamic_shapes=({0: batch},)), str(path))
    return path


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("gate")
    fast, slow = _model(root / "model.pt2", 1), _model(root / "model_slow.pt2", 16)
    proc = run_cli("optimize", "--model", str(fast), "--budget", "15s", "--batch-size", "8", "--out",
                   str(root / "base"), "--window", "0.05", "--no-progress", *FAST)
    assert proc.returncode == 0, proc.stderr
    return root / "base" / "report.json", fast, slow


def test_planted_regression_exits_1(baseline: tuple[Path, Path, Path], tmp_path: Path) -> None:
    report, _, slow = baseline
    proc = run_cli("check", "--baseline", str(report), "--model", str(slow), "--budget", "15s",
                   "--out", str(tmp_path / "cand"), "--junit", str(tmp_path / "junit.xml"), *FAST)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "regression beyond measurement noise" in proc.stdout and "interleaved" in proc.stdout
    failed = {c.get("name") for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
              if c.find("failure") is not None}
    assert "throughput" in failed
    assert (tmp_path / "cand" / "report.html").is_file()  # the candidate's own reports are kept


def test_same_model_does_not_flap(baseline: tuple[Path, Path, Path], tmp_path: Path) -> None:
    report, fast, _ = baseline
    codes = []
    for i in range(3):
        proc = run_cli("check", "--baseline", str(report), "--model", str(fast), "--budget", "10s",
                       "--out", str(tmp_path / f"cand{i}"), *FAST)
        codes.append(proc.returncode)
        assert proc.returncode in (0, 1), proc.stderr
        assert proc.returncode == 0, proc.stdout
    assert codes == [0, 0, 0]


def test_model_mode_bad_input_exits_2(baseline: tuple[Path, Path, Path], tmp_path: Path) -> None:
    report, _, _ = baseline
    missing = run_cli("check", "--baseline", str(report), "--model", str(tmp_path / "nope.pt2"))
    assert missing.returncode == 2 and "navigator: error:" in missing.stderr
    rounds = run_cli("check", "--baseline", str(report), "--model", str(baseline[1]), "--rounds", "1")
    assert rounds.returncode == 2 and "rounds" in rounds.stderr
