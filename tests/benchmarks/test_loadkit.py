"""The pure helpers of the load scripts (benchmarks/loadkit.py), not the runs.

Percentiles against an exact rank computed with fractions, wrk's report line
as wrk_mix.lua writes it, and /proc parsing against what this very process
knows of itself.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import loadkit  # noqa: E402

# Captured from a one-second wrk run with wrk_mix.lua (wrk 4.1.0) against
# benchmarks/minimal_app.py, a third of the requests to a path it lacks.
WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:55925
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.60ms    6.56ms  66.37ms   96.16%
    Req/Sec   809.20    207.00     1.01k    90.00%
  Latency Distribution
     50%    2.06ms
     75%    4.25ms
     90%    6.78ms
     99%   43.95ms
  806 requests in 1.00s, 186.34KB read
  Non-2xx or 3xx responses: 269
Requests/sec:    802.66
Transfer/sec:    185.57KB
wrk-report {"requests":806,"duration_us":1004159,"bytes":190809,"errors":\
{"connect":0,"read":0,"write":0,"status":269,"timeout":0},"statuses":\
{"200":537,"404":269},"latency_us":{"min":219,"mean":3598.1,"max":66368,\
"percentiles":{"50":2059,"75":4248,"90":6780,"99":43949,"99.9":66368}}}
"""

DECIMAL_PERCENTS = ["0", "1", "7", "25", "50", "75", "90", "99", "99.9", "100"]


def exact_rank(percent: str, n: int) -> int:
    """⌈percent/100 · n⌉ in exact decimal arithmetic, at least 1."""
    return max(1, math.ceil(Fraction(percent) * n / 100))


# --- percentile --------------------------------------------------------------------


@given(
    st.lists(
        st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1, max_size=300
    ),
    st.sampled_from(DECIMAL_PERCENTS),
)
def test_percentile_is_the_value_at_the_exact_nearest_rank(values, percent):
    expected = sorted(values)[exact_rank(percent, len(values)) - 1]

    assert loadkit.percentile(values, float(percent)) == expected


@given(
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=200),
    st.integers(min_value=0, max_value=100),
)
def test_percentile_agrees_with_numpys_inverted_cdf(values, percent):
    expected = np.percentile(values, percent, method="inverted_cdf")

    assert loadkit.percentile(values, percent) == expected


def test_percentile_of_one_to_a_hundred():
    values = list(range(100, 0, -1))

    # k = ⌈p·100/100⌉ = p: the p-th smallest of 1 … 100 is p.
    assert loadkit.percentile(values, 50) == 50
    assert loadkit.percentile(values, 99) == 99
    assert loadkit.percentile(values, 7) == 7
    assert loadkit.percentile(values, 0) == 1
    assert loadkit.percentile(values, 100) == 100


def test_percentile_refuses_no_values_and_percents_outside_0_100():
    with pytest.raises(ValueError, match="no values"):
        loadkit.percentile([], 50)
    with pytest.raises(ValueError, match=r"within \[0, 100\]; got 101"):
        loadkit.percentile([1.0], 101)


# --- wrk's report -----------------------------------------------------------------


def test_the_report_line_is_read_from_wrks_output():
    report = loadkit.parse_wrk_report(WRK_OUTPUT)

    assert report.requests == 806
    assert report.seconds == 1.004159
    assert report.bytes == 190809
    assert report.statuses == {200: 537, 404: 269}
    assert report.errors == {
        "connect": 0,
        "read": 0,
        "write": 0,
        "status": 269,
        "timeout": 0,
    }
    assert report.p(50) == 2.059
    assert report.p(99) == 43.949
    assert report.p(99.9) == 66.368
    assert report.max_ms == 66.368
    assert report.mean_ms == pytest.approx(3.5981, rel=1e-12)
    assert report.rate == pytest.approx(806 / 1.004159, rel=1e-12)
    # The 404s are the failures; wrk's "status" counter is not a socket error.
    assert report.non_2xx == 269
    assert report.socket_errors == 0
    assert report.failures == 269


def test_socket_errors_are_connect_read_write_and_timeout():
    line = {
        "requests": 10,
        "duration_us": 2_000_000,
        "bytes": 0,
        "errors": {"connect": 1, "read": 2, "write": 4, "status": 3, "timeout": 8},
        "statuses": {"200": 7, "422": 2, "503": 1},
        "latency_us": {
            "min": 1,
            "mean": 1.0,
            "max": 1,
            "percentiles": {"50": 1, "75": 1, "90": 1, "99": 1, "99.9": 1},
        },
    }

    report = loadkit.parse_wrk_report("wrk-report " + json.dumps(line))

    assert report.socket_errors == 1 + 2 + 4 + 8
    assert report.non_2xx == 3
    assert report.failures == 15 + 3
    assert report.rate == 5.0


def test_output_without_the_report_line_names_the_script():
    with pytest.raises(ValueError, match=r"wrk_mix\.lua"):
        loadkit.parse_wrk_report(WRK_OUTPUT.split("wrk-report")[0])


# --- requests ---------------------------------------------------------------------


