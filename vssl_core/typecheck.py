"""Check recipe values against Python type hints (the hints are the schema of every component)."""

from __future__ import annotations

import collections.abc as cabc
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union


def check_type(value: Any, hint: Any) -> bool:
    """True when ``value`` (plain YAML data) is acceptable for ``hint``."""
    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union or origin is types.UnionType:
        return any(check_type(value, a) for a in args)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str or hint is Path:
        return isinstance(value, str)
    if origin in (list, tuple, cabc.Sequence) or hint in (list, tuple):
        if not isinstance(value, list | tuple):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(check_type, value, args))
        item = args[0] if args else Any
        return all(check_type(v, item) for v in value)
    if origin in (dict, cabc.Mapping) or hint is dict:
        if not isinstance(value, dict):
            return False
        k, v = args if args else (Any, Any)
        return all(check_type(a, k) and check_type(b, v) for a, b in value.items())
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a hint we cannot interpret is not a reason to reject a recipe


def type_name(hint: Any) -> str:
    """A readable name for a hint, as a user would write it in YAML terms."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is None or hint is type(None):
        return "null"
    if origin is Union or origin is types.UnionType:
        return " or ".join(type_name(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple, cabc.Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} ({', '.join(type_name(a) for a in args)})"
        return f"a list of {type_name(args[0])}" if args else "a list"
    if origin in (dict, cabc.Mapping):
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def describe(value: Any) -> str:
    kind = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "mapping"}
    return f"{kind.get(type(value), type(value).__name__)} {value!r}"
