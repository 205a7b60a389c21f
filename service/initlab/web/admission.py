"""How many multi-second computations a worker runs at once, and who waits.

The statistics, the charts and the µP checks may each take seconds of one
core (their budgets bound how many), and so may the largest recommendations
and µP tables. A gunicorn worker has a fixed number of
threads and accepts a connection only while one is free: were every thread
computing, health checks and cheap requests would wait in the listen queue
behind them. So each worker lets ``running`` of these computations run, lets
``queued`` more wait up to ``wait_seconds`` for a turn, and answers any
further one at once with a 503 ``busy`` problem and ``Retry-After``: the
threads beyond ``running + queued`` stay free for everything else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from flask import current_app, g

from initlab.web.problems import Problem, ProblemKind

#: Where the app keeps its gate.
GATE_EXTENSION = "initlab.compute_gate"
#: Recommendations and µP tables of this many rows or more take a turn too
#: (about 0.1 s of one core here; the limits allow 50,000, about 2 s).
LARGE_ANSWER_ROWS = 2000
#: Seconds a client is asked to wait before sending a refused request again.
RETRY_AFTER_SECONDS = 2

BUSY = ProblemKind(
    "busy",
    503,
    "Service busy",
    "The worker is running and queueing as many multi-second computations as it"
    " is configured for; send the request again after `Retry-After` seconds.",
)


class ComputeGate:
    """At most ``running`` computations at once; ``queued`` more may wait.

    ``running`` 0 turns the gate off (every computation runs at once).
    ``report(running, waiting)`` hears every change of the two counts.
    """

    def __init__(
        self,
        running: int,
        queued: int,
        wait_seconds: float,
        report: Callable[[int, int], None] = lambda running, waiting: None,
    ) -> None:
        self.running_limit = running
        self.queued_limit = queued
        self.wait_seconds = wait_seconds
        self._report = report
        self._turn = threading.Condition()
        self._running = 0
        self._waiting = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a turn to compute; raise a ``busy`` :class:`Problem` if none comes."""
        if self.running_limit <= 0:
            yield
            return

        with self._turn:
            if self._running >= self.running_limit:
                self._wait()
            self._running += 1
            self._report(self._running, self._waiting)
        try:
            yield
        finally:
            with self._turn:
                self._running -= 1
                self._report(self._running, self._waiting)
                self._turn.notify()

    def _wait(self) -> None:
        """Wait for a free turn; the caller holds the lock, released while waiting."""
        if self._waiting >= self.queued_limit:
            raise _busy(
                f"{self._running} computations are running in this worker and"
                f" {self._waiting} are waiting, as many as it takes"
                f" (INITLAB_MAX_RUNNING_COMPUTATIONS = {self.running_limit},"
                f" INITLAB_MAX_QUEUED_COMPUTATIONS = {self.queued_limit})"
            )
        self._waiting += 1
        self._report(self._running, self._waiting)
        try:
            turned = self._turn.wait_for(
                lambda: self._running < self.running_limit, timeout=self.wait_seconds
            )
        finally:
            self._waiting -= 1
            self._report(self._running, self._waiting)
        if not turned:
            raise _busy(
                f"no turn to compute came within {self.wait_seconds:g} s"
                f" (INITLAB_COMPUTATION_WAIT_SECONDS) while"
                f" {self._running} computations ran in this worker"
            )


@contextmanager
def compute_turn() -> Iterator[None]:
    """A turn of the current app's gate: hold it while computing.

    Routes pass it to the core as ``work_slot``, which takes it once every
    check of the request has passed, so that a request that breaks a rule is
    refused at once, never told the service is busy. The seconds spent
    waiting for the turn, given or refused, add up in
    :func:`waited_seconds`.
    """
    asked = time.perf_counter()
    waited = False
    try:
        with current_app.extensions[GATE_EXTENSION].slot():
            _count_wait(asked)
            waited = True
            yield
    finally:
        if not waited:
            _count_wait(asked)


def waited_seconds() -> float | None:
    """Seconds this request waited for turns; ``None`` if it asked for none."""
    return g.get("turn_wait_seconds")


def _count_wait(asked: float) -> None:
    g.turn_wait_seconds = (waited_seconds() or 0.0) + time.perf_counter() - asked


def turn_for_rows(rows: int) -> AbstractContextManager[None]:
    """A turn when an answer of ``rows`` rows takes long enough to need one."""
    return compute_turn() if rows >= LARGE_ANSWER_ROWS else nullcontext()


def _busy(reason: str) -> Problem:
    return Problem(
        BUSY,
        f"The service is busy: {reason}. Send the request again in"
        f" {RETRY_AFTER_SECONDS} s or later (the Python client does so itself),"
        " or ask for less work.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
