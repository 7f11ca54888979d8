"""What the reports say of the study's constraints and of its Pareto front: a trial over the p99 limit
keeps its status and figures and is marked beside its status ("ok, over p99 <= 5 ms"); the front of the
trials within every constraint is listed (markdown) and drawn (plots.throughput_latency)."""

from __future__ import annotations

from navigator import objective as objectives
from navigator.records import Result, TrialOutcome


def goal(result: Result) -> objectives.Objective:
    """The run's objective with the constraints it ran under."""
    if result.settings is not None:
        return objectives.for_study(result.settings)
    return objectives.get(result.objective)


def status(result: Result, o: TrialOutcome) -> str:
    """The trial's status as the tables show it: with the constraints it breaks."""
    broken = goal(result).broken(o)
    return f"{o.status}, {broken}" if broken else o.status


def points(result: Result) -> list[TrialOutcome]:
    """The front of the trials within every constraint, fastest first."""
    g = goal(result)
    return objectives.pareto_front(o for o in result.outcomes if g.feasible(o))


def markdown(result: Result) -> list[str]:
    """The front's points (for --objective pareto) and the count of trials over a constraint."""
    g = goal(result)
    over = [o.config.number for o in result.outcomes if g.broken(o)]
    lines = []
    if over:
        names = " and ".join(c.__doc__ or c.__name__ for c in g.constraints)
        lines += ["", f"Constraints: {names}; {len(over)} measured trial(s) over them (kept with their figures, "
                  f"never a finalist or the winner): {', '.join(map(str, over))}."]
    if not g.front:
        return lines
    w = result.winner.config.number if result.winner else None
    lines += ["", "## Pareto front (throughput, p99)", "",
              "Trials no other trial within the constraints beats on both figures, fastest first; the repository "
              "is the winner's. Write another point's with `navigator export OUT --trial N`.", "",
              "| # | path | batch | infer/s | p99 ms |", "|---|---|---|---|---|"]
    lines += [f"| {o.config.number}{' **winner**' if o.config.number == w else ''} | {o.config.path} | "
              f"{o.config.batch_size} | {o.bench.throughput:.1f} | {o.bench.p99_ms:.3f} |"  # type: ignore[union-attr]
              for o in points(result)]
    return lines
