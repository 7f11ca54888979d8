"""A finished run read back: `load_result(dir)` and the winner's Runner in the caller's process (trust to
unpickle its model is the caller's, never the report's)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from navigator.errors import InputError
from navigator.records import Result, from_dict


def read_report(path: Path) -> dict[str, Any]:
    """report.json as data; InputError (one line) when it is missing or not a navigator report."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such report") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a readable JSON report: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("outcomes"), list) or "winner" not in data:
        raise InputError(f"{path} is not a navigator report.json (no 'outcomes' list or 'winner')")
    return data


def result_from_report(path: Path) -> Result:
    """The Result recorded in a report.json; InputError when its records do not parse."""
    data = read_report(path)
    try:
        result = from_dict(Result, data)
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: malformed navigator report ({type(exc).__name__}: {exc})") from None
    return replace(result, report=Path(path))


def load_result(directory: str | Path) -> Result:
    """The Result of a finished `navigator optimize` (its --out directory): from report.json, or rebuilt
    from the study storage when report.json is missing."""
    directory = Path(directory)
    if (directory / "report.json").is_file():
        return result_from_report(directory / "report.json")
    from navigator.report.store import render_from_storage, storage_for_dir
    from navigator.search.storage import STUDY_NAME

    return result_from_report(render_from_storage(storage_for_dir(directory), STUDY_NAME, directory))


def source_record(report: Path) -> dict[str, Any]:
    """How the run loaded its model (file, input spec, data, trust), as report.json recorded it."""
    record = read_report(report).get("source")
    if not isinstance(record, dict) or not record.get("model"):
        raise InputError(f"{report} does not record its source model (written by an older navigator); "
                         "rerun `navigator optimize` to refresh it")
    return record


# Model files this process may unpickle without a trust_pickle argument, by the hash they had then:
# those a run here wrote itself (a live module handed to navigator.optimize) or was given trust for.
# Trust is never read from a report: anyone who can write one can point it at any file.
_VOUCHED: dict[Path, str] = {}


def vouch(model: str | Path) -> None:
    """Let later loads in this process unpickle `model` as long as its contents stay the same."""
    from navigator.source import file_sha256

    path = Path(model).resolve()
    _VOUCHED[path] = file_sha256(path)


def _vouched(path: Path) -> bool:
    from navigator.source import file_sha256

    known = _VOUCHED.get(path.resolve())
    return known is not None and path.is_file() and file_sha256(path) == known


def load_source_of(report: Path, batch: int, model: Path | None = None, trust_pickle: bool = False,
                   changed: str = "pass the original file") -> Any:
    """The run's ModelSource, loaded again from what report.json recorded (`model` replaces its file).

    A model file must be the one the run measured: its hash is compared with the recorded one before
    the file is opened. It is unpickled only with this call's `trust_pickle` (or when vouched for in
    this process), never because the report says the run trusted it. `changed`: how to fix a mismatch.
    """
    from navigator.source import file_sha256, load_source

    record = source_record(report)
    model = model or Path(record["model"])
    if not model.exists():
        raise InputError(f"the model of {report} is gone: {model}")
    recorded = record.get("fingerprint")
    if recorded and file_sha256(model) != recorded:
        raise InputError(f"the model {model} is not the one {report} measured (its contents differ); {changed}")
    return load_source(str(model), input_spec=record.get("input_spec"),
                       input_data=Path(record["input_data"]) if record.get("input_data") else None,
                       trust_pickle=trust_pickle or _vouched(model), batch=batch)


def load_runner(result: Result, trust_pickle: bool = False) -> Any:
    """The winner of `result` loaded in this process (converted from the run's cache): `runner({input
    name: array}) -> [output arrays]`. `trust_pickle`: unpickle the run's model file (needed in a later
    process for a torch.save or scikit-learn pickle, or a live module the run saved)."""
    return load_winner(result, trust_pickle)[0]


def load_winner(result: Result, trust_pickle: bool = False) -> tuple[Any, Any]:
    """(Runner, ModelSource) of the winner of `result`; `trust_pickle` as in load_source_of."""
    from navigator import paths
    from navigator.paths.base import Target
    from navigator.cache import Cache

    if result.winner is None:
        raise InputError("the run has no winner: no trial passed validation")
    if result.report is None:
        raise InputError("the result has no report.json to find its model and cache from")
    config = result.winner.config
    source = load_source_of(result.report, config.batch_size, trust_pickle=trust_pickle)
    cache = Cache(result.report.parent / "cache", source.fingerprint)
    path = paths.get(config.path)
    artifact = path.convert(source, config.convert, cache, Target.of(source, path.devices[0]))
    return path.load(artifact, source, {**config.convert, **config.runtime}), source
