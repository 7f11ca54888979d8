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

from pathlib import Path

from navigator.errors import InputError
from navigator.search.space import PathSpace, defaults, load, narrowed


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


def keeps_references(spaces: dict[str, PathSpace], source: tuple[str, str], device: str) -> None:
    """The baseline (the source framework as given) and the reference (ONNX Runtime as it comes) are each
    their path's defaults: a narrowing of their paths must keep those values."""
    from navigator import paths

    for role, name in (("baseline", paths.baseline(source[0], device)), ("reference", paths.reference(device))):
        if name in spaces and defaults(spaces[name], source, {}) != defaults(paths.space(name, source[0]), source, {}):
            raise InputError(f"--search-space: {name} with its defaults is this study's {role}; its narrowing "
                             "must keep every default value (each parameter's first value, an integer's high bound)")
