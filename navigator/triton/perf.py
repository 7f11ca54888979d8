"""perf_analyzer against a served model: one run per concurrency, its CSV parsed into PerfPoints.

The requests carry the validation inputs (perf_analyzer --input-data JSON), not random tensors: random
token ids or indices can be out of range for the model and would measure an error path.
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np

from navigator.errors import ServeError
from navigator.records import PerfPoint
from navigator.triton.server import find

US = 1e-3  # perf_analyzer reports microseconds


def input_data(inputs: dict[str, np.ndarray], batched: bool, path: Path) -> Path:
    """perf_analyzer's --input-data JSON: one entry per row of the validation inputs (rows without the
    batch dimension when the model batches; perf_analyzer's -b stacks them)."""
    rows = len(next(iter(inputs.values()))) if batched else 1
    entries = []
    for i in range(rows):
        entry = {}
        for name, array in inputs.items():
            value = array[i] if batched else array
            entry[name] = {"content": value.reshape(-1).tolist(), "shape": list(value.shape)}
        entries.append(entry)
    path.write_text(json.dumps({"data": entries}))
    return path


def parse_csv(path: Path, stable: bool = True) -> list[PerfPoint]:
    """perf_analyzer's -f CSV (latencies in microseconds) -> one PerfPoint per concurrency row."""
    points = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if not row.get("Concurrency"):
                continue
            server = sum(float(row[k]) for k in ("Server Compute Input", "Server Compute Infer",
                                                  "Server Compute Output"))
            points.append(PerfPoint(
                concurrency=int(row["Concurrency"]), throughput=float(row["Inferences/Second"]),
                p50_ms=float(row["p50 latency"]) * US, p90_ms=float(row["p90 latency"]) * US,
                p95_ms=float(row["p95 latency"]) * US, p99_ms=float(row["p99 latency"]) * US,
                queue_ms=float(row["Server Queue"]) * US, compute_ms=server * US, stable=stable))
    return points


def measure(url: str, model: str, batch_size: int, concurrency: int, data: Path, work: Path,
            interval_ms: int = 2000, timeout_s: float = 180.0) -> PerfPoint:
    """One perf_analyzer run over gRPC at a concurrency. A run that cannot reach perf_analyzer's stability
    criterion (3 windows within 10%, at most 6 windows) is repeated once accepting any 3 windows (a 999%
    band; perf_analyzer needs 4 windows for 3 to compare), and its point is marked unstable: reported, not
    hidden."""
    binary = find("perf_analyzer")
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"perf-c{concurrency}.csv"
    base = [str(binary), "-m", model, "-u", url, "-i", "grpc", "--input-data", str(data),
            "--concurrency-range", f"{concurrency}:{concurrency}", "-f", str(out)]
    if batch_size > 0:
        base += ["-b", str(batch_size)]
    tail = ""
    attempts = (["--measurement-interval", str(interval_ms), "--max-trials", "6"],
                ["--measurement-interval", str(interval_ms), "--max-trials", "4", "--stability-percentage", "999"])
    for attempt, extra in enumerate(attempts):
        out.unlink(missing_ok=True)
        try:
            run = subprocess.run(base + extra, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ServeError(f"perf_analyzer at concurrency {concurrency} ran past {timeout_s:.0f}s") from None
        (work / f"perf-c{concurrency}.log").write_text(run.stdout + run.stderr)
        if run.returncode == 0 and out.is_file():
            points = parse_csv(out, stable=attempt == 0)
            if points:
                return points[0]
        tail = " | ".join((run.stdout + run.stderr).strip().splitlines()[-3:])
        if "stable" not in tail:
            break  # an error, not noise: retrying changes nothing
    raise ServeError(f"perf_analyzer failed at concurrency {concurrency}: {tail}")
