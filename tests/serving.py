"""Start the service as ``make serve`` does, on a free port of 127.0.0.1.

The session's ``live_server_url`` (tests/conftest.py) runs on it, and so do
tests that need a server of their own: two workers, API keys, a metrics
directory they can look into, gunicorn's access log.
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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
START_DEADLINE_SECONDS = 60.0
STOP_DEADLINE_SECONDS = 15.0


@dataclass(frozen=True)
class RunningService:
    """A gunicorn master serving the app: its URL, process and log file."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


@contextmanager
def running_service(
    serve_command: Sequence[str],
    environment: Mapping[str, str],
    log_dir: Path,
    arguments: Sequence[str] = (),
) -> Iterator[RunningService]:
    """Run ``serve_command`` on a free port of 127.0.0.1 until the block ends.

    ``environment`` is added to this process's; ``arguments`` go after the
    command, where gunicorn lets them win over its config file. Ready once
    /healthz answers 200.
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = log_dir / "gunicorn.log"
    full_environment = {
        **os.environ,
        **environment,
        "PORT": str(port),
        "BIND": f"127.0.0.1:{port}",
    }
    executable = str(Path(sys.executable).parent / serve_command[0])

    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [executable, *serve_command[1:], *arguments],
            cwd=REPO_ROOT,
            env=full_environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group, so that a kill reaches the workers too.
            start_new_session=True,
        )
    service = RunningService(url, process, log_path)
    try:
        _wait_until_healthy(service)
        yield service
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (gunicorn's graceful stop), then SIGKILL to the group if needed."""
    if process.poll() is not None:
        return

    process.terminate()
    try:
        process.wait(timeout=STOP_DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(service: RunningService) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            pytest.fail(
                f"the server exited with status {service.process.returncode} before"
                f" answering /healthz; its log:\n{service.tail()}"
            )
        try:
            with urllib.request.urlopen(f"{service.url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)

    pytest.fail(
        f"the server did not answer /healthz with 200 within"
        f" {START_DEADLINE_SECONDS:.0f} s; its log:\n{service.tail()}"
    )
