"""Frozen dataclasses to JSON-compatible data and back, checked against their annotations.

The record and its parts are plain frozen dataclasses; this turns them into the documents that
DynamoDB, SNS, the API and the results files carry, and reads such documents back with every
value checked against the field's declared type, so that a malformed item fails loudly here
rather than as an ``AttributeError`` three modules away. (A library such as cattrs does this too,
but costs ~60 ms of cold start in every Lambda; this covers exactly the shapes we use.)
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from enum import Enum
from functools import cache
from typing import Any, TypeAlias, TypeVar, Union, cast, get_args, get_origin, get_type_hints

Json: TypeAlias = "str | int | float | bool | list[Json] | dict[str, Json] | None"
JsonObject: TypeAlias = "dict[str, Json]"
# A JSON object as it arrived (a Lambda event, an SQS body, an authorizer's claims): not yet
# checked, so every read of it says what it expects. The one place such a dict is typed.
Received: TypeAlias = "dict[str, Any]"

T = TypeVar("T")


class DecodeError(ValueError):
    """A document does not have the shape of the type it is read as."""


def unstructure(value: object) -> Json:
    """Dataclasses become objects (None fields left out), enums their values, tuples lists."""
    if isinstance(value, Enum):
        return cast(Json, value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: JsonObject = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is not None:
                out[f.name] = unstructure(item)
        return out
    if isinstance(value, Mapping):
        return {str(k): unstructure(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [unstructure(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot unstructure {type(value).__name__}")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def structure(cls: type[T], value: object) -> T:
    """Read ``value`` as an instance of the dataclass ``cls``; unknown keys are ignored (newer
    writers may add fields), missing ones take their defaults."""
    return cast(T, _structure(cls, value, cls.__name__))


def _structure(tp: Any, value: object, path: str) -> object:
    origin = get_origin(tp)
    if tp is Any or tp is object:
        return value
    if origin in (Union, types.UnionType):
        return _union(tp, value, path)
    if origin in (tuple, dict):
        return _container(tp, value, path)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp, value, path)
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError:
            raise DecodeError(f"{path}: {value!r} is not a {tp.__name__}") from None
    return _scalar(tp, value, path)


def _union(tp: Any, value: object, path: str) -> object:
    options = [a for a in get_args(tp) if a is not type(None)]
    if value is None:
        if len(options) < len(get_args(tp)):
            return None
        raise DecodeError(f"{path}: missing")
    if len(options) == 1:  # X | None: X's own, precise error
        return _structure(options[0], value, path)
    for option in options:
        try:
            return _structure(option, value, path)
        except DecodeError:
            continue
    raise DecodeError(f"{path}: {type(value).__name__} matches none of {tp}")


def _container(tp: Any, value: object, path: str) -> object:
    """tuple[X, ...] from a list; dict[str, X] from an object."""
    if get_origin(tp) is tuple:
        if not isinstance(value, list | tuple):
            raise DecodeError(f"{path}: expected a list, got {type(value).__name__}")
        return tuple(_structure(get_args(tp)[0], v, f"{path}[]") for v in value)
    if not isinstance(value, Mapping):
        raise DecodeError(f"{path}: expected an object, got {type(value).__name__}")
    item = get_args(tp)[1]
    return {str(k): _structure(item, v, f"{path}.{k}") for k, v in value.items()}


def _dataclass(tp: type, value: object, path: str) -> object:
    if not isinstance(value, Mapping):
        raise DecodeError(f"{path}: expected an object, got {type(value).__name__}")
    hints = _hints(tp)
    kwargs = {
        f.name: _structure(hints[f.name], value[f.name], f"{path}.{f.name}")
        for f in dataclasses.fields(tp)
        if f.name in value
    }
    try:
        return tp(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise DecodeError(f"{path}: {exc}") from None


def _scalar(tp: Any, value: object, path: str) -> object:
    # bool is an int to Python; never let True pass for a number or a number for a flag.
    if tp is bool and isinstance(value, bool):
        return value
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is str and isinstance(value, str):
        return value
    raise DecodeError(f"{path}: expected {getattr(tp, '__name__', tp)}, got {value!r:.40}")
