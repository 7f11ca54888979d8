"""Noise-aware choice of the winner: the top trials and the baselines are re-measured in interleaved
rounds (A B C, B C A, ...), and the winner is chosen on the medians of those rounds. Comparisons are
paired by round (the same moment of machine noise) with a bootstrap confidence interval."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from navigator import objective as objectives
from navigator.records import (MEASURED, PRECISION_ROLES, QUANTIZED, TUNED_BASELINE, UNSTABLE_SPREAD, Comparison, Finalist,
                               TrialOutcome)

REMEASURED = "re-measured"  # a finalist left with no role (a tuned baseline the baseline beat): no comparison


def tuned_baseline(ranked: list[TrialOutcome], baseline: TrialOutcome | None) -> TrialOutcome | None:
    """The best-ranked valid trial on the baseline's path (the baseline itself when none beats it)."""
    if baseline is None:
        return None
    return next((o for o in ranked if o.config.path == baseline.config.path), None)


def precision_roles(ranked: list[TrialOutcome]) -> dict[str, TrialOutcome]:
    """Where a quantized trial is among `ranked` (measured, within the constraints): the best-ranked trial of
    each precision group (records.PRECISION_ROLES), so that a quantized trial and the best fp32 and fp16/bf16
    ones are re-measured in the same interleaved rounds, whichever wins. Empty where none is quantized."""
    if not any(o.precision in QUANTIZED for o in ranked):
        return {}
    best = {role: next((o for o in ranked if o.precision in classes), None) for role, classes in PRECISION_ROLES.items()}
    return {role: o for role, o in best.items() if o is not None}


def pick(ranked: list[TrialOutcome], roles: dict[str, TrialOutcome], k: int) -> list[tuple[str, TrialOutcome]]:
    """The top k distinct configurations plus every baseline role, each configuration once; a
    baseline with the same configuration as a top trial shares its entry ("top 1, baseline")."""
    chosen: dict[str, tuple[str, TrialOutcome]] = {}

    def ident(o: TrialOutcome) -> str:
        return repr((o.config.path, sorted({**o.config.convert, **o.config.runtime}.items()), o.config.batch_size))

    for o in ranked:
        if len(chosen) < k and ident(o) not in chosen:
            chosen[ident(o)] = (f"top {len(chosen) + 1}", o)
    for role, o in roles.items():
        if o.status not in MEASURED:  # an unstable baseline is re-measured all the same
            continue
        key = ident(o)
        chosen[key] = (f"{chosen[key][0]}, {role}", chosen[key][1]) if key in chosen else (role, o)
    return list(chosen.values())


def settle_tuned(finalists: list[Finalist], objective: str) -> list[Finalist]:
    """The tuned baseline is chosen on the search's figures; re-measured, the baseline as given may beat it
    (the search's lead was noise). Then the role goes to the baseline: "the source framework with its own
    best settings" is never slower than the source as given."""
    def holder(role: str) -> Finalist | None:
        return next((f for f in finalists if role in f.role.split(", ")), None)

    base, tuned = holder("baseline"), holder(TUNED_BASELINE)
    goal = objectives.get(objective)
    if base is None or tuned is None or tuned is base or goal.finalist_score(tuned) >= goal.finalist_score(base):
        return finalists

    def roles(f: Finalist) -> str:
        kept = [r for r in f.role.split(", ") if r != TUNED_BASELINE]
        return ", ".join(kept + [TUNED_BASELINE] if f is base else kept) or REMEASURED

    return [replace(f, role=roles(f)) if f in (base, tuned) else f for f in finalists]


def is_top(role: str) -> bool:
    return role.startswith("top")


