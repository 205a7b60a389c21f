"""Memory after 1,000 and after 10,000 requests of a mix: does the service grow?

Goal: the resident set of the workers (VmRSS from /proc/<pid>/status, summed
over the master's children) after 10,000 requests is within 10% of the
same after 1,000 requests: RSS(10,000) / RSS(1,000) ≤ 1.10.

The mix, sent in turn by wrk (one thread, 4 connections) to the service on a
free port of 127.0.0.1: GET /v1/schemes, GET /v1/activations;
POST /v1/recommendations of GPT-2 small, ResNet-50, Llama-2-7B and the MLP;
POST /v1/statistics of the MLP (both methods) with a fresh seed every time
and of ResNet-50 (analytic); a µP table of GPT-2 small imported from its
Hugging Face config; a small coordinate check (widths 64 … 256, a fresh
seed); POST /v1/specs/import of GPT-2 small's config. Each takes from under
1 ms to about 50 ms of one core; the fresh seeds keep the Monte Carlo and
training paths computing while a response cache answers the other requests
from its second time on.

Requests are counted by the service's own log (one line per answer). wrk
stops after 1,000 answers, the workers' memory is read once every answer
is logged, then the same for 9,000 more. Three configurations, one after
the other, each on a new server:

  - as configured: ``max_requests`` 1000 (+ up to 100 of jitter) replaces
    each worker after about 1,000 requests, which bounds any growth;
  - recycling off (``--max-requests 0`` on gunicorn's command line, which
    wins over the config file), so that real growth shows;
  - recycling off and the response cache off
    (``INITLAB_RESPONSE_CACHE_BYTES=0``), when the service has the cache: the
    growth that is not the cache filling up to its bound.

RSS counts the pages the workers share with the master (preload_app) once
per worker; PSS, from /proc/<pid>/smaps_rollup, shares them out and is shown
beside it. The verdict reads RSS.

Usage: python benchmarks/memory_growth.py [--first N] [--total N]
[--only configured|no-recycling|no-cache]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import loadkit
from loadkit import Gunicorn, RequestKind

GOAL_RATIO = 1.10
CONNECTIONS = 4
SETTLE_SECONDS = 0.5
RUN_DEADLINE_SECONDS = 1800


def mix() -> list[RequestKind]:
    gpt2_config = json.loads((loadkit.EXAMPLES / "hf" / "gpt2-small.json").read_text())
    coord_spec = json.loads(
        (loadkit.REPO_ROOT / "tests/fixtures/mup/coord-mlp.spec.json").read_text()
    )
    imported = {"format": "huggingface", "config": gpt2_config}
    return [
        loadkit.get("schemes", "/v1/schemes"),
        loadkit.get("activations", "/v1/activations"),
        loadkit.recommendations("gpt2-small"),
        loadkit.recommendations("resnet50"),
        loadkit.recommendations("llama-2-7b"),
        loadkit.recommendations("mlp-3layer"),
        loadkit.post(
            "statistics mlp",
            "/v1/statistics",
            {"spec": loadkit.example_spec("mlp-3layer"), "method": "both"},
            fresh_seed=True,
        ),
        loadkit.post(
            "statistics resnet50",
            "/v1/statistics",
            {"spec": loadkit.example_spec("resnet50"), "method": "analytic"},
        ),
        loadkit.post(
            "mup table gpt2",
            "/v1/mup/table",
            {
                "spec": {"import": imported},
                "base_dims": {"d_model": 256, "d_ff": 1024, "n_heads": 4},
                "targets": [{}],
                "lr": 6e-4,
                "weight_decay": 0.1,
            },
        ),
        loadkit.post(
            "coord-check small",
            "/v1/mup/coord-check",
            {
                "spec": coord_spec,
                "base_dims": {"w": 64},
                "widths": [64, 128, 256],
                "steps": 3,
                "seeds": 1,
            },
            fresh_seed=True,
        ),
        loadkit.post("import gpt2", "/v1/specs/import", imported),
    ]


@dataclass(frozen=True)
class Reading:
    """The workers' memory at one checkpoint."""

    answered: int
    workers: list[int]
    description: str
    rss_kib: int
    pss_kib: int
    master_rss_kib: int
    recycled: int
    seconds: float


def read_memory(server: Gunicorn, answered: int, seconds: float) -> Reading:
    workers = server.worker_pids()
    memory = [loadkit.memory_kib(pid) for pid in workers]
    log = server.log_text()
    return Reading(
        answered=answered,
        workers=workers,
        description=server.workers_line(),
        rss_kib=sum(m["rss"] for m in memory),
        pss_kib=sum(m["pss"] for m in memory),
        master_rss_kib=loadkit.memory_kib(server.pid)["rss"],
        recycled=log.count("Autorestarting worker"),
        seconds=seconds,
    )


class AnswerCounter:
    """Counts the service's request lines in its log, reading only what is new."""

    def __init__(self, server: Gunicorn) -> None:
        self.path = server.log_path
        self.offset = 0
        self.count = 0

    def update(self) -> int:
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            chunk = log.read()
        # Only whole lines: a line being written is counted next time.
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        self.count += sum(
            1
            for line in chunk[:end].splitlines()
            if line.startswith(b"{") and b'"status"' in line
        )
        return self.count


