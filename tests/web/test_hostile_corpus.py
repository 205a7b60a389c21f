"""Hand-written hostile requests, each sent to the live service (gunicorn).

Every case is a request a careless or malicious client could send: bodies
that are not JSON, JSON that is not an object, numbers JSON allows but a
double cannot hold, sizes far past every limit, names no layer can have,
wrong content types and methods, query strings of garbage. Each must be
answered at once with a 4xx ``application/problem+json`` that conforms to the
contract's ``Problem`` schema and whose ``errors`` name the field at fault
(its JSON pointer) with a message that says what is wrong and what is
allowed; and the service must still answer ``/healthz`` afterwards.

The expected fragments are the service's words for the rule each case
breaks, so a case fails when its answer stops naming the field or the rule.
"""

from __future__ import annotations

import http.client
import json
import math
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from openapi_schema_validator import OAS31Validator

from initlab.web.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE

pytestmark = pytest.mark.server

# The server must answer every case well within this; a hang fails the case.
TIMEOUT_SECONDS = 30
JSON = "application/json"
MAX_BODY_BYTES = 1048576  # INITLAB_MAX_BODY_BYTES's default
HUGE = 10**400  # valid JSON, which no double holds
UNDERFLOWING = {"name": "variance_scaling", "scale": 5e-324}  # scale/fan_in = 0
CUT = "…"  # ends a quoted value cut to 80 characters

MLP = {
    "dims": {"w": 8},
    "layers": [
        {"kind": "linear", "name": "a", "in": 3, "out": "w", "activation": "relu"},
        {"kind": "linear", "name": "b", "in": "w", "out": 2},
    ],
}
CHECK = {"spec": MLP, "widths": [8, 16], "width_dim": "w", "steps": 2, "seeds": 1}
TABLE = {"spec": MLP, "targets": [{"w": 16}], "lr": 1e-3}
TRANSFER = {**CHECK, "lrs": [1e-3, 1e-2]}
NINE_SCHEMES = (
    "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
    "lecun_uniform", "lecun_normal", "orthogonal", "trunc_normal", "normal",
)  # fmt: skip
GPT2 = {
    "format": "huggingface",
    "config": {
        "model_type": "gpt2",
        "vocab_size": 50257,
        "n_positions": 1024,
        "n_embd": 768,
        "n_layer": 12,
        "n_head": 12,
    },
}

# Each POST endpoint with a body it accepts, which the cases below break.
ENDPOINTS: dict[str, tuple[str, dict[str, Any]]] = {
    "recommendations": ("/v1/recommendations", {"spec": MLP}),
    "statistics": ("/v1/statistics", {"spec": MLP, "method": "analytic"}),
    "mup-table": ("/v1/mup/table", TABLE),
    "coord-check": ("/v1/mup/coord-check", CHECK),
    "transfer-check": ("/v1/mup/transfer-check", TRANSFER),
    "specs-import": ("/v1/specs/import", {"format": "torchvision", "arch": "resnet18"}),
    "specs-expand": ("/v1/specs/expand", {"preset": "mlp"}),
}


@dataclass(frozen=True)
class Case:
    """One hostile request and the problem it must get.

    Some entry of ``errors`` has ``pointer`` and a message containing
    ``fragment`` (for 404 and 405, which have no field, the detail contains
    it). ``limit`` is the ``limit`` member of a limit-exceeded problem.
    ``query`` is sent as written, percent-encoded.
    """

    name: str
    method: str
    path: str
    status: int
    problem: str
    pointer: str
    fragment: str
    body: bytes | None = None
    content_type: str | None = JSON
    query: str = ""
    chunked: bool = False
    limit: str | None = None


def _json(document: Any) -> bytes:
    """UTF-8 JSON, non-ASCII characters written as themselves."""
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def _encoded(document: Any) -> bytes:
    """:func:`_json`, or ASCII JSON when ``document`` holds a lone surrogate
    (sent as the escape \\ud800, the only way JSON can carry one)."""
    try:
        return _json(document)
    except UnicodeEncodeError:
        return json.dumps(document).encode("ascii")


def _layer(**fields: Any) -> dict[str, Any]:
    """A request body whose spec's first layer has ``fields`` replaced."""
    first = {**MLP["layers"][0], **fields}
    return {"spec": {**MLP, "layers": [first, MLP["layers"][1]]}}


