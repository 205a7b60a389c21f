"""Problems for the requests gunicorn refuses before the app sees them.

Gunicorn answers a request it cannot parse (a request line over 4094 bytes,
a header too large, a line that is not HTTP) itself, with an HTML page and no
request id. ``service/gunicorn.conf.py`` has each worker answer those with
:func:`write_problem` instead: the same ``application/problem+json`` every
other refusal gets, with a new request id in ``X-Request-ID`` and
``instance``, and what to change.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable

from initlab.web.problems import (
    INTERNAL_ERROR,
    OTHER_HTTP_ERROR,
    PROBLEM_MEDIA_TYPE,
)

request_log = logging.getLogger("initlab.request")

#: What to change, by the status gunicorn chose.
ADVICE = {
    400: "send well-formed HTTP/1.1 (a request line of method, path and version,"
    " headers as name: value without line folding)",
    403: "send the request over the connection the service expects",
    414: "shorten the request line (at most 4094 bytes): a long query belongs"
    " in a POST body",
    417: "leave out the Expect header, or send Expect: 100-continue",
    431: "send fewer or smaller headers (each at most 8190 bytes, at most 100)",
    501: "send the body with a Content-Length or Transfer-Encoding: chunked",
}


def write_problem(
    sock: object,
    status: int,
    reason: str,
    message: str,
    *,
    send: Callable[[object, bytes], object],
) -> None:
    """Write a problem response for a request the server refused, then nothing.

    ``send(sock, data)`` writes the bytes (gunicorn's ``util.write_nonblock``).
    """
    request_id = uuid.uuid4().hex
    kind = INTERNAL_ERROR if status >= 500 and status != 501 else OTHER_HTTP_ERROR
    if kind is INTERNAL_ERROR:
        detail = (
            "The server failed before the request reached the service; the"
            " server log has the traceback."
        )
    else:
        said = message.strip() or reason
        advice = ADVICE.get(status, "send a well-formed HTTP/1.1 request")
        detail = (
            f"The server refused the request before reading it: {said}."
            f" Fix it: {advice}."
        )
    body = json.dumps(
        {
            "type": kind.type,
            "title": reason,
            "status": status,
            "detail": detail,
            "instance": request_id,
            "errors": [],
        },
        ensure_ascii=True,
    ).encode("ascii")
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        f"Content-Type: {PROBLEM_MEDIA_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "\r\n"
    ).encode("latin-1")
    send(sock, head + body)
    # The request was never parsed: no method or path, but its id and status.
    line = {"method": None, "path": None, "status": status, "request_id": request_id}
    request_log.info(json.dumps({**line, "refused_by": "server"}))
