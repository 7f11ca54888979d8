"""`navigator check --model`: optimize the candidate with the baseline's settings, then re-measure both
winners here in interleaved rounds (A B, B A, ...), so that the comparison is paired by round."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from navigator.errors import InputError
from navigator.report.check import Side, side


def _prepared(runner: Any, source: Any, batch: int) -> Callable[[], Any]:
    from navigator.source.iospec import resize_batch

    inputs = resize_batch(source.samples, batch) if source.io.batched else source.samples
    return runner.prepare(inputs)


def _baseline_call(report: Path, base: Side, model: str | Path | None) -> Callable[[], Any]:
    """The baseline's winner loaded from its recorded source (or `model`) and its run's cache."""
    from navigator import paths
    from navigator.records import TrialOutcome, from_dict
    from navigator.results import load_source_of, read_report, source_record
    from navigator.trial.cache import Cache

    data = read_report(report)
    winner = from_dict(TrialOutcome, data["winner"])
    source = load_source_of(report, winner.config.batch_size, model=Path(model) if model else None)
    recorded = source_record(report).get("fingerprint")
    if recorded and recorded != source.fingerprint:
        raise InputError(f"the baseline model {source.file} is not the one {report} measured (its contents "
                         "changed); pass the original with --baseline-model")
    module = paths.get(winner.config.path)
    artifact = module.convert(source, winner.config.convert, Cache(report.parent / "cache", source.fingerprint))
    runner = module.load(artifact, source, {**winner.config.convert, **winner.config.runtime})
    return _prepared(runner, source, winner.config.batch_size)


def _enqueue_baseline(report: Path, only: list[str] | None) -> dict[str, tuple[str, dict[str, Any]]] | None:
    """The baseline winner's configuration, tried first in the candidate's search and re-measured with its
    finalists: for an unchanged model the candidate then cannot lose merely because its search, under
    noise, settled on another configuration."""
    from navigator import env, paths
    from navigator.records import TrialOutcome, from_dict
    from navigator.results import read_report

    config = from_dict(TrialOutcome, read_report(report)["winner"]).config
    if (only and config.path not in only) or config.path not in paths.NAMES:
        return None
    module = paths.get(config.path)
    if module.available() or env.default_device() not in module.DEVICES:
        return None
    return {"baseline winner": (config.path, {**config.convert, **config.runtime})}


def optimize_and_remeasure(base_report: Path, base: Side, model: Any, *, budget: str | float,
                           out: str | Path | None, rounds: int, paths: list[str] | None,
                           baseline_model: str | Path | None, progress: bool,
                           trust_pickle: bool = False) -> tuple[Side, Side]:
    """(candidate, baseline) with `rounds` paired measurements each of their winners."""
    from navigator.api import optimize
    from navigator.results import load_winner, read_report, source_record
    from navigator.search.finalists import interleave
    from navigator.trial.bench import warm_up

    if rounds < 3:
        raise InputError(f"--rounds {rounds}: at least 3 rounds are needed for a confidence interval")
    settings = read_report(base_report).get("settings") or {}
    record = source_record(base_report)
    target = Path(out) if out else Path(tempfile.mkdtemp(prefix="navigator-check-"))
    args: dict[str, Any] = dict(
        budget=budget, out=target, objective=settings.get("objective", "throughput"),
        batch_size=",".join(str(b) for b in settings.get("batch_sizes", [1])), paths=paths,
        window_s=float(settings.get("window_s", 0.25)), window_calls=int(settings.get("window_calls", 0)),
        input_spec=record.get("input_spec") if isinstance(model, (str, Path)) else None,
        trust_pickle=trust_pickle, progress=progress)
    try:
        result = optimize(model, enqueue=_enqueue_baseline(base_report, paths), **args)
    except InputError as exc:  # the candidate cannot take the baseline's path (another framework)
        if "enqueued configuration" not in str(exc):
            raise
        result = optimize(model, **args)
    cand = side("candidate", result)
    if cand.failure:
        return cand, base
    assert result.winner is not None
    base_call = _baseline_call(base_report, base, baseline_model)
    runner, cand_source = load_winner(result)
    cand_call = _prepared(runner, cand_source, result.winner.config.batch_size)
    window_s = float(settings.get("window_s", 0.25))
    for call in (base_call, cand_call):
        warm_up(call, 2 * window_s)
    (cand_thr, cand_p99), (base_thr, base_p99) = interleave(
        [(cand_call, result.winner.config.batch_size), (base_call, int(base.batch_size or 1))], rounds,
        window_s, int(settings.get("window_calls", 0)))
    return (replace(cand, throughput=cand_thr, p99_ms=cand_p99, cv=0.0),
            replace(base, throughput=base_thr, p99_ms=base_p99, cv=0.0))
