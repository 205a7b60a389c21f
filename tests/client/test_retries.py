"""Retries, backoff, Retry-After and the API key, against a scripted HTTP server.

The server is Python's own ``http.server`` on 127.0.0.1, answering each
request with the next answer of a script and recording what it received.
urllib3 waits between attempts with ``time.sleep``; the tests record those
waits instead of sleeping, so they check the schedule without taking its time.
"""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import urllib3.util.connection
import urllib3.util.retry

import initlab_client
from initlab_client import (
    Client,
    ServerError,
    ServiceBusy,
    TooManyRequests,
    Unauthorized,
    ValidationError,
)

PROBLEM = "application/problem+json"


@dataclass
class Answer:
    status: int
    body: dict
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """Answers the n-th request with ``script[n]`` (the last one repeats)."""

    def __init__(self, script: list[Answer]):
        self.script = script
        self.received: list[Received] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                index = min(len(server.received), len(server.script) - 1)
                server.received.append(
                    Received(self.command, self.path, dict(self.headers), body)
                )
                answer = server.script[index]
                payload = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                content_type = "application/json" if answer.status < 400 else PROBLEM
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), daemon=True
        )

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class DroppingServer:
    """Reads each request whole, then closes the connection without a word for
    the first ``drops`` requests (a worker killed mid-request); answers the
    later ones 200 with ``{"status": "ok"}``. ``reset`` closes with a TCP
    reset instead of an orderly close."""

    def __init__(self, drops: int, reset: bool = False):
        self.drops = drops
        self.received: list[bytes] = []
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = self.rfile.readline()
                    if not line:
                        return
                    head += line
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                server.received.append(head + self.rfile.read(length))
                if len(server.received) <= server.drops:
                    if reset:
                        linger = struct.pack("ii", 1, 0)
                        self.connection.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, linger
                        )
                    return
                payload = b'{"status": "ok"}'
                self.wfile.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Connection: close\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
                )

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), daemon=True
        )

    def __enter__(self) -> DroppingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def problem(status: int, title: str) -> dict:
    return {
        "type": f"https://initlab.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": f"{title}: try again later.",
        "instance": "req-7",
        "errors": [],
    }


HEALTHY = Answer(200, {"status": "ok"})


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every wait urllib3 asks for between attempts, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(urllib3.util.retry.time, "sleep", recorded.append)
    return recorded


@pytest.fixture
def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The error of every failed attempt, as urllib3's retry policy counts them."""
    failures: list[str] = []
    increment = urllib3.util.retry.Retry.increment

    def counting(self, *args, **kwargs):
        error = kwargs.get("error")
        failures.append(type(error).__name__ if error else "status")
        return increment(self, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.retry.Retry, "increment", counting)
    return failures


# -- busy answers ------------------------------------------------------------------


def test_busy_answers_are_retried_and_retry_after_is_honored(
    waits: list[float],
) -> None:
    script = [
        Answer(503, problem(503, "Service Unavailable"), {"Retry-After": "7"}),
        Answer(429, problem(429, "Too Many Requests"), {"Retry-After": "2"}),
        HEALTHY,
    ]
    with ScriptedServer(script) as server, Client(server.url) as client:
        assert client.health() == {"status": "ok"}

    assert len(server.received) == 3
    assert waits == [7, 2]


def test_a_post_is_sent_again_unchanged(waits: list[float]) -> None:
    # Every endpoint is a pure computation, so a POST is as safe to repeat as
    # a GET: the same body goes out on each attempt.
    answer = {"items": [], "notes": []}
    script = [Answer(502, problem(502, "Bad Gateway")), Answer(200, answer)]
    spec = {"dims": {}, "layers": [{"kind": "linear", "in": 4, "out": 2}]}
    with ScriptedServer(script) as server, Client(server.url) as client:
        response = client._send("POST", "/v1/recommendations", json={"spec": spec})

    assert response.json() == answer
    assert [received.method for received in server.received] == ["POST", "POST"]
    assert server.received[0].body == server.received[1].body
    assert json.loads(server.received[1].body) == {"spec": spec}
    # The first retry follows at once; the backoff doubles from the second.
    assert waits == []


def test_backoff_doubles_and_the_last_busy_answer_raises(waits: list[float]) -> None:
    script = [Answer(504, problem(504, "Gateway Timeout"))]
    with ScriptedServer(script) as server:
        client = Client(server.url, retries=3, backoff=0.25)
        with pytest.raises(ServerError) as caught:
            client.health()

    assert len(server.received) == 4
    assert waits == [0.5, 1.0]
    assert caught.value.status == 504
    assert caught.value.detail == "Gateway Timeout: try again later."


