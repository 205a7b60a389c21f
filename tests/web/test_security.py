"""Optional API keys and CORS for configured origins."""

from __future__ import annotations

import logging

import pytest

from initlab.web import security
from initlab.web.app import create_app
from initlab.web.config import Config, ConfigError

from .conftest import ContractClient

PROBLEMS = "https://initlab.dev/problems/"
KEYS = ("first-key-0123456789abcdef", "second-key-0123456789abcdef")
ORIGIN = "https://app.example.com"
OTHER_ORIGIN = "https://evil.example.net"
MNIST_SPEC = {
    "dims": {},
    "layers": [
        {"kind": "linear", "name": "fc", "in": 784, "out": 256, "activation": "relu"}
    ],
}
PUBLIC_GETS = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.yaml",
    "/docs",
    "/docs/assets/swagger-ui.css",
]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keyed(make_api) -> ContractClient:
    """A contract-checked client of an app with API keys on."""
    return make_api(Config(api_keys=KEYS))


def cors_headers(response) -> list[str]:
    return [name for name, _ in response.headers.items() if name.startswith("Access-")]


def unauthorized_problem(response) -> dict:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == PROBLEMS + "unauthorized"
    assert body["status"] == 401
    assert body["instance"] == response.headers["X-Request-ID"]
    return body


# --- API keys --------------------------------------------------------------------


def test_without_keys_no_authorization_is_needed(api: ContractClient) -> None:
    response = api.post("/v1/recommendations", json_body={"spec": MNIST_SPEC})

    assert response.status_code == 200


def test_a_request_without_a_key_is_a_401_saying_how_to_send_one(
    keyed: ContractClient,
) -> None:
    response = keyed.post("/v1/recommendations", json_body={"spec": MNIST_SPEC})

    body = unauthorized_problem(response)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="initlab"'
    assert "Authorization: Bearer <key>" in body["detail"]
    assert "INITLAB_API_KEY" in body["detail"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer wrong-key-0123456789abcdef",
        f"Bearer {KEYS[0]}x",
        f"Bearer {KEYS[0][:-1]}",
        f"Basic {KEYS[0]}",
        KEYS[0],
        "Bearer ",
    ],
)
def test_a_wrong_key_or_scheme_is_a_401(keyed: ContractClient, authorization) -> None:
    response = keyed.get(
        "/v1/schemes", headers={"Authorization": authorization}, conforms=None
    )

    unauthorized_problem(response)
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="initlab"')


def test_a_key_sent_but_not_accepted_is_an_invalid_token(keyed) -> None:
    response = keyed.get("/v1/schemes", headers=bearer("not-a-key-0123456789abcdef"))

    body = unauthorized_problem(response)
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="initlab", error="invalid_token"'
    )
    assert "not one this service accepts" in body["detail"]


@pytest.mark.parametrize("key", KEYS)
def test_every_configured_key_is_accepted(keyed: ContractClient, key: str) -> None:
    recommended = keyed.post(
        "/v1/recommendations",
        json_body={"spec": MNIST_SPEC, "scheme": "kaiming_normal"},
        headers=bearer(key),
    )
    lowercase_scheme = keyed.get(
        "/v1/schemes", headers={"Authorization": f"bearer {key}"}
    )

    assert recommended.status_code == 200
    weight = recommended.get_json()["parameters"][0]
    assert weight["name"] == "fc.weight"
    # He et al. 2015: std = √(2 / fan_in) for a ReLU layer.
    assert weight["std"] == pytest.approx((2 / 784) ** 0.5, rel=1e-12)
    assert lowercase_scheme.status_code == 200


@pytest.mark.parametrize("path", PUBLIC_GETS)
def test_the_operations_and_pages_need_no_key(path: str) -> None:
    app = create_app(Config(api_keys=KEYS))

    assert app.test_client().get(path).status_code == 200


def test_unknown_paths_need_a_key_too() -> None:
    client = create_app(Config(api_keys=KEYS)).test_client()

    # Without a key, nothing tells which paths exist.
    assert client.get("/v1/secret").status_code == 401
    assert client.get("/v1/secret", headers=bearer(KEYS[0])).status_code == 404


