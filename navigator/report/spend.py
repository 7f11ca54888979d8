"""How a study spent its budget: per path (trials, seconds, conversion and compile time, what waited or was
skipped for its cost) and per phase of the run (search, finalists, deploy)."""

from __future__ import annotations

from collections import Counter

from navigator.records import STATUSES, Result, Spend, TrialOutcome


def per_path(outcomes: list[TrialOutcome], deferred: list[str], skipped: list[str]) -> tuple[Spend, ...]:
    """One Spend per path that ran a trial or had one kept back; `deferred` / `skipped` name the path of
    each trial kept back."""
    order = list(dict.fromkeys([o.config.path for o in sorted(outcomes, key=lambda o: o.config.number)]
                               + deferred + skipped))
    waited, never = Counter(deferred), Counter(skipped)
    out = []
    for path in order:
        mine = [o for o in outcomes if o.config.path == path]
        statuses: Counter[str] = Counter(o.status for o in mine)
        out.append(Spend(path, len(mine), {s: statuses[s] for s in STATUSES if statuses[s]},
                         round(sum(o.duration_s for o in mine), 1), round(sum(o.convert_s for o in mine), 1),
                         round(sum(o.load_s for o in mine), 1), waited[path], never[path]))
    return tuple(out)


def markdown(result: Result) -> list[str]:
    """The report's "Where the budget went" section ([] when the result has no such record)."""
    if not result.spend:
        return []
    lines = ["", "## Where the budget went", ""]
    if result.phases:
        lines += ["This run: " + ", ".join(f"{name} {s:.0f} s" for name, s in result.phases.items()) + ".", ""]
    lines += ["| path | trials | by status | in trials s | converting s | loading + compiling s | deferred for cost "
              "| skipped for cost |", "|---|---|---|---|---|---|---|---|"]
    for s in result.spend:
        statuses = ", ".join(f"{n} {k}" for k, n in s.by_status.items())
        lines.append(f"| {s.path} | {s.trials} | {statuses} | {s.trial_s:.1f} | {s.convert_s:.1f} | {s.load_s:.1f} "
                     f"| {s.deferred} | {s.skipped} |")
    return lines
