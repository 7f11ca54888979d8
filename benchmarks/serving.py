"""The winner served for real on this machine: a short search on a fixture, its python-backend deployment
served by tritonserver, answers over HTTP/gRPC against the source framework, perf_analyzer at two
concurrencies, and the serving-level search's gain over the default serving configuration (the default and
the best re-measured alternately in the same run; medians of those rounds).

    python benchmarks/serving.py [--budget 90s] [--serving-budget 5m] [--out reports/serving-cpu]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import navigator  # noqa: E402
from navigator.records import to_dict  # noqa: E402

CASES = {"mlp.pt2": {"batch_size": 4}, "cnn.pt2": {"batch_size": 4}}


def lines_for(name: str, result: navigator.Result) -> list[str]:
    s, w = result.serving, result.winner
    assert s is not None and w is not None
    out = [f"## {name}: winner trial {w.config.number} `{w.config.path}`, served as `{s.deployment}`", ""]
    for c in s.checks:
        err = max((o.max_abs for o in c.outputs), default=0.0)
        out.append(f"- {c.protocol}: {'matches the source' if c.ok else 'WRONG: ' + c.reason} (max abs err {err:.2e})")
    out += ["", "| config | concurrency | infer/s | p50 ms | p90 ms | p99 ms | queue ms | compute ms | stable |",
            "|---|---|---|---|---|---|---|---|---|"]
    for label, t in (("default", s.default), ("tuned", s.best)):
        if t is None or (label == "tuned" and t is s.default):
            continue
        for p in t.points:
            out.append(f"| {label} | {p.concurrency} | {p.throughput:.1f} | {p.p50_ms:.2f} | {p.p90_ms:.2f} | "
                       f"{p.p99_ms:.2f} | {p.queue_ms:.2f} | {p.compute_ms:.2f} | {'yes' if p.stable else 'no'} |")
    if s.best is not None and s.default is not None and s.best is not s.default and s.default.score:
        c = s.best.config
        out += ["", f"Serving search: {len(s.trials)} configurations; best = max_batch_size {c.max_batch_size}, "
                f"{c.instances} instance(s), {c.threads} thread(s) each, dynamic batching "
                f"{'on, delay ' + str(c.max_queue_delay_us) + ' us' if c.dynamic_batching else 'off'}: "
                f"**{(s.best.score or 0) / s.default.score:.2f}x** the default configuration's best throughput "
                f"(within the p99 limit {s.latency_limit_ms} ms)."]
    out += [f"- note: {n}" for n in s.notes] + [""]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", default="90s")
    parser.add_argument("--serving-budget", default="5m")
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument("--latency-limit-ms", type=float, default=None)
    parser.add_argument("--out", default=str(ROOT / "reports" / "serving-cpu"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--path", action="append", help="conversion paths to search [default: ort_cpu]")
    parser.add_argument("--case", action="append", help=f"fixtures to run [default: {', '.join(CASES)}]")
    args = parser.parse_args()
    from fixtures.make import write_all
    from navigator import env

    work = Path(tempfile.mkdtemp(prefix="navigator-bench-"))
    models = write_all(work / "models")
    lines = ["# Served for real: tritonserver + perf_analyzer on this machine", "",
             f"Command: `python benchmarks/serving.py --budget {args.budget} --serving-budget {args.serving_budget} "
             f"--concurrency {args.concurrency} --device {args.device}`", "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in env.snapshot().items()
                                     if k in ("cpu", "cores", "gpu", "python", "onnxruntime", "torch")), ""]
    data = {}
    for name in args.case or list(CASES):
        kwargs = CASES[name]
        result = navigator.optimize(str(models[name]), budget=args.budget, out=work / name,
                                    paths=args.path or ["ort_cpu"], device=args.device,
                                    progress=False, serving="python", tune_serving=True,
                                    serving_budget=args.serving_budget, concurrency=args.concurrency,
                                    latency_limit_ms=args.latency_limit_ms, **kwargs)
        data[name] = {"winner": to_dict(result.winner.config) if result.winner else None,
                      "serving": to_dict(result.serving)}
        lines += lines_for(name, result)
        print("\n".join(lines_for(name, result)), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}.md and {out}.json")


if __name__ == "__main__":
    main()
