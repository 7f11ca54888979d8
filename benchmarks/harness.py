"""Benchmark of the benchmark harness (navigator/trial/bench.py), on this machine.

1. Overhead: the harness's throughput figure against a bare timed loop over the same runner, measured
   interleaved in the same run (harness, bare, harness, bare, ...); target: within 2%.
2. Repeatability: the same trial benchmarked 5 times; coefficient of variation of its throughput;
   target: <= 5% on a 2-core machine.

    python benchmarks/harness.py [--out reports/harness-cpu]    # writes .json and .md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from navigator import env  # noqa: E402
from navigator.paths._ort import OrtRunner  # noqa: E402
from navigator.trial.bench import measure  # noqa: E402


def bare_loop(call, batch: int, seconds: float) -> float:
    """Throughput of a plain loop: calls over the whole elapsed time, nothing else."""
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        call()
        n += 1
    return batch * n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "reports" / "harness-cpu"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--window", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    from fixtures.make import write_all

    models = write_all(Path(tempfile.mkdtemp()))
    runner = OrtRunner(models["cnn.onnx"], {"intra_op_num_threads": 2}, ["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((args.batch, 3, 32, 32)).astype(np.float32)
    call = runner.prepare({"image": x})
    measure(call, args.batch, args.window)  # warm the process once
    harness, bare, benches = [], [], []
    for _ in range(args.rounds):
        b = measure(call, args.batch, args.window)
        benches.append(b)
        harness.append(b.throughput)
        # the bare loop runs as long as the harness's measured windows did
        bare.append(bare_loop(call, args.batch, b.calls * b.mean_ms / 1e3 / max(b.windows, 1) * 3))
    ratios = [h / b for h, b in zip(harness, bare)]
    repeat = [measure(call, args.batch, args.window) for _ in range(5)]
    thr = [b.throughput for b in repeat]
    cv = statistics.pstdev(thr) / statistics.mean(thr)
    result = {
        "model": "fixtures cnn.onnx, ONNX Runtime CPU, 2 intra-op threads",
        "batch": args.batch, "window_s": args.window,
        "overhead": {"harness_throughput": harness, "bare_throughput": bare, "ratios": ratios,
                     "median_ratio": statistics.median(ratios), "target": "within 2% (0.98-1.02)"},
        "repeatability": {"throughputs": thr, "cv": cv, "stable": [b.stable for b in repeat],
                          "windows": [b.windows for b in repeat], "target": "cv <= 5%"},
        "environment": env.snapshot(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    md = [f"# Harness overhead and repeatability ({result['environment']['cpu']}, "
          f"{result['environment']['cores_usable']} cores)", "",
          f"Runner: {result['model']}, batch {args.batch}, windows of {args.window} s.", "",
          f"- Overhead: harness / bare loop throughput, {args.rounds} interleaved pairs: median ratio "
          f"**{statistics.median(ratios):.4f}** (pairs: {', '.join(f'{r:.3f}' for r in ratios)}); target within 2%.",
          f"- Repeatability: the same trial benchmarked 5 times: throughputs {', '.join(f'{t:.0f}' for t in thr)}; "
          f"**CV {cv:.2%}**; target <= 5%.", ""]
    out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
