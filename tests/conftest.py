"""Fixtures shared by the whole test suite.

``live_server_url`` runs the real service the way ``make serve`` and the
container do, so tests marked ``server`` exercise gunicorn, its config and
the WSGI entry point, not only the Flask app.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

# One BLAS thread per test process, as every gunicorn worker runs: set before
# any test module imports numpy, so matrix sizes, not thread scheduling,
# decide how long the Monte Carlo tests take on a shared two-core machine.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
# The command of the Makefile's serve target and of the Dockerfile's CMD, with
# the config path relative to the repository root; tests/deploy checks that
# all three agree.
SERVE_COMMAND = (
    "gunicorn",
    "--config",
    "service/gunicorn.conf.py",
    "initlab.web.wsgi:app",
)
START_DEADLINE_SECONDS = 60.0
STOP_DEADLINE_SECONDS = 15.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``server`` every test that uses the live server, marked or not.

    So that ``-m "not server"`` leaves out exactly the tests that start
    gunicorn, even one whose author forgot the marker.
    """
    for item in items:
        if "live_server_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def serve_command() -> tuple[str, ...]:
    """The command line that starts the service, as ``make serve`` runs it."""
    return SERVE_COMMAND


@pytest.fixture(scope="session")
def live_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a real gunicorn server on 127.0.0.1, started once per session.

    The server runs from this interpreter's virtualenv with the repository's
    gunicorn config and a free port; its output goes to a log file whose tail
    is shown if it fails to start.
    """
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("live-server") / "gunicorn.log"
    environment = {**os.environ, "PORT": str(port), "BIND": f"127.0.0.1:{port}"}
    executable = str(Path(sys.executable).parent / SERVE_COMMAND[0])

    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [executable, *SERVE_COMMAND[1:]],
            cwd=REPO_ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group, so that a kill reaches the workers too.
            start_new_session=True,
        )
    try:
        _wait_until_healthy(process, base_url, log_path)
        yield base_url
    finally:
        _stop(process)


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(
    process: subprocess.Popen[bytes], base_url: str, log_path: Path
) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the server exited with status {process.returncode} before"
                f" answering /healthz; its log:\n{_tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)

    pytest.fail(
        f"the server did not answer /healthz with 200 within"
        f" {START_DEADLINE_SECONDS:.0f} s; its log:\n{_tail(log_path)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop gracefully (SIGTERM), then kill master and workers if still there."""
    if process.poll() is not None:
        return

    process.terminate()
    try:
        process.wait(timeout=STOP_DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _tail(log_path: Path, lines: int = 40) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
