"""Every failure the client reports, as one small hierarchy.

``InitlabError`` is the base: catch it to handle anything the client raises.
Transport failures (``ConnectionError``, ``Timeout``) mean no answer arrived;
``APIError`` and its subclasses mean the service answered with an error
status and carry its RFC 9457 problem details; ``InvalidResponse`` means a
success status arrived with a body this client cannot read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests


class InitlabError(Exception):
    """Base class of every error raised by ``initlab_client``."""


class ConnectionError(InitlabError):  # Shadows the builtin, as requests does.
    """The service could not be reached (refused, DNS failure, reset)."""


class ConnectionDropped(ConnectionError):
    """The request was sent, and the connection closed before any answer.

    The service is running, but the worker computing the answer went away
    (restarted, killed, or a proxy in between timed out); raised once the
    retries have run out.
    """


class Timeout(InitlabError):
    """The service did not connect or answer within the client's timeout.

    A read timeout (the service has the request and has not answered) is not
    retried, since it may still be computing; every initlab computation is a
    pure function of its request, so trying again later is safe, and a
    larger ``timeout`` helps for large specs.
    """


class ConnectTimeout(Timeout):
    """No connection opened within the connect timeout, after the retries;
    nothing was sent."""


class InvalidResponse(InitlabError):
    """A success status arrived, but the body is not what this client reads.

    ``response`` is the ``requests.Response`` for inspection.
    """

    def __init__(self, message: str, response: requests.Response | None = None):
        super().__init__(message)
        self.response = response


class InvalidRequest(InitlabError, ValueError):
    """The request cannot be sent as given; nothing was sent.

    A value in it has no JSON form (NaN, an infinity, a date, a set);
    ``pointer`` is the JSON pointer of that value in the request body.
    """

    def __init__(self, message: str, pointer: str | None = None):
        super().__init__(message)
        self.pointer = pointer


class SpecFileError(InitlabError, ValueError):
    """A spec file could not be parsed into a JSON object."""


@dataclass(frozen=True)
class FieldError:
    """One field at fault in a request: a JSON pointer into the body and why."""

    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


class APIError(InitlabError):
    """The service answered with an error status.

    The attributes mirror the problem details of the answer: ``status``,
    ``title``, ``detail``, ``type``, ``instance`` (the request id, also as
    ``request_id``) and ``errors``, one :class:`FieldError` per field at fault.
    ``response`` is the ``requests.Response``.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        type: str | None = None,  # RFC 9457 names it so.
        instance: str | None = None,
        errors: list[FieldError] | None = None,
        response: requests.Response | None = None,
    ):
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.instance = instance
        self.errors = list(errors or [])
        self.response = response
        super().__init__(self._summary())

    @property
    def request_id(self) -> str | None:
        """The id the service gave this request; quote it when reporting a bug."""
        return self.instance

    def _summary(self) -> str:
        text = f"{self.status} {self.title}"
        if self.detail:
            text += f": {self.detail}"
        # A detail that already quotes a field error (the service's does when
        # one field is at fault) is not followed by it again.
        fields = [str(error) for error in self.errors if str(error) not in text]
        if fields:
            text += " (" + "; ".join(fields) + ")"
        if self.instance:
            text += f" [request {self.instance}]"

        return text


class BadRequest(APIError):
    """400: the body is not JSON, or not a JSON object."""


class Unauthorized(APIError):
    """401: the service requires an API key, and none or a wrong one was sent.

    Pass ``api_key=`` to the client or set ``INITLAB_API_KEY``.
    """


class NotFound(APIError):
    """404: no such path on this service (an older server, or a wrong base URL)."""


class MethodNotAllowed(APIError):
    """405: the path exists, but not for this method (an older or newer server)."""


class PayloadTooLarge(APIError):
    """413: the request body is over the service's size limit."""


class UnsupportedMediaType(APIError):
    """415: the body was not sent as ``application/json``."""


class ValidationError(APIError):
    """422: valid JSON that breaks a rule; ``errors`` points at each field."""


class LimitExceeded(ValidationError):
    """422 ``limit-exceeded``: the request asks for more work than the service allows.

    ``limit`` names the limit (``compute_budget``, ``max_seeds``, ...) and
    ``limit_value`` gives its value; for a budget, ``estimate`` holds the
    estimated cost (``work``, ``flops``, ``random_numbers``, ``peak_bytes``,
    ...). ``detail`` says what to change: fewer seeds, a smaller batch, or
    the analytic method, which is always within budget.
    """

    def __init__(
        self,
        *args: Any,
        limit: str | None = None,
        limit_value: float | None = None,
        estimate: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        self.limit = limit
        self.limit_value = limit_value
        self.estimate = estimate
        super().__init__(*args, **kwargs)


class TooManyRequests(APIError):
    """429: the service is rate limiting; raised once the client's retries ran out.

    ``retry_after`` is the wait in seconds the service asked for, when it
    said one (``None`` otherwise), as asked: the client itself waits at most
    ``MAX_RETRY_AFTER`` (60) seconds before a retry.
    """

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any):
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)


class ServerError(APIError):
    """5xx: a fault on the service side; ``request_id`` identifies it in its logs."""


class ServiceBusy(ServerError):
    """503 ``busy``: the service had no turn for the request, on every attempt.

    A worker runs and queues only so many multi-second computations
    (statistics, charts, µP checks, the largest answers) and answers any
    further one with this problem and a ``Retry-After``; the client waits and
    sends the request again, and raises this once its retries have run out.
    ``retry_after`` is the wait the service asked for, in seconds (``None``
    when it gave none), and ``attempts`` the number of requests sent
    (``None`` when a session of the caller's does not count them). Every
    computation is a pure function of its request, so trying again later, or
    with more ``retries``, is safe.
    """

    def __init__(
        self,
        *args: Any,
        retry_after: float | None = None,
        attempts: int | None = None,
        **kwargs: Any,
    ):
        self.retry_after = retry_after
        self.attempts = attempts
        super().__init__(*args, **kwargs)

    def _summary(self) -> str:
        tried = ""
        if self.attempts is not None:
            plural = "" if self.attempts == 1 else "s"
            tried = f" after {self.attempts} attempt{plural}"

        return (
            f"the service is busy{tried}: {super()._summary()}; try again later,"
            " or give the client more retries"
        )


LIMIT_EXCEEDED_SUFFIX = "/limit-exceeded"
BUSY_SUFFIX = "/busy"
_ERROR_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationError,
    429: TooManyRequests,
}


def api_error_class(status: int, problem_type: Any = None) -> type[APIError]:
    """The most specific :class:`APIError` subclass for a status and problem type."""
    if status == 503 and str(problem_type or "").endswith(BUSY_SUFFIX):
        return ServiceBusy
    if status >= 500:
        return ServerError
    if status == 422 and str(problem_type or "").endswith(LIMIT_EXCEEDED_SUFFIX):
        return LimitExceeded

    return _ERROR_BY_STATUS.get(status, APIError)


def field_errors(entries: Any) -> list[FieldError]:
    """The ``errors`` member of a problem body, skipping entries it cannot read."""
    if not isinstance(entries, list):
        return []

    return [
        FieldError(str(entry.get("pointer", "")), str(entry.get("message", "")))
        for entry in entries
        if isinstance(entry, dict)
    ]
