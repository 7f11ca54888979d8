"""`--objective pareto`, `navigator export` and `--latency-limit-ms` on the command line, on a one-MatMul
ONNX model built here (two short runs)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from tests.conftest import run_cli
from tests.test_shared_stale import tiny_onnx

QUICK = ("--batch-size", "4", "--path", "ort_cpu", "--window", "0.03", "--no-progress")


@pytest.fixture(scope="module")
def pareto(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("pareto")
    model = tiny_onnx(root / "m.onnx")
    run = run_cli("optimize", "--model", str(model), "--budget", "40s", "--trials", "4", "--objective", "pareto",
                  "--out", str(root / "out"), *QUICK)
    assert run.returncode == 0, run.stderr
    return root / "out", run.stdout


def test_pareto_is_a_two_objective_study_whose_front_the_report_lists(pareto: tuple[Path, str]) -> None:
    out, stdout = pareto
    study = optuna.load_study(study_name="navigator", storage=f"sqlite:///{out / 'study.db'}")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    told = [t.values for t in study.trials if t.state.name == "COMPLETE"]
    assert told and all(len(v) == 2 for v in told)
    md = (out / "report.md").read_text()
    assert "## Pareto front (throughput, p99)" in md and " **winner** | ort_cpu | 4 |" in md
    assert "Pareto front" in (out / "report.html").read_text()
    assert "triton repository:" in stdout


def test_export_writes_any_trial_through_the_deploy_code(pareto: tuple[Path, str], tmp_path: Path) -> None:
    import json

    out, _ = pareto
    winner = json.loads((out / "report.json").read_text())["winner"]["config"]["number"]
    run = run_cli("export", str(out), "--trial", str(winner), "--to", str(tmp_path / "repo"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"triton repository: {tmp_path / 'repo'}"
    written = out / "model_repository" / "m" / "config.pbtxt"
    assert (tmp_path / "repo" / "m" / "config.pbtxt").read_text() == written.read_text()
    other = next(n for n in range(4) if n != winner)
    assert run_cli("export", str(out), "--trial", str(other)).returncode == 0
    assert (out / "export" / f"trial-{other}" / "m" / "config.pbtxt").is_file()


@pytest.mark.parametrize(("args", "message"), [
    (("--trial", "99"), "has no trial 99 (its trials are 0-3)"),
    (("--trial", "0", "--to", "{out}"), "exists; remove it or pass another --to"),
])
def test_export_refuses_in_one_line(pareto: tuple[Path, str], args: tuple[str, ...], message: str) -> None:
    out, _ = pareto
    before = sorted(p.name for p in out.iterdir())
    run = run_cli("export", str(out), *(a.format(out=out) for a in args))
    assert run.returncode == 2 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == before  # no staging directory left behind


def test_export_of_a_missing_run_is_one_line(tmp_path: Path) -> None:
    run = run_cli("export", str(tmp_path / "nothing"), "--trial", "0")
    assert run.returncode == 2 and "is not the output directory of a navigator optimize run" in run.stderr


def test_no_trial_within_the_latency_limit_writes_no_repository(tmp_path: Path) -> None:
    model = tiny_onnx(tmp_path / "m.onnx")
    run = run_cli("optimize", "--model", str(model), "--budget", "30s", "--trials", "2", "--latency-limit-ms",
                  "0.000001", "--out", str(tmp_path / "out"), *QUICK)
    assert run.returncode == 1, run.stderr
    assert "no measured trial meets p99 <= 1e-06 ms: the lowest p99 was" in run.stdout
    assert not (tmp_path / "out" / "model_repository").exists()
    assert "ok, over p99 <= 1e-06 ms" in (tmp_path / "out" / "report.md").read_text()
    assert "FutureWarning" not in run.stderr