def _body_cases(endpoint: str) -> Iterator[Case]:
    """What breaks a body before any field is read: every POST endpoint alike."""
    path, valid = ENDPOINTS[endpoint]
    unknown = (
        "unknown parameter {} for preset" if "expand" in path else "unknown field {}"
    )
    two_megabytes = b'{"padding": "' + b"x" * (2_000_000 - 15) + b'"}'
    nested = b"[" * 100 + b"]" * 100
    form = "application/x-www-form-urlencoded"
    multipart = "multipart/form-data; boundary=x"
    latin_1 = "application/json; charset=latin-1"
    media = "unsupported-media-type"
    malformed = "malformed-json"
    not_object = "not-an-object"
    # (name, body, content type, status, problem, pointer, fragment)
    broken = [
        ("nested-arrays-1e5", b"[" * 100_000 + b"]" * 100_000, JSON, 400,
         malformed, "", "arrays and objects nest too deeply to parse"),
        ("nested-arrays-100-in-a-field", b'{"spec": ' + nested + b"}", JSON, 400,
         malformed, "/spec" + "/0" * 63, "nested deeper than 64 levels"),
        ("nan-literal", b'{"spec": NaN}', JSON, 400, malformed, "",
         "NaN is not a JSON number (NaN and Infinity are refused)"),
        ("infinity-literal", b'{"spec": Infinity}', JSON, 400, malformed, "",
         "Infinity is not a JSON number"),
        ("minus-infinity-literal", b'{"spec": -Infinity}', JSON, 400, malformed,
         "", "-Infinity is not a JSON number"),
        ("float-1e400", b'{"spec": 1e400}', JSON, 400, malformed, "",
         "1e400 overflows a double-precision number at line 1, column 10"),
        ("integer-of-5001-digits", b'{"spec": 1' + b"0" * 5000 + b"}", JSON, 400,
         malformed, "", "an integer has more digits than the service reads"),
        ("invalid-utf8", b'{"spec": "\xff\xfe"}', JSON, 400, malformed, "",
         "the body is not UTF-8: byte 0xff at offset 10"),
        ("a-lone-surrogate-in-utf8", b'{"spec": "\xed\xa0\x80"}', JSON, 400,
         malformed, "", "the body is not UTF-8: byte 0xed at offset 10"),
        ("duplicate-keys", b'{"spec": 1, "spec": 2}', JSON, 400, malformed, "",
         'the key "spec" appears twice in one object'),
        ("empty-body", b"", JSON, 400, malformed, "", "the body is empty"),
        ("body-a-string", b'"spec"', JSON, 400, not_object, "",
         "must be a JSON object; got a string"),
        ("body-a-number", b"42", JSON, 400, not_object, "",
         "must be a JSON object; got a number"),
        ("body-null", b"null", JSON, 400, not_object, "",
         "must be a JSON object; got null"),
        ("body-an-array", b"[]", JSON, 400, not_object, "",
         "must be a JSON object; got an array"),
        ("body-true", b"true", JSON, 400, not_object, "",
         "must be a JSON object; got true"),
        ("body-of-2-mb", two_megabytes, JSON, 413, "body-too-large", "",
         f"over INITLAB_MAX_BODY_BYTES = {MAX_BODY_BYTES} bytes; got 2000000 bytes"),
        ("text-plain", _json(valid), "text/plain", 415, media, "",
         "Content-Type must be application/json; got text/plain"),
        ("form-data", b"spec=1", form, 415, media, "", f"got {form}"),
        ("multipart", b"--x\r\n\r\n--x--", multipart, 415, media, "",
         f"got {multipart}"),
        ("no-content-type", _json(valid), None, 415, media, "",
         "Content-Type must be application/json; got no Content-Type"),
        ("latin-1-charset", _json(valid), latin_1, 415, media, "", f"got {latin_1}"),
        ("unknown-field", _json({**valid, "bogus": 1}), JSON, 422, "validation",
         "/bogus", unknown.format('"bogus"')),
        # The key written as the JSON escape \ud800: a string no UTF-8 can hold.
        ("unknown-field-a-lone-surrogate", json.dumps({**valid, "\ud800": 1}).encode(),
         JSON, 422, "validation", "/\ud800", unknown.format('"\ud800"')),
    ]  # fmt: skip
    for name, body, content_type, status, problem, pointer, fragment in broken:
        yield Case(
            f"{endpoint}-{name}",
            "POST",
            path,
            status,
            problem,
            pointer,
            fragment,
            body,
            content_type,
        )

    yield Case(
        f"{endpoint}-body-of-2-mb-chunked",
        "POST",
        path,
        413,
        "body-too-large",
        "",
        f"over INITLAB_MAX_BODY_BYTES = {MAX_BODY_BYTES} bytes",
        two_megabytes,
        chunked=True,
    )
    yield Case(
        f"{endpoint}-get-instead-of-post",
        "GET",
        path,
        405,
        "method-not-allowed",
        "",
        "use one of OPTIONS, POST",
        content_type=None,
    )


