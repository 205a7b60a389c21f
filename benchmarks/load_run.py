"""A bounded load run: cheap and budget-limited requests at once, errors and latency.

Sixteen clients on 127.0.0.1 for ``--seconds`` (default 40), each kind of
request from its own wrk process (one thread each), so that every kind has
its own latency percentiles:

  cheap      4 × GET /v1/schemes
             4 × POST /v1/recommendations, examples/mlp-3layer.spec.json
             4 × POST /v1/recommendations, examples/gpt2-small.spec.json
  expensive  2 × POST /v1/statistics, GPT-2 small, both methods, Monte Carlo
                 forward-only with 8 seeds of a batch of 15 (the most the
                 default compute budget allows; about 3 s of one core)
             2 × POST /v1/mup/coord-check, the README's (about 1.3 s)

The expensive bodies get a fresh seed on every request, so no response cache
answers them; the cheap ones are the same request again and again. Beside
the load, a probe sends GET /healthz once every 0.25 s (one at a time, a new
connection each, 60 s timeout) and records each latency.

The report: per kind, answers, requests/s, p50, p99 and max latency ("-"
when none was answered within the run), non-2xx answers and socket errors
(wrk's connect, read, write and timeout counts); the probe's p50, p99 and
max and how many checks took over 1 s. The exit status is 1 when any
request failed (``--check``: also when a health check took over 1 s).

The service runs as ``make serve`` runs it (``gunicorn --config
service/gunicorn.conf.py``: gthread workers of 6 threads that accept only
with a thread free, each running at most 2 multi-second computations and
queueing 2 more, refusing others with 503 busy). ``--flood`` sends the
sixteen clients all for multi-second requests instead (8 statistics, 8
coordinate checks): more than the workers take, so 503 busy answers are
expected and counted apart, and the question is whether /healthz still
answers within 1 s. ``--compare`` runs the same load again on alternatives:
four sync workers; gthread workers that accept every connection and queue
it for their threads; bounded connections without the compute gate
(``INITLAB_MAX_RUNNING_COMPUTATIONS=0``); and bounded connections with
recycling (``--max-requests 1000``): a gthread worker that reaches
max_requests stops accepting until its last request, a multi-second one
too, is done. ``--gunicorn "OPTIONS"`` runs one configuration of your own
instead.

Usage: python benchmarks/load_run.py [--seconds S] [--flood] [--compare]
[--gunicorn "--worker-class gthread --threads 8"] [--check]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import loadkit
from loadkit import Gunicorn, HealthProbe, ProbeResult, RequestKind, WrkReport

HEALTH_GOAL_SECONDS = 1.0
PROBE_INTERVAL_SECONDS = 0.25
BUSY_STATUS = 503
# (gunicorn options, environment) of each alternative to the configured one.
NO_GATE = {"INITLAB_MAX_RUNNING_COMPUTATIONS": "0"}
ALTERNATIVES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    # One thread: with more, gunicorn runs a "sync" worker as gthread.
    "sync, 4 workers": (
        ("--worker-class", "sync", "--workers", "4", "--threads", "1"),
        NO_GATE,
    ),
    # worker_connections 1000 (gunicorn's default): every connection accepted
    # and queued for the threads.
    "gthread 2 × 6, unbounded connections": (
        ("--worker-connections", "1000"),
        NO_GATE,
    ),
    "gthread 2 × 6, bounded, no compute gate": ((), NO_GATE),
    # A gthread worker at its max_requests stops accepting and finishes its
    # requests first, a multi-second one too, before the master replaces it.
    "configured, max_requests 1000": (("--max-requests", "1000"), {}),
}


@dataclass(frozen=True)
class Client:
    """A group of identical clients: their request and how many connections."""

    kind: RequestKind
    connections: int
    expensive: bool
    short: str


def clients(flood: bool = False) -> list[Client]:
    if flood:
        return [
            Client(loadkit.gpt2_statistics(), 8, True, "stats gpt2"),
            Client(loadkit.coord_check(), 8, True, "coord-check"),
        ]
    return [
        Client(loadkit.get("schemes", "/v1/schemes"), 4, False, "schemes"),
        Client(loadkit.recommendations("mlp-3layer"), 4, False, "rec. mlp"),
        Client(loadkit.recommendations("gpt2-small"), 4, False, "rec. gpt2"),
        Client(loadkit.gpt2_statistics(), 2, True, "stats gpt2"),
        Client(loadkit.coord_check(), 2, True, "coord-check"),
    ]


@dataclass
class Outcome:
    """One configuration's run: each client group's wrk report and the probe."""

    label: str
    workers: str
    reports: list[tuple[Client, WrkReport]]
    probe: list[ProbeResult]
    # In a flood, 503 busy answers are the service refusing more than it takes.
    flood: bool = False

    @property
    def request_failures(self) -> int:
        """Failed requests: socket errors and non-2xx answers (in a flood, but 503)."""
        failures = sum(report.failures for _, report in self.reports)
        return failures - self.busy if self.flood else failures

    @property
    def busy(self) -> int:
        return sum(self.busy_of(report) for _, report in self.reports)

    @staticmethod
    def busy_of(report: WrkReport) -> int:
        return report.statuses.get(BUSY_STATUS, 0)

    @property
    def probe_failures(self) -> int:
        return sum(1 for check in self.probe if check.status != 200)

    @property
    def probe_seconds(self) -> list[float]:
        return [check.seconds for check in self.probe]

    @property
    def slow_checks(self) -> int:
        return sum(1 for s in self.probe_seconds if s > HEALTH_GOAL_SECONDS)


def run_configuration(
    label: str,
    options: tuple[str, ...],
    environment: dict[str, str],
    groups: list[Client],
    seconds: int,
    workdir: Path,
    number: int,
) -> Outcome:
    slug = f"run{number}"
    manifests = [
        loadkit.write_manifest(workdir, f"{slug}-{index}", [group.kind])
        for index, group in enumerate(groups)
    ]
    log = workdir / f"{slug}.log"
    with Gunicorn(log, options=options, environment=environment) as server:
        # Every kind once before the clock starts: each must answer 200.
        for group in groups:
            status, body = loadkit.http_request(server.port, group.kind, timeout=60.0)
            if status != 200:
                raise RuntimeError(
                    f"{group.kind.name} answered {status} before the run:"
                    f" {body[:500]!r}"
                )

        probe = HealthProbe(server.port, interval=PROBE_INTERVAL_SECONDS)
        runs = [
            loadkit.WrkRun(
                server.url, manifest, connections=group.connections, seconds=seconds
            )
            for group, manifest in zip(groups, manifests, strict=True)
        ]
        probe.start()
        reports = [run.wait() for run in runs]
        checks = probe.stop()
        workers = server.workers_line()

    flood = all(group.expensive for group in groups)
    pairs = list(zip(groups, reports, strict=True))
    return Outcome(label, workers, pairs, checks, flood)


def latency(report: WrkReport, percent: float | None) -> str:
    """A percentile (the maximum for None) in ms; "-" when nothing was answered."""
    if not report.requests:
        return "-"
    return f"{report.max_ms if percent is None else report.p(percent):.1f}"


def print_outcome(outcome: Outcome, command: str) -> None:
    print(f"== {outcome.label}: {command}, {outcome.workers}")
    print(
        f"{'kind':32} {'clients':>7} {'answers':>7} {'req/s':>7} {'p50 ms':>8}"
        f" {'p99 ms':>8} {'max ms':>8} {'non-2xx':>7} {'socket':>6}"
    )
    for group, report in outcome.reports:
        label = ("expensive: " if group.expensive else "cheap: ") + group.kind.name
        print(
            f"{label:32} {group.connections:>7} {report.requests:>7}"
            f" {report.rate:7.1f} {latency(report, 50):>8} {latency(report, 99):>8}"
            f" {latency(report, None):>8} {report.non_2xx:>7}"
            f" {report.socket_errors:>6}"
        )
        odd = {s: n for s, n in report.statuses.items() if not 200 <= s < 300}
        if odd or report.socket_errors:
            print(f"{'':32} statuses {dict(report.statuses)}, wrk {report.errors}")

    seconds = outcome.probe_seconds
    print(
        f"health probe: {len(seconds)} checks of GET /healthz, one every"
        f" {PROBE_INTERVAL_SECONDS:g} s or right after a slower one;"
        f" p50 {1000 * loadkit.percentile(seconds, 50):.1f} ms,"
        f" p99 {1000 * loadkit.percentile(seconds, 99):.1f} ms,"
        f" max {1000 * max(seconds):.1f} ms; over {HEALTH_GOAL_SECONDS:g} s:"
        f" {outcome.slow_checks}; failed: {outcome.probe_failures}"
    )
    for check in outcome.probe:
        if check.status != 200:
            print(
                f"  check at {check.at:.2f} s: {check.error or check.status}"
                f" after {check.seconds:.2f} s"
            )
    non_2xx = sum(report.non_2xx for _, report in outcome.reports)
    socket_errors = sum(report.socket_errors for _, report in outcome.reports)
    print(
        f"zero errors: {'yes' if not outcome.request_failures else 'NO'}"
        f" (non-2xx {non_2xx}, of them {outcome.busy} × 503 busy"
        f"{', expected in a flood' if outcome.flood else ''},"
        f" socket errors {socket_errors}, failed health checks"
        f" {outcome.probe_failures})"
    )
    print(
        f"health checks within {HEALTH_GOAL_SECONDS:g} s:"
        f" {'yes' if not outcome.slow_checks else 'NO'}"
        f" (max {max(seconds):.2f} s)"
    )
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--flood", action="store_true")
    parser.add_argument("--gunicorn", default=None, metavar="OPTIONS")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if not 5 <= args.seconds <= 600:
        parser.error(f"--seconds must be within 5 … 600; got {args.seconds}")

    loadkit.wrk_executable()
    configurations: list[tuple[str, tuple[tuple[str, ...], dict[str, str]]]] = [
        ("as configured", ((), {}))
    ]
    if args.gunicorn is not None:
        configurations = [(args.gunicorn, (tuple(shlex.split(args.gunicorn)), {}))]
    if args.compare:
        configurations += list(ALTERNATIVES.items())

    groups = clients(flood=args.flood)
    total = sum(group.connections for group in groups)
    print(
        f"{total} clients for {args.seconds} s on 127.0.0.1, one wrk process (1"
        " thread) per kind of request; wrk, the probe and the workers share the"
        " machine's cores"
    )
    print(loadkit.machine_line())
    print()

    outcomes = []
    with tempfile.TemporaryDirectory(prefix="load-run-") as directory:
        for number, (label, (options, environment)) in enumerate(configurations):
            command = shlex.join(
                [
                    *(f"{name}={value}" for name, value in environment.items()),
                    "gunicorn",
                    "--config",
                    loadkit.GUNICORN_CONFIG,
                    *options,
                ]
            )
            begun = time.monotonic()
            outcome = run_configuration(
                label,
                options,
                environment,
                groups,
                args.seconds,
                Path(directory),
                number,
            )
            outcomes.append(outcome)
            print_outcome(outcome, f"{command} ({time.monotonic() - begun:.0f} s)")

    if len(outcomes) > 1:
        print("side by side: p99 ms of each kind, and the health probe")
        names = [group.short for group, _ in outcomes[0].reports]
        print(
            f"{'configuration':40}"
            + "".join(f" {name:>12}" for name in names)
            + f" {'health p99':>10} {'health max':>10} {'errors':>6}"
        )
        for outcome in outcomes:
            seconds = outcome.probe_seconds
            print(
                f"{outcome.label:40}"
                + "".join(f" {latency(r, 99):>12}" for _, r in outcome.reports)
                + f" {1000 * loadkit.percentile(seconds, 99):10.1f}"
                f" {1000 * max(seconds):10.1f}"
                f" {outcome.request_failures + outcome.probe_failures:>6}"
            )
        print()

    print(loadkit.rerun_line("benchmarks/load_run.py", sys.argv[1:]))
    failed = any(o.request_failures or o.probe_failures for o in outcomes)
    slow = any(o.slow_checks for o in outcomes[:1])
    if failed or (args.check and slow):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
