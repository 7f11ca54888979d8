"""Benchmark harness in perf_analyzer's manner: warm-up, then timed windows until the last
`STABLE_WINDOWS` agree within `stability` (max/min of throughput and of p50 latency), with a cap."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from navigator.records import Bench, IOSpec

STABLE_WINDOWS = 3  # perf_analyzer's default: the last 3 windows decide stability
MIN_CALLS_PER_WINDOW = 3


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


def _window(call: Callable[[], Any], window_s: float, calls: int = 0) -> np.ndarray:
    """Per-call latencies (seconds) over one window: `calls` calls when given (count windows), else
    at least window_s seconds and MIN_CALLS_PER_WINDOW calls (time windows)."""
    lat = []
    clock = time.perf_counter
    start = clock()
    while True:
        t0 = clock()
        call()
        t1 = clock()
        lat.append(t1 - t0)
        if (len(lat) >= calls) if calls else (t1 - start >= window_s and len(lat) >= MIN_CALLS_PER_WINDOW):
            return np.asarray(lat)


def warm_up(call: Callable[[], Any], seconds: float) -> None:
    """Run `call` for `seconds` (lazy initialisation, allocators, caches, oneDNN primitives)."""
    _window(call, seconds)


def _agree(values: list[float], stability: float) -> bool:
    low, high = min(values), max(values)
    return low > 0 and high / low <= 1.0 + stability


def measure(call: Callable[[], Any], batch_size: int, window_s: float = 0.25, warmup_s: float | None = None,
            stability: float = 0.10, max_windows: int = 10, window_calls: int = 0) -> Bench:
    """Time `call` (one batch per call) and summarise the last STABLE_WINDOWS windows.

    Windows are time-based (window_s) or, with window_calls, count-based. Stable when the last
    STABLE_WINDOWS agree within `stability` on throughput and on p50 latency; after max_windows
    the figures are returned with stable=False, for the caller to mark the trial UNSTABLE."""
    warm_up(call, 2 * window_s if warmup_s is None else warmup_s)
    windows: list[np.ndarray] = []
    stable = False
    while len(windows) < max_windows:
        windows.append(_window(call, window_s, window_calls))
        if len(windows) >= STABLE_WINDOWS:
            last = windows[-STABLE_WINDOWS:]
            rates = [len(w) / w.sum() for w in last]
            medians = [float(np.median(w)) for w in last]
            if _agree(rates, stability) and _agree(medians, stability):
                stable = True
                break
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
        windows=len(windows),
        calls=int(sum(len(w) for w in windows)),
        stable=stable,
    )
