"""The user's narrowing of paths' search spaces (`--search-space DIR`): DIR/<path>.yaml keeps, for the
parameters it names, a subset of the values the packaged searchspace/<path>.yaml allows, and may replace
the path's presets:

    params:
      mode:  [default]                        # a categorical parameter: the values to keep
      quant: [fp8_dynamic, int8_dynamic]
      intra_op_num_threads: [2, 8]            # an integer parameter: narrower [low, high] bounds
    presets:                                  # optional: tried first, instead of the packaged presets
      - {quant: fp8_dynamic, mode: default}

Parameters it does not name keep their packaged values. A kept value keeps its packaged position, so a
path's default (its first value) stays the default wherever the narrowing keeps it. A path without a file
in DIR is searched as packaged. Every problem is a one-line InputError naming the file and the key.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from navigator.errors import InputError
from navigator.search.space import PathSpace, _bound, _preset, defaults, load

KEYS = {"path", "params", "presets"}


def directory(text: str | Path, known: tuple[str, ...]) -> Path:
    """The narrowing directory, checked before anything loads: it exists, holds at least one <path>.yaml,
    each names a known path and narrows its packaged space."""
    folder = Path(text)
    if not folder.is_dir():
        raise InputError(f"--search-space {text}: not a directory")
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise InputError(f"--search-space {text}: holds no <path>.yaml file")
    for file in files:
        if file.stem not in known:
            raise InputError(f"--search-space {file}: no conversion path named {file.stem!r} "
                             f"(known: {', '.join(known)})")
        narrowed(load(file.stem), folder)
    return folder


def narrowed(space: PathSpace, folder: str | Path | None) -> PathSpace:
    """`space` as folder/<path>.yaml narrows it (unchanged without a folder or a file for this path)."""
    if folder is None or not (Path(folder) / f"{space.path}.yaml").is_file():
        return space
    file = Path(folder) / f"{space.path}.yaml"
    where = f"--search-space {file}"
    try:
        raw = yaml.safe_load(file.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{where}: not readable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict) or set(raw) - KEYS or not isinstance(raw.get("params") or {}, dict):
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
    presets = raw.get("presets")
    if presets is None:
        return replace(space, params=params)
    if not isinstance(presets, list):
        raise InputError(f"{where}: presets must be a list of mappings of this path's params")
    return PathSpace(space.path, params, tuple(_preset(i, p, params, where) for i, p in enumerate(presets, 1)))


def keeps_references(spaces: dict[str, PathSpace], source: tuple[str, str], device: str) -> None:
    """The baseline (the source framework as given) and the reference (ONNX Runtime as it comes) are each
    their path's defaults: a narrowing of their paths must keep those values."""
    from navigator import paths

    for role, name in (("baseline", paths.baseline(source[0], device)), ("reference", paths.reference(device))):
        if name in spaces and defaults(spaces[name], source, {}) != defaults(paths.space(name, source[0]), source, {}):
            raise InputError(f"--search-space: {name} with its defaults is this study's {role}; its narrowing "
                             "must keep every default value (each parameter's first value, an integer's high bound)")