L0 = "/spec/layers/0"
NAME_RULE = "'_' or '-' (no dots: nesting makes the dotted path); got"
SLOW_GRID = "a phase diagram may count at most 2500"
AS_JSON = "must be a number written as in JSON, such as 0.2, -1 or 1e-3; got"

# (endpoint, name, body, pointer, fragment, limit): every one a 422.
FIELD_CASES: list[tuple[str, str, Any, str, str, str | None]] = [
    ("recommendations", "size-10-to-the-400", _layer(**{"in": HUGE}), f"{L0}/in",
     "over the limit max_dim_size = 2147483647: got size = 1000", "max_dim_size"),
    ("recommendations", "sizes-10-to-the-9", _layer(**{"in": 10**9, "out": 10**9}),
     L0, "got a layer that holds 1e+18 parameters", "max_parameters"),
    ("recommendations", "size-a-string", _layer(**{"in": "768"}), f"{L0}/in",
     'got the string "768", which is not a dim name', None),
    ("recommendations", "size-a-boolean", _layer(**{"in": True}), f"{L0}/in",
     "got true (booleans are not sizes)", None),
    ("recommendations", "size-a-float", _layer(**{"in": 768.0}), f"{L0}/in",
     "must be a positive integer or the name of a dim; got 768.0", None),
    ("recommendations", "size-negative", _layer(**{"in": -3}), f"{L0}/in",
     "got -3; sizes start at 1", None),
    ("recommendations", "size-zero", _layer(**{"in": 0}), f"{L0}/in",
     "got 0; sizes start at 1", None),
    ("recommendations", "name-emoji", _layer(name="🔥"), f"{L0}/name",
     f'{NAME_RULE} "🔥"', None),
    ("recommendations", "name-right-to-left-override", _layer(name="\u202eabc"),
     f"{L0}/name", f'{NAME_RULE} "\u202eabc"', None),
    ("recommendations", "name-nul", _layer(name="a\u0000b"), f"{L0}/name",
     f'{NAME_RULE} "a\\u0000b"', None),
    ("recommendations", "name-a-lone-surrogate", _layer(name="\ud800"),
     f"{L0}/name", f'{NAME_RULE} "\ud800"', None),
    ("recommendations", "name-of-10000-characters", _layer(name="x" * 10_000),
     f"{L0}/name", f'{NAME_RULE} "{"x" * 78}{CUT}', None),
    ("recommendations", "duplicate-layer-names",
     {"spec": {**MLP, "layers": [MLP["layers"][1]] * 2}}, "/spec/layers/1/name",
     'duplicate name "b": the item at layers/0 already has it', None),
    ("recommendations", "no-layers", {"spec": {"layers": []}}, "/spec/layers",
     "a spec needs at least one layer; got an empty list", None),
    ("recommendations", "spec-an-empty-object", {"spec": {}}, "/spec/layers",
     'missing: a spec needs "layers"', None),
    ("recommendations", "spec-an-array", {"spec": []}, "/spec",
     "must be the architecture spec", None),
    ("recommendations", "no-spec", {}, "/spec", "required: the architecture spec",
     None),
    ("recommendations", "layer-kind-misspelt", _layer(kind="lineer"), f"{L0}/kind",
     'unknown layer kind "lineer"; allowed: linear, conv1d', None),
    ("recommendations", "activation-unknown", _layer(activation="swish"),
     f"{L0}/activation", 'unknown activation "swish"; allowed: identity', None),
    ("recommendations", "repeat-count-10-to-the-9",
     {"spec": {"dims": {"w": 8}, "layers": [
         {"kind": "repeat", "count": 10**9, "layers": [MLP["layers"][1]]}]}},
     f"{L0}/count", "got a repeat count of 1000000000", "max_repeat_count"),
    ("recommendations", "300-overrides",
     {"spec": MLP, "overrides": {f"p{i}": "auto" for i in range(300)}}, "/overrides",
     "over the limit max_overrides = 256: got 300 override patterns",
     "max_overrides"),
    ("recommendations", "scale-underflowing", {"spec": MLP, "scheme": UNDERFLOWING},
     "/scheme/scale", "variance scale/n = 5e-324/3, which underflows to 0", None),
    ("statistics", "seeds-10-to-the-9", {"spec": MLP, "seeds": 10**9}, "/seeds",
     "over the limit max_seeds = 64: got 1000000000", "max_seeds"),
    ("statistics", "batch-size-a-float", {"spec": MLP, "batch_size": 1.5},
     "/batch_size", "must be an integer; got 1.5", None),
    ("statistics", "seed-negative", {"spec": MLP, "seed": -1}, "/seed",
     "must be an integer in [0, 2**53 - 1]; got -1", None),
    ("statistics", "second-moment-a-string",
     {"spec": MLP, "input": {"second_moment": "1"}}, "/input/second_moment",
     'must be a JSON number; got "1"', None),
    ("statistics", "second-moment-10-to-the-400",
     {"spec": MLP, "input": {"second_moment": HUGE}}, "/input/second_moment",
     "which overflows a double-precision number", None),
    ("statistics", "method-unknown", {"spec": MLP, "method": "exact"}, "/method",
     'unknown method "exact"; allowed: analytic, monte_carlo, both', None),
    ("statistics", "width-10-to-the-9-simulated",
     {"spec": {**MLP, "dims": {"w": 10**9}}, "method": "monte_carlo"},
     "/spec/layers", "over the limit compute_budget", "compute_budget"),
    ("statistics", "scale-underflowing", {"spec": MLP, "init": UNDERFLOWING},
     "/init/scale", "which underflows to 0", None),
    ("mup-table", "lr-a-string", {**TABLE, "lr": "1e-3"}, "/lr",
     'must be a JSON number; got "1e-3"', None),
    ("mup-table", "lr-missing", {"spec": MLP, "targets": [{"w": 16}]}, "/lr",
     'missing: a µP table request needs "lr"', None),
    ("mup-table", "lr-zero", {**TABLE, "lr": 0}, "/lr",
     "must be a number in [1e-20, 1e6]; got 0", None),
    ("mup-table", "lr-10-to-the-400", {**TABLE, "lr": HUGE}, "/lr",
     "which overflows a double-precision number", None),
    ("mup-table", "target-a-boolean", {**TABLE, "targets": [{"w": True}]},
     "/targets/0/w", 'dim "w" must be a positive integer; got true', None),
    ("mup-table", "target-a-float", {**TABLE, "targets": [{"w": 16.0}]},
     "/targets/0/w", 'dim "w" must be a positive integer; got 16.0', None),
    ("mup-table", "65-targets", {**TABLE, "targets": [{"w": 16}] * 65}, "/targets",
     "65 targets are more than the 64 one table may hold", "max_mup_targets"),
    ("mup-table", "optimizer-unknown", {**TABLE, "optimizer": "lion"}, "/optimizer",
     'unknown optimizer "lion"; allowed: adamw, adam, sgd', None),
    ("mup-table", "scale-underflowing", {**TABLE, "init_scheme": UNDERFLOWING},
     "/init_scheme/scale", "which underflows to 0", None),
    ("coord-check", "width-10-to-the-9", {**CHECK, "widths": [8, 10**9]},
     "/widths/1", "a width is in [1, 65536]; got 1000000000", None),
    ("coord-check", "width-a-float", {**CHECK, "widths": [8, 16.0]}, "/widths/1",
     "must be an integer; got 16.0", None),
    ("coord-check", "steps-10-to-the-9", {**CHECK, "steps": 10**9}, "/steps",
     "must be an integer in [2, 64]; got 1000000000", None),
    ("coord-check", "lr-a-boolean", {**CHECK, "lr": True}, "/lr",
     "must be a JSON number; got true", None),
    ("coord-check", "scale-underflowing", {**CHECK, "init_scheme": UNDERFLOWING},
     "/init_scheme/scale", "which underflows to 0", None),
    ("transfer-check", "lr-a-string", {**TRANSFER, "lrs": ["0.1"]}, "/lrs/0",
     'must be a JSON number; got "0.1"', None),
    ("transfer-check", "lrs-decreasing", {**TRANSFER, "lrs": [0.1, 0.01]}, "/lrs",
     "learning rates must be given in increasing order", None),
    ("transfer-check", "steps-10-to-the-9", {**TRANSFER, "steps": 10**9}, "/steps",
     "must be an integer in [2, 10000]; got 1000000000", None),
    ("transfer-check", "no-seeds", {**TRANSFER, "seeds": 0}, "/seeds",
     "must be an integer in [1, 16]; got 0", None),
    ("transfer-check", "scale-underflowing",
     {**TRANSFER, "init_scheme": UNDERFLOWING}, "/init_scheme/scale",
     "which underflows to 0", None),
    ("specs-import", "format-unknown", {"format": "onnx"}, "/format",
     'unknown import format "onnx"; allowed: huggingface, torchvision', None),
    ("specs-import", "model-type-emoji",
     {"format": "huggingface", "config": {"model_type": "🔥"}}, "/config/model_type",
     'unsupported model_type "🔥"; supported: gpt2, llama', None),
    ("specs-import", "width-a-string",
     {**GPT2, "config": {**GPT2["config"], "n_embd": "768"}}, "/config/n_embd",
     'n_embd (the width) must be a positive integer; got "768" (a string)', None),
    ("specs-import", "width-a-float",
     {**GPT2, "config": {**GPT2["config"], "n_embd": 768.0}}, "/config/n_embd",
     "got 768.0 (a number) (write 768, without the decimal point)", None),
    ("specs-import", "depth-a-boolean",
     {**GPT2, "config": {**GPT2["config"], "n_layer": True}}, "/config/n_layer",
     "got true (a boolean)", None),
    ("specs-import", "heads-not-dividing-the-width",
     {**GPT2, "config": {**GPT2["config"], "n_head": 7}}, "/config/n_head",
     "n_head = 7 does not divide the width 768", None),
    ("specs-import", "sizes-over-every-limit",
     {**GPT2, "config": {**GPT2["config"], "vocab_size": 2**31 - 1, "n_embd": 2**20,
                         "n_head": 16}},
     "", "the spec that this request builds (huggingface:gpt2) breaks a rule at",
     "max_parameters"),
    ("specs-import", "architecture-unknown", {"format": "torchvision", "arch": "vgg16"},
     "/arch", 'unknown torchvision architecture "vgg16"; supported: resnet18', None),
    ("specs-expand", "width-10-to-the-9", {"preset": "mlp", "width": 10**9}, "",
     "the spec that this request builds (preset:mlp) breaks a rule at",
     "max_parameters"),
    ("specs-expand", "width-a-boolean", {"preset": "mlp", "width": True}, "/width",
     "width must be an integer from 1 to 2147483647; got true", None),
    ("specs-expand", "width-a-float", {"preset": "mlp", "width": 256.0}, "/width",
     "width must be an integer from 1 to 2147483647; got 256.0", None),
    ("specs-expand", "parameter-misspelt", {"preset": "mlp", "wdith": 256}, "/wdith",
     'unknown parameter "wdith" for preset "mlp"', None),
    ("specs-expand", "preset-nul", {"preset": "\u0000"}, "/preset",
     'unknown preset "\\u0000"; allowed: mlp, resnet, transformer', None),
    ("specs-expand", "no-preset", {}, "/preset",
     "missing: name the preset, one of mlp, resnet, transformer", None),
    ("specs-expand", "depth-10-to-the-9", {"preset": "transformer", "n_layer": 10**9},
     "/n_layer", "n_layer must be an integer from 1 to 10000; got 1000000000", None),
]  # fmt: skip

