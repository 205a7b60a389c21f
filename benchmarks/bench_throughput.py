"""Throughput: POST /v1/recommendations of GPT-2 small against a minimal Flask endpoint.

Goal: the service answers the same ``POST /v1/recommendations`` request
(``{"spec": examples/gpt2-small.spec.json}``, the same body every time) at no
less than half the rate gunicorn and Flask reach with no work at all:
requests/s of the service over requests/s of ``benchmarks/minimal_app.py``
(``POST /minimal``: reads the body, answers ``{"status": "ok", ...}``) ≥ 0.5.

Both are served by the same command (``gunicorn --config
service/gunicorn.conf.py``, its workers, worker class and settings) on free
ports of 127.0.0.1, started together, and get the same request body from wrk
(``benchmarks/wrk_mix.lua``; one wrk thread, so that the client takes at most
one of the cores the workers also run on). When the service has a response
cache (``INITLAB_RESPONSE_CACHE_BYTES``), a third server runs with it off
(``INITLAB_RESPONSE_CACHE_BYTES=0``): the rate of computing every answer.

Each server gets a 2 s warm-up, then ``--rounds`` runs of ``--seconds``
each, interleaved (minimal, service, service without cache, minimal, …), so
that load coming and going on the machine falls on all alike. Requests/s is
every answer over every round's seconds; p50 and p99 are the medians of the
rounds' values (wrk's histogram). Any non-2xx answer or socket error makes
the exit status 1; ``--check`` also exits 1 when the ratio is under the goal.

Usage: python benchmarks/bench_throughput.py [--rounds N] [--seconds S]
[--connections N] [--check]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import loadkit
from loadkit import Gunicorn, RequestKind, WrkReport

GOAL_RATIO = 0.5
WARMUP_SECONDS = 2
SPEC_NAME = "gpt2-small"


@dataclass
class Target:
    """One server under test and the request wrk sends it."""

    label: str
    server: Gunicorn
    kind: RequestKind
    manifest: Path | None = None
    runs: list[WrkReport] = field(default_factory=list)

    @property
    def rate(self) -> float:
        seconds = sum(run.seconds for run in self.runs)
        return sum(run.requests for run in self.runs) / seconds if seconds else 0.0

    def median_p(self, percent: float) -> float:
        return statistics.median(run.p(percent) for run in self.runs)

    @property
    def failures(self) -> int:
        return sum(run.failures for run in self.runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    for name in ("rounds", "seconds", "connections"):
        if getattr(args, name) < 1:
            parser.error(
                f"--{name} must be a positive integer; got {getattr(args, name)}"
            )

    loadkit.wrk_executable()
    service_kind = loadkit.recommendations(SPEC_NAME)
    minimal_kind = RequestKind("minimal", "POST", "/minimal", service_kind.body)
    cache = loadkit.service_has_response_cache()

    print(
        f"POST /v1/recommendations of examples/{SPEC_NAME}.spec.json"
        f" ({len(service_kind.body or b'')}-byte body, the same on every request)"
        " against POST /minimal of benchmarks/minimal_app.py (the same body read,"
        " small JSON answered)"
    )
    print(
        f"load: wrk with 1 thread and {args.connections} connections per run"
        f" (wrk shares the machine's cores with the workers), {args.rounds}"
        f" interleaved rounds of {args.seconds} s after a {WARMUP_SECONDS} s warm-up"
    )
    print(loadkit.machine_line())
    if not cache:
        print(
            f"the service has no response cache ({loadkit.CACHE_VARIABLE} is not read"
            " under service/initlab): every answer is computed"
        )
    print()

    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as directory:
        workdir = Path(directory)
        targets = [
            Target(
                "minimal",
                Gunicorn(workdir / "minimal.log", app=loadkit.MINIMAL_APP),
                minimal_kind,
            ),
            Target(
                "recommendations" + (" (cache on)" if cache else ""),
                Gunicorn(workdir / "service.log"),
                service_kind,
            ),
        ]
        if cache:
            targets.append(
                Target(
                    "recommendations (cache off)",
                    Gunicorn(
                        workdir / "service-no-cache.log",
                        environment={loadkit.CACHE_VARIABLE: "0"},
                    ),
                    service_kind,
                )
            )
        try:
            return run(targets, workdir, args)
        finally:
            for target in targets:
                target.server.stop()


def run(targets: list[Target], workdir: Path, args: argparse.Namespace) -> int:
    started = []
    for target in targets:
        try:
            target.server.start()
            started.append(target)
        except RuntimeError as error:
            print(f"{target.label}: not measured, the server did not start: {error}")
    targets[:] = started
    if len(targets) < 2:
        return 1
    for target in targets:
        print(
            f"{target.label}: gunicorn --config {loadkit.GUNICORN_CONFIG}"
            f" {target.server.command[-1]}, {target.server.workers_line()}"
        )
    print()

    bodies = {}
    for index, target in enumerate(targets):
        status, body = loadkit.http_request(
            target.server.port, target.kind, timeout=30.0
        )
        if status != 200:
            print(f"{target.label}: answered {status}: {body[:300]!r}")
            return 1
        bodies[target.label] = body
        target.manifest = loadkit.write_manifest(workdir, f"t{index}", [target.kind])
        loadkit.run_wrk(
            target.server.url,
            target.manifest,
            connections=args.connections,
            seconds=WARMUP_SECONDS,
        )

    print(
        f"{'round':>5}  {'target':30} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'max ms':>8} {'errors':>6}"
    )
    for round_number in range(1, args.rounds + 1):
        for target in targets:
            report = loadkit.run_wrk(
                target.server.url,
                target.manifest,
                connections=args.connections,
                seconds=args.seconds,
            )
            target.runs.append(report)
            print(
                f"{round_number:>5}  {target.label:30} {report.rate:9.1f}"
                f" {report.p(50):8.2f} {report.p(99):8.2f} {report.max_ms:8.1f}"
                f" {report.failures:>6}"
            )

    print()
    print(
        "over all rounds: req/s = answers / seconds; p50, p99 = median of the"
        " rounds' values"
    )
    print(
        f"{'target':30} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'answers':>8}"
        f" {'bytes/answer':>12}"
    )
    for target in targets:
        answers = sum(run.requests for run in target.runs)
        print(
            f"{target.label:30} {target.rate:9.1f} {target.median_p(50):8.2f}"
            f" {target.median_p(99):8.2f} {answers:8d}"
            f" {len(bodies[target.label]):12d}"
        )

    minimal, services = targets[0], targets[1:]
    print()
    passed = True
    for service in services:
        ratio = service.rate / minimal.rate
        pairs = zip(service.runs, minimal.runs, strict=True)
        per_round = ", ".join(f"{s.rate / m.rate:.2f}" for s, m in pairs)
        verdict = ratio >= GOAL_RATIO
        if service is services[0]:
            passed = verdict
        print(
            f"{service.label} / minimal = {ratio:.2f}  (goal ≥ {GOAL_RATIO:g}:"
            f" {'yes' if verdict else 'NO'}; per round {per_round})"
        )
    if len(services) == 2:
        on, off = services
        same = bodies[on.label] == bodies[off.label]
        print(
            f"cache on / cache off = {on.rate / off.rate:.2f}; the cached answer"
            f" is byte for byte the computed one: {'yes' if same else 'NO'}"
        )

    failures = sum(target.failures for target in targets)
    print(f"non-2xx answers and socket errors: {failures}")
    print(loadkit.rerun_line("benchmarks/bench_throughput.py", sys.argv[1:]))
    if failures:
        return 1
    if args.check and not passed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
