"""StudySettings and LocalSettings, parsed once at the edge (CLI, Python API, a joining worker), and the
parsers of their string forms."""

from __future__ import annotations

import os
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from navigator.errors import InputError

ObjectiveName = Literal["throughput", "latency", "pareto"]
OBJECTIVE_NAMES: tuple[str, ...] = typing.get_args(ObjectiveName)  # navigator.objective.OBJECTIVES' keys
Sampler = Literal["tpe", "random", "grid"]
Device = Literal["cpu", "cuda"]
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}


def parse_budget(text: str | float | int) -> float:
    """'90s', '10m', '2h', '1h30m' or a number of seconds -> seconds (> 0)."""
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        cleaned = text.strip().lower().replace(" ", "")
        parts = re.findall(r"(\d+(?:\.\d+)?)([a-z]*)", cleaned)
        if not cleaned or "".join(n + u for n, u in parts) != cleaned:
            raise InputError(f"budget {text!r} is not a duration like 90s, 10m or 2h")
        seconds = 0.0
        for number, unit in parts:
            if unit and unit not in _UNITS:
                raise InputError(f"budget {text!r}: unknown unit {unit!r} (use s, m or h)")
            seconds += float(number) * _UNITS.get(unit, 1)
    if not seconds > 0:
        raise InputError(f"budget {text!r} must be longer than zero")
    return seconds


