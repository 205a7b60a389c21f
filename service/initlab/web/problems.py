"""Problem details (RFC 9457): every error the service answers with.

A :class:`Problem` is raised anywhere in the web layer and rendered once, by
the error handlers in :mod:`initlab.web.app`, as ``application/problem+json``.
Each kind of problem has a stable ``type`` URI under :data:`PROBLEM_TYPE_BASE`
(the URIs identify the kind; they are not required to resolve). Errors raised
by other code (marshmallow, ``initlab.core``, Werkzeug) are translated here
and nowhere else.

Field errors are listed under ``errors`` as ``{"pointer", "message"}``, the
pointer being an RFC 6901 JSON pointer into the request body
(``/spec/layers/3/in``). Errors in query parameters point into the query
parameters seen as one JSON object (``/negative_slope``) and also name the
``parameter``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from initlab.core.errors import (
    FieldProblem,
    InvalidInput,
    LimitExceeded,
    Path,
    closest,
    json_value,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://initlab.dev/problems/"

_MISSING = object()


@dataclass(frozen=True)
class ProblemKind:
    """One kind of problem: its ``type`` URI slug, HTTP status and title."""

    slug: str
    status: int
    title: str
    description: str

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_BASE + self.slug


MALFORMED_JSON = ProblemKind(
    "malformed-json",
    400,
    "Body is not valid JSON",
    "The body could not be parsed as strict JSON (RFC 8259, UTF-8, no NaN or"
    " Infinity, numbers that fit a double) or nests deeper than allowed.",
)
NOT_AN_OBJECT = ProblemKind(
    "not-an-object",
    400,
    "Body is not a JSON object",
    "The body is valid JSON but its top level is not an object.",
)
UNREADABLE_BODY = ProblemKind(
    "unreadable-body",
    400,
    "Body could not be read",
    "The body's transfer encoding is broken (a chunk size that is not"
    " hexadecimal, a chunk without its line end) or the body ended early.",
)
NOT_FOUND = ProblemKind(
    "not-found", 404, "Not found", "No resource lives at this path."
)
METHOD_NOT_ALLOWED = ProblemKind(
    "method-not-allowed",
    405,
    "Method not allowed",
    "The path exists but not with this method; the Allow header lists the methods.",
)
BODY_TOO_LARGE = ProblemKind(
    "body-too-large",
    413,
    "Body too large",
    "The body is larger than the configured INITLAB_MAX_BODY_BYTES.",
)
UNSUPPORTED_MEDIA_TYPE = ProblemKind(
    "unsupported-media-type",
    415,
    "Unsupported media type",
    "The body is not sent as application/json (UTF-8).",
)
VALIDATION = ProblemKind(
    "validation",
    422,
    "Request breaks a rule",
    "Valid JSON that breaks a rule of the request schema or of the mathematics;"
    " `errors` lists every field at fault.",
)
LIMIT_EXCEEDED = ProblemKind(
    "limit-exceeded",
    422,
    "Request over a configured limit",
    "The request would need more work than a configured limit allows; `limit`"
    " names the limit and `limit_value` gives its value.",
)
INTERNAL_ERROR = ProblemKind(
    "internal-error",
    500,
    "Internal server error",
    "A bug in the service. The body carries only the request id (`instance`);"
    " the traceback is in the server log under that id.",
)
OTHER_HTTP_ERROR = ProblemKind(
    "http-error", 400, "HTTP error", "Any other HTTP-level error."
)

PROBLEM_KINDS = (
    MALFORMED_JSON,
    NOT_AN_OBJECT,
    UNREADABLE_BODY,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    BODY_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    VALIDATION,
    LIMIT_EXCEEDED,
    INTERNAL_ERROR,
    OTHER_HTTP_ERROR,
)
_KIND_BY_STATUS = {
    kind.status: kind
    for kind in (
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        BODY_TOO_LARGE,
        UNSUPPORTED_MEDIA_TYPE,
        INTERNAL_ERROR,
    )
}


@dataclass(frozen=True)
class FieldError:
    """One entry of a problem's ``errors``."""

    pointer: str
    message: str
    parameter: str | None = None

    def to_dict(self) -> dict[str, str]:
        entry = {"pointer": self.pointer, "message": self.message}
        if self.parameter is not None:
            entry["parameter"] = self.parameter
        return entry


