"""A real tritonserver (the python-backend server from tools/install-triton.sh) serving what navigator wrote:
answers over HTTP and gRPC against the source framework, perf_analyzer at two concurrencies, a serving
configuration loaded and measured. Skipped where no server is installed, except in CI
(NAVIGATOR_REQUIRE_TRITON=1), where a missing server fails."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from navigator.errors import UnavailableError
from navigator.records import ServingConfig
from navigator.triton import server as triton_server
from tests.conftest import run_cli


def _have_triton() -> bool:
    try:
        triton_server.find("tritonserver"), triton_server.find("perf_analyzer")
    except UnavailableError as exc:
        if os.environ.get("NAVIGATOR_REQUIRE_TRITON") == "1":
            pytest.fail(f"CI must have a Triton server: {exc}")
        return False
    return True


pytestmark = pytest.mark.skipif(not _have_triton(), reason="tritonserver not installed (tools/install-triton.sh)")


@pytest.fixture(scope="module")
def served(models, tmp_path_factory):
    """One optimize run on the MLP fixture with a python-backend deployment, served and measured."""
    out = tmp_path_factory.mktemp("serving") / "out"
    done = run_cli("optimize", "--model", str(models["mlp.pt2"]), "--budget", "60s", "--trials", "3",
                   "--path", "ort_cpu", "--batch-size", "4", "--out", str(out), "--serving", "python",
                   "--serve-check", "--concurrency", "1,4", "--no-progress", timeout=600)
    return out, done


def test_optimize_serve_check_python_deployment(served):
    out, done = served
    assert done.returncode == 0, done.stdout + done.stderr
    assert "served (python) over http: matches the source" in done.stdout
    assert "served (python) over grpc: matches the source" in done.stdout
    config = (out / "model_repository" / "mlp" / "config.pbtxt").read_text()
    assert 'backend: "python"' in config and '"onnxruntime"' in config  # RUNTIME of the twin
    report = json.loads((out / "report.json").read_text())
    serving = report["serving"]
    assert [c["protocol"] for c in serving["checks"]] == ["http", "grpc"]
    assert all(c["ok"] for c in serving["checks"])
    points = serving["default"]["points"]
    assert [p["concurrency"] for p in points] == [1, 4]
    for p in points:
        assert p["throughput"] > 0 and 0 < p["p50_ms"] <= p["p99_ms"]
        assert p["compute_ms"] > 0


def test_serve_check_command_and_wrong_answers_fail(served):
    out, _ = served
    ok = run_cli("serve-check", str(out), "--batch-size", "4", "--concurrency", "2", timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "concurrency 2:" in ok.stdout
    # the same server answers, but the reference no longer matches: exit 1, named output
    with np.load(out / "validation" / "reference.npz") as r:
        wrong = {k: r[k] + 1.0 for k in r.files}
    np.savez(out / "validation" / "reference.npz", **wrong)
    try:
        bad = run_cli("serve-check", str(out), "--concurrency", "1", timeout=300)
    finally:
        np.savez(out / "validation" / "reference.npz", **{k: v - 1.0 for k, v in wrong.items()})
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "WRONG: output output__0" in bad.stdout


def test_serve_check_bad_directory_is_exit_2(tmp_path):
    done = run_cli("serve-check", str(tmp_path / "missing"))
    assert done.returncode == 2 and done.stderr.startswith("navigator: error:")
    assert "Traceback" not in done.stderr


def test_a_serving_configuration_loads_and_is_measured(served, tmp_path):
    """Explicit model control with a config override: 2 instances, dynamic batching, 1 thread each."""
    from navigator import serving
    from navigator.triton import deployment, perf, tune

    out, _ = served
    dep = deployment.load(out / "model_repository" / "mlp")
    inputs, _ = serving.load_validation(out / "validation")
    repo = tmp_path / "repo"
    dep.write(repo)
    data = perf.input_data(inputs, True, tmp_path / "data.json")
    settings = tune.TuneSettings(4, (4,), 0.0, interval_ms=1000)
    config = ServingConfig(8, instances=2, dynamic_batching=True, max_queue_delay_us=100, threads=1)
    with triton_server.serve(repo, tmp_path / "server.log", explicit=True) as srv:
        bench = tune.Bench(srv, dep, data, tmp_path / "perf", settings)
        try:
            trial = bench(1, config)
        finally:
            bench.close()
        assert trial.error == "", trial.error
        assert trial.points[0].concurrency == 4 and trial.points[0].throughput > 0
        assert trial.score == trial.points[0].throughput
    assert not srv.alive()  # stopped on leaving
    stubs = subprocess.run(["pgrep", "-f", f"triton_python_backend_stub.*{repo}"], capture_output=True, check=False)
    assert stubs.stdout.strip() == b""


def test_ctrl_c_stops_the_server(served):
    """SIGINT in the middle of the serving search: the command ends and its tritonserver is gone."""
    import signal
    import sys
    import time

    from tests.conftest import ROOT

    out, _ = served
    repo = out / "serving" / "perf" / "repository"
    proc = subprocess.Popen([sys.executable, "-m", "navigator", "serve-check", str(out), "--tune", "--budget", "5m",
                             "--concurrency", "1"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            running = subprocess.run(["pgrep", "-f", f"tritonserver.*{repo}"], capture_output=True, check=False)
            if running.stdout.strip():
                break
            time.sleep(0.5)
        else:
            pytest.fail("the serving search's server never started")
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    finally:
        proc.kill()
    left = subprocess.run(["pgrep", "-f", f"tritonserver.*{repo}"], capture_output=True, check=False)
    assert left.stdout.strip() == b""
    assert proc.returncode != 0