def test_a_long_retry_after_is_cut_to_the_maximum(waits: list[float]) -> None:
    script = [
        Answer(503, problem(503, "Service Unavailable"), {"Retry-After": "86400"}),
        HEALTHY,
    ]
    with ScriptedServer(script) as server, Client(server.url) as client:
        client.health()

    assert waits == [initlab_client.MAX_RETRY_AFTER] == [60]


def test_rate_limited_after_the_retries_carries_retry_after(
    waits: list[float],
) -> None:
    script = [Answer(429, problem(429, "Too Many Requests"), {"Retry-After": "5"})]
    with ScriptedServer(script) as server, pytest.raises(TooManyRequests) as caught:
        Client(server.url, retries=1).health()

    assert len(server.received) == 2
    assert waits == [5]
    assert caught.value.status == 429
    assert caught.value.retry_after == 5
    assert caught.value.request_id == "req-7"


# An HTTP date long after any run of these tests: the service asks for decades.
FAR_FUTURE = "Fri, 01 Jan 2100 00:00:00 GMT"


def test_a_far_retry_after_date_is_reported_as_asked_and_waited_as_cut(
    waits: list[float],
) -> None:
    script = [
        Answer(429, problem(429, "Too Many Requests"), {"Retry-After": FAR_FUTURE})
    ]
    with ScriptedServer(script) as server, pytest.raises(TooManyRequests) as caught:
        Client(server.url, retries=1).health()

    assert len(server.received) == 2
    assert waits == [initlab_client.MAX_RETRY_AFTER] == [60]
    # What the service asked, not the client's cut nor urllib3's (6 h).
    assert caught.value.retry_after > 20 * 365 * 24 * 3600


@pytest.mark.parametrize(
    ("header", "asked"),
    [("7", 7.0), (" 120 ", 120.0), ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0)],
)
def test_retry_after_is_read_as_seconds_or_a_date(header: str, asked: float) -> None:
    script = [Answer(429, problem(429, "Too Many Requests"), {"Retry-After": header})]
    with ScriptedServer(script) as server, pytest.raises(TooManyRequests) as caught:
        Client(server.url, retries=0).health()

    assert caught.value.retry_after == asked


@pytest.mark.parametrize("header", ["soon", "²", ""])
def test_an_unreadable_retry_after_is_none(header: str) -> None:
    script = [Answer(429, problem(429, "Too Many Requests"), {"Retry-After": header})]
    with ScriptedServer(script) as server, pytest.raises(TooManyRequests) as caught:
        Client(server.url, retries=0).health()

    assert caught.value.retry_after is None


@pytest.mark.parametrize("status", [400, 404, 422, 500])
def test_other_errors_are_not_retried(status: int, waits: list[float]) -> None:
    script = [Answer(status, problem(status, "Refused"))]
    with (
        ScriptedServer(script) as server,
        pytest.raises(initlab_client.APIError) as caught,
    ):
        Client(server.url).health()

    assert len(server.received) == 1
    assert waits == []
    assert caught.value.status == status


def test_retries_zero_sends_once(waits: list[float]) -> None:
    script = [Answer(503, problem(503, "Service Unavailable"), {"Retry-After": "1"})]
    with ScriptedServer(script) as server, pytest.raises(ServerError):
        Client(server.url, retries=0).health()

    assert len(server.received) == 1
    assert waits == []


# -- no service ----------------------------------------------------------------------


def test_a_stopped_service_is_a_connection_error_after_the_retries(
    closed_port: int, waits: list[float], attempts: list[str]
) -> None:
    client = Client(f"http://127.0.0.1:{closed_port}", retries=2, backoff=0.25)

    with pytest.raises(initlab_client.ConnectionError) as caught:
        client.health()

    # Three attempts, each refused; the waits between them are 0 and 0.5 s:
    # all the time the client spends beyond the failed connects themselves.
    assert attempts == ["NewConnectionError"] * 3
    assert waits == [0.5]
    message = str(caught.value)
    assert f"http://127.0.0.1:{closed_port}/healthz" in message
    assert "after 3 attempts" in message
    assert "Connection refused" in message


def test_the_default_policy_gives_up_within_three_seconds_of_waits(
    closed_port: int, waits: list[float], attempts: list[str]
) -> None:
    with pytest.raises(initlab_client.ConnectionError, match="after 4 attempts"):
        Client(f"http://127.0.0.1:{closed_port}").health()

    assert len(attempts) == initlab_client.DEFAULT_RETRIES + 1 == 4
    assert waits == [1.0, 2.0]


