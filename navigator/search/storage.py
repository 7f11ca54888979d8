"""Where a study lives.

By default: a SQLite file in the output directory, one process at a time; a rerun continues it and
fails-then-retries the trial a killed run left RUNNING (search/study.py). With `--storage URL` (any
SQLAlchemy URL, PostgreSQL for several machines) the study is shared by every worker that joins it;
optuna's heartbeats then replace the rerun logic: each running trial's worker writes a heartbeat every
`heartbeat_s` seconds, a trial silent for `GRACE_BEATS` heartbeats is failed by whichever worker looks
next (optuna.storages.fail_stale_trials runs before each trial) and enqueued again for the others
(RetryHeartbeatStaleTrialCallback). See https://optuna.readthedocs.io/en/stable/reference/generated/
optuna.storages.RDBStorage.html (heartbeat_interval, grace_period).
"""

from __future__ import annotations

import importlib.util
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from navigator.errors import InputError, UnavailableError

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
                grace_period=GRACE_BEATS * self.heartbeat_s, **{callback: retry(max_retry=MAX_RETRY)})
        except (exc.ArgumentError, exc.NoSuchModuleError, ValueError) as e:
            raise InputError(f"--storage {self.describe()} is not a usable database URL: {_line(e)}") from None
        except exc.OperationalError as e:
            raise UnavailableError(f"cannot reach the study storage {self.describe()}: {_line(e)}") from None


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
