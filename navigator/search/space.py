"""searchspace/<path>.yaml -> ParamSpecs, and define-by-run suggestions with path-prefixed names.

A file looks like:

    path: ort_cpu
    params:
      exporter:          {stage: convert, choices: [dynamo, torchscript], sources: [torch]}
      intra_op_threads:  {stage: runtime, int: [1, ncpu]}
      inter_op_threads:  {stage: runtime, int: [1, ncpu], when: {execution_mode: parallel}}

`int` bounds may be `ncpu` (this machine's core count); `when` is equality on earlier params of the
same path (or membership, when its value is a list); `sources` limits a parameter to sources of those frameworks (torch, onnx, tf, trees) or kinds
(module, torchscript, exported, savedmodel, keras, xgboost, lightgbm, sklearn). Parameters are suggested
in file order, under the name `<path>.<param>`, so a name keeps the same choices within a study.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from navigator.env import ncpu
from navigator.errors import InputError
from navigator.records import Params, ParamSpec, Scalar, TrialConfig

STAGES = ("convert", "runtime")
SMALL_BATCH = 8  # a preset's `batch: small` is a batch of at most this many, `large` more
SOURCES = ("torch", "onnx", "module", "torchscript", "exported",  # frameworks and source kinds
           "tf", "savedmodel", "keras", "trees", "xgboost", "lightgbm", "sklearn")


@dataclass(frozen=True)
class Preset:
    """A configuration of one path tried before the sampler takes over (the rest at defaults), where
    `device` and `batch` ('small': 8 or less, 'large': more) match the study's, if given."""

    params: Params
    device: str | None = None
    batch: str | None = None

    def applies(self, device: str, batch: int) -> bool:
        size = "small" if batch <= SMALL_BATCH else "large"
        return self.device in (None, device) and self.batch in (None, size)


@dataclass(frozen=True)
class PathSpace:
    path: str
    params: tuple[ParamSpec, ...]
    presets: tuple[Preset, ...] = ()


def _bound(value: Any, where: str) -> int:
    if value == "ncpu":
        return ncpu()
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InputError(f"{where}: int bounds must be integers or 'ncpu', got {value!r}")


def _param(name: str, raw: Any, where: str) -> ParamSpec:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: parameter {name!r} must be a mapping")
    unknown = set(raw) - {"stage", "choices", "int", "log", "when", "sources"}
    if unknown:
        raise InputError(f"{where}: parameter {name!r} has unknown keys {sorted(unknown)}")
    stage = raw.get("stage")
    if stage not in STAGES:
        raise InputError(f"{where}: parameter {name!r} needs stage: convert or runtime")
    when = raw.get("when", {})
    sources = raw.get("sources", [])
    if not isinstance(sources, list) or not set(sources) <= set(SOURCES):
        raise InputError(f"{where}: parameter {name!r}: sources must be a list of {', '.join(SOURCES)}")
    if not isinstance(when, dict):
        raise InputError(f"{where}: parameter {name!r}: when must be a mapping")
    if ("choices" in raw) == ("int" in raw):
        raise InputError(f"{where}: parameter {name!r} needs exactly one of choices or int")
    if "choices" in raw:
        choices = raw["choices"]
        if not isinstance(choices, list) or not choices:
            raise InputError(f"{where}: parameter {name!r}: choices must be a non-empty list")
        return ParamSpec(name, stage, tuple(choices), when=when, sources=tuple(sources))
    bounds = raw["int"]
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise InputError(f"{where}: parameter {name!r}: int must be [low, high]")
    low, high = (_bound(b, f"{where}: {name}") for b in bounds)
    if low > high:
        raise InputError(f"{where}: parameter {name!r}: low {low} > high {high}")
    return ParamSpec(name, stage, (), low, high, bool(raw.get("log", False)), when, tuple(sources))


def parse(text: str, where: str) -> PathSpace:
    """One YAML document -> PathSpace; any problem is an InputError naming `where` and the key."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("path"), str) or not isinstance(raw.get("params", {}), dict):
        raise InputError(f"{where}: needs 'path: <name>' and a 'params' mapping")
    params = tuple(_param(str(k), v, where) for k, v in (raw.get("params") or {}).items())
    seen: set[str] = set()
    for p in params:
        missing = set(p.when) - seen
        if missing:
            raise InputError(f"{where}: parameter {p.name!r}: when refers to {sorted(missing)}, not defined before it")
        seen.add(p.name)
    return PathSpace(raw["path"], params, _presets(raw.get("presets") or [], params, where))


def _presets(raw: Any, params: tuple[ParamSpec, ...], where: str) -> tuple[Preset, ...]:
    """A file's `presets:` list, each entry checked against `params`."""
    if not isinstance(raw, list):
        raise InputError(f"{where}: presets must be a list of mappings of this path's params")
    return tuple(_preset(i, p, params, where) for i, p in enumerate(raw, 1))


