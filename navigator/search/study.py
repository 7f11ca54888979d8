"""The optuna study: storage in the output directory, samplers, baselines, budget across reruns.

Each trial's TrialOutcome is stored as JSON in the optuna trial's user attributes, so the study
database is the run record: a rerun continues it and the report is rebuilt from it.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from navigator import env, paths
from navigator.errors import InputError, StudyMismatchError
from navigator.records import TrialConfig, TrialOutcome, from_dict, to_dict
from navigator.search import space as space_mod
from navigator.search.storage import StudyStorage
from navigator.settings import OptimizeSettings
from navigator.trial.bench import STABLE_WINDOWS

OUTCOME_ATTR = "outcome"
IDENTITY_WAIT_S = 60.0  # how long a joining worker waits for the creator of a shared study to describe it
# Enqueued default trials that are re-measured with the finalists, for the speedups in the report.
FINALIST_ROLES = ("baseline", "ort_cpu defaults", "ort_cuda defaults")
USER_ROLE = "user: "  # prefix of the roles of configurations the caller enqueued; re-measured too


def _optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(logging.ERROR)  # failed trials are recorded by navigator
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def sampler(settings: OptimizeSettings, shared: bool = False) -> Any:
    """The sampler; for a shared study each worker draws from its own seed (the same seed would make
    every worker suggest the same configurations), and TPE counts running trials as bad (constant liar)."""
    optuna = _optuna()
    seed = int.from_bytes(os.urandom(4), "little") if shared else settings.seed
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.sampler == "grid":  # every combination of the conditional space, define-by-run
        return optuna.samplers.BruteForceSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=8,
                                      constant_liar=shared)


class _Surplus(Exception):
    """A trial asked for after other workers' trials reached the study's trial cap: failed unrun."""


class Search:
    """One study over the given paths for one source."""

    def __init__(self, storage: str | StudyStorage, settings: OptimizeSettings, source: tuple[str, str],
                 path_names: list[str], fingerprint: str,
                 enqueue: dict[str, tuple[str, dict[str, Any]]] | None = None,
                 publish: dict[str, Any] | None = None) -> None:
        """`source` is (framework, kind), e.g. ("torch", "exported"): it decides which params apply.
        `enqueue` names configurations to try first, role -> (path, params; the rest at defaults).
        A shared storage's study is created by the first worker, joined by the others; `publish`
        (study user attributes: the settings and model location that joining workers read) is written
        before the identity, which joining workers wait for."""
        self.storage = storage if isinstance(storage, StudyStorage) else StudyStorage(storage)
        self.settings = settings
        self.enqueue = enqueue or {}
        self.framework = source[0]
        self.source = source
        self.path_names = path_names
        self.spaces = {n: paths.space(n, source[0]) for n in path_names}
        self.deadline: float | None = None  # monotonic time this worker stops at (its own --budget)
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
            self._enqueue_baselines()
            self.study.set_user_attr("identity", identity)  # last: a joining worker waits for it
        elif {**old, "hardware": old.get("hardware", identity["hardware"])} != identity:  # older studies had none
            raise StudyMismatchError(self._mismatch(old, identity))
        if self.storage.shared:
            _optuna().storages.fail_stale_trials(self.study)
        else:
            self._retry_interrupted()

    def _open(self) -> bool:
        """Create the study, or load it where it exists; True when this process created it."""
        optuna = _optuna()
        direction = "maximize" if self.settings.objective == "throughput" else "minimize"
        storage = self.storage.open()
        try:
            self.study = optuna.create_study(storage=storage, study_name=self.storage.study, direction=direction,
                                             sampler=sampler(self.settings, self.storage.shared))
            return True
        except optuna.exceptions.DuplicatedStudyError:
            self.study = optuna.load_study(storage=storage, study_name=self.storage.study,
                                           sampler=sampler(self.settings, self.storage.shared))
        return False

    def _mismatch(self, old: dict[str, Any], new: dict[str, Any]) -> str:
        changed = [k for k in new if old.get(k, new[k]) != new[k]]
        shown = "; ".join(f"{k}: {old[k]!r} there, {new[k]!r} here" for k in changed if k in ("objective", "hardware"))
        if self.storage.shared:
            return (f"study {self.storage.study!r} in {self.storage.describe()} is a study of another "
                    f"{'/'.join(changed)}{f' ({shown})' if shown else ''}: a worker joins only with the same "
                    "model file, search space (paths available, batch sizes) and hardware class")
        return (f"the output directory holds a study of another {'/'.join(changed)} (model, search space, "
                f"objective or hardware){f' ({shown})' if shown else ''}; use another --out or delete it")

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

    def _enqueue_baselines(self) -> None:
        """Trial 0 is the source framework's own runtime with defaults (the baseline); then every other
        path once with its defaults (ORT's default session options among them), so that each path is
        seen before the sampler takes over."""
        batch = max(self.settings.batch_sizes) if self.settings.objective == "throughput" else min(self.settings.batch_sizes)
        baseline = paths.BASELINE[(self.framework, self.settings.device)]
        first = [baseline, paths.ORT_DEFAULTS[self.settings.device]]
        for name in dict.fromkeys(n for n in first + self.path_names if n in self.path_names):
            params = {"path": name, **space_mod.defaults(self.spaces[name], self.source, {})}
            if len(self.settings.batch_sizes) > 1:
                params["batch_size"] = batch
            role = "baseline" if name == baseline else f"{name} defaults"
            self.study.enqueue_trial(params, user_attrs={"role": role})
        for role, (name, overrides) in self.enqueue.items():
            if name not in self.path_names:
                raise InputError(f"enqueued configuration {role!r}: path {name!r} is not searched here")
            params = {"path": name, **space_mod.defaults(self.spaces[name], self.source, overrides)}
            if len(self.settings.batch_sizes) > 1:
                params["batch_size"] = batch
            self.study.enqueue_trial(params, user_attrs={"role": f"{USER_ROLE}{role}"})

    def _retry_interrupted(self) -> None:
        """Trials left RUNNING by a killed process are failed and their parameters enqueued again."""
        optuna = _optuna()
        for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            self.study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            self.study.enqueue_trial(t.params, user_attrs={**t.user_attrs, "retry_of": t.number})

    def config(self, trial: Any) -> TrialConfig:
        path = trial.suggest_categorical("path", self.path_names)
        convert, runtime = space_mod.suggest(trial, self.spaces[path], self.source)
        sizes = self.settings.batch_sizes
        batch = trial.suggest_categorical("batch_size", list(sizes)) if len(sizes) > 1 else sizes[0]
        return TrialConfig(trial.number, path, convert, runtime, int(batch))

    def value(self, outcome: TrialOutcome) -> float:
        assert outcome.bench is not None
        return outcome.bench.throughput if self.settings.objective == "throughput" else outcome.bench.p99_ms

    def finalist_reserve(self) -> float:
        """Seconds kept from the budget for the interleaved re-measurement of the finalists (a third of
        the budget at most: the search itself comes first)."""
        return min(finalist_cost(self.settings, finalist_rounds(self.settings)), self.settings.budget_s / 3)

    def remaining(self) -> float:
        """Seconds of the budget left for trials: the finalists' reserve is not theirs to spend. In a
        shared study the budget is trial time summed over all workers; a worker's own limit caps it."""
        left = self.settings.budget_s - self.elapsed() - self.finalist_reserve()
        return left if self.deadline is None else min(left, self.deadline - time.monotonic())

    def elapsed(self) -> float:
        """Seconds of trials this study has run, over every invocation. A trial interrupted by a
        killed process has no outcome and does not count: its end time is when it was found."""
        total = 0.0
        for t in self.study.get_trials(deepcopy=False):
            if t.datetime_start and t.datetime_complete and OUTCOME_ATTR in t.user_attrs:
                total += (t.datetime_complete - t.datetime_start).total_seconds()
        return total

    def run(self, run_trial: Callable[[TrialConfig], TrialOutcome],
            on_trial: Callable[[TrialOutcome], None] | None = None, wall_s: float | None = None) -> None:
        """Trials until the study's budget (time or count, summed over reruns and workers) is spent, or
        this worker's own `wall_s`."""
        optuna = _optuna()
        if wall_s is not None:
            self.deadline = time.monotonic() + wall_s
        done = sum(OUTCOME_ATTR in t.user_attrs for t in self.study.get_trials(deepcopy=False))
        remaining_s = self.remaining()
        remaining_n = None if self.settings.trials is None else self.settings.trials - done
        if remaining_s <= 0 or (remaining_n is not None and remaining_n <= 0):
            return

        def objective(trial: Any) -> float:
            self._claim(trial)
            outcome = run_trial(self.config(trial))
            try:
                trial.set_user_attr(OUTCOME_ATTR, json.dumps(to_dict(outcome)))
            except optuna.exceptions.UpdateFinishedTrialError:  # failed as stale while it ran: retried elsewhere
                self._stale = True
                raise
            if on_trial:
                on_trial(outcome)
            if outcome.status != "ok":
                # Pruned, not failed: TPE ranks pruned trials below every complete one, so it learns to
                # avoid a region that does not convert or validate (failed trials it would ignore).
                raise optuna.TrialPruned(outcome.error)
            return self.value(outcome)

        if not self.storage.shared:
            # Stopped on the budget as elapsed() counts it (trial time), not on wall time: a wall-clock
            # timeout also spends the time between trials, and a rerun would then find budget left.
            self.study.optimize(objective, n_trials=remaining_n, callbacks=[self._stop_when_spent])
            return
        # Several workers: the count and the summed time are checked after each trial, against the
        # whole study; _claim fails a trial that one worker asked for as another filled the cap.
        # A trial whose heartbeats came late (an overloaded machine) may be failed as stale by another
        # worker while it runs; optuna then refuses to tell it (ValueError), and this worker goes on.
        while remaining_s > 0:
            self._stale = False
            try:
                self.study.optimize(objective, timeout=remaining_s, catch=(_Surplus,),
                                    callbacks=[self._stop_when_spent])
                return
            except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
                if not self._stale:
                    raise
            remaining_s = self.remaining()

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
            running = _optuna().trial.TrialState.RUNNING
            taken = sum(1 for t in self.study.get_trials(deepcopy=False) if t.number < trial.number and
                        (t.state == running or OUTCOME_ATTR in t.user_attrs))
            if taken >= self.settings.trials:
                trial.set_user_attr("skipped", "the study's trial cap was reached by other workers")
                self.study.stop()
                raise _Surplus()

    def _stop_when_spent(self, study: Any, _: Any) -> None:
        trials = study.get_trials(deepcopy=False)
        running = _optuna().trial.TrialState.RUNNING
        taken = sum(1 for t in trials if t.state == running or OUTCOME_ATTR in t.user_attrs)
        if self.remaining() <= 0 or (self.settings.trials is not None and taken >= self.settings.trials):
            study.stop()

    def running_elsewhere(self) -> int:
        """Trials other workers are running now (after failing those of dead workers)."""
        optuna = _optuna()
        if self.storage.shared:
            optuna.storages.fail_stale_trials(self.study)
        return len(self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))

    def summary(self) -> dict[str, Any]:
        """Who ran what in a shared study: each worker's hardware and trials, the trials of dead workers
        and their retries, trials left out of the ranking (another hardware class), library versions
        that differ between workers."""
        optuna = _optuna()
        study_class = self.study.user_attrs.get("hardware")
        trials = self.study.get_trials(deepcopy=False)
        workers: dict[str, dict[str, Any]] = {}
        for t in trials:
            if OUTCOME_ATTR in t.user_attrs and "worker" in t.user_attrs:
                entry = workers.setdefault(t.user_attrs["worker"], {"hardware": t.user_attrs.get("hardware", {}),
                                                                    "trials": []})
                entry["trials"].append(t.number)
        versions = {k for w in workers.values() for k in w["hardware"] if k.startswith("version.")}
        return {"name": self.storage.study, "storage": self.storage.describe(), "hardware_class": study_class,
                "workers": workers,
                "dead_worker_trials": [t.number for t in trials if t.state == optuna.trial.TrialState.FAIL
                                       and "skipped" not in t.user_attrs],
                "retries": {t.number: t.user_attrs["retry_of"] for t in trials
                            if "retry_of" in t.user_attrs and OUTCOME_ATTR in t.user_attrs},
                "not_ranked_other_hardware": [t.number for t in trials if OUTCOME_ATTR in t.user_attrs and
                                              t.user_attrs.get("hardware", {}).get("class", study_class) != study_class],
                "versions_differ": sorted(k for k in versions
                                          if len({w["hardware"].get(k) for w in workers.values()}) > 1),
                "still_running": sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)}

    @classmethod
    def load(cls, storage: StudyStorage, settings: OptimizeSettings) -> Search:
        """A read-only view of an existing study (outcomes, roles, budget spent), for its report."""
        self = cls.__new__(cls)
        self.storage, self.settings, self.deadline = storage, settings, None
        self.study = existing(storage)
        return self

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

    def roles(self) -> dict[str, int]:
        """'baseline' (and '<path> defaults') -> the number of the latest such trial with an outcome."""
        return {t.user_attrs["role"]: t.number for t in self.study.get_trials(deepcopy=False)
                if "role" in t.user_attrs and OUTCOME_ATTR in t.user_attrs}


def finalist_cost(settings: OptimizeSettings, rounds: int) -> float:
    """Seconds the finalists take: per finalist a warm-up window, then per round a short warm-up and
    at least STABLE_WINDOWS windows (see trial/bench.py)."""
    count = settings.finalists + 2  # the top k, the baseline, ONNX Runtime's defaults
    return count * settings.window_s * (2 + rounds * (STABLE_WINDOWS + 0.5))


def finalist_rounds(settings: OptimizeSettings) -> int:
    """settings.rounds, reduced (to 3 at least) where it would take over a third of the budget."""
    rounds = settings.rounds
    while rounds > 3 and finalist_cost(settings, rounds) > settings.budget_s / 3:
        rounds -= 1
    return rounds


def existing(storage: StudyStorage) -> Any:
    """An existing study; InputError where the storage holds none of that name."""
    optuna = _optuna()
    try:
        return optuna.load_study(storage=storage.open(), study_name=storage.study)
    except KeyError:
        raise InputError(f"no study {storage.study!r} in {storage.describe()}: create it with "
                         f"navigator optimize --storage URL --study {storage.study} ...") from None


def storage_url(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"
