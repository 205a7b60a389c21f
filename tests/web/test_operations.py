"""The operations endpoints: /readyz, /metrics and the API reference at /docs."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from initlab.core import recommend as core_recommend
from initlab.core.spec import SpecLimits
from initlab.web import readiness
from initlab.web.app import create_app
from initlab.web.config import Config
from initlab.web.docs import SWAGGER_UI_VERSION

from .conftest import REPO_ROOT, ContractClient

PROBLEMS = "https://initlab.dev/problems/"
MNIST_SPEC = {
    "dims": {},
    "layers": [
        {"kind": "linear", "name": "fc", "in": 784, "out": 256, "activation": "relu"}
    ],
}


def plain_client(config: Config | None = None) -> FlaskClient:
    """A test client outside the contract checks (for pages and their assets)."""
    app = create_app(config or Config())
    app.testing = True
    return app.test_client()


def samples(exposition: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples called ``name`` in a text exposition, by their sorted labels."""
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def request_count(exposition: str, method: str, route: str, status: int) -> float:
    labels = (("method", method), ("route", route), ("status", str(status)))
    return samples(exposition, "initlab_http_requests_total").get(labels, 0.0)


# --- /readyz --------------------------------------------------------------------


def test_readyz_runs_the_self_check_and_passes(api: ContractClient) -> None:
    response = api.get("/readyz")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert [check["name"] for check in body["checks"]] == [
        "kaiming_normal_relu",
        "xavier_uniform",
        "lecun_normal",
        "config",
    ]
    assert all(check["passed"] for check in body["checks"])


def test_the_self_check_compares_with_the_closed_forms() -> None:
    expected = {
        # He et al. 2015: std = √(2 / fan_in) for ReLU.
        "kaiming_normal_relu": ("std", math.sqrt(2 / 784)),
        # Glorot & Bengio 2010: bound = √(6 / (fan_in + fan_out)).
        "xavier_uniform": ("bound", math.sqrt(6 / (784 + 256))),
        # LeCun et al. 1998: std = √(1 / fan_in).
        "lecun_normal": ("std", math.sqrt(1 / 784)),
    }

    forms = {form.name: form for form in readiness.CLOSED_FORMS}

    assert set(forms) == set(expected)
    for name, (quantity, value) in expected.items():
        assert forms[name].quantity == quantity
        assert forms[name].expected == value
    assert readiness.RELATIVE_TOLERANCE == 1e-12


def test_readyz_is_503_naming_a_check_the_core_fails(
    make_api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A core whose Kaiming std is off by one part in a million.
    real_kaiming_std = core_recommend.kaiming_std
    monkeypatch.setattr(
        core_recommend,
        "kaiming_std",
        lambda fan, gain: real_kaiming_std(fan, gain) * (1 + 1e-6),
    )
    api = make_api(Config())

    response = api.get("/readyz")

    assert response.status_code == 503
    body = response.get_json()
    assert body["type"] == PROBLEMS + "not-ready"
    assert body["instance"] == response.headers["X-Request-ID"]
    assert "kaiming_normal_relu" in body["detail"]
    outcome = {check["name"]: check["passed"] for check in body["checks"]}
    assert outcome == {
        "kaiming_normal_relu": False,
        "xavier_uniform": True,
        "lecun_normal": True,
        "config": True,
    }


def test_readyz_is_503_when_a_check_raises(
    make_api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*arguments, **options):
        raise FloatingPointError("overflow in the BLAS")

    monkeypatch.setattr(readiness, "recommend", broken)
    api = make_api(Config())

    body = api.get("/readyz").get_json()

    assert body["status"] == 503
    assert [check["passed"] for check in body["checks"]] == [False, False, False, True]
    assert "FloatingPointError: overflow in the BLAS" in body["checks"][0]["detail"]


def test_readyz_is_503_for_an_unusable_configuration(make_api) -> None:
    config = Config(max_body_bytes=0, spec_limits=SpecLimits(max_layers=-1))

    response = make_api(config).get("/readyz")

    assert response.status_code == 503
    body = response.get_json()
    assert "config" in body["detail"]
    [config_check] = [check for check in body["checks"] if check["name"] == "config"]
    assert config_check["passed"] is False
    assert "max_body_bytes = 0 (INITLAB_MAX_BODY_BYTES)" in config_check["detail"]
    assert "max_layers = -1 (INITLAB_MAX_LAYERS)" in config_check["detail"]


def test_the_self_check_runs_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = []
    real_run_checks = readiness.run_checks

    def counted(config: Config) -> list[readiness.Check]:
        runs.append(config)
        return real_run_checks(config)

    monkeypatch.setattr(readiness, "run_checks", counted)
    client = plain_client()

    for _ in range(3):
        assert client.get("/readyz").status_code == 200
    assert len(runs) == 1

    # In a forked worker (another pid) the check runs again, once.
    monkeypatch.setattr(readiness.os, "getpid", lambda: -12345)
    for _ in range(2):
        assert client.get("/readyz").status_code == 200
    assert len(runs) == 2


def test_healthz_does_not_run_the_self_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readiness, "run_checks", lambda config: pytest.fail("ran"))

    assert plain_client().get("/healthz").get_json() == {"status": "ok"}


