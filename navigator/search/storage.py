"""Where a study lives.

By default: a SQLite file in the output directory, one process at a time; a rerun continues it and
fails-then-retries the trial a killed run left RUNNING (search/study.py). With `--storage URL` (any
SQLAlchemy URL, PostgreSQL for several machines) the study is shared by every worker that joins it;
optuna's heartbeats then replace the rerun logic: each running trial's worker writes a heartbeat every
`heartbeat_s` seconds, a trial silent for `GRACE_BEATS` heartbeats is failed by whichever worker looks
next (optuna.storages.fail_stale_trials runs before each trial) and enqueued again for the others
(RetryHeartbeatStaleTrialCallback). See https://optuna.readthedocs.io/en/stable/reference/generated/
optuna.storages.RDBStorage.html (heartbeat_interval, grace_period). A worker that ends its search
settles the study (settle()): it waits out the grace of trials whose heartbeat stands still, so that
the last live worker, not a dead one, writes the report.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from navigator.errors import InputError, Interrupted, UnavailableError

STUDY_NAME = "navigator"  # the study's name in the default SQLite file
GRACE_BEATS = 3  # heartbeats a running trial may miss before it counts as dead
MAX_RETRY = 2  # times the trial of a dead worker is retried (a trial that kills every worker stops there)


@dataclass(frozen=True)
class StudyStorage:
    """A study's storage URL and name; `heartbeat_s` is set for a storage shared by several workers."""

    url: str
    study: str = STUDY_NAME
    heartbeat_s: int | None = None

    @property
    def shared(self) -> bool:
        return self.heartbeat_s is not None

    def where(self) -> str:
        """Where the trials are kept, for messages: the SQLite file, or the shared study and its storage."""
        if self.shared:
            return f"study {self.study!r} in {self.describe()}"
        return self.url.removeprefix("sqlite:///")

    def describe(self) -> str:
        """The URL without its password, for messages."""
        from sqlalchemy import exc
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except exc.ArgumentError:  # an unparsable URL is reported by open()
            return self.url

    def open(self) -> Any:
        """The optuna storage: a plain URL for the default SQLite file, an RDBStorage with heartbeats
        and retries of dead workers' trials for a shared one."""
        if not self.shared:
            return self.url
        import optuna
        from sqlalchemy import exc

        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or \
            optuna.storages.RetryFailedTrialCallback  # optuna < 4.9
        callback = ("heartbeat_stale_trial_callback"
                    if "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters
                    else "failed_trial_callback")
        assert self.heartbeat_s is not None
        try:
            return optuna.storages.RDBStorage(
                driver_url(self.url), engine_kwargs={"pool_pre_ping": True}, heartbeat_interval=self.heartbeat_s,
                grace_period=GRACE_BEATS * self.heartbeat_s, **{callback: _RetryUnmeasured(retry(max_retry=MAX_RETRY))})  # type: ignore[arg-type]  # keyword by optuna version
        except (exc.ArgumentError, exc.NoSuchModuleError, ValueError) as e:
            raise InputError(f"--storage {self.describe()} is not a usable database URL: {_line(e)}") from None
        except exc.OperationalError as e:
            raise UnavailableError(f"cannot reach the study storage {self.describe()}: {_line(e)}") from None


class _RetryUnmeasured:
    """optuna's retry of a stale trial, except for one whose outcome was stored before its worker died:
    it ran, and optuna's retry copies the user attributes, so that outcome would count twice."""

    def __init__(self, retry: Any) -> None:
        self.retry = retry

    def __call__(self, study: Any, trial: Any) -> None:
        from navigator.search.study import OUTCOME_ATTR

        if OUTCOME_ATTR not in trial.user_attrs:
            self.retry(study, trial)


