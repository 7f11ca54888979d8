"""A finished run read back: `load_result(dir)` and the winner's Runner in the caller's process (trust to
unpickle its model is the caller's, never the report's)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from navigator.errors import InputError
from navigator.records import Result, SourceRecord
from navigator.report.read import read_report


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
    if record.calibration_data and not Path(record.calibration_data).is_file():
        # An INT8 configuration quantized on other inputs (the validation ones, Target.of's fallback)
        # would not be the one the run measured: refused, as a trial without calibration inputs is.
        raise InputError(f"the calibration inputs of {report} are gone: {record.calibration_data} (its INT8 "
                         "trials were calibrated on them; restore the file to rebuild them)")
    return load_source(str(model), input_spec=record.input_spec,
                       input_data=Path(record.input_data) if record.input_data else None,
                       trust_pickle=trust_pickle or _vouched(model), batch=batch,
                       calibration=Path(record.calibration_data) if record.calibration_data else None,
                       generated=record.generated_inputs)


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
    source = load_source_of(result, config.batch_size, trust_pickle=trust_pickle)
    cache = Cache(result.report.parent / "cache", source.fingerprint)
    path = paths.get(config.path)
    artifact = path.convert(source, config.convert, cache, Target.of(source, path.devices[0]))
    return path.load(artifact, source, {**config.convert, **config.runtime}), source
