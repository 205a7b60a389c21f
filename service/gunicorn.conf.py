"""Gunicorn settings of the initlab service, read from the environment.

The same file serves ``make serve``, the test suite's live server and the
container (``gunicorn --config service/gunicorn.conf.py initlab.web.wsgi:app``).

| variable                      | default               | setting              |
|-------------------------------|-----------------------|----------------------|
| ``BIND``                      | ``127.0.0.1:$PORT``   | ``bind``             |
| ``PORT``                      | ``8000``              | (used by ``BIND``)   |
| ``WEB_CONCURRENCY``           | ``2``                 | ``workers``          |
| ``GUNICORN_TIMEOUT``          | ``60``                | ``timeout``          |
| ``GUNICORN_GRACEFUL_TIMEOUT`` | ``30``                | ``graceful_timeout`` |
| ``GUNICORN_WORKER_TMP_DIR``   | the temp directory    | ``worker_tmp_dir``   |

The work is CPU-bound numpy on small arrays, so workers are plain sync
processes, each with one BLAS thread: two workers on two cores with several
BLAS threads each would only fight over the cores.

A value that is not a positive integer stops gunicorn with one line naming the
variable (a ``SystemExit``, which gunicorn does not wrap in "Failed to read
config file" and a traceback). Gunicorn reads ``WEB_CONCURRENCY`` itself before
this file: a negative or non-integer value is refused by gunicorn first, in its
own words (``make serve`` checks it beforehand and names it).
"""

from __future__ import annotations

import os

# Before anything imports numpy: its BLAS reads these once, when loaded, and
# preload_app below imports the app (and numpy) in the master right after
# this file. A value already set in the environment wins.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")


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


bind = [os.environ.get("BIND") or f"127.0.0.1:{_positive_int('PORT', 8000)}"]
workers = _positive_int("WEB_CONCURRENCY", 2)
worker_class = "sync"
timeout = _positive_int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _positive_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Recycle workers now and then so that slow growth (allocator fragmentation
# after large specs) cannot accumulate; the jitter keeps them from all
# restarting at once.
max_requests = 1000
max_requests_jitter = 100
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