def _preset(number: int, raw: Any, params: tuple[ParamSpec, ...], where: str) -> Preset:
    """One entry of `presets:`; a param it names must exist and the value be one the param takes."""
    if not isinstance(raw, dict) or not raw:
        raise InputError(f"{where}: preset {number} must be a non-empty mapping of params")
    values = dict(raw)
    when = values.pop("when", {})
    if not isinstance(when, dict) or set(when) - {"device", "batch"} or \
            when.get("device", "cpu") not in ("cpu", "cuda") or when.get("batch", "small") not in ("small", "large"):
        raise InputError(f"{where}: preset {number}: when takes device: cpu|cuda and batch: small|large")
    specs = {p.name: p for p in params}
    for name, value in values.items():
        spec = specs.get(str(name))
        if spec is None:
            raise InputError(f"{where}: preset {number} names {name!r}, not a parameter of this path")
        if spec.choices and value not in spec.choices:
            raise InputError(f"{where}: preset {number}: {name}={value!r} is not one of {list(spec.choices)}")
        if not spec.choices:
            values[name] = value = _bound(value, f"{where}: preset {number}: {name}")
            if not spec.low <= value <= spec.high:
                raise InputError(f"{where}: preset {number}: {name}={value} is outside [{spec.low}, {spec.high}]")
    return Preset({str(k): v for k, v in values.items()}, when.get("device"), when.get("batch"))


def preset_params(space: PathSpace, preset: Preset, source: tuple[str, str]) -> dict[str, Scalar] | None:
    """A preset as a full prefixed parameter set (the rest at defaults), or None where it does not apply
    to this source (a param it sets is inactive, or narrowed away from its value on this machine)."""
    full = defaults(space, source, preset.params)
    specs = {p.name: p for p in active(space, source)}
    for name, value in preset.params.items():
        spec = specs.get(name)
        if f"{space.path}.{name}" not in full or spec is None or (spec.choices and value not in spec.choices):
            return None
    return full


def packaged_dir() -> Any:
    """The shipped spaces: searchspace/ beside the navigator package in a source checkout (so that a
    checkout run with PYTHONPATH reads its own files, not an installed copy's), else navigator.searchspace."""
    beside = Path(__file__).resolve().parents[2] / "searchspace"
    if (beside / "eager.yaml").is_file():
        return beside
    try:
        return importlib.resources.files("navigator.searchspace")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "searchspace"


def load(path_name: str, override_dir: Path | None = None) -> PathSpace:
    """The space of one path: from override_dir/<path>.yaml if present, else the packaged file."""
    if override_dir is not None and (override_dir / f"{path_name}.yaml").is_file():
        file = override_dir / f"{path_name}.yaml"
        space = parse(file.read_text(), str(file))
    else:
        res = packaged_dir().joinpath(f"{path_name}.yaml")
        if not res.is_file():
            raise InputError(f"no search space file for path {path_name!r} (searchspace/{path_name}.yaml)")
        space = parse(res.read_text(), f"searchspace/{path_name}.yaml")
    if space.path != path_name:
        raise InputError(f"searchspace/{path_name}.yaml declares path {space.path!r}")
    return space


def active(space: PathSpace, source: tuple[str, str]) -> tuple[ParamSpec, ...]:
    """Parameters that apply to a source of this (framework, kind)."""
    return tuple(p for p in space.params if not p.sources or set(source) & set(p.sources))


def applies(p: ParamSpec, chosen: dict[str, Scalar]) -> bool:
    """Whether a parameter's `when` holds for the values chosen so far."""
    for key, want in p.when.items():
        have = chosen.get(key)
        if (have not in want) if isinstance(want, list) else (have != want):
            return False
    return True


def suggest(trial: Any, space: PathSpace, source: tuple[str, str]) -> tuple[Params, Params]:
    """Sample this path's (convert, runtime) params on an optuna trial, define-by-run."""
    chosen: dict[str, Scalar] = {}
    convert: Params = {}
    runtime: Params = {}
    for p in active(space, source):
        if not applies(p, chosen):
            continue
        key = f"{space.path}.{p.name}"
        if p.choices:
            value = trial.suggest_categorical(key, list(p.choices))
        else:
            value = trial.suggest_int(key, p.low, p.high, log=p.log)
        chosen[p.name] = value
        (convert if p.stage == "convert" else runtime)[p.name] = value
    return convert, runtime


