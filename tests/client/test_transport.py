"""How the client talks HTTP, against canned answers and dead sockets.

A stub transport adapter mounted on the client's session answers requests
without a server, so that every error status, a proxy's HTML page and a body
that is not JSON can be produced on demand.
"""

from __future__ import annotations

import json
import platform
import re
import socket
from collections.abc import Iterator

import pytest
import requests

import initlab_client
from initlab_client import (
    APIError,
    BadRequest,
    Client,
    FieldError,
    InitlabError,
    InvalidResponse,
    NotFound,
    PayloadTooLarge,
    ServerError,
    ValidationError,
)

from .recording import RecordingAdapter
from .recording import recording_client as record

STUB_URL = "http://initlab.test"  # recording.BASE_URL


def stub_client(status: int, body, headers=None) -> tuple[Client, RecordingAdapter]:
    return record(body, status, headers)


def problem(status: int, title: str, errors=()) -> dict:
    return {
        "type": f"https://initlab.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": f"{title}; fix the request.",
        "instance": "req-42",
        "errors": [{"pointer": p, "message": m} for p, m in errors],
    }


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel does) but never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- base URL ------------------------------------------------------------------


def test_base_url_comes_from_initlab_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INITLAB_URL", "https://models.example.org/initlab/")

    assert Client().base_url == "https://models.example.org/initlab"


def test_the_argument_wins_over_initlab_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INITLAB_URL", "https://models.example.org")

    assert Client("http://10.1.2.3:9000").base_url == "http://10.1.2.3:9000"


def test_base_url_defaults_to_the_local_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("INITLAB_URL", raising=False)

    assert Client().base_url == "http://127.0.0.1:8000"


def test_initlab_url_is_where_requests_go(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INITLAB_URL", STUB_URL + "/prefix")
    adapter = RecordingAdapter({"schemes": []})
    session = requests.Session()
    session.mount(STUB_URL, adapter)

    Client(session=session).schemes()

    assert adapter.requests[0].url == STUB_URL + "/prefix/v1/schemes"


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://host", "http://"])
def test_a_base_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"base_url must be an http\(s\) URL"):
        Client(url)


@pytest.mark.parametrize("url", ["", "   ", "\n"])
def test_an_empty_base_url_is_refused_not_read_as_the_default(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        Client(url)

    assert str(caught.value) == (
        "base_url must be the service's URL, such as 'http://127.0.0.1:8000'; got"
        " an empty string (leave it out, or pass None, to use INITLAB_URL or the"
        " default)"
    )


def test_spaces_around_a_base_url_are_dropped() -> None:
    assert Client("  http://10.1.2.3:9000/ \n").base_url == "http://10.1.2.3:9000"


@pytest.mark.parametrize(
    ("url", "fixed"),
    [
        ("http://10.1.2.3:9000/?x=1", "http://10.1.2.3:9000/"),
        ("https://example.org/initlab#top", "https://example.org/initlab"),
        ("http://10.1.2.3:9000/?", "http://10.1.2.3:9000/"),
    ],
)
def test_a_base_url_with_a_query_or_fragment_is_refused(url: str, fixed: str) -> None:
    with pytest.raises(ValueError) as caught:
        Client(url)

    message = str(caught.value)
    assert message.startswith("base_url must not have a query or a fragment")
    assert message.endswith(f"got {url!r}: give {fixed!r}")


def test_a_base_url_without_a_scheme_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError) as caught:
        Client("127.0.0.1:8000")

    assert str(caught.value) == (
        "base_url must be an http(s) URL such as 'http://127.0.0.1:8000', got"
        " '127.0.0.1:8000'; did you mean 'http://127.0.0.1:8000'?"
    )


def test_a_blank_initlab_url_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INITLAB_URL", "  ")

    assert Client().base_url == "http://127.0.0.1:8000"


def test_a_bad_initlab_url_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INITLAB_URL", "localhost:8000")

    with pytest.raises(ValueError, match="INITLAB_URL must be an http"):
        Client()


PORT_RULE = (
    "a port is a number from 1 to 65535 (or none, for the scheme's default), as"
    " in 'http://127.0.0.1:8000'"
)


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("http://127.0.0.1:99999", "99999"),
        ("http://127.0.0.1:abc", "abc"),
        # Port 0 would connect to the scheme's default port, 80, unannounced.
        ("http://127.0.0.1:0", "0"),
        ("http://127.0.0.1:/", ""),
        ("http://127.0.0.1:+80", "+80"),
        ("http://[::1]:65536", "65536"),
    ],
)
def test_a_base_url_with_a_port_that_is_no_port_is_refused_at_once(
    url: str, port: str
) -> None:
    with pytest.raises(ValueError) as caught:
        Client(url)

    assert str(caught.value) == (
        f"base_url has the port {port!r}; {PORT_RULE}; got {url!r}"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1",
        "http://127.0.0.1:65535",
        "http://[::1]:8000",
        "http://[::1]",
        "https://example.org",
    ],
)
def test_ports_from_1_to_65535_and_none_are_taken(url: str) -> None:
    assert Client(url).base_url == url


