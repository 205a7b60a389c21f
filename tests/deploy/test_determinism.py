"""Same seed, same numbers: bit-identical Monte Carlo answers from every worker.

The service runs as ``make serve`` runs it, with two gunicorn workers of one
thread each (``WEB_CONCURRENCY=2``, ``GUNICORN_THREADS=1``) and gunicorn's
access log on, whose ``%(p)s`` field
records the pid of the worker that answered each request. The same Monte
Carlo request is sent from several threads at once, each on a new connection:
two workers of one thread answer one request each at a time, so overlapping
requests are spread over both, and the log shows that they were. Every body must be
the same bytes, and the same as a second server started with another hash
seed (a new set of processes) answers, and as the app computes in the test
process itself.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import requests

from initlab.web.app import create_app
from initlab.web.config import Config
from serving import RunningService, running_service

pytestmark = pytest.mark.server

ROUNDS = 6
PARALLEL = 2
ACCESS_LINE = re.compile(r"^ACCESS pid=<?(\d+)>? (\S+) (\S+) status=(\d+)$")

# A ReLU MLP with a tanh layer and a residual group: several kinds of rows,
# every Monte Carlo statistic, small enough for a fraction of a second.
STATISTICS_REQUEST = {
    "spec": {
        "dims": {"d": 128},
        "layers": [
            {
                "kind": "linear",
                "name": "fc1",
                "in": 64,
                "out": "d",
                "activation": "relu",
            },
            {
                "kind": "residual",
                "name": "block",
                "norm": "pre",
                "layers": [
                    {
                        "kind": "linear",
                        "name": "up",
                        "in": "d",
                        "out": 256,
                        "activation": "gelu",
                    },
                    {"kind": "linear", "name": "down", "in": 256, "out": "d"},
                ],
            },
            {
                "kind": "linear",
                "name": "fc2",
                "in": "d",
                "out": "d",
                "activation": "tanh",
            },
            {"kind": "linear", "name": "head", "in": "d", "out": 10},
        ],
    },
    "init": "kaiming_normal",
    "method": "monte_carlo",
    "batch_size": 32,
    "seeds": 4,
    "seed": 20260512,
    "input": {"second_moment": 1.0, "correlation": 0.5},
}


# Command-line settings override the config file's accesslog = None; %(p)s is
# the pid of the worker, written as <pid>.
ACCESS_LOG = (
    "--access-logfile",
    "-",
    "--access-logformat",
    "ACCESS pid=%(p)s %(m)s %(U)s status=%(s)s",
)


def answering_pids(service: RunningService, path: str) -> set[int]:
    """Pids of the workers whose access log shows a 200 for ``path``."""
    pids = set()
    for line in service.log().splitlines():
        match = ACCESS_LINE.match(line.strip())
        if match and match[3] == path and match[4] == "200":
            pids.add(int(match[1]))
    return pids


def two_workers_of_one_thread(
    serve_command: tuple[str, ...], log_dir: Path, hash_seed: str
) -> AbstractContextManager[RunningService]:
    """The service with two workers that each answer one request at a time."""
    environment = {
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "1",
        # One thread leaves none beside a gate: every computation runs at once.
        "INITLAB_MAX_RUNNING_COMPUTATIONS": "0",
        # Every answer computed by the worker that takes it: a replayed answer
        # is the same bytes trivially, and takes so little time that one
        # worker could answer every request while the other sleeps.
        "INITLAB_RESPONSE_CACHE_BYTES": "0",
        "PYTHONHASHSEED": hash_seed,
    }
    return running_service(serve_command, environment, log_dir, ACCESS_LOG)


@pytest.fixture(scope="module")
def two_workers(
    tmp_path_factory: pytest.TempPathFactory, serve_command: tuple[str, ...]
) -> Iterator[RunningService]:
    log_dir = tmp_path_factory.mktemp("determinism")
    with two_workers_of_one_thread(serve_command, log_dir, "1") as service:
        yield service


def _post_on_a_new_connection(url: str) -> bytes:
    # No session: every request opens (and closes) its own connection.
    answer = requests.post(
        f"{url}/v1/statistics",
        json=STATISTICS_REQUEST,
        headers={"Connection": "close"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return answer.content


def test_both_workers_answer_the_same_bytes(two_workers: RunningService) -> None:
    bodies: list[bytes] = []
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        for _ in range(ROUNDS):
            bodies += pool.map(_post_on_a_new_connection, [two_workers.url] * PARALLEL)

    # The access log line is written after the body is sent; give it a moment.
    deadline = time.monotonic() + 5
    pids = answering_pids(two_workers, "/v1/statistics")
    while len(pids) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
        pids = answering_pids(two_workers, "/v1/statistics")

    assert len(bodies) == ROUNDS * PARALLEL
    assert len(pids) == 2, f"answered by workers {pids}; log:\n{two_workers.tail()}"
    assert len(set(bodies)) == 1, "the workers answered different bytes"
    answer = json.loads(bodies[0])
    assert answer["seed"] == STATISTICS_REQUEST["seed"]
    measured = [row["monte_carlo"]["second_moment"]["mean"] for row in answer["layers"]]
    assert all(value > 0 for value in measured)


def test_another_server_answers_the_same_bytes(
    two_workers: RunningService, tmp_path: Path, serve_command: tuple[str, ...]
) -> None:
    first = _post_on_a_new_connection(two_workers.url)

    with two_workers_of_one_thread(serve_command, tmp_path, "2") as other:
        again = _post_on_a_new_connection(other.url)

    assert again == first


def test_this_process_computes_the_same_bytes(two_workers: RunningService) -> None:
    served = _post_on_a_new_connection(two_workers.url)

    app = create_app(Config())
    here = app.test_client().post("/v1/statistics", json=STATISTICS_REQUEST)

    assert here.status_code == 200
    assert here.get_data() == served
