"""Who may call the API: optional API keys, and CORS for configured origins.

API keys are off unless ``INITLAB_API_KEYS`` lists some. When on, every request
but those to the public paths (the probes, the metrics, the contract and the
pages a browser opens) must carry ``Authorization: Bearer <key>`` (RFC 6750
§2.1) with one of the keys, or it is refused with a 401 problem and
``WWW-Authenticate: Bearer realm="initlab"``. Preflight requests (OPTIONS)
pass: browsers send them without credentials. The key sent is compared with
every configured key, each in constant time and without stopping at a match,
so the answer's timing tells nothing about which key is close; the keys are
compared as SHA-256 digests, so their lengths do not show either. No key is
ever logged or quoted.

CORS is off unless ``INITLAB_CORS_ORIGINS`` lists origins: a request from one
of them gets ``Access-Control-Allow-Origin`` with its origin echoed, any other
origin gets no CORS header at all, and so does a request without ``Origin``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable

from flask import Flask, Response, request
from flask_cors import CORS

from initlab.web.problems import Problem, ProblemKind

AUTHORIZATION_SCHEME = "Bearer"
REALM = "initlab"
CHALLENGE = f'{AUTHORIZATION_SCHEME} realm="{REALM}"'
PUBLIC_PATHS = frozenset(
    {"/", "/healthz", "/readyz", "/metrics", "/openapi.yaml", "/docs"}
)
PUBLIC_PREFIXES = ("/docs/", "/page/")

CORS_METHODS = ("GET", "POST")
CORS_REQUEST_HEADERS = ("Content-Type", "Authorization", "X-Request-ID")
CORS_EXPOSED_HEADERS = ("X-Request-ID", "X-Cache", "Retry-After")
# Browsers keep a preflight's answer this long (Chromium caps it at 2 hours).
CORS_MAX_AGE_SECONDS = 3600

UNAUTHORIZED = ProblemKind(
    "unauthorized",
    401,
    "Missing or wrong API key",
    "The service requires an API key (its operator set INITLAB_API_KEYS) and the"
    " request carries none, or one the service does not accept; send it as"
    " `Authorization: Bearer <key>`.",
)

_HOW_TO_SEND = (
    "send it as the header `Authorization: Bearer <key>` (the Python client's"
    " api_key= argument or INITLAB_API_KEY environment variable does)"
)


class ApiKeys:
    """The keys the service accepts, held as SHA-256 digests."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = tuple(_digest(key) for key in keys)

    def __bool__(self) -> bool:
        return bool(self._digests)

    def __repr__(self) -> str:
        return f"ApiKeys(<{len(self._digests)} keys>)"

    def accepts(self, presented: str) -> bool:
        """Whether ``presented`` is one of the keys; the time taken is the same
        for every key sent (one comparison per configured key, always all)."""
        digest = _digest(presented)
        accepted = False
        for known in self._digests:
            accepted |= hmac.compare_digest(digest, known)

        return accepted


def is_public(path: str) -> bool:
    """Whether ``path`` is served without an API key."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def api_key_guard(keys: ApiKeys) -> Callable[[], None]:
    """A ``before_request`` function refusing requests without an accepted key."""

    def require_api_key() -> None:
        if request.method == "OPTIONS" or is_public(request.path):
            return

        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != AUTHORIZATION_SCHEME.lower() or not token:
            raise Problem(
                UNAUTHORIZED,
                f"This service requires an API key: {_HOW_TO_SEND}.",
                headers={"WWW-Authenticate": CHALLENGE},
            )
        if not keys.accepts(token):
            raise Problem(
                UNAUTHORIZED,
                "The API key sent is not one this service accepts: check it (or ask"
                f" the operator for a current one) and {_HOW_TO_SEND}.",
                headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
            )

    return require_api_key


def allow_origins(app: Flask, origins: Iterable[str]) -> None:
    """Answer CORS requests from exactly ``origins``; nothing when there are none."""
    # Exact patterns: flask-cors would read an origin holding a regex character
    # (an IPv6 literal's brackets) as a regular expression.
    patterns = [
        re.compile(re.escape(origin) + r"\Z", re.IGNORECASE) for origin in origins
    ]
    if not patterns:
        return

    # Registered first, so that it runs after flask-cors (after_request
    # functions run in reverse) and adds Origin only where it is missing.
    app.after_request(_vary_on_origin)
    CORS(
        app,
        origins=patterns,
        methods=list(CORS_METHODS),
        allow_headers=list(CORS_REQUEST_HEADERS),
        expose_headers=list(CORS_EXPOSED_HEADERS),
        max_age=CORS_MAX_AGE_SECONDS,
        supports_credentials=False,
        # No Origin, no CORS headers (flask-cors would otherwise list every
        # allowed origin to any client).
        always_send=False,
        vary_header=True,
    )


def _vary_on_origin(response: Response) -> Response:
    """``Vary: Origin`` on every answer, CORS headers or not: a shared cache
    must not hand an answer without them to an allowed origin."""
    response.vary.add("Origin")
    return response


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
