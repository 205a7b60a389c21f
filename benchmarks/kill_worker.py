"""Kill a gunicorn worker under load: what fails, and does the master replace it?

The service runs as ``make serve`` runs it (``gunicorn --config
service/gunicorn.conf.py``: gthread workers of ``GUNICORN_THREADS`` (6)
threads, each thread one request at a time) on a free port of 127.0.0.1,
under a cheap load from wrk (one thread, 6 connections: GET /v1/schemes and
POST /v1/recommendations of the MLP and of GPT-2 small in turn). Two kills,
each with SIGKILL (no clean-up, as the kernel's out-of-memory killer does):

  1. the worker computing an expensive request: a traced POST /v1/statistics
     of GPT-2 small (about 3 s); the worker that holds its connection is
     found from /proc/net/tcp and the workers' file descriptors, and killed
     0.5 s into the computation. Expected: that request fails (the
     connection closes with no answer), and at most as many of wrk's as the
     worker's other threads held; the same request sent again after the
     respawn is answered.
  2. the newest worker, ``--kills`` times (default 5) at moments spread over
     a second run of the cheap load. Expected: per kill, at most the
     requests that worker's threads were serving fail (wrk counts each as a
     read error); a kill between requests fails none. The Python client
     sends such a request again by itself.

After each kill the script follows the master's log until it reports the
SIGKILL and boots a worker, and the worker list until it is whole again;
with ``max_requests`` workers are also replaced after their quota, so the
replacement is the worker the log shows booting right after the kill. At the
end: the master's lines about the kills, how many workers ``max_requests``
recycled meanwhile, and a last GET /healthz. Connections waiting in the
listen queue belong to the listening socket, shared by every worker, so a
kill does not lose them. The exit status is 1 when anything else failed or a
worker was not replaced within 10 s.

Usage: python benchmarks/kill_worker.py [--seconds S] [--kills N]
(S: each phase's load)
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import loadkit
from loadkit import Gunicorn, RequestKind, WrkReport

RESPAWN_DEADLINE_SECONDS = 10.0
KILL_AFTER_ACCEPT_SECONDS = 0.5
CONNECTIONS = 6
# A worker holds at most this many requests, one per thread (gunicorn.conf.py).
THREADS = int(os.environ.get("GUNICORN_THREADS") or 6)
IN_FLIGHT_PER_KILL = min(THREADS, CONNECTIONS)


@dataclass
class Traced:
    """One traced request: times from the phase's start, status or error."""

    label: str
    started: float
    ended: float | None = None
    status: int | None = None
    error: str | None = None
    local_port: int | None = None
    thread: threading.Thread | None = None

    def describe(self) -> str:
        ended = "-" if self.ended is None else f"{self.ended:.2f}"
        outcome = (
            f"answered {self.status}" if self.error is None else f"FAILED {self.error}"
        )
        return f"{self.label}: sent at {self.started:.2f} s, ended {ended} s: {outcome}"


def send_traced(
    port: int, kind: RequestKind, seed: int, clock: float, traced: Traced
) -> threading.Event:
    """Send ``kind`` in a thread; the returned event is set once it is connected.

    ``traced.local_port`` (the client's port of the connection) is known once
    the event is set; ``traced.thread`` ends with the request.
    """
    connected = threading.Event()

    def run() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            connection.connect()
            traced.local_port = connection.sock.getsockname()[1]
            connected.set()
            body = (kind.body or b"").replace(
                loadkit.SEED_PLACEHOLDER.encode(), str(seed).encode()
            )
            connection.request(
                kind.method,
                kind.path,
                body=body,
                headers={"Content-Type": "application/json"},
            )
            answer = connection.getresponse()
            answer.read()
            traced.status = answer.status
        except (OSError, http.client.HTTPException) as error:
            traced.error = f"{type(error).__name__}: {error}"
        finally:
            traced.ended = time.perf_counter() - clock
            connection.close()
            connected.set()

    traced.thread = threading.Thread(target=run, daemon=True)
    traced.thread.start()
    return connected


SIGKILL_LINE = re.compile(r"Worker \(pid:(\d+)\) was sent SIGKILL")
BOOTED_LINE = re.compile(r"Booting worker with pid: (\d+)")


@dataclass
class Respawn:
    """What followed one kill: when the master logged it, who it booted, when."""

    noticed_at: float | None = None
    booted_pid: int | None = None
    whole_at: float | None = None

    def describe(self, killed_at: float) -> str:
        if self.whole_at is None:
            return f"no replacement within {RESPAWN_DEADLINE_SECONDS:g} s"
        if self.noticed_at is None:
            return (
                f"the worker had exited by itself just before (max_requests): no"
                f" SIGKILL in the master's log; worker {self.booted_pid} booted,"
                f" all workers up again {ms(self.whole_at - killed_at)} after the kill"
            )
        return (
            f"the master logged the SIGKILL after {ms(self.noticed_at - killed_at)}"
            f" and booted worker {self.booted_pid}; all workers up again"
            f" {ms(self.whole_at - killed_at)} after the kill"
        )


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.0f} ms"


