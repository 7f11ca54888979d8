"""The parent's side of trial isolation: one worker process at a time, restarted after any death.

A trial runs in `python -m navigator.trial.worker` under a timeout and (on Linux) a memory cap; a
segfault, abort, hang or out-of-memory costs that trial only and is recorded as CRASHED or TIMEOUT
with the signal, the stage the trial was in and the last lines the worker wrote to stderr after it
(Python warnings left out: they say what a library printed, not where the trial stopped). The worker dies with its parent
(PR_SET_PDEATHSIG), so no process outlives the study, even when the parent is killed with -9.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from navigator.osutil import child_setup
from navigator.records import TrialConfig, TrialOutcome, WorkerSpec, to_dict
from navigator.settings import StudySettings
from navigator.trial.worker import STAGE_MARK, STAGE_TIME

LOAD_TIMEOUT_S = 600.0
# A Python warning's line ("file.py:12: FutureWarning: ...") and the source line it echoes after it.
WARNING_LINE = re.compile(r"^\S.*:\d+: \w*Warning: ")


class WorkerDied(Exception):
    """The worker process ended or was killed; `status` is 'timeout' or 'crashed'."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _signal_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def last_words(log: list[str], now: float, lines: int = 6) -> str:
    """Where a worker's log stops: " while <its last stage> (N s into it). Last output: <its last lines
    after that stage began, warnings left out>" (". Last output: ..." before any stage)."""
    start = max((i for i, line in enumerate(log) if line.startswith(STAGE_MARK)), default=None)
    where, after = "", log
    if start is not None:
        began, _, stage = log[start][len(STAGE_MARK):].strip().partition(" ")
        with contextlib.suppress(ValueError):
            since = datetime.datetime.strptime(began, f"{STAGE_TIME}.%f").timestamp()
            where = f" while {stage} ({now - since:.0f} s into it)"
        after = log[start + 1:]
    kept, echo = [], False  # echo: the line before was a warning, whose source line may follow
    for line in after:
        if WARNING_LINE.match(line):
            echo = True
            continue
        if not (echo and line.startswith(" ")):
            kept.append(line.strip())
        echo = False
    said = " | ".join(kept[-lines:])[-800:] or "none"
    return f"{where}. Last output: {said}"


class TrialWorker:
    """A long-lived worker that runs trials one at a time and is restarted after it dies."""

    def __init__(self, spec: WorkerSpec, settings: StudySettings, log: Path, memory_bytes: int | None = None) -> None:
        """`memory_bytes`: the worker's address-space cap (None: none)."""
        self.spec = spec
        self.settings = settings
        self.memory_bytes = memory_bytes
        self.log = log
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        logfile = open(self.log, "a")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "navigator.trial.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=logfile, text=True, env=env,
                                     preexec_fn=child_setup(self.memory_bytes))
        logfile.close()
        self._request({"op": "load", "spec": to_dict(self.spec), "settings": to_dict(self.settings)}, LOAD_TIMEOUT_S)

    def _tail(self) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return last_words(text, time.time())

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self.proc.wait()
        self.proc = None

    def _request(self, request: dict[str, Any], timeout: float) -> Any:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died already; the read below reports how
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else None
        if line is None:
            self._kill()
            raise WorkerDied("timeout", f"no answer within {timeout:.0f} s; killed{self._tail()}")
        if not line:
            code = self.proc.wait()
            self.proc = None
            raise WorkerDied("crashed", f"worker died ({_signal_name(code)}){self._tail()}")
        reply = json.loads(line)
        if reply.get("restart"):  # its CUDA context is spoilt: it exits, the next request starts a new one
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            self._kill()
        if not reply["ok"]:
            raise RuntimeError(reply["error"])
        return reply.get("result")

    def start(self) -> None:
        """Start the worker and load the source now, if it is not running (RuntimeError: the load failed)."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()

    def call(self, request: dict[str, Any], timeout: float) -> Any:
        """Send one request, starting the worker first if needed (its start is not part of `timeout`)."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        return self._request(request, timeout)

    def run(self, config: TrialConfig, timeout: float, bar: float | None = None) -> TrialOutcome:
        """One trial in the worker; `bar`: what its short first measurement must come near (None: full)."""
        from navigator.records import from_dict

        start = time.perf_counter()
        try:
            return from_dict(TrialOutcome, self.call({"op": "trial", "config": to_dict(config), "bar": bar}, timeout))
        except WorkerDied as died:
            return TrialOutcome(config, died.status, str(died), duration_s=time.perf_counter() - start)  # type: ignore[arg-type]
        except RuntimeError as exc:  # the worker could not load the source
            return TrialOutcome(config, "failed", str(exc), duration_s=time.perf_counter() - start)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None and self.proc.stdin:
            try:
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                pass
        self._kill()

    def __enter__(self) -> TrialWorker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None:  # Ctrl-C or an error mid-request: the worker may be busy, do not wait for it
            self._kill()
        else:
            self.close()