def _line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def driver_url(url: str) -> str:
    """PostgreSQL URLs name a driver that is installed: `postgresql://` means psycopg2 to SQLAlchemy, so
    it becomes `postgresql+psycopg://` where only psycopg 3 (the `postgres` extra) is there."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise InputError(f"--storage {url!r} is not a database URL like postgresql://user@host/db")
    if scheme == "postgres":  # the libpq spelling, which SQLAlchemy refuses
        scheme = "postgresql"
    if scheme == "postgresql" and importlib.util.find_spec("psycopg2") is None:
        if importlib.util.find_spec("psycopg") is None:
            raise UnavailableError("a PostgreSQL storage needs a driver: pip install 'triton-navigator[postgres]'")
        scheme = "postgresql+psycopg"
    return f"{scheme}://{rest}"


def default(out: Path) -> StudyStorage:
    """The SQLite file in the output directory (no heartbeats: one process at a time)."""
    return StudyStorage(f"sqlite:///{(out / 'study.db').resolve()}")


def shared(url: str | None, study: str | None, heartbeat_s: int) -> StudyStorage | None:
    """The storage named on the command line, or None for the default; --storage and --study go together."""
    if url is None and study is None:
        return None
    if url is None or not study:
        raise InputError("--storage URL and --study NAME go together (a shared study needs both)")
    if heartbeat_s < 1:
        raise InputError(f"--heartbeat {heartbeat_s} must be at least 1 second")
    driver_url(url)  # a malformed URL or a missing driver is an error before anything loads
    return StudyStorage(url, study, int(heartbeat_s))


@dataclass(frozen=True)
class Settled:
    """A shared study after settle(): `failed` trials of dead workers were failed (and enqueued again),
    `running` trials are still running on live workers."""

    failed: int
    running: int


def settle(study: Any, heartbeat_s: int) -> Settled:
    """Fail the trials of dead workers and count those of live ones. A RUNNING trial is live once its
    heartbeat moves (or first appears); one whose heartbeat stands still (a worker killed a moment ago
    beat just before it died) is waited for until optuna fails it as stale after GRACE_BEATS
    heartbeats. Without the wait, the last live worker would take a dead one for a live one and nobody
    would write the report. A trial that never beat (its worker died between starting it and optuna's
    first heartbeat) is one optuna never fails: it is failed here once it stayed silent as long."""
    import optuna

    running_state, fail = optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.FAIL
    grace = GRACE_BEATS * heartbeat_s
    seen: dict[int, tuple[float, Any]] = {}  # trial id -> (when first seen, its heartbeat then or None)
    suspects = {t._trial_id for t in study.get_trials(deepcopy=False, states=(running_state,))}
    deadline = time.monotonic() + grace + 2 * heartbeat_s
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        running = [t._trial_id for t in study.get_trials(deepcopy=False, states=(running_state,))]
        beats = _heartbeats(study, running)
        now = time.monotonic()
        for trial_id in running:
            seen.setdefault(trial_id, (now, beats.get(trial_id)))
        silent = [i for i in running if seen[i][1] is None and i not in beats and now - seen[i][0] > grace]
        for trial_id in silent:
            _fail_stale(study, trial_id)
        suspects.update(running)
        alive = [i for i, beat in beats.items() if seen[i][1] is None or beat > seen[i][1]]
        if alive or len(silent) == len(running) or now > deadline:
            trials = study.get_trials(deepcopy=False)
            return Settled(sum(t._trial_id in suspects and t.state == fail for t in trials),
                           sum(t.state == running_state for t in trials))
        time.sleep(min(1.0, heartbeat_s / 2))


def _fail_stale(study: Any, trial_id: int) -> None:
    """What optuna's fail_stale_trials does to one trial: FAIL, then the storage's retry callback."""
    import copy

    import optuna

    storage = study._storage
    try:
        if not storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL):
            return
    except optuna.exceptions.UpdateFinishedTrialError:  # another worker failed or finished it first
        return
    callback = storage.get_heartbeat_stale_trial_callback()
    if callback is not None:
        callback(study, copy.deepcopy(storage.get_trial(trial_id)))


def _heartbeats(study: Any, trial_ids: list[int]) -> dict[int, Any]:
    """The last heartbeat of each trial that has one (the database's clock). optuna keeps them in its
    trial_heartbeats table and has no public reader for them."""
    if not trial_ids:
        return {}
    from optuna.storages._rdb import models

    backend = getattr(study._storage, "_backend", study._storage)  # under optuna's cache
    session = backend.scoped_session()
    try:
        rows = session.query(models.TrialHeartbeatModel).filter(
            models.TrialHeartbeatModel.trial_id.in_(trial_ids)).all()
        return {row.trial_id: row.heartbeat for row in rows}
    finally:
        session.close()


def interrupted(storage: StudyStorage) -> Interrupted:
    """After Ctrl-C, the exception that says how to continue. optuna failed the trial this process was
    running: it is enqueued again, as a rerun does for the trial a kill -9 left RUNNING, so that the
    next run retries it instead of leaving that configuration to the sampler's chance."""
    import optuna

    from navigator.search.study import OUTCOME_ATTR

    try:
        if not storage.shared and not Path(storage.where()).is_file():
            raise KeyError(storage.study)  # interrupted before the study existed: create no file
        study = optuna.load_study(storage=storage.open(), study_name=storage.study)
    except KeyError:
        return Interrupted("interrupted before the first trial; nothing was kept")
    me = f"{platform.node()}:{os.getpid()}"  # the worker attribute this process's trials carry
    trials = study.get_trials(deepcopy=False)
    mine = [t for t in trials if t.user_attrs.get("worker") == me]
    last = mine[-1] if mine else None
    if last is not None and last.state == optuna.trial.TrialState.FAIL and OUTCOME_ATTR not in last.user_attrs \
            and "skipped" not in last.user_attrs:
        study.enqueue_trial(last.params, user_attrs={**last.user_attrs, "retry_of": last.number})
    kept = sum(OUTCOME_ATTR in t.user_attrs for t in trials)
    return Interrupted(f"interrupted; rerun the same command to continue the study ({kept} trials kept in "
                       f"{storage.where()})")
