"""The API reference page at /docs: Swagger UI over the served /openapi.yaml.

Everything the page needs is served by the service itself, so it works with no
network beyond the service: Swagger UI's stylesheet, script and icons come from
the ``swagger-ui-bundle-v2`` package (Swagger UI's own release files, pinned in
requirements/service.txt, Apache-2.0), and the page and the few lines that
start Swagger UI are written here. Swagger UI 5 renders OpenAPI 3.1, the
version of this service's contract. Its validator badge, the one part that
would call another host, is turned off, and a Content-Security-Policy header
lets the page load and fetch from its own origin only.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from flask import Blueprint, Response, abort, send_file, url_for
from markupsafe import escape

SWAGGER_UI_DIRECTORY = Path(str(swagger_ui_bundle.swagger_ui_path))
SWAGGER_UI_VERSION = SWAGGER_UI_DIRECTORY.name.removeprefix("swagger-ui-")
# Werkzeug adds "; charset=utf-8" to each text type.
HTML_MEDIA_TYPE = "text/html"
JAVASCRIPT_MEDIA_TYPE = "text/javascript"  # RFC 9239
ASSET_MAX_AGE_SECONDS = 24 * 3600
STARTER_SCRIPT = "initlab-docs.js"

# The release files served, with their media types; nothing else is.
VENDORED_ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": JAVASCRIPT_MEDIA_TYPE,
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        # Swagger UI sets style attributes from its scripts.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>initlab API reference</title>
<link rel="stylesheet" href="{stylesheet}">
<link rel="icon" type="image/png" sizes="32x32" href="{icon_32}">
<link rel="icon" type="image/png" sizes="16x16" href="{icon_16}">
</head>
<body>
<noscript>This page needs JavaScript. The contract it shows is
<a href="{openapi}">openapi.yaml</a>.</noscript>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{swagger_ui}"></script>
<script src="{starter}"></script>
</body>
</html>
"""

# Starts Swagger UI on the contract named by the page; no other host is asked.
STARTER = """\
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    deepLinking: true,
    validatorUrl: null,
  });
});
"""

blueprint = Blueprint("docs", __name__)


@blueprint.get("/docs")
def reference_page() -> Response:
    page = PAGE.format(
        stylesheet=escape(url_for("docs.asset", name="swagger-ui.css")),
        icon_32=escape(url_for("docs.asset", name="favicon-32x32.png")),
        icon_16=escape(url_for("docs.asset", name="favicon-16x16.png")),
        openapi=escape(url_for("openapi")),
        swagger_ui=escape(url_for("docs.asset", name="swagger-ui-bundle.js")),
        starter=escape(url_for("docs.asset", name=STARTER_SCRIPT)),
    )
    response = Response(page, mimetype=HTML_MEDIA_TYPE)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@blueprint.get("/docs/assets/<name>")
def asset(name: str) -> Response:
    if name == STARTER_SCRIPT:
        response = Response(STARTER, mimetype=JAVASCRIPT_MEDIA_TYPE)
        response.cache_control.public = True
        response.cache_control.max_age = ASSET_MAX_AGE_SECONDS
        return response

    media_type = VENDORED_ASSETS.get(name)
    if media_type is None:
        abort(404)

    return send_file(
        SWAGGER_UI_DIRECTORY / name, mimetype=media_type, max_age=ASSET_MAX_AGE_SECONDS
    )
