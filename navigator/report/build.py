"""Result -> report.json (every trial, environment, winner, speedups), report.md and report.html."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from dataclasses import replace

from navigator.osutil import atomic_write
from navigator.records import STATUSES, Result, StudySummary, TrialOutcome, to_dict
from navigator.report import front, headline, spend


_params = headline.params


def _row(o: TrialOutcome, winner: int | None, status: str, metric: str | None = None) -> str:
    """One row of the trial table; `status`: as the report shows it (with a broken constraint); `metric`: its
    metric cell, where the run had a user metric."""
    b, v = o.bench, o.validation
    mark = " **winner**" if o.config.number == winner else ""
    err = max((c.max_abs for c in v.outputs), default=0.0) if v else None
    figures = (f"{b.throughput:.1f} | {b.p50_ms:.3f} | {b.p99_ms:.3f} | {'yes' if b.stable else 'no'}"
               if b else " | | | ")
    error = f"{err:.2e}" if err is not None else ""
    agreement = [c.agreement for c in v.outputs if c.agreement is not None] if v else []
    cosine = [c.cosine for c in v.outputs if c.cosine is not None] if v else []
    if cosine:  # class scores of an INT8 trial: top-1 agreement and cosine, what it was validated by
        error += f" (top-1 {min(agreement):.2%} agree, cosine {min(cosine):.4f})"
    elif agreement:  # classifiers: the share of class labels equal to the source's
        error += f" (labels {min(agreement):.2%} agree)"
    reason = o.error.replace("|", "/")[:160]
    shown = "" if metric is None else f" {metric} |"
    ran = (o.precision_run or "").replace("|", "/")
    return (f"| {o.config.number}{mark} | {o.config.path} | {o.config.batch_size} | {_params(o)} | {ran} | {status} | "
            f"{figures} | {error} |{shown} {o.convert_s:.1f}{' (cached)' if o.cached else ''} | {reason} |")


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
                     f"{headline.distinguishable(c)} |")
    return lines


def _serving(result: Result) -> list[str]:
    """What the real tritonserver did with the deployment: answers, perf_analyzer figures, the serving search."""
    s = result.serving
    if s is None:
        return []
    lines = ["", f"## Served by tritonserver ({s.deployment} deployment)", ""]
    for c in s.checks:
        err = max((o.max_abs for o in c.outputs), default=0.0)
        lines.append(f"- {c.protocol}: {'matches the source framework' if c.ok else 'WRONG: ' + c.reason} "
                     f"(max abs err {err:.2e})")
    rows = [("default", s.default)] + ([("tuned", s.best)] if s.best is not None and s.best is not s.default else [])
    if any(t for _, t in rows):
        lines += ["", f"perf_analyzer, {s.batch_size} rows per request, gRPC:", "",
                  "| config | concurrency | infer/s | p50 ms | p90 ms | p99 ms | server queue ms | server compute ms | stable |",
                  "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {label} | {p.concurrency} | {p.throughput:.1f} | {p.p50_ms:.2f} | {p.p90_ms:.2f} | {p.p99_ms:.2f} "
                  f"| {p.queue_ms:.2f} | {p.compute_ms:.2f} | {'yes' if p.stable else 'no'} |"
                  for label, t in rows if t is not None for p in t.points]
    if s.trials:
        limit = f"p99 <= {s.latency_limit_ms} ms" if s.latency_limit_ms else "no latency limit"
        lines += ["", f"Serving search ({limit}; score = best throughput over the concurrencies within the limit):", "",
                  "| # | max batch | instances | threads | dynamic batching | score infer/s | error |", "|---|---|---|---|---|---|---|"]
        for t in s.trials:
            cfg = t.config
            batching = f"delay {cfg.max_queue_delay_us} us" if cfg.dynamic_batching else "off"
            score = f"{t.score:.1f}" if t.score is not None else ""
            threads = f"{cfg.threads or 'trial'}" + (f", {cfg.streams} streams" if cfg.streams else "")
            lines.append(f"| {t.number} | {cfg.max_batch_size} | {cfg.instances} | {threads} | {batching} | "
                         f"{score} | {t.error[:80]} |")
    lines += [f"- {n}" for n in s.notes]
    return lines


def markdown(result: Result) -> str:
    w = result.winner
    lines = [f"# navigator report: {result.model}", ""]
    head = headline.build(result)
    lines += [f"- **{text[0].upper()}{text[1:]}.**" if i == 0 else f"- {text[0].upper()}{text[1:]}."
              for i, text in enumerate(head.lines)]
    if w and w.bench and w.bench.host_throughput:
        lines += [f"- With the host copies a Triton client pays (search-time figure): {w.bench.host_throughput:.1f} "
                  f"inferences/s, p99 {w.bench.host_p99_ms:.3f} ms."]
    if result.metric:
        lines += ["**Metric** (user's, higher is better): " +
                  ", ".join(f"{k} {v:.6g}" for k, v in result.metric.items()) + "."]
    lines += front.markdown(result)
    lines += _finalists(result)
    lines += _serving(result)
    if result.repository:
        lines += ["", f"Triton repository: `{result.repository}` (serve with "
                  f"`tritonserver --model-repository {result.repository.parent}`)"]
    source = result.settings.metric_source if result.settings else None
    metric = source is not None or any(o.metric is not None for o in result.outcomes)
    lines += ["", "## Trials", "", headline.PRECISION_RUN, "",
              "| # | path | batch | params | precision run | status | infer/s | p50 ms | p99 ms | stable | max abs err | "
              + ("metric (vs source) | " if metric else "") + "convert s | error |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if metric else "")]
    lines += [_row(o, w.config.number if w else None, front.status(result, o), headline.metric_cell(o, source) if metric else None)
              for o in result.outcomes]
    lines += spend.markdown(result)
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in result.notes]
    if result.unavailable:
        lines += ["", "## Paths not searched", ""] + [f"- `{k}`: {v}" for k, v in result.unavailable.items()]
    lines += _workers(result.study)
    lines += ["", "## Environment", ""] + [f"- {k}: {v}" for k, v in result.environment.items()]
    return "\n".join(lines) + "\n"


def _workers(study: StudySummary | None) -> list[str]:
    """A shared study: who ran which trials, on what, and what happened to dead workers' trials."""
    if not study:
        return []
    lines = ["", "## Workers", "", f"Study `{study.name}` in `{study.storage}`; ranked on hardware class "
             f"`{study.hardware_class}` only.", ""]
    for name, w in study.workers.items():
        hw = w.hardware
        lines.append(f"- `{name}`: {len(w.trials)} trials ({', '.join(map(str, w.trials))}); "
                     f"{hw.get('cpu', '?')}{', ' + hw['gpu'] if 'gpu' in hw else ''}"
                     f"{', driver ' + hw['gpu_driver'] if 'gpu_driver' in hw else ''}")
    if study.dead_worker_trials:
        lines.append(f"- trials of dead workers (failed by heartbeat): {list(study.dead_worker_trials)}; "
                     f"retried as: {study.retries or 'none finished'}")
    if study.not_ranked_other_hardware:
        lines.append(f"- not ranked (measured on another hardware class): {list(study.not_ranked_other_hardware)}")
    if study.versions_differ:
        lines.append(f"- library versions differ between workers: {', '.join(study.versions_differ)}")
    if study.still_running:
        lines.append(f"- {study.still_running} trials were still running when this report was written")
    return lines