def wait_for_respawn(
    server: Gunicorn, killed: int, log_offset: int, clock: float
) -> Respawn:
    """Follow the master's log from ``log_offset`` and the worker list.

    The replacement is the worker whose boot the log shows first after the
    master's line about the SIGKILL: with max_requests, workers that finish
    their quota are replaced at any moment too, so a new pid alone does not
    tell which event it answers. A worker that exited by itself just before
    the signal landed leaves no such line: after half a second without it,
    the first boot after the kill is taken.
    """
    respawn = Respawn()
    seen = ""
    after = None
    gone_since = None
    deadline = time.monotonic() + RESPAWN_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        with open(server.log_path, "rb") as log:
            log.seek(log_offset)
            chunk = log.read()
        log_offset += len(chunk)
        seen += chunk.decode(errors="replace")
        now = time.perf_counter() - clock
        if after is None:
            for match in SIGKILL_LINE.finditer(seen):
                if int(match.group(1)) == killed:
                    respawn.noticed_at = now
                    after = match.end()
                    break
        workers = server.worker_pids()
        if killed not in workers and gone_since is None:
            gone_since = now
        if after is None and gone_since is not None and now - gone_since > 0.5:
            after = 0
        if after is not None and respawn.booted_pid is None:
            booted = BOOTED_LINE.search(seen, after)
            if booted:
                respawn.booted_pid = int(booted.group(1))
        if (
            respawn.booted_pid is not None
            and killed not in workers
            and len(workers) == server.expected_workers()
        ):
            respawn.whole_at = now
            return respawn
        time.sleep(0.005)

    return respawn


def log_size(server: Gunicorn) -> int:
    return server.log_path.stat().st_size


def cheap_kinds() -> list[RequestKind]:
    return [
        loadkit.get("schemes", "/v1/schemes"),
        loadkit.recommendations("mlp-3layer"),
        loadkit.recommendations("gpt2-small"),
    ]


def describe_wrk(report: WrkReport) -> str:
    return (
        f"wrk: {report.requests} answers ({report.rate:.0f}/s), statuses"
        f" {dict(sorted(report.statuses.items()))}, non-2xx {report.non_2xx},"
        f" socket errors {report.socket_errors} {dict(report.errors)}"
    )


def phase_busy_worker(
    server: Gunicorn, manifest: Path, seconds: int, problems: list[str]
) -> None:
    """Kill 1: the worker computing a traced expensive request."""
    print("1. SIGKILL the worker computing a traced POST /v1/statistics (GPT-2 small)")
    expensive = loadkit.gpt2_statistics()
    clock = time.perf_counter()
    run = loadkit.WrkRun(server.url, manifest, connections=CONNECTIONS, seconds=seconds)
    time.sleep(2.0)

    first = Traced("traced statistics, seed 1", time.perf_counter() - clock)
    connected = send_traced(server.port, expensive, 1, clock, first)
    connected.wait(10)
    owner = None
    deadline = time.monotonic() + 5.0
    while owner is None and time.monotonic() < deadline and first.ended is None:
        before = server.worker_pids()
        owner = loadkit.socket_owner(before, server.port, first.local_port)
        time.sleep(0.002)
    if owner is None:
        problems.append("kill 1: no worker took the traced request within 5 s")
        run.interrupt()
        run.wait()
        return
    accepted_at = time.perf_counter() - clock
    time.sleep(KILL_AFTER_ACCEPT_SECONDS)
    offset = log_size(server)
    os.kill(owner, signal.SIGKILL)
    killed_at = time.perf_counter() - clock
    print(
        f"   worker {owner} of {before} holds the traced request's connection at"
        f" {accepted_at:.2f} s; SIGKILL at {killed_at:.2f} s"
    )
    respawn = wait_for_respawn(server, owner, offset, clock)
    print(f"   {respawn.describe(killed_at)}")
    if respawn.whole_at is None:
        problems.append(f"kill 1: {respawn.describe(killed_at)}")

    first.thread.join(120)
    second = Traced("same request again, seed 2", time.perf_counter() - clock)
    send_traced(server.port, expensive, 2, clock, second)
    second.thread.join(120)
    report = run.wait()

    for traced in (first, second):
        print(f"   {traced.describe()}")
    print(f"   {describe_wrk(report)}")
    if first.error is None:
        problems.append(f"kill 1: the killed worker's request did not fail: {first}")
    if second.status != 200:
        problems.append(f"kill 1: the request sent again failed: {second.describe()}")
    if report.non_2xx or report.socket_errors > IN_FLIGHT_PER_KILL - 1:
        problems.append(
            "kill 1: more of wrk's requests failed than the killed worker's other"
            f" threads held ({IN_FLIGHT_PER_KILL - 1}): {describe_wrk(report)}"
        )


