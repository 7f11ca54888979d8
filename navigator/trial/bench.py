"""Benchmark harness in perf_analyzer's manner: warm-up, then timed windows until the last
`STABLE_WINDOWS` agree within `stability` (max/min of throughput and of p50 latency), with a cap."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from navigator.records import Bench, IOSpec

STABLE_WINDOWS = 3  # perf_analyzer's default: the last 3 windows decide stability
MIN_CALLS_PER_WINDOW = 3
SCREEN_MARGIN = 0.15  # how far behind the bar a short first figure may be and still be measured in full


def uncounted_rows(io: IOSpec, outputs: list[np.ndarray], batch: int) -> str:
    """Why a benchmark of one call as `batch` rows would count rows the model did not compute ("" when
    it would not): a dynamic-batch model must return `batch` rows in every output."""
    if not io.batched:
        return ""  # one call is one inference; batches_taken() keeps such models at batch 1
    for spec, out in zip(io.outputs, outputs):
        rows = np.shape(out)[0] if np.ndim(out) else None
        if rows != batch:
            return (f"output {spec.name!r} has {'no batch axis' if rows is None else f'{rows} rows'} for a batch of "
                    f"{batch} (shape {list(np.shape(out))}): throughput at this batch would count rows never computed")
    return ""


Timer = Callable[[Callable[[], Any]], float]  # runs one call, returns its seconds


def host_timer(call: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def cuda_timer() -> Timer | None:
    """A timer of CUDA events recorded on the current stream before and after the call (the GPU's own
    clock, free of the host's timer and scheduling jitter), or None where torch sees no CUDA device.
    The calls still end synchronised, so launch gaps and host work inside the call are counted."""
    import sys

    torch = sys.modules.get("torch")  # only where a runner loaded it: never imported for this
    if torch is None or not torch.cuda.is_available():
        return None
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def timed(call: Callable[[], Any]) -> float:
        start.record()
        call()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end)) / 1e3

    return timed


def _window(call: Callable[[], Any], window_s: float, calls: int = 0, timer: Timer = host_timer) -> np.ndarray:
    """Per-call latencies (seconds, by `timer`) over one window: `calls` calls when given (count
    windows), else at least window_s seconds of wall clock and MIN_CALLS_PER_WINDOW calls (time windows)."""
    lat = []
    start = time.perf_counter()
    while True:
        lat.append(timer(call))
        if (len(lat) >= calls) if calls else (time.perf_counter() - start >= window_s and len(lat) >= MIN_CALLS_PER_WINDOW):
            return np.asarray(lat)


def warm_up(call: Callable[[], Any], seconds: float) -> None:
    """Run `call` for `seconds` (lazy initialisation, allocators, caches, oneDNN primitives)."""
    _window(call, seconds)


def _agree(values: list[float], stability: float) -> bool:
    low, high = min(values), max(values)
    return low > 0 and high / low <= 1.0 + stability


def screen(call: Callable[[], Any], batch_size: int, window_s: float = 0.25, window_calls: int = 0,
           timer: Timer | None = None) -> Bench:
    """A low-fidelity figure: half a window of warm-up, then one window (never `stable`). Enough to
    tell a configuration far behind the leaders from one that could join them."""
    warm_up(call, window_s / 2)
    lat = _window(call, window_s, window_calls, timer or host_timer)
    return _summary([lat], batch_size, 1, stable=False, clock=_clock_name(timer))


def could_lead(quick: Bench, bar: float, objective: str) -> bool:
    """Whether a short first figure is near enough `bar` (throughput per second, or p99 ms) for a full
    measurement. For latency its p50 is compared: the p99 of one short window is noise, and a p50
    already behind the bar's p99 leaves no chance."""
    if objective == "throughput":
        return quick.throughput * (1 + SCREEN_MARGIN) >= bar
    return quick.p50_ms <= bar * (1 + SCREEN_MARGIN)


def _clock_name(timer: Timer | None) -> str:
    return "host" if timer in (None, host_timer) else "cuda events"


def measure(call: Callable[[], Any], batch_size: int, window_s: float = 0.25, warmup_s: float | None = None,
            stability: float = 0.10, max_windows: int = 10, window_calls: int = 0,
            timer: Timer | None = None) -> Bench:
    """Time `call` (one batch per call) and summarise the last STABLE_WINDOWS windows.

    Windows are time-based (window_s) or, with window_calls, count-based. Stable when the last
    STABLE_WINDOWS agree within `stability` on throughput and on p50 latency; after max_windows
    the figures are returned with stable=False, for the caller to mark the trial UNSTABLE.
    `timer` times each call (default: the host's perf_counter; cuda_timer() on a GPU)."""
    warm_up(call, 2 * window_s if warmup_s is None else warmup_s)
    windows: list[np.ndarray] = []
    stable = False
    while len(windows) < max_windows:
        windows.append(_window(call, window_s, window_calls, timer or host_timer))
        if len(windows) >= STABLE_WINDOWS:
            last = windows[-STABLE_WINDOWS:]
            rates = [len(w) / w.sum() for w in last]
            medians = [float(np.median(w)) for w in last]
            if _agree(rates, stability) and _agree(medians, stability):
                stable = True
                break
    return _summary(windows, batch_size, len(windows), stable, _clock_name(timer))


def _summary(windows: list[np.ndarray], batch_size: int, count: int, stable: bool, clock: str) -> Bench:
    """The figures of the last STABLE_WINDOWS windows (of `count` measured)."""
    last = windows[-STABLE_WINDOWS:]
    lat = np.concatenate(last)
    thr = np.asarray([batch_size * len(w) / w.sum() for w in last])
    p50, p90, p95, p99 = (float(v) * 1e3 for v in np.percentile(lat, [50, 90, 95, 99]))
    return Bench(
        batch_size=batch_size,
        throughput=float(batch_size * lat.size / lat.sum()),
        mean_ms=float(lat.mean() * 1e3),
        p50_ms=p50, p90_ms=p90, p95_ms=p95, p99_ms=p99,
        cv=float(thr.std() / thr.mean()) if thr.mean() > 0 else 0.0,
        windows=count,
        calls=int(sum(len(w) for w in windows)),
        stable=stable,
        clock=clock,
    )