def test_a_base_url_with_a_password_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError) as caught:
        Client("http://ada:s3cret-pw@10.1.2.3:8000/initlab")

    assert str(caught.value) == (
        "base_url must not carry a user name and password (got"
        " 'http://ada:***@10.1.2.3:8000/initlab'): the service takes an API key"
        " instead; give 'http://10.1.2.3:8000/initlab' and the key as api_key or"
        " INITLAB_API_KEY"
    )


@pytest.mark.parametrize(
    "url",
    [
        "ftp://ada:s3cret-pw@host",
        "ada:s3cret-pw@host:8000",
        "http://ada:s3cret-pw@[::1",
        "http://ada:s3cret-pw@host:8000?x=1",
    ],
)
def test_no_message_about_a_base_url_shows_its_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        Client(url)

    assert "ada:***@" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_a_user_name_alone_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INITLAB_URL", "http://ada@host:8000")

    with pytest.raises(ValueError) as caught:
        Client()

    assert str(caught.value).startswith(
        "INITLAB_URL must not carry a user name (got 'http://ada@host:8000'): the"
        " service takes an API key instead; give 'http://host:8000'"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://:8000", "base_url must name a host, as in 'http://127.0.0.1:8000';"),
        ("http://[::1", "base_url must be an http(s) URL such as 'http://127.0.0"),
    ],
)
def test_a_base_url_without_a_readable_host_is_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Client(url)

    assert str(caught.value).startswith(message)
    assert repr(url) in str(caught.value)


# -- what is sent ----------------------------------------------------------------


def test_user_agent_names_client_requests_and_python() -> None:
    client, adapter = stub_client(200, {"status": "ok"})

    client.health()

    assert adapter.requests[0].headers["User-Agent"] == (
        f"initlab-client/{initlab_client.__version__}"
        f" requests/{requests.__version__} python/{platform.python_version()}"
    )
    assert re.fullmatch(
        r"initlab-client/\d+\.\d+\.\d+ requests/\S+ python/3\.\d+\.\d+",
        adapter.requests[0].headers["User-Agent"],
    )


def test_recommend_posts_spec_scheme_and_overrides_as_json() -> None:
    client, adapter = stub_client(200, {"not": "read"})
    spec = {"dims": {}, "layers": [{"kind": "linear", "in": 4, "out": 2}]}

    with pytest.raises(InvalidResponse):
        client.recommend(spec, {"name": "lecun_normal"}, {"*.bias": "zeros"})

    sent = adapter.requests[0]
    assert sent.method == "POST"
    assert sent.url == STUB_URL + "/v1/recommendations"
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body) == {
        "spec": spec,
        "scheme": {"name": "lecun_normal"},
        "overrides": {"*.bias": "zeros"},
    }


@pytest.mark.parametrize(
    ("overrides", "got"),
    [
        (["fc1"], "got list ['fc1']"),
        ("fc1=normal", "got str 'fc1=normal'"),
        ([("fc1", "normal")], "got list [('fc1', 'normal')]"),
    ],
)
@pytest.mark.parametrize("method", ["recommend", "statistics"])
def test_overrides_that_are_not_a_mapping_are_refused_naming_them(
    overrides, got: str, method: str
) -> None:
    client, adapter = stub_client(200, {})
    spec = {"dims": {}, "layers": [{"kind": "linear", "in": 4, "out": 2}]}

    with pytest.raises(TypeError) as caught:
        getattr(client, method)(spec, "auto", overrides)

    message = str(caught.value)
    assert message.startswith("overrides must be a mapping of glob patterns")
    assert "{'*.bias': 'constant'," in message
    assert message.endswith(got)
    assert adapter.requests == []


def test_activation_parameters_go_in_the_query() -> None:
    client, adapter = stub_client(200, {"activations": []})

    assert client.activations("leaky_relu", negative_slope=0.2) == []

    assert adapter.requests[0].url == (
        STUB_URL + "/v1/activations?name=leaky_relu&negative_slope=0.2"
    )


