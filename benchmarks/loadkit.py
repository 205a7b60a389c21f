"""What the load scripts share: the service on a free port, wrk runs, /proc readings.

The scripts (``bench_throughput.py``, ``load_run.py``, ``kill_worker.py``,
``memory_growth.py``) each start gunicorn exactly as ``make serve`` does
(``gunicorn --config service/gunicorn.conf.py initlab.web.wsgi:app``, with
settings added on the command line when a script compares options), on a
free port of 127.0.0.1, and stop it at the end. Load comes from wrk (Debian's
package) running ``wrk_mix.lua``, which cycles through a list of requests and
reports its counts and latency percentiles as one JSON line. Memory and
worker processes are read from /proc, so the scripts run on Linux only.

The pieces that do no I/O (``percentile``, ``parse_wrk_report``,
``parse_stat``, ``parse_proc_net_tcp``, ``status_kib``) are tested in
tests/benchmarks.
"""

from __future__ import annotations

import http.client
import importlib.metadata
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO_ROOT / "benchmarks"
EXAMPLES = REPO_ROOT / "examples"
GUNICORN_CONFIG = "service/gunicorn.conf.py"
SERVICE_APP = "initlab.web.wsgi:app"
# benchmarks/minimal_app.py, imported by gunicorn from benchmarks/.
MINIMAL_APP = "minimal_app:app"
WRK_SCRIPT = BENCHMARKS / "wrk_mix.lua"
WRK_INSTALL = "make wrk   (or as root: apt-get install -y wrk)"
# Replaced in a request body by a fresh integer on every request (wrk_mix.lua).
SEED_PLACEHOLDER = "{{seed}}"
REPORT_PREFIX = "wrk-report "
START_DEADLINE_SECONDS = 60.0
STOP_DEADLINE_SECONDS = 30.0
# wrk's own default is 2 s, shorter than one budget-limited request.
WRK_TIMEOUT_SECONDS = 120
# The service's per-worker response cache: its size in bytes, 0 turns it off.
CACHE_VARIABLE = "INITLAB_RESPONSE_CACHE_BYTES"


# --- requests ----------------------------------------------------------------------


@dataclass(frozen=True)
class RequestKind:
    """One request the load sends again and again: its label, method, path, body."""

    name: str
    method: str
    path: str
    body: bytes | None = None

    @property
    def varies(self) -> bool:
        """Whether each request gets its own seed (so no cache can answer it)."""
        return self.body is not None and SEED_PLACEHOLDER.encode() in self.body


def example_spec(name: str) -> dict:
    """``examples/<name>.spec.json`` as a dict."""
    return json.loads((EXAMPLES / f"{name}.spec.json").read_text())


def json_body(document: Mapping, *, fresh_seed: bool = False) -> bytes:
    """The JSON of ``document``; with ``fresh_seed``, its ``seed`` set per request.

    The seed becomes the placeholder that wrk_mix.lua replaces with a new
    integer on every request.
    """
    if not fresh_seed:
        return json.dumps(document).encode()

    marker = "__fresh_seed__"
    text = json.dumps({**document, "seed": marker})
    return text.replace(json.dumps(marker), SEED_PLACEHOLDER).encode()


def get(name: str, path: str) -> RequestKind:
    return RequestKind(name, "GET", path)


def post(name: str, path: str, document: Mapping, *, fresh_seed=False) -> RequestKind:
    return RequestKind(name, "POST", path, json_body(document, fresh_seed=fresh_seed))


def gpt2_statistics() -> RequestKind:
    """GPT-2 small's statistics, both methods, as much as the default budget allows.

    Forward-only Monte Carlo (kernel sampling) with 8 seeds of a batch of 15:
    the largest batch the service's 422 names for this spec under
    ``INITLAB_COMPUTE_BUDGET`` 2e11 (about 3 s of one core). A fresh seed on
    every request, so a response cache never answers it.
    """
    body = {
        "spec": example_spec("gpt2-small"),
        "method": "both",
        "backward": False,
        "batch_size": 15,
        "seeds": 8,
    }
    return post("statistics gpt2-small", "/v1/statistics", body, fresh_seed=True)