def parse_memory(text: str | int | None) -> int | None:
    """'8G', '512M', '0' (no cap) or bytes -> bytes or None."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", str(text).lower())
    if not match:
        raise InputError(f"memory {text!r} is not a size like 8G or 512M")
    value = float(match.group(1)) * 1024 ** " kmgt".index(match.group(2) or " ")
    return int(value) or None


def default_memory_cap() -> int | None:
    """80% of physical memory: a runaway trial fails alone instead of pushing the machine into swap."""
    try:
        return int(0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def parse_batch_sizes(text: str | int) -> tuple[int, ...]:
    """'8' -> (8,); '1:64' -> powers of two from 1 to 64; '1,8,32' -> those sizes."""
    spec = str(text).strip()
    try:
        if ":" in spec:
            low, high = (int(v) for v in spec.split(":"))
            if low > high:
                raise InputError(f"batch size range {text!r} runs backwards; write LOW:HIGH")
            sizes = [b for b in (2**i for i in range(16)) if low <= b <= high] or [low]
            sizes = sorted({low, *sizes, high})
        else:
            sizes = sorted({int(v) for v in spec.split(",")})
    except ValueError:
        raise InputError(f"batch size {text!r} is not N, LOW:HIGH or N,M,...") from None
    if not sizes or sizes[0] < 1:
        raise InputError(f"batch size {text!r}: sizes must be at least 1")
    return tuple(sizes)


def parse_metric_drop(text: str) -> tuple[float, bool]:
    """'0.5%' -> (0.005, True): a share of the source's metric; '0.01' -> (0.01, False): in the metric's
    own units. Either is at least 0; a share at most 100%."""
    spec = str(text).strip()
    relative = spec.endswith("%")
    try:
        value = float(spec[:-1] if relative else spec)
    except ValueError:
        raise InputError(f"--max-metric-drop {text!r} is not a number or a percentage like 0.5%") from None
    if not 0 <= value < float("inf") or (relative and value > 100):
        raise InputError(f"--max-metric-drop {text!r} must be at least 0" + (" and at most 100%" if relative else ""))
    return (value / 100, True) if relative else (value, False)


@dataclass(frozen=True)
class StudySettings:
    """What a study is, besides its model: the same on every machine of a shared study (published to it),
    recorded in the report and read back by `navigator check --model`."""

    budget_s: float = 600.0
    trials: int | None = None
    batch_sizes: tuple[int, ...] = (1,)
    objective: ObjectiveName = "throughput"
    device: Device = "cpu"
    sampler: Sampler = "tpe"
    paths: tuple[str, ...] | None = None
    atol: float | None = None
    rtol: float | None = None
    seed: int = 0
    window_s: float = 0.25
    window_calls: int = 0  # > 0: count-based benchmark windows of this many calls instead of window_s
    screen: bool = True  # a short first measurement; in full only where it could reach the top 3
    trial_timeout_s: float | None = None  # None: each path's own TIMEOUT_S
    noise_atol: float = 0.0  # added to every atol: twice the source model's own run-to-run difference
    finalists: int = 3  # top trials re-measured, interleaved with the baselines, to pick the winner
    rounds: int = 5  # interleaved rounds of that re-measurement
    # Triton release the configs target ("25.02"); None = a current server. Older releases get the
    # configs only they take (tensorflow_savedmodel before 25.03, FIL's pre-25.09 parameter names).
    triton_server: str | None = None
    # dynamic_batching {} in the written config of every model with max_batch_size > 0 (False: none)
    dynamic_batching: bool = True
    # A traced artifact (TorchScript trace, the tracing ONNX exporter) of a model whose control flow
    # depends on its input values (a TracerWarning, or torch.export's data-dependent guard) replays the
    # branches the samples took: not eligible to win unless allowed.
    allow_traced: bool = False
    # p99 limit of the search (ms): a trial above it keeps its figures but can never win or be a finalist
    latency_limit_ms: float | None = None
    # The user metric's value on the source model (measured once, before the search) and how far a
    # trial's may fall below it (parse_metric_drop's text); a trial further below is invalid.
    metric_source: float | None = None
    max_metric_drop: str | None = None
    # A directory of <path>.yaml files that narrow the packaged search spaces (search/narrowing.py)
    search_space: str | None = None

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVE_NAMES:
            raise InputError(f"objective {self.objective!r} is not {' or '.join(OBJECTIVE_NAMES)}")
        if self.device not in ("cpu", "cuda"):
            raise InputError(f"device {self.device!r} is not cpu or cuda")
        if self.sampler not in ("tpe", "random", "grid"):
            raise InputError(f"sampler {self.sampler!r} is not tpe, random or grid")
        if self.trials is not None and self.trials < 1:
            raise InputError(f"--trials {self.trials} must be at least 1")
        if self.trial_timeout_s is not None and self.trial_timeout_s <= 0:
            raise InputError("--trial-timeout must be longer than zero")
        if self.finalists < 1 or self.rounds < 1:
            raise InputError("--finalists and --rounds must be at least 1")
        if self.window_s <= 0:
            raise InputError("the benchmark window must be longer than zero")
        if self.latency_limit_ms is not None and not self.latency_limit_ms > 0:
            raise InputError(f"--latency-limit-ms {self.latency_limit_ms}: expected a positive number")
        if self.triton_server is not None:
            parse_release(self.triton_server)
        if self.max_metric_drop is not None:
            parse_metric_drop(self.max_metric_drop)


@dataclass(frozen=True)
class LocalSettings:
    """What one process of a study decides for itself: where it writes, whether it shows progress, the
    memory cap of its trial worker (Linux address space; None: no cap)."""

    out: Path
    show_progress: bool = True
    memory_bytes: int | None = None


def memory_cap(device: str, trial_memory: str | int | None) -> int | None:
    """The trial worker's cap from its string form; 'default' is 80% of RAM, none on a GPU (CUDA maps
    far more address space than it uses)."""
    if device == "cuda":
        return None
    return default_memory_cap() if trial_memory == "default" else parse_memory(trial_memory)


def parse_release(text: str) -> tuple[int, int]:
    """'25.02' -> (25, 2): a Triton release number YY.MM."""
    match = re.fullmatch(r"\s*(\d{2})\.(\d{2})\s*", str(text))
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise InputError(f"--triton-server {text!r} is not a Triton release like 25.02 (YY.MM)")
    return int(match.group(1)), int(match.group(2))