ACTIVATIONS = "/v1/activations"
PROPAGATION = "/v1/visualizations/propagation"
PHASES = "/v1/visualizations/phase-diagram"
NEGATIVE_SLOPE = "/negative_slope"

# (path, name, query, pointer, fragment, limit): every one a 422.
QUERY_CASES: list[tuple[str, str, str, str, str, str | None]] = [
    (ACTIVATIONS, "name-twice", "name=relu&name=tanh", "/name",
     "the query parameter name is given 2 times", None),
    (ACTIVATIONS, "slope-nan", "name=leaky_relu&negative_slope=nan", NEGATIVE_SLOPE,
     f'{AS_JSON} "nan"', None),
    (ACTIVATIONS, "slope-infinity", "name=leaky_relu&negative_slope=Infinity",
     NEGATIVE_SLOPE, f'{AS_JSON} "Infinity"', None),
    (ACTIVATIONS, "slope-1e400", "name=leaky_relu&negative_slope=1e400",
     NEGATIVE_SLOPE, 'got "1e400", which overflows a double-precision number', None),
    (ACTIVATIONS, "slope-hexadecimal", "name=leaky_relu&negative_slope=0x1",
     NEGATIVE_SLOPE, f'{AS_JSON} "0x1"', None),
    (ACTIVATIONS, "slope-underscores", "name=leaky_relu&negative_slope=1_0",
     NEGATIVE_SLOPE, f'{AS_JSON} "1_0"', None),
    (ACTIVATIONS, "slope-empty", "name=leaky_relu&negative_slope=", NEGATIVE_SLOPE,
     f'{AS_JSON} ""', None),
    (ACTIVATIONS, "slope-out-of-range", "name=leaky_relu&negative_slope=-1",
     NEGATIVE_SLOPE, "negative_slope must be a number in [0, 1], got -1.0", None),
    (ACTIVATIONS, "slope-without-a-name", "negative_slope=0.2", NEGATIVE_SLOPE,
     "negative_slope describes one activation; add name=", None),
    (ACTIVATIONS, "name-emoji", "name=%F0%9F%94%A5", "/name",
     'unknown activation "🔥"; allowed: identity, relu', None),
    (ACTIVATIONS, "name-nul", "name=%00", "/name", 'unknown activation "\\u0000"',
     None),
    (ACTIVATIONS, "name-invalid-utf8", "name=%ff%fe", "/name", "unknown activation",
     None),
    (ACTIVATIONS, "name-of-3000-characters", "name=" + "y" * 3000, "/name",
     f'unknown activation "{"y" * 78}{CUT}', None),
    (ACTIVATIONS, "parameter-unknown", "bogus=1", "/bogus",
     'unknown query parameter "bogus"; allowed parameters: alpha, beta, name', None),
    (ACTIVATIONS, "parameter-of-another-activation", "name=relu&alpha=2", "/alpha",
     'relu takes no parameters, not "alpha"', None),
    (PROPAGATION, "depth-10-to-the-9", "depth=1000000000", "/depth",
     "over the limit max_chart_depth = 500: got 1000000000", "max_chart_depth"),
    (PROPAGATION, "width-10-to-the-9", "width=1000000000", "/width",
     "over the limit max_chart_width = 4096: got 1000000000", "max_chart_width"),
    (PROPAGATION, "depth-negative", "depth=-1", "/depth",
     "must be at least 1; got -1", None),
    (PROPAGATION, "depth-a-fraction", "depth=2.5", "/depth",
     'must be an integer written in decimal digits; got "2.5"', None),
    (PROPAGATION, "9-schemes", "schemes=" + ",".join(NINE_SCHEMES),
     "/schemes", "over the limit max_chart_schemes = 8: got 9 schemes",
     "max_chart_schemes"),
    (PROPAGATION, "50-schemes-the-same", "schemes=" + ",".join(["kaiming_normal"] * 50),
     "/schemes", 'names "kaiming_normal" more than once', None),
    (PROPAGATION, "schemes-only-commas", "schemes=,,,", "/schemes",
     "must be scheme names separated by commas", None),
    (PROPAGATION, "scheme-emoji", "schemes=%F0%9F%94%A5", "/schemes/0/name",
     'unknown scheme "🔥"; allowed: auto', None),
    (PROPAGATION, "seed-1e400", "seed=1e400", "/seed",
     'must be an integer written in decimal digits; got "1e400"', None),
    (PROPAGATION, "bias-variance-infinity", "sigma_b2=Infinity", "/sigma_b2",
     f'{AS_JSON} "Infinity"', None),
    (PROPAGATION, "input-minus-zero", "input_second_moment=-0",
     "/input_second_moment", "must be a number in (0, 1e12]; got -0.0", None),
    (PROPAGATION, "activation-of-3000-characters", "activation=" + "y" * 3000,
     "/activation", f'unknown activation "{"y" * 78}{CUT}', None),
    (PROPAGATION, "parameter-unknown", "bogus=1", "/bogus",
     'unknown query parameter "bogus"', None),
    (PHASES, "steps-10-to-the-9", "sigma_w2_steps=1000000000", "/sigma_w2_steps",
     "over the limit max_grid_steps = 101: got 1000000000", "max_grid_steps"),
    (PHASES, "weight-variance-zero", "sigma_w2_min=0", "/sigma_w2_min",
     "must be in (0, 1e6]; got 0.0", None),
    (PHASES, "maximum-below-minimum", "sigma_w2_min=5&sigma_w2_max=1",
     "/sigma_w2_max", "sigma_w2 maximum 1.0 is below its minimum 5.0; swap them",
     None),
    (PHASES, "maximum-nan", "sigma_w2_max=nan", "/sigma_w2_max", f'{AS_JSON} "nan"',
     None),
    (PHASES, "q-input-1e300", "q_input=1e300", "/q_input",
     "must be a number in (0, 1e+12], got 1e+300", None),
    (PHASES, "parameter-of-another-activation", "activation=relu&alpha=2", "/alpha",
     'relu takes no parameters, not "alpha"', None),
    # Grids whose fixed points lie where every integral is slow are refused
    # before any is computed; they used to run into the worker timeout (500).
    # From σ_w² = 25000.24 (the second of 41 steps up to 1e6) tanh's q* is about
    # σ_w² itself, far beyond q* ≈ 60-70 where tanh's Gauss rules stop
    # converging, and χ₁ far above 1: most of the grid is slow, and chaotic. The
    # q* where convergence stops is the first tabulated q whose rule misses its
    # tolerance, which moves by a table step with the CPU's vectorized exp.
    (PHASES, "weight-variance-1e6", "sigma_w2_max=1000000", "/sigma_w2_max",
     "where tanh needs the slow adaptive integrals", None),
    (PHASES, "both-variances-1e6-on-101-steps",
     "sigma_w2_max=1e6&sigma_b2_max=1e6&sigma_w2_steps=101&sigma_b2_steps=101",
     "/sigma_b2_max", SLOW_GRID, None),
]  # fmt: skip


