"""A conversion path for framework-free tests, never listed to users: a test registers it under the name
"fake" in navigator.paths.EXTRA (in a worker process through the sitecustomize that `worker_env` writes).

Its model is y = 2 * x on the source's first input. A parameter makes it misbehave at one stage
("convert", "load", "call" or "triton"): `fail_at` raises a TrialError, `crash_at` aborts the process
(SIGABRT), `hang_at` sleeps for an hour, `taint_at` raises a CUDA-like error after which every later
call in the same process fails (as a broken CUDA-graph capture leaves a process). `backend` is the Triton backend its config names
(onnxruntime by default); `label` tells finalists apart in EVENTS, the in-process log of loads and calls.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from navigator.errors import TrialError
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.source import ModelSource
from navigator.cache import Cache
from navigator.triton import python_backend

NAME = "fake"
FRAMEWORKS = ("onnx", "torch", "tf", "trees")
DEVICES = ("cpu",)
TIMEOUT_S = 30.0
COST_S = 0.5
EVENTS: list[str] = []
MODULE = "tests.fakepath"
FILE = "model.fake"  # no real format: nothing reads it


TAINTED: list[str] = []  # set by taint_at: this process is spoilt for every later trial


def act(params: Params, stage: str) -> None:
    if TAINTED:
        raise RuntimeError(f"Offset increment outside graph capture encountered unexpectedly (pid {os.getpid()})")
    if params.get("taint_at") == stage:
        TAINTED.append(stage)
        raise RuntimeError("CUDA error: operation failed due to a previous error during capture")
    if params.get("fail_at") == stage:
        raise TrialError(f"fake path: asked to fail at {stage}")
    if params.get("crash_at") == stage:
        os.abort()
    if params.get("hang_at") == stage:
        time.sleep(3600)


def available() -> str | None:
    return None


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    act(params, "convert")
    d = cache.get(NAME, dict(params), lambda out: (out / FILE).write_bytes(b"fake"))
    return Artifact(NAME, d, d.name, dict(params), d / FILE)


class FakeRunner(Runner):
    def __init__(self, params: Params) -> None:
        self.params, self.label = params, str(params.get("label", ""))

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        act(self.params, "call")
        return [2 * next(iter(inputs.values()))]

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        def call() -> Any:
            EVENTS.append(f"call {self.label}")
            return self(inputs)

        return call


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    act(params, "load")
    EVENTS.append(f"load {params.get('label', '')}")
    return FakeRunner(params)


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    act(params, "triton")
    assert artifact.file is not None
    files = {FILE: artifact.file}
    if params.get("backend", "onnxruntime") == "onnxruntime":  # a twin as the ORT paths write one
        files[python_backend.SPEC] = python_backend.spec_file("onnxruntime", "cpu", dict(params))
    return TritonModel(backend=str(params.get("backend", "onnxruntime")), files=files, default_model_filename=FILE)


def worker_env(tmp: Path, root: Path) -> dict[str, str]:
    """The environment of a worker process that has the fake path registered: a sitecustomize (which
    Python imports at start-up from sys.path) adds it to navigator.paths.EXTRA."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "sitecustomize.py").write_text(
        f"from navigator import paths\npaths.EXTRA[{NAME!r}] = {MODULE!r}\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp), str(root), os.environ.get("PYTHONPATH", "")])}
