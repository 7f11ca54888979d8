"""INT8 on the CPU against the best fp32/bf16 trial, through navigator's command line, for a CNN (the
ResNet-18 layout) and a BERT-like encoder (benchmarks/int8_models.py), with a user metric: top-1
agreement with the fp32 source on 256 samples (benchmarks/int8_metric.py), --max-metric-drop 1%.

    python benchmarks/int8_cpu.py [--budget 6m] [--models resnet18,encoder] [--work /tmp/navigator-int8-cpu]

For each model: the model (.pt2, dynamic batch), validation inputs (16 rows), calibration inputs (128
other rows) and the metric's 256 rows with the source's classes are written to WORK/<model> (reused when
there), then `navigator optimize` runs as a subprocess over the INT8 paths and the fp32/bf16 paths. From
its report: the best INT8 trial that passed the metric against the best fp32 and the best bf16 trial,
as the ratio of their finalist rounds (re-measured interleaved in the same run; median and 95% bootstrap
interval, paired by round), and the INT8 trials rejected by the metric with both values. Writes
reports/int8-cpu/int8-cpu.json and .md, and each study's report.md beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from navigator.records import BESIDE_QUANTIZED, PRECISION_ROLES, QUANTIZED, Finalist, Result, TrialOutcome  # noqa: E402

PATHS = ("eager", "ort_cpu", "openvino", "ort_int8", "openvino_int8")
BATCH = 8
METRIC = ROOT / "benchmarks" / "int8_metric.py"


def prepare(name: str, work: Path) -> dict[str, Path]:
    """The model and its input files in work/<name>, made once (every step is seeded)."""
    import torch

    import int8_models

    d = work / name
    files = {k: d / f for k, f in (("model", "model.pt2"), ("val", "val.npz"), ("cal", "cal.npz"),
                                   ("metric", "metric.npz"), ("info", "info.json"))}
    if all(f.is_file() for f in files.values()):
        return files
    d.mkdir(parents=True, exist_ok=True)
    model, example, fitted = int8_models.build(name)
    batch = torch.export.Dim("batch", min=1, max=256)
    program = torch.export.export(model, example, dynamic_shapes=tuple({0: batch} for _ in example))
    torch.export.save(program, str(files["model"]))
    np.savez(files["val"], **int8_models.inputs(name, 16, 3)[0])
    np.savez(files["cal"], **int8_models.inputs(name, 128, 2)[0])
    rows, classes = int8_models.inputs(name, 256, 1)
    module = torch.export.load(str(files["model"])).module()
    with torch.no_grad():  # the source's classes, from the saved program navigator loads
        logits = np.concatenate([module(*(torch.from_numpy(v[i:i + 32]) for v in rows.values())).numpy()
                                 for i in range(0, 256, 32)])
    np.savez(files["metric"], **rows, reference_top1=logits.argmax(1))
    files["info"].write_text(json.dumps({"fitted_accuracy": fitted, "class_accuracy": float(np.mean(
        logits.argmax(1) == classes))}) + "\n")
    return files


def optimize(files: dict[str, Path], out: Path, budget: str) -> dict[str, Any]:
    """`navigator optimize` through its command line; the load average around it and its wall time."""
    command = [sys.executable, "-m", "navigator", "optimize", "--model", str(files["model"]),
               "--input-data", str(files["val"]), "--calibration-data", str(files["cal"]),
               "--metric", f"{METRIC}:top1_agreement", "--trust-pickle", "--max-metric-drop", "1%",
               "--batch-size", str(BATCH), "--budget", budget, "--out", str(out), "--no-progress", "--force",
               *[a for p in PATHS for a in ("--path", p)]]
    env = {**os.environ, "INT8_METRIC_DATA": str(files["metric"]), "PYTHONPATH": str(ROOT)}
    before, start = os.getloadavg(), time.monotonic()
    proc = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"navigator optimize failed ({proc.returncode}):\n{proc.stderr}")
    return {"command": " ".join(command[1:]).replace(str(ROOT) + "/", ""), "wall_s": round(time.monotonic() - start, 1),
            "load_before": [round(x, 2) for x in before], "load_after": [round(x, 2) for x in os.getloadavg()],
            "stdout": proc.stdout.strip().splitlines()}


def params(o: TrialOutcome) -> dict[str, Any]:
    return {**o.config.convert, **o.config.runtime}


def figure(o: TrialOutcome, finalists: dict[int, Finalist]) -> dict[str, Any]:
    """A trial's figures: the medians of its finalist rounds where it was re-measured, else the search's."""
    f = finalists.get(o.config.number)
    assert o.bench is not None
    return {"trial": o.config.number, "path": o.config.path, "precision": o.precision, "params": params(o),
            "metric": o.metric, "remeasured": f is not None,
            "throughput": statistics.median(f.throughput) if f else o.bench.throughput,
            "p99_ms": statistics.median(f.p99_ms) if f else o.bench.p99_ms,
            "rounds": list(f.throughput) if f else []}


def best(ranked: list[TrialOutcome], finalists: dict[int, Finalist], role: str) -> TrialOutcome | None:
    """The best trial of a precision group (records.PRECISION_ROLES): the finalist navigator re-measured in
    that role, else the first of the group in the search's ranking (not re-measured)."""
    held = next((f.number for f in finalists.values() if role in f.role.split(", ")), None)
    if held is not None:
        return next((o for o in ranked if o.config.number == held), None)
    return next((o for o in ranked if o.precision in PRECISION_ROLES[role]), None)