def test_a_preflight_needs_no_key() -> None:
    app = create_app(Config(api_keys=KEYS, cors_origins=(ORIGIN,)))

    response = app.test_client().options(
        "/v1/recommendations",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_the_key_is_compared_with_every_key_without_stopping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compared = []

    def counting_compare(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return a == b

    monkeypatch.setattr(security.hmac, "compare_digest", counting_compare)
    keys = security.ApiKeys(["a" * 16, "b" * 16, "c" * 16])

    assert keys.accepts("a" * 16) is True
    assert len(compared) == 3  # the first key matched; the other two still ran
    assert keys.accepts("z" * 16) is False
    assert len(compared) == 6
    # Digests, all 32 bytes: the comparison's time does not depend on lengths.
    assert {len(side) for pair in compared for side in pair} == {32}


def test_keys_are_never_logged_nor_shown(
    keyed: ContractClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        keyed.get("/v1/schemes", headers=bearer(KEYS[0]))
        keyed.get("/v1/schemes", headers=bearer(KEYS[1] + "x"), conforms=None)

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged  # the requests were logged...
    assert KEYS[0] not in logged and KEYS[1] not in logged  # ...without their keys
    assert KEYS[0] not in repr(Config(api_keys=KEYS))
    assert KEYS[0] not in repr(security.ApiKeys(KEYS))


def test_api_keys_are_read_from_the_environment() -> None:
    config = Config.from_environ({"INITLAB_API_KEYS": f" {KEYS[0]} ,, {KEYS[1]},"})

    assert config.api_keys == KEYS
    assert Config.from_environ({}).api_keys == ()
    assert Config.from_environ({"INITLAB_API_KEYS": " , "}).api_keys == ()


@pytest.mark.parametrize(
    ("raw", "fault"),
    [
        ("short-key", "it is 9 characters long; use at least 16"),
        (f"{KEYS[0]},has space in it 0123", "it may only use A-Z a-z 0-9"),
        ("ключ-0123456789abcdef", "it may only use A-Z a-z 0-9"),
    ],
)
def test_an_unusable_key_stops_the_start_without_quoting_it(raw, fault) -> None:
    with pytest.raises(ConfigError) as refused:
        Config.from_environ({"INITLAB_API_KEYS": raw})

    message = str(refused.value)
    position = len(raw.split(","))
    assert message.startswith(
        f"INITLAB_API_KEYS: key {position} of {position} is not usable: {fault}"
    )
    assert message.endswith(
        "Fix it, or unset INITLAB_API_KEYS to turn authentication off."
    )
    for key in raw.split(","):
        assert key not in message


# --- CORS --------------------------------------------------------------------------


@pytest.fixture
def cors(make_api) -> ContractClient:
    return make_api(Config(cors_origins=(ORIGIN, "http://localhost:5173")))


def test_an_allowed_origin_is_echoed_with_the_request_id_exposed(cors) -> None:
    response = cors.post(
        "/v1/recommendations",
        json_body={"spec": MNIST_SPEC},
        headers={"Origin": ORIGIN},
    )

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = response.headers["Access-Control-Expose-Headers"].split(", ")
    assert sorted(exposed) == ["Retry-After", "X-Cache", "X-Request-ID"]
    assert response.headers.getlist("Vary") == ["Origin"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_another_origin_gets_no_cors_header(cors) -> None:
    for origin in (OTHER_ORIGIN, ORIGIN + ".evil.net", "http://app.example.com"):
        response = cors.get("/v1/schemes", headers={"Origin": origin})

        assert response.status_code == 200
        assert cors_headers(response) == []
        # A shared cache must not replay this answer to an allowed origin.
        assert "Origin" in response.headers["Vary"]


def test_a_request_without_origin_gets_no_cors_header(cors) -> None:
    response = cors.get("/v1/schemes")

    assert cors_headers(response) == []


def test_a_preflight_is_answered_with_the_allowed_methods_headers_and_max_age() -> None:
    app = create_app(Config(cors_origins=(ORIGIN,)))

    response = app.test_client().options(
        "/v1/recommendations",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": (
                "Content-Type, Authorization, X-Request-ID"
            ),
        },
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST"
    allowed = response.headers["Access-Control-Allow-Headers"].lower().split(", ")
    assert sorted(allowed) == ["authorization", "content-type", "x-request-id"]
    assert response.headers["Access-Control-Max-Age"] == "3600"


def test_options_without_cors_is_answered_by_allow_alone(api) -> None:
    response = api.client.options("/v1/recommendations")

    assert response.status_code == 204
    assert sorted(response.headers["Allow"].split(", ")) == ["OPTIONS", "POST"]
    assert "Content-Type" not in response.headers
    assert response.get_data() == b""


def test_a_preflight_from_another_origin_gets_nothing() -> None:
    app = create_app(Config(cors_origins=(ORIGIN,)))

    response = app.test_client().options(
        "/v1/recommendations",
        headers={"Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "POST"},
    )

    assert cors_headers(response) == []


def test_without_configured_origins_there_are_no_cors_headers(api) -> None:
    response = api.get("/v1/schemes", headers={"Origin": ORIGIN})

    assert cors_headers(response) == []


def test_an_ipv6_origin_is_matched_exactly_not_as_a_pattern() -> None:
    app = create_app(Config(cors_origins=("http://[::1]:8080",)))
    client = app.test_client()

    exact = client.get("/v1/schemes", headers={"Origin": "http://[::1]:8080"})
    near = client.get("/v1/schemes", headers={"Origin": "http://:8080"})

    assert exact.headers["Access-Control-Allow-Origin"] == "http://[::1]:8080"
    assert "Access-Control-Allow-Origin" not in near.headers


def test_origins_are_read_from_the_environment() -> None:
    config = Config.from_environ(
        {"INITLAB_CORS_ORIGINS": f" {ORIGIN}, http://localhost:5173 ,,{ORIGIN}"}
    )

    assert config.cors_origins == (ORIGIN, "http://localhost:5173")
    assert Config.from_environ({}).cors_origins == ()


@pytest.mark.parametrize(
    ("origin", "fault"),
    [
        ("*", "'*' is not allowed; list each origin in full"),
        ("app.example.com", "it must start with http:// or https://"),
        (
            "https://app.example.com/",
            "an origin has no path, query or fragment;"
            " write it as https://app.example.com",
        ),
        (
            "https://App.Example.com",
            "browsers send origins in lower case; write it as https://app.example.com",
        ),
        ("https://app.example.com:99999", "its port is not a number from 0 to 65535"),
    ],
)
def test_a_bad_origin_stops_the_start_naming_it(origin: str, fault: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Config.from_environ({"INITLAB_CORS_ORIGINS": f"http://localhost:5173,{origin}"})

    assert str(refused.value) == (
        "INITLAB_CORS_ORIGINS must list exact origins (scheme://host[:port],"
        f" comma-separated); item 2, {origin!r}, is not one: {fault}. Fix it, or"
        " unset INITLAB_CORS_ORIGINS to send no CORS headers."
    )
