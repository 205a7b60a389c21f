"""The response cache: same request, same bytes, without computing them again."""

from __future__ import annotations

import hashlib
import json

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from initlab.web import routes
from initlab.web.app import create_app
from initlab.web.cache import ResponseCache
from initlab.web.config import Config, ConfigError

from .conftest import ContractClient, load_example

MNIST_SPEC = {
    "dims": {},
    "layers": [
        {"kind": "linear", "name": "fc", "in": 784, "out": 256, "activation": "relu"}
    ],
}
ORIGIN = "https://app.example.com"
ENOUGH = 16 * 1024 * 1024
DIGEST_BYTES = 32


def cached_app(max_bytes: int = ENOUGH, **settings) -> Flask:
    app = create_app(Config(response_cache_bytes=max_bytes, **settings))
    app.testing = True
    return app


def metric(app: Flask, name: str, **labels: str) -> float:
    exposition = app.test_client().get("/metrics").text
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def entry_size(path: str, query: bytes, body: bytes, method: str = "GET") -> int:
    """What an answer costs the cache: its body and Content-Type, and its key
    (method, path, query, the request's Content-Type, a SHA-256 digest)."""
    return (
        len(body)
        + len("application/json")
        + len(method)
        + len(path)
        + len(query)
        + DIGEST_BYTES
    )


def test_a_repeated_request_is_a_hit_with_the_same_bytes(make_api) -> None:
    api: ContractClient = make_api(Config(response_cache_bytes=ENOUGH))
    body = {"spec": load_example("gpt2-small.spec.json")}

    first = api.post("/v1/recommendations", json_body=body)
    second = api.post("/v1/recommendations", json_body=body)

    assert first.status_code == second.status_code == 200
    assert first.headers["X-Cache"] == "miss"
    assert second.headers["X-Cache"] == "hit"
    assert second.get_data() == first.get_data()
    assert second.headers["Content-Type"] == first.headers["Content-Type"]
    assert second.headers["X-Request-ID"] != first.headers["X-Request-ID"]


def test_a_hit_computes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    app = cached_app()
    client = app.test_client()
    first = client.post("/v1/recommendations", json={"spec": MNIST_SPEC})
    monkeypatch.setattr(routes, "recommend", lambda *a, **k: pytest.fail("computed"))

    second = client.post("/v1/recommendations", json={"spec": MNIST_SPEC})

    assert second.status_code == 200
    assert second.get_data() == first.get_data()
    route = "/v1/recommendations"
    assert metric(app, "initlab_compute_seconds_count", route=route) == 1
    assert (
        metric(
            app, "initlab_http_requests_total", method="POST", route=route, status="200"
        )
        == 2
    )


def test_a_changed_body_query_or_content_type_is_a_miss() -> None:
    client = cached_app().test_client()
    wider = {"dims": {}, "layers": [{"kind": "linear", "in": 784, "out": 512}]}

    first = client.post("/v1/recommendations", json={"spec": MNIST_SPEC})
    other_body = client.post("/v1/recommendations", json={"spec": wider})
    same_json_other_bytes = client.post(
        "/v1/recommendations",
        data=json.dumps({"spec": MNIST_SPEC}, indent=1),
        content_type="application/json",
    )
    other_type = client.post(
        "/v1/recommendations",
        data=json.dumps({"spec": MNIST_SPEC}),
        content_type="application/json; charset=utf-8",
    )
    relu = client.get("/v1/activations", query_string={"name": "relu"})
    tanh = client.get("/v1/activations", query_string={"name": "tanh"})

    assert [
        response.headers["X-Cache"]
        for response in (
            first,
            other_body,
            same_json_other_bytes,
            other_type,
            relu,
            tanh,
        )
    ] == ["miss"] * 6
    assert other_body.get_data() != first.get_data()
    # The same request read another way: the same answer, kept once more.
    assert same_json_other_bytes.get_data() == other_type.get_data() == first.get_data()
    assert relu.get_json() != tanh.get_json()


def test_errors_are_never_cached() -> None:
    app = cached_app()
    client = app.test_client()
    broken = {"spec": {"dims": {}, "layers": [{"kind": "lineer"}]}}

    answers = [client.post("/v1/recommendations", json=broken) for _ in range(2)]
    answers += [client.get("/v1/activations?name=nope") for _ in range(2)]

    assert [answer.status_code for answer in answers] == [422, 422, 422, 422]
    # Never candidates for the cache: no X-Cache header, no lookup counted.
    assert [answer.headers.get("X-Cache") for answer in answers] == [None] * 4
    assert len(app.extensions["initlab.response_cache"]) == 0
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "initlab_response_cache_lookups_total{" not in metrics
    # A problem quotes its own request id, so no two are the same bytes.
    assert answers[0].get_json()["instance"] != answers[1].get_json()["instance"]


def test_only_v1_computations_are_cached() -> None:
    app = cached_app()
    client = app.test_client()

    for path in ("/healthz", "/readyz", "/openapi.yaml", "/metrics", "/docs"):
        response = client.get(path)
        assert response.status_code == 200
        assert "X-Cache" not in response.headers
    assert len(app.extensions["initlab.response_cache"]) == 0


