"""The compute gate: how many multi-second computations run, wait, or are refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from initlab.web.admission import BUSY, RETRY_AFTER_SECONDS, ComputeGate
from initlab.web.problems import Problem

# A guard against a test that hangs, not a measured time.
JOIN_SECONDS = 30


class Reports:
    """What a gate reported, and a way to wait for a given state."""

    def __init__(self) -> None:
        self.states: list[tuple[int, int]] = []
        self._changed = threading.Condition()

    def __call__(self, running: int, waiting: int) -> None:
        with self._changed:
            self.states.append((running, waiting))
            self._changed.notify_all()

    def wait_for(self, state: tuple[int, int]) -> None:
        with self._changed:
            assert self._changed.wait_for(
                lambda: self.states and self.states[-1] == state, JOIN_SECONDS
            ), self.states


@contextmanager
def holding(gate: ComputeGate) -> Iterator[threading.Event]:
    """A thread holding a turn of ``gate`` until the yielded event is set."""
    release = threading.Event()
    holder = threading.Thread(target=_hold, args=(gate, release))
    holder.start()
    try:
        yield release
    finally:
        release.set()
        holder.join(JOIN_SECONDS)


def _hold(gate: ComputeGate, release: threading.Event) -> None:
    with gate.slot():
        release.wait(JOIN_SECONDS)


def test_one_runs_one_waits_and_the_next_is_told_to_come_back() -> None:
    reports = Reports()
    gate = ComputeGate(running=1, queued=1, wait_seconds=JOIN_SECONDS, report=reports)
    outcomes: list[str] = []

    def waiter() -> None:
        with gate.slot():
            outcomes.append("ran after waiting")

    with holding(gate) as release:
        reports.wait_for((1, 0))
        queued = threading.Thread(target=waiter)
        queued.start()
        reports.wait_for((1, 1))

        with pytest.raises(Problem) as refused, gate.slot():
            outcomes.append("ran past the gate")

        release.set()
        queued.join(JOIN_SECONDS)

    problem = refused.value
    assert problem.kind is BUSY
    assert problem.status == 503
    assert problem.headers == {"Retry-After": str(RETRY_AFTER_SECONDS)}
    assert "1 computations are running in this worker and 1 are waiting" in (
        problem.detail
    )
    assert "INITLAB_MAX_RUNNING_COMPUTATIONS = 1" in problem.detail
    assert outcomes == ["ran after waiting"]
    # The holder's turn, the waiter queued, the turn handed over, both done.
    assert reports.states == [(1, 0), (1, 1), (0, 1), (0, 0), (1, 0), (0, 0)]


def test_a_waiter_whose_turn_does_not_come_is_refused() -> None:
    reports = Reports()
    gate = ComputeGate(running=1, queued=1, wait_seconds=0.05, report=reports)

    with holding(gate):
        reports.wait_for((1, 0))
        with pytest.raises(Problem) as refused, gate.slot():
            pass

    assert refused.value.kind is BUSY
    assert "no turn to compute came within 0.05 s" in refused.value.detail
    assert reports.states[-1] == (0, 0)


def test_with_no_queue_the_second_is_refused_at_once() -> None:
    reports = Reports()
    gate = ComputeGate(running=1, queued=0, wait_seconds=JOIN_SECONDS, report=reports)

    with holding(gate):
        reports.wait_for((1, 0))
        with pytest.raises(Problem) as refused, gate.slot():
            pass

    assert refused.value.kind is BUSY
    assert "1 computations are running in this worker and 0 are waiting" in (
        refused.value.detail
    )
    # Refused without waiting: the count of waiters never moved.
    assert reports.states == [(1, 0), (0, 0)]


def test_a_running_limit_of_zero_lets_every_computation_run() -> None:
    gate = ComputeGate(running=0, queued=0, wait_seconds=1)
    entered = []

    with gate.slot(), gate.slot(), gate.slot():
        entered.append(3)

    assert entered == [3]
