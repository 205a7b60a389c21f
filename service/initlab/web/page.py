"""The browser page at ``/``: the idea of the service, drawn from its own answers.

Two views. The first follows the signal through a deep MLP: the forward and
backward second moments per layer under several init schemes (the analytic
line and the Monte Carlo band of ``GET /v1/visualizations/propagation``), the
verdict of each scheme in words, and where each sits on the phase diagram of
``GET /v1/visualizations/phase-diagram`` (Schoenholz et al. 2017, figure 1).
The second is µP's coordinate check (Tensor Programs V §7) from ``POST
/v1/mup/coord-check``: mean |x| per layer against width, one panel per step,
SP against µP.

The page is an example client: everything it shows comes from the public
endpoints, asked with relative URLs from the page's own origin. The charts are
plain SVG written by the page's scripts (no chart library, no build step);
every curve carries the numbers it was drawn from as data attributes, and a
table under each chart gives them as text. Files are served from
``static/page/`` by name; a Content-Security-Policy lets the page load and
fetch from its own origin only, so it works with no network beyond the service.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, send_from_directory

PAGE_DIRECTORY = Path(__file__).resolve().parent / "static" / "page"
INDEX_FILE = "index.html"
# The prefix of the page's scripts and stylesheet; the page names them relative
# to itself ("page/main.js"), so it also works under a path prefix.
ASSET_PREFIX = "/page/"

# Werkzeug adds "; charset=utf-8" to each text type.
ASSET_MEDIA_TYPES = {
    ".js": "text/javascript",  # RFC 9239; module scripts need a JavaScript type
    ".css": "text/css",
}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        # The favicon is an empty data: URL, so the browser asks for no icon.
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

blueprint = Blueprint("page", __name__)


@blueprint.get("/")
def index() -> Response:
    """The page itself; its scripts fill it from the API."""
    response = send_from_directory(PAGE_DIRECTORY, INDEX_FILE, mimetype="text/html")
    # Revalidated on every visit (a cheap 304 when unchanged), so a new release
    # of the page is seen at once.
    response.cache_control.no_cache = True
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@blueprint.get(f"{ASSET_PREFIX}<name>")
def asset(name: str) -> Response:
    """A script or stylesheet of the page, by file name; nothing else is served."""
    media_type = ASSET_MEDIA_TYPES.get(Path(name).suffix)
    if media_type is None:
        abort(404)

    # send_from_directory refuses names that leave the directory (404).
    response = send_from_directory(PAGE_DIRECTORY, name, mimetype=media_type)
    response.cache_control.no_cache = True
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
