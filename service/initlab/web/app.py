"""The Flask application: configuration, request ids, logging and error handling.

The routes live in :mod:`initlab.web.routes` and, for the statistics and
their charts, :mod:`initlab.web.statistics_routes`; everything that can go
wrong on the way is turned into problem details here, in one place. Every
response carries ``X-Request-ID``, is logged as one JSON line on the
``initlab.request`` logger and counted in the metrics.

A request passes, in order: the timer, the API key check (when keys are on,
:mod:`initlab.web.security`), the response cache (:mod:`initlab.web.cache`,
which may answer it at once), the route's handler (timed as compute); its
response then gets the CORS headers (when origins are configured), is kept in
the cache when it may be, and is stamped, logged and counted.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from initlab.web import problems
from initlab.web.admission import BUSY, GATE_EXTENSION, ComputeGate, waited_seconds
from initlab.web.cache import CACHE_HEADER, ResponseCache, cached_response
from initlab.web.checks_routes import blueprint as checks_blueprint
from initlab.web.config import APP_EXTENSION, Config, settings
from initlab.web.docs import blueprint as docs_blueprint
from initlab.web.import_routes import blueprint as imports_blueprint
from initlab.web.jsonio import StrictJSONProvider
from initlab.web.metrics import METRICS_MEDIA_TYPE, UNMATCHED_ROUTE, Metrics
from initlab.web.mup_routes import blueprint as mup_blueprint
from initlab.web.page import blueprint as page_blueprint
from initlab.web.problems import LIMIT_EXCEEDED, PROBLEM_MEDIA_TYPE, Problem
from initlab.web.readiness import Readiness, ReadinessSchema
from initlab.web.routes import blueprint
from initlab.web.schemas.catalog import HealthSchema
from initlab.web.security import ApiKeys, allow_origins, api_key_guard
from initlab.web.spec_sources import repoint_problem
from initlab.web.statistics_routes import blueprint as statistics_blueprint

REQUEST_ID_HEADER = "X-Request-ID"
# The /v1 operations that read query parameters (openapi.yaml lists them).
QUERY_ENDPOINTS = frozenset(
    {
        "v1.get_activations",
        "statistics.get_propagation_chart",
        "statistics.get_phase_diagram_chart",
    }
)
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._~:/+=-]{1,128}$"
OPENAPI_MEDIA_TYPE = "application/yaml"
METRICS_EXTENSION = "initlab.metrics"
CACHE_EXTENSION = "initlab.response_cache"
READINESS_EXTENSION = "initlab.readiness"

# service/initlab/web/app.py → the repository root holds the committed document.
COMMITTED_OPENAPI = Path(__file__).resolve().parents[3] / "openapi.yaml"

request_log = logging.getLogger("initlab.request")
error_log = logging.getLogger("initlab.web")

_SANE_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


def create_app(config: Config | None = None) -> Flask:
    """Build the service. ``config`` defaults to :meth:`Config.from_environ`.

    Raises :class:`initlab.web.config.ConfigError` when an environment
    variable holds a value the service cannot start with.
    """
    if config is None:
        config = Config.from_environ()

    app = Flask("initlab")
    # A path with "//" is a path the service does not serve (a 404 problem),
    # not a redirect with an HTML body to a Location built from the Host header.
    app.url_map.merge_slashes = False
    app.json = StrictJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.extensions[APP_EXTENSION] = config
    app.extensions["initlab.openapi"] = _openapi_document()
    app.extensions[METRICS_EXTENSION] = Metrics(_limit_names())
    app.extensions[CACHE_EXTENSION] = ResponseCache(config.response_cache_bytes)
    app.extensions[READINESS_EXTENSION] = Readiness(config)

    app.register_blueprint(blueprint)
    app.register_blueprint(statistics_blueprint)
    app.register_blueprint(mup_blueprint)
    app.register_blueprint(imports_blueprint)
    app.register_blueprint(checks_blueprint)
    app.register_blueprint(docs_blueprint)
    app.register_blueprint(page_blueprint)
    app.add_url_rule("/healthz", "healthz", _healthz, methods=["GET"])
    app.add_url_rule("/readyz", "readyz", _readyz, methods=["GET"])
    app.add_url_rule("/metrics", "metrics", _metrics, methods=["GET"])
    app.add_url_rule("/openapi.yaml", "openapi", _openapi, methods=["GET"])
    app.extensions[GATE_EXTENSION] = ComputeGate(
        config.max_running_computations,
        config.max_queued_computations,
        config.computation_wait_seconds,
        app.extensions[METRICS_EXTENSION].set_computations,
    )
    for endpoint, view in list(app.view_functions.items()):
        app.view_functions[endpoint] = _timed(view)

    # before_request functions run in this order, after_request ones in the
    # reverse: CORS headers first, then the cache, then the stamp and the log.
    app.before_request(_start_timer)
    keys = ApiKeys(config.api_keys)
    if keys:
        app.before_request(api_key_guard(keys))
    app.before_request(_refuse_query_parameters)
    app.before_request(_serve_from_cache)
    app.after_request(_finish_response)
    app.after_request(_keep_in_cache)
    allow_origins(app, config.cors_origins)

    app.register_error_handler(Problem, _render_problem)
    app.register_error_handler(HTTPException, _render_http_exception)
    app.register_error_handler(Exception, _render_unexpected)
    return app


def request_id() -> str:
    """The request's id: the client's ``X-Request-ID`` when sane, else a new one."""
    if "request_id" not in g:
        sent = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = sent if _SANE_REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex

    return g.request_id


def problem_response(problem: Problem) -> Response:
    """Render a problem as ``application/problem+json``."""
    if problem.status < 500 or problem.kind is BUSY:
        g.refusal = (problem.kind.slug, problem.extensions.get("limit"))
    body = current_app.json.dumps(problem.to_dict(request_id()), separators=(",", ":"))
    response = Response(body, status=problem.status, mimetype=PROBLEM_MEDIA_TYPE)
    response.headers.update(problem.headers)
    return response


def _healthz() -> Response:
    return current_app.json.response(HealthSchema().dump({"status": "ok"}))


def _readyz() -> Response:
    answer = current_app.extensions[READINESS_EXTENSION].answer()
    return current_app.json.response(ReadinessSchema().dump(answer))


def _metrics() -> Response:
    exposition = current_app.extensions[METRICS_EXTENSION].exposition()
    return Response(exposition, content_type=METRICS_MEDIA_TYPE)


def _openapi() -> Response:
    document = current_app.extensions["initlab.openapi"]
    return Response(document, mimetype=OPENAPI_MEDIA_TYPE)


def _openapi_document() -> bytes:
    if COMMITTED_OPENAPI.is_file():
        return COMMITTED_OPENAPI.read_bytes()

    # Installed without the repository: the generated document is the same
    # text (a test keeps the committed file equal to it).
    from initlab.web.openapi import openapi_yaml

    return openapi_yaml().encode("utf-8")


def _limit_names() -> list[str]:
    """Every configured setting's name (``max_layers``): what a refusal may name."""
    prefix = len("INITLAB_")
    return [setting.variable[prefix:].lower() for setting in settings()]


