"""The distribution is `triton-navigator` (`navigator` on the package index is another project): every
install hint names it, or a path install, with an extra pyproject.toml defines."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DIST = PYPROJECT["project"]["name"]
HINT = re.compile(r"pip install [^`\n]*?'?([\w.\-]+)\[([\w,]+)\]")


def _texts() -> dict[str, str]:
    files = [*(ROOT / "navigator").rglob("*.py"), ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    return {str(p.relative_to(ROOT)): p.read_text() for p in files}


def test_the_distribution_has_its_own_name_and_keeps_the_command() -> None:
    assert DIST == "triton-navigator"
    assert PYPROJECT["project"]["scripts"] == {"navigator": "navigator.cli:app"}
    for extra, requirements in PYPROJECT["project"]["optional-dependencies"].items():
        selves = [r for r in requirements if re.match(r"[\w.\-]+\[", r) and "navigator" in r]
        assert all(r.startswith(f"{DIST}[") for r in selves), (extra, selves)


def test_every_install_hint_names_the_distribution_or_a_path_and_a_real_extra() -> None:
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    hints = [(name, m.group(1), m.group(2)) for name, text in _texts().items() for m in HINT.finditer(text)]
    assert len(hints) > 10  # the pattern does find the hints
    for where, target, wanted in hints:
        assert target in (DIST, "."), f"{where}: pip install {target}[{wanted}]"
        assert set(wanted.split(",")) <= extras, f"{where}: unknown extra in {wanted}"
