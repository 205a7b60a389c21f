"""GET /v1/activations, GET /v1/schemes, GET /healthz and GET /openapi.yaml."""

from __future__ import annotations

import math

import pytest

from initlab.core.activations import ACTIVATION_NAMES
from initlab.core.schemes import scheme_catalogue

from .conftest import OPENAPI_PATH, ContractClient


def activations(api: ContractClient, **query: str) -> list[dict]:
    response = api.get("/v1/activations", query=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["activations"]


def test_every_activation_is_listed_in_order_with_its_defaults(
    api: ContractClient,
) -> None:
    listed = activations(api)

    assert [entry["name"] for entry in listed] == list(ACTIVATION_NAMES)
    parameters = {entry["name"]: entry["parameters"] for entry in listed}
    assert parameters["leaky_relu"] == {"negative_slope": 0.01}
    assert parameters["elu"] == {"alpha": 1.0}
    assert parameters["softplus"] == {"beta": 1.0}
    assert parameters["relu"] == {}


def test_relu_moments_and_gains_are_the_closed_forms(api: ContractClient) -> None:
    [relu] = [entry for entry in activations(api) if entry["name"] == "relu"]

    # E[relu(z)] = 1/√(2π), E[relu(z)²] = E[relu'(z)²] = 1/2 (He et al. 2015).
    assert relu["mean"] == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-15)
    assert relu["second_moment"] == 0.5
    assert relu["derivative_second_moment"] == 0.5
    assert relu["pytorch_gain"] == math.sqrt(2)
    assert relu["second_moment_gain"] == pytest.approx(math.sqrt(2), rel=1e-15)
    assert relu["gradient_gain"] == pytest.approx(math.sqrt(2), rel=1e-15)
    assert relu["variance_gain"] == pytest.approx(
        1 / math.sqrt(0.5 - 1 / (2 * math.pi)), rel=1e-14
    )
    assert relu["method"] == "closed_form"


def test_pytorch_gain_is_null_where_pytorch_raises(api: ContractClient) -> None:
    gains = {entry["name"]: entry["pytorch_gain"] for entry in activations(api)}

    assert gains["gelu"] is None
    assert gains["silu"] is None
    assert gains["tanh"] == 5 / 3
    assert gains["selu"] == 0.75
    assert gains["identity"] == 1.0


def test_one_activation_with_its_own_parameter(api: ContractClient) -> None:
    [leaky] = activations(api, name="leaky_relu", negative_slope="0.2")

    assert leaky["parameters"] == {"negative_slope": 0.2}
    # torch.nn.init.calculate_gain('leaky_relu', 0.2)
    assert leaky["pytorch_gain"] == pytest.approx(1.3867504905630728, rel=1e-15)
    assert leaky["second_moment"] == pytest.approx((1 + 0.2**2) / 2, rel=1e-15)


def test_one_activation_by_name_alone(api: ContractClient) -> None:
    [gelu] = activations(api, name="gelu")

    assert gelu["name"] == "gelu"
    assert gelu["parameters"] == {}
    assert gelu["method"] in ("gauss_hermite", "adaptive_gauss_legendre")


def test_the_scheme_catalogue_matches_the_core(api: ContractClient) -> None:
    response = api.get("/v1/schemes")

    assert response.status_code == 200
    listed = response.get_json()["schemes"]
    assert [entry["name"] for entry in listed] == [s.name for s in scheme_catalogue()]
    [kaiming] = [entry for entry in listed if entry["name"] == "kaiming_normal"]
    assert [option["name"] for option in kaiming["options"]] == [
        "mode",
        "nonlinearity",
        "negative_slope",
    ]
    [mode] = [option for option in kaiming["options"] if option["name"] == "mode"]
    assert mode == {
        "name": "mode",
        "type": "string",
        "default": "fan_in",
        "allowed": ["fan_in", "fan_out"],
        "description": mode["description"],
    }
    for entry in listed:
        assert entry["formula"]
        assert entry["source"]


def test_health(api: ContractClient) -> None:
    response = api.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_the_committed_openapi_document_is_served(api: ContractClient) -> None:
    response = api.get("/openapi.yaml")

    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert response.get_data() == OPENAPI_PATH.read_bytes()
