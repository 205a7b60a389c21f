"""Gunicorn settings of the initlab service, read from the environment.

The same file serves ``make serve``, the test suite's live server and the
container (``gunicorn --config service/gunicorn.conf.py initlab.web.wsgi:app``).

| variable                      | default             | setting              |
|-------------------------------|---------------------|----------------------|
| ``BIND``                      | ``127.0.0.1:$PORT`` | ``bind``             |
| ``PORT``                      | ``8000``            | (used by ``BIND``)   |
| ``WEB_CONCURRENCY``           | ``2``               | ``workers``          |
| ``GUNICORN_THREADS``          | ``6``               | ``threads``          |
| ``GUNICORN_MAX_REQUESTS``     | ``0`` (never)       | ``max_requests``     |
| ``GUNICORN_TIMEOUT``          | ``60``              | ``timeout``          |
| ``GUNICORN_GRACEFUL_TIMEOUT`` | ``30``              | ``graceful_timeout`` |
| ``GUNICORN_WORKER_TMP_DIR``   | the temp directory  | ``worker_tmp_dir``   |
| ``PROMETHEUS_MULTIPROC_DIR``  | a new private one   | (the metrics files)  |

The work is CPU-bound numpy on small arrays, each worker with one BLAS
thread: two workers on two cores with several BLAS threads each would only
fight over the cores. Workers are threaded (gthread) and accept a connection
only when one of their threads is free (``worker_connections = threads``),
and each worker runs at most ``INITLAB_MAX_RUNNING_COMPUTATIONS`` (2)
multi-second computations with ``INITLAB_MAX_QUEUED_COMPUTATIONS`` (2) more
waiting, refusing others with 503 busy (initlab.web.admission): two of its
six threads stay free, so a health check or a cheap request never waits
behind multi-second computations, however many arrive. Measured with
``benchmarks/load_run.py --flood --compare`` (16 clients all asking for
multi-second statistics and µP checks), 4 sync workers kept ``/healthz``
waiting up to 25 s and threads without the gate up to 18 s, where the
configured service answered it within 0.06 s. Worker recycling
(``max_requests``) is off by default: a recycling worker stops accepting
until its long requests end, which stalled health checks for
seconds, and 10,000 requests grew the workers by nothing but the response
cache, which is bounded (``benchmarks/memory_growth.py``). Set
``GUNICORN_MAX_REQUESTS`` to recycle anyway (with 10 % jitter). Every request
is bounded by the service's budgets before it starts, so no request relies
on the worker timeout to end.

/metrics must count the requests of every worker, whichever worker answers the
scrape: prometheus_client's multiprocess mode has each worker write its values
to files in ``PROMETHEUS_MULTIPROC_DIR`` and adds them up when read. The mode
is chosen when prometheus_client is first imported, so the variable is set
here, before the app is preloaded: when unset, to a new private temporary
directory, removed when gunicorn exits (a directory given must exist). Its
metric files (``*.db``) are deleted at start, since values of an earlier run
would be added in, and a worker's live gauges when it exits; its counters
stay, so counts survive worker restarts.

A value that is not a positive integer stops gunicorn with one line naming the
variable (a ``SystemExit``, which gunicorn does not wrap in "Failed to read
config file" and a traceback). Gunicorn reads ``WEB_CONCURRENCY`` itself before
this file: a negative or non-integer value is refused by gunicorn first, in its
own words (``make serve`` checks it beforehand and names it).
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import tempfile

# Before anything imports numpy: its BLAS reads these once, when loaded, and
# preload_app below imports the app (and numpy) in the master right after
# this file. A value already set in the environment wins.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

# Before the app is preloaded, for the same reason: prometheus_client reads it
# once, when imported. Gunicorn runs this file again on a reload (SIGHUP); the
# variable is set by then, so the directory stays the same.
_METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def _remove_directory(directory: str, owner_pid: int) -> None:
    """Remove ``directory`` when the process that made it exits.

    Gunicorn's workers are forks that leave through ``sys.exit`` and so run the
    exit handlers too; only the process that made the directory removes it.
    """
    if os.getpid() == owner_pid:
        shutil.rmtree(directory, ignore_errors=True)


if not os.environ.get(_METRICS_VARIABLE, "").strip():
    _private_metrics_directory = tempfile.mkdtemp(prefix="initlab-metrics-")
    os.environ[_METRICS_VARIABLE] = _private_metrics_directory
    atexit.register(_remove_directory, _private_metrics_directory, os.getpid())


def _positive_int(variable: str, default: int) -> int:
    """``int(os.environ[variable])``, or ``default`` when unset or empty."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default

    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise SystemExit(
            f"{variable} must be a positive integer; got {raw!r}. Fix it or unset"
            f" {variable} to use the default {default}."
        )

    return value


