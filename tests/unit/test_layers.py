"""The package's layers: every module imports only from its own layer or below, function-level imports
included (read from the source with ast; nothing is imported). Path modules never import one another
(shared code lives in paths/_*.py helpers), and runtimes/ imports nothing of navigator.

`python tests/unit/test_layers.py` prints the table (module -> layer) and every violation.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "navigator"

# Lowest first. A key ending in ".*" is a package and everything in it; any other key is one module; the
# longest matching key wins. report/ renders; its orchestrators (check, drift, remeasure, store) sit in
# the api layer until they move there.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # settings is ground, not services: the typed Result (records) carries the StudySettings it ran with.
    ("ground", ("navigator.records", "navigator.model_records", "navigator.codec", "navigator.errors",
                "navigator.env", "navigator.lazy", "navigator.osutil", "navigator.settings")),
    ("services", ("navigator.cache", "navigator.objective", "navigator.triton.*")),
    ("source/report/runtimes", ("navigator.source.*", "navigator.report.*", "navigator.runtimes.*")),
    ("paths", ("navigator.paths.*",)),
    ("trial", ("navigator.trial.*",)),
    ("search/serve", ("navigator.search.*", "navigator.serve.*", "navigator.serving", "navigator.progress",
                "navigator.triton.deployment", "navigator.triton.perf", "navigator.triton.repository",
                "navigator.triton.server", "navigator.triton.tune")),
    ("api", ("navigator", "navigator.api", "navigator.api.*", "navigator.export", "navigator.results", "navigator.workers",
             "navigator.pyapi", "navigator.report.check", "navigator.report.drift", "navigator.report.remeasure",
             "navigator.report.store")),
    ("cli", ("navigator.cli", "navigator.__main__")),
)
NAMES = tuple(name for name, _ in LAYERS)
# Path modules (navigator/paths/<name>.py) are every module of paths/ but these and the _helpers.
PATHS_SHARED = ("navigator.paths", "navigator.paths.base")

# Violations known today, each to be removed here once its move lands (the test fails on a stale entry
# too, so that this list stays the truth): (importer, imported).
KNOWN = {
    # the registry reads searchspace/*.yaml through search/space.py
    ("navigator.paths", "navigator.search.space"),
    # the gate's verdict (Side, Verdict) lives with the orchestration in report/check.py
    ("navigator.report.gate", "navigator.report.check"),
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    function_level: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the package. Triton's python-backend templates are files shipped into a model
    repository, not navigator modules."""
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py")) if "templates" not in p.parts}


def _target(known: dict[str, Path], base: str, name: str) -> str:
    """`from base import name`: the submodule base.name where there is one, else base."""
    return f"{base}.{name}" if f"{base}.{name}" in known else base


def imports(name: str, path: Path, known: dict[str, Path]) -> list[Import]:
    """The navigator modules `name` imports anywhere in its file (module level, functions, TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nested = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ast.walk(f) if n is not f}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = list(dict.fromkeys(_target(known, base, a.name) for a in node.names))
        else:
            continue
        for target in targets:
            if target == "navigator" or target.startswith("navigator."):
                out.append(Import(name, target, node.lineno, id(node) in nested))
    return out


def layer_of(module: str) -> str | None:
    best, depth = None, -1
    for layer, keys in LAYERS:
        for key in keys:
            package = key.removesuffix(".*")
            matches = module == package or (key.endswith(".*") and module.startswith(package + "."))
            if matches and len(package) > depth:
                best, depth = layer, len(package)
    return best


def is_path_module(module: str) -> bool:
    return (module.startswith("navigator.paths.") and module not in PATHS_SHARED
            and not module.rpartition(".")[2].startswith("_"))


def why_not(i: Import) -> str | None:
    """Why this import breaks the layering, or None."""
    mine, theirs = layer_of(i.importer), layer_of(i.imported)
    if mine is None or theirs is None:
        return None  # reported as unplaced
    if i.importer.startswith("navigator.runtimes") and not i.imported.startswith("navigator.runtimes"):
        return "runtimes/ imports nothing of navigator"
    if i.importer.startswith("navigator.paths.") and is_path_module(i.imported) and i.importer != i.imported:
        return "a path module is imported by another module of paths/ (shared code goes in a paths/_helper)"
    if NAMES.index(theirs) > NAMES.index(mine):
        return f"{mine} imports {theirs}, a layer above it"
    return None


def survey() -> tuple[dict[str, str | None], list[tuple[Import, str]]]:
    known = modules()
    table = {m: layer_of(m) for m in known}
    found = [(i, why) for m, p in known.items() for i in imports(m, p, known) if (why := why_not(i))]
    return table, found


def test_every_module_has_a_layer() -> None:
    table, _ = survey()
    assert not [m for m, layer in table.items() if layer is None], "add these modules to LAYERS"


def test_imports_follow_the_layers() -> None:
    _, found = survey()
    pairs = {(i.importer, i.imported) for i, _ in found}
    new = sorted(f"{i.importer} -> {i.imported} (line {i.line}): {why}" for i, why in found
                 if (i.importer, i.imported) not in KNOWN)
    assert not new, "imports against the layers:\n" + "\n".join(new)
    assert not KNOWN - pairs, f"fixed, remove from KNOWN: {sorted(KNOWN - pairs)}"


def test_function_level_imports_are_counted(tmp_path: Path) -> None:
    """An import inside a function is an edge like any other (a loop closed that way is still a loop)."""
    (tmp_path / "m.py").write_text("def f():\n    from navigator.cli import app\n    return app\n")
    got = imports("navigator.records", tmp_path / "m.py", {"navigator.cli": Path()})
    assert got == [Import("navigator.records", "navigator.cli", 2, True)]
    assert why_not(got[0]) == "ground imports cli, a layer above it"


def test_path_modules_do_not_import_each_other() -> None:
    assert why_not(Import("navigator.paths.ort_cuda", "navigator.paths.ort_cpu", 1, False))
    assert why_not(Import("navigator.paths._torch_gpu", "navigator.paths.eager", 1, False))
    assert why_not(Import("navigator.paths.ort_cuda", "navigator.paths._ort", 1, False)) is None
    assert why_not(Import("navigator.runtimes.ort", "navigator.records", 1, False))


def test_no_module_shadows_the_standard_library() -> None:
    """A module named like a standard one (report/html.py was) hides it from `import html` in its package
    folder's scripts and confuses tools."""
    shadows = [m for m in modules() if m.rpartition(".")[2] in sys.stdlib_module_names]
    assert not shadows


def main() -> None:
    table, found = survey()
    width = max(map(len, table))
    for layer in NAMES + (None,):
        for module in sorted(m for m, lay in table.items() if lay == layer):
            print(f"{module:<{width}}  {layer or 'UNPLACED'}")
    print(f"\n{len(found)} violation(s):")
    for i, why in sorted(found, key=lambda f: (f[0].importer, f[0].line)):
        mark = "known" if (i.importer, i.imported) in KNOWN else "NEW"
        where = "function-level" if i.function_level else "module-level"
        print(f"  [{mark}] {i.importer} -> {i.imported} (line {i.line}, {where}): {why}")


if __name__ == "__main__":
    main()