def phase_cheap_workers(
    server: Gunicorn, manifest: Path, seconds: int, kills: int, problems: list[str]
) -> None:
    """Kills 2 …: the newest worker, at moments spread over the cheap load."""
    print(
        f"2. SIGKILL the newest worker {kills} times while the workers serve the"
        " cheap load"
    )
    clock = time.perf_counter()
    run = loadkit.WrkRun(server.url, manifest, connections=CONNECTIONS, seconds=seconds)
    # Between a quarter and three quarters of the run, evenly.
    moments = [seconds * (0.25 + 0.5 * i / max(kills - 1, 1)) for i in range(kills)]
    for moment in moments:
        time.sleep(max(0.0, moment - (time.perf_counter() - clock)))
        # Chosen at the last moment, the newest: max_requests may have
        # replaced any worker meanwhile, and the oldest is the nearest to
        # its own replacement.
        for _ in range(10):
            victim = server.worker_pids()[-1]
            offset = log_size(server)
            try:
                os.kill(victim, signal.SIGKILL)
                break
            except ProcessLookupError:
                continue
        killed_at = time.perf_counter() - clock
        respawn = wait_for_respawn(server, victim, offset, clock)
        print(
            f"   SIGKILL to {victim} at {killed_at:.2f} s:"
            f" {respawn.describe(killed_at)}"
        )
        if respawn.whole_at is None:
            problems.append(f"kill of {victim}: {respawn.describe(killed_at)}")
    report = run.wait()
    print(f"   {describe_wrk(report)}")
    # A worker holds one request per thread: each kill can fail as many.
    if report.non_2xx or report.socket_errors > kills * IN_FLIGHT_PER_KILL:
        problems.append(
            f"more failed than {IN_FLIGHT_PER_KILL} requests in flight per kill"
            f" ({kills} kills): {describe_wrk(report)}"
        )
    else:
        print(
            f"   {report.socket_errors} requests in flight in the {kills} killed"
            f" workers (at most {IN_FLIGHT_PER_KILL} each: their connections"
            " closed before an answer, wrk's read errors); every other request"
            " was answered"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    if not 8 <= args.seconds <= 120:
        parser.error(f"--seconds must be within 8 … 120; got {args.seconds}")
    if not 1 <= args.kills <= 20:
        parser.error(f"--kills must be within 1 … 20; got {args.kills}")

    loadkit.wrk_executable()
    print(
        f"load: wrk, 1 thread, {CONNECTIONS} connections, {args.seconds} s per"
        " phase, cheap requests in turn"
    )
    print(loadkit.machine_line())

    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kill-worker-") as directory:
        workdir = Path(directory)
        manifest = loadkit.write_manifest(workdir, "cheap", cheap_kinds())
        with Gunicorn(workdir / "gunicorn.log") as server:
            originals = server.worker_pids()
            print(
                f"gunicorn --config {loadkit.GUNICORN_CONFIG}:"
                f" {server.workers_line()} {originals}"
            )
            print()
            phase_busy_worker(server, manifest, args.seconds, problems)
            print()
            phase_cheap_workers(server, manifest, args.seconds, args.kills, problems)
            print()

            status, _ = loadkit.http_get(server.port, "/healthz", timeout=10)
            workers = server.worker_pids()
            print(
                f"after the kills: workers {workers} (at the start {originals}),"
                f" GET /healthz {status}"
            )
            if status != 200:
                problems.append(f"GET /healthz answered {status} after the kills")
            if len(workers) != len(originals):
                problems.append(f"{len(workers)} workers at the end, not {originals}")
            log = server.log_text().splitlines()
        print("the master's log at each kill (SIGKILL noticed, worker forked):")
        for index, line in enumerate(log):
            if "SIGKILL" not in line:
                continue
            booted = next((x for x in log[index:] if "Booting worker" in x), None)
            print(f"   {line}")
            print(f"   {booted or '(no worker booted after it)'}")
        recycled = sum("Autorestarting worker" in line for line in log)
        print(
            f"workers also recycled by max_requests during the run: {recycled}"
            " (each finishes its request first: none failed from that)"
        )

    print()
    if problems:
        print("NOT as expected:")
        for problem in problems:
            print(f"   {problem}")
    else:
        print(
            "as expected: only the killed workers' in-flight requests failed, and"
            " the master replaced every killed worker"
        )
    print(loadkit.rerun_line("benchmarks/kill_worker.py", sys.argv[1:]))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
