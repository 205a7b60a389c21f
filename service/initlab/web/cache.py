"""A cache of /v1 answers in each worker, bounded in bytes.

Every /v1 computation is a pure function of its request: the method, the path,
the query string, and the body read as its content type says. So a 200 answer
can be kept and sent again, byte for byte, for the same request, and a repeated
request (a notebook re-run, a page reloaded) costs a lookup instead of the
computation. The key is ``(method, path, query string, Content-Type, SHA-256 of
the body)``; the value is the body and its content type only, so the request id,
the CORS headers, the log line and the metrics stay per request.

Only answers with status 200 are kept: a problem carries its request id and is
cheap to make again. Entries are evicted least recently used first; their sizes
count the body and the key's bytes, not Python's per-object overhead (a few
hundred bytes an entry). An answer larger than the whole cache is not kept.
Each gunicorn worker has its own cache (they share no memory), filled as it
answers.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from cachetools import LRUCache
from flask import Request, Response

from initlab.web.jsonio import request_body

CACHE_HEADER = "X-Cache"
CACHED_METHODS = frozenset({"GET", "POST"})
CACHED_PREFIX = "/v1/"

CacheKey = tuple[str, str, bytes, str, bytes]


@dataclass(frozen=True)
class CachedAnswer:
    """A kept answer: its body, its Content-Type, and what it costs the cache."""

    body: bytes
    content_type: str
    size: int


class ResponseCache:
    """A least-recently-used map from request keys to answers, up to ``max_bytes``.

    ``max_bytes`` 0 turns the cache off: every request is then left alone.
    Safe to share between threads.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0 (0 is off); got {max_bytes!r}")

        self.max_bytes = max_bytes
        self._entries: LRUCache[CacheKey, CachedAnswer] = LRUCache(
            maxsize=max(max_bytes, 1), getsizeof=lambda answer: answer.size
        )
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def size(self) -> int:
        """Bytes held now."""
        with self._lock:
            return int(self._entries.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def key_for(self, request: Request) -> CacheKey | None:
        """The request's key, or ``None`` when its answer is not to be cached.

        Cached: GET and POST to a route under /v1/. Reading the body here may
        raise Werkzeug's 413 when it is over the configured size, or a 400
        problem when the body cannot be read (:func:`request_body`).
        """
        if not self.enabled or request.method not in CACHED_METHODS:
            return None
        rule = request.url_rule
        if rule is None or not rule.rule.startswith(CACHED_PREFIX):
            return None

        digest = hashlib.sha256(request_body(request)).digest()
        return (
            request.method,
            request.path,
            request.query_string,
            request.headers.get("Content-Type", ""),
            digest,
        )

    def get(self, key: CacheKey) -> CachedAnswer | None:
        with self._lock:
            return self._entries.get(key)

    def keep(self, key: CacheKey, response: Response) -> bool:
        """Keep ``response`` under ``key`` if it is a 200; whether it was kept."""
        if response.status_code != 200 or response.is_streamed:
            return False

        body = response.get_data()
        content_type = response.headers.get("Content-Type", "")
        size = len(body) + len(content_type) + sum(_key_sizes(key))
        if size > self.max_bytes:
            return False

        with self._lock:
            self._entries[key] = CachedAnswer(body, content_type, size)
        return True


def cached_response(answer: CachedAnswer) -> Response:
    """A new response carrying a kept answer, marked as a cache hit."""
    response = Response(answer.body, content_type=answer.content_type)
    response.headers[CACHE_HEADER] = "hit"
    return response


def _key_sizes(key: CacheKey) -> list[int]:
    return [
        len(part) if isinstance(part, bytes) else len(part.encode("utf-8", "replace"))
        for part in key
    ]