def load_until(
    server: Gunicorn, manifest: Path, counter: AnswerCounter, target: int
) -> int:
    """Send the mix until the service has logged ``target`` answers in all.

    wrk stops itself after the missing number of answers; the answers still
    in flight then are waited for, so the count is exact when memory is read.
    """
    missing = target - counter.update()
    run = loadkit.WrkRun(
        server.url,
        manifest,
        connections=CONNECTIONS,
        seconds=RUN_DEADLINE_SECONDS,
        stop_after=missing,
    )
    while counter.update() < target and run.process.poll() is None:
        time.sleep(0.05)
    run.interrupt()
    report = run.wait()
    if report.failures:
        raise RuntimeError(
            f"the mix had failures: statuses {dict(report.statuses)}, wrk errors"
            f" {dict(report.errors)}"
        )
    # Settled: no new line for SETTLE_SECONDS.
    count = counter.update()
    while True:
        time.sleep(SETTLE_SECONDS)
        now = counter.update()
        if now == count:
            return now
        count = now


def run_configuration(
    options: tuple[str, ...],
    environment: dict[str, str],
    args: argparse.Namespace,
    workdir: Path,
) -> tuple[Reading, Reading, Reading]:
    manifest = loadkit.write_manifest(workdir, "mix", mix())
    log_path = workdir / f"{len(list(workdir.glob('*.log')))}.log"
    with Gunicorn(log_path, options=options, environment=environment) as server:
        # Every kind once, each must answer 200 (these count among the answers).
        for kind in mix():
            status, body = loadkit.http_request(server.port, kind, timeout=60.0)
            if status != 200:
                raise RuntimeError(f"{kind.name} answered {status}: {body[:500]!r}")
        counter = AnswerCounter(server)
        started = time.perf_counter()
        start = read_memory(server, counter.update(), 0.0)
        answered = load_until(server, manifest, counter, args.first)
        first = read_memory(server, answered, time.perf_counter() - started)
        answered = load_until(server, manifest, counter, args.total)
        last = read_memory(server, answered, time.perf_counter() - started)

    return start, first, last


def mib(kib: int) -> str:
    return f"{kib / 1024:9.1f}"


def print_readings(label: str, command: str, readings: tuple[Reading, ...]) -> float:
    print(f"== {label}: {command}, {readings[0].description}")
    print(
        f"{'after':>8} {'answers':>8} {'RSS MiB':>9} {'PSS MiB':>9}"
        f" {'master':>9} {'recycled':>8} {'s':>6}  workers"
    )
    for name, reading in zip(("start", "first", "last"), readings, strict=True):
        print(
            f"{name:>8} {reading.answered:>8} {mib(reading.rss_kib)}"
            f" {mib(reading.pss_kib)} {mib(reading.master_rss_kib)}"
            f" {reading.recycled:>8} {reading.seconds:6.0f}  {reading.workers}"
        )
    _, first, last = readings
    ratio = last.rss_kib / first.rss_kib
    pss_ratio = last.pss_kib / first.pss_kib
    print(
        f"RSS after {last.answered} / after {first.answered} = {ratio:.3f}"
        f" (goal ≤ {GOAL_RATIO:.2f}: {'yes' if ratio <= GOAL_RATIO else 'NO'});"
        f" PSS {pss_ratio:.3f}; growth"
        f" {(last.rss_kib - first.rss_kib) / 1024:+.1f} MiB RSS over"
        f" {last.answered - first.answered} answers"
    )
    print()
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", type=int, default=1000)
    parser.add_argument("--total", type=int, default=10000)
    parser.add_argument(
        "--only", choices=("configured", "no-recycling", "no-cache"), default=None
    )
    args = parser.parse_args()
    if not 0 < args.first < args.total:
        parser.error(
            f"--first and --total must satisfy 0 < first < total; got {args.first}"
            f" and {args.total}"
        )

    loadkit.wrk_executable()
    configurations = [
        (
            "configured",
            "as configured (max_requests of service/gunicorn.conf.py)",
            (),
            {},
        ),
        ("no-recycling", "recycling off", ("--max-requests", "0"), {}),
    ]
    if loadkit.service_has_response_cache():
        configurations.append(
            (
                "no-cache",
                "recycling off, response cache off",
                ("--max-requests", "0"),
                {loadkit.CACHE_VARIABLE: "0"},
            )
        )
    if args.only:
        configurations = [c for c in configurations if c[0] == args.only]
        if not configurations:
            parser.error(f"--only {args.only}: the service has no response cache")

    kinds = mix()
    print(
        f"{len(kinds)} kinds of request in turn ({', '.join(k.name for k in kinds)});"
        f" wrk with 1 thread and {CONNECTIONS} connections; memory read after"
        f" {args.first} and {args.total} answers"
    )
    print(loadkit.machine_line())
    print()

    ratios = []
    with tempfile.TemporaryDirectory(prefix="memory-growth-") as directory:
        for _, label, options, environment in configurations:
            readings = run_configuration(options, environment, args, Path(directory))
            words = [f"{name}={value}" for name, value in environment.items()]
            command = " ".join(
                [*words, "gunicorn", "--config", loadkit.GUNICORN_CONFIG, *options]
            )
            ratios.append(print_readings(label, command, readings))

    print(loadkit.rerun_line("benchmarks/memory_growth.py", sys.argv[1:]))
    # The first configuration is the verdict; the others show where memory goes.
    return 0 if ratios[0] <= GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