def test_a_fresh_seed_body_becomes_json_once_the_placeholder_is_replaced():
    body = loadkit.json_body({"spec": {"dims": {}}, "seed": 0}, fresh_seed=True)

    assert body.count(b"{{seed}}") == 1
    sent = json.loads(body.replace(b"{{seed}}", b"1000000017"))
    assert sent == {"spec": {"dims": {}}, "seed": 1000000017}
    assert loadkit.RequestKind("k", "POST", "/p", body).varies
    assert not loadkit.RequestKind("k", "POST", "/p", b"{}").varies
    assert not loadkit.RequestKind("k", "GET", "/p").varies


def test_the_manifest_lists_method_path_and_body_file(tmp_path):
    kinds = [
        loadkit.RequestKind("health", "GET", "/healthz"),
        loadkit.RequestKind("post", "POST", "/v1/x", b'{"a": 1}'),
    ]

    manifest = loadkit.write_manifest(tmp_path, "mix", kinds)

    lines = manifest.read_text().splitlines()
    assert lines[0] == "GET /healthz -"
    method, path, body_file = lines[1].split(" ")
    assert (method, path) == ("POST", "/v1/x")
    assert Path(body_file).read_bytes() == b'{"a": 1}'


def test_a_manifest_needs_a_request(tmp_path):
    with pytest.raises(ValueError, match="at least one request kind"):
        loadkit.write_manifest(tmp_path, "empty", [])


# --- /proc --------------------------------------------------------------------------


def test_stat_is_read_past_a_command_name_with_parentheses_and_spaces():
    text = "4242 (gunicorn: worker [x) (y]) S 4200 4242 4242 0 -1 4194560 52 0"

    assert loadkit.parse_stat(text) == (4242, "S", 4200)


def test_stat_of_this_process_gives_its_pid_and_parent():
    with open("/proc/self/stat") as stat:
        # Running: it is this process that reads the file.
        assert loadkit.parse_stat(stat.read()) == (os.getpid(), "R", os.getppid())


def test_children_of_this_process_include_a_child_it_started():
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        assert child.pid in loadkit.children_of(os.getpid())
    finally:
        child.communicate(b"")

    assert child.pid not in loadkit.children_of(os.getpid())


def test_status_fields_are_read_in_kib():
    text = "Name:\tpython\nVmPeak:\t  300000 kB\nVmRSS:\t   123456 kB\nThreads:\t1\n"

    assert loadkit.status_kib(text, "VmRSS") == 123456
    assert loadkit.status_kib(text, "VmPeak") == 300000
    with pytest.raises(ValueError, match="no field 'Pss'"):
        loadkit.status_kib(text, "Pss")
    with pytest.raises(ValueError, match="'MB'"):
        loadkit.status_kib("VmRSS: 12 MB\n", "VmRSS")


def test_this_processs_proportional_set_is_at_most_its_resident_set():
    memory = loadkit.memory_kib(os.getpid())

    assert 0 < memory["pss"] <= memory["rss"]


def test_a_line_of_proc_net_tcp_gives_addresses_state_and_inode():
    # proc(5): addresses in hex, the IPv4 address as a host-order word; here
    # 127.0.0.1:8000 ← 127.0.0.1:54321 (0x1F40 = 8000, 0xD431 = 54321),
    # state 01 (ESTABLISHED), inode 987654.
    word = int.from_bytes(socket.inet_aton("127.0.0.1"), sys.byteorder)
    text = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when"
        " retrnsmt   uid  timeout inode\n"
        f"   0: {word:08X}:1F40 {word:08X}:D431 01 00000000:00000000"
        " 00:00000000 00000000     0        0 987654 1 0000000000000000 20 4 30"
        " 10 -1\n"
    )

    (entry,) = loadkit.parse_proc_net_tcp(text)

    assert entry.local == ("127.0.0.1", 8000)
    assert entry.remote == ("127.0.0.1", 54321)
    assert entry.state == 1
    assert entry.inode == 987654


def test_the_owner_of_a_loopback_connection_is_found_by_its_ports():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        server_port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", server_port)) as client:
            accepted, _ = listener.accept()
            with accepted:
                client_port = client.getsockname()[1]

                owner = loadkit.socket_owner([os.getpid()], server_port, client_port)
                stranger = loadkit.socket_owner(
                    [os.getppid()], server_port, client_port
                )

    assert owner == os.getpid()
    assert stranger is None


# --- the health probe ---------------------------------------------------------------


class _Health(BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        _Health.paths.append(self.path)
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_the_probe_checks_the_health_path_until_stopped():
    _Health.paths = []
    with ThreadingHTTPServer(("127.0.0.1", 0), _Health) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        probe = loadkit.HealthProbe(server.server_address[1], interval=0.001)
        probe.start()
        while len(probe.results) < 3:
            threading.Event().wait(0.01)
        results = probe.stop()
        server.shutdown()

    assert len(results) >= 3
    assert {check.status for check in results} == {200}
    assert all(check.error is None and check.seconds > 0 for check in results)
    assert set(_Health.paths) == {"/healthz"}
    assert len(_Health.paths) == len(results)
