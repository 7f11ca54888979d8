"""A finished run read back: `load_result(dir)` and the winner's Runner in the caller's process (trust to
unpickle its model is the caller's, never the report's)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from navigator.errors import InputError
from navigator.records import REPORT_VERSION, Result, SourceRecord, UnknownKeys, from_dict


def read_report(path: Path, unknown: bool = False) -> Result:
    """The Result report.json records (`report` set to `path`); InputError (one line) when it is missing,
    not a navigator report, of an older navigator, or holds keys this version does not know (unless
    `unknown`: then they are dropped)."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such report") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a readable JSON report: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("outcomes"), list) or "winner" not in data:
        raise InputError(f"{path} is not a navigator report.json (no 'outcomes' list or 'winner')")
    version = data.get("version", 1)  # version 1 had no "version" key
    # Reports of version 1 are not migrated (their settings were partial); their study rewrites them.
    older = (f"; it is a report of version {version}, this navigator reads version {REPORT_VERSION}: rewrite "
             f"it with `navigator report {Path(path).parent}`") if version != REPORT_VERSION else ""
    try:
        result = from_dict(Result, data, unknown=unknown)
    except UnknownKeys as exc:
        raise InputError(f"{path}: unknown report keys ({exc}){older or '; written by a newer navigator?'}") from None
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: malformed navigator report ({type(exc).__name__}: {exc}){older}") from None
    if older:
        raise InputError(f"{path}: {older[2:]}")
    return replace(result, report=Path(path))


def load_result(directory: str | Path) -> Result:
    """The Result of a finished `navigator optimize` (its --out directory), from its report.json, or
    from its study storage when report.json is missing (nothing is written: `navigator report DIR`
    writes the reports)."""
    directory = Path(directory)
    if (directory / "report.json").is_file():
        return read_report(directory / "report.json")
    from navigator.report.build import completed
    from navigator.report.store import load, storage_for_dir
    from navigator.search.storage import STUDY_NAME

    result = completed(load(storage_for_dir(directory), STUDY_NAME))
    return replace(result, report=directory / "report.json")


def source_record(result: Result) -> SourceRecord:
    """How the run loaded its model (file, input spec, data, trust), as its report recorded it."""
    if result.source is None:
        raise InputError(f"{result.report} does not record its source model; rerun `navigator optimize` to "
                         "refresh it")
    return result.source


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


def load_source_of(result: Result, batch: int, model: Path | None = None, trust_pickle: bool = False,
                   changed: str = "pass the original file") -> Any:
    """The run's ModelSource, loaded again from what its report recorded (`model` replaces its file).

    A model file must be the one the run measured: its hash is compared with the recorded one before
    the file is opened. It is unpickled only with this call's `trust_pickle` (or when vouched for in
    this process), never because the report says the run trusted it. `changed`: how to fix a mismatch.
    """
    from navigator.source import file_sha256, load_source

    record, report = source_record(result), result.report
    model = model or Path(record.model)
    if not model.exists():
        raise InputError(f"the model of {report} is gone: {model}")
    if record.fingerprint and file_sha256(model) != record.fingerprint:
        raise InputError(f"the model {model} is not the one {report} measured (its contents differ); {changed}")
    return load_source(str(model), input_spec=record.input_spec,
                       input_data=Path(record.input_data) if record.input_data else None,
                       trust_pickle=trust_pickle or _vouched(model), batch=batch)


def load_runner(result: Result, trust_pickle: bool = False) -> Any:
    """The winner of `result` converted (from the run's cache) and loaded here as a Runner."""
    return load_winner(result, trust_pickle)[0]


def load_winner(result: Result, trust_pickle: bool = False) -> tuple[Any, Any]:
    """(Runner, ModelSource) of the winner of `result`; `trust_pickle` as in load_source_of."""
    from navigator import paths
    from navigator.trial.cache import Cache

    if result.winner is None:
        raise InputError("the run has no winner: no trial passed validation")
    if result.report is None:
        raise InputError("the result has no report.json to find its model and cache from")
    config = result.winner.config
    source = load_source_of(result, config.batch_size, trust_pickle=trust_pickle)
    cache = Cache(result.report.parent / "cache", source.fingerprint)
    module = paths.get(config.path)
    artifact = module.convert(source, config.convert, cache)
    return module.load(artifact, source, {**config.convert, **config.runtime}), source
