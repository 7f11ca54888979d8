"""report.json read back into the typed Result (every reader: the gate, check --model, serve-check,
load_result); nothing is written."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from navigator.errors import InputError, one_line
from navigator.records import REPORT_VERSION, Result, UnknownKeys, from_dict


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
        raise InputError(f"{path}: malformed navigator report ({one_line(exc)}){older}") from None
    if older:
        raise InputError(f"{path}: {older[2:]}")
    return replace(result, report=Path(path))
