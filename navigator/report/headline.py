"""The numbers the decision used, in words: the winner's and the baselines' re-measured medians and the
winner's speedups with their 95% intervals. The CLI's last lines, the header of report.md and
report.html and report.json's "headline" all come from here, so that they cannot disagree.

Two baselines: the source framework as given (its defaults, trial 0) and the source framework with its
own best settings (the best valid trial of the baseline's path, e.g. eager with one thread); the
headline speedup is against the second. A ratio is given as a point only when it is distinguishable
from 1 and both sides were measured steadily; otherwise the interval is what is said.
"""

from __future__ import annotations

import statistics
from dataclasses import fields

from navigator import objective as objectives
from navigator.records import (BESIDE_QUANTIZED, PRECISION_ROLES, QUANTIZED, TUNED_BASELINE, UNSTABLE_SPREAD, Comparison, Figure,
                               Finalist, Headline, Result, Speedup, TrialOutcome)
from navigator.report import front

# Role -> how the reports name it.
NAMES = {"baseline": "the source framework as given", TUNED_BASELINE: "the source framework with its own best settings",
         "runner-up": "the runner-up", **{role: f"the {role} trial" for role in PRECISION_ROLES}}


LIBRARIES = {"xgboost": "XGBoost", "lightgbm": "LightGBM", "sklearn": "scikit-learn"}
# What a written config's backend runs.
BACKENDS = {"fil": "Triton's FIL backend (the FIL engine, cpu_nthread = the trial's threads)",
            "python": "Triton's python backend (model.py, running what was measured)"}


def engines(path: str, template: str, kind: str, backend: str) -> dict[str, str]:
    """Which engine measured the winner (`template`: its path's ENGINE) and which one the written config
    runs (its backend); a FIL config written for a winner FIL did not measure says so."""
    measured = template.format(library=LIBRARIES.get(kind, kind))
    served = BACKENDS.get(backend, f"Triton's {backend} backend")
    if backend == "fil" and path != "fil":
        served += ", which was not what measured the figures above (navigator serve-check measures it)"
    return {"measured": measured, "served": served}


def metric_cell(o: TrialOutcome, source: float | None) -> str:
    """A trial's user metric and its change against the source model's value (the trial table's cell)."""
    if o.metric is None:
        return ""
    if source is None or source == o.metric:
        return f"{o.metric:.6g}"
    change = o.metric - source
    relative = f", {change / abs(source):+.2%}" if source else ""
    return f"{o.metric:.6g} ({change:+.3g}{relative})"


# The trial tables' "precision run" column, in words (report.md and report.html).
PRECISION_RUN = ("Precision run: what each loaded runtime reported computing in, read from its own objects (the "
                 "optimised graph's operations, the compiled model's layers, the module's weights), not from the "
                 "params that asked for it; empty where the runtime gives nothing cheaply readable.")


def params(o: TrialOutcome) -> str:
    items = {**o.config.convert, **o.config.runtime}
    return ", ".join(f"{k}={v}" for k, v in items.items()) or "defaults"


def _figure(role: str, o: TrialOutcome, finalists: tuple[Finalist, ...]) -> Figure | None:
    f = next((f for f in finalists if f.number == o.config.number), None)
    if f is not None:
        thr, p99 = statistics.median(f.throughput), statistics.median(f.p99_ms)
        how = f"median of {len(f.throughput)} interleaved rounds"
    elif o.bench is not None:
        thr, p99, how = o.bench.throughput, o.bench.p99_ms, "search-time figure, not re-measured"
    else:
        return None
    name = "winner" if role == "winner" else NAMES.get(role, role)
    ran = f"; precision run: {o.precision_run}" if role == "winner" and o.precision_run else ""
    text = (f"{name}: trial {o.config.number} {o.config.path} ({params(o)}), batch {o.config.batch_size}: "
            f"{thr:.1f} inferences/s, p99 {p99:.3f} ms ({how}){ran}")
    return Figure(role, o.config.number, o.config.path, params(o), o.config.batch_size, thr, p99,
                  f.throughput if f else (), text)


