"""Operating-system helpers shared across layers: atomic file writes and the set-up of child processes
(trial workers, tritonserver) so that none outlives navigator."""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Callable

PR_SET_PDEATHSIG = 1


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary name and a rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def child_setup(memory_bytes: int | None) -> Callable[[], None]:
    """A `preexec_fn` for subprocess.Popen: the child dies with its parent (Linux), runs under an
    address-space cap when `memory_bytes` is given, and leads its own process group."""
    def setup() -> None:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the parent, whatever kills it
        if memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        os.setpgid(0, 0)  # own process group: a kill reaches the converters it may have started

    return setup
