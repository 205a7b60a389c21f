"""Fixtures of the web tests: a Flask test client held to the committed contract.

Every response the ``api`` fixture returns has been validated against
``openapi.yaml`` with openapi-core: the request (unless the test says it is
deliberately outside the contract) and the response, problem responses
included. A response to a path or method the document does not describe
(404, 405) is validated against the document's ``Problem`` schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from openapi_core import Config as OpenAPIConfig
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathError
from openapi_schema_validator import OAS31Validator
from werkzeug.datastructures import Headers, ImmutableMultiDict
from werkzeug.test import TestResponse

from initlab.web.app import create_app
from initlab.web.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAPI_PATH = REPO_ROOT / "openapi.yaml"
EXAMPLES = REPO_ROOT / "examples"
HOST_URL = "http://localhost"
NO_JSON = object()


def _json_loads(value: bytes, **parameters: str) -> Any:
    return json.loads(value)


def _yaml_loads(value: bytes, **parameters: str) -> Any:
    return yaml.safe_load(value)


@pytest.fixture(scope="session")
def openapi_document() -> dict[str, Any]:
    """The committed OpenAPI document, parsed."""
    return yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def openapi(openapi_document: dict[str, Any]) -> OpenAPI:
    """openapi-core over the committed document (checked by openapi-spec-validator)."""
    config = OpenAPIConfig(
        extra_media_type_deserializers={
            "application/problem+json": _json_loads,
            "application/yaml": _yaml_loads,
        }
    )
    return OpenAPI.from_dict(openapi_document, config=config)


@pytest.fixture(scope="session")
def problem_validator(openapi_document: dict[str, Any]) -> OAS31Validator:
    """A validator of the document's Problem schema, references resolved."""
    schema = {
        "$ref": "#/components/schemas/Problem",
        "components": openapi_document["components"],
    }
    return OAS31Validator(schema)


@dataclass
class SentRequest:
    """What the test client sent, as openapi-core reads a request."""

    method: str
    path: str
    body: bytes | None
    content_type: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    host_url: str = HOST_URL

    def __post_init__(self) -> None:
        self.method = self.method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(self.query.items())),
            header=Headers(dict(self.headers)),
        )


@dataclass
class ReceivedResponse:
    """A test response in the shape openapi-core reads (its Response protocol)."""

    status_code: int
    content_type: str
    headers: Headers
    data: bytes


class ContractClient:
    """Flask's test client, checking every exchange against openapi.yaml.

    ``conforms`` says what the test expects of the request: ``True`` (the
    default) means it must satisfy the document, ``False`` that it must not
    (a deliberately bad request the document also rules out), ``None`` that
    the document cannot tell (a broken body, a wrong content type).
    """

    def __init__(
        self, client: FlaskClient, openapi: OpenAPI, problem_validator: OAS31Validator
    ) -> None:
        self.client = client
        self.openapi = openapi
        self.problem_validator = problem_validator

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("POST", path, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = NO_JSON,
        data: bytes | str | None = None,
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        conforms: bool | None = True,
    ) -> TestResponse:
        if json_body is not NO_JSON:
            data = json.dumps(json_body)
            content_type = content_type or "application/json"
        if isinstance(data, str):
            data = data.encode("utf-8")
        headers = dict(headers or {})
        if content_type is not None:
            headers["Content-Type"] = content_type
        query = dict(query or {})
        url = path + ("?" + urlencode(query) if query else "")

        response = self.client.open(url, method=method, data=data, headers=headers)

        sent = SentRequest(
            method, path, data, (content_type or "").lower(), query, headers
        )
        self._check_request(sent, conforms)
        self._check_response(sent, response)
        return response

    def _check_request(self, sent: SentRequest, conforms: bool | None) -> None:
        if conforms is None:
            return

        errors = self._request_errors(sent)
        if conforms:
            assert not errors, f"the request breaks openapi.yaml: {errors}"
        else:
            assert errors, "the request was meant to break openapi.yaml but conforms"

    def _request_errors(self, sent: SentRequest) -> list[str]:
        try:
            self.openapi.validate_request(sent)
        except Exception as error:  # every validation failure, whatever its class
            return [_explain(error)]
        return []

    def _check_response(self, sent: SentRequest, response: TestResponse) -> None:
        received = ReceivedResponse(
            response.status_code,
            response.mimetype,
            Headers(response.headers),
            response.get_data(),
        )
        try:
            self.openapi.validate_response(sent, received)
        except PathError:
            # 404/405: the document describes no such operation; the body must
            # still be a problem.
            assert response.status_code in (404, 405), (
                f"{sent.method.upper()} {sent.path} is not in openapi.yaml but"
                f" answered {response.status_code}"
            )
            assert response.mimetype == "application/problem+json"
            self.problem_validator.validate(response.get_json())
        except Exception as error:
            pytest.fail(
                f"the response breaks openapi.yaml: {_explain(error)}\n"
                f"status {response.status_code}, body:"
                f" {response.get_data(as_text=True)[:2000]}"
            )


def _explain(error: BaseException) -> str:
    """An openapi-core error with its causes and their schema errors."""
    parts = []
    while error is not None:
        parts.append(f"{type(error).__name__}: {error}")
        parts += [str(cause) for cause in getattr(error, "schema_errors", ())]
        error = error.__cause__

    return " <- ".join(parts)


@pytest.fixture(scope="session")
def app() -> Flask:
    """The service with its default configuration."""
    flask_app = create_app(Config())
    flask_app.testing = True
    return flask_app


@pytest.fixture
def api(
    app: Flask, openapi: OpenAPI, problem_validator: OAS31Validator
) -> ContractClient:
    """A test client of ``app`` whose every exchange is checked against openapi.yaml."""
    return ContractClient(app.test_client(), openapi, problem_validator)


@pytest.fixture
def make_api(
    openapi: OpenAPI, problem_validator: OAS31Validator
) -> Callable[[Config], ContractClient]:
    """Build a contract-checked client of an app with the given configuration."""

    def build(config: Config) -> ContractClient:
        flask_app = create_app(config)
        flask_app.testing = True
        return ContractClient(flask_app.test_client(), openapi, problem_validator)

    return build


def load_example(name: str) -> dict[str, Any]:
    """An example spec of the repository's examples/ folder."""
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
