"""The optuna study: storage in the output directory, samplers, baselines, budget across reruns.

Each trial's TrialOutcome is stored as JSON in the optuna trial's user attributes, so the study
database is the run record: a rerun continues it and the report is rebuilt from it.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any, Callable

from navigator import paths
from navigator.errors import InputError, StudyMismatchError
from navigator.records import TrialConfig, TrialOutcome, from_dict, to_dict
from navigator.search import space as space_mod
from navigator.settings import OptimizeSettings
from navigator.trial.bench import STABLE_WINDOWS

STUDY_NAME = "navigator"
OUTCOME_ATTR = "outcome"
# Enqueued default trials that are re-measured with the finalists, for the speedups in the report.
FINALIST_ROLES = ("baseline", "ort_cpu defaults", "ort_cuda defaults")
USER_ROLE = "user: "  # prefix of the roles of configurations the caller enqueued; re-measured too


def _optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(logging.ERROR)  # failed trials are recorded by navigator
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def sampler(settings: OptimizeSettings) -> Any:
    optuna = _optuna()
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=settings.seed)
    if settings.sampler == "grid":  # every combination of the conditional space, define-by-run
        return optuna.samplers.BruteForceSampler(seed=settings.seed)
    return optuna.samplers.TPESampler(seed=settings.seed, multivariate=True, group=True, n_startup_trials=8)


class Search:
    """One study over the given paths for one source."""

    def __init__(self, storage: str, settings: OptimizeSettings, source: tuple[str, str], path_names: list[str],
                 fingerprint: str, enqueue: dict[str, tuple[str, dict[str, Any]]] | None = None) -> None:
        """`source` is (framework, kind), e.g. ("torch", "exported"): it decides which params apply.
        `enqueue` names configurations to try first, role -> (path, params; the rest at defaults)."""
        self.settings = settings
        self.enqueue = enqueue or {}
        self.framework = source[0]
        self.source = source
        self.path_names = path_names
        self.spaces = {n: paths.space(n) for n in path_names}
        identity = {
            "fingerprint": fingerprint,
            "space": space_mod.space_hash(list(self.spaces.values()), source,
                                          {"paths": path_names, "batch_sizes": list(settings.batch_sizes)}),
            "objective": settings.objective,
        }
        optuna = _optuna()
        direction = "maximize" if settings.objective == "throughput" else "minimize"
        self.study = optuna.create_study(storage=storage, study_name=STUDY_NAME, direction=direction,
                                         sampler=sampler(settings), load_if_exists=True)
        old = self.study.user_attrs.get("identity")
        if old is None:
            for key, value in identity.items():
                self.study.set_user_attr(key, value)
            self.study.set_user_attr("identity", identity)
            self._enqueue_baselines()
        elif old != identity:
            changed = [k for k in identity if old.get(k) != identity[k]]
            raise StudyMismatchError(
                f"the output directory holds a study of another {'/'.join(changed)} "
                "(model, search space or objective); use another --out or delete it")
        self._retry_interrupted()

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
        """Seconds of the budget left for trials: the finalists' reserve is not theirs to spend."""
        return self.settings.budget_s - self.elapsed() - self.finalist_reserve()

    def elapsed(self) -> float:
        """Seconds of trials this study has run, over every invocation. A trial interrupted by a
        killed process has no outcome and does not count: its end time is when it was found."""
        total = 0.0
        for t in self.study.get_trials(deepcopy=False):
            if t.datetime_start and t.datetime_complete and OUTCOME_ATTR in t.user_attrs:
                total += (t.datetime_complete - t.datetime_start).total_seconds()
        return total

    def run(self, run_trial: Callable[[TrialConfig], TrialOutcome],
            on_trial: Callable[[TrialOutcome], None] | None = None) -> None:
        """Trials until the study's budget (time or count, summed over reruns) is spent."""
        optuna = _optuna()
        done = sum(OUTCOME_ATTR in t.user_attrs for t in self.study.get_trials(deepcopy=False))
        remaining_s = self.remaining()
        remaining_n = None if self.settings.trials is None else self.settings.trials - done
        if remaining_s <= 0 or (remaining_n is not None and remaining_n <= 0):
            return

        def objective(trial: Any) -> float:
            outcome = run_trial(self.config(trial))
            trial.set_user_attr(OUTCOME_ATTR, json.dumps(to_dict(outcome)))
            if on_trial:
                on_trial(outcome)
            if outcome.status != "ok":
                # Pruned, not failed: TPE ranks pruned trials below every complete one, so it learns to
                # avoid a region that does not convert or validate (failed trials it would ignore).
                raise optuna.TrialPruned(outcome.error)
            return self.value(outcome)

        self.study.optimize(objective, n_trials=remaining_n, timeout=remaining_s)

    def outcomes(self) -> list[TrialOutcome]:
        out = []
        for t in self.study.get_trials(deepcopy=False):
            raw = t.user_attrs.get(OUTCOME_ATTR)
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


def storage_url(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"