def _timed(view: Callable[..., Response]) -> Callable[..., Response]:
    """``view``, recording the seconds it takes, but for any wait for a turn of
    the compute gate, as the request's compute time."""

    @functools.wraps(view)
    def timed(**arguments: object) -> Response:
        started = time.perf_counter()
        try:
            return view(**arguments)
        finally:
            elapsed = time.perf_counter() - started
            g.compute_seconds = elapsed - (waited_seconds() or 0.0)

    return timed


def _route() -> str:
    """The template of the rule serving the request: a bounded metrics label.

    A method the path does not take (405) is counted under the path's rule;
    a path the service does not serve under :data:`UNMATCHED_ROUTE`.
    """
    rule = request.url_rule
    if rule is None and isinstance(request.routing_exception, MethodNotAllowed):
        allowed = request.routing_exception.valid_methods or []
        adapter = current_app.url_map.bind_to_environ(request.environ)
        with contextlib.suppress(HTTPException):
            rule, _ = adapter.match(method=next(iter(allowed), None), return_rule=True)
    return UNMATCHED_ROUTE if rule is None else rule.rule


def _start_timer() -> None:
    g.started = time.perf_counter()
    request_id()


def _refuse_query_parameters() -> None:
    """422 for query parameters sent to a /v1 operation that reads none.

    The operations that read some (:data:`QUERY_ENDPOINTS`) check their own,
    by name and value; elsewhere a parameter would be silently ignored.
    """
    rule = request.url_rule
    if (
        rule is None
        or request.method == "OPTIONS"  # a CORS preflight must get its 2xx
        or not rule.rule.startswith("/v1/")
        or request.endpoint in QUERY_ENDPOINTS
        or not request.args
    ):
        return

    names = list(dict.fromkeys(request.args))
    where = f"{request.method} {rule.rule}"
    raise problems.validation_problem(
        [
            problems.FieldError(
                problems.json_pointer((name,)),
                f"{where} takes no query parameters; got {name}"
                f"={problems.describe_value(request.args[name])}. Leave it out"
                + (
                    " (the request goes in the JSON body)"
                    if request.method == "POST"
                    else ""
                ),
                name,
            )
            for name in names
        ]
    )


