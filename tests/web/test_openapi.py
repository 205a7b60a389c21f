"""openapi.yaml: valid OpenAPI 3.1, up to date, and complete about errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from openapi_core import OpenAPI

from initlab.web import routes

from .conftest import OPENAPI_PATH, REPO_ROOT, ContractClient

OPERATIONS = [
    ("/v1/recommendations", "post"),
    ("/v1/activations", "get"),
    ("/v1/schemes", "get"),
    ("/healthz", "get"),
    ("/openapi.yaml", "get"),
]
# Components written from this layer's schemas; every property is described.
DESCRIBED_COMPONENTS = [
    "Problem",
    "FieldError",
    "RecommendationRequest",
    "RecommendationResponse",
    "ParameterRecommendation",
    "OverrideResult",
    "Truncation",
    "ActivationsResponse",
    "ActivationSummary",
    "SchemesResponse",
    "Scheme",
    "SchemeOption",
    "Health",
]


def test_the_committed_document_is_what_the_code_generates() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "initlab.web.openapi"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8")

    committed = OPENAPI_PATH.read_text(encoding="utf-8")
    assert generated == committed, (
        "openapi.yaml is out of date with the schemas: run `make openapi` and"
        " commit the result"
    )


def test_the_document_is_valid_openapi_3_1(openapi_document: dict) -> None:
    assert openapi_document["openapi"] == "3.1.0"

    # from_dict runs openapi-spec-validator and raises on any error.
    OpenAPI.from_dict(openapi_document)


def test_the_document_says_computations_are_pure(openapi_document: dict) -> None:
    description = openapi_document["info"]["description"]

    assert "Every computation is a pure function of its request" in description
    assert "same response bytes" in description


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_every_operation_documents_its_problems_and_request_id(
    openapi_document: dict, path: str, method: str
) -> None:
    responses = openapi_document["paths"][path][method]["responses"]
    components = openapi_document["components"]["responses"]

    assert responses["500"] == {"$ref": "#/components/responses/InternalServerError"}
    for status, response in responses.items():
        if "$ref" in response:
            response = components[response["$ref"].rsplit("/", 1)[1]]
        assert response["headers"]["X-Request-ID"] == {
            "$ref": "#/components/headers/RequestId"
        }
        if not status.startswith("2"):
            assert response["content"] == {
                "application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"}
                }
            }


def test_the_recommendations_operation_documents_every_client_error(
    openapi_document: dict,
) -> None:
    responses = openapi_document["paths"]["/v1/recommendations"]["post"]["responses"]

    assert list(responses) == ["200", "400", "401", "413", "415", "422", "500", "503"]
    # 503: a large answer takes a turn of the compute gate, and may find none.
    assert responses["503"] == {"$ref": "#/components/responses/Busy"}


@pytest.mark.parametrize("component", DESCRIBED_COMPONENTS)
def test_every_field_is_described(openapi_document: dict, component: str) -> None:
    properties = openapi_document["components"]["schemas"][component]["properties"]

    undescribed = [
        name for name, field in properties.items() if not field.get("description")
    ]
    assert undescribed == []


def test_a_scheme_option_outside_the_catalogue_breaks_the_contract(
    openapi_document: dict,
) -> None:
    schema = openapi_document["components"]["schemas"]["SchemeRequest"]
    [kaiming] = [v for v in schema["oneOf"] if v.get("title") == "kaiming_normal"]

    assert kaiming["properties"]["mode"]["enum"] == ["fan_in", "fan_out"]
    assert kaiming["additionalProperties"] is False


def test_the_contract_client_catches_a_response_that_breaks_the_document(
    api: ContractClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    [scheme] = [entry.as_dict() for entry in routes.scheme_catalogue()][:1]
    del scheme["formula"]
    monkeypatch.setattr(routes, "scheme_catalogue", lambda: [scheme])

    with pytest.raises(pytest.fail.Exception, match="formula"):
        api.get("/v1/schemes")
