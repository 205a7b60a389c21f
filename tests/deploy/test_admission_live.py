"""The compute gate on a real server: health answered while computations fill it.

One worker of three threads that runs one multi-second chart and queues one
more: a third is refused with 503 busy at once, and /healthz is answered on
the free thread while the first is still computing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest
import requests

from serving import RunningService, running_service

pytestmark = pytest.mark.server

PROPAGATION = "/v1/visualizations/propagation"
# A Monte Carlo chart of about 190 billion flop-equivalents: a few seconds of
# one core (the budget is raised so that it is allowed three times over).
HEAVY_QUERY = {
    "activation": "tanh",
    "schemes": "kaiming_normal",
    "depth": "150",
    "width": "512",
    "method": "monte_carlo",
    "seeds": "6",
}
ENVIRONMENT = {
    "WEB_CONCURRENCY": "1",
    "GUNICORN_THREADS": "3",
    "INITLAB_MAX_RUNNING_COMPUTATIONS": "1",
    "INITLAB_MAX_QUEUED_COMPUTATIONS": "1",
    "INITLAB_COMPUTE_BUDGET": "1000000000000",
    "INITLAB_RESPONSE_CACHE_BYTES": "0",
}
# Guards against a hung server, not measured times.
REQUEST_SECONDS = 120
POLLS = 2000


@pytest.fixture(scope="module")
def gated_service(
    serve_command: tuple[str, ...], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    log_dir = tmp_path_factory.mktemp("gated-server")
    with running_service(serve_command, ENVIRONMENT, log_dir) as service:
        yield service


def computations(service: RunningService) -> tuple[float, float]:
    text = requests.get(f"{service.url}/metrics", timeout=REQUEST_SECONDS).text
    found = dict(
        re.findall(r'^initlab_computations\{state="(\w+)"\} (\S+)$', text, re.M)
    )
    return float(found.get("running", 0)), float(found.get("waiting", 0))


def wait_for(service: RunningService, state: tuple[float, float]) -> None:
    for _ in range(POLLS):
        if computations(service) == state:
            return
    raise AssertionError(f"the gate never reached {state}: {computations(service)}")


def heavy(service: RunningService, seed: int, answers: dict[int, requests.Response]):
    def ask() -> None:
        answers[seed] = requests.get(
            f"{service.url}{PROPAGATION}",
            params={**HEAVY_QUERY, "seed": str(seed)},
            timeout=REQUEST_SECONDS,
        )

    thread = threading.Thread(target=ask)
    thread.start()
    return thread


def test_a_full_gate_refuses_with_retry_after_and_health_still_answers(
    gated_service: RunningService,
) -> None:
    answers: dict[int, requests.Response] = {}
    running = heavy(gated_service, 1, answers)
    wait_for(gated_service, (1.0, 0.0))
    waiting = heavy(gated_service, 2, answers)
    wait_for(gated_service, (1.0, 1.0))

    refused = requests.get(
        f"{gated_service.url}{PROPAGATION}",
        params={**HEAVY_QUERY, "seed": "3"},
        timeout=REQUEST_SECONDS,
    )
    health = requests.get(f"{gated_service.url}/healthz", timeout=REQUEST_SECONDS)
    # Both answered while the first chart was still being computed.
    assert running.is_alive()
    running.join(REQUEST_SECONDS)
    waiting.join(REQUEST_SECONDS)

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert refused.status_code == 503
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.headers["Retry-After"] == "2"
    problem = refused.json()
    assert problem["type"] == "https://initlab.dev/problems/busy"
    assert problem["instance"] == refused.headers["X-Request-ID"]
    assert (
        "1 computations are running in this worker and 1 are waiting"
        in (problem["detail"])
    )
    for seed in (1, 2):
        assert answers[seed].status_code == 200, answers[seed].text[:500]
        assert answers[seed].json()["seed"] == seed
    assert computations(gated_service) == (0.0, 0.0)
    metrics = requests.get(f"{gated_service.url}/metrics", timeout=60).text
    assert 'initlab_refusals_total{limit="",reason="busy"} 1.0' in metrics
