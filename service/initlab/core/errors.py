"""Errors the mathematics raises for input it cannot work with.

Each error carries the path of the offending field relative to the object the
core function was given (``("layers", 3, "in")`` for a spec), the value, what
is allowed and how to fix it. The web layer prefixes the path with where that
object sits in the request body (``/spec``) and turns it into a problem
response; the core never knows about HTTP.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Path = tuple[str | int, ...]

#: How many characters of a value a message quotes before cutting it with "…".
VALUE_PREVIEW_CHARS = 80
#: How alike a word and an allowed one must be (difflib's ratio) to suggest it.
SUGGESTION_CUTOFF = 0.7


@dataclass
class FieldProblem:
    """One thing wrong with one field."""

    path: Path
    message: str
    value: Any = None
    allowed: str | None = None

    def prefixed(self, *prefix: str | int) -> FieldProblem:
        return FieldProblem(
            (*prefix, *self.path), self.message, self.value, self.allowed
        )


class InitlabError(ValueError):
    """Base class of every error raised by ``initlab.core`` on bad input."""


@dataclass
class InvalidInput(InitlabError):
    """The input breaks a rule; ``problems`` lists every field at fault."""

    problems: list[FieldProblem] = field(default_factory=list)
    title: str = "Invalid input"

    def __post_init__(self) -> None:
        super().__init__("; ".join(p.message for p in self.problems))

    @classmethod
    def at(
        cls, path: Path, message: str, value: Any = None, allowed: str | None = None
    ) -> InvalidInput:
        return cls([FieldProblem(tuple(path), message, value, allowed)])

    def prefixed(self, *prefix: str | int) -> InvalidInput:
        return InvalidInput([p.prefixed(*prefix) for p in self.problems], self.title)


@dataclass
class LimitExceeded(InvalidInput):
    """The request would be too large: refused before any work is done.

    ``limit`` names the configured limit, ``limit_value`` its value.
    """

    limit: str = ""
    limit_value: int | float | None = None
    title: str = "Request over a configured limit"

    def prefixed(self, *prefix: str | int) -> LimitExceeded:
        return LimitExceeded(
            [p.prefixed(*prefix) for p in self.problems],
            self.title,
            limit=self.limit,
            limit_value=self.limit_value,
        )


def json_value(value: Any, limit: int = VALUE_PREVIEW_CHARS) -> str:
    """``value`` as the user wrote it in JSON, for a message, cut to ``limit`` chars.

    ``None`` reads ``null``, ``True`` reads ``true`` and a string keeps its
    double quotes, so a message quotes what was sent rather than Python's
    repr. A value longer than ``limit`` characters is cut and ends with "…";
    one JSON cannot write (a Python object passed by a core caller) falls
    back to its repr.
    """
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError):
        try:
            text = repr(value)
        except ValueError:  # an integer with more digits than Python prints
            text = f"an integer of {value.bit_length()} bits"
    if len(text) > limit:
        text = text[: limit - 1] + "…"

    return text


def closest(word: object, choices: Iterable[str]) -> str | None:
    """The allowed word most like ``word``, if it is alike enough to suggest.

    difflib's ratio must reach :data:`SUGGESTION_CUTOFF`: a typo ("bais",
    "actvation") is suggested, a different word that shares a few letters
    ("dilation" and "activation", "in" and "kind") is not.
    """
    if not isinstance(word, str):
        return None
    matches = difflib.get_close_matches(word, list(choices), 1, SUGGESTION_CUTOFF)

    return matches[0] if matches else None