def _other_cases() -> Iterator[Case]:
    """Wrong methods on the catalogues, which read nothing else, and a wrong path."""
    for path in ("/v1/schemes", "/v1/presets"):
        short = path.rsplit("/", 1)[-1]
        for method, body in (("POST", b"{}"), ("DELETE", None)):
            yield Case(
                f"{short}-{method.lower()}",
                method,
                path,
                405,
                "method-not-allowed",
                "",
                "use one of GET, HEAD, OPTIONS",
                body,
            )
    yield Case(
        "unknown-path",
        "GET",
        "/v1/recommendation",
        404,
        "not-found",
        "",
        'No resource at "/v1/recommendation" (did you mean /v1/recommendations?)',
        content_type=None,
    )


def _problem_kind(limit: str | None) -> str:
    return "validation" if limit is None else "limit-exceeded"


CASES = [
    *(case for endpoint in ENDPOINTS for case in _body_cases(endpoint)),
    *(
        Case(
            f"{endpoint}-{name}",
            "POST",
            ENDPOINTS[endpoint][0],
            422,
            _problem_kind(limit),
            pointer,
            fragment,
            _encoded(body),
            limit=limit,
        )
        for endpoint, name, body, pointer, fragment, limit in FIELD_CASES
    ),
    *(
        Case(
            f"{path.rsplit('/', 1)[-1]}-{name}",
            "GET",
            path,
            422,
            _problem_kind(limit),
            pointer,
            fragment,
            None,
            None,
            query,
            limit=limit,
        )
        for path, name, query, pointer, fragment, limit in QUERY_CASES
    ),
    *_other_cases(),
]


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        yield opened


