"""A real tritonserver on 127.0.0.1 with free ports, started for a repository and always stopped.

The binaries come from NAVIGATOR_TRITONSERVER / NAVIGATOR_PERF_ANALYZER, else from the directory
tools/install-triton.sh fills (~/.cache/navigator/triton, or NAVIGATOR_TRITON_HOME), else from PATH.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from navigator.errors import ServeError, UnavailableError

INSTALL_HINT = "run tools/install-triton.sh (or set NAVIGATOR_TRITONSERVER / NAVIGATOR_PERF_ANALYZER)"


def tools_home() -> Path:
    return Path(os.environ.get("NAVIGATOR_TRITON_HOME") or Path.home() / ".cache" / "navigator" / "triton")


def find(tool: str) -> Path:
    """The tritonserver or perf_analyzer executable; UnavailableError naming how to get it."""
    env = os.environ.get(f"NAVIGATOR_{tool.upper()}")
    for candidate in (env, tools_home() / "bin" / tool, shutil.which(tool)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise UnavailableError(f"{tool} not found: {INSTALL_HINT}")


def backend_directory(server: Path) -> Path:
    """Where the server's backends are: NAVIGATOR_TRITON_BACKENDS, next to the binary, or Triton's default."""
    env = os.environ.get("NAVIGATOR_TRITON_BACKENDS")
    for candidate in (env, server.parent.parent / "backends", "/opt/tritonserver/backends"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise UnavailableError(f"no Triton backend directory next to {server}: set NAVIGATOR_TRITON_BACKENDS")


def backends(server: Path) -> set[str]:
    """Names of the backends this server has (python, onnxruntime, ...)."""
    return {d.name for d in backend_directory(server).iterdir() if d.is_dir()}


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    log: Path

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        wanted = [t for t in text if t[:1] in ("E", "W") or "rror" in t] or text
        return " | ".join(t.strip() for t in wanted[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None


def _wait_ready(server: Server, model: str | None, timeout_s: float) -> None:
    import tritonclient.http as http

    client = http.InferenceServerClient(server.http_url, connection_timeout=2.0, network_timeout=5.0)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if not server.alive():
                raise ServeError(f"tritonserver exited with code {server.process.returncode}: {server.log_tail()}")
            try:
                if client.is_server_ready() and (model is None or client.is_model_ready(model)):
                    return
            except Exception:  # not listening yet
                pass
            time.sleep(0.25)
    finally:
        client.close()
    raise ServeError(f"tritonserver not ready after {timeout_s:.0f}s: {server.log_tail()}")


def stop(server: Server, grace_s: float = 15.0) -> None:
    """SIGTERM to the server's process group (stubs included), SIGKILL after the grace period."""
    if not server.alive():
        return
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(server.process.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def serve(repository: Path, log: Path, *, model: str | None = None, explicit: bool = False,
          timeout_s: float = 180.0) -> Iterator[Server]:
    """A tritonserver serving `repository` (HTTP + gRPC on 127.0.0.1, no metrics), ready when entered,
    stopped when left, on errors and Ctrl-C too; it also dies with this process (PR_SET_PDEATHSIG).
    explicit=True starts it with --model-control-mode explicit and no model loaded."""
    from navigator.osutil import child_setup

    binary = find("tritonserver")
    http_port, grpc_port = free_port(), free_port()
    while grpc_port == http_port:
        grpc_port = free_port()
    args = [str(binary), f"--model-repository={repository.resolve()}",
            f"--backend-directory={backend_directory(binary)}", "--http-address=127.0.0.1",
            "--grpc-address=127.0.0.1", f"--http-port={http_port}", f"--grpc-port={grpc_port}",
            "--allow-metrics=false", "--exit-timeout-secs=10", "--strict-readiness=true"]
    if explicit:
        args.append("--model-control-mode=explicit")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as sink:
        process = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},  # no litter in the repo
                                   preexec_fn=child_setup(None))
    server = Server(process, http_port, grpc_port, log)
    previous = _stop_on_signals(server)
    try:
        _wait_ready(server, model, timeout_s)
        yield server
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop(server)


def _stop_on_signals(server: Server) -> dict[int, Any]:
    """Ctrl-C or SIGTERM stop the server at once, wherever the main thread is blocked (an HTTP call, a
    perf_analyzer run), then take their usual course; returns the handlers to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}

    def on_signal(signum: int, frame: Any) -> None:
        stop(server, grace_s=5.0)
        handler = previous.get(signum)
        if callable(handler):
            handler(signum, frame)  # Python's SIGINT handler: KeyboardInterrupt
        raise SystemExit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, on_signal)
    return previous
