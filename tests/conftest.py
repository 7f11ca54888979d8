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
