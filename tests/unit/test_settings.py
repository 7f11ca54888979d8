"""navigator/settings.py: budget and batch-size parsers, StudySettings validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from navigator.errors import InputError
from navigator.settings import StudySettings, parse_batch_sizes, parse_budget


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        (" 2H ", 7200),
        ("1.5h", 5400),
        ("10min", 600),
        ("45sec", 45),
        ("1d", 86400),
        ("120", 120),  # a bare number is seconds
        ("1m30", 90),  # a trailing bare number is seconds too
        (90, 90),
        (2.5, 2.5),
    ],
)
def test_parse_budget_accepts_durations(text, seconds):
    assert parse_budget(text) == pytest.approx(seconds)
    assert isinstance(parse_budget(text), float)


@pytest.mark.parametrize("text", ["", "   ", "abc", "10x", "0s", "0", "-5m", "m", "5m-", "1e3", "10 parsecs", 0, -5, 0.0])
def test_parse_budget_rejects_bad_or_non_positive(text):
    with pytest.raises(InputError):
        parse_budget(text)


def test_parse_budget_unknown_unit_message_names_the_unit():
    with pytest.raises(InputError, match="'x'"):
        parse_budget("10x")


@pytest.mark.parametrize(
    ("text", "sizes"),
    [
        ("8", (8,)),
        (" 8 ", (8,)),
        (8, (8,)),
        ("1:64", (1, 2, 4, 8, 16, 32, 64)),
        ("1:1", (1,)),
        ("3:20", (3, 4, 8, 16, 20)),  # endpoints kept even when they are not powers of two
        ("5:7", (5, 7)),  # no power of two in between: just the endpoints
        ("1,8,32", (1, 8, 32)),
        ("32,1,8,8", (1, 8, 32)),  # sorted and de-duplicated
    ],
)
def test_parse_batch_sizes(text, sizes):
    assert parse_batch_sizes(text) == sizes


@pytest.mark.parametrize("text", ["", "abc", "0", "-1", "0:4", "1.5", "1:2:3", "1,,8", "8,0", "a:b", "1:"])
def test_parse_batch_sizes_rejects_bad_values(text):
    with pytest.raises(InputError):
        parse_batch_sizes(text)


def test_parse_batch_sizes_rejects_reversed_range():
    with pytest.raises(InputError):
        parse_batch_sizes("64:1")


def test_optimize_settings_defaults_are_valid(tmp_path: Path):
    s = StudySettings()
    assert s.objective == "throughput"
    assert s.sampler == "tpe"
    assert s.batch_sizes == (1,)
    assert s.trials is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.objective = "latency"  # type: ignore[misc]


@pytest.mark.parametrize("objective", ["throughput", "latency"])
@pytest.mark.parametrize("sampler", ["tpe", "random", "grid"])
def test_optimize_settings_accepts_known_values(tmp_path, objective, sampler):
    s = StudySettings(objective=objective, sampler=sampler, trials=1)
    assert (s.objective, s.sampler, s.trials) == (objective, sampler, 1)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"objective": "speed"}, "speed"),
        ({"sampler": "cmaes"}, "cmaes"),
        ({"trials": 0}, "--trials"),
        ({"trials": -3}, "--trials"),
        ({"window_s": 0}, "window"),
        ({"window_s": -1.0}, "window"),
    ],
)
def test_optimize_settings_rejects_bad_values(tmp_path, kwargs, needle):
    with pytest.raises(InputError, match=needle):
        StudySettings(**kwargs)