def test_the_byte_bound_evicts_the_least_recently_used() -> None:
    names = ("relu", "tanh", "gelu")
    plain = create_app(Config()).test_client()
    sizes = {
        name: entry_size(
            "/v1/activations",
            f"name={name}".encode(),
            plain.get(f"/v1/activations?name={name}").get_data(),
        )
        for name in names
    }
    # Room for relu and tanh together, not for a third.
    bound = sizes["relu"] + sizes["tanh"]
    app = cached_app(bound)
    client = app.test_client()
    cache = app.extensions["initlab.response_cache"]

    def fetch(name: str) -> str:
        return client.get(f"/v1/activations?name={name}").headers["X-Cache"]

    assert [fetch("relu"), fetch("tanh")] == ["miss", "miss"]
    assert cache.size == sizes["relu"] + sizes["tanh"] == bound
    assert fetch("relu") == "hit"  # relu is now the most recently used
    assert fetch("gelu") == "miss"  # evicts tanh, the least recently used
    assert cache.size == sizes["relu"] + sizes["gelu"]
    assert [fetch("relu"), fetch("gelu"), fetch("tanh")] == ["hit", "hit", "miss"]
    assert cache.size <= bound
    assert metric(app, "initlab_response_cache_bytes") == cache.size


def test_an_answer_larger_than_the_cache_is_not_kept() -> None:
    app = cached_app(1000)
    client = app.test_client()

    answers = [client.get("/v1/schemes") for _ in range(2)]

    assert len(answers[0].get_data()) > 1000
    assert [answer.headers["X-Cache"] for answer in answers] == ["miss", "miss"]
    assert len(app.extensions["initlab.response_cache"]) == 0


def test_zero_bytes_turns_the_cache_off(monkeypatch: pytest.MonkeyPatch) -> None:
    app = cached_app(0)
    client = app.test_client()
    calls = []
    real_recommend = routes.recommend
    monkeypatch.setattr(
        routes, "recommend", lambda *a, **k: calls.append(1) or real_recommend(*a, **k)
    )

    answers = [
        client.post("/v1/recommendations", json={"spec": MNIST_SPEC}) for _ in range(2)
    ]

    assert [answer.status_code for answer in answers] == [200, 200]
    assert ["X-Cache" in answer.headers for answer in answers] == [False, False]
    assert len(calls) == 2
    assert metric(app, "initlab_response_cache_lookups_total", result="miss") == 0


def test_hits_and_misses_are_counted() -> None:
    app = cached_app()
    client = app.test_client()

    for name in ("relu", "relu", "relu", "tanh"):
        client.get(f"/v1/activations?name={name}")

    assert metric(app, "initlab_response_cache_lookups_total", result="hit") == 2
    assert metric(app, "initlab_response_cache_lookups_total", result="miss") == 2


def test_a_hit_gets_the_cors_headers_of_its_own_request() -> None:
    client = cached_app(cors_origins=(ORIGIN, "http://localhost:5173")).test_client()

    client.get("/v1/schemes", headers={"Origin": ORIGIN})
    other_allowed = client.get(
        "/v1/schemes", headers={"Origin": "http://localhost:5173"}
    )
    refused = client.get("/v1/schemes", headers={"Origin": "https://evil.example.net"})

    assert other_allowed.headers["X-Cache"] == refused.headers["X-Cache"] == "hit"
    assert other_allowed.headers["Access-Control-Allow-Origin"] == (
        "http://localhost:5173"
    )
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_a_cached_answer_is_not_served_without_an_api_key() -> None:
    key = "cache-test-key-0123456789"
    client = cached_app(api_keys=(key,)).test_client()

    kept = client.get("/v1/schemes", headers={"Authorization": f"Bearer {key}"})
    refused = client.get("/v1/schemes")

    assert kept.status_code == 200
    assert refused.status_code == 401
    assert "X-Cache" not in refused.headers


def test_the_key_holds_the_body_digest_and_request_content_type() -> None:
    app = cached_app()
    body = json.dumps({"spec": MNIST_SPEC}).encode()

    with app.test_request_context(
        "/v1/recommendations?x=1",
        method="POST",
        data=body,
        content_type="application/json",
    ) as context:
        key = app.extensions["initlab.response_cache"].key_for(context.request)

    assert key == (
        "POST",
        "/v1/recommendations",
        b"x=1",
        "application/json",
        hashlib.sha256(body).digest(),
    )


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        ResponseCache(-1)


def test_the_size_is_read_from_the_environment() -> None:
    def read(raw: str) -> int:
        return Config.from_environ(
            {"INITLAB_RESPONSE_CACHE_BYTES": raw}
        ).response_cache_bytes

    assert Config.from_environ({}).response_cache_bytes == 64 * 1024 * 1024
    assert read("") == 64 * 1024 * 1024
    assert read("0") == 0
    assert read(" 1024 ") == 1024


@pytest.mark.parametrize("raw", ["-1", "lots", "1.5", "64MiB"])
def test_a_bad_size_stops_the_start_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Config.from_environ({"INITLAB_RESPONSE_CACHE_BYTES": raw})

    assert str(refused.value) == (
        "INITLAB_RESPONSE_CACHE_BYTES must be a non-negative integer (0 turns it"
        f" off); got {raw!r}. Fix the value or unset INITLAB_RESPONSE_CACHE_BYTES to"
        " use the default 67108864."
    )