def test_every_case_has_its_own_name() -> None:
    names = [case.name for case in CASES]

    assert len(names) == len(set(names))


def test_the_corpus_reaches_every_endpoint(openapi_document: dict) -> None:
    """Every /v1 path of the contract gets hostile requests (the catalogues,
    which read nothing from a request, a wrong method)."""
    reached = {case.path for case in CASES}
    paths = {path for path in openapi_document["paths"] if path.startswith("/v1/")}

    assert paths <= reached


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_hostile_request_gets_a_problem_naming_the_field(
    case: Case,
    live_server_url: str,
    session: requests.Session,
    problem_validator: OAS31Validator,
) -> None:
    answer = _send(session, live_server_url, case)

    assert answer.status_code == case.status, answer.text[:2000]
    assert answer.headers["Content-Type"] == PROBLEM_MEDIA_TYPE
    problem = answer.json()
    problem_validator.validate(problem)
    assert problem["type"] == PROBLEM_TYPE_BASE + case.problem
    assert problem["status"] == case.status
    assert problem["instance"] == answer.headers["X-Request-ID"]
    assert problem["detail"]
    if case.status in (404, 405):
        assert case.fragment in problem["detail"]
    else:
        at_pointer = [
            e["message"] for e in problem["errors"] if e["pointer"] == case.pointer
        ]
        assert any(case.fragment in message for message in at_pointer), problem
    if case.status == 405:
        assert case.fragment.endswith(answer.headers["Allow"])
    if case.limit is not None:
        assert problem["limit"] == case.limit

    health = session.get(f"{live_server_url}/healthz", timeout=TIMEOUT_SECONDS)
    assert health.status_code == 200