def test_a_read_timeout_is_not_retried(attempts: list[str]) -> None:
    # The service received the request and may still be computing: sending
    # it again would double the work, so the timeout surfaces at once.
    accepted = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(5)
        port = listener.getsockname()[1]

        def accept() -> None:
            connection, _ = listener.accept()
            accepted.append(connection)

        thread = threading.Thread(target=accept)
        thread.start()
        with pytest.raises(initlab_client.Timeout) as caught:
            Client(f"http://127.0.0.1:{port}", timeout=(1, 0.2)).health()
        thread.join()
        for connection in accepted:
            connection.close()

    assert len(accepted) == 1
    assert attempts == ["ReadTimeoutError"]
    assert not isinstance(caught.value, initlab_client.ConnectTimeout)
    assert "read timeout of 0.2 s after 1 attempt" in str(caught.value)


# -- connections dropped before the answer ----------------------------------------


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_connection_dropped_after_sending_is_retried(
    reset: bool, waits: list[float], attempts: list[str]
) -> None:
    # A worker killed mid-request: the service got the request, and the
    # connection closes before any answer. Every endpoint is pure, so the
    # POST goes again, unchanged.
    spec = {"dims": {}, "layers": [{"kind": "linear", "in": 4, "out": 2}]}
    with DroppingServer(drops=2, reset=reset) as server, Client(server.url) as client:
        response = client._send("POST", "/v1/recommendations", json={"spec": spec})

    assert response.json() == {"status": "ok"}
    assert len(server.received) == 3
    assert attempts == ["ProtocolError", "ProtocolError"]
    bodies = {received.partition(b"\r\n\r\n")[2] for received in server.received}
    assert bodies == {json.dumps({"spec": spec}, separators=(",", ":")).encode()}
    assert waits == [1.0]


def test_a_connection_always_dropped_names_the_attempts_and_the_drop(
    waits: list[float],
) -> None:
    with (
        DroppingServer(drops=100) as server,
        pytest.raises(initlab_client.ConnectionDropped) as caught,
    ):
        Client(server.url).health()

    assert len(server.received) == initlab_client.DEFAULT_RETRIES + 1 == 4
    message = str(caught.value)
    assert message.startswith(f"GET {server.url}/healthz: no answer after 4 attempts")
    assert "the connection was dropped after the request was sent" in message
    assert "restarted a worker" in message
    assert "check its logs" in message
    # The service is running: no advice to start it or to check the URL.
    assert "is it running" not in message
    assert isinstance(caught.value, initlab_client.ConnectionError)


def test_without_retries_a_dropped_connection_is_one_attempt() -> None:
    with (
        DroppingServer(drops=1) as server,
        pytest.raises(initlab_client.ConnectionDropped, match="after 1 attempt:"),
    ):
        Client(server.url, retries=0).health()

    assert len(server.received) == 1


def test_a_connect_timeout_is_retried_and_says_nothing_was_sent(
    monkeypatch: pytest.MonkeyPatch, waits: list[float], attempts: list[str]
) -> None:
    # A connection that never opens (a firewall dropping the SYN), made
    # without the network: urllib3 reads a timeout of its connect as such.
    connects: list[tuple] = []

    def never_connects(address: tuple, *args: object, **kwargs: object) -> None:
        connects.append(address)
        raise TimeoutError("timed out")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", never_connects)
    client = Client("http://127.0.0.1:9", timeout=(0.5, 5), retries=2)

    with pytest.raises(initlab_client.ConnectTimeout) as caught:
        client.health()

    assert len(connects) == 3
    assert attempts == ["ConnectTimeoutError"] * 3
    message = str(caught.value)
    assert "the connection never opened within the connect timeout of 0.5 s" in message
    assert "after 3 attempts; nothing was sent" in message
    assert isinstance(caught.value, initlab_client.Timeout)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"retries": -1}, ValueError, "retries must be >= 0"),
        ({"retries": 2.5}, TypeError, "retries must be an integer"),
        ({"retries": True}, TypeError, "retries must be an integer"),
        ({"backoff": -0.5}, ValueError, "backoff must be a finite number"),
        ({"backoff": float("nan")}, ValueError, "backoff must be a finite number"),
        ({"backoff": "1"}, TypeError, "backoff must be a number"),
    ],
)
def test_retry_options_are_checked(options: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Client("http://127.0.0.1:8000", **options)


def test_a_session_passed_in_keeps_its_own_adapters() -> None:
    session = requests.Session()
    adapter = session.get_adapter("http://127.0.0.1:8000/")
    client = Client("http://127.0.0.1:8000", session=session)

    assert client.session.get_adapter("http://127.0.0.1:8000/") is adapter
    assert adapter.max_retries.total == 0


# -- API key ---------------------------------------------------------------------


def test_the_api_key_is_sent_as_a_bearer_token(monkeypatch) -> None:
    monkeypatch.delenv("INITLAB_API_KEY", raising=False)
    with ScriptedServer([HEALTHY]) as server:
        Client(server.url, api_key="lab-key-1").health()
        Client(server.url).health()

    first, second = (received.headers for received in server.received)
    assert first["Authorization"] == "Bearer lab-key-1"
    assert "Authorization" not in second


def test_the_api_key_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("INITLAB_API_KEY", "from-env\n")
    with ScriptedServer([HEALTHY]) as server:
        Client(server.url).health()
        Client(server.url, api_key="argument").health()

    keys = [received.headers["Authorization"] for received in server.received]
    assert keys == ["Bearer from-env", "Bearer argument"]


def test_a_key_that_is_no_header_value_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError, match="api_key must be non-empty") as caught:
        Client("http://127.0.0.1:8000", api_key="half\nkey")

    assert "half" not in str(caught.value)
    with pytest.raises(TypeError, match="api_key must be a string; got bytes"):
        Client("http://127.0.0.1:8000", api_key=b"key")