def distinguishable(c: Comparison) -> str:
    """The finalists table's verdict on one comparison."""
    text = "yes" if c.distinct else "no: within measurement noise"
    return f"{text}; unstable rounds, the interval is the figure" if c.unstable else text


def _speedup(c: Comparison, winner: int, objective: str) -> Speedup:
    name = NAMES.get(c.against, c.against)
    unit = objectives.get(objective).versus
    interval = f"{c.low:.2f}-{c.high:.2f}x"
    if c.number == winner:
        text = f"the winner is {name} (trial {c.number})"
    elif c.unstable:
        text = (f"{interval} {unit} {name} (trial {c.number}), unstable: its rounds or the ratio vary by more "
                f"than {UNSTABLE_SPREAD:g}x, no point ratio")
    elif not c.distinct:
        text = f"not distinguishable from {name} (trial {c.number}): {interval} (95% CI)"
    else:
        text = f"{c.ratio:.2f}x {unit} {name} (trial {c.number}; 95% CI {interval})"
    return Speedup(**{f.name: getattr(c, f.name) for f in fields(c)}, text=text)


def beside(result: Result) -> tuple[Figure, ...]:
    """A quantized winner's unquantized alternatives: for each group of BESIDE_QUANTIZED, the finalist
    re-measured in that role, else the best trial of the group within the constraints (its search-time
    figure). () where the winner is not quantized."""
    w = result.winner
    if w is None or w.precision not in QUANTIZED:
        return ()
    by_number = {o.config.number: o for o in result.outcomes}
    ranked = front.goal(result).rank(result.outcomes)
    found = []
    for role in BESIDE_QUANTIZED:
        classes = PRECISION_ROLES[role]
        held = next((f.number for f in result.finalists if role in f.role.split(", ")), None)
        o = by_number.get(held) if held is not None else next((o for o in ranked if o.precision in classes), None)
        if o is not None and (figure := _figure(role, o, result.finalists)) is not None:
            found.append(figure)
    return tuple(found)


def _beside_lines(figures: tuple[Figure, ...], speedups: tuple[Speedup, ...], precision: str) -> list[str]:
    lines = []
    for f in figures:
        ratio = next((s for s in speedups if s.against == f.role), None)
        said = f"; the winner: {ratio.text}" if ratio else "; no ratio (not re-measured with the winner)"
        lines.append(f"beside the {precision} winner, {f.text}{said}")
    return lines


def build(result: Result) -> Headline:
    """The headline of `result`."""
    w = result.winner
    winner = _figure("winner", w, result.finalists) if w else None
    tuned_number = next((f.number for f in result.finalists if TUNED_BASELINE in f.role.split(", ")), None)
    by_number = {o.config.number: o for o in result.outcomes}
    bases = [("baseline", result.baseline)]
    if tuned_number is not None and tuned_number in by_number:
        bases.append((TUNED_BASELINE, by_number[tuned_number]))
    baselines = tuple(f for role, o in bases if o is not None and (f := _figure(role, o, result.finalists)))
    order = {TUNED_BASELINE: 0, "baseline": 1}
    speedups = tuple(_speedup(c, w.config.number, result.objective)
                     for c in sorted(result.comparisons, key=lambda c: order.get(c.against, 2))) if w else ()
    engines = result.engines
    engine_text = (f"measured with {engines['measured']}; the written config runs {engines['served']}"
                   if engines.get("measured") and engines.get("served") else "")
    lines = [winner.text if winner else "no trial passed validation and benchmarking"]
    lines += [b.text for b in baselines]
    alternatives = beside(result)
    lines += _beside_lines(alternatives, speedups, w.precision) if w else []
    headline = [s for s in speedups if s.against in order]
    if w and not result.finalists:
        lines.append("speedup: not given (the finalists were not re-measured; the figures above are the search's)")
    elif headline:
        lines.append("speedup: " + "; ".join(s.text for s in headline))
    elif w and winner and not winner.rounds:
        lines.append("speedup: not given (the written winner was not among the re-measured finalists)")
    if engine_text:
        lines.append(f"engine: {engine_text}")
    return Headline(winner, baselines, speedups, engine_text, tuple(lines), alternatives)
