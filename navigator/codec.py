"""The JSON round-trip of navigator's typed records (`to_dict` / `from_dict`), guided by their type
annotations; navigator.records imports it for its users."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")


def to_dict(record: Any) -> Any:
    """A record as JSON-ready data (paths as strings, tuples as lists)."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: to_dict(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, (list, tuple)):
        return [to_dict(v) for v in record]
    if isinstance(record, dict):
        return {k: to_dict(v) for k, v in record.items()}
    if isinstance(record, Path):
        return str(record)
    return record


class UnknownKeys(ValueError):
    """A record's data holds keys its type has no field for (written by another version)."""


def from_dict(cls: type[T], data: Any, unknown: bool = False) -> T:
    """Rebuild a record of type `cls` from `to_dict` output, guided by the type annotations. A key the
    record has no field for raises UnknownKeys, unless `unknown` (then it is dropped)."""
    return typing.cast(T, _build(cls, data, unknown))


def _build(tp: Any, data: Any, unknown: bool = False) -> Any:
    origin = typing.get_origin(tp)
    if data is None:
        return None
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(options) == 1 or not dataclasses.is_dataclass(options[0]):
            return _build(options[0], data, unknown) if len(options) == 1 else data
        return _build(options[0], data, unknown)
    if origin is Literal or tp is Any:
        return data
    if origin is tuple:
        args = typing.get_args(tp)
        return tuple(_build(args[0], v, unknown) for v in data)
    if origin is dict:
        value = typing.get_args(tp)[1] if typing.get_args(tp) else Any
        return {k: _build(value, v, unknown) for k, v in data.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        extra = sorted(set(data) - names)
        if extra and not unknown:
            raise UnknownKeys(f"{tp.__name__} has no field {', '.join(map(repr, extra))}")
        return tp(**{k: _build(hints[k], v, unknown) for k, v in data.items() if k in names})  # type: ignore[operator]  # a class here
    if tp is Path:
        return Path(data)
    return data
