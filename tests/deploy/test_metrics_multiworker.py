"""/metrics adds up every gunicorn worker, whichever worker answers the scrape.

The service runs as ``make serve`` runs it with two workers and a metrics
directory this test can look into. One request that takes a while (a Monte
Carlo statistics run) keeps one sync worker busy; the requests sent meanwhile
can only be answered by the other, so both workers answer some, and each writes
its own files. /metrics must count every request exactly, summed over both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from serving import REPO_ROOT, running_service

pytestmark = pytest.mark.server

FAST_PATH = "/v1/activations"
SLOW_PATH = "/v1/statistics"
MIN_FAST_REQUESTS = 20
MAX_FAST_REQUESTS = 600
GAUGE_DEADLINE_SECONDS = 15.0
# A value a run before this one left behind: were the directory not emptied at
# start, it would be added to this run's count.
STALE_COUNT = 1000
STALE_WRITER = f"""
from prometheus_client import Counter
Counter("initlab_http_requests", "stale", ["method", "route", "status"]).labels(
    "GET", "{FAST_PATH}", "200"
).inc({STALE_COUNT})
"""


def request_counts(exposition: str) -> dict[tuple[str, str, str], float]:
    counts = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "initlab_http_requests_total":
                labels = sample.labels
                key = (labels["method"], labels["route"], labels["status"])
                counts[key] = sample.value
    return counts


def pids_with(directory: Path, prefix: str) -> set[int]:
    """The processes that wrote metric files ``<prefix>_<pid>.db``."""
    return {
        int(path.stem.rpartition("_")[2]) for path in directory.glob(f"{prefix}_*.db")
    }


def test_metrics_count_every_request_of_both_workers(
    serve_command: tuple[str, ...], tmp_path: Path
) -> None:
    metrics_directory = tmp_path / "metrics"
    metrics_directory.mkdir()
    subprocess.run(
        [sys.executable, "-c", STALE_WRITER],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_directory)},
        check=True,
    )
    stale_files = set(metrics_directory.glob("counter_*.db"))
    assert stale_files
    mlp = json.loads((REPO_ROOT / "examples" / "mlp-3layer.spec.json").read_text())
    slow_body = {"spec": mlp, "method": "monte_carlo", "seeds": 4, "batch_size": 512}
    environment = {
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_directory),
    }

    with running_service(serve_command, environment, tmp_path) as service:
        assert not stale_files & set(metrics_directory.glob("*.db"))

        fast = 0
        with ThreadPoolExecutor(max_workers=1) as pool:
            slow = pool.submit(
                requests.post, service.url + SLOW_PATH, json=slow_body, timeout=120
            )
            while fast < MAX_FAST_REQUESTS and (
                fast < MIN_FAST_REQUESTS or not slow.done()
            ):
                answer = requests.get(
                    service.url + FAST_PATH, params={"name": "relu"}, timeout=30
                )
                assert answer.status_code == 200
                fast += 1
            assert slow.result().status_code == 200
        scrapes = [requests.get(f"{service.url}/metrics", timeout=30) for _ in range(4)]
        workers = pids_with(metrics_directory, "counter")

        # A worker that dies keeps its counts; only its live gauges go.
        victim = min(workers & pids_with(metrics_directory, "gauge_livesum"))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + GAUGE_DEADLINE_SECONDS
        while victim in pids_with(metrics_directory, "gauge_livesum"):
            assert time.monotonic() < deadline, "the dead worker's gauge stayed"
            time.sleep(0.1)
        after_death = requests.get(f"{service.url}/metrics", timeout=30)

    assert len(workers) >= 2, "one worker answered everything"
    for scrape in scrapes + [after_death]:
        assert scrape.status_code == 200
        assert scrape.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        counts = request_counts(scrape.text)
        assert counts[("GET", FAST_PATH, "200")] == fast
        assert counts[("POST", SLOW_PATH, "200")] == 1
