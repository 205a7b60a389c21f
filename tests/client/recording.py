"""A transport adapter that answers from the test and keeps what was sent.

Mounted on a client's session in place of the network, it lets a test read
the exact request a method makes (its method, URL, body and timeout) and
hand back any answer: a JSON object, a body that is not JSON, an error
status, or an exception from the transport.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import requests
from requests.adapters import BaseAdapter

from initlab_client import Client

BASE_URL = "http://initlab.test"

# An answer: a JSON value, raw text or bytes, or a function of the request
# that returns one of those.
Answer = Any | Callable[[requests.PreparedRequest], Any]


class RecordingAdapter(BaseAdapter):
    """Answers every request with ``status`` and ``answer``, or raises ``error``.

    ``answer`` may be a function of the request (to answer by path); a dict
    or list is sent as JSON, text and bytes as they are. Every request and
    the timeout it was sent with are kept in ``requests`` and ``timeouts``.
    """

    def __init__(
        self,
        answer: Answer = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        error: Exception | None = None,
    ) -> None:
        super().__init__()
        self.answer = {} if answer is None else answer
        self.status = status
        self.headers = dict(headers or {})
        self.error = error
        self.requests: list[requests.PreparedRequest] = []
        self.timeouts: list[object] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any):
        self.requests.append(request)
        self.timeouts.append(kwargs.get("timeout"))
        if self.error is not None:
            raise self.error

        body = self.answer(request) if callable(self.answer) else self.answer
        response = requests.Response()
        response.status_code = self.status
        response.reason = HTTPStatus(self.status).phrase
        response.url = request.url
        response.request = request
        if isinstance(body, (dict, list)):
            response._content = json.dumps(body).encode()
            response.headers["Content-Type"] = "application/json"
        else:
            response._content = body.encode() if isinstance(body, str) else body
        response.headers.update(self.headers)
        return response

    def close(self) -> None:
        pass


def recording_client(
    answer: Answer = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    error: Exception | None = None,
    **options: Any,
) -> tuple[Client, RecordingAdapter]:
    """A client whose every request reaches a :class:`RecordingAdapter`."""
    adapter = RecordingAdapter(answer, status, headers, error)
    session = requests.Session()
    session.mount(BASE_URL, adapter)

    return Client(BASE_URL, session=session, **options), adapter


def sent_body(adapter: RecordingAdapter) -> Any:
    """The JSON body of the one request the adapter received."""
    (request,) = adapter.requests

    return json.loads(request.body)