def coord_check() -> RequestKind:
    """The README's coordinate check (widths 64 … 2048, Adam, 4 steps, 3 seeds).

    About 1.3 s of one core; a fresh seed on every request.
    """
    spec = json.loads(
        (REPO_ROOT / "tests" / "fixtures" / "mup" / "coord-mlp.spec.json").read_text()
    )
    body = {
        "spec": spec,
        "base_dims": {"w": 64},
        "widths": [64, 128, 256, 512, 1024, 2048],
        "optimizer": "adam",
        "lr": 0.01,
        "steps": 4,
        "seeds": 3,
    }
    return post("coord-check", "/v1/mup/coord-check", body, fresh_seed=True)


def recommendations(spec_name: str) -> RequestKind:
    return post(
        f"recommendations {spec_name}",
        "/v1/recommendations",
        {"spec": example_spec(spec_name)},
    )


def write_manifest(directory: Path, name: str, kinds: Sequence[RequestKind]) -> Path:
    """The file wrk_mix.lua reads: one ``METHOD PATH BODY_FILE`` line per kind."""
    if not kinds:
        raise ValueError(f"manifest {name!r} needs at least one request kind; got none")

    lines = []
    for index, kind in enumerate(kinds):
        body_file = "-"
        if kind.body is not None:
            path = directory / f"{name}-{index}.json"
            path.write_bytes(kind.body)
            body_file = str(path)
        lines.append(f"{kind.method} {kind.path} {body_file}\n")
    manifest = directory / f"{name}.mix"
    manifest.write_text("".join(lines))

    return manifest


# --- wrk ------------------------------------------------------------------------------


def wrk_executable() -> str:
    """wrk's path; stops the script with the command that installs it."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(f"wrk is not installed; install it with: {WRK_INSTALL}")

    return found


def wrk_version() -> str:
    done = subprocess.run(
        [wrk_executable(), "--version"], capture_output=True, text=True, check=False
    )
    first = (done.stdout or done.stderr).splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


@dataclass(frozen=True)
class WrkReport:
    """What one wrk run counted, from the JSON line wrk_mix.lua writes.

    ``errors`` are wrk's own counters: ``connect``, ``read`` (the connection
    closed or reset before a whole answer), ``write``, ``timeout`` and
    ``status`` (answers of 400 and above). ``statuses`` counts every answer
    by its HTTP status. Latencies are in milliseconds.
    """

    requests: int
    seconds: float
    bytes: int
    errors: Mapping[str, int]
    statuses: Mapping[int, int]
    latency_ms: Mapping[str, float]
    mean_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        """Answers per second over the run."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def socket_errors(self) -> int:
        """Requests that got no answer: connect, read, write errors and timeouts."""
        return sum(self.errors.get(kind, 0) for kind in SOCKET_ERRORS)

    @property
    def failures(self) -> int:
        return self.non_2xx + self.socket_errors

    def p(self, percent: float) -> float:
        """The latency percentile wrk reported, in ms (50, 75, 90, 99 or 99.9)."""
        return self.latency_ms[f"{percent:g}"]


SOCKET_ERRORS = ("connect", "read", "write", "timeout")


def parse_wrk_report(output: str) -> WrkReport:
    """Read the ``wrk-report {...}`` line of wrk_mix.lua from wrk's output.

    Raises ValueError when the line is missing (wrk failed before its end, or
    ran without ``-s benchmarks/wrk_mix.lua``) or is not the expected JSON.
    """
    lines = [line for line in output.splitlines() if line.startswith(REPORT_PREFIX)]
    if not lines:
        raise ValueError(
            f"no line starting with {REPORT_PREFIX.strip()!r} in wrk's output; run"
            f" wrk with -s {WRK_SCRIPT.relative_to(REPO_ROOT)}. Its output ends:\n"
            f"{output[-2000:]}"
        )

    raw = json.loads(lines[-1][len(REPORT_PREFIX) :])
    latency = raw["latency_us"]
    return WrkReport(
        requests=int(raw["requests"]),
        seconds=raw["duration_us"] / 1e6,
        bytes=int(raw["bytes"]),
        errors={name: int(count) for name, count in raw["errors"].items()},
        statuses={int(status): int(n) for status, n in raw["statuses"].items()},
        latency_ms={p: us / 1000 for p, us in latency["percentiles"].items()},
        mean_ms=latency["mean"] / 1000,
        max_ms=latency["max"] / 1000,
    )