def ratio(a: TrialOutcome, b: TrialOutcome, finalists: dict[int, Finalist]) -> dict[str, Any] | None:
    """a / b in throughput, paired by interleaved round (search/finalists.compare); None unless both were
    re-measured."""
    from navigator.search.finalists import compare

    if a.config.number not in finalists or b.config.number not in finalists:
        return None
    c = compare(finalists[a.config.number], finalists[b.config.number], "throughput")
    return {"ratio": round(c.ratio, 3), "ci95": [round(c.low, 3), round(c.high, 3)], "distinct": c.distinct,
            "unstable": c.unstable}


def summarize(result: Result) -> dict[str, Any]:
    """The INT8 verdict of one study's Result."""
    from navigator.report import front

    finalists = {f.number: f for f in result.finalists}
    ranked = front.goal(result).rank(result.outcomes)  # measured and within --max-metric-drop
    source = result.settings.metric_source if result.settings else None
    int8 = best(ranked, finalists, "best int8/fp8")
    others = {role: best(ranked, finalists, role) for role in BESIDE_QUANTIZED}
    unquantized = [o for o in others.values() if o is not None]
    top = max(unquantized, key=lambda o: figure(o, finalists)["throughput"]) if unquantized else None
    rejected = [{"trial": o.config.number, "path": o.config.path, "params": params(o), "metric": o.metric,
                 "source_metric": source, "reason": o.error}
                for o in result.outcomes if o.status == "invalid" and o.metric is not None]
    int8_invalid = [{"trial": o.config.number, "path": o.config.path, "params": params(o), "reason": o.error}
                    for o in result.outcomes if o.precision in QUANTIZED and o.status == "invalid" and o.metric is None]
    failed: dict[str, list[int]] = {}  # failures by reason (an exporter's, say), every path
    for o in result.outcomes:
        if o.status in ("failed", "timeout", "crashed"):
            failed.setdefault(f"{o.config.path}: {o.error[:160]}", []).append(o.config.number)
    return {
        "winner": figure(result.winner, finalists) if result.winner and result.winner.bench else None,
        "best_int8": figure(int8, finalists) if int8 else None,
        "best": {role: figure(o, finalists) for role, o in others.items() if o is not None},
        "int8_vs": {role: ratio(int8, o, finalists) for role, o in others.items() if int8 and o is not None},
        "int8_vs_best_unquantized": ratio(int8, top, finalists) if int8 and top else None,
        "metric_source": source, "rejected_by_metric": rejected, "int8_invalid_before_metric": int8_invalid,
        "failed": failed,
        "trials_by_status": result.trials_by_status, "headline": list(result.headline.lines) if result.headline else [],
        "finalists": [{"trial": f.number, "path": f.path, "role": f.role, "rounds": list(f.throughput)}
                      for f in result.finalists],
        "notes": [n for n in result.notes if "loaded" in n],
    }


def _cell(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()).replace("|", "/")