def completed(result: Result) -> Result:
    """`result` with the report's derived sections: its headline, the trial count by status and the user
    metric as the run measured it (on the source model, the winner and the baseline)."""
    by_status = {s: n for s in STATUSES if (n := sum(o.status == s for o in result.outcomes))}
    metric = {"source": result.settings.metric_source if result.settings else None,
              "winner": result.winner.metric if result.winner else None,
              "baseline": result.baseline.metric if result.baseline else None}
    return replace(result, headline=headline.build(result), trials_by_status=by_status,
                   metric={k: v for k, v in metric.items() if v is not None})


def write(result: Result, out: Path) -> Path:
    """report.json (exactly `to_dict` of the Result), report.md and report.html in `out`; returns
    report.json's path."""
    result = completed(result)
    atomic_write(out / "report.json", json.dumps(to_dict(result), indent=2) + "\n")
    atomic_write(out / "report.md", markdown(result))
    write_html(result, out)
    return out / "report.json"


def write_html(result: Result, out: Path) -> Path | None:
    """report.html beside the others; without the `report` extra (plotly, jinja2) it is left out with a
    note in report.md rather than failing a finished study."""
    from navigator.errors import UnavailableError
    from navigator.report import html_page

    try:
        return html_page.write(result, out)
    except UnavailableError as exc:
        with open(out / "report.md", "a") as md:
            md.write(f"\nreport.html not written: {exc}\n")
        return None
