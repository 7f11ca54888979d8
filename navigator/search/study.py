"""The optuna study: storage in the output directory, its identity, the trials run and told, the budget
across reruns (what it proposes, from the sampler to the enqueued baselines: search/proposals.py).

Each trial's TrialOutcome is stored as JSON in the optuna trial's user attributes, so the study
database is the run record: a rerun continues it and the report is rebuilt from it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from navigator import env, lazy, paths
from navigator.errors import InputError, StudyMismatchError
from navigator import objective as objectives
from navigator.records import MEASURED, SCORED, TrialConfig, TrialOutcome, to_dict
from navigator.search import budget as budget_mod
from navigator.search import narrowing
from navigator.search import proposals
from navigator.search import space as space_mod
from navigator.search.proposals import CONSTRAINTS_ATTR, FINALIST_ROLES, USER_ROLE
from navigator.search.seen import Seen
from navigator.search.storage import StudyStorage
from navigator.search.view import OUTCOME_ATTR, REPEAT_ATTR, StudyView
from navigator.settings import StudySettings

DEFERRED_ATTR = "deferred"  # a trial that did not start for its expected cost: why
WAITED_ATTR = "waited"  # a trial put in the queue by a deferral (the cheaper one, or the one that waited): it waits no more
MAX_IDLE = 200  # proposals in a row answered from the study before the search gives up on the sampler
IDENTITY_WAIT_S = 60.0  # how long a joining worker waits for the creator of a shared study to describe it


class _Surplus(Exception):
    """A trial asked for after other workers' trials reached the study's trial cap: failed unrun."""


class Search(StudyView):
    """One study over the given paths for one source."""

    def __init__(self, storage: str | StudyStorage, settings: StudySettings, source: tuple[str, str],
                 path_names: list[str], fingerprint: str,
                 enqueue: dict[str, tuple[str, dict[str, Any]]] | None = None,
                 publish: dict[str, Any] | None = None, started: float | None = None) -> None:
        """`source` is (framework, kind), e.g. ("torch", "exported"): it decides which params apply.
        `enqueue` names configurations to try first, role -> (path, params; the rest at defaults).
        A shared storage's study is created by the first worker, joined by the others; `publish`
        (study user attributes: the settings and model location that joining workers read) is written
        before the identity, which joining workers wait for. `started`: when this run began (monotonic),
        the start of its budget."""
        self.storage = storage if isinstance(storage, StudyStorage) else StudyStorage(storage)
        self.settings = settings
        self.enqueue = enqueue or {}
        self.source = source
        self.path_names = path_names
        self.spaces = {n: paths.space(n, source[0], settings.search_space) for n in path_names}
        narrowing.keeps_references(self.spaces, source, settings.device)
        self.notes: list[str] = []  # what the report and the CLI say about this run of the search
        self.own_trials: int | None = None  # this worker's own trial cap (worker --trials)
        self.ran = 0  # trials this process ran
        self.measured = False  # whether this run measured anything (a trial, the finalists)
        self.deferred: dict[str, tuple[str, str]] = {}  # cost label -> (path, why it waited for cheaper ones)
        self.skipped: dict[str, str] = {}  # cost label -> why it never started: it could not finish in time
        self.hardware = env.hardware(settings.device)
        identity = {
            "fingerprint": fingerprint,
            "space": space_mod.space_hash(list(self.spaces.values()), source,
                                          {"paths": path_names, "batch_sizes": list(settings.batch_sizes)}),
            "objective": settings.objective,
            "hardware": self.hardware["class"],
        }
        created = self._open()
        old = self._identity(created)
        for key, value in (publish or {}).items():
            if old is None or old == identity:
                self.study.set_user_attr(key, value)
        if old is None:
            for key, value in identity.items():
                self.study.set_user_attr(key, value)
            proposals.enqueue_baselines(self.study, settings, source, self.spaces, path_names, self.enqueue)
            self.study.set_user_attr("identity", identity)  # last: a joining worker waits for it
        elif {**old, "hardware": old.get("hardware", identity["hardware"])} != identity:  # older studies had none
            raise StudyMismatchError(self._mismatch(old, identity))
        earlier = len(self.outcomes())
        if self.storage.shared:
            lazy.optuna().storages.fail_stale_trials(self.study)
            self.budget = budget_mod.Budget(settings.budget_s, trial_spent=self.elapsed)
        else:
            interrupted = proposals.retry_interrupted(self.study, self.spaces, settings.batch_sizes)
            if earlier or interrupted:
                self.notes.append(f"resumed: {earlier} trials from earlier runs" + "".join(
                    f"; trial {k} was interrupted, retried as trial {n}" for k, n in interrupted))
            self.budget = budget_mod.Budget(settings.budget_s, float(self.study.user_attrs.get(
                budget_mod.SPENT_ATTR, self.elapsed())), started or time.monotonic())
        self.seen = Seen(self.spaces, source, settings.batch_sizes, settings.seed)
        known = self.outcomes()
        for o in known:
            self.seen.add(o)
        self.costs = budget_mod.Costs(path_names, known)  # the paths' declared costs, and what trials taught

    def _open(self) -> bool:
        """Create the study, or load it where it exists; True when this process created it."""
        optuna = lazy.optuna()
        directions = objectives.get(self.settings.objective).directions
        storage = self.storage.open()
        try:
            self.study = optuna.create_study(storage=storage, study_name=self.storage.study, directions=directions,
                                             sampler=proposals.sampler(self.settings, self.storage.shared))
            return True
        except optuna.exceptions.DuplicatedStudyError:
            self.study = optuna.load_study(storage=storage, study_name=self.storage.study,
                                           sampler=proposals.sampler(self.settings, self.storage.shared))
        return False

    def _mismatch(self, old: dict[str, Any], new: dict[str, Any]) -> str:
        changed = [k for k in new if old.get(k, new[k]) != new[k]]
        shown = "; ".join(f"{k}: {old[k]!r} there, {new[k]!r} here" for k in changed if k in ("objective", "hardware"))
        if self.storage.shared:
            return (f"study {self.storage.study!r} in {self.storage.describe()} is a study of another "
                    f"{'/'.join(changed)}{f' ({shown})' if shown else ''}: a worker joins only with the same "
                    "model file, search space (paths available, batch sizes) and hardware class")
        return (f"the output directory holds a study of another {'/'.join(changed)} (model, search space, "
                f"objective or hardware){f' ({shown})' if shown else ''}; use another --out, or pass --force to "
                "start the study over there")

    def _identity(self, created: bool) -> dict[str, Any] | None:
        """The study's identity; a worker joining a shared study waits for its creator to write it."""
        deadline = time.monotonic() + IDENTITY_WAIT_S
        old = self.study.user_attrs.get("identity")
        while old is None and self.storage.shared and not created:
            if time.monotonic() > deadline:
                raise StudyMismatchError(f"study {self.storage.study!r} in {self.storage.describe()} holds no "
                                         "navigator search (its creator died early?); start another --study")
            time.sleep(1.0)
            old = self.study.user_attrs.get("identity")
        return old

    def config(self, trial: Any) -> TrialConfig:
        path = trial.suggest_categorical("path", self.path_names)
        convert, runtime = space_mod.suggest(trial, self.spaces[path], self.source)
        sizes = self.settings.batch_sizes
        batch = trial.suggest_categorical("batch_size", list(sizes)) if len(sizes) > 1 else sizes[0]
        return TrialConfig(trial.number, path, convert, runtime, int(batch))

    def run(self, run_trial: Callable[[TrialConfig, float, float | None], TrialOutcome],
            on_trial: Callable[[TrialOutcome], None] | None = None, wall_s: float | None = None,
            own_trials: int | None = None) -> None:
        """Trials until the budget (wall-clock of the runs, or summed trial time in a shared study), the
        trial cap or the search space runs out, or this worker's own `wall_s` or `own_trials` (counted
        over this process's calls). `run_trial` gets each
        configuration, its timeout and the bar of its short first measurement (None: measure in full). A local study runs ask -> run -> tell; a shared one runs in
        optuna's optimize, which keeps the heartbeats of its running trial."""
        optuna = lazy.optuna()
        if wall_s is not None:
            self.budget.deadline = time.monotonic() + wall_s
        self.own_trials = own_trials
        self._refresh_reserve()
        why = self._why_stop()
        if why == "budget":
            self.notes.append(f"no trial ran: earlier runs spent the budget ({self.budget.spent():.0f} s of "
                              f"{self.budget.total_s:.0f} s); rerun with a larger --budget to search further")
        if why:
            return
        if not self.storage.shared:
            idle = 0
            while not self._why_stop():
                if self.settings.sampler == "grid" or idle:  # the sampler repeats itself: show it the unseen
                    proposals.enqueue_unseen(self.study, self.seen, self.settings.batch_sizes,
                                             first=self.settings.sampler == "grid")
                trial = self.study.ask()
                value, ran = self._evaluate(trial, run_trial, on_trial, tell=self._tell)
                if not ran:
                    self._tell(trial, value)
                self.save_spent()
                idle = 0 if ran else idle + 1
                if idle >= MAX_IDLE:
                    self.notes.append(f"search stopped: the sampler proposed {MAX_IDLE} configurations in a row "
                                      "that the study had already answered")
                    return
            return
        # Several workers: the count and the summed time are checked after each trial, against the
        # whole study; _claim fails a trial that one worker asked for as another filled the cap.
        # A trial whose heartbeats came late (an overloaded machine) may be failed as stale by another
        # worker while it runs; optuna then refuses to tell it (ValueError), and this worker goes on.

        def objective(trial: Any) -> objectives.Told:
            value, _ = self._evaluate(trial, run_trial, on_trial)
            if value is None:
                # Pruned, not failed: TPE ranks pruned trials below every complete one, so it learns to
                # avoid a region that does not convert or validate (failed trials it would ignore).
                raise optuna.TrialPruned(trial.user_attrs.get(REPEAT_ATTR, ""))
            return value

        while self.budget.search_left() > 0:
            self._stale = False
            try:
                self.study.optimize(objective, timeout=self.budget.search_left(), catch=(_Surplus,),
                                    callbacks=[self._stop_when_spent])
                return
            except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
                if not self._stale:
                    raise

    def _tell(self, trial: Any, value: objectives.Told | None) -> None:
        """Finish a trial of the local loop: its value; pruned without one (TPE ranks pruned trials
        below complete ones); failed where it was deferred for cost (TPE ignores it)."""
        state = lazy.optuna().trial.TrialState
        pruned = state.FAIL if DEFERRED_ATTR in trial.user_attrs else state.PRUNED
        self.study.tell(trial, value, state=None if value is not None else pruned)

    def _evaluate(self, trial: Any, run_trial: Callable[[TrialConfig, float, float | None], TrialOutcome],
                  on_trial: Callable[[TrialOutcome], None] | None,
                  tell: Callable[[Any, objectives.Told | None], None] | None = None
                  ) -> tuple[objectives.Told | None, bool]:
        """(value to tell, or None: pruned; whether a trial ran). A configuration the study can answer
        (a repeat, a conversion known to fail) is not run: it is marked with the trial that answers it.
        `tell` finishes a trial that ran as soon as its outcome is stored (a kill after that leaves no
        RUNNING trial with an outcome behind)."""
        self._claim(trial)
        config = self.config(trial)
        answer = self.seen.answer(config)
        if answer is not None:
            trial.set_user_attr(REPEAT_ATTR, [answer.number, answer.reason])
            old = answer.outcome
            self._constrain(trial, old)
            return (self.value(old) if old is not None and old.status in SCORED else None), False
        if self._defer(trial, config):
            return None, False
        own = self.settings.trial_timeout_s or self.costs.plugin(config.path).timeout_s
        outcome = run_trial(config, self.budget.trial_timeout(own), self._bar(trial))
        self.measured = True
        self.ran += 1
        try:
            trial.set_user_attr(OUTCOME_ATTR, json.dumps(to_dict(outcome)))
        except lazy.optuna().exceptions.UpdateFinishedTrialError:  # failed as stale while it ran: retried elsewhere
            self._stale = True
            raise
        self._constrain(trial, outcome)
        value = self.value(outcome) if outcome.status in SCORED else None
        if tell is not None:
            tell(trial, value)
        self.seen.add(outcome)
        self.costs.learn(outcome)
        self._refresh_reserve()
        if on_trial:
            on_trial(outcome)
        return value, True

    def _constrain(self, trial: Any, outcome: TrialOutcome | None) -> None:
        """Store the constraint values of a trial's outcome, named, for the sampler (optuna 5 reads them
        from the trial, optuna 4 through constraints_func)."""
        goal = objectives.for_study(self.settings)
        if not goal.constraints or outcome is None:
            return
        values = goal.violations(outcome)
        trial.set_user_attr(CONSTRAINTS_ATTR, list(values))
        if hasattr(trial, "set_constraint"):
            for constraint, value in zip(goal.constraints, values):
                trial.set_constraint(constraint.__name__, value)

    def _defer(self, trial: Any, config: TrialConfig) -> bool:
        """Cost rules (local studies): a trial expected to cost more than what the search has left (plus
        half the grace) is skipped: it could not finish. One expected to cost over COST_SHARE of what is
        left waits once (`_wait_behind`): behind the cheapest configuration not seen yet of other paths
        not tried yet that are cheaper, or, enqueued itself (defaults, preset), behind the cheaper trials
        already queued; an enqueued one is queued again, a sampled one dropped. A trial that does not run
        is failed unrun (TPE ignores it)."""
        if self.storage.shared:
            return False
        params = {**config.convert, **config.runtime}
        cost = self.costs.expected(config.path, params)
        label = self.costs.label(config.path, params)
        left = self.budget.search_left()
        if self.costs.tried and cost > left + self.budget.grace() / 2:
            why = f"{label} (expected {cost:.0f} s) cannot finish in the {max(left, 0):.0f} s the search had left"
            self.skipped.setdefault(label, why)
            self.seen.drop(config)
        elif (cost > budget_mod.COST_SHARE * left and WAITED_ATTR not in trial.user_attrs
              and (behind := self._wait_behind(trial, config.path, cost, label))):
            why = f"{label} (expected {cost:.0f} s, {left:.0f} s left) waited for {behind}"
            if "role" in trial.user_attrs:
                self.study.enqueue_trial(trial.params, user_attrs={"role": trial.user_attrs["role"], WAITED_ATTR: label})
            self.deferred.setdefault(label, (config.path, why))
        else:
            return False
        trial.set_user_attr(DEFERRED_ATTR, why)
        return True

    def _wait_behind(self, trial: Any, path: str, cost: float, label: str) -> str:
        """What a costly trial waits behind, as the report says it ('' where nothing): cheaper paths not
        tried yet (their cheapest configuration not seen is queued first: without it the sampler or the
        queue may never propose one), else the cheaper trials queued already (for an enqueued trial)."""
        waiting = lazy.optuna().trial.TrialState.WAITING
        fixed = [(t.number, t.system_attrs.get("fixed_params", {}))
                 for t in self.study.get_trials(deepcopy=False, states=(waiting,))]
        queued = [space_mod.config_of(self.spaces[f["path"]], number, f, self.settings.batch_sizes[0])
                  for number, f in fixed if f.get("path") in self.spaces]
        costs = self.costs.per_path()
        cheaper = [n for n in self.path_names if n != path and n not in self.costs.tried and costs[n] < cost]
        if there := sorted({c.path for c in queued} & set(cheaper)):
            return f"cheaper untried paths: {', '.join(cheaper)} ({', '.join(there)} queued already)"
        points = [p for p in self.seen.uncovered.values() if p[0] in cheaper]
        if points:
            first = min(points, key=lambda p: self.costs.expected(p[0], {**p[1], **p[2]}))
            proposals.enqueue(self.study, first, self.settings.batch_sizes, {WAITED_ATTR: label})
            return f"cheaper untried paths: {', '.join(cheaper)} ({first[0]} queued first)"
        ahead = sum(self.costs.expected(c.path, {**c.convert, **c.runtime}) < cost for c in queued)
        return f"{ahead} cheaper queued trial(s)" if ahead and "role" in trial.user_attrs else ""

    def _bar(self, trial: Any) -> float | None:
        """The bar of a trial's short first measurement (budget.screen_bar); None for the baselines and
        the caller's configurations, which are always measured in full (the finalists re-measure them),
        and where screening is off."""
        role = str(trial.user_attrs.get("role", ""))
        # a pareto study keeps every trial: one slow on throughput may still be on the front for its p99
        if not self.settings.screen or objectives.get(self.settings.objective).front or role in FINALIST_ROLES or role.startswith(USER_ROLE):
            return None
        return budget_mod.screen_bar(self.outcomes(), self.settings.objective)

    def cost_notes(self) -> list[str]:
        """What waited for its expected cost (and whether it ever ran), and what was skipped for it."""
        tried = {o.config.path for o in self.outcomes()}
        return [*(f"deferred for cost: {why}" + ("" if path in tried else "; skipped: the budget ended first")
                  for path, why in self.deferred.values()),
                *(f"skipped for cost: {why}" for why in self.skipped.values())]

    def _refresh_reserve(self) -> None:
        measured = [o for o in self.outcomes() if o.status in MEASURED]
        self.budget.reserve_s = budget_mod.reserve(measured, self.settings)

    def save_spent(self) -> None:
        """Record what the runs of a local study spent (a rerun starts from it); a run that measured
        nothing (it rebuilt the report from the study) spends nothing."""
        if self.measured and not self.storage.shared:
            self.study.set_user_attr(budget_mod.SPENT_ATTR, round(self.budget.spent(), 3))

    def _why_stop(self) -> str:
        """Why the search stops now ('' if it goes on); the first trial of a study always runs."""
        trials = self.study.get_trials(deepcopy=False)
        running = lazy.optuna().trial.TrialState.RUNNING
        taken = sum(1 for t in trials if OUTCOME_ATTR in t.user_attrs or (t.state == running and self.storage.shared))
        if self.settings.trials is not None and taken >= self.settings.trials:
            return "trial cap"
        if self.own_trials is not None and self.ran >= self.own_trials:
            return "this worker's trial cap"
        if self.seen.exhausted():
            note = f"search space exhausted after {len(self.outcomes())} trials"
            if note not in self.notes:
                self.notes.append(note)
            return note
        if self.budget.search_left() <= 0 and taken:
            return "budget"
        return ""

    def _claim(self, trial: Any) -> None:
        """Record who runs the trial (host, hardware, versions); in a shared study, note which dead
        worker's trial it retries, and refuse it where the trial cap is already taken."""
        trial.set_user_attr("hardware", self.hardware)
        trial.set_user_attr("worker", f"{self.hardware.get('host', '?')}:{os.getpid()}")
        if not self.storage.shared:
            return
        history = self.study._storage.get_trial(trial._trial_id).system_attrs.get("retry_history")
        if history:
            trial.set_user_attr("retry_of", history[-1])
        if self.settings.trials is not None:
            running = lazy.optuna().trial.TrialState.RUNNING
            taken = sum(1 for t in self.study.get_trials(deepcopy=False) if t.number < trial.number and
                        (t.state == running or OUTCOME_ATTR in t.user_attrs))
            if taken >= self.settings.trials:
                trial.set_user_attr("skipped", "the study's trial cap was reached by other workers")
                self.study.stop()
                raise _Surplus()

    def _stop_when_spent(self, study: Any, _: Any) -> None:
        if self._why_stop():
            study.stop()

    @classmethod
    def load(cls, storage: StudyStorage, settings: StudySettings) -> Search:
        """A read-only view of an existing study (outcomes, roles, budget spent), for its report."""
        self = cls.__new__(cls)
        self.storage, self.settings, self.notes, self.measured = storage, settings, [], False
        self.own_trials, self.ran, self.deferred, self.skipped = None, 0, {}, {}
        self.study = existing(storage)
        self.budget = budget_mod.Budget(settings.budget_s, trial_spent=self.elapsed if storage.shared else None)
        return self

def existing(storage: StudyStorage) -> Any:
    """An existing study; InputError where the storage holds none of that name."""
    optuna = lazy.optuna()
    try:
        return optuna.load_study(storage=storage.open(), study_name=storage.study)
    except KeyError:
        raise InputError(f"no study {storage.study!r} in {storage.describe()}: create it with "
                         f"navigator optimize --storage URL --study {storage.study} ...") from None


def storage_url(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"
