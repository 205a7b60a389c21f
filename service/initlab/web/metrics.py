"""Prometheus metrics of the service, added up over every gunicorn worker.

Each gunicorn worker is a process of its own, and a scrape of /metrics reaches
whichever worker accepts it. In prometheus_client's multiprocess mode every
process writes its values to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR``
and /metrics adds up the files of all of them, so the counts are the service's,
not one worker's. ``service/gunicorn.conf.py`` provides the directory (a private
temporary one when the variable is unset, emptied at start) and drops the live
gauges of a worker that exits. The mode is chosen when prometheus_client is
first imported; without the variable (Flask's test client, ``flask run``) the
values live in this process and /metrics shows them alone.

Labels are bounded, so that a client cannot grow the series without limit:
``route`` is the URL rule's template (``/v1/recommendations``; every path no
rule serves is ``unmatched``), ``method`` one of the HTTP methods or ``other``,
``reason`` the slug of a problem type and ``limit`` the name of a configured
limit (empty for refusals that are not about a limit).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from initlab.web.config import ConfigError

error_log = logging.getLogger("initlab.web")
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# The Prometheus text exposition format, version 0.0.4.
METRICS_MEDIA_TYPE = CONTENT_TYPE_PLAIN_0_0_4
UNMATCHED_ROUTE = "unmatched"
OTHER_METHOD = "other"
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
# From 1 ms (a cached answer) to the 60 s worker timeout.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class Metrics:
    """The service's metrics: requests, latency, refusals, compute, cache.

    ``limit_names`` are the limits a refusal may name; any other name is
    counted as ``other``. One instance per process is meant: in multiprocess
    mode two instances would write the same files.
    """

    def __init__(self, limit_names: Iterable[str] = ()) -> None:
        self.directory = multiprocess_directory()
        # In multiprocess mode the values are read back from the files, so
        # the metrics belong to no registry; otherwise to this one alone.
        self.registry = None if self.directory else CollectorRegistry()
        self.limit_names = frozenset(limit_names)
        self._failed = False
        registry = self.registry

        self.requests = Counter(
            "initlab_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "initlab_http_request_duration_seconds",
            "Time from reading a request to handing back its response, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.refusals = Counter(
            "initlab_refusals",
            "Requests refused with a 4xx problem or a 503 busy, by problem type"
            " (its slug) and, for limit-exceeded, the limit.",
            ["reason", "limit"],
            registry=registry,
        )
        self.compute = Histogram(
            "initlab_compute_seconds",
            "Time spent in the route's handler (parsing, computing, writing the"
            " answer), without any wait for a turn of the compute gate; answers"
            " from the response cache spend none.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.turn_wait = Histogram(
            "initlab_computation_wait_seconds",
            "Time a computation waited for a turn of the compute gate, by route;"
            " a wait that ended in 503 busy included.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.cache_lookups = Counter(
            "initlab_response_cache_lookups",
            "Lookups of /v1 requests in the response cache, by result (hit, miss).",
            ["result"],
            registry=registry,
        )
        self.cache_bytes = Gauge(
            "initlab_response_cache_bytes",
            "Bytes held by the response caches of the live workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )

        self.computations = Gauge(
            "initlab_computations",
            "Multi-second computations (statistics, charts, µP checks) in the live"
            " workers, by state: running, or waiting for a turn.",
            ["state"],
            registry=registry,
            multiprocess_mode="livesum",
        )

    def set_computations(self, running: int, waiting: int) -> None:
        """The gated computations of this process: running and waiting."""
        with self._recording():
            self.computations.labels("running").set(running)
            self.computations.labels("waiting").set(waiting)

    def observe_response(
        self, method: str, route: str, status: int, duration_seconds: float
    ) -> None:
        """Count one answered request and its latency."""
        method = method if method in KNOWN_METHODS else OTHER_METHOD
        with self._recording():
            self.requests.labels(method, route, str(status)).inc()
            self.latency.labels(route).observe(duration_seconds)

    def observe_refusal(self, reason: str, limit: str | None = None) -> None:
        """Count one refused request; ``limit`` names the limit it went over."""
        if limit is not None and limit not in self.limit_names:
            limit = "other"
        with self._recording():
            self.refusals.labels(reason, limit or "").inc()

    def observe_compute(self, route: str, seconds: float) -> None:
        with self._recording():
            self.compute.labels(route).observe(seconds)

    def observe_wait(self, route: str, seconds: float) -> None:
        with self._recording():
            self.turn_wait.labels(route).observe(seconds)

    def observe_cache_lookup(self, hit: bool) -> None:
        with self._recording():
            self.cache_lookups.labels("hit" if hit else "miss").inc()

    def set_cache_bytes(self, size: int) -> None:
        with self._recording():
            self.cache_bytes.set(size)

    @contextmanager
    def _recording(self) -> Iterator[None]:
        """Record, or log why not: a metrics file that cannot be written (its
        directory removed under the service) must not fail the request."""
        try:
            yield
        except OSError as error:
            if not self._failed:
                error_log.error(
                    "metrics not recorded (this is said once per process): %s", error
                )
            self._failed = True

    def exposition(self) -> bytes:
        """Every metric in the text format, summed over all processes if several."""
        if self.registry is not None:
            return generate_latest(self.registry)

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.directory)
        return generate_latest(registry)


def multiprocess_directory() -> str | None:
    """The directory of multiprocess mode, or ``None`` when single-process.

    Raises :class:`ConfigError` when the mode is on and the directory is
    missing (every write would fail).
    """
    if values.ValueClass is values.MutexValue:
        # prometheus_client was imported without the variable: single-process.
        return None

    # prometheus_client also reads the older, lower-case spelling.
    directory = os.environ.get(
        MULTIPROCESS_VARIABLE, os.environ.get(MULTIPROCESS_VARIABLE.lower(), "")
    )
    if not os.path.isdir(directory):
        raise ConfigError(
            f"{MULTIPROCESS_VARIABLE} must name a directory the workers can write"
            f" their metrics to; got {directory!r}, which is not one. Create it,"
            " or unset the variable (gunicorn.conf.py then makes a private one)."
        )

    return directory
