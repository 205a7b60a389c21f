"""Fixtures shared by the whole test suite.

``live_server_url`` runs the real service the way ``make serve`` and the
container do, so tests marked ``server`` exercise gunicorn, its config and
the WSGI entry point, not only the Flask app.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from serving import running_service

# One BLAS thread per test process, as every gunicorn worker runs: set before
# any test module imports numpy, so matrix sizes, not thread scheduling,
# decide how long the Monte Carlo tests take on a shared two-core machine.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

# The command of the Makefile's serve target and of the Dockerfile's CMD, with
# the config path relative to the repository root; tests/deploy checks that
# all three agree.
SERVE_COMMAND = (
    "gunicorn",
    "--config",
    "service/gunicorn.conf.py",
    "initlab.web.wsgi:app",
)


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
    log_dir = tmp_path_factory.mktemp("live-server")
    with running_service(SERVE_COMMAND, {}, log_dir) as service:
        yield service.url
