"""Values made ready for a JSON body, or refused with the place they are at.

Python's ``json`` writes ``NaN`` and ``Infinity``, which are not JSON and
which the service refuses, and fails on numpy scalars and dates with a
message that does not say where they are. :func:`json_ready` walks a value
once, turns numpy's integers and floats into Python's, and raises
:class:`NotJSON` with the JSON pointer of the first value that has no JSON
form, so that the caller can say which field to fix.
"""

from __future__ import annotations

import datetime
import json
import math
import numbers
import operator
from collections.abc import Mapping
from typing import Any

# The service refuses a body whose arrays and objects nest deeper than this
# (INITLAB_MAX_JSON_DEPTH, 64 by default); a spec nests a few levels. The
# walk below recurses once per level, far within Python's recursion limit.
MAX_DEPTH = 64


class NotJSON(ValueError):
    """A value with no JSON form; ``pointer`` says where it is."""

    def __init__(self, pointer: str, message: str):
        self.pointer = pointer or "/"
        super().__init__(f"{self.pointer}: {message}")


class BadNesting(NotJSON):
    """Lists and mappings nested deeper than the service reads, or inside
    themselves (a Python list appended to itself)."""


def json_ready(value: Any, pointer: str = "", max_depth: int = MAX_DEPTH) -> Any:
    """``value`` with every number a plain ``int`` or finite ``float``.

    Mappings become dicts (their keys must be strings), lists and tuples
    become lists. Raises :class:`NotJSON` for NaN and infinities and for
    anything else JSON cannot hold (a date, a set, bytes), and
    :class:`BadNesting` for a list or mapping that contains itself or that
    lies deeper than ``max_depth`` levels (the outermost one is level 1).
    """
    return _ready(value, pointer, 1, max_depth, set())


def _shown(value: Any) -> str:
    """``value`` as a spec file would write it: 1, null, true, 2024-01-15."""
    if value is None or isinstance(value, bool | int):
        return json.dumps(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return repr(value)


def _kind(value: Any) -> str:
    """What ``value`` is, in JSON's words where it has them."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, numbers.Number):
        return "a number"
    if isinstance(value, datetime.date | datetime.time):
        return f"a {type(value).__name__}"
    return f"a Python {type(value).__name__}"


def _ready(
    value: Any, pointer: str, depth: int, max_depth: int, enclosing: set[int]
) -> Any:
    """:func:`json_ready` of ``value`` at ``depth``, inside the containers
    whose ids are ``enclosing``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return operator.index(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise NotJSON(
                pointer,
                f"{value!r} is not a JSON number (JSON has no NaN or infinity);"
                " give a finite number",
            )
        return number
    if isinstance(value, (datetime.date, datetime.time)):
        # YAML reads an unquoted 2024-01-01 as a date.
        text = value.isoformat()
        raise NotJSON(
            pointer,
            f"the {type(value).__name__} {text} has no JSON form; give a number,"
            f" or the string {json.dumps(text)} (in YAML, write it in quotes)",
        )
    if not isinstance(value, (Mapping, list, tuple)):
        raise NotJSON(
            pointer,
            f"{value!r} ({type(value).__name__}) has no JSON form; give a number,"
            " a string, a boolean, null, a list or an object",
        )

    if id(value) in enclosing:
        raise BadNesting(
            pointer,
            "this list or mapping contains itself, which JSON cannot write;"
            " give the values themselves",
        )
    if depth > max_depth:
        raise BadNesting(
            pointer,
            f"lists and objects nest more than {max_depth} levels deep here,"
            " deeper than the service reads (a spec nests a few levels; see"
            " examples/*.spec.json)",
        )

    enclosing.add(id(value))
    if isinstance(value, Mapping):
        ready: Any = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotJSON(
                    pointer,
                    f"the key {_shown(key)} is {_kind(key)}; JSON keys are strings:"
                    f" write it as the string {json.dumps(_shown(key))}",
                )
            where = f"{pointer}/{_escaped(key)}"
            ready[key] = _ready(item, where, depth + 1, max_depth, enclosing)
    else:
        ready = [
            _ready(item, f"{pointer}/{index}", depth + 1, max_depth, enclosing)
            for index, item in enumerate(value)
        ]
    enclosing.discard(id(value))

    return ready


def _escaped(key: str) -> str:
    """``key`` as one JSON pointer segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")
