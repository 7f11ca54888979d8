"""`navigator check --model`: optimize the candidate with the baseline's settings, then re-measure here, in
interleaved rounds (A B C, B C A, ...), the baseline's winner, the candidate's winner and the baseline's
winning configuration applied to the candidate model (when it validates against the candidate).

The candidate's figure is the better of its two contenders in those rounds: a search under a short
budget on a noisy machine may settle on a worse configuration than the baseline's, and the gate asks
whether the *model* got slower to serve, not whether one search was luckier than another."""

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


def _winner_of(report: Path) -> Any:
    from navigator.records import TrialOutcome, from_dict
    from navigator.results import read_report

    return from_dict(TrialOutcome, read_report(report)["winner"])


def _baseline_call(report: Path, model: str | Path | None) -> Callable[[], Any]:
    """The baseline's winner loaded from its recorded source (or `model`) and its run's cache."""
    from navigator import paths
    from navigator.results import load_source_of, source_record
    from navigator.trial.cache import Cache

    config = _winner_of(report).config
    source = load_source_of(report, config.batch_size, model=Path(model) if model else None)
    recorded = source_record(report).get("fingerprint")
    if recorded and recorded != source.fingerprint:
        raise InputError(f"the baseline model {source.file} is not the one {report} measured (its contents "
                         "changed); pass the original with --baseline-model")
    module = paths.get(config.path)
    artifact = module.convert(source, config.convert, Cache(report.parent / "cache", source.fingerprint))
    runner = module.load(artifact, source, {**config.convert, **config.runtime})
    return _prepared(runner, source, config.batch_size)


def _same(a: Any, b: Any) -> bool:
    return (a.path, a.convert, a.runtime, a.batch_size) == (b.path, b.convert, b.runtime, b.batch_size)


def _baseline_config_on(result: Any, source: Any, base_report: Path, settings: dict[str, Any]) -> Any:
    """A warm call of the baseline's winning configuration on the candidate model, or None when it does
    not apply, fails or gives outputs that do not match the candidate's source (validated as a trial)."""
    from navigator import paths
    from navigator.records import MEASURED
    from navigator.settings import OptimizeSettings
    from navigator.trial.cache import Cache
    from navigator.trial.run import TrialContext, run_trial

    config = replace(_winner_of(base_report).config, number=-1)
    module = paths.get(config.path) if config.path in paths.NAMES else None
    if module is None or _same(config, result.winner.config) or source.framework not in module.FRAMEWORKS:
        return None
    opts = OptimizeSettings(out=result.report.parent, batch_sizes=(config.batch_size,),
                            window_s=float(settings.get("window_s", 0.25)),
                            window_calls=int(settings.get("window_calls", 0)),
                            noise_atol=float(settings.get("noise_atol", 0.0)), show_progress=False)
    ctx = TrialContext(source, Cache(result.report.parent / "cache", source.fingerprint), opts)
    if module.available() or run_trial(ctx, config).status not in MEASURED:
        return None
    runner = module.load(module.convert(source, config.convert, ctx.cache), source,
                         {**config.convert, **config.runtime})
    return _prepared(runner, source, config.batch_size)


def optimize_and_remeasure(base_report: Path, base: Side, model: Any, *, budget: str | float,
                           out: str | Path | None, rounds: int, paths: list[str] | None,
                           baseline_model: str | Path | None, progress: bool,
                           trust_pickle: bool = False) -> tuple[Side, Side]:
    """(candidate, baseline) with `rounds` paired measurements each."""
    import statistics

    from navigator.api import optimize
    from navigator.results import load_winner, read_report, source_record
    from navigator.search.finalists import interleave
    from navigator.trial.bench import warm_up

    if rounds < 3:
        raise InputError(f"--rounds {rounds}: at least 3 rounds are needed for a confidence interval")
    settings = read_report(base_report).get("settings") or {}
    record = source_record(base_report)
    target = Path(out) if out else Path(tempfile.mkdtemp(prefix="navigator-check-"))
    result = optimize(model, budget=budget, out=target, objective=settings.get("objective", "throughput"),
                      batch_size=",".join(str(b) for b in settings.get("batch_sizes", [1])), paths=paths,
                      window_s=float(settings.get("window_s", 0.25)),
                      window_calls=int(settings.get("window_calls", 0)),
                      input_spec=record.get("input_spec") if isinstance(model, (str, Path)) else None,
                      trust_pickle=trust_pickle, progress=progress)
    cand = side("candidate", result)
    if cand.failure:
        return cand, base
    assert result.winner is not None
    calls = [(_baseline_call(base_report, baseline_model), int(base.batch_size or 1))]
    runner, cand_source = load_winner(result)
    calls.append((_prepared(runner, cand_source, result.winner.config.batch_size), result.winner.config.batch_size))
    borrowed = _baseline_config_on(result, cand_source, base_report, settings)
    if borrowed is not None:  # it validated on the candidate: the baseline's path is still valid there
        calls.append((borrowed, int(base.batch_size or 1)))
        cand = replace(cand, valid_paths=tuple(dict.fromkeys((*cand.valid_paths, str(base.path)))))
    window_s = float(settings.get("window_s", 0.25))
    for call, _ in calls:
        warm_up(call, 2 * window_s)
    figures = interleave(calls, rounds, window_s, int(settings.get("window_calls", 0)))
    (base_thr, base_p99), mine = figures[0], figures[1:]
    if settings.get("objective", "throughput") == "throughput":
        best = max(range(len(mine)), key=lambda i: statistics.median(mine[i][0]))
    else:
        best = min(range(len(mine)), key=lambda i: statistics.median(mine[i][1]))
    thr, p99 = mine[best]
    if best == 1:  # the baseline's configuration served the candidate better than its own winner
        cand = replace(cand, label="candidate with the baseline's configuration", path=base.path, number=None,
                       batch_size=base.batch_size)
    return (replace(cand, throughput=thr, p99_ms=p99, cv=0.0),
            replace(base, throughput=base_thr, p99_ms=base_p99, cv=0.0))