def test_the_key_stays_out_of_the_repr() -> None:
    client = Client("http://127.0.0.1:8000", api_key="secret-value")

    assert "secret-value" not in repr(client)
    assert "secret-value" not in repr(vars(client))


def test_a_wrong_key_is_unauthorized(waits: list[float]) -> None:
    script = [Answer(401, problem(401, "Unauthorized"))]
    with ScriptedServer(script) as server, pytest.raises(Unauthorized) as caught:
        Client(server.url, api_key="wrong").health()

    assert len(server.received) == 1
    assert caught.value.status == 401
    assert not isinstance(caught.value, ValidationError)


# -- a service busy with computations ---------------------------------------------

# The problem the service answers when a worker runs and queues as many
# multi-second computations as it takes (service/initlab/web/admission.py).
BUSY = {
    "type": "https://initlab.dev/problems/busy",
    "title": "Service busy",
    "status": 503,
    "detail": (
        "The service is busy: 2 computations are running in this worker and 2"
        " are waiting, as many as it takes. Send the request again in 2 s or"
        " later (the Python client does so itself), or ask for less work."
    ),
    "instance": "req-busy",
    "errors": [],
}


def test_a_service_busy_after_the_retries_says_so_with_the_attempts(
    waits: list[float],
) -> None:
    script = [Answer(503, BUSY, {"Retry-After": "1"})]
    with ScriptedServer(script) as server, pytest.raises(ServiceBusy) as caught:
        Client(server.url, retries=2).statistics({"dims": {}, "layers": []})

    assert len(server.received) == 3
    assert waits == [1, 1]
    error = caught.value
    assert (error.status, error.retry_after, error.attempts) == (503, 1.0, 3)
    assert error.request_id == "req-busy"
    # Code that handles server errors keeps handling this one.
    assert isinstance(error, ServerError)
    assert str(error) == (
        "the service is busy after 3 attempts: 503 Service busy: "
        + BUSY["detail"]
        + " [request req-busy]; try again later, or give the client more retries"
    )


def test_a_busy_service_then_a_free_one_answers(waits: list[float]) -> None:
    script = [Answer(503, BUSY, {"Retry-After": "1"}), HEALTHY]
    with ScriptedServer(script) as server, Client(server.url) as client:
        assert client.health() == {"status": "ok"}

    assert len(server.received) == 2
    assert waits == [1]


def test_without_retries_a_busy_service_is_one_attempt(waits: list[float]) -> None:
    script = [Answer(503, BUSY, {"Retry-After": "0"})]
    with ScriptedServer(script) as server, pytest.raises(ServiceBusy) as caught:
        Client(server.url, retries=0).health()

    assert len(server.received) == 1
    assert waits == []
    assert (caught.value.retry_after, caught.value.attempts) == (0.0, 1)
    assert str(caught.value).startswith("the service is busy after 1 attempt: 503")


def test_another_503_stays_a_plain_server_error(waits: list[float]) -> None:
    # A proxy's 503 (no busy problem) may be a service that is down for good:
    # nothing says that waiting helps.
    script = [Answer(503, problem(503, "Service Unavailable"))]
    with ScriptedServer(script) as server, pytest.raises(ServerError) as caught:
        Client(server.url, retries=1).health()

    assert len(server.received) == 2
    assert type(caught.value) is ServerError
    assert str(caught.value).startswith("503 Service Unavailable")
