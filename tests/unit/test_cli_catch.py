"""cli.py: one place turns a NavigatorError into one line and its exit code (the gate's own codes for
`check`), and Ctrl-C into one line and 130, whichever command raised it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from navigator import cli
from navigator.errors import InvalidModelError


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, list(args))
    return result.exit_code, result.stderr if hasattr(result, "stderr") else result.output


def test_every_command_fails_in_one_line(tmp_path: Path) -> None:
    for args in (("serve-check", str(tmp_path)), ("report",), ("report", str(tmp_path)),
                 ("worker", "--storage", "sqlite:///" + str(tmp_path / "none.db"), "--study", "x")):
        code, err = _run(*args)
        assert code == 2, (args, err)
        assert err.startswith("navigator: error: ") and len(err.strip().splitlines()) == 1, (args, err)


def test_the_gate_keeps_its_exit_codes_and_interrupts_exit_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from navigator.report import check

    def invalid(*_: object, **__: object) -> None:
        raise InvalidModelError("the candidate's model did not load: garbage")

    monkeypatch.setattr(check, "check", invalid)
    code, err = _run("check", "--baseline", str(tmp_path / "b.json"), "--candidate", str(tmp_path / "c.json"))
    assert code == 3 and err == "navigator: error: the candidate's model did not load: garbage\n"

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt("interrupted; rerun the same command to continue the study")

    monkeypatch.setattr(check, "check", interrupted)
    code, err = _run("check", "--baseline", str(tmp_path / "b.json"), "--candidate", str(tmp_path / "c.json"))
    assert code == 130 and err == "navigator: interrupted; rerun the same command to continue the study\n"


def test_one_catch_site() -> None:
    assert Path(cli.__file__).read_text().count("except NavigatorError") == 1
