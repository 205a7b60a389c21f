"""Which requests take a turn of the compute gate, and which are answered at once.

A test thread holds the only turn (one running, none queued): a request that
needs a turn is told the service is busy, while a request that breaks a rule
is refused for that at once, and small answers never wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from initlab.web.admission import GATE_EXTENSION, LARGE_ANSWER_ROWS
from initlab.web.app import create_app
from initlab.web.config import Config

PROBLEMS = "https://initlab.dev/problems/"
STATISTICS = "/v1/statistics"
# A guard against a hung test, not a measured time.
HOLD_SECONDS = 60


def mlp(layers: int) -> dict[str, Any]:
    """A stack of ``layers`` linear layers with biases: 2 tensors each."""
    return {
        "dims": {"d": 8, "n": layers},
        "layers": [
            {
                "kind": "repeat",
                "name": "block",
                "count": "n",
                "layers": [{"kind": "linear", "name": "fc", "in": "d", "out": "d"}],
            }
        ],
    }


SMALL = mlp(3)
LARGE = mlp(LARGE_ANSWER_ROWS // 2)


@pytest.fixture
def held() -> Iterator[Flask]:
    """An app whose only turn to compute is held by another thread."""
    app = create_app(
        Config(
            max_running_computations=1,
            max_queued_computations=0,
            computation_wait_seconds=1,
        )
    )
    gate = app.extensions[GATE_EXTENSION]
    taken = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with gate.slot():
            taken.set()
            release.wait(HOLD_SECONDS)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(HOLD_SECONDS)
    try:
        yield app
    finally:
        release.set()
        holder.join(HOLD_SECONDS)


def problem_type(response: Any) -> str:
    return response.get_json()["type"].removeprefix(PROBLEMS)


def test_computations_that_need_a_turn_are_told_the_service_is_busy(
    held: Flask,
) -> None:
    client = held.test_client()
    answers = {
        "statistics": client.post(
            "/v1/statistics", json={"spec": SMALL, "method": "analytic"}
        ),
        "chart": client.get("/v1/visualizations/propagation?depth=3&width=8"),
        "phases": client.get("/v1/visualizations/phase-diagram"),
        "large recommendation": client.post(
            "/v1/recommendations", json={"spec": LARGE}
        ),
        "large table": client.post(
            "/v1/mup/table",
            json={
                "spec": LARGE,
                "base_dims": {"d": 8},
                "targets": [{"d": 16}, {"d": 32}],
                "lr": 1e-3,
            },
        ),
    }

    for name, answer in answers.items():
        assert answer.status_code == 503, (name, answer.get_data(as_text=True))
        assert problem_type(answer) == "busy", name
        assert answer.headers["Retry-After"] == "2", name


def test_requests_that_break_a_rule_are_refused_at_once_not_told_to_wait(
    held: Flask,
) -> None:
    client = held.test_client()
    answers = {
        "negative seeds": client.post(
            "/v1/statistics", json={"spec": SMALL, "seeds": -1}
        ),
        "unknown activation": client.get(
            "/v1/visualizations/propagation?activation=nope"
        ),
        "over the compute budget": client.get(
            "/v1/visualizations/propagation?depth=100&width=4096&seeds=64"
        ),
        "coordinate check without widths": client.post(
            "/v1/mup/coord-check", json={"spec": SMALL, "widths": []}
        ),
    }

    for name, answer in answers.items():
        assert answer.status_code == 422, (name, answer.get_data(as_text=True))
        assert problem_type(answer) in ("validation", "limit-exceeded"), name


def test_small_answers_never_wait_for_a_turn(held: Flask) -> None:
    client = held.test_client()

    recommendation = client.post("/v1/recommendations", json={"spec": SMALL})
    table = client.post(
        "/v1/mup/table",
        json={
            "spec": SMALL,
            "base_dims": {"d": 8},
            "targets": [{"d": 16}],
            "lr": 1e-3,
        },
    )

    assert recommendation.status_code == 200
    assert recommendation.get_json()["parameter_count"] == 3 * (8 * 8 + 8)
    assert table.status_code == 200, table.get_data(as_text=True)


class Clock:
    """``time.perf_counter`` that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def histogram(exposition: str, name: str, route: str) -> tuple[float, float]:
    """The count and the sum of the histogram ``name`` for ``route``."""
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.labels.get("route") == route and sample.name in (
                f"{name}_count",
                f"{name}_sum",
            ):
                found[sample.name.rpartition("_")[2]] = sample.value
    return found.get("count", 0.0), found.get("sum", 0.0)


def test_the_wait_for_a_turn_is_its_own_metric_not_compute_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(time, "perf_counter", clock)
    app = create_app(
        Config(
            max_running_computations=1,
            max_queued_computations=1,
            computation_wait_seconds=HOLD_SECONDS,
        )
    )
    gate = app.extensions[GATE_EXTENSION]
    answers: list[Any] = []

    def ask() -> None:
        client = app.test_client()
        body = {"spec": SMALL, "method": "analytic"}
        answers.append(client.post("/v1/statistics", json=body))

    with gate.slot():
        waiter = threading.Thread(target=ask)
        waiter.start()
        # The request asks for the turn this test holds.
        deadline = time.monotonic() + HOLD_SECONDS
        while gate._waiting != 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert gate._waiting == 1
        clock.now = 7.0  # Seven seconds pass while it waits.
    waiter.join(HOLD_SECONDS)

    [answer] = answers
    assert answer.status_code == 200, answer.get_data(as_text=True)
    exposition = app.test_client().get("/metrics").text
    assert histogram(exposition, "initlab_computation_wait_seconds", STATISTICS) == (
        1.0,
        7.0,
    )
    # Its handler ran from 0 s to 7 s on this clock, all of it waiting.
    assert histogram(exposition, "initlab_compute_seconds", STATISTICS) == (1.0, 0.0)


def test_requests_that_take_no_turn_record_no_wait(held: Flask) -> None:
    client = held.test_client()
    assert client.post("/v1/recommendations", json={"spec": SMALL}).status_code == 200

    exposition = client.get("/metrics").text

    count, _ = histogram(
        exposition, "initlab_computation_wait_seconds", "/v1/recommendations"
    )
    assert count == 0.0