# --- /metrics --------------------------------------------------------------------


def test_metrics_are_the_prometheus_text_format() -> None:
    client = plain_client()

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == (
        "text/plain; version=0.0.4; charset=utf-8"
    )
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "initlab_http_requests",
        "initlab_http_request_duration_seconds",
        "initlab_refusals",
        "initlab_compute_seconds",
        "initlab_response_cache_lookups",
        "initlab_response_cache_bytes",
    } <= names


def test_metrics_count_requests_by_method_route_template_and_status() -> None:
    client = plain_client()
    for _ in range(3):
        client.get("/v1/activations", query_string={"name": "relu"})
    client.get("/v1/activations", query_string={"name": "nope"})
    client.post("/v1/recommendations", json={"spec": MNIST_SPEC})

    exposition = client.get("/metrics").text

    assert request_count(exposition, "GET", "/v1/activations", 200) == 3
    assert request_count(exposition, "GET", "/v1/activations", 422) == 1
    assert request_count(exposition, "POST", "/v1/recommendations", 200) == 1
    latency = samples(exposition, "initlab_http_request_duration_seconds_count")
    assert latency[(("route", "/v1/activations"),)] == 4
    assert latency[(("route", "/v1/recommendations"),)] == 1


def test_paths_no_route_serves_share_one_label_and_a_wrong_method_its_route() -> None:
    client = plain_client()
    for path in ("/v1/nothing/here", "/wp-admin/setup.php", "/v1/activations/x1"):
        assert client.get(path).status_code == 404
    client.open("/v1/activations", method="BREW")
    client.delete("/v1/recommendations")

    exposition = client.get("/metrics").text

    assert request_count(exposition, "GET", "unmatched", 404) == 3
    # A method a served path does not take is counted under that path's route,
    # an unknown method under "other".
    assert request_count(exposition, "other", "/v1/activations", 405) == 1
    assert request_count(exposition, "DELETE", "/v1/recommendations", 405) == 1
    assert 'unmatched",status="405' not in exposition
    assert "wp-admin" not in exposition
    assert "/v1/nothing" not in exposition
    assert "BREW" not in exposition


def test_refusals_are_counted_by_problem_type_and_limit() -> None:
    config = Config(max_body_bytes=2048, spec_limits=SpecLimits(max_layers=2))
    client = plain_client(config)
    too_many_layers = {
        "dims": {},
        "layers": [{"kind": "linear", "in": 4, "out": 4} for _ in range(3)],
    }

    client.post("/v1/recommendations", json={"spec": too_many_layers})
    client.post("/v1/recommendations", json={"spec": too_many_layers})
    client.post("/v1/recommendations", json={"spec": {"dims": {}, "layers": 3}})
    client.post(
        "/v1/recommendations", data=b" " * 4096, content_type="application/json"
    )
    client.post("/v1/recommendations", data="{", content_type="application/json")
    client.post("/v1/recommendations", data="{}", content_type="text/plain")
    client.get("/nowhere")

    refusals = samples(client.get("/metrics").text, "initlab_refusals_total")

    assert refusals == {
        (("limit", "max_layers"), ("reason", "limit-exceeded")): 2,
        (("limit", ""), ("reason", "validation")): 1,
        (("limit", ""), ("reason", "body-too-large")): 1,
        (("limit", ""), ("reason", "malformed-json")): 1,
        (("limit", ""), ("reason", "unsupported-media-type")): 1,
        (("limit", ""), ("reason", "not-found")): 1,
    }