def _serve_from_cache() -> Response | None:
    """The kept answer to this request, if the cache has one."""
    cache: ResponseCache = current_app.extensions[CACHE_EXTENSION]
    key = cache.key_for(request)
    if key is None:
        return None

    g.cache_key = key
    answer = cache.get(key)
    if answer is None:
        return None

    current_app.extensions[METRICS_EXTENSION].observe_cache_lookup(True)
    g.cache_hit = True
    return cached_response(answer)


def _keep_in_cache(response: Response) -> Response:
    """Keep a computed 200 answer; only those count as misses (problems are
    never cached, so a refused request was never a candidate)."""
    key = g.get("cache_key")
    if key is None or g.get("cache_hit") or response.status_code != 200:
        return response

    current_app.extensions[METRICS_EXTENSION].observe_cache_lookup(False)
    response.headers[CACHE_HEADER] = "miss"
    cache: ResponseCache = current_app.extensions[CACHE_EXTENSION]
    if cache.keep(key, response):
        current_app.extensions[METRICS_EXTENSION].set_cache_bytes(cache.size)
    return response


def _finish_response(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id()
    if (
        request.method == "OPTIONS"
        and response.status_code == 200
        and response.calculate_content_length() == 0
    ):
        # Flask's own answer to OPTIONS (and flask-cors's preflight): the Allow
        # or CORS headers are the answer; there is no body to label as HTML.
        response.status_code = 204
        del response.headers["Content-Type"]
        del response.headers["Content-Length"]

    started = g.get("started")
    duration = None if started is None else time.perf_counter() - started
    _count(response, duration)

    duration_ms = None if duration is None else duration * 1000
    line = {
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "duration_ms": None if duration_ms is None else round(duration_ms, 3),
        "request_id": request_id(),
    }
    request_log.info(json.dumps(line))
    return response


def _count(response: Response, duration: float | None) -> None:
    metrics: Metrics = current_app.extensions[METRICS_EXTENSION]
    route = _route()
    metrics.observe_response(
        request.method, route, response.status_code, duration or 0.0
    )
    refusal = g.get("refusal")
    if refusal is not None:
        metrics.observe_refusal(*refusal)
    compute_seconds = g.get("compute_seconds")
    if compute_seconds is not None:
        metrics.observe_compute(route, compute_seconds)
    waited = waited_seconds()
    if waited is not None:
        metrics.observe_wait(route, waited)


def _render_problem(problem: Problem) -> Response:
    problem = repoint_problem(problem)
    if problem.kind is LIMIT_EXCEEDED:
        error_log.warning(
            "refused request %s: over limit %s = %r",
            request_id(),
            problem.extensions.get("limit"),
            problem.extensions.get("limit_value"),
        )
    return problem_response(problem)


def _render_http_exception(error: HTTPException) -> Response:
    problem = problems.from_http_exception(
        error,
        max_body_bytes=current_app.config.get("MAX_CONTENT_LENGTH"),
        content_length=request.content_length,
        method=request.method,
        path=request.path,
        paths=_served_paths(),
    )
    return problem_response(problem)


def _served_paths() -> list[str]:
    """The paths the service answers, but the page's assets."""
    return sorted(
        {
            rule.rule
            for rule in current_app.url_map.iter_rules()
            if not rule.arguments and rule.endpoint != "static"
        }
    )


def _render_unexpected(error: Exception) -> Response:
    error_log.error(
        "unhandled error on %s %s (request %s)",
        request.method,
        request.path,
        request_id(),
        exc_info=error,
    )
    return problem_response(problems.internal_error())
