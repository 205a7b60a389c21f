"""The OpenAPI 3.1 document of the service, built from the marshmallow schemas.

``python -m initlab.web.openapi > openapi.yaml`` (``make openapi``) writes it;
the committed ``openapi.yaml`` must equal this output (a test says so). The
paths and operations are written here by hand; every body schema comes from
:mod:`initlab.web.schemas`, the spec's from
:func:`initlab.web.schemas.spec.add_spec_components`.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from initlab import __version__
from initlab.core.schemes import scheme_catalogue
from initlab.web.admission import BUSY, RETRY_AFTER_SECONDS
from initlab.web.app import OPENAPI_MEDIA_TYPE, REQUEST_ID_HEADER, REQUEST_ID_PATTERN
from initlab.web.cache import CACHE_HEADER
from initlab.web.config import settings
from initlab.web.docs import HTML_MEDIA_TYPE, SWAGGER_UI_VERSION
from initlab.web.jsonio import JSON_MEDIA_TYPE
from initlab.web.problems import PROBLEM_KINDS, PROBLEM_MEDIA_TYPE
from initlab.web.readiness import NOT_READY, ReadinessSchema
from initlab.web.schemas.catalog import (
    ActivationQuerySchema,
    ActivationsResponseSchema,
    HealthSchema,
    SchemesResponseSchema,
)
from initlab.web.schemas.checks import (
    CoordCheckRequestSchema,
    CoordCheckResponseSchema,
    TransferCheckRequestSchema,
    TransferCheckResponseSchema,
)
from initlab.web.schemas.imports import (
    SPEC_SOURCE_COMPONENT,
    ImportedSpecResponseSchema,
    ImportRequestSchema,
    PresetsResponseSchema,
    spec_source_json_schema,
)
from initlab.web.schemas.mup import MupTableRequestSchema, MupTableResponseSchema
from initlab.web.schemas.problem import ProblemSchema
from initlab.web.schemas.recommendations import (
    RESOLVED_SCHEME_COMPONENT,
    SCHEME_REQUEST_COMPONENT,
    RecommendationRequestSchema,
    RecommendationResponseSchema,
    resolved_scheme_json_schema,
    scheme_request_json_schema,
)
from initlab.web.schemas.spec import add_spec_components
from initlab.web.schemas.statistics import (
    PhaseDiagramChartSchema,
    PhaseDiagramQuerySchema,
    PropagationChartSchema,
    PropagationQuerySchema,
    StatisticsRequestSchema,
    StatisticsResponseSchema,
)
from initlab.web.security import CHALLENGE, UNAUTHORIZED

OPENAPI_VERSION = "3.1.0"
# The Prometheus text exposition format /metrics answers in.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"
SECURITY_SCHEME = "ApiKey"
# A key, or none: the keys are enforced only when the operator turns them on.
API_KEY_SECURITY = [{SECURITY_SCHEME: []}, {}]
# Every kind of problem the service answers with, the web layer's included.
ALL_PROBLEM_KINDS = (*PROBLEM_KINDS, UNAUTHORIZED, NOT_READY, BUSY)
# The operations whose computations take turns (initlab.web.admission; a
# recommendation or µP table only when large): a 503 `busy` with Retry-After
# when a worker has no turn for them.
GATED_OPERATIONS = frozenset(
    {
        "recommend",
        "mupTable",
        "computeStatistics",
        "coordCheck",
        "transferCheck",
        "propagationChart",
        "phaseDiagramChart",
    }
)

DESCRIPTION = """\
Per-layer initialization recommendations for a neural-network architecture
(Xavier/Glorot, He/Kaiming, LeCun, orthogonal, truncated normal, PyTorch
defaults, GPT-2/Megatron, residual-aware schemes), with the numbers exactly as
PyTorch, Keras and JAX produce them.

**Every computation is a pure function of its request: the same request gets
the same response bytes.** Retrying and caching are therefore safe. (Problem
responses quote the request id, which differs between requests unless the
client sends its own `X-Request-ID`.)

