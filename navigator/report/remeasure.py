"""`navigator check --model`: optimize the candidate with the baseline's settings, then re-measure both
models here, in interleaved rounds (A B C D, B C D A, ...), each with its own winning configuration and
with the other side's (when that configuration converts and validates on it).

Each side's figure is the better of its two configurations in those rounds. Two searches under a short
budget on a noisy machine rarely settle on the same configuration; trying both winners on both models
makes the gate compare the *models* under the best configuration known for each, so that an unchanged
model does not fail, and a slower one is not hidden, because one search was luckier than the other.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from navigator import objective as objectives
from navigator.errors import InputError
from navigator.records import Result, SourceRecord, TrialConfig
from navigator.settings import StudySettings
from navigator.report.check import Side, side


@dataclass(frozen=True)
class _Model:
    """One side's model as loaded here, the cache its conversions go to, and its winning configuration."""

    source: Any
    cache_dir: Path
    winner: TrialConfig


def _call(model: _Model, config: TrialConfig, settings: StudySettings,
          validate: bool) -> Callable[[], Any] | None:
    """A warm-able call of `config` on `model`; with `validate`, None unless the configuration applies to
    this model and its outputs match the model's source within tolerance (checked as a trial)."""
    from navigator import paths
    from navigator.paths.base import Target
    from navigator.records import MEASURED
    from navigator.source.iospec import resize_batch
    from navigator.cache import Cache
    from navigator.trial.run import TrialContext, run_trial

    if config.path not in paths.NAMES:
        return None
    path = paths.get(config.path)
    cache = Cache(model.cache_dir, model.source.fingerprint)
    if validate:
        if model.source.framework not in path.frameworks or path.available():
            return None
        opts = StudySettings(batch_sizes=(config.batch_size,), window_s=settings.window_s,
                             window_calls=settings.window_calls, noise_atol=settings.noise_atol)
        if run_trial(TrialContext(model.source, cache, opts), replace(config, number=-1)).status not in MEASURED:
            return None
    artifact = path.convert(model.source, config.convert, cache, Target.of(model.source, path.devices[0]))
    runner = path.load(artifact, model.source, {**config.convert, **config.runtime})
    samples = model.source.samples
    return runner.prepare(resize_batch(samples, config.batch_size) if model.source.io.batched else samples)


def _baseline_model(report: Result, model: str | Path | None, trust_pickle: bool) -> _Model:
    """The baseline's model loaded from its recorded file (or `model`), with its run's cache; checked to
    be the file the report measured before it is opened, unpickled only with `trust_pickle`."""
    from navigator.results import load_source_of

    assert report.winner is not None and report.report is not None  # the gate checks it has one first
    winner = report.winner.config
    source = load_source_of(report, winner.batch_size, model=Path(model) if model else None,
                            trust_pickle=trust_pickle, changed="pass the original with --baseline-model")
    return _Model(source, report.report.parent / "cache", winner)


def calibration_inputs(record: SourceRecord) -> str | None:
    """The file a run's INT8 trials calibrated on: its --calibration-data, else its validation inputs
    (--input-data); None where navigator drew those at random (its INT8 trials refused to calibrate)."""
    if record.calibration_data:
        return record.calibration_data
    return record.input_data if record.input_data and not record.generated_inputs else None


def _same(a: TrialConfig, b: TrialConfig) -> bool:
    return (a.path, a.convert, a.runtime, a.batch_size) == (b.path, b.convert, b.runtime, b.batch_size)


def _describe(config: TrialConfig, whose: str) -> str:
    return f"the {whose}'s winning configuration ({config.path}, batch {config.batch_size})"


def optimize_and_remeasure(base_report: Path, base: Side, model: Any, *, budget: str | float,
                           out: str | Path | None, rounds: int, paths: list[str] | None,
                           baseline_model: str | Path | None, progress: bool,
                           trust_pickle: bool = False, input_spec: str | None = None,
                           input_data: str | Path | None = None) -> tuple[Side, Side]:
    """(candidate, baseline) with `rounds` paired measurements each. The candidate's inputs are
    `input_spec` / `input_data`, else (a model file) the baseline's recorded --input-spec."""
    from navigator.pyapi import optimize
    from navigator.results import load_source_of, read_report, source_record
    from navigator.trial.remeasure import interleave
    from navigator.trial.bench import warm_up

    if rounds < 3:
        raise InputError(f"--rounds {rounds}: at least 3 rounds are needed for a confidence interval")
    recorded = read_report(base_report)
    settings = recorded.settings or StudySettings()
    record = source_record(recorded)
    theirs = _baseline_model(recorded, baseline_model, trust_pickle)  # before spending the budget
    if input_spec is None and input_data is None and isinstance(model, (str, Path)):
        input_spec = record.input_spec
    target = Path(out) if out else Path(tempfile.mkdtemp(prefix="navigator-check-"))
    # The candidate's INT8 trials calibrate on the baseline's calibration inputs: then each side's INT8
    # winner, re-validated on the other's model, is quantized on the inputs it was measured with.
    result = optimize(model, budget=budget, out=target, objective=settings.objective,
                      batch_size=",".join(map(str, settings.batch_sizes)), paths=paths, window_s=settings.window_s,
                      window_calls=settings.window_calls, input_spec=input_spec, input_data=input_data,
                      trust_pickle=trust_pickle, progress=progress, calibration=calibration_inputs(record))
    cand = side("candidate", result)
    if cand.failure or result.winner is None or result.report is None:
        return cand, base
    mine = _Model(load_source_of(result, result.winner.config.batch_size, trust_pickle=trust_pickle),
                  target / "cache", result.winner.config)
    # (side, configuration description, call): each model with its own winner, then with the other's.
    entries: list[tuple[str, str, Callable[[], Any], int]] = []
    for who, own in (("baseline", theirs), ("candidate", mine)):
        call = _call(own, own.winner, settings, validate=False)
        assert call is not None  # a recorded winner's path is a known path
        entries.append((who, "", call, own.winner.batch_size))
    if not _same(mine.winner, theirs.winner):
        for who, model_, config, whose in (("baseline", theirs, mine.winner, "candidate"),
                                           ("candidate", mine, theirs.winner, "baseline")):
            call = _call(model_, config, settings, validate=True)
            if call is not None:
                entries.append((who, _describe(config, whose), call, config.batch_size))
    if any(who == "candidate" and how for who, how, _, _ in entries):  # validated: the path is valid there
        cand = replace(cand, valid_paths=tuple(dict.fromkeys((*cand.valid_paths, str(base.path)))))
    for _, _, call, _ in entries:
        warm_up(call, 2 * settings.window_s)
    figures = interleave([(call, batch) for _, _, call, batch in entries], rounds, settings.window_s,
                         settings.window_calls)
    goal = objectives.get(settings.objective)

    def best(who: str, s: Side) -> Side:
        options = [(how, fig) for (w, how, _, _), fig in zip(entries, figures) if w == who]
        how, (thr, p99) = max(options, key=lambda o: goal.rounds_score(*o[1]))
        return replace(s, throughput=thr, p99_ms=p99, cv=0.0, measured=how)

    return best("candidate", cand), best("baseline", base)
