"""Every kind of error, answered as RFC 9457 problem details.

Each test checks the exact status, the problem+json content type, the problem
type, the pointer and that the message quotes the bad value; the ``api``
fixture checks each answer against openapi.yaml as well.
"""

from __future__ import annotations

import json
import logging

import pytest
from werkzeug.test import TestResponse

from initlab.core.spec import SpecLimits
from initlab.web import routes
from initlab.web.config import Config

from .conftest import ContractClient

PROBLEMS = "https://initlab.dev/problems/"
MLP_SPEC = {
    "dims": {"d_in": 784, "d_hidden": 256},
    "layers": [
        {"kind": "linear", "name": "fc1", "in": "d_in", "out": "d_hidden"},
        {"kind": "linear", "name": "fc2", "in": "d_hidden", "out": 10},
    ],
}


def problem_of(response: TestResponse, status: int, kind: str) -> dict:
    """The problem body, after the checks every problem response must pass."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = json.loads(response.get_data())
    assert body["type"] == PROBLEMS + kind
    assert body["status"] == status
    assert body["instance"] == response.headers["X-Request-ID"]
    assert body["detail"][-1] in ".?!"
    return body


def pointers(body: dict) -> list[str]:
    return [error["pointer"] for error in body["errors"]]


def message_at(body: dict, pointer: str) -> str:
    return next(
        error["message"] for error in body["errors"] if error["pointer"] == pointer
    )


# --- 400: not JSON, not strict JSON, not an object ----------------------------


def test_a_body_that_is_not_json_is_a_400_with_the_parser_position(
    api: ContractClient,
) -> None:
    response = api.post(
        "/v1/recommendations",
        data='{"spec": {"dims": {}}\n  "scheme": "auto"}',
        content_type="application/json",
        conforms=None,
    )

    body = problem_of(response, 400, "malformed-json")
    assert "Expecting ',' delimiter at line 2, column 3 (char 24)" in body["detail"]
    assert pointers(body) == [""]


@pytest.mark.parametrize(
    ("text", "token", "column"),
    [
        ('{"spec": NaN}', "NaN", 10),
        ('{"spec": [1, Infinity]}', "Infinity", 14),
        ('{"spec": -Infinity}', "-Infinity", 10),
        ('{"scheme": "NaN", "spec": 1e999}', "1e999", 27),
    ],
)
def test_nan_and_infinity_are_refused_with_their_position(
    api: ContractClient, text: str, token: str, column: int
) -> None:
    response = api.post(
        "/v1/recommendations",
        data=text,
        content_type="application/json",
        conforms=None,
    )

    body = problem_of(response, 400, "malformed-json")
    assert f"{token} " in body["detail"]
    assert f"line 1, column {column}" in body["detail"]


def test_an_integer_too_long_to_read_is_a_400(api: ContractClient) -> None:
    response = api.post(
        "/v1/recommendations",
        data='{"spec": ' + "9" * 5000 + "}",
        content_type="application/json",
        conforms=None,
    )

    body = problem_of(response, 400, "malformed-json")
    assert "more digits" in body["detail"]
    assert "line 1, column 10" in body["detail"]


def test_json_nested_beyond_the_interpreter_is_a_400_not_a_recursion_error(
    api: ContractClient,
) -> None:
    response = api.post(
        "/v1/recommendations",
        data="[" * 100_000 + "]" * 100_000,
        content_type="application/json",
        conforms=None,
    )

    body = problem_of(response, 400, "malformed-json")
    assert "nest too deeply" in body["detail"]


def test_json_nested_beyond_the_configured_depth_points_at_the_first_deep_value(
    make_api,
) -> None:
    api = make_api(Config(max_json_depth=3))
    document = {"spec": {"dims": {}, "layers": [{"kind": "linear"}]}}

    response = api.post("/v1/recommendations", json_body=document, conforms=None)

    body = problem_of(response, 400, "malformed-json")
    assert pointers(body) == ["/spec/layers/0"]
    assert "deeper than 3 levels" in body["detail"]


def test_a_body_that_is_not_valid_utf8_is_a_400(api: ContractClient) -> None:
    response = api.post(
        "/v1/recommendations",
        data=b'{"spec": "\xff"}',
        content_type="application/json",
        conforms=None,
    )

    body = problem_of(response, 400, "malformed-json")
    assert "byte 0xff at offset 10" in body["detail"]


@pytest.mark.parametrize(
    ("document", "got"),
    [([MLP_SPEC], "an array"), ("spec", "a string"), (3, "a number"), (None, "null")],
)
def test_a_body_that_is_not_an_object_is_a_400(
    api: ContractClient, document: object, got: str
) -> None:
    response = api.post(
        "/v1/recommendations",
        data=json.dumps(document),
        content_type="application/json",
        conforms=False,
    )

    body = problem_of(response, 400, "not-an-object")
    assert body["detail"] == f"The body must be a JSON object ({{...}}); got {got}."


# --- 413, 415 -------------------------------------------------------------------


def test_a_body_over_the_size_limit_is_a_413(make_api) -> None:
    api = make_api(Config(max_body_bytes=100))
    padded = {"spec": MLP_SPEC, "scheme": "auto"}

    response = api.post("/v1/recommendations", json_body=padded)

    body = problem_of(response, 413, "body-too-large")
    sent = len(json.dumps(padded))
    assert body["detail"] == (
        "The body is larger than the server accepts, INITLAB_MAX_BODY_BYTES = 100"
        f" bytes; got {sent} bytes: send a smaller spec (repeat groups and dims"
        " keep one short), or raise INITLAB_MAX_BODY_BYTES on the server."
    )
    assert body["errors"] == [
        {
            "pointer": "",
            "message": "the body is over INITLAB_MAX_BODY_BYTES = 100 bytes; got"
            f" {sent} bytes",
        }
    ]


def test_a_body_at_the_size_limit_is_read(make_api) -> None:
    text = json.dumps({"spec": MLP_SPEC})
    api = make_api(Config(max_body_bytes=len(text)))

    response = api.post(
        "/v1/recommendations", data=text, content_type="application/json"
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [
        ("text/plain", "text/plain"),
        ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
        ("application/json; charset=latin-1", "application/json; charset=latin-1"),
        (None, "no Content-Type"),
    ],
)
def test_a_body_not_sent_as_json_is_a_415(
    api: ContractClient, content_type: str | None, shown: str
) -> None:
    response = api.post(
        "/v1/recommendations",
        data=json.dumps({"spec": MLP_SPEC}),
        content_type=content_type,
        conforms=None,
    )

    body = problem_of(response, 415, "unsupported-media-type")
    assert body["detail"] == f"Send the body as application/json (UTF-8); got {shown}."


def test_json_with_a_utf8_charset_is_accepted(api: ContractClient) -> None:
    response = api.post(
        "/v1/recommendations",
        data=json.dumps({"spec": MLP_SPEC}),
        content_type="application/json; charset=utf-8",
    )

    assert response.status_code == 200


def test_a_byte_order_mark_before_the_json_is_ignored(api: ContractClient) -> None:
    # RFC 8259 section 8.1 lets a parser ignore it; Windows editors write it.
    body = json.dumps({"spec": MLP_SPEC}).encode()
    plain = api.post("/v1/recommendations", data=body, content_type="application/json")
    marked = api.post(
        "/v1/recommendations",
        data=b"\xef\xbb\xbf" + body,
        content_type="application/json",
    )

    assert marked.status_code == 200, marked.get_data(as_text=True)
    assert marked.get_json() == plain.get_json()


# --- 404, 405 -------------------------------------------------------------------


def test_an_unknown_path_is_a_404_problem_naming_the_path_most_like_it(
    api: ContractClient,
) -> None:
    response = api.get("/v1/recommendation", conforms=False)

    body = problem_of(response, 404, "not-found")
    assert body["detail"] == (
        'No resource at "/v1/recommendation" (did you mean /v1/recommendations?);'
        " see /openapi.yaml for the paths served."
    )
    assert body["errors"] == []


@pytest.mark.parametrize("method", ["GET", "POST", "OPTIONS"])
def test_a_doubled_slash_is_a_404_problem_not_a_redirect(
    api: ContractClient, method: str
) -> None:
    # Werkzeug would answer 308 with an HTML body and a Location built from
    # the client's Host header.
    response = api.client.open(
        "/v1//recommendations", method=method, headers={"Host": "elsewhere.example"}
    )

    body = problem_of(response, 404, "not-found")
    assert "Location" not in response.headers
    assert body["detail"].startswith(
        'No resource at "/v1//recommendations" (did you mean /v1/recommendations?)'
    )


def test_a_path_in_capitals_is_pointed_at_the_one_meant(api: ContractClient) -> None:
    response = api.get("/V1/Schemes", conforms=False)

    body = problem_of(response, 404, "not-found")
    assert "(did you mean /v1/schemes?)" in body["detail"]


def test_a_path_like_none_served_gets_no_suggestion(api: ContractClient) -> None:
    response = api.get("/nothing/here", conforms=False)

    body = problem_of(response, 404, "not-found")
    assert body["detail"] == (
        'No resource at "/nothing/here"; see /openapi.yaml for the paths served.'
    )


def test_a_wrong_method_is_a_405_problem_with_allow(api: ContractClient) -> None:
    response = api.get("/v1/recommendations", conforms=False)

    body = problem_of(response, 405, "method-not-allowed")
    assert response.headers["Allow"] == "OPTIONS, POST"
    assert body["detail"] == (
        'GET is not accepted at "/v1/recommendations"; use one of OPTIONS, POST.'
    )


def test_posting_to_a_catalogue_is_a_405(api: ContractClient) -> None:
    response = api.post("/v1/schemes", json_body={}, conforms=False)

    problem_of(response, 405, "method-not-allowed")
    assert "GET" in response.headers["Allow"].split(", ")


# --- 422: the request schema ----------------------------------------------------


def test_a_missing_spec_and_an_unknown_member_are_both_reported(
    api: ContractClient,
) -> None:
    response = api.post(
        "/v1/recommendations", json_body={"specs": MLP_SPEC}, conforms=False
    )

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/spec", "/specs"]
    assert message_at(body, "/spec") == (
        "required: the architecture spec, an object with 'layers' (its layers and"
        " groups in forward order) and optional 'dims' (named sizes); see examples/,"
        " such as examples/mlp-3layer.spec.json"
    )
    assert message_at(body, "/specs").startswith(
        'unknown field "specs" in a request body; allowed fields: overrides, scheme,'
        ' spec — did you mean "spec"? Got {"dims": {"d_in": 784'
    )


def test_a_scheme_of_the_wrong_type_points_at_scheme_and_quotes_it(
    api: ContractClient,
) -> None:
    response = api.post(
        "/v1/recommendations",
        json_body={"spec": MLP_SPEC, "scheme": 42},
        conforms=False,
    )

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/scheme"]
    assert message_at(body, "/scheme").endswith("got 42")


def test_an_unknown_scheme_name_points_at_scheme(api: ContractClient) -> None:
    response = api.post(
        "/v1/recommendations",
        json_body={"spec": MLP_SPEC, "scheme": "kaiming_normall"},
        conforms=False,
    )

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/scheme"]
    assert '"kaiming_normall"' in message_at(body, "/scheme")
    assert "kaiming_normal" in message_at(body, "/scheme")


def test_a_bad_scheme_option_points_at_the_option(api: ContractClient) -> None:
    response = api.post(
        "/v1/recommendations",
        json_body={
            "spec": MLP_SPEC,
            "scheme": {"name": "kaiming_normal", "mode": "fan"},
        },
        conforms=False,
    )

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/scheme/mode"]
    assert '"fan"' in message_at(body, "/scheme/mode")


def test_an_override_pattern_is_escaped_in_its_pointer(api: ContractClient) -> None:
    response = api.post(
        "/v1/recommendations",
        json_body={"spec": MLP_SPEC, "overrides": {"fc~1/weight": 7}},
        conforms=False,
    )

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/overrides/fc~01~1weight"]
    assert message_at(body, "/overrides/fc~01~1weight").endswith("got 7")


# --- 422: the spec (schema and core) --------------------------------------------


def test_a_negative_size_points_into_the_spec_and_quotes_the_value(
    api: ContractClient,
) -> None:
    spec = {
        "dims": {},
        "layers": [
            {"kind": "linear", "in": 4, "out": 4},
            {"kind": "linear", "in": 4, "out": 4},
            {"kind": "linear", "in": 4, "out": 4},
            {"kind": "linear", "in": -3, "out": 4},
        ],
    }

    response = api.post("/v1/recommendations", json_body={"spec": spec}, conforms=False)

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/spec/layers/3/in"]
    assert "-3" in message_at(body, "/spec/layers/3/in")


def test_schema_errors_of_the_spec_and_of_the_request_come_together(
    api: ContractClient,
) -> None:
    spec = {"dims": {}, "layers": [{"kind": "linear", "in": 0, "out": 4}]}

    response = api.post(
        "/v1/recommendations",
        json_body={"spec": spec, "scheme": ["auto"]},
        conforms=False,
    )

    body = problem_of(response, 422, "validation")
    assert sorted(pointers(body)) == ["/scheme", "/spec/layers/0/in"]


def test_an_unknown_dim_is_reported_by_the_core_under_spec(api: ContractClient) -> None:
    spec = {
        "dims": {"d_model": 64},
        "layers": [{"kind": "linear", "name": "proj", "in": "d_modle", "out": 8}],
    }

    response = api.post("/v1/recommendations", json_body={"spec": spec})

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/spec/layers/0/in"]
    assert "d_modle" in message_at(body, "/spec/layers/0/in")


def test_a_spec_over_a_limit_names_the_limit_and_its_value(make_api, caplog) -> None:
    api = make_api(Config(spec_limits=SpecLimits(max_repeat_count=4)))
    spec = {
        "dims": {"n": 5},
        "layers": [
            {
                "kind": "repeat",
                "name": "blocks",
                "count": "n",
                "layers": [{"kind": "linear", "in": 8, "out": 8}],
            }
        ],
    }

    with caplog.at_level(logging.WARNING, logger="initlab.web"):
        response = api.post("/v1/recommendations", json_body={"spec": spec})

    body = problem_of(response, 422, "limit-exceeded")
    assert body["limit"] == "max_repeat_count"
    assert body["limit_value"] == 4
    assert "max_repeat_count = 4" in body["detail"]
    assert "INITLAB_MAX_REPEAT_COUNT" in body["detail"]
    assert pointers(body) == ["/spec/layers/0/count"]
    assert "5" in message_at(body, "/spec/layers/0/count")
    assert any("max_repeat_count" in record.getMessage() for record in caplog.records)


def test_the_configured_layer_limit_applies_while_loading_the_spec(make_api) -> None:
    api = make_api(Config(spec_limits=SpecLimits(max_layers=2)))
    spec = {
        "dims": {},
        "layers": [{"kind": "linear", "in": 4, "out": 4} for _ in range(3)],
    }

    response = api.post("/v1/recommendations", json_body={"spec": spec})

    body = problem_of(response, 422, "limit-exceeded")
    assert body["limit"] == "max_layers"
    assert body["limit_value"] == 2
    assert pointers(body) == ["/spec/layers"]


def test_problems_of_the_spec_and_of_the_scheme_come_together(
    api: ContractClient,
) -> None:
    spec = {"dims": {}, "layers": [{"kind": "linear", "in": "d", "out": 4}]}

    response = api.post(
        "/v1/recommendations",
        json_body={"spec": spec, "scheme": {"name": "xavier_normal", "gain": -1}},
        conforms=False,
    )

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/spec/layers/0/in", "/scheme/gain"]
    assert "-1" in message_at(body, "/scheme/gain")
    assert body["detail"].startswith("2 fields are at fault (see errors); first,")


# --- 422: query parameters ------------------------------------------------------


def test_an_unknown_activation_points_at_the_name_parameter(
    api: ContractClient,
) -> None:
    response = api.get("/v1/activations", query={"name": "swish"}, conforms=False)

    body = problem_of(response, 422, "validation")
    assert body["errors"][0]["pointer"] == "/name"
    assert body["errors"][0]["parameter"] == "name"
    assert '"swish"' in body["errors"][0]["message"]


def test_an_activation_parameter_out_of_range_quotes_it(api: ContractClient) -> None:
    response = api.get(
        "/v1/activations", query={"name": "leaky_relu", "negative_slope": "1.5"}
    )

    body = problem_of(response, 422, "validation")
    assert body["errors"] == [
        {
            "pointer": "/negative_slope",
            "message": "leaky_relu negative_slope must be a number in [0, 1], got"
            " 1.5: a slope above 1 is no longer a leaky ReLU; omit it for the"
            " default 0.01",
            "parameter": "negative_slope",
        }
    ]


def test_a_parameter_of_another_activation_is_refused(api: ContractClient) -> None:
    response = api.get("/v1/activations", query={"name": "relu", "alpha": "2"})

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/alpha"]
    assert "relu takes no parameters" in message_at(body, "/alpha")


def test_a_parameter_that_is_not_a_number_is_refused(api: ContractClient) -> None:
    response = api.get(
        "/v1/activations",
        query={"name": "elu", "alpha": "big"},
        conforms=False,
    )

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/alpha"]
    assert '"big"' in message_at(body, "/alpha")


def test_a_parameter_without_a_name_is_refused(api: ContractClient) -> None:
    response = api.get("/v1/activations", query={"negative_slope": "0.2"})

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/negative_slope"]
    assert "name=leaky_relu&negative_slope=0.2" in message_at(body, "/negative_slope")


def test_the_hint_for_a_lone_parameter_names_its_activation(
    api: ContractClient,
) -> None:
    response = api.get("/v1/activations", query={"alpha": "0.5"})

    body = problem_of(response, 422, "validation")
    assert "name=elu&alpha=0.5" in message_at(body, "/alpha")


def test_an_unknown_query_parameter_is_refused(api: ContractClient) -> None:
    response = api.get("/v1/activations", query={"nme": "relu"})

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/nme"]
    assert '"relu"' in message_at(body, "/nme")


# --- 500 ----------------------------------------------------------------------


def test_an_unexpected_error_is_a_500_with_only_the_request_id(
    api: ContractClient, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    def broken() -> tuple:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(routes, "scheme_catalogue", broken)

    with caplog.at_level(logging.ERROR, logger="initlab.web"):
        response = api.get("/v1/schemes", headers={"X-Request-ID": "bug-42"})

    body = problem_of(response, 500, "internal-error")
    assert body["instance"] == "bug-42"
    assert body["errors"] == []
    assert "secret" not in response.get_data(as_text=True)
    [record] = [r for r in caplog.records if r.name == "initlab.web"]
    assert "bug-42" in record.getMessage()
    assert record.exc_info[0] is RuntimeError


def test_a_non_finite_number_in_a_response_is_a_500_not_invalid_json(
    api: ContractClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    [relu] = [entry for entry in routes.activation_catalogue() if entry.name == "relu"]
    broken = {**relu.as_dict(), "second_moment_gain": float("nan")}
    monkeypatch.setattr(routes, "activation_catalogue", lambda: [broken])

    response = api.get("/v1/activations")

    problem_of(response, 500, "internal-error")
    assert b"NaN" not in response.get_data()


# --- request ids and the request log --------------------------------------------


def test_a_sane_request_id_is_echoed(api: ContractClient) -> None:
    response = api.get("/healthz", headers={"X-Request-ID": "trace:a1/b2+c3=="})

    assert response.headers["X-Request-ID"] == "trace:a1/b2+c3=="


@pytest.mark.parametrize("sent", ["has space", "x" * 129, "new\\nline", "é"])
def test_an_insane_request_id_is_replaced(api: ContractClient, sent: str) -> None:
    response = api.get("/healthz", headers={"X-Request-ID": sent}, conforms=False)

    answered = response.headers["X-Request-ID"]
    assert answered != sent
    assert len(answered) == 32
    int(answered, 16)


def test_each_request_gets_its_own_id(api: ContractClient) -> None:
    first = api.get("/healthz").headers["X-Request-ID"]
    second = api.get("/healthz").headers["X-Request-ID"]

    assert first != second


def test_every_request_is_logged_as_one_json_line(api: ContractClient, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="initlab.request"):
        api.get("/nowhere", headers={"X-Request-ID": "log-1"}, conforms=False)

    [record] = [r for r in caplog.records if r.name == "initlab.request"]
    line = json.loads(record.getMessage())
    assert list(line) == ["method", "path", "status", "duration_ms", "request_id"]
    assert line["method"] == "GET"
    assert line["path"] == "/nowhere"
    assert line["status"] == 404
    assert line["request_id"] == "log-1"
    assert line["duration_ms"] >= 0


# --- Hardening: what a new user tried -----------------------------------------


def test_a_key_given_twice_is_a_400_naming_it(api: ContractClient) -> None:
    text = '{"spec": {"layers": []}, "scheme": "auto", "spec": {"layers": []}}'

    response = api.post(
        "/v1/recommendations",
        data=text,
        content_type="application/json",
        conforms=None,
    )

    body = problem_of(response, 400, "malformed-json")
    assert body["errors"] == [
        {
            "pointer": "",
            "message": 'the key "spec" appears twice in one object; give each key'
            " once (JSON leaves a repeated key's meaning undefined)",
        }
    ]


def test_a_query_parameter_given_twice_is_a_422_naming_it(app) -> None:
    response = app.test_client().get("/v1/activations?name=relu&name=gelu")

    body = problem_of(response, 422, "validation")
    assert body["errors"] == [
        {
            "pointer": "/name",
            "message": 'the query parameter name is given 2 times (["relu",'
            ' "gelu"]); give it once',
            "parameter": "name",
        }
    ]


@pytest.mark.parametrize("written", ["1_0", "0x1", "nan", "infinity", " 1", "+1", ".5"])
def test_query_numbers_are_read_as_json_writes_numbers(
    api: ContractClient, written: str
) -> None:
    query = {"name": "leaky_relu", "negative_slope": written}

    response = api.get("/v1/activations", query=query, conforms=None)

    body = problem_of(response, 422, "validation")
    assert body["errors"] == [
        {
            "pointer": "/negative_slope",
            "message": "must be a number written as in JSON, such as 0.2, -1 or"
            f" 1e-3; got {json.dumps(written)}",
            "parameter": "negative_slope",
        }
    ]


def test_a_query_number_beyond_a_double_is_refused(api: ContractClient) -> None:
    query = {"name": "elu", "alpha": "1e999"}

    response = api.get("/v1/activations", query=query, conforms=None)

    body = problem_of(response, 422, "validation")
    assert "overflows a double-precision number" in message_at(body, "/alpha")


def test_a_query_number_in_exponent_form_is_read(api: ContractClient) -> None:
    response = api.get(
        "/v1/activations", query={"name": "leaky_relu", "negative_slope": "2e-1"}
    )

    assert response.status_code == 200
    assert response.get_json()["activations"][0]["parameters"] == {
        "negative_slope": 0.2
    }


def test_an_unknown_query_parameter_lists_the_allowed_ones(api: ContractClient) -> None:
    response = api.get("/v1/activations", query={"foo": "1"}, conforms=None)

    body = problem_of(response, 422, "validation")
    assert message_at(body, "/foo") == (
        'unknown query parameter "foo"; allowed parameters: alpha, beta, name,'
        ' negative_slope. Got "1".'
    )


@pytest.mark.parametrize("beta", ["0.001", "1e-300"])
def test_a_flat_softplus_is_refused_before_any_quadrature(
    api: ContractClient, beta: str
) -> None:
    response = api.get("/v1/activations", query={"name": "softplus", "beta": beta})

    body = problem_of(response, 422, "validation")
    assert message_at(body, "/beta").startswith(
        f"softplus beta must be a number in [0.01, 100], got {beta}: below 0.01"
    )


def test_a_flat_softplus_as_a_layer_activation_is_refused_at_its_beta(
    api: ContractClient,
) -> None:
    layer = {"kind": "linear", "in": 4, "out": 4}
    layer["activation"] = {"name": "softplus", "beta": 0.001}

    response = api.post(
        "/v1/recommendations", json_body={"spec": {"layers": [layer]}}, conforms=False
    )

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/spec/layers/0/activation/beta"]


def test_an_empty_body_is_told_what_a_spec_is(api: ContractClient) -> None:
    response = api.post("/v1/recommendations", json_body={}, conforms=False)

    body = problem_of(response, 422, "validation")
    assert body["errors"] == [
        {
            "pointer": "/spec",
            "message": "required: the architecture spec, an object with 'layers'"
            " (its layers and groups in forward order) and optional 'dims' (named"
            " sizes); see examples/, such as examples/mlp-3layer.spec.json",
        }
    ]


def test_a_null_spec_is_one_error(api: ContractClient) -> None:
    response = api.post("/v1/recommendations", json_body={"spec": None}, conforms=False)

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/spec"]
    assert message_at(body, "/spec").endswith("mlp-3layer.spec.json; got null")


def test_an_unknown_member_of_the_body_lists_the_allowed_ones(
    api: ContractClient,
) -> None:
    response = api.post(
        "/v1/recommendations", json_body={"spec": MLP_SPEC, "foo": 1}, conforms=False
    )

    body = problem_of(response, 422, "validation")
    assert message_at(body, "/foo") == (
        'unknown field "foo" in a request body; allowed fields: overrides, scheme,'
        " spec. Got 1."
    )


def test_an_empty_override_pattern_is_quoted_not_its_scheme(
    api: ContractClient,
) -> None:
    response = api.post(
        "/v1/recommendations",
        json_body={"spec": MLP_SPEC, "overrides": {"": "normal"}},
        conforms=None,
    )

    body = problem_of(response, 422, "validation")
    assert message_at(body, "/overrides/") == (
        "a pattern must be a non-empty glob over parameter or layer names, e.g."
        ' "h.*.attn.o.weight"; got the pattern ""'
    )


@pytest.mark.parametrize(
    ("layer", "field", "hint"),
    [
        ({"kind": "linear", "in": 4, "out": 4, "dilation": 2}, "dilation", None),
        (
            {"kind": "attention", "d_model": 8, "n_heads": 2, "in": 8},
            "in",
            "; an attention layer takes d_model, its input and output width,"
            " instead of in and out. Got 8.",
        ),
        (
            {"kind": "gated_mlp", "d_model": 8, "d_ff": 32, "out": 8},
            "out",
            "; a gated MLP takes d_model, its input and output width, and d_ff, its"
            " hidden width, instead of in and out. Got 8.",
        ),
    ],
)
def test_a_poor_match_is_not_suggested_and_in_out_point_to_d_model(
    api: ContractClient, layer: dict, field: str, hint: str | None
) -> None:
    response = api.post(
        "/v1/recommendations", json_body={"spec": {"layers": [layer]}}, conforms=False
    )

    body = problem_of(response, 422, "validation")
    message = message_at(body, f"/spec/layers/0/{field}")
    assert "did you mean" not in message
    if hint is not None:
        assert message.endswith(hint)


def test_a_long_layer_name_is_echoed_once_and_cut(api: ContractClient) -> None:
    name = "n" * 100_000
    layer = {"kind": "linear", "name": name, "in": 4, "out": 4}

    response = api.post(
        "/v1/recommendations", json_body={"spec": {"layers": [layer]}}, conforms=False
    )

    body = problem_of(response, 422, "validation")
    message = message_at(body, "/spec/layers/0/name")
    assert message.count("nnnnnnnnnn") == 7
    assert message.endswith('got "' + "n" * 78 + "…")
    assert len(response.get_data()) < 2000


def test_an_integer_too_large_for_a_double_is_refused_at_its_option(
    api: ContractClient,
) -> None:
    text = (
        '{"spec": {"layers": [{"kind": "linear", "in": 4, "out": 4}]},'
        ' "scheme": {"name": "normal", "std": 1' + "0" * 400 + "}}"
    )

    response = api.post(
        "/v1/recommendations",
        data=text,
        content_type="application/json",
        conforms=False,
    )

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/scheme/std"]
    assert message_at(body, "/scheme/std").startswith(
        "normal std must be a number in [0, 1e6], got 1000000000"
    )


@pytest.mark.parametrize(
    ("scheme", "pointer"),
    [
        ({"name": "uniform", "a": -1e308, "b": 1e308}, "/scheme/a"),
        ({"name": "kaiming_normal", "negative_slope": 1e200}, "/scheme/negative_slope"),
        ({"name": "trunc_normal", "mean": 1e308}, "/scheme/mean"),
    ],
)
def test_numbers_that_would_overflow_are_refused_not_a_500(
    api: ContractClient, scheme: dict, pointer: str
) -> None:
    response = api.post(
        "/v1/recommendations",
        json_body={"spec": MLP_SPEC, "scheme": scheme},
        conforms=False,
    )

    body = problem_of(response, 422, "validation")
    assert pointers(body)[0] == pointer


def test_a_number_that_still_overflows_is_a_422_at_the_option(
    api: ContractClient,
) -> None:
    block = {
        "kind": "residual",
        "norm": "pre",
        "layers": [{"kind": "linear", "name": "fc", "in": 8, "out": 8}],
    }
    request = {
        "spec": {"layers": [block]},
        "scheme": {"name": "small_init", "n_layers": 5e-324},
    }

    response = api.post("/v1/recommendations", json_body=request)

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/scheme/n_layers"]
    assert message_at(body, "/scheme/n_layers").startswith(
        "small_init with n_layers = 5e-324 gives fc.weight a std that is not a"
        " finite number"
    )


def test_too_many_override_patterns_are_refused_naming_the_limit(
    api: ContractClient,
) -> None:
    overrides = {f"fc{index}": "normal" for index in range(257)}

    response = api.post(
        "/v1/recommendations", json_body={"spec": MLP_SPEC, "overrides": overrides}
    )

    body = problem_of(response, 422, "limit-exceeded")
    assert (body["limit"], body["limit_value"]) == ("max_overrides", 256)
    assert "INITLAB_MAX_OVERRIDES" in body["detail"]
    assert pointers(body) == ["/overrides"]


def test_patterns_times_tensors_over_the_limit_are_refused(make_api) -> None:
    api = make_api(Config(spec_limits=SpecLimits(max_override_matches=7)))
    overrides = {"fc1": "normal", "fc2": "normal"}

    response = api.post(
        "/v1/recommendations", json_body={"spec": MLP_SPEC, "overrides": overrides}
    )

    body = problem_of(response, 422, "limit-exceeded")
    assert body["limit"] == "max_override_matches"
    assert "INITLAB_MAX_OVERRIDE_MATCHES" in body["detail"]
    assert message_at(body, "/overrides").startswith(
        "over the limit max_override_matches = 7: got 2 override patterns × 4"
        " parameter tensors = 8 matches"
    )


def test_a_residual_branch_that_changes_the_width_is_refused(
    api: ContractClient,
) -> None:
    block = {
        "kind": "residual",
        "norm": "none",
        "layers": [{"kind": "linear", "name": "a", "in": 4, "out": 8}],
    }

    response = api.post("/v1/recommendations", json_body={"spec": {"layers": [block]}})

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/spec/layers/0/layers/0/out"]
    assert "must end at its input's width, 4; got 8" in (
        message_at(body, "/spec/layers/0/layers/0/out")
    )