Errors are RFC 9457 problem details (`application/problem+json`) whose `type`
says what kind of problem it is:

{kinds}

Every response carries `X-Request-ID`: the client's own when it sends a sane one
(1 to 128 of `A-Z a-z 0-9 . _ ~ : / + = -`), else one the service made up.
Problem responses repeat it as `instance`.

**API keys** are off unless the operator sets INITLAB_API_KEYS. When on, every
/v1 operation needs `Authorization: Bearer <key>` with one of the keys and
answers 401 `unauthorized` (with `WWW-Authenticate: Bearer realm="initlab"`)
without it; /healthz, /readyz, /metrics, /openapi.yaml and /docs never do.

**Cached answers**: a 200 answer of a /v1 operation may come from the
answering worker's response cache (`X-Cache: hit`, else `miss`); it is byte for
byte the answer the computation gives.

**CORS** headers are sent only to the browser origins the operator lists in
INITLAB_CORS_ORIGINS (methods GET and POST; request headers Content-Type,
Authorization and X-Request-ID; X-Request-ID exposed).

**Operations**: /healthz says the process answers; /readyz that the worker's
self-check passed (recommendations computed through the core equal their
closed forms, and the settings are usable); /metrics gives Prometheus metrics
summed over every worker; /docs renders this document, with everything it
needs served by the service itself.

Settings are server configuration: environment variables (with their defaults):

