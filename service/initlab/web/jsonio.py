"""Strict JSON in and out.

Request bodies are parsed by RFC 8259's rules and nothing looser: UTF-8 only,
no ``NaN``/``Infinity``, no number that overflows a double, no key twice in one
object (RFC 8259 §4 leaves the meaning of a repeated name to the parser; Python
keeps the last silently), no nesting deeper than the configured depth (Python's
own parser would otherwise raise ``RecursionError`` or accept ``NaN``).
Responses are written by a provider that refuses non-finite numbers: the
mathematics producing one is a bug, and it must surface as a 500 rather than
as invalid JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask import Request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from initlab.core.errors import json_value
from initlab.web.problems import (
    MALFORMED_JSON,
    NOT_AN_OBJECT,
    UNREADABLE_BODY,
    UNSUPPORTED_MEDIA_TYPE,
    FieldError,
    Problem,
    json_pointer,
)

JSON_MEDIA_TYPE = "application/json"

# Strings and number-like tokens outside strings, to locate a bad number.
_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?', re.DOTALL
)


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, refusing NaN and Infinity both ways.

    Keys keep the order the schemas dump them in and the output is compact, so
    the same response always has the same bytes.
    """

    sort_keys = False
    compact = True

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        kwargs.setdefault("parse_constant", _refuse_constant)
        kwargs.setdefault("parse_float", _finite_float)
        return super().loads(s, **kwargs)


class _NonFiniteNumber(ValueError):
    pass