def _non_negative_int(variable: str, default: int) -> int:
    """Like :func:`_positive_int`, with 0 allowed (it turns the setting off)."""
    raw = os.environ.get(variable, "").strip()
    if raw == "0":
        return 0
    try:
        return _positive_int(variable, default)
    except SystemExit:
        raise SystemExit(
            f"{variable} must be 0 (off) or a positive integer; got {raw!r}. Fix it"
            f" or unset {variable} to use the default {default}."
        ) from None


def _at_most(variable: str, value: int, most: int) -> int:
    """``value``, or stop with one line naming ``variable`` when above ``most``."""
    if value > most:
        raise SystemExit(
            f"{variable} must be at most {most}; got {value}. Each worker is a"
            " process holding numpy and the app (about 100 MB); lower it, or unset"
            f" {variable} to use the default."
        )
    return value


def _threads_left(threads: int) -> int:
    """``threads``, when it leaves threads free beside the gated computations.

    Each worker runs ``INITLAB_MAX_RUNNING_COMPUTATIONS`` multi-second
    computations and queues ``INITLAB_MAX_QUEUED_COMPUTATIONS`` more
    (initlab.web.admission); its other threads answer health checks and cheap
    requests, so there must be at least one. A bad INITLAB_ value is left to
    the app, which names it when it loads.
    """
    from initlab.web.config import Config, ConfigError

    try:
        config = Config.from_environ()
    except ConfigError:
        return threads
    if config.max_running_computations == 0:
        return threads  # no gate
    gated = config.max_running_computations + config.max_queued_computations
    if gated >= threads:
        raise SystemExit(
            f"GUNICORN_THREADS must be above INITLAB_MAX_RUNNING_COMPUTATIONS +"
            f" INITLAB_MAX_QUEUED_COMPUTATIONS = {gated}, so that a worker keeps a"
            f" thread for health checks while it computes; got {threads}. Raise"
            " GUNICORN_THREADS or lower the other two (0 running turns the gate"
            " off)."
        )
    return threads


bind = [os.environ.get("BIND") or f"127.0.0.1:{_positive_int('PORT', 8000)}"]
workers = _at_most("WEB_CONCURRENCY", _positive_int("WEB_CONCURRENCY", 2), 32)
worker_class = "gthread"
threads = _threads_left(
    _at_most("GUNICORN_THREADS", _positive_int("GUNICORN_THREADS", 6), 64)
)
worker_connections = threads
timeout = _positive_int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _positive_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Off unless asked for: see the module docstring.
max_requests = _non_negative_int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10
# Import the app once in the master: a broken app stops start-up with its
# traceback instead of failing in every worker, and workers share its pages.
preload_app = True
# The app writes one JSON line per request itself.
accesslog = None
errorlog = "-"
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or None
# Gunicorn's runtime control socket lives at one path per user: two servers
# of one user (make serve beside the tests, parallel test workers) would
# fight over it, and the service has no use for it.
control_socket_disable = True


def on_starting(server: object) -> None:
    """Start with no metric values: files of an earlier run would be added in.

    A hook, not code at the top of this file: gunicorn runs the file again on a
    reload, when the workers' files must stay.
    """
    directory = os.environ[_METRICS_VARIABLE]
    for path in glob.glob(os.path.join(directory, "*.db")):
        os.remove(path)


def post_worker_init(worker: object) -> None:
    """Answer the requests gunicorn refuses itself as problems, not HTML.

    Gunicorn writes those answers (414 for a request line over 4094 bytes,
    431, 400 for a line that is not HTTP) with ``util.write_error`` and uses
    it for nothing else: in each worker it writes
    :func:`initlab.web.server_errors.write_problem` instead.
    """
    import functools

    from gunicorn import util

    from initlab.web.server_errors import write_problem

    util.write_error = functools.partial(write_problem, send=util.write_nonblock)


def child_exit(server: object, worker: object) -> None:
    """Drop the live gauges of a worker that exited (its counters stay)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
