"""Result -> report.json (every trial, environment, winner, speedups) and report.md."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

from navigator.records import STATUSES, Result, TrialOutcome, to_dict


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _params(o: TrialOutcome) -> str:
    items = {**o.config.convert, **o.config.runtime}
    return ", ".join(f"{k}={v}" for k, v in items.items()) or "defaults"


def _row(o: TrialOutcome, winner: int | None) -> str:
    b, v = o.bench, o.validation
    mark = " **winner**" if o.config.number == winner else ""
    err = max((c.max_abs for c in v.outputs), default=0.0) if v else None
    figures = (f"{b.throughput:.1f} | {b.p50_ms:.3f} | {b.p99_ms:.3f} | {'yes' if b.stable else 'no'}"
               if b else " | | | ")
    error = f"{err:.2e}" if err is not None else ""
    agreement = [c.agreement for c in v.outputs if c.agreement is not None] if v else []
    if agreement:  # classifiers: the share of class labels equal to the source's
        error += f" (labels {min(agreement):.2%} agree)"
    reason = o.error.replace("|", "/")[:160]
    return (f"| {o.config.number}{mark} | {o.config.path} | {o.config.batch_size} | {_params(o)} | {o.status} | "
            f"{figures} | {error} | {o.convert_s:.1f}{' (cached)' if o.cached else ''} | {reason} |")


def _finalists(result: Result) -> list[str]:
    if not result.finalists:
        return []
    w = result.winner.config.number if result.winner else None
    lines = ["", "## Finalists, re-measured interleaved", "",
             f"Each finalist was measured {len(result.finalists[0].throughput)} times, in rotating order; "
             "the winner is chosen on the medians.", "",
             "| # | role | path | median infer/s | median p99 ms | rounds (infer/s) |", "|---|---|---|---|---|---|"]
    for f in result.finalists:
        mark = " **winner**" if f.number == w else ""
        lines.append(f"| {f.number}{mark} | {f.role} | {f.path} | {statistics.median(f.throughput):.1f} | "
                     f"{statistics.median(f.p99_ms):.3f} | {', '.join(f'{t:.0f}' for t in f.throughput)} |")
    lines += ["", "| winner vs | ratio (%s) | 95%% CI | distinguishable |" % result.objective, "|---|---|---|---|"]
    for c in result.comparisons:
        lines.append(f"| {c.against} (trial {c.number}) | {c.ratio:.3f}x | {c.low:.3f}-{c.high:.3f} | "
                     f"{'yes' if c.distinct else 'no: within measurement noise'} |")
    return lines


def markdown(result: Result, extra: dict[str, Any]) -> str:
    w, b = result.winner, result.baseline
    lines = [f"# navigator report: {result.model}", ""]
    if w and w.bench:
        lines += [f"**Winner:** trial {w.config.number}, path `{w.config.path}` ({_params(w)}), batch "
                  f"{w.config.batch_size}: {w.bench.throughput:.1f} inferences/s, p99 {w.bench.p99_ms:.3f} ms."]
        if w.bench.host_throughput:
            lines += [f"With the host copies a Triton client pays: {w.bench.host_throughput:.1f} inferences/s, "
                      f"p99 {w.bench.host_p99_ms:.3f} ms."]
    else:
        lines += ["**No trial passed validation and benchmarking.**"]
    if b and b.bench:
        lines += [f"**Baseline** (trial {b.config.number}, `{b.config.path}` defaults): {b.bench.throughput:.1f} "
                  f"inferences/s, p99 {b.bench.p99_ms:.3f} ms."]
    lines += _finalists(result)
    if result.repository:
        lines += ["", f"Triton repository: `{result.repository}` (serve with "
                  f"`tritonserver --model-repository {result.repository.parent}`)"]
    lines += ["", "## Trials", "",
              "| # | path | batch | params | status | infer/s | p50 ms | p99 ms | stable | max abs err | convert s | error |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_row(o, w.config.number if w else None) for o in result.outcomes]
    if extra.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in extra["notes"]]
    unavailable = extra.get("unavailable", {})
    if unavailable:
        lines += ["", "## Paths not searched", ""] + [f"- `{k}`: {v}" for k, v in unavailable.items()]
    lines += ["", "## Environment", ""] + [f"- {k}: {v}" for k, v in result.environment.items()]
    return "\n".join(lines) + "\n"


def write(result: Result, out: Path, extra: dict[str, Any]) -> Path:
    """report.json and report.md in `out`; returns report.json's path."""
    data = {**to_dict(result), **extra}
    data["trials_by_status"] = {s: n for s in STATUSES if (n := sum(o.status == s for o in result.outcomes))}
    _atomic_write(out / "report.json", json.dumps(data, indent=2, default=str) + "\n")
    _atomic_write(out / "report.md", markdown(result, extra))
    return out / "report.json"
