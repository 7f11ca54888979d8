"""Every option of `navigator optimize` is an argument of the one public `navigator.optimize` (the CLI
passes its parameters straight through)."""

from __future__ import annotations

import inspect

import typer


def test_every_cli_option_is_an_argument_of_optimize() -> None:
    from navigator import cli
    from navigator.pyapi import optimize

    command = typer.main.get_command(cli.app).commands["optimize"]  # type: ignore[attr-defined]
    taken = set(inspect.signature(optimize).parameters)
    missing = [p.name for p in command.params if p.name not in taken]
    assert not missing, f"CLI options optimize() does not take: {missing}"
