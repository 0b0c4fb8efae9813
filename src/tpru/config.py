"""Configuration: frozen dataclasses loaded from YAML, with ``key.sub=value`` overrides.

A stage's configuration is a frozen dataclass whose fields are plain values
(numbers, text, booleans, lists, nested dataclasses). `load` builds one from a
mapping, checking every key and type, so a typo in a YAML file fails at load
with the key's dotted name rather than being silently ignored. `to_dict`
turns it back into plain data, written beside every output.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Blur:
    ...     threshold: float = 20.0
    >>> load(Blur, apply_overrides({}, ["threshold=35"])).threshold
    35.0
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value that is missing, unknown or of the wrong type."""


def load(cls: type[T], data: Mapping[str, Any] | None, *, where: str = "") -> T:
    """Build dataclass `cls` from `data`, validating keys and types recursively."""
    data = dict(data or {})
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown key {_dotted(where, unknown[0])!s} "
                          f"(known: {', '.join(sorted(names))})")
    kwargs = {}
    for name in names:
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], _dotted(where, name))
    try:
        obj = cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{where or cls.__name__}: {err}") from None
    except ValueError as err:
        raise ConfigError(f"{where + ': ' if where else ''}{err}") from None
    return obj


def _dotted(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        kinds = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except ConfigError as err:
                errors.append(str(err))
                kinds.append(_kind(arg))
        # A list or mapping of the right shape with a wrong item: that item's error.
        shape = "a mapping" if isinstance(value, Mapping) else \
            "a list" if isinstance(value, Sequence) and not isinstance(value, str) else None
        if shape is not None and kinds.count(shape) == 1:
            raise ConfigError(errors[kinds.index(shape)])
        if len(errors) == 1:
            raise ConfigError(errors[0])
        raise ConfigError(f"{where}: expected {', '.join(kinds[:-1])} or {kinds[-1]}, "
                          f"got {value!r}")
    if origin is typing.Literal:
        if value not in get_args(hint):
            choices = ", ".join(repr(a) for a in get_args(hint))
            raise ConfigError(f"{where}: {value!r} is not one of {choices}")
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return load(hint, value, where=where)
    if origin in (tuple, list, Sequence) or hint in (tuple, list):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        args = get_args(hint)
        item = args[0] if args else Any
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or hint in (dict,):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        key_t, val_t = get_args(hint) or (Any, Any)
        # `to_dict` (and JSON) write every key as text: read "3" back as the number 3.
        return {_convert(key_t, _number_key(k) if key_t is int else k, where):
                _convert(val_t, v, f"{where}.{k}")
                for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected text, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {hint}")


def _kind(hint: Any) -> str:
    """What a value of `hint` is, in a config error's words."""
    origin = get_origin(hint)
    if origin in (tuple, list, Sequence) or hint in (tuple, list):
        return "a list"
    if origin in (dict, Mapping) or hint is dict or dataclasses.is_dataclass(hint):
        return "a mapping"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    return {int: "an integer", float: "a number", bool: "true or false",
            str: "text"}.get(hint, str(hint))


def _number_key(key: Any) -> Any:
    """A mapping key written as text ("3") back as the integer it was."""
    if isinstance(key, str) and key.strip().lstrip("-").isdigit():
        return int(key)
    return key


def to_dict(obj: Any) -> Any:
    """Plain data (dicts, lists, scalars) for a config dataclass, for YAML or JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of `data` with ``a.b.c=value`` overrides applied.

    The value is parsed as YAML, so ``n=4`` is a number, ``on=true`` a
    boolean and ``tasks=[ordering,next_frame]`` a list.
    """
    result: dict[str, Any] = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key.sub=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({err})") from None
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top, got {type(data).__name__}")
    return data


def check_keys(cls: type[Any], data: Mapping[str, Any], *, source: str, where: str = "") -> None:
    """Refuse the first key of `data` that config dataclass `cls` does not have, naming `source`.

    Only the keys are checked, following nested config dataclasses (a key
    under a mapping field such as ``model.options`` is the field's own); the
    values are `tpru.config.load`'s to check once every source is merged. So
    an unknown key is blamed on the file or override that wrote it, not on the
    merged result.

    Example:
        >>> from tpru.train.config import TrainerSettings
        >>> check_keys(TrainerSettings, {"sed": 1}, source="run.yaml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        tpru.config.ConfigError: run.yaml: unknown key sed (known: bf16, ...)
    """
    names = sorted(f.name for f in dataclasses.fields(cls) if f.init)
    hints = get_type_hints(cls)
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise ConfigError(f"{source}: unknown key {dotted} (known: {', '.join(names)})")
        nested = [t for t in (hints[key], *get_args(hints[key]))
                  if dataclasses.is_dataclass(t) and isinstance(t, type)]
        if nested and isinstance(value, Mapping):
            check_keys(nested[0], value, source=source, where=dotted)
