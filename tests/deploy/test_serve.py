"""The service as ``make serve`` runs it: gunicorn, its config and the WSGI app."""

from __future__ import annotations

import math

import pytest
import requests

pytestmark = pytest.mark.server

LINEAR_SPEC = {
    "dims": {"d_in": 784},
    "layers": [{"kind": "linear", "name": "fc", "in": "d_in", "out": 256}],
}


def test_healthz_answers_ok(live_server_url: str) -> None:
    answer = requests.get(f"{live_server_url}/healthz", timeout=10)

    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert answer.headers["X-Request-ID"]


def test_served_by_gunicorn(live_server_url: str) -> None:
    answer = requests.get(f"{live_server_url}/healthz", timeout=10)

    assert answer.headers["Server"].startswith("gunicorn")


def test_recommendations_answer_with_numbers_and_a_request_id(
    live_server_url: str,
) -> None:
    answer = requests.post(
        f"{live_server_url}/v1/recommendations",
        json={"spec": LINEAR_SPEC, "scheme": "xavier_uniform"},
        timeout=30,
    )

    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert len(answer.headers["X-Request-ID"]) >= 8
    body = answer.json()
    weight = next(p for p in body["parameters"] if p["name"] == "fc.weight")
    # Glorot & Bengio (2010): bound = sqrt(6 / (fan_in + fan_out)).
    assert weight["bound"] == pytest.approx(math.sqrt(6 / (784 + 256)), rel=1e-12)
    assert body["parameter_count"] == 784 * 256 + 256


def test_the_request_id_sent_is_the_request_id_answered(live_server_url: str) -> None:
    answer = requests.post(
        f"{live_server_url}/v1/recommendations",
        json={"spec": LINEAR_SPEC},
        headers={"X-Request-ID": "deploy-test-0001"},
        timeout=30,
    )

    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Request-ID"] == "deploy-test-0001"


def test_a_bad_spec_is_a_problem_not_a_crash(live_server_url: str) -> None:
    spec = {"dims": {}, "layers": [{"kind": "linear", "in": -3, "out": 4}]}

    answer = requests.post(
        f"{live_server_url}/v1/recommendations", json={"spec": spec}, timeout=30
    )

    assert answer.status_code == 422
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.json()["instance"] == answer.headers["X-Request-ID"]
