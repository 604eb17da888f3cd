"""Strict conversion of plain dicts (parsed YAML) into typed, frozen dataclasses.

Every config object in swin-lit is a dataclass whose fields carry type hints. ``from_dict`` checks
that each key exists (an unknown key names the allowed ones), that each value has the declared
type (``int``, ``float``, ``bool``, ``str``, ``Literal[...]``, ``tuple[int, ...]``, ``Optional``,
nested dataclasses) and then runs the dataclass' own ``__post_init__`` checks. All failures raise
``ConfigError`` whose message starts with the dotted key that is wrong.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from swin_lit.errors import ConfigError  # re-exported: swin_lit.typed.ConfigError

__all__ = ["ConfigError", "fail", "from_dict", "to_dict"]


def fail(key: str, message: str) -> typing.NoReturn:
    raise ConfigError(f"{key}: {message}")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_name(args[0])}"
        return "list of " + ", ".join(_type_name(a) for a in args)
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed or isinstance(value, bool) != any(isinstance(a, bool) for a in allowed):
            fail(key, f"got {value!r}; allowed values are {', '.join(repr(a) for a in allowed)}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            fail(key, f"must not be null (expected {_type_name(tp)})")
        mappings = [a for a in args if dataclasses.is_dataclass(a)]
        if isinstance(value, dict) and len(mappings) == 1:  # a mapping can only mean that one: say what is wrong in it
            return _convert(value, mappings[0], key)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        fail(key, f"got {value!r}; expected {_type_name(tp)}")
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            fail(key, f"got {value!r}; expected {_type_name(tp)}")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            fail(key, f"got {len(value)} items; expected {len(args)} ({_type_name(tp)})")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            fail(key, f"got {value!r}; expected a mapping of {tp.__name__} fields")
        return from_dict(tp, value, prefix=key)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            fail(key, f"got {value!r}; expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail(key, f"got {value!r}; expected an integer")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(key, f"got {value!r}; expected a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            fail(key, f"got {value!r}; expected a string")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            fail(key, f"got {value!r}; expected a mapping")
        return dict(value)
    raise TypeError(f"unsupported config type {tp!r} for {key}")


T = typing.TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, strictly (see module docstring)."""
    if not isinstance(data, dict):
        fail(prefix or cls.__name__, f"expected a mapping, got {data!r}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [k for k in data if k not in names]
    if unknown:
        where = f"{prefix}." if prefix else ""
        fail(f"{where}{unknown[0]}", f"unknown key; allowed keys are {', '.join(names)}")
    kwargs = {}
    for name in names:
        if name in data:
            key = f"{prefix}.{name}" if prefix else name
            kwargs[name] = _convert(data[name], hints[name], key)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        if prefix and not str(err).startswith(prefix):
            raise ConfigError(f"{prefix}.{err}") from None
        raise


def to_dict(obj: Any) -> Any:
    """Plain JSON/YAML-friendly form of a config dataclass (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
