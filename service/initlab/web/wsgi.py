"""The WSGI entry point that gunicorn serves.

``gunicorn --config service/gunicorn.conf.py initlab.web.wsgi:app``.

Importing this module configures logging to standard error (each request as
one JSON line on ``initlab.request``, warnings and tracebacks on the other
``initlab`` loggers) and builds the app from the environment, so a bad
setting stops the server at start-up with one line naming the variable (a
``SystemExit``: no traceback, exit status 1).
"""

from __future__ import annotations

import logging
import sys

from initlab.web.app import create_app
from initlab.web.config import ConfigError


def configure_logging() -> None:
    """Send initlab's logs to standard error, unless a handler is already set."""
    requests = logging.getLogger("initlab.request")
    if not requests.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        requests.addHandler(handler)
        requests.setLevel(logging.INFO)
        requests.propagate = False

    service = logging.getLogger("initlab")
    if not service.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        service.addHandler(handler)
        service.setLevel(logging.INFO)


configure_logging()
try:
    app = create_app()
except ConfigError as error:
    raise SystemExit(str(error)) from None