def test_compute_seconds_are_recorded_per_route() -> None:
    client = plain_client()
    client.post("/v1/recommendations", json={"spec": MNIST_SPEC})
    client.post("/v1/recommendations", json={"spec": MNIST_SPEC})

    exposition = client.get("/metrics").text

    counts = samples(exposition, "initlab_compute_seconds_count")
    sums = samples(exposition, "initlab_compute_seconds_sum")
    route = (("route", "/v1/recommendations"),)
    assert counts[route] == 2
    # The handler's time lies within the request's.
    total = samples(exposition, "initlab_http_request_duration_seconds_sum")[route]
    assert 0 < sums[route] <= total


def test_the_contract_documents_metrics_readyz_and_docs(openapi_document) -> None:
    paths = openapi_document["paths"]

    metrics = paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain; version=0.0.4"]
    ready = paths["/readyz"]["get"]["responses"]
    assert ready["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Readiness"
    }
    assert ready["503"] == {"$ref": "#/components/responses/NotReady"}
    assert list(paths["/docs"]["get"]["responses"]["200"]["content"]) == ["text/html"]
    for path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.yaml"):
        assert "security" not in paths[path]["get"], path


# --- /docs -----------------------------------------------------------------------


class _References(HTMLParser):
    """Every URL a page refers to, by the tag and attribute holding it."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attributes: list) -> None:
        for name, value in attributes:
            if value is not None and (name in ("href", "src") or name.endswith("url")):
                self.urls.append((tag, value))


def page_references(html: str) -> list[tuple[str, str]]:
    parser = _References()
    parser.feed(html)
    return parser.urls


def test_the_reference_page_is_served_with_everything_it_needs(api) -> None:
    page = api.get("/docs")
    client = plain_client()

    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    references = page_references(page.text)
    expected_types = {
        "/docs/assets/swagger-ui.css": "text/css; charset=utf-8",
        "/docs/assets/swagger-ui-bundle.js": "text/javascript; charset=utf-8",
        "/docs/assets/initlab-docs.js": "text/javascript; charset=utf-8",
        "/docs/assets/favicon-32x32.png": "image/png",
        "/docs/assets/favicon-16x16.png": "image/png",
        "/openapi.yaml": "application/yaml",
    }
    assert {url for _, url in references} == set(expected_types)
    for url, content_type in expected_types.items():
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["Content-Type"] == content_type, url
        assert len(asset.data) > 0


def test_the_reference_page_refers_to_no_other_host() -> None:
    client = plain_client()
    page = client.get("/docs")

    for _, url in page_references(page.text):
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", ""), url
        assert url.startswith("/") and not url.startswith("//"), url
    assert "http://" not in page.text and "https://" not in page.text
    starter = client.get("/docs/assets/initlab-docs.js").text
    assert "http" not in starter
    assert "validatorUrl: null" in starter  # the one default that calls a host
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert "script-src 'self';" in policy
    assert "http" not in policy


def test_the_page_runs_a_swagger_ui_that_reads_openapi_3_1() -> None:
    bundle = plain_client().get("/docs/assets/swagger-ui-bundle.js").data

    # Swagger UI 5 is the first release that renders OpenAPI 3.1.
    assert b"SwaggerUIBundle" in bundle
    assert int(SWAGGER_UI_VERSION.split(".")[0]) >= 5


def test_an_unknown_asset_is_a_404_problem() -> None:
    client = plain_client()

    for name in ("index.html", "..%2Fopenapi.yaml", "swagger-ui.js.map"):
        response = client.get(f"/docs/assets/{name}")
        assert response.status_code == 404, name
        assert json.loads(response.data)["type"] == PROBLEMS + "not-found"


def test_a_missing_metrics_directory_stops_the_start(tmp_path) -> None:
    missing = tmp_path / "gone"
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(missing)}

    started = subprocess.run(
        [sys.executable, "-c", "import initlab.web.wsgi"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )

    assert started.returncode == 1
    assert started.stderr == (
        "PROMETHEUS_MULTIPROC_DIR must name a directory the workers can write their"
        f" metrics to; got {str(missing)!r}, which is not one. Create it, or unset"
        " the variable (gunicorn.conf.py then makes a private one).\n"
    )


def test_a_metric_that_cannot_be_written_does_not_fail_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(Config())
    metrics = app.extensions["initlab.metrics"]

    def unwritable(*labels: str):
        raise FileNotFoundError(2, "No such file or directory", "counter_1.db")

    metrics.requests.labels = unwritable
    client = app.test_client()

    with caplog.at_level(logging.ERROR, logger="initlab.web"):
        answers = [client.get("/v1/activations?name=relu") for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    errors = [record.getMessage() for record in caplog.records]
    assert len(errors) == 1
    assert "metrics not recorded" in errors[0] and "counter_1.db" in errors[0]