class Problem(Exception):
    """A request the service refuses, ready to be rendered as problem details.

    ``extensions`` are extra members of the problem object (``limit``,
    ``limit_value``); ``headers`` are added to the response (``Allow``).
    """

    def __init__(
        self,
        kind: ProblemKind,
        detail: str,
        errors: Iterable[FieldError] = (),
        *,
        status: int | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.status = status or kind.status
        self.title = title or kind.title
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})
        self.extensions = extensions

    def to_dict(self, instance: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.kind.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            "errors": [error.to_dict() for error in self.errors],
        }
        body.update(self.extensions)
        return body


def json_pointer(path: Iterable[str | int]) -> str:
    """The RFC 6901 pointer of a path: ``("layers", 3, "a/b")`` → ``/layers/3/a~1b``."""
    return "".join(
        "/" + str(part).replace("~", "~0").replace("/", "~1") for part in path
    )


def pointer_path(pointer: str) -> list[str]:
    """The parts of an RFC 6901 pointer, the reverse of :func:`json_pointer`."""
    return [
        part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]
    ]


def describe_value(value: Any) -> str:
    """A short JSON rendering of a value for an error message (``json_value``)."""
    return json_value(value)


def message_with_value(message: str, value: Any = _MISSING) -> str:
    """``message`` followed by ``Got <value>.`` unless it already says what it got."""
    message = message.strip()
    if value is _MISSING or re.search(r"\bgot\b", message, re.IGNORECASE):
        return message

    if not message.endswith((".", "!", "?")):
        message += "."
    return f"{message} Got {describe_value(value)}."


def value_at(document: Any, path: Iterable[str | int]) -> Any:
    """The value at ``path`` in a parsed JSON document, or ``_MISSING``."""
    node = document
    for part in path:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, Mapping) and str(part) in node:
            node = node[str(part)]
        elif isinstance(node, list) and _is_index(part, len(node)):
            node = node[int(part)]
        else:
            return _MISSING

    return node


def validation_problem(
    errors: Iterable[FieldError], detail: str | None = None
) -> Problem:
    """A 422 listing ``errors``; the detail names the first one."""
    errors = list(errors)
    if detail is None:
        detail = summary(errors)

    return Problem(VALIDATION, detail, errors)


def errors_from_validation_error(
    error: ValidationError,
    prefix: Path = (),
    document: Any = _MISSING,
) -> list[FieldError]:
    """Field errors of a marshmallow error, each with the pointer of its field.

    ``error.messages`` is marshmallow's nested dict (field names and list
    indices as keys, ``_schema`` for errors of the object itself, lists of
    messages as leaves); ``prefix`` is where the validated object sits in the
    body and ``document`` the body itself, used to quote the bad value.
    """
    found = []
    for path, message in _flatten_messages(error.messages, ()):
        full_path = (*prefix, *path)
        value = _MISSING
        if document is not _MISSING and full_path:
            value = value_at(document, full_path)
        found.append(
            FieldError(json_pointer(full_path), message_with_value(message, value))
        )

    return found


def errors_from_invalid_input(
    error: InvalidInput, prefix: Path = (), document: Any = _MISSING
) -> list[FieldError]:
    """Field errors of a core :class:`InvalidInput`, paths prefixed with ``prefix``."""
    return [_field_error(problem, prefix, document) for problem in error.problems]


def invalid_input_problem(
    error: InvalidInput, prefix: Path = (), document: Any = _MISSING
) -> Problem:
    """The 422 for a core error; a :class:`LimitExceeded` names its limit."""
    errors = errors_from_invalid_input(error, prefix, document)
    if not isinstance(error, LimitExceeded):
        return validation_problem(errors)

    detail = (
        f"The request is over the limit {error.limit} = {error.limit_value!r} (see"
        f" errors); make it smaller, or raise {limit_variable(error.limit)} on the"
        " server."
    )
    return Problem(
        LIMIT_EXCEEDED,
        detail,
        errors,
        limit=error.limit,
        limit_value=error.limit_value,
    )