class WrkRun:
    """One wrk process in the background: a list of request kinds against a URL.

    One wrk thread by default (``-t1``): the server shares the machine's cores
    with it, and one thread keeps a handful of connections busy.
    """

    def __init__(
        self,
        url: str,
        manifest: Path,
        *,
        connections: int,
        seconds: float,
        threads: int = 1,
        stop_after: int = 0,
    ) -> None:
        if connections < threads:
            raise ValueError(
                f"connections must be at least threads ({threads}); got {connections}"
            )
        self.command = [
            wrk_executable(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, math.ceil(seconds))}s",
            f"--timeout={WRK_TIMEOUT_SECONDS}s",
            "--latency",
            "-s",
            str(WRK_SCRIPT),
            url,
            "--",
            str(manifest),
            str(stop_after),
        ]
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def interrupt(self) -> None:
        """End the run now; wrk still reports what it counted (its SIGINT)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)

    def wait(self) -> WrkReport:
        output, _ = self.process.communicate()
        self.output = output
        return parse_wrk_report(output)


def run_wrk(
    url: str, manifest: Path, *, connections: int, seconds: float, threads: int = 1
) -> WrkReport:
    return WrkRun(
        url, manifest, connections=connections, seconds=seconds, threads=threads
    ).wait()


# --- the service ----------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gunicorn:
    """gunicorn with the service's config file on a free port of 127.0.0.1.

    ``options`` go on the command line after ``--config``, where they win over
    the file (``--max-requests 0``, ``--worker-class gthread``); ``app`` is
    the service unless a script serves ``minimal_app.py``. Output goes to
    ``log_path``. Use as a context manager: it waits for ``/healthz`` (or
    ``health_path``) on entry and stops master and workers on exit.
    """

    def __init__(
        self,
        log_path: Path,
        *,
        app: str = SERVICE_APP,
        options: Sequence[str] = (),
        environment: Mapping[str, str] | None = None,
        health_path: str = "/healthz",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.health_path = health_path
        executable = str(Path(sys.executable).parent / "gunicorn")
        pythonpath = ["--pythonpath", str(BENCHMARKS)] if app == MINIMAL_APP else []
        self.command = [
            executable,
            "--config",
            GUNICORN_CONFIG,
            *pythonpath,
            *options,
            app,
        ]
        self.environment = {
            **os.environ,
            **(environment or {}),
            "PORT": str(self.port),
            "BIND": f"127.0.0.1:{self.port}",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Gunicorn:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO_ROOT,
                env=self.environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group, so that a kill reaches the workers too.
                start_new_session=True,
            )
        self.wait_until_healthy()

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("gunicorn is not started; call start() first")
        return self.process.pid

    def wait_until_healthy(self) -> None:
        """Wait for 200 on the health path and for every worker to be up."""
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                status = None if self.process is None else self.process.returncode
                raise RuntimeError(
                    f"gunicorn ({shlex.join(self.command)}) exited with status"
                    f" {status}; its log:\n{self.tail()}"
                )
            try:
                status, _ = http_get(self.port, self.health_path, timeout=2.0)
            except OSError:
                status = None
            if status == 200 and len(self.worker_pids()) >= self.expected_workers():
                return
            time.sleep(0.1)

        raise RuntimeError(
            f"gunicorn did not answer {self.health_path} within"
            f" {START_DEADLINE_SECONDS:.0f} s; its log:\n{self.tail()}"
        )

    def expected_workers(self) -> int:
        """The worker count gunicorn was asked for (command line, env, default 2)."""
        for flag in ("--workers", "-w"):
            if flag in self.command:
                return int(self.command[self.command.index(flag) + 1])
        return int(self.environment.get("WEB_CONCURRENCY") or 2)

    def worker_pids(self) -> list[int]:
        return children_of(self.pid)

    def workers_line(self) -> str:
        """``2 sync workers``: the workers now, and the class gunicorn logged."""
        found = re.search(r"Using worker: (\S+)", self.log_text())
        worker_class = found.group(1) if found else "(unlogged class)"
        return f"{len(self.worker_pids())} {worker_class} workers"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request_lines(self, path: str | None = None) -> list[dict]:
        """The JSON lines the service logged, one per request (for ``path`` only)."""
        entries = []
        for line in self.log_text().splitlines():
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "status" in entry and (path is None or entry.get("path") == path):
                entries.append(entry)
        return entries

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the whole process group if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return

        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def http_request(
    port: int, kind: RequestKind, *, timeout: float, seed: int = 0
) -> tuple[int, bytes]:
    """Send one request of ``kind`` to 127.0.0.1:``port`` on a new connection.

    A body's seed placeholder becomes ``seed``. Returns the status and body.
    """
    body = kind.body
    headers = {}
    if body is not None:
        body = body.replace(SEED_PLACEHOLDER.encode(), str(seed).encode())
        headers["Content-Type"] = "application/json"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(kind.method, kind.path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def http_get(port: int, path: str, *, timeout: float) -> tuple[int, bytes]:
    """GET ``path`` from 127.0.0.1:``port`` on a new connection: status, body."""
    return http_request(port, get(path, path), timeout=timeout)


# --- /proc ----------------------------------------------------------------------------


def parse_stat(text: str) -> tuple[int, str, int]:
    """(pid, state, parent pid) from the text of ``/proc/<pid>/stat``.

    The command name (field 2) sits in parentheses and may itself hold spaces
    and parentheses, so the fields after it are read from the last ``)``
    (proc(5): state is field 3, ppid field 4).
    """
    pid = int(text.split(" ", 1)[0])
    after_name = text[text.rindex(")") + 1 :].split()
    return pid, after_name[0], int(after_name[1])


def children_of(parent: int) -> list[int]:
    """The live children of ``parent``, ascending (from every /proc/<pid>/stat).

    A child that has exited but is not yet reaped (state Z or X) is not live.
    """
    children = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                pid, state, ppid = parse_stat(stat.read())
        except (OSError, ValueError, IndexError):
            continue  # The process ended between the listing and the read.
        if ppid == parent and state not in ("Z", "X"):
            children.append(pid)

    return sorted(children)


def status_kib(text: str, field_name: str) -> int:
    """A ``kB`` field (``VmRSS``, ``Pss``) of /proc/<pid>/status or smaps_rollup."""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == field_name:
            number, unit = value.split()
            if unit != "kB":
                raise ValueError(f"{field_name} is in {unit!r}, expected 'kB'")
            return int(number)

    raise ValueError(f"no field {field_name!r} in the text")


def memory_kib(pid: int) -> dict[str, int]:
    """A process's resident set (VmRSS) and proportional set (Pss), in KiB.

    RSS counts every page the process maps, shared or not: summed over
    workers forked from one master it counts the pages they share once per
    worker. PSS divides each shared page among its sharers, so its sum over
    processes is the memory they take together.
    """
    with open(f"/proc/{pid}/status") as status:
        rss = status_kib(status.read(), "VmRSS")
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        pss = status_kib(rollup.read(), "Pss")

    return {"rss": rss, "pss": pss}


@dataclass(frozen=True)
class TcpSocket:
    """One line of /proc/net/tcp: addresses as (IPv4 text, port), state, inode."""

    local: tuple[str, int]
    remote: tuple[str, int]
    state: int
    inode: int


def _address(hex_address: str) -> tuple[str, int]:
    # The IPv4 address is the 32-bit word in host byte order, printed in hex.
    hex_ip, hex_port = hex_address.split(":")
    packed = int(hex_ip, 16).to_bytes(4, sys.byteorder)
    return socket.inet_ntoa(packed), int(hex_port, 16)


def parse_proc_net_tcp(text: str) -> list[TcpSocket]:
    """The sockets listed in /proc/net/tcp (its header line skipped)."""
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        sockets.append(
            TcpSocket(
                local=_address(fields[1]),
                remote=_address(fields[2]),
                state=int(fields[3], 16),
                inode=int(fields[9]),
            )
        )

    return sockets


def socket_owner(pids: Iterable[int], local_port: int, remote_port: int) -> int | None:
    """Which of ``pids`` holds the loopback connection local_port ← remote_port."""
    with open("/proc/net/tcp") as table:
        # Thousands of closed loopback connections may wait there: parse
        # only the lines that hold the remote port.
        needle = f":{remote_port:04X} "
        lines = [line for line in table if needle in line]
    inodes = {
        entry.inode
        for entry in parse_proc_net_tcp("header\n" + "".join(lines))
        if entry.local[1] == local_port and entry.remote[1] == remote_port
    }
    wanted = {f"socket:[{inode}]" for inode in inodes if inode}
    for pid in pids:
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(f"/proc/{pid}/fd/{descriptor}") in wanted:
                    return pid
            except OSError:
                continue

    return None


# --- statistics and the health probe --------------------------------------------------


def percentile(values: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile: the smallest value with ≥ percent% at or below.

    The k-th smallest value, k = ⌈percent/100 · n⌉ (at least 1): definition 1
    of Hyndman and Fan, "Sample quantiles in statistical packages" (1996),
    numpy's ``percentile(..., method="inverted_cdf")``. Always one of the
    values, as wrk's histogram percentiles are.
    """
    if not values:
        raise ValueError("percentile of no values: measure at least one")
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be within [0, 100]; got {percent!r}")

    ordered = sorted(values)
    # In binary floating point a product the decimals make whole can land a
    # hair above it (0.07 · 100 = 7.000000000000001): take the ceiling of a
    # hair less.
    rank = max(1, math.ceil(percent * len(ordered) / 100 - 1e-9))
    return ordered[rank - 1]