def _ratio_text(r: dict[str, Any] | None) -> str:
    if r is None:
        return "not re-measured together: no ratio"
    text = f"{r['ratio']:.2f}x (95% CI {r['ci95'][0]:.2f}-{r['ci95'][1]:.2f})"
    return text + ("" if r["distinct"] else ", not distinguishable from 1") + (", unstable rounds" if r["unstable"] else "")


def markdown(name: str, case: dict[str, Any]) -> list[str]:
    """One model's section of int8-cpu.md."""
    s, run = case["summary"], case["run"]
    lines = [f"## {name} (batch {BATCH})", "",
             f"`python {run['command']}`", "",
             f"Wall time {run['wall_s']} s; load average (1, 5, 15 min) before {run['load_before']}, after "
             f"{run['load_after']} on {os.cpu_count()} cores. Model: {case['info']}. Source metric "
             f"{s['metric_source']}.", "",
             "| figure | trial | path | precision | params | infer/s | p99 ms | metric | re-measured rounds (infer/s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = [("best INT8 within the drop", s["best_int8"]), *s["best"].items(), ("winner", s["winner"])]
    for label, f in rows:
        if f is None:
            lines.append(f"| {label} | none | | | | | | | |")
            continue
        rounds = ", ".join(f"{t:.0f}" for t in f["rounds"]) or "not re-measured (search figure)"
        lines.append(f"| {label} | {f['trial']} | {f['path']} | {f['precision']} | {_cell(f['params'])} | "
                     f"{f['throughput']:.1f} | {f['p99_ms']:.1f} | {f['metric']} | {rounds} |")
    lines += ["", *[f"- best INT8 / {role}: {_ratio_text(r)}" for role, r in s["int8_vs"].items()]]
    lines += ["", "INT8 trials rejected by the metric (under the 1% drop):", "",
              "| trial | path | params | metric | source's | reason |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['trial']} | {r['path']} | {_cell(r['params'])} | {r['metric']:.4f} | {r['source_metric']} | "
              f"{r['reason']} |" for r in s["rejected_by_metric"]] or ["| none | | | | | |"]
    if s["int8_invalid_before_metric"]:
        lines += ["", "INT8 trials invalid before the metric (navigator's own int8 validation on the --input-data rows):", ""]
        lines += [f"- trial {r['trial']} {r['path']} ({_cell(r['params'])}): {r['reason']}"
                  for r in s["int8_invalid_before_metric"]]
    if s["failed"]:
        lines += ["", "Failed trials, by reason:", ""]
        lines += [f"- {reason} (trials {', '.join(map(str, numbers))})" for reason, numbers in s["failed"].items()]
    lines += ["", f"Trials by status: {s['trials_by_status']}. navigator's headline:", ""]
    lines += [f"- {line}" for line in s["headline"]] + [""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="6m", help="each study's budget")
    parser.add_argument("--models", default="resnet18,encoder")
    parser.add_argument("--work", default="/tmp/navigator-int8-cpu", help="models, inputs and the studies' outputs")
    parser.add_argument("--out", default=str(ROOT / "reports" / "int8-cpu"))
    args = parser.parse_args()
    from navigator import env
    from navigator.results import load_result

    work, out = Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Any] = {}
    for name in args.models.split(","):
        files = prepare(name, work)
        run = optimize(files, work / name / "out", args.budget)
        result = load_result(work / name / "out")
        cases[name] = {"run": run, "info": json.loads(files["info"].read_text()), "summary": summarize(result)}
        shutil.copyfile(work / name / "out" / "report.md", out / f"{name}-report.md")
    environment = env.snapshot()
    (out / "int8-cpu.json").write_text(json.dumps({"budget": args.budget, "batch": BATCH, "paths": PATHS,
                                                   "cases": cases, "environment": environment}, indent=2) + "\n")
    md = [f"# INT8 on the CPU: measured by benchmarks/int8_cpu.py ({environment.get('cpu', '')}, budget "
          f"{args.budget} per model)", "",
          "Each study searches " + ", ".join(PATHS) + " with --metric (top-1 agreement with the fp32 source on "
          "256 samples) and --max-metric-drop 1%. Ratios are throughput over interleaved finalist rounds of the "
          "same run (median, 95% bootstrap interval, paired by round).", ""]
    for name, case in cases.items():
        md += markdown(name, case)
    (out / "int8-cpu.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
