"""Same seed, same numbers: bit-identical Monte Carlo answers from every worker.

The service runs as ``make serve`` runs it, with two gunicorn workers
(``WEB_CONCURRENCY=2``) and gunicorn's access log on, whose ``%(p)s`` field
records the pid of the worker that answered each request. The same Monte
Carlo request is sent from several threads at once, each on a new connection:
two sync workers answer one request each at a time, so overlapping requests
are spread over both, and the log shows that they were. Every body must be
the same bytes, and the same as a second server started with another hash
seed (a new set of processes) answers, and as the app computes in the test
process itself.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from initlab.web.app import create_app
from initlab.web.config import Config

pytestmark = pytest.mark.server

REPO_ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE_SECONDS = 60.0
STOP_DEADLINE_SECONDS = 15.0
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


class Server:
    """One gunicorn master with its workers, and the log it writes."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path):
        self.process = process
        self.url = url
        self.log = log

    def answering_pids(self, path: str) -> set[int]:
        """Pids of the workers whose access log shows a 200 for ``path``."""
        pids = set()
        for line in self.log.read_text(errors="replace").splitlines():
            match = ACCESS_LINE.match(line.strip())
            if match and match[3] == path and match[4] == "200":
                pids.add(int(match[1]))
        return pids


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(serve_command: tuple[str, ...], log_path: Path, hash_seed: str) -> Server:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "PORT": str(port),
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "PYTHONHASHSEED": hash_seed,
    }
    executable = str(Path(sys.executable).parent / serve_command[0])
    command = [
        executable,
        *serve_command[1:],
        # Command-line settings override the config file's accesslog = None.
        "--access-logfile",
        "-",
        "--access-logformat",
        # %(p)s is the pid of the worker, written as <pid>.
        "ACCESS pid=%(p)s %(m)s %(U)s status=%(s)s",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, url, log_path)
    _wait_until_healthy(server)
    return server


def _wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"gunicorn exited early; its log:\n{_tail(server.log)}")
        try:
            if requests.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)

    pytest.fail(f"gunicorn did not become healthy; its log:\n{_tail(server.log)}")


def _stop(server: Server) -> None:
    if server.process.poll() is not None:
        return

    server.process.terminate()
    try:
        server.process.wait(timeout=STOP_DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()


def _tail(log_path: Path, lines: int = 40) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def two_workers(
    tmp_path_factory: pytest.TempPathFactory, serve_command: tuple[str, ...]
) -> Iterator[Server]:
    log_path = tmp_path_factory.mktemp("determinism") / "gunicorn.log"
    server = _start(serve_command, log_path, "1")
    try:
        yield server
    finally:
        _stop(server)


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


def test_both_workers_answer_the_same_bytes(two_workers: Server) -> None:
    bodies: list[bytes] = []
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        for _ in range(ROUNDS):
            bodies += pool.map(_post_on_a_new_connection, [two_workers.url] * PARALLEL)

    # The access log line is written after the body is sent; give it a moment.
    deadline = time.monotonic() + 5
    pids = two_workers.answering_pids("/v1/statistics")
    while len(pids) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
        pids = two_workers.answering_pids("/v1/statistics")

    assert len(bodies) == ROUNDS * PARALLEL
    assert len(pids) == 2, f"answered by workers {pids}; log:\n{_tail(two_workers.log)}"
    assert len(set(bodies)) == 1, "the workers answered different bytes"
    answer = json.loads(bodies[0])
    assert answer["seed"] == STATISTICS_REQUEST["seed"]
    measured = [row["monte_carlo"]["second_moment"]["mean"] for row in answer["layers"]]
    assert all(value > 0 for value in measured)


def test_another_server_answers_the_same_bytes(
    two_workers: Server, tmp_path: Path, serve_command: tuple[str, ...]
) -> None:
    first = _post_on_a_new_connection(two_workers.url)

    other = _start(serve_command, tmp_path / "gunicorn.log", "2")
    try:
        again = _post_on_a_new_connection(other.url)
    finally:
        _stop(other)

    assert again == first


def test_this_process_computes_the_same_bytes(two_workers: Server) -> None:
    served = _post_on_a_new_connection(two_workers.url)

    app = create_app(Config())
    here = app.test_client().post("/v1/statistics", json=STATISTICS_REQUEST)

    assert here.status_code == 200
    assert here.get_data() == served