def _send(session: requests.Session, base_url: str, case: Case) -> requests.Response:
    url = f"{base_url}{case.path}" + (f"?{case.query}" if case.query else "")
    headers = {} if case.content_type is None else {"Content-Type": case.content_type}
    data: Any = case.body
    if case.chunked and data is not None:
        # No Content-Length: the server learns the size only by reading.
        data = iter(
            [data[start : start + 65536] for start in range(0, len(data), 65536)]
        )

    return session.request(
        case.method, url, data=data, headers=headers, timeout=TIMEOUT_SECONDS
    )


@pytest.mark.parametrize(
    ("name", "chunks"),
    [
        ("size-not-hexadecimal", b"zz\r\n{}\r\n0\r\n\r\n"),
        ("negative-size", b"-2\r\n{}\r\n0\r\n\r\n"),
        ("chunk-without-its-line-end", b"2\r\n{}XX0\r\n\r\n"),
    ],
)
def test_a_broken_chunked_body_is_a_problem_not_a_crash(
    live_server_url: str,
    session: requests.Session,
    problem_validator: OAS31Validator,
    name: str,
    chunks: bytes,
) -> None:
    # requests writes chunks correctly: these go out by hand.
    address = urlsplit(live_server_url)
    connection = http.client.HTTPConnection(
        address.hostname, address.port, timeout=TIMEOUT_SECONDS
    )
    try:
        connection.putrequest("POST", "/v1/recommendations")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        connection.send(chunks)
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()

    assert answer.status == 400, body[:2000]
    assert answer.getheader("Content-Type") == PROBLEM_MEDIA_TYPE
    problem = json.loads(body)
    problem_validator.validate(problem)
    assert problem["type"] == PROBLEM_TYPE_BASE + "unreadable-body"
    assert problem["detail"].startswith("The body could not be read: ")
    assert "well-formed chunks" in problem["detail"]
    assert problem["instance"] == answer.getheader("X-Request-ID")
    health = session.get(f"{live_server_url}/healthz", timeout=TIMEOUT_SECONDS)
    assert health.status_code == 200