class _DuplicateKey(ValueError):
    """An object names the same key twice; ``key`` is that key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def request_body(request: Request) -> bytes:
    """The request's body, read once and kept; a 400 :class:`Problem` if unreadable.

    The server's reader raises its own errors for a broken chunked encoding
    (gunicorn's ``InvalidChunkSize``, ``ChunkMissingTerminator``) or a body
    cut short: whatever it raises but Werkzeug's own HTTP errors (413 over the
    size limit) is the client's body, not a bug of the service.
    """
    try:
        return request.get_data(cache=True)
    except HTTPException:
        raise
    except Exception as error:  # noqa: BLE001 - the WSGI server's reader
        reason = str(error) or type(error).__name__
        raise Problem(
            UNREADABLE_BODY,
            f"The body could not be read: {reason}. Send it with a"
            " Content-Length, or as well-formed chunks (hexadecimal sizes, each"
            " chunk ending in CRLF, a last chunk of size 0).",
        ) from None


def read_json_object(request: Request, max_depth: int) -> dict[str, Any]:
    """The request body as a JSON object, or a :class:`Problem` saying why not.

    415 unless the body is sent as ``application/json`` (UTF-8, a leading byte
    order mark ignored); 400 when it is empty, not strict JSON, nests deeper
    than ``max_depth`` or is not an object. A body over the size limit,
    chunked or not, raises Werkzeug's 413.
    """
    _check_media_type(request)
    data = request_body(request)
    _refuse_cut_stream(request, data)
    # RFC 8259 section 8.1 lets a parser ignore a byte order mark; editors on
    # Windows write one at the start of a UTF-8 file.
    text = _decode(data).removeprefix("\ufeff")
    if not text.strip():
        raise _malformed("the body is empty; send a JSON object such as {...}")
    document = parse_strict(text)

    too_deep = _first_path_deeper_than(document, max_depth)
    if too_deep is not None:
        pointer = json_pointer(too_deep)
        raise Problem(
            MALFORMED_JSON,
            f"The body nests arrays and objects deeper than {max_depth} levels"
            f" (at {pointer}); flatten it.",
            [FieldError(pointer, f"nested deeper than {max_depth} levels")],
        )

    if not isinstance(document, dict):
        got = _json_type_name(document)
        raise Problem(
            NOT_AN_OBJECT,
            f"The body must be a JSON object ({{...}}); got {got}.",
            [FieldError("", f"must be a JSON object; got {got}")],
        )

    return document


def parse_strict(text: str) -> Any:
    """Parse ``text`` as strict JSON; a 400 :class:`Problem` says where it fails."""
    try:
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except _DuplicateKey as error:
        raise _malformed(
            f"the key {json_value(error.key)} appears twice in one object; give"
            " each key once (JSON leaves a repeated key's meaning undefined)"
        ) from None
    except json.JSONDecodeError as error:
        where = _position(text, error.pos)
        raise _malformed(f"{error.msg} {where}") from None
    except RecursionError:
        raise _malformed(
            "arrays and objects nest too deeply to parse; flatten the body"
        ) from None
    except ValueError as error:
        # parse_constant/parse_float above, or an integer with more digits
        # than Python converts (sys.get_int_max_str_digits()).
        offset = _locate_bad_number(text)
        where = _position(text, offset) if offset is not None else "in the body"
        if not isinstance(error, _NonFiniteNumber):
            reason = "an integer has more digits than the service reads"
        elif str(error).lstrip("-") in ("NaN", "Infinity"):
            reason = f"{error} is not a JSON number (NaN and Infinity are refused)"
        else:
            reason = f"{error} overflows a double-precision number"
        raise _malformed(f"{reason} {where}") from None


def _refuse_cut_stream(request: Request, data: bytes) -> None:
    """413 for a chunked body longer than the limit, which Werkzeug cuts silently.

    A body without Content-Length is read up to ``max_content_length`` bytes
    and no further (Werkzeug 3.1 ``LimitedStream.readall``); one more byte
    waiting in the server's stream means the body was longer.
    """
    limit = request.max_content_length
    if request.content_length is not None or limit is None or len(data) < limit:
        return
    if request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def _check_media_type(request: Request) -> None:
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if request.mimetype == JSON_MEDIA_TYPE and charset in ("utf-8", "utf8"):
        return

    sent = request.content_type or "no Content-Type"
    raise Problem(
        UNSUPPORTED_MEDIA_TYPE,
        f"Send the body as {JSON_MEDIA_TYPE} (UTF-8); got {sent}.",
        [FieldError("", f"Content-Type must be {JSON_MEDIA_TYPE}; got {sent}")],
    )


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _malformed(
            f"the body is not UTF-8: byte {data[error.start]:#04x} at offset"
            f" {error.start} cannot be decoded"
        ) from None


def _malformed(reason: str) -> Problem:
    return Problem(
        MALFORMED_JSON,
        f"The body is not valid JSON: {reason}.",
        [FieldError("", reason)],
    )


def _position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - text.rfind("\n", 0, offset)
    return f"at line {line}, column {column} (char {offset})"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)

    return document


def _refuse_constant(name: str) -> Any:
    raise _NonFiniteNumber(name)


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _NonFiniteNumber(token)

    return value


def _locate_bad_number(text: str) -> int | None:
    for match in _TOKEN.finditer(text):
        token = match.group()
        if not token.startswith('"') and not _is_representable_number(token):
            return match.start()

    return None


def _is_representable_number(token: str) -> bool:
    if token.lstrip("-") in ("NaN", "Infinity"):
        return False
    try:
        if token.lstrip("-").isdigit():
            int(token)
            return True
        return math.isfinite(float(token))
    except ValueError:
        return False


def _first_path_deeper_than(document: Any, max_depth: int) -> tuple | None:
    """The path of the first array or object nested deeper than ``max_depth``.

    Walks with an explicit stack, so an arbitrarily deep document cannot
    exhaust the interpreter's recursion limit here.
    """
    stack: list[tuple[Any, tuple, int]] = [(document, (), 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict):
            children = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        else:
            continue

        if depth > max_depth:
            return path
        for key, child in reversed(children):
            stack.append((child, (*path, key), depth + 1))

    return None


def _json_type_name(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return f"{'true' if value else 'false'}"
    if value is None:
        return "null"

    return "a number"
