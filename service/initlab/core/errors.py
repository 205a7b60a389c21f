"""Errors the mathematics raises for input it cannot work with.

Each error carries the path of the offending field relative to the object the
core function was given (``("layers", 3, "in")`` for a spec), the value, what
is allowed and how to fix it. The web layer prefixes the path with where that
object sits in the request body (``/spec``) and turns it into a problem
response; the core never knows about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Path = tuple[str | int, ...]


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
