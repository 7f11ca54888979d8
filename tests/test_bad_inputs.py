"""Walks the table in docs/bad-inputs.md: each row ends in exit 2, one line, no traceback, nothing written."""

from __future__ import annotations

import pickle
import re
import shlex
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import ROOT, run_cli

TABLE = (ROOT / "docs" / "bad-inputs.md").read_text()
ROWS = [(m.group(1).strip(), m.group(2), m.group(3)) for m in
        re.finditer(r"^\| ([^|`]+) \| `([^`]+)` \| `([^`]+)` \|$", TABLE, re.M)]


class Marker:
    """Unpickling this writes a file: proof that a refused pickle was never opened."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __setstate__(self, state: dict) -> None:
        Path(state["path"]).write_text("unpickled")
        self.__dict__.update(state)


@pytest.fixture(scope="module")
def files(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("bad")
    f = {"tmp": str(tmp), **{k: str(v) for k, v in models.items()}}
    (tmp / "empty.pt").write_bytes(b"")
    (tmp / "text.pt").write_text("not a model\n")
    (tmp / "truncated.onnx").write_bytes(models["mlp.onnx"].read_bytes()[:700])
    (tmp / "truncated.pt2").write_bytes(models["mlp.pt2"].read_bytes()[:4000])
    with zipfile.ZipFile(tmp / "archive.pt", "w") as z:
        z.writestr("readme.txt", "hello")
    from fixtures.make import mlp

    model, example = mlp()
    torch.onnx.export(model, example, str(tmp / "opset11.onnx"), opset_version=11, dynamo=False)
    torch.save({"model": Marker(str(tmp / "unpickled.marker"))}, tmp / "pickle.pt")
    torch.save(model.state_dict(), tmp / "weights.pt")
    (tmp / "forest.pkl").write_bytes(pickle.dumps({"model": Marker(str(tmp / "unpickled.marker"))}))
    (tmp / "damaged.json").write_text('{"learner": {"broken": true}}')
    (tmp / "damaged_lgb.txt").write_text("tree\nversion=v4\nnum_class=oops\n")
    np.savez(tmp / "wrong.npz", other=np.zeros((2, 64), np.float32), extra=np.zeros((2, 64), np.float32))
    np.savez(tmp / "empty_rows.npz", input_0=np.zeros((0, 64), np.float32))
    np.savez(tmp / "float64.npz", input_0=np.zeros((2, 64), np.float64))
    np.savez(tmp / "features.npz", features=np.zeros((2, 64), np.float32))
    (tmp / "metric.py").write_text("def top(runner):\n    return 1.0\n\ndef boom(runner):\n    raise RuntimeError('no "
                                   "labels')\n\ndef nan(runner):\n    return float('nan')\n\ndef text(runner):\n    return 'high'\n")
    f["metric.py"] = str(tmp / "metric.py")
    (tmp / "otherfiles").mkdir()
    (tmp / "otherfiles" / "keep.txt").write_text("mine")
    study = tmp / "mlp_study"
    done = run_cli("optimize", "--model", str(models["mlp.onnx"]), "--budget", "3s", "--trials", "2",
                   "--out", str(study), "--window", "0.05", "--no-progress")
    assert done.returncode == 0, done.stderr
    for name in ("empty.pt", "text.pt", "truncated.onnx", "truncated.pt2", "archive.pt", "opset11.onnx",
                 "pickle.pt", "weights.pt", "forest.pkl", "damaged.json", "damaged_lgb.txt", "wrong.npz",
                 "empty_rows.npz", "float64.npz", "features.npz", "otherfiles", "mlp_study"):
        f[name] = str(tmp / name)
    return f


def _listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.is_dir() else []


def test_table_is_read() -> None:
    assert len(ROWS) >= 30


@pytest.mark.parametrize(("case", "arguments", "needle"), ROWS, ids=[r[0] for r in ROWS])
def test_bad_input(case: str, arguments: str, needle: str, files: dict[str, str], tmp_path: Path) -> None:
    args = shlex.split(re.sub(r"\{([^}]+)\}", lambda m: files[m.group(1)], arguments))
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    out = Path(args[args.index("--out") + 1])
    before = _listing(out)
    existed = out.exists()
    proc = run_cli("optimize", *args, "--window", "0.05", "--no-progress")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("navigator: error:") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr, proc.stderr
    assert out.exists() == existed and _listing(out) == before
    assert not Path(files["tmp"], "unpickled.marker").exists()


def test_api_raises_input_error(models: dict[str, Path], tmp_path: Path) -> None:
    import navigator

    with pytest.raises(navigator.InputError, match="is not a duration"):
        navigator.optimize(str(models["mlp.onnx"]), budget="soon", out=tmp_path / "o")
    with pytest.raises(navigator.InputError, match="trust-pickle"):
        navigator.optimize(_pickled(tmp_path), out=tmp_path / "o",
                           input_spec="x:float32:-1x16")
    assert not (tmp_path / "o").exists()


def _pickled(tmp: Path) -> str:
    torch.save(torch.nn.Linear(16, 2), tmp / "lin.pt")
    return str(tmp / "lin.pt")


def test_nondeterministic_model_is_reported_and_tolerated(tmp_path: Path) -> None:
    import navigator

    class Noisy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(16, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x) + 1e-3 * torch.rand(x.shape[0], 4)

    result = navigator.optimize(Noisy().eval(), torch.randn(4, 16), budget="60s", out=tmp_path / "o", trials=3,
                                progress=False, window_s=0.05, paths=["eager", "ort_cpu"])
    import json

    report = json.loads(result.report.read_text())
    assert 0 < report["settings"]["noise_atol"] < 1e-2
    assert result.best is not None
    ort = [o for o in result.outcomes if o.config.path == "ort_cpu"]
    assert ort and all(o.status in ("ok", "unstable") for o in ort)
