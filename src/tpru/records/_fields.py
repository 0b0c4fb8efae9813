"""Reading one decoded JSON object field by field, with errors that say where.

Every record of `tpru.records` reads through `Fields`, so a file that does not
match its schema fails the same way whichever record it is: one line naming
the file (and line), the field, what was expected and what was found.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tpru.diagnostics import InputError, json_problem

REQUIRED: Any = object()
"""The default of a field that must be present (and not null)."""

FIRST_VERSION = 1
"""The version of a file that carries no ``schema_version``: the format of the tpru
that first wrote it, before versions were named."""


class SchemaVersionError(InputError):
    """A file written by a newer tpru: its ``schema_version`` is above what this one reads.

    Kept apart from other `InputError`s so that code which repairs a file
    (a resumed run drops unreadable result lines) refuses it instead.
    """


class Fields:
    """The fields of one decoded JSON object, read with a kind each.

    A field that is missing or null reads as its default; without a default
    (`REQUIRED`) that is an error. ``true`` is never accepted where a number or
    text is meant: JSON's booleans are not Python's ints. Keys no field asks
    for are ignored (see `tpru.records`).

    Example:
        >>> Fields({"n": 3}, "f.json").get("n", int)
        3
        >>> Fields({}, "f.json").get("n", int, None) is None
        True
    """

    def __init__(self, data: Any, where: str) -> None:
        self.where = where
        if not isinstance(data, Mapping):
            raise self.error(f"expected a JSON object, got {type(data).__name__}")
        self.data: Mapping[str, Any] = data

    def error(self, message: str) -> InputError:
        """An `InputError` whose message starts with where the object was read."""
        return InputError(f"{self.where}: {message}" if self.where else message)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = REQUIRED) -> Any:
        """The value of `key`, checked to be of `kind`; `default` when missing or null."""
        value = self.data.get(key)
        if value is None:
            if default is REQUIRED:
                raise self.error(f"field '{key}' is missing")
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.error(f"field '{key}': expected "
                             f"{' or '.join(k.__name__ for k in kinds)}, "
                             f"got {type(value).__name__}")
        return value

    def number(self, key: str, default: Any = REQUIRED) -> Any:
        """A float field, where JSON may hold an integer (``0`` for ``0.0``)."""
        value = self.get(key, (int, float), default)
        return float(value) if isinstance(value, int) else value

    def texts(self, key: str, default: Any = REQUIRED) -> Any:
        """A list of text, as a tuple; `default` when missing or null."""
        value = self.get(key, list, default)
        if value is default:
            return default
        if any(not isinstance(item, str) for item in value):
            raise self.error(f"field '{key}': expected a list of text")
        return tuple(value)

    def check_version(self, what: str, known: int) -> None:
        """Refuse a ``schema_version`` above `known` (a newer tpru wrote it) or one that
        is not a version; a missing one is `FIRST_VERSION`."""
        version = self.get("schema_version", int, FIRST_VERSION)
        if version < FIRST_VERSION:
            raise self.error(f"field 'schema_version': {version} is not a version "
                             f"(versions start at {FIRST_VERSION})")
        if version > known:
            raise SchemaVersionError(
                f"{self.where + ': ' if self.where else ''}{what} schema_version {version} is "
                f"newer than this tpru reads (version {known}); upgrade tpru to read it")


def load_object(path: str | os.PathLike[str]) -> tuple[Any, str]:
    """The decoded JSON of the file `path`, and the path as messages name it.

    Raises:
        InputError: the file cannot be read or is not valid JSON; the message
            names the file.
    """
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{where}: not valid JSON ({json_problem(err)})") from None
    except OSError as err:
        raise InputError(f"{where}: cannot be read ({err.strerror or err})") from None
    try:
        return json.loads(text), where
    except json.JSONDecodeError as err:
        raise InputError(f"{where}: not valid JSON ({json_problem(err)})") from None