@pytest.mark.parametrize(
    ("name", "request_bytes", "status", "fragment"),
    [
        (
            "request-line-over-4094-bytes",
            b"GET /v1/schemes?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            414,
            "shorten the request line",
        ),
        (
            "header-over-8190-bytes",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
            431,
            "send fewer or smaller headers",
        ),
        ("not-http", b"GARBAGE\r\n\r\n", 400, "send well-formed HTTP/1.1"),
    ],
)
def test_a_request_the_server_refuses_itself_is_a_problem_too(
    live_server_url: str,
    session: requests.Session,
    problem_validator: OAS31Validator,
    name: str,
    request_bytes: bytes,
    status: int,
    fragment: str,
) -> None:
    # Refused by gunicorn before the app sees it; sent by hand, since HTTP
    # clients will not write such requests.
    address = urlsplit(live_server_url)
    with socket.create_connection(
        (address.hostname, address.port), timeout=TIMEOUT_SECONDS
    ) as connection:
        connection.sendall(request_bytes)
        answer = http.client.HTTPResponse(connection)
        answer.begin()
        body = answer.read()

    assert answer.status == status, body[:2000]
    assert answer.getheader("Content-Type") == PROBLEM_MEDIA_TYPE
    problem = json.loads(body)
    problem_validator.validate(problem)
    assert problem["type"] == PROBLEM_TYPE_BASE + "http-error"
    assert problem["status"] == status
    assert problem["detail"].startswith("The server refused the request")
    assert fragment in problem["detail"]
    assert problem["instance"] == answer.getheader("X-Request-ID")
    health = session.get(f"{live_server_url}/healthz", timeout=TIMEOUT_SECONDS)
    assert health.status_code == 200


# --- Answers that are not problems, to requests that used to break the service ----


def test_a_simulation_whose_gradients_overflow_reports_them_as_null(
    live_server_url: str, session: requests.Session
) -> None:
    """ELU with α = 100 multiplies the gradient by up to 100 per layer on inputs
    near 0, so 20 layers overflow float32 (3.4e38 < 100²⁰): the overflowed
    values, and the NaN that inf·0 makes of them, are null with a note, never a 500.
    """
    answer = session.get(
        f"{live_server_url}{PROPAGATION}",
        params={
            "activation": "elu",
            "alpha": "100",
            "input_second_moment": "1e-300",
            "method": "monte_carlo",
            "seeds": "2",
        },
        timeout=TIMEOUT_SECONDS,
    )

    assert answer.status_code == 200, answer.text[:2000]
    chart = answer.json()
    assert 100.0**20 > 3.4028235e38
    backward = [s for s in chart["series"] if s["direction"] == "backward"]
    means = [value for s in backward for value in s["monte_carlo"]["mean"]]
    assert None in means
    assert all(value is None or math.isfinite(value) for value in means)
    assert any("values overflowed" in note for note in chart["notes"])