def limit_variable(limit: str) -> str:
    """The environment variable that configures a limit."""
    return "INITLAB_" + limit.upper()


def from_http_exception(
    error: HTTPException,
    *,
    max_body_bytes: int | None = None,
    content_length: int | None = None,
    method: str | None = None,
    path: str | None = None,
    paths: Iterable[str] = (),
) -> Problem:
    """A Werkzeug HTTP error (404, 405, 413, ...) as a problem.

    For a 413, ``max_body_bytes`` is the configured limit and
    ``content_length`` the size the client announced, when it did. A 404 and
    a 405 name the ``method`` and ``path`` asked for; a 404 suggests the one
    of the service's ``paths`` most like it.
    """
    status = error.code or 500
    kind = _KIND_BY_STATUS.get(status, OTHER_HTTP_ERROR)
    headers: dict[str, str] = {}
    errors: list[FieldError] = []
    detail = error.description or kind.title

    where = "this path" if path is None else json_value(path)
    if status == 404:
        # The service's paths are lower case: /V1/Schemes is /v1/schemes.
        like = closest(path.lower(), paths) if path is not None else None
        hint = "" if like is None else f" (did you mean {like}?)"
        detail = (
            f"No resource at {where}{hint}; see /openapi.yaml for the paths served."
        )
    elif status == 405:
        allowed = sorted(getattr(error, "valid_methods", None) or [])
        headers["Allow"] = ", ".join(allowed)
        asked = "This method" if method is None else method
        detail = f"{asked} is not accepted at {where}; use one of {', '.join(allowed)}."
    elif status == 413:
        limit = "its limit"
        if max_body_bytes is not None:
            limit = f"INITLAB_MAX_BODY_BYTES = {max_body_bytes} bytes"
        sent = "" if content_length is None else f"; got {content_length} bytes"
        detail = (
            f"The body is larger than the server accepts, {limit}{sent}: send a"
            " smaller spec (repeat groups and dims keep one short), or raise"
            " INITLAB_MAX_BODY_BYTES on the server."
        )
        errors.append(FieldError("", f"the body is over {limit}{sent}"))

    title = kind.title if kind is not OTHER_HTTP_ERROR else error.name
    return Problem(kind, detail, errors, status=status, title=title, headers=headers)


def internal_error() -> Problem:
    return Problem(
        INTERNAL_ERROR,
        "The service failed on this request; report the request id (instance)"
        " so the traceback can be found in the server log.",
    )


def _field_error(problem: FieldProblem, prefix: Path, document: Any) -> FieldError:
    full_path = (*prefix, *problem.path)
    value = problem.value
    if value is None:
        value = value_at(document, full_path) if document is not _MISSING else _MISSING
    if not full_path:
        # A problem with the request as a whole: the whole body is no quote.
        value = _MISSING

    message = message_with_value(problem.message, value)
    if problem.allowed and problem.allowed not in message:
        if not message.endswith((".", "!", "?")):
            message += "."
        message = f"{message} Allowed: {problem.allowed}."
    return FieldError(json_pointer(full_path), message)


def _flatten_messages(messages: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(messages, Mapping):
        for key, nested in messages.items():
            nested_path = path if key == "_schema" else (*path, key)
            yield from _flatten_messages(nested, nested_path)
    elif isinstance(messages, list | tuple):
        for nested in messages:
            yield from _flatten_messages(nested, path)
    else:
        yield path, str(messages)


def summary(errors: list[FieldError]) -> str:
    """One sentence naming the first error, and how many there are in all."""
    if not errors:
        return "The request breaks a rule."

    first = errors[0]
    where = first.pointer or "the body"
    sentence = f"{where}: {first.message}"
    if len(errors) > 1:
        sentence = f"{len(errors)} fields are at fault (see errors); first, {sentence}"
    if not sentence.endswith((".", "?", "!")):
        sentence += "."
    return sentence


def _is_index(part: str | int, length: int) -> bool:
    if isinstance(part, bool):
        return False
    if isinstance(part, int):
        return 0 <= part < length
    return part.isdigit() and int(part) < length
