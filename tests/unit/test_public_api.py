"""`navigator.__all__` is the public API: every name in it importable from `navigator` and documented in
README.md or docs/, every public attribute of the package listed, and every `navigator.NAME` the
documentation uses either listed or a module."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import navigator

REPO = Path(__file__).resolve().parents[2]


def documentation() -> str:
    return "\n".join(p.read_text() for p in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")),
                                             *sorted((REPO / "docs").rglob("*.py"))])


def documented(name: str, text: str) -> bool:
    """Named as `navigator.NAME` or as a code span of its own (`NAME`)."""
    return bool(re.search(rf"\bnavigator\.{name}\b|`{name}`", text))


def test_all_is_sorted_unique_and_importable() -> None:
    assert list(navigator.__all__) == sorted(set(navigator.__all__))
    namespace: dict[str, object] = {}
    exec("from navigator import *", namespace)
    assert {n for n in namespace if n != "__builtins__"} == set(navigator.__all__)


def test_every_public_attribute_is_listed() -> None:
    """Nothing public reaches users by accident: a non-module, non-underscore attribute is in __all__."""
    public = {n for n, v in vars(navigator).items() if not n.startswith("_") and not inspect.ismodule(v)}
    assert public == set(navigator.__all__)


def test_every_listed_name_is_documented() -> None:
    text = documentation()
    assert [n for n in navigator.__all__ if not documented(n, text)] == []


def test_the_documentation_uses_only_listed_names() -> None:
    """`navigator.NAME` in README.md or docs/ is a listed name or a module (navigator.paths, ...)."""
    used = set(re.findall(r"\bnavigator\.([A-Za-z_]\w*)", documentation()))
    modules = {p.stem for p in (REPO / "navigator").iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert sorted(used - set(navigator.__all__) - modules - {"__all__"}) == []


def test_documented_is_not_fooled_by_a_longer_name() -> None:
    assert documented("Result", "`navigator.Result`") and documented("Bench", "a `Bench`")
    assert not documented("Bench", "`Benchmark`") and not documented("check", "navigator check")