def defaults(space: PathSpace, source: tuple[str, str], overrides: Params) -> dict[str, Scalar]:
    """A full prefixed parameter set: each param's first choice (or high bound), then overrides."""
    chosen: dict[str, Scalar] = {}
    for p in active(space, source):
        if not applies(p, chosen):
            continue
        chosen[p.name] = overrides.get(p.name, p.choices[0] if p.choices else p.high)
    return {f"{space.path}.{k}": v for k, v in chosen.items()}


def space_hash(spaces: list[PathSpace], source: tuple[str, str], extra: dict[str, Any]) -> str:
    """A fingerprint of everything that fixes the meaning of parameter names in a study."""
    data = {s.path: [p.__dict__ for p in active(s, source)] for s in spaces}
    blob = json.dumps({"spaces": data, **extra}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def points(space: PathSpace, source: tuple[str, str], cap: int = 100_000) -> list[tuple[Params, Params]] | None:
    """Every (convert, runtime) configuration of a path's conditional space, in file order (the first
    is the defaults); None where there are more than `cap` (counted as unbounded)."""
    params = active(space, source)
    found: list[tuple[Params, Params]] = []

    def walk(i: int, chosen: dict[str, Scalar]) -> None:
        if len(found) > cap:
            return
        if i == len(params):
            found.append(({k: v for k, v in chosen.items() if stage[k] == "convert"},
                          {k: v for k, v in chosen.items() if stage[k] == "runtime"}))
            return
        p = params[i]
        if not applies(p, chosen):
            walk(i + 1, chosen)
            return
        for value in p.choices or range(p.high, p.low - 1, -1):  # ints from the high bound, as defaults()
            walk(i + 1, {**chosen, p.name: value})

    stage = {p.name: p.stage for p in params}
    walk(0, {})
    return None if len(found) > cap else found


def config_of(space: PathSpace, number: int, params: dict[str, Any], batch: int) -> TrialConfig:
    """The TrialConfig behind an optuna trial's params (`<path>.<param>` names, batch_size if searched)."""
    stages = {p.name: p.stage for p in space.params}
    mine = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(f"{space.path}.")}
    return TrialConfig(number, space.path, {k: v for k, v in mine.items() if stages.get(k) == "convert"},
                       {k: v for k, v in mine.items() if stages.get(k) != "convert"},
                       int(params.get("batch_size", batch)))


def narrowed(space: PathSpace, folder: str | Path | None) -> PathSpace:
    """`space` as folder/<path>.yaml narrows it (`--search-space`, search/narrowing.py; unchanged without a
    folder or a file for this path)."""
    file = Path(folder) / f"{space.path}.yaml" if folder is not None else None
    if file is None or not file.is_file():
        return space
    where = f"--search-space {file}"
    try:
        raw = yaml.safe_load(file.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{where}: not readable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict) or set(raw) - {"path", "params", "presets"} or not isinstance(raw.get("params") or {}, dict):
        raise InputError(f"{where}: needs a 'params' mapping of parameter -> values to keep (and optionally "
                         "'presets')")
    if raw.get("path", space.path) != space.path:
        raise InputError(f"{where}: declares path {raw['path']!r}, not {space.path!r}")
    specs = {p.name: p for p in space.params}
    kept = dict(specs)
    for name, values in (raw.get("params") or {}).items():
        spec = specs.get(str(name))
        if spec is None:
            raise InputError(f"{where}: {name!r} is not a parameter of {space.path} "
                             f"(its parameters: {', '.join(specs)})")
        if not isinstance(values, list) or not values:
            raise InputError(f"{where}: {name}: give a non-empty list of values to keep")
        if spec.choices:
            outside = [v for v in values if v not in spec.choices]
            if outside:
                raise InputError(f"{where}: {name}: {outside} not among its values {list(spec.choices)}")
            kept[spec.name] = replace(spec, choices=tuple(c for c in spec.choices if c in values))
            continue
        if len(values) != 2:
            raise InputError(f"{where}: {name}: an integer parameter takes [low, high]")
        low, high = (_bound(v, f"{where}: {name}") for v in values)
        if not spec.low <= low <= high <= spec.high:
            raise InputError(f"{where}: {name}: [{low}, {high}] is not within [{spec.low}, {spec.high}]")
        kept[spec.name] = replace(spec, low=low, high=high)
    params = tuple(kept[p.name] for p in space.params)
    presets = space.presets if raw.get("presets") is None else _presets(raw["presets"], params, where)
    return PathSpace(space.path, params, presets)