@dataclass
class ProbeResult:
    """One health check: when it started (s from the probe's start), its latency."""

    at: float
    seconds: float
    status: int | None
    error: str | None = None


@dataclass
class HealthProbe:
    """GET the health path once every ``interval`` seconds in a thread of its own.

    One check at a time, on a new connection each; a check that takes longer
    than the interval is followed by the next at once (missed ticks are not
    made up). ``timeout`` is long so that the real latency is measured, not
    cut off.
    """

    port: int
    interval: float = 0.25
    timeout: float = 60.0
    path: str = "/healthz"
    results: list[ProbeResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._started = time.perf_counter()
        self._thread.start()

    def stop(self) -> list[ProbeResult]:
        self._stop.set()
        self._thread.join()
        return self.results

    def _run(self) -> None:
        next_tick = self._started
        while not self._stop.is_set():
            begin = time.perf_counter()
            status, error = None, None
            try:
                status, _ = http_get(self.port, self.path, timeout=self.timeout)
            except OSError as failure:
                error = f"{type(failure).__name__}: {failure}"
            end = time.perf_counter()
            self.results.append(
                ProbeResult(begin - self._started, end - begin, status, error)
            )
            next_tick = max(next_tick + self.interval, end)
            self._stop.wait(next_tick - time.perf_counter())


def service_has_response_cache() -> bool:
    """Whether the service reads INITLAB_RESPONSE_CACHE_BYTES (from its source)."""
    sources = (REPO_ROOT / "service" / "initlab").rglob("*.py")
    return any(
        "response_cache_bytes" in path.read_text(errors="replace").lower()
        for path in sources
    )


# --- the report ---------------------------------------------------------------------


def version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_line() -> str:
    """Versions, CPUs and the load average, for the head of a report."""
    return (
        f"python {platform.python_version()}, gunicorn {version('gunicorn')},"
        f" flask {version('flask')}, {wrk_version()}, {os.cpu_count()} CPUs"
        f" ({platform.processor() or platform.machine()}), load average"
        f" {os.getloadavg()[0]:.2f} at the start"
    )


def rerun_line(script: str, argv: Sequence[str]) -> str:
    """The command that repeats this run, from the repository root."""
    return f"rerun: {shlex.join(['.venv/bin/python', script, *argv])}"
