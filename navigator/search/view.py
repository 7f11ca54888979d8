"""A read-only view of a study: the outcomes stored on its trials, the roles, the budget spent, the
finalists' last re-measurement, who ran what in a shared study. Search (study.py) runs it."""

from __future__ import annotations

import json
from typing import Any

from navigator import lazy
from navigator import objective as objectives
from navigator.records import Finalist, StudySummary, TrialOutcome, WorkerRecord, from_dict, to_dict
from navigator.search.budget import Budget
from navigator.search.storage import StudyStorage
from navigator.settings import StudySettings

OUTCOME_ATTR = "outcome"
INTERRUPTED_ATTR = "interrupted"  # the outcome of a trial a killed run left RUNNING (failed, retried)
REPEAT_ATTR = "answered_by"  # a proposed configuration answered from the study: the trial that answers it
FINALISTS_ATTR = "finalists"  # the last re-measurement of the finalists and the trials it was chosen from


class StudyView:
    """`study` (optuna) in `storage`, searched with `settings`, its `budget`."""

    storage: StudyStorage
    settings: StudySettings
    study: Any
    budget: Budget
    notes: list[str]
    measured: bool

    def value(self, outcome: TrialOutcome) -> objectives.Told:
        """What optuna is told for the trial: its figure, or its figures in a multi-objective study."""
        assert outcome.bench is not None
        return objectives.get(self.settings.objective).told(outcome.bench)

    def elapsed(self) -> float:
        """Seconds of trials this study has run, over every invocation. A trial interrupted by a
        killed process has no outcome and does not count: its end time is when it was found."""
        total = 0.0
        for t in self.study.get_trials(deepcopy=False):
            if t.datetime_start and t.datetime_complete and OUTCOME_ATTR in t.user_attrs:
                total += (t.datetime_complete - t.datetime_start).total_seconds()
        return total

    def summary(self) -> StudySummary:
        """Who ran what in a shared study: each worker's hardware and trials, the trials of dead workers
        and their retries, trials left out of the ranking (another hardware class), library versions
        that differ between workers."""
        optuna = lazy.optuna()
        study_class = self.study.user_attrs.get("hardware")
        trials = self.study.get_trials(deepcopy=False)
        workers: dict[str, dict[str, Any]] = {}
        for t in trials:
            if OUTCOME_ATTR in t.user_attrs and "worker" in t.user_attrs:
                entry = workers.setdefault(t.user_attrs["worker"], {"hardware": t.user_attrs.get("hardware", {}),
                                                                    "trials": []})
                entry["trials"].append(t.number)
        versions = {k for w in workers.values() for k in w["hardware"] if k.startswith("version.")}
        return StudySummary(
            name=self.storage.study, storage=self.storage.describe(), hardware_class=study_class,
            workers={k: WorkerRecord(w["hardware"], tuple(w["trials"])) for k, w in workers.items()},
            dead_worker_trials=tuple(t.number for t in trials if t.state == optuna.trial.TrialState.FAIL
                                     and "skipped" not in t.user_attrs),
            retries={str(t.number): t.user_attrs["retry_of"] for t in trials
                     if "retry_of" in t.user_attrs and OUTCOME_ATTR in t.user_attrs},
            not_ranked_other_hardware=tuple(t.number for t in trials if OUTCOME_ATTR in t.user_attrs and
                                            t.user_attrs.get("hardware", {}).get("class", study_class) != study_class),
            versions_differ=tuple(sorted(k for k in versions
                                         if len({w["hardware"].get(k) for w in workers.values()}) > 1)),
            still_running=sum(t.state == optuna.trial.TrialState.RUNNING for t in trials))

    def outcomes(self, comparable: bool = False) -> list[TrialOutcome]:
        """Every trial's outcome; `comparable`: only those measured on the study's hardware class (the
        ranking never mixes classes; trials that recorded none count as the study's)."""
        study_class = self.study.user_attrs.get("hardware")
        out = []
        for t in self.study.get_trials(deepcopy=False):
            raw = t.user_attrs.get(OUTCOME_ATTR)
            if comparable and study_class and t.user_attrs.get("hardware", {}).get("class", study_class) != study_class:
                continue
            if raw:
                out.append(from_dict(TrialOutcome, json.loads(raw)))
        return out

    def interrupted(self) -> list[TrialOutcome]:
        """The outcomes of trials that killed runs left behind (failed, retried)."""
        return [from_dict(TrialOutcome, json.loads(t.user_attrs[INTERRUPTED_ATTR]))
                for t in self.study.get_trials(deepcopy=False) if INTERRUPTED_ATTR in t.user_attrs]

    def roles(self) -> dict[str, int]:
        """'baseline' (and '<path> defaults') -> the number of the latest such trial with an outcome (or
        of the trial that answered it, where the study had measured that configuration already)."""
        roles = {}
        for t in self.study.get_trials(deepcopy=False):
            if "role" in t.user_attrs and OUTCOME_ATTR in t.user_attrs:
                roles[t.user_attrs["role"]] = t.number
            elif "role" in t.user_attrs and REPEAT_ATTR in t.user_attrs:
                roles[t.user_attrs["role"]] = t.user_attrs[REPEAT_ATTR][0]
        return roles

    def stored_finalists(self, chosen_from: list[int]) -> list[Finalist] | None:
        """The finalists re-measured by an earlier run, where they were chosen from the same trials
        (no trial ran since): a rerun keeps its winner instead of measuring again."""
        raw = self.study.user_attrs.get(FINALISTS_ATTR)
        if not raw or json.loads(raw).get("chosen_from") != chosen_from:
            return None
        return [from_dict(Finalist, f) for f in json.loads(raw)["finalists"]]

    def store_finalists(self, chosen_from: list[int], finalists: list[Finalist]) -> None:
        self.measured = True
        self.study.set_user_attr(FINALISTS_ATTR, json.dumps({"chosen_from": chosen_from,
                                                             "finalists": [to_dict(f) for f in finalists]}))
