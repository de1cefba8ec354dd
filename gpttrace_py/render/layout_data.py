"""A rendered program to and from its JSON form, driven by the dataclasses' own fields and types.

One serializer for RenderedProgram, ProgramLayout and AggregateLayout (and any field added to them later): a
remembered program (service/remember.py) comes back with every field it was stored with, never a hand-picked list.
JSON has no sets, tuples or integer keys: a set is stored sorted, a tuple as a list, a dict key as text; the
field's type brings each back.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def to_data(value: Any) -> Any:
    """``value`` as JSON data: dataclasses field by field, sets sorted, tuples as lists, dict keys as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return [to_data(v) for v in sorted(value)]
    if isinstance(value, (list, tuple)):
        return [to_data(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"no JSON form for {type(value).__name__}")


def from_data(cls: type[T], data: Any) -> T:
    """The dataclass ``cls`` back from ``to_data``'s form; ValueError/TypeError/KeyError when it does not fit."""
    return typing.cast(T, _convert(cls, data))


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(tp: Any, data: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise TypeError(f"{tp.__name__}: expected an object")
        hints = _hints(tp)
        known = {f.name for f in dataclasses.fields(tp) if f.init}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{tp.__name__}: unknown fields {sorted(unknown)}")
        return tp(**{name: _convert(hints[name], v) for name, v in data.items()})
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        errors = []
        for arm in (a for a in args if a is not type(None)):
            try:
                return _convert(arm, data)
            except (TypeError, ValueError, KeyError) as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors) or "no type fits")
    if origin in (list, set, frozenset):
        if not isinstance(data, list):
            raise TypeError(f"expected a list for {tp}")
        return origin(_convert(args[0], v) for v in data)
    if origin is tuple:
        if not isinstance(data, list):
            raise TypeError(f"expected a list for {tp}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in data)
        if len(args) != len(data):
            raise ValueError(f"expected {len(args)} items for {tp}")
        return tuple(_convert(a, v) for a, v in zip(args, data))
    if origin is dict:
        if not isinstance(data, dict):
            raise TypeError(f"expected an object for {tp}")
        return {_convert(args[0], k): _convert(args[1], v) for k, v in data.items()}
    if tp is Any:
        return data
    if tp in (str, bool):
        if not isinstance(data, tp):
            raise TypeError(f"expected {tp.__name__}, got {type(data).__name__}")
        return data
    if tp is int:  # dict keys come back as text
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            raise TypeError(f"expected int, got {type(data).__name__}")
        return int(data)
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise TypeError(f"expected float, got {type(data).__name__}")
        return float(data)
    if tp is type(None):
        if data is not None:
            raise TypeError("expected null")
        return None
    raise TypeError(f"no conversion to {tp}")
