"""Query parameters sent to a /v1 operation that reads none are refused, not ignored."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from openapi_schema_validator import OAS31Validator

from initlab.web.app import QUERY_ENDPOINTS, create_app
from initlab.web.config import Config
from initlab.web.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE


def v1_operations(document: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(method, path, whether it declares query parameters) of every /v1 operation."""
    found = []
    for path, item in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in item.items():
            declared = [
                parameter
                for parameter in operation.get("parameters", [])
                if parameter.get("in") == "query"
            ]
            found.append((method.upper(), path, bool(declared)))
    return found


def test_the_operations_that_read_queries_are_those_the_contract_gives_some(
    app: Flask, openapi_document: dict[str, Any]
) -> None:
    rules = {
        (method, rule.rule): rule.endpoint
        for rule in app.url_map.iter_rules()
        for method in rule.methods
    }
    with_query = {
        rules[(method, path)]
        for method, path, declared in v1_operations(openapi_document)
        if declared
    }

    assert with_query == QUERY_ENDPOINTS


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/schemes"),
        ("GET", "/v1/presets"),
        ("POST", "/v1/recommendations"),
        ("POST", "/v1/statistics"),
        ("POST", "/v1/mup/table"),
        ("POST", "/v1/mup/coord-check"),
        ("POST", "/v1/mup/transfer-check"),
        ("POST", "/v1/specs/import"),
        ("POST", "/v1/specs/expand"),
    ],
)
def test_a_query_parameter_where_none_is_read_is_named(
    app: Flask, problem_validator: OAS31Validator, method: str, path: str
) -> None:
    client = app.test_client()
    response = client.open(f"{path}?seed=3&colour=red", method=method, json={})

    assert response.status_code == 422
    assert response.mimetype == PROBLEM_MEDIA_TYPE
    problem = response.get_json()
    problem_validator.validate(problem)
    assert problem["type"] == PROBLEM_TYPE_BASE + "validation"
    assert [(e["pointer"], e["parameter"]) for e in problem["errors"]] == [
        ("/seed", "seed"),
        ("/colour", "colour"),
    ]
    message = problem["errors"][0]["message"]
    assert message.startswith(
        f'{method} {path} takes no query parameters; got seed="3"'
    )
    if method == "POST":
        assert message.endswith("(the request goes in the JSON body)")


def test_the_same_operations_answer_without_a_query(app: Flask) -> None:
    client = app.test_client()

    assert client.get("/v1/schemes").status_code == 200
    assert client.get("/v1/presets").status_code == 200


def test_a_cors_preflight_with_a_query_still_gets_its_answer() -> None:
    # Browsers send the page's query on the preflight too, and give up on
    # anything but a 2xx: the 422 belongs to the request that follows.
    app = create_app(Config(cors_origins=("https://app.example.com",)))
    preflight = app.test_client().options(
        "/v1/recommendations?seed=3",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
        },
    )

    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
