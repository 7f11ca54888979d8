"""Shared fixtures: the model files made by fixtures/make.py, and a way to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from fixtures.make import write_all

    return write_all(tmp_path_factory.mktemp("models"))


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m navigator ARGS` in a subprocess, as a user would run it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "navigator", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


@pytest.fixture(scope="session")
def tree_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tree fixtures of fixtures/make.py (XGBoost, LightGBM, scikit-learn)."""
    from fixtures.make import write_trees

    return write_trees(tmp_path_factory.mktemp("trees"))


@pytest.fixture(scope="session")
def tf_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The Keras CNN of fixtures/make.py as cnn.keras and cnn_savedmodel/, made in a subprocess so
    that TensorFlow stays out of the test process (which runs PyTorch too)."""
    out = tmp_path_factory.mktemp("tf")
    code = "import sys; from pathlib import Path; from fixtures.make import write_tf; write_tf(Path(sys.argv[1]))"
    proc = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {"cnn.keras": out / "cnn.keras", "cnn_savedmodel": out / "cnn_savedmodel"}


def need_compiler() -> None:
    """The treelite path compiles with gcc: skip without one, fail in CI (.ci/setup.d/30-gcc.sh)."""
    import shutil

    if shutil.which("gcc") or shutil.which("cc"):
        return
    if os.environ.get("NAVIGATOR_REQUIRE_GCC"):
        pytest.fail("no C compiler, and NAVIGATOR_REQUIRE_GCC is set")
    pytest.skip("no C compiler for the treelite path")