def test_a_spec_that_is_not_a_mapping_is_refused_before_sending() -> None:
    client, adapter = stub_client(200, {})

    with pytest.raises(TypeError, match=r"load_spec\(path\)"):
        client.recommend("examples/gpt2-small.spec.json")  # type: ignore[arg-type]

    assert adapter.requests == []


# -- error answers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequest),
        (401, initlab_client.Unauthorized),
        (404, NotFound),
        (405, initlab_client.MethodNotAllowed),
        (413, PayloadTooLarge),
        (415, initlab_client.UnsupportedMediaType),
        (422, ValidationError),
        (429, initlab_client.TooManyRequests),
        (500, ServerError),
        (503, ServerError),
        (418, APIError),
    ],
)
def test_each_status_raises_its_error_class(status: int, error_class) -> None:
    client, _ = stub_client(status, problem(status, "Some problem"))

    with pytest.raises(error_class) as caught:
        client.schemes()

    assert type(caught.value) is error_class
    assert caught.value.status == status


def test_a_problem_is_read_into_the_error() -> None:
    body = problem(422, "Invalid spec", [("/spec/layers/0/in", "must be positive")])
    client, _ = stub_client(422, body, {"Content-Type": "application/problem+json"})

    with pytest.raises(ValidationError) as caught:
        client.recommend({"dims": {}, "layers": []})

    error = caught.value
    assert error.title == "Invalid spec"
    assert error.detail == "Invalid spec; fix the request."
    assert error.type == "https://initlab.dev/problems/invalid-spec"
    assert error.instance == error.request_id == "req-42"
    assert error.errors == [FieldError("/spec/layers/0/in", "must be positive")]
    assert error.response.status_code == 422
    assert str(error) == (
        "422 Invalid spec: Invalid spec; fix the request."
        " (/spec/layers/0/in: must be positive) [request req-42]"
    )


def test_a_proxy_html_page_still_gives_status_and_request_id() -> None:
    client, _ = stub_client(
        502,
        "<html><body>502 Bad Gateway</body></html>",
        {"Content-Type": "text/html", "X-Request-ID": "edge-7"},
    )

    with pytest.raises(ServerError) as caught:
        client.health()

    assert caught.value.status == 502
    assert caught.value.title == "Bad Gateway"
    assert caught.value.request_id == "edge-7"
    assert caught.value.errors == []


def test_a_success_that_is_not_json_is_an_invalid_response() -> None:
    client, _ = stub_client(200, "ok", {"Content-Type": "text/plain"})

    with pytest.raises(InvalidResponse, match="not JSON.*text/plain") as caught:
        client.health()

    assert caught.value.response.text == "ok"


def test_a_success_of_the_wrong_shape_carries_the_response() -> None:
    client, _ = stub_client(200, {"items": []})

    with pytest.raises(InvalidResponse, match="'schemes' list") as caught:
        client.schemes()

    assert caught.value.response.json() == {"items": []}


# -- no answer -------------------------------------------------------------------


def test_nothing_listening_is_a_connection_error(closed_port: int) -> None:
    client = Client(f"http://127.0.0.1:{closed_port}")

    with pytest.raises(initlab_client.ConnectionError, match="INITLAB_URL") as caught:
        client.health()

    assert isinstance(caught.value.__cause__, requests.ConnectionError)


def test_a_silent_server_is_a_timeout(silent_port: int) -> None:
    client = Client(f"http://127.0.0.1:{silent_port}", timeout=(1, 0.2))

    with pytest.raises(initlab_client.Timeout) as caught:
        client.health()

    assert not isinstance(caught.value, initlab_client.ConnectTimeout)
    message = str(caught.value)
    assert "no answer within the read timeout of 0.2 s after 1 attempt" in message
    assert "not sent again" in message


def test_every_client_error_is_an_initlab_error() -> None:
    for error_class in (
        initlab_client.ConnectionError,
        initlab_client.Timeout,
        InvalidResponse,
        APIError,
        ServerError,
        initlab_client.SpecFileError,
    ):
        assert issubclass(error_class, InitlabError)


# -- session ownership -----------------------------------------------------------


class CountingSession(requests.Session):
    closed = 0

    def close(self) -> None:
        self.closed += 1
        super().close()


def test_the_context_manager_closes_the_session_it_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(requests, "Session", CountingSession)

    with Client(STUB_URL) as client:
        assert isinstance(client.session, CountingSession)

    assert client.session.closed == 1


def test_a_session_handed_in_is_left_open() -> None:
    session = CountingSession()

    with Client(STUB_URL, session=session) as client:
        assert client.session is session

    assert session.closed == 0
