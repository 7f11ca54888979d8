"""What the study proposes: optuna's sampler (TPE with the study's constraints, random, or grid order),
and the configurations enqueued ahead of it: the baselines, every path's defaults, the caller's
configurations and the presets; the retries of trials a killed run left behind; the unseen
configurations shown to a sampler that repeats itself (search/study.py runs them)."""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from navigator import lazy, paths
from navigator import objective as objectives
from navigator.errors import InputError
from navigator.records import TrialOutcome, to_dict
from navigator.search import space as space_mod
from navigator.search.seen import Point, Seen
from navigator.search.space import PathSpace
from navigator.search.view import INTERRUPTED_ATTR, OUTCOME_ATTR
from navigator.settings import StudySettings

CONSTRAINTS_ATTR = "constraints"  # the Objective's constraint values of the trial's outcome (<= 0: met)
# Enqueued default trials that are re-measured with the finalists, for the speedups in the report.
FINALIST_ROLES = ("baseline", "ort_cpu defaults", "ort_cuda defaults")
USER_ROLE = "user: "  # prefix of the roles of configurations the caller enqueued; re-measured too


def sampler(settings: StudySettings, shared: bool = False) -> Any:
    """The sampler; for a shared study each worker draws from its own seed (the same seed would make
    every worker suggest the same configurations), and TPE counts running trials as bad (constant liar)."""
    optuna = lazy.optuna()
    seed = int.from_bytes(os.urandom(4), "little") if shared else settings.seed
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.sampler == "grid":  # Search enqueues every configuration in order (Seen.unseen)
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=8,
                                      constant_liar=shared, constraints_func=constraints_func(settings))


def constraints_func(settings: StudySettings) -> Callable[[Any], list[float]] | None:
    """TPE's constraints_func for the study's constraints (it then models the feasible trials apart): the
    values stored on each trial (Search._constrain). Optuna 5 deprecates it for Trial.set_constraint,
    which TPE reads by itself: None there, as where the study has no constraint."""
    count = len(objectives.constraints(settings))
    if not count or hasattr(lazy.optuna().trial.Trial, "set_constraint"):
        return None

    def constraints(trial: Any) -> list[float]:
        return list(trial.user_attrs.get(CONSTRAINTS_ATTR, [0.0] * count))

    return constraints


def enqueue_baselines(study: Any, settings: StudySettings, source: tuple[str, str], spaces: dict[str, PathSpace],
                      path_names: list[str], caller: dict[str, tuple[str, dict[str, Any]]]) -> None:
    """Trial 0 is the source framework's own runtime with defaults (the baseline); then every other
    path once with its defaults (ORT's default session options among them), so that each path is
    seen before the sampler takes over; then the caller's configurations, then each path's presets
    (its searchspace YAML) that fit this device and batch, round-robin over the paths. `caller`: the
    caller's configurations, role -> (path, params)."""
    batch = objectives.get(settings.objective).baseline_batch(settings.batch_sizes)
    sized = {"batch_size": batch} if len(settings.batch_sizes) > 1 else {}

    def enqueue(name: str, params: dict[str, Any], role: str) -> None:
        study.enqueue_trial({"path": name, **params, **sized}, user_attrs={"role": role})

    baseline = paths.baseline(source[0], settings.device)
    first = [baseline, paths.reference(settings.device)]
    for name in dict.fromkeys(n for n in first + path_names if n in path_names):
        enqueue(name, space_mod.defaults(spaces[name], source, {}),
                "baseline" if name == baseline else f"{name} defaults")
    for role, (name, overrides) in caller.items():
        if name not in path_names:
            raise InputError(f"enqueued configuration {role!r}: path {name!r} is not searched here")
        enqueue(name, space_mod.defaults(spaces[name], source, overrides), f"{USER_ROLE}{role}")
    # presets round-robin over the paths (each path's first, then each one's second, ...): a short
    # budget sees every path's best guess before any path's second one
    listed = [(i, name, preset) for name in path_names for i, preset in enumerate(spaces[name].presets, 1)]
    for i, name, preset in sorted(listed, key=lambda e: e[0]):
        params = space_mod.preset_params(spaces[name], preset, source)
        if params is not None and preset.applies(settings.device, batch):
            enqueue(name, params, f"{name} preset {i}")


def retry_interrupted(study: Any, spaces: dict[str, PathSpace], batch_sizes: tuple[int, ...]) -> list[tuple[int, int]]:
    """Trials left RUNNING by a killed process are failed, with an outcome that says so, and their
    parameters enqueued again; (interrupted, retry) trial numbers."""
    optuna = lazy.optuna()
    storage, retried = study._storage, []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if OUTCOME_ATTR in t.user_attrs:  # killed between storing its outcome and telling it: done
            storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.PRUNED)
            continue
        study.enqueue_trial(t.params, user_attrs={**t.user_attrs, "retry_of": t.number})
        retry = study.get_trials(deepcopy=False)[-1].number
        space = spaces.get(t.params.get("path", ""))
        config = space_mod.config_of(space, t.number, t.params, batch_sizes[0]) if space else None
        if config is not None:
            outcome = TrialOutcome(config, "failed", f"interrupted, retried as trial {retry}")
            storage.set_trial_user_attr(t._trial_id, INTERRUPTED_ATTR, json.dumps(to_dict(outcome)))
        storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        retried.append((t.number, retry))
    return retried


def enqueue_unseen(study: Any, seen: Seen, batch_sizes: tuple[int, ...], first: bool) -> None:
    """Enqueue a configuration not seen yet (unless one waits already)."""
    waiting = lazy.optuna().trial.TrialState.WAITING
    point = seen.unseen(first)
    if point is None or study.get_trials(deepcopy=False, states=(waiting,)):
        return
    enqueue(study, point, batch_sizes)


def enqueue(study: Any, point: Point, batch_sizes: tuple[int, ...], user_attrs: dict[str, Any] | None = None) -> None:
    """Enqueue one configuration (path, convert, runtime, batch) as the sampler would propose it."""
    path, convert, runtime, batch = point
    params: dict[str, Any] = {"path": path, **{f"{path}.{k}": v for k, v in {**convert, **runtime}.items()}}
    if len(batch_sizes) > 1:
        params["batch_size"] = batch
    study.enqueue_trial(params, user_attrs=user_attrs)