def deploy_order(finalists: list[Finalist], ranked: list[TrialOutcome],
                 goal: objectives.Objective) -> tuple[list[TrialOutcome], list[str]]:
    """The trials to deploy, first that can, and why each re-measured trial that dropped out did. First
    the finalists in their order, those whose re-measured figures (the medians of their rounds) still
    meet every constraint of `goal` (a p99 limit met by one search-time window may not hold over the
    rounds); then the rest of `ranked`, which were not re-measured. Only ranked trials (measured, within
    the constraints): a re-measured baseline outside them is not one."""
    by_number = {o.config.number: o for o in ranked}
    rounds = {f.number: f for f in finalists}
    order, notes = [], []
    for now in objectives.remeasured([by_number[f.number] for f in finalists if f.number in by_number], finalists):
        broken = goal.broken(now)
        if not broken:
            order.append(by_number[now.config.number])
            continue
        f, before = rounds[now.config.number], by_number[now.config.number].bench
        notes.append(f"finalist trial {f.number} ({f.path}, {f.role}) cannot win: re-measured it is {broken} "
                     f"(p99 {now.bench.p99_ms:.3f} ms, the median of {len(f.p99_ms)} rounds; "  # type: ignore[union-attr]
                     f"{before.p99_ms:.3f} ms in the search)")  # type: ignore[union-attr]
    return order + [o for o in ranked if o.config.number not in rounds], notes


def _spread(values: np.ndarray) -> float:
    """Largest / smallest round (inf when a round measured nothing)."""
    return float(values.max() / values.min()) if values.size and values.min() > 0 else float("inf")


def compare(winner: Finalist, other: Finalist, objective: str, seed: int = 0) -> Comparison:
    """Winner / other per round (for latency: other p99 / winner p99), median and 95% bootstrap CI."""
    goal = objectives.get(objective)
    mine = np.asarray(goal.rounds(winner), dtype=float)
    theirs = np.asarray(goal.rounds(other), dtype=float)
    ratios = goal.ratio(mine, theirs)
    if ratios.size < 2 or np.ptp(ratios) == 0:
        low = high = float(np.median(ratios))
    else:
        from scipy import stats

        ci = stats.bootstrap((ratios,), np.median, confidence_level=0.95, method="percentile",
                             n_resamples=2000, rng=np.random.default_rng(seed)).confidence_interval
        low, high = float(ci.low), float(ci.high)
    width = high / low if low > 0 else float("inf")
    unstable = max(_spread(mine), _spread(theirs), width) > UNSTABLE_SPREAD
    return Comparison(other.role, other.number, float(np.median(ratios)), low, high, not (low <= 1.0 <= high),
                      unstable)


def quantized_must_win(order: list[TrialOutcome], finalists: list[Finalist],
                       objective: str) -> tuple[list[TrialOutcome], str]:
    """`order` (deploy_order's) with a quantized (INT8/FP8) trial first kept first only where it beats the
    best unquantized finalist after it beyond the 95% interval of their paired rounds; else that finalist
    goes first, and the note says why: a tie in speed is not worth quantization's risk to accuracy (the
    metric and the checks see only the samples)."""
    rounds = {f.number: f for f in finalists}
    if not order or order[0].precision not in QUANTIZED or order[0].config.number not in rounds:
        return order, ""
    other = next((o for o in order[1:] if o.precision not in QUANTIZED and o.config.number in rounds), None)
    if other is None:
        return order, ""
    top = order[0]
    c = compare(rounds[top.config.number], rounds[other.config.number], objective)
    if c.distinct and c.ratio > 1.0:
        return order, ""
    note = (f"trial {top.config.number} ({top.config.path}, {top.precision}) measured {c.ratio:.3g}x trial "
            f"{other.config.number} ({other.config.path}, {other.precision}) in the same rounds, 95% CI "
            f"{c.low:.3g}-{c.high:.3g}x: not ahead beyond the interval, so the unquantized trial "
            f"{other.config.number} is deployed (a quantized model has to win beyond it)")
    return [other, *(o for o in order if o is not other)], note


def compare_all(winner: int, finalists: list[Finalist], objective: str) -> list[Comparison]:
    """The winner against every role a finalist holds (the baselines, ORT's defaults, enqueued
    configurations; the winner's own roles give 1.0) and against the runner-up, from the rounds."""
    mine = next((f for f in finalists if f.number == winner), None)
    if mine is None:
        return []
    out = [compare(mine, replace(f, role=role), objective)
           for f in finalists for role in f.role.split(", ") if not is_top(role) and role != REMEASURED]
    runner_up = next((f for f in finalists if f is not mine and is_top(f.role)), None)
    if runner_up is not None:
        out.append(compare(mine, replace(runner_up, role="runner-up"), objective))
    return out
