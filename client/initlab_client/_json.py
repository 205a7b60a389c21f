"""Values made ready for a JSON body, or refused with the place they are at.

Python's ``json`` writes ``NaN`` and ``Infinity``, which are not JSON and
which the service refuses, and fails on numpy scalars and dates with a
message that does not say where they are. :func:`json_ready` walks a value
once, turns numpy's integers and floats into Python's, and raises
:class:`NotJSON` with the JSON pointer of the first value that has no JSON
form, so that the caller can say which field to fix.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Mapping
from typing import Any

# Deeper than any spec needs, and well within Python's recursion limit.
MAX_DEPTH = 500


class NotJSON(ValueError):
    """A value with no JSON form; ``pointer`` says where it is."""

    def __init__(self, pointer: str, message: str):
        self.pointer = pointer or "/"
        super().__init__(f"{self.pointer}: {message}")


def json_ready(value: Any, pointer: str = "", depth: int = 0) -> Any:
    """``value`` with every number a plain ``int`` or finite ``float``.

    Mappings become dicts (their keys must be strings), lists and tuples
    become lists. Raises :class:`NotJSON` for NaN and infinities, for
    anything else JSON cannot hold (a date, a set, bytes), and for nesting
    deeper than :data:`MAX_DEPTH`.
    """
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

    if depth >= MAX_DEPTH:
        raise NotJSON(pointer, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        ready = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotJSON(
                    pointer,
                    f"the key {key!r} is a {type(key).__name__}; JSON keys are strings",
                )
            ready[key] = json_ready(item, f"{pointer}/{_escaped(key)}", depth + 1)
        return ready
    if isinstance(value, (list, tuple)):
        return [
            json_ready(item, f"{pointer}/{index}", depth + 1)
            for index, item in enumerate(value)
        ]

    raise NotJSON(
        pointer,
        f"{value!r} ({type(value).__name__}) has no JSON form; give a number,"
        " a string, a boolean, null, a list or an object",
    )


def _escaped(key: str) -> str:
    """``key`` as one JSON pointer segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")