{limits}
"""

READINESS_DESCRIPTION = """\
Runs once per worker process, on its first call, and keeps the outcome:
recommendations for a 784 → 256 ReLU layer are computed through the core and
compared with their closed forms to 1e-12 relative (kaiming_normal std
√(2/784), He et al. 2015; xavier_uniform bound √(6/(784+256)), Glorot & Bengio
2010; lecun_normal std √(1/784), LeCun et al. 1998), and the configuration is
checked. A 503 `not-ready` problem names the checks that failed and lists all
of them under `checks`. /healthz stays the cheap liveness probe.
"""

METRICS_DESCRIPTION = """\
Prometheus text format 0.0.4, summed over every gunicorn worker whichever
answers (prometheus_client's multiprocess mode): `initlab_http_requests_total`
by method, route template (`unmatched` for any path no route serves) and
status; `initlab_http_request_duration_seconds` by route;
`initlab_refusals_total` by problem type slug (`reason`) and, for
`limit-exceeded`, the `limit`; `initlab_compute_seconds` (time in the route's
handler) by route; `initlab_response_cache_lookups_total` by `result` (hit,
miss) and `initlab_response_cache_bytes` (summed over the live workers).
"""

DOCS_DESCRIPTION = f"""\
This document rendered by Swagger UI {SWAGGER_UI_VERSION}, from /openapi.yaml.
The page's stylesheet, scripts and icons are served by the service under
/docs/assets/; it asks no other host (its Content-Security-Policy says so).
"""

STATISTICS_DESCRIPTION = """\
Builds the network of `spec` with every tensor drawn as `init` (and
`overrides`) say, exactly as /v1/recommendations would recommend it, then
follows the forward signal and the backward gradient layer by layer:

- `analytic`: the infinite-width mean-field maps (Poole et al. 2016;
  Schoenholz et al. 2017), with Gauss–Hermite quadrature and the closed forms
  of the ReLU family; deterministic, cheap, always within budget.
- `monte_carlo`: `seeds` independent networks of the spec's real widths are
  drawn and run on `batch_size` inputs, in float32 with float64 moment sums;
  each value is reported as the mean and SD over the networks. What is
  simulated (batch layout, conv grid, norms, gradients) is stated in
  `monte_carlo_model`, the model of attention in `attention_model`.

The cost of a Monte Carlo run is estimated from the shapes before any work
(`cost`); a request over INITLAB_COMPUTE_BUDGET (flop-equivalents: flops plus
each random number drawn at the price of `random_number_flops` flops) or
INITLAB_MEMORY_BUDGET (bytes) is refused with a 422 `limit-exceeded` problem
whose `estimate` member holds the estimated cost, `limit` and `limit_value`
the limit, and `detail` what to change (fewer seeds, a smaller batch, or
`method: analytic`).

The same request gives the same bytes on every run, process and worker: every
random stream derives from `seed`, and the answer records the seed and the
numpy version whose generators drew the numbers.
"""

PROPAGATION_DESCRIPTION = """\
A plain MLP of `depth` layers of `width` units, each followed by `activation`,
is drawn under each scheme of `schemes` and followed as /v1/statistics follows
a spec: per layer, the forward second moment E[h²] of the pre-activation and
the backward gradient second moment E[(∂L/∂h)²], as an analytic line and a
Monte Carlo band (mean ± SD over `seeds` networks). The axes say what they
show and suggest a log scale when a series spans more than 10×. The Monte
Carlo cost of all the schemes together is held against the compute budget
before any work, as in /v1/statistics; an over-budget request is refused
with a `limit-exceeded` problem carrying the `estimate`.
"""

PHASE_DIAGRAM_DESCRIPTION = """\
The phase diagram of a deep stack of `activation` (Schoenholz et al. 2017,
"Deep Information Propagation", figure 1): on an evenly spaced grid of σ_w²
(columns) and σ_b² (rows), χ₁, the fixed point q*, the correlation fixed point
c*, the correlation depth scale ξ_c and the phase, with the edge of chaos
(χ₁ = 1) as a line σ_w²(σ_b²). Deterministic: no seed is involved.
"""

# Problem responses, by status, and the operations each applies to.
_PROBLEM_RESPONSES = {
    "400": ("BadRequest", "The body is not strict JSON or not a JSON object."),
    "401": (
        "Unauthorized",
        "API keys are on (INITLAB_API_KEYS) and the request sent no"
        " `Authorization: Bearer <key>` with an accepted key.",
    ),
    "413": ("PayloadTooLarge", "The body is larger than INITLAB_MAX_BODY_BYTES."),
    "415": ("UnsupportedMediaType", "The body is not sent as application/json."),
    "422": (
        "UnprocessableContent",
        "Valid JSON that breaks a rule of the schema or of the mathematics, or a"
        " request over a configured limit (`limit-exceeded`).",
    ),
    "500": (
        "InternalServerError",
        "A bug; only the request id is returned, the traceback is logged.",
    ),
    "503": (
        "NotReady",
        "The worker's self-check failed; `checks` lists each check and its outcome.",
    ),
}


IMPORT_DESCRIPTION = """\
Builds the spec of a real model: `{"format": "huggingface", "config": {...}}`
with a config.json (model types gpt2, llama, mistral, bert, t5, vit; `head`
picks the head) or `{"format": "torchvision", "arch": "resnet50", "options":
{...}}`. The answer's `parameter_count` is the real model's, and `scale_dims`
names the sizes to vary (d_model, d_ff, n_heads, d_head, n_layer; width for
ResNets), with the same dim names for every model type. The same object, as
`{"import": {...}}`, is accepted in place of a spec by every endpoint.
"""

COORD_CHECK_DESCRIPTION = """\
Trains the spec (linear layers with any activation, biases, LayerNorm/RMSNorm,
residual groups) in numpy at each width, on synthetic data the answer states,
under standard parametrization (the init scheme at each width, one learning
rate) and µP (every value from the µP table of that width), and records the
mean |x| of every layer's output at t = 1 (the init) and after each update.
Per layer and step, the slope of log2 mean |x| against log2 width; a layer is
`flat` when |slope| < 0.1 at every step after the init. Work is estimated from
the shapes first and refused over INITLAB_TRAINING_BUDGET.
"""

TRANSFER_CHECK_DESCRIPTION = """\
Sweeps the base learning rate over a grid at each width, for SP and µP, and
reports the final training loss of each run, the best learning rate per width
and how far it moves across widths (Tensor Programs V, Figure 1): under µP it
should stay within one grid step. Every field has a default: `{}` runs the MLP
32 → w → w → 10 based at w = 32, at widths 32, 128 and 512. Work is estimated
first and refused over INITLAB_TRAINING_BUDGET.
"""

MUP_DESCRIPTION = """\
Expands the spec at the base dims and at each target's dims and classifies
every parameter tensor as the mup package does: an axis is width-like when its
size differs between the base and a target, a tensor with two width-like axes
is matrix-like (hidden), with one vector-like (input, output, bias, norm,
embedding), with none scalar-like. Each row gives the tensor's learning rate,
weight decay, init std and forward multiplier for `optimizer`, in `form`
(Tensor Programs V Table 8 as the mup package implements it, Table 3 without
multipliers, or the single-multiplier practitioner form). The service always
divides by the true fan_in multiplier; where the mup package 1.0.0 reads a
tensor differently (a weight stored (in, out)), the row's `mup_package` gives
the package's values. A repeat count that differs between the base and a target
is a depth change and needs `depth` (`completep` or `depth_mup`).
"""


def build_spec() -> APISpec:
    """The service's OpenAPI document as an :class:`APISpec`."""
    spec = APISpec(
        title="initlab",
        version=__version__,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={
            "description": DESCRIPTION.format(kinds=_kinds_table(), limits=_limits()),
        },
    )
    for tag, description in (
        ("recommendations", "Initialization of every parameter of an architecture."),
        (
            "statistics",
            "How the signal and the gradient move through a network at init:"
            " the mean-field prediction and finite-width simulation.",
        ),
        (
            "specs",
            "Specs from real models (Hugging Face configs, torchvision) and from"
            " presets; anywhere a spec is taken, an import or a preset may stand"
            " in its place.",
        ),
        (
            "mup",
            "µP: per-parameter learning rates, inits and multipliers from a tuned"
            " base model to wider (and deeper) targets.",
        ),
        ("visualizations", "Chart-ready series and grids for the frontend."),
        ("catalogue", "The activations and schemes the service knows."),
        ("operations", "Health and the contract itself."),
    ):
        spec.tag({"name": tag, "description": description})

    _add_components(spec)
    _add_paths(spec)
    return spec


class _DocumentDumper(yaml.SafeDumper):
    """YAML with multi-line text as literal blocks and no anchors: readable diffs."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_DocumentDumper.add_representer(str, _represent_text)


def openapi_yaml() -> str:
    """The document as YAML, keys in the order written (what ``make openapi`` saves)."""
    document = build_spec().to_dict()
    order = ("openapi", "info", "tags", "paths", "components")
    document = {key: document[key] for key in order if key in document} | document
    return yaml.dump(
        document,
        Dumper=_DocumentDumper,
        sort_keys=False,
        allow_unicode=True,
        width=88,
    )


def _add_components(spec: APISpec) -> None:
    add_spec_components(spec)
    spec.components.schema(
        SCHEME_REQUEST_COMPONENT,
        component=scheme_request_json_schema(scheme_catalogue()),
    )
    spec.components.schema(
        RESOLVED_SCHEME_COMPONENT, component=resolved_scheme_json_schema()
    )
    spec.components.schema("Problem", schema=ProblemSchema)
    spec.components.schema("ImportRequest", schema=ImportRequestSchema)
    spec.components.schema(SPEC_SOURCE_COMPONENT, component=spec_source_json_schema())
    spec.components.schema("ImportedSpec", schema=ImportedSpecResponseSchema)
    spec.components.schema("PresetsResponse", schema=PresetsResponseSchema)
    spec.components.schema("RecommendationRequest", schema=RecommendationRequestSchema)
    spec.components.schema(
        "RecommendationResponse", schema=RecommendationResponseSchema
    )
    spec.components.schema("StatisticsRequest", schema=StatisticsRequestSchema)
    spec.components.schema("StatisticsResponse", schema=StatisticsResponseSchema)
    spec.components.schema("MupTableRequest", schema=MupTableRequestSchema)
    spec.components.schema("MupTableResponse", schema=MupTableResponseSchema)
    spec.components.schema("CoordCheckRequest", schema=CoordCheckRequestSchema)
    spec.components.schema("CoordCheckResponse", schema=CoordCheckResponseSchema)
    spec.components.schema("TransferCheckRequest", schema=TransferCheckRequestSchema)
    spec.components.schema("TransferCheckResponse", schema=TransferCheckResponseSchema)
    spec.components.schema("PropagationChart", schema=PropagationChartSchema)
    spec.components.schema("PhaseDiagramChart", schema=PhaseDiagramChartSchema)
    spec.components.schema("ActivationsResponse", schema=ActivationsResponseSchema)
    spec.components.schema("SchemesResponse", schema=SchemesResponseSchema)
    spec.components.schema("Health", schema=HealthSchema)
    spec.components.schema("Readiness", schema=ReadinessSchema)
    spec.components.security_scheme(
        SECURITY_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key, sent as `Authorization: Bearer <key>`."
            " Enforced only when the operator turns keys on (INITLAB_API_KEYS);"
            " otherwise no key is needed and one sent is ignored.",
        },
    )

    spec.components.header(
        "Cache",
        {
            "description": "`hit` when the answer came from the worker's response"
            " cache, `miss` when it was computed; absent when the cache is off.",
            "required": False,
            "schema": {"type": "string", "enum": ["hit", "miss"]},
        },
    )
    spec.components.header(
        "WWWAuthenticate",
        {
            "description": "The challenge: `" + CHALLENGE + "`, with"
            ' `error="invalid_token"` when a key was sent but not accepted.',
            "required": True,
            "schema": {"type": "string"},
        },
    )
    spec.components.header(
        "RequestId",
        {
            "description": "The request id: the client's X-Request-ID when sane,"
            " else generated.",
            "required": True,
            "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
        },
    )
    spec.components.parameter(
        "RequestId",
        "header",
        {
            "name": REQUEST_ID_HEADER,
            "description": "An id for this request, echoed in the response; an"
            " absent or insane one is replaced by a generated id.",
            "required": False,
            "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
        },
    )
    for status, (name, description) in _PROBLEM_RESPONSES.items():
        spec.components.response(name, _problem_response(description, status))
    spec.components.header(
        "RetryAfter",
        {
            "description": "Seconds to wait before sending the request again"
            f" ({RETRY_AFTER_SECONDS}).",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        },
    )
    spec.components.response(
        "Busy",
        {
            "description": "The worker runs and queues as many multi-second"
            " computations as it is configured for"
            " (INITLAB_MAX_RUNNING_COMPUTATIONS, INITLAB_MAX_QUEUED_COMPUTATIONS,"
            " INITLAB_COMPUTATION_WAIT_SECONDS). Problem type: `busy`.",
            "headers": {
                REQUEST_ID_HEADER: {"$ref": "#/components/headers/RequestId"},
                "Retry-After": {"$ref": "#/components/headers/RetryAfter"},
            },
            "content": {PROBLEM_MEDIA_TYPE: {"schema": "Problem"}},
        },
    )


def _problem_response(description: str, status: str) -> dict[str, Any]:
    kinds = [
        kind
        for kind in ALL_PROBLEM_KINDS
        if str(kind.status) == status and kind is not BUSY
    ]
    kinds_text = ", ".join(f"`{kind.slug}`" for kind in kinds)
    headers = {REQUEST_ID_HEADER: {"$ref": "#/components/headers/RequestId"}}
    if status == "401":
        headers["WWW-Authenticate"] = {"$ref": "#/components/headers/WWWAuthenticate"}
    return {
        "description": f"{description} Problem types: {kinds_text}.",
        "headers": headers,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": "Problem"}},
    }


def _ok(
    description: str, schema: str | dict[str, Any], media_type: str = JSON_MEDIA_TYPE
) -> dict:
    return {
        "description": description,
        "headers": {REQUEST_ID_HEADER: {"$ref": "#/components/headers/RequestId"}},
        "content": {media_type: {"schema": schema}},
    }


def _problems(*statuses: str) -> dict[str, Any]:
    return {status: _PROBLEM_RESPONSES[status][0] for status in statuses}


def _protected(operation: dict[str, Any]) -> dict[str, Any]:
    """A /v1 operation: behind the optional API key, its 200 possibly cached."""
    responses = dict(operation["responses"])
    responses["401"] = _PROBLEM_RESPONSES["401"][0]
    if operation["operationId"] in GATED_OPERATIONS:
        responses["503"] = "Busy"
    ok = dict(responses["200"])
    ok["headers"] = {
        **ok["headers"],
        CACHE_HEADER: {"$ref": "#/components/headers/Cache"},
    }
    responses["200"] = ok
    return {
        **operation,
        "security": API_KEY_SECURITY,
        "responses": {status: responses[status] for status in sorted(responses)},
    }


def _add_paths(spec: APISpec) -> None:
    request_id = "RequestId"

    def add(path: str, operations: dict[str, dict[str, Any]]) -> None:
        if path.startswith("/v1/"):
            operations = {verb: _protected(op) for verb, op in operations.items()}
        spec.path(path=path, operations=operations)

    add(
        path="/v1/recommendations",
        operations={
            "post": {
                "operationId": "recommend",
                "tags": ["recommendations"],
                "summary": "Recommend an initialization for every parameter.",
                "description": "Expands the spec into its parameter tensors in"
                " forward order (PyTorch's names and shapes) and applies `scheme`,"
                " or the last override whose pattern matches it, to each.",
                "parameters": [request_id],
                "requestBody": {
                    "required": True,
                    "content": {JSON_MEDIA_TYPE: {"schema": "RecommendationRequest"}},
                },
                "responses": {
                    "200": _ok("The recommendations.", "RecommendationResponse"),
                    **_problems("400", "413", "415", "422", "500"),
                },
            }
        },
    )
    add(
        path="/v1/statistics",
        operations={
            "post": {
                "operationId": "computeStatistics",
                "tags": ["statistics"],
                "summary": "Per-layer statistics of a network at initialization.",
                "description": STATISTICS_DESCRIPTION,
                "parameters": [request_id],
                "requestBody": {
                    "required": True,
                    "content": {JSON_MEDIA_TYPE: {"schema": "StatisticsRequest"}},
                },
                "responses": {
                    "200": _ok(
                        "Per-layer rows, the summary, and what they were computed"
                        " with.",
                        "StatisticsResponse",
                    ),
                    **_problems("400", "413", "415", "422", "500"),
                },
            }
        },
    )
    add(
        path="/v1/specs/import",
        operations={
            "post": {
                "operationId": "importSpec",
                "tags": ["specs"],
                "summary": "The spec of a Hugging Face config or a torchvision"
                " architecture.",
                "description": IMPORT_DESCRIPTION,
                "parameters": [request_id],
                "requestBody": {
                    "required": True,
                    "content": {JSON_MEDIA_TYPE: {"schema": "ImportRequest"}},
                },
                "responses": {
                    "200": _ok(
                        "The spec, its parameter count and the dims to scale.",
                        "ImportedSpec",
                    ),
                    **_problems("400", "413", "415", "422", "500"),
                },
            }
        },
    )
    add(
        path="/v1/specs/expand",
        operations={
            "post": {
                "operationId": "expandPreset",
                "tags": ["specs"],
                "summary": "The spec a preset builds from its parameters.",
                "description": "The body names the preset (`preset`: mlp, resnet or"
                " transformer) and gives its parameters beside it, as GET"
                " /v1/presets lists them; omitted parameters take their defaults.",
                "parameters": [request_id],
                "requestBody": {
                    "required": True,
                    "content": {
                        JSON_MEDIA_TYPE: {
                            "schema": {
                                "type": "object",
                                "required": ["preset"],
                                "properties": {"preset": {"type": "string"}},
                                "additionalProperties": True,
                            }
                        }
                    },
                },
                "responses": {
                    "200": _ok(
                        "The spec, its parameter count and the dims to scale.",
                        "ImportedSpec",
                    ),
                    **_problems("400", "413", "415", "422", "500"),
                },
            }
        },
    )
    add(
        path="/v1/presets",
        operations={
            "get": {
                "operationId": "listPresets",
                "tags": ["specs"],
                "summary": "Every preset and its parameters (types, defaults,"
                " allowed values).",
                "parameters": [request_id],
                "responses": {
                    "200": _ok("The presets.", "PresetsResponse"),
                    **_problems("422", "500"),
                },
            }
        },
    )
    add(
        path="/v1/mup/table",
        operations={
            "post": {
                "operationId": "mupTable",
                "tags": ["mup"],
                "summary": "µP learning rates, inits and multipliers per parameter,"
                " from a tuned base model to each target.",
                "description": MUP_DESCRIPTION,
                "parameters": [request_id],
                "requestBody": {
                    "required": True,
                    "content": {JSON_MEDIA_TYPE: {"schema": "MupTableRequest"}},
                },
                "responses": {
                    "200": _ok(
                        "One table per target, and what it was computed with.",
                        "MupTableResponse",
                    ),
                    **_problems("400", "413", "415", "422", "500"),
                },
            }
        },
    )
    add(
        path="/v1/mup/coord-check",
        operations={
            "post": {
                "operationId": "coordCheck",
                "tags": ["mup"],
                "summary": (
                    "Coordinate check: how each layer's output size moves with"
                    " width during the first steps of training, under SP and µP."
                ),
                "description": COORD_CHECK_DESCRIPTION,
                "parameters": [request_id],
                "requestBody": {
                    "required": True,
                    "content": {JSON_MEDIA_TYPE: {"schema": "CoordCheckRequest"}},
                },
                "responses": {
                    "200": _ok(
                        "Per parametrization, layer, step and width: mean |x| with"
                        " its SD over seeds, the slope against width and a verdict;"
                        " chart-ready.",
                        "CoordCheckResponse",
                    ),
                    **_problems("400", "413", "415", "422", "500"),
                },
            }
        },
    )
    add(
        path="/v1/mup/transfer-check",
        operations={
            "post": {
                "operationId": "transferCheck",
                "tags": ["mup"],
                "summary": (
                    "Learning-rate transfer check: the best learning rate per"
                    " width under SP and µP."
                ),
                "description": TRANSFER_CHECK_DESCRIPTION,
                "parameters": [request_id],
                "requestBody": {
                    "required": True,
                    "content": {JSON_MEDIA_TYPE: {"schema": "TransferCheckRequest"}},
                },
                "responses": {
                    "200": _ok(
                        "The final loss per (parametrization, width, learning rate),"
                        " the best learning rate per width, its drift and a verdict;"
                        " chart-ready.",
                        "TransferCheckResponse",
                    ),
                    **_problems("400", "413", "415", "422", "500"),
                },
            }
        },
    )
    add(
        path="/v1/visualizations/propagation",
        operations={
            "get": {
                "operationId": "propagationChart",
                "tags": ["visualizations"],
                "summary": "Forward and backward second moments, layer by layer,"
                " under several schemes.",
                "description": PROPAGATION_DESCRIPTION,
                "parameters": [
                    {"in": "query", "schema": PropagationQuerySchema},
                    request_id,
                ],
                "responses": {
                    "200": _ok("The series, axes and verdicts.", "PropagationChart"),
                    **_problems("422", "500"),
                },
            }
        },
    )
    add(
        path="/v1/visualizations/phase-diagram",
        operations={
            "get": {
                "operationId": "phaseDiagramChart",
                "tags": ["visualizations"],
                "summary": "χ₁, q*, c* and ξ_c over a grid of (σ_w², σ_b²), and the"
                " edge of chaos.",
                "description": PHASE_DIAGRAM_DESCRIPTION,
                "parameters": [
                    {"in": "query", "schema": PhaseDiagramQuerySchema},
                    request_id,
                ],
                "responses": {
                    "200": _ok("The grids and the edge of chaos.", "PhaseDiagramChart"),
                    **_problems("422", "500"),
                },
            }
        },
    )
    add(
        path="/v1/activations",
        operations={
            "get": {
                "operationId": "listActivations",
                "tags": ["catalogue"],
                "summary": "Gains and Gaussian moments of the activations.",
                "description": "Moments of φ(z) for z ~ N(0, 1) and the gains that"
                " keep the forward second moment, the variance or the backward"
                " gradient, next to PyTorch's calculate_gain.",
                "parameters": [
                    {"in": "query", "schema": ActivationQuerySchema},
                    request_id,
                ],
                "responses": {
                    "200": _ok("The activations asked for.", "ActivationsResponse"),
                    **_problems("422", "500"),
                },
            }
        },
    )
    add(
        path="/v1/schemes",
        operations={
            "get": {
                "operationId": "listSchemes",
                "tags": ["catalogue"],
                "summary": "The initialization schemes, their options and formulas.",
                "parameters": [request_id],
                "responses": {
                    "200": _ok("Every scheme.", "SchemesResponse"),
                    **_problems("422", "500"),
                },
            }
        },
    )
    add(
        path="/healthz",
        operations={
            "get": {
                "operationId": "health",
                "tags": ["operations"],
                "summary": "Whether the process answers.",
                "parameters": [request_id],
                "responses": {
                    "200": _ok("The service is up.", "Health"),
                    **_problems("500"),
                },
            }
        },
    )
    add(
        path="/readyz",
        operations={
            "get": {
                "operationId": "ready",
                "tags": ["operations"],
                "summary": "Whether this worker computes known answers right and its"
                " settings hold.",
                "description": READINESS_DESCRIPTION,
                "parameters": [request_id],
                "responses": {
                    "200": _ok("Every check passed.", "Readiness"),
                    **_problems("500", "503"),
                },
            }
        },
    )
    add(
        path="/metrics",
        operations={
            "get": {
                "operationId": "metrics",
                "tags": ["operations"],
                "summary": "Prometheus metrics of every worker.",
                "description": METRICS_DESCRIPTION,
                "parameters": [request_id],
                "responses": {
                    "200": _ok(
                        "The metrics, in the text exposition format.",
                        {"type": "string"},
                        METRICS_CONTENT_TYPE,
                    ),
                    **_problems("500"),
                },
            }
        },
    )
    add(
        path="/docs",
        operations={
            "get": {
                "operationId": "docs",
                "tags": ["operations"],
                "summary": "This document as a web page (Swagger UI, offline).",
                "description": DOCS_DESCRIPTION,
                "parameters": [request_id],
                "responses": {
                    "200": _ok("The page.", {"type": "string"}, HTML_MEDIA_TYPE),
                    **_problems("500"),
                },
            }
        },
    )
    add(
        path="/openapi.yaml",
        operations={
            "get": {
                "operationId": "openapi",
                "tags": ["operations"],
                "summary": "This document.",
                "parameters": [request_id],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document, as committed.",
                        "headers": {
                            REQUEST_ID_HEADER: {
                                "$ref": "#/components/headers/RequestId"
                            }
                        },
                        "content": {OPENAPI_MEDIA_TYPE: {"schema": {"type": "object"}}},
                    },
                    **_problems("500"),
                },
            }
        },
    )


def _kinds_table() -> str:
    rows = ["| status | type | when |", "|---|---|---|"]
    rows += [
        f"| {kind.status} | `{kind.type}` | {kind.description} |"
        for kind in ALL_PROBLEM_KINDS
    ]
    return "\n".join(rows)


def _limits() -> str:
    return "\n".join(
        f"- `{setting.variable}` ({setting.default or 'unset'}): {setting.description}"
        for setting in settings()
    )


if __name__ == "__main__":
    # Bytes, so the file is UTF-8 whatever the locale of the shell redirecting it.
    sys.stdout.buffer.write(openapi_yaml().encode("utf-8"))
