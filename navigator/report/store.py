"""The reports rebuilt from a study storage (an SQLAlchemy URL: the SQLite file in an output directory
today, a shared database for studies run on several machines).

Each trial's outcome already lives on its optuna trial. At the end of a run the rest of the Result
(winner, finalists' interleaved rounds, comparisons, environment, settings), as `to_dict` gives it, is
stored as the study's user attribute SUMMARY_ATTR, so that `navigator report` rebuilds every report
without re-measuring.
A study without that attribute (a run that was killed) is rendered from its trials alone: the best
valid trial, with no interleaved re-measurement.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from navigator.errors import InputError, one_line
from navigator.records import Result, TrialOutcome, from_dict, to_dict

SUMMARY_ATTR = "result"


def storage_for_dir(directory: Path) -> str:
    """The storage URL of an output directory's study; InputError when it holds none."""
    from navigator.search.study import storage_url

    if not (directory / "study.db").is_file():
        raise InputError(f"{directory} holds no navigator study (no study.db); pass the --out of a run")
    return storage_url(directory)


def save(study: Any, result: Result) -> None:
    """Store everything but the outcomes (already on the trials) on the study, with their count."""
    data = to_dict(replace(result, outcomes=()))
    study.set_user_attr(SUMMARY_ATTR, json.dumps({"summary_trials": len(result.outcomes), "result": data}))


def open_study(storage_url: str, study_name: str) -> Any:
    """The optuna study behind `storage_url`; InputError (one line) when it cannot be opened."""
    from navigator import lazy

    optuna = lazy.optuna()
    try:
        return optuna.load_study(study_name=study_name, storage=storage_url)
    except KeyError:
        raise InputError(f"no study named {study_name!r} in {storage_url}") from None
    except Exception as exc:  # SQLAlchemy: unreachable or unreadable storage
        raise InputError(f"cannot open the study storage {storage_url}: {one_line(exc)}") from None


def load(storage_url: str, study_name: str) -> Result:
    """The Result stored on a study."""
    from navigator.search.study import OUTCOME_ATTR

    study = open_study(storage_url, study_name)
    outcomes = tuple(from_dict(TrialOutcome, json.loads(t.user_attrs[OUTCOME_ATTR]))
                     for t in study.get_trials(deepcopy=False) if OUTCOME_ATTR in t.user_attrs)
    data = json.loads(study.user_attrs.get(SUMMARY_ATTR, "{}"))
    if "result" not in data:  # a run that did not finish, or a summary of an older navigator
        why = "the run did not finish" if not data else "its summary was written by an older navigator"
        return replace(_from_trials(study, outcomes), notes=(
            f"rebuilt from the study's trials alone ({why}): the winner is the best valid trial, not "
            "re-measured against the others",))
    result = from_dict(Result, data["result"])
    by_number = {o.config.number: o for o in outcomes}
    # The stored winner and baseline are the same trials as in the outcomes: keep one copy.
    winner = by_number.get(result.winner.config.number, result.winner) if result.winner else None
    baseline = by_number.get(result.baseline.config.number, result.baseline) if result.baseline else None
    result = replace(result, outcomes=outcomes, winner=winner, baseline=baseline)
    later = len(outcomes) - int(data["summary_trials"])
    if later:  # a later run of the same study was interrupted before its summary
        result = replace(result, notes=(*result.notes, f"{later} trial(s) ran after the winner was chosen "
                                        "(an interrupted rerun); rerun navigator optimize to re-measure the finalists"))
    return result


def _from_trials(study: Any, outcomes: tuple[TrialOutcome, ...]) -> Result:
    from navigator import env
    from navigator import objective as objectives

    objective = study.user_attrs.get("objective", "throughput")
    ranked = objectives.get(objective).rank(outcomes)
    winner = ranked[0] if ranked else None
    roles = {t.user_attrs.get("role"): t.number for t in study.get_trials(deepcopy=False)}
    baseline = next((o for o in outcomes if o.config.number == roles.get("baseline")), None)
    # No speedup: the trials' own figures were measured at different moments of a loaded machine, and
    # a ratio of two of them is not a measurement (the headline says the finalists were not re-measured).
    return Result(model=study.user_attrs.get("model", study.study_name), objective=objective, outcomes=outcomes,
                  winner=winner, baseline=baseline, speedup=None, repository=None, report=None,
                  environment=env.snapshot())


def render_from_storage(storage_url: str, study_name: str, out_dir: Path) -> Path:
    """Write report.json, report.md and report.html for a stored study into `out_dir`; returns
    report.json's path. `storage_url` is any optuna storage URL (sqlite:///..., postgresql://...)."""
    from navigator.report import build

    result = load(storage_url, study_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = replace(result, report=out_dir / "report.json")
    return build.write(result, out_dir)
