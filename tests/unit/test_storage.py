"""navigator/search/storage.py and the study's hardware classes: URLs, the --storage/--study pair, and a
ranking that never mixes trials measured on different hardware."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from navigator import env
from navigator.errors import InputError, StudyMismatchError
from navigator.records import Bench, TrialConfig, TrialOutcome, to_dict
from navigator.search import storage
from navigator.search.storage import StudyStorage
from navigator.search.study import Search
from navigator.settings import StudySettings


def test_storage_and_study_go_together() -> None:
    assert storage.shared(None, None, 10) is None
    with pytest.raises(InputError, match="--storage URL and --study NAME"):
        storage.shared("postgresql://u@h/db", None, 10)
    with pytest.raises(InputError, match="--storage URL and --study NAME"):
        storage.shared(None, "s", 10)
    with pytest.raises(InputError, match="not a database URL"):
        storage.shared("localhost/db", "s", 10)
    with pytest.raises(InputError, match="--heartbeat"):
        storage.shared("postgresql://u@h/db", "s", 0)
    shared = storage.shared("postgresql://u:secret@h/db", "s", 5)
    assert shared is not None and shared.shared and shared.heartbeat_s == 5
    assert "secret" not in shared.describe()
    assert not storage.default(Path("out")).shared


def test_postgres_url_names_an_installed_driver() -> None:
    import importlib.util

    url = storage.driver_url("postgres://u@h/db")
    expected = "postgresql" if importlib.util.find_spec("psycopg2") else "postgresql+psycopg"
    assert url == f"{expected}://u@h/db"
    assert storage.driver_url("sqlite:///x.db") == "sqlite:///x.db"


def test_hardware_record_and_class() -> None:
    record = env.hardware("cpu")
    assert record["class"] == env.hardware_class("cpu") and record["class"].startswith("cpu: ")
    assert "load_average" not in record and record["cpu"] in record["class"]


def _outcome(number: int, throughput: float) -> str:
    bench = Bench(1, throughput, 1.0, 1.0, 1.0, 1.0, 1.0, 0.01, 3, 30, True)
    return json.dumps(to_dict(TrialOutcome(TrialConfig(number, "eager", {}, {}, 1), "ok", bench=bench)))


def test_ranking_never_mixes_hardware_classes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=url, study_name="s", direction="maximize")
    study.set_user_attr("hardware", "cpu: A x2")
    for number, klass, throughput in [(0, "cpu: A x2", 10.0), (1, "cpu: B x64", 1000.0), (2, "cpu: A x2", 20.0)]:
        trial = study.ask()
        trial.set_user_attr("hardware", {"class": klass})
        trial.set_user_attr("outcome", _outcome(number, throughput))
        study.tell(trial, throughput)
    search = Search.load(StudyStorage(url, "s"), StudySettings())
    assert [o.config.number for o in search.outcomes()] == [0, 1, 2]  # all reported
    assert [o.config.number for o in search.outcomes(comparable=True)] == [0, 2]  # the faster machine's trial is not ranked


def test_study_of_another_hardware_class_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = StudySettings(paths=("eager",))
    where = storage.default(tmp_path)
    Search(where, settings, ("torch", "exported"), ["eager"], "fp")
    Search(where, settings, ("torch", "exported"), ["eager"], "fp")  # the same machine continues it
    monkeypatch.setattr(env, "hardware_class", lambda device: "cpu: another CPU x64")
    with pytest.raises(StudyMismatchError, match="hardware"):
        Search(where, settings, ("torch", "exported"), ["eager"], "fp")
