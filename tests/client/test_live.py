"""The client against the real service (gunicorn on 127.0.0.1), real numbers."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from initlab_client import (
    Client,
    NotFound,
    PayloadTooLarge,
    Recommendations,
    ValidationError,
    load_spec,
)

pytestmark = pytest.mark.server

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_LAYER = {
    "dims": {},
    "layers": [
        {"kind": "linear", "name": "fc", "in": 784, "out": 256, "activation": "relu"}
    ],
}
ACTIVATION_NAMES = {
    "identity",
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "gelu_tanh",
    "silu",
    "mish",
    "tanh",
    "sigmoid",
    "softplus",
    "softsign",
}


@pytest.fixture(scope="module")
def client(live_server_url: str) -> Iterator[Client]:
    with Client(live_server_url) as client:
        yield client


def test_kaiming_normal_relu_linear(client: Client) -> None:
    result = client.recommend(MNIST_LAYER, scheme={"name": "kaiming_normal"})

    weight = result.by_name("fc.weight")
    # He et al. (2015): std = sqrt(2 / fan_in) for ReLU, 0.050507627227610534
    # for 784 inputs (Keras' VarianceScaling); torch.nn.init.kaiming_normal_'s
    # gain / sqrt(fan) rounds to 0.05050762722761054, one ulp away.
    assert weight.std == pytest.approx(0.050507627227610534, rel=1e-12)
    assert weight.gain == pytest.approx(math.sqrt(2.0), rel=1e-12)
    assert weight.fan_in == 784 and weight.fan_out == 256
    assert weight.shape == (256, 784)
    assert weight.distribution == "normal"
    assert result.scheme["name"] == "kaiming_normal"
    assert result.parameter_count == 784 * 256 + 256
    assert [p.name for p in result.parameters] == ["fc.weight", "fc.bias"]


def test_the_resolved_scheme_posts_back_to_the_same_answer(client: Client) -> None:
    first = client.recommend(MNIST_LAYER, scheme="kaiming_normal")

    again = client.recommend(MNIST_LAYER, scheme=first.scheme)

    assert again.raw == first.raw


def test_a_real_answer_still_reads_with_fields_from_the_future(client: Client) -> None:
    result = client.recommend(MNIST_LAYER)
    newer = copy.deepcopy(result.raw)
    newer["seed"] = 1234
    for parameter in newer["parameters"]:
        parameter["sampler"] = {"kind": "philox"}

    assert Recommendations.from_json(newer) == result


def test_gpt2_small_counts_124439808_parameters(client: Client) -> None:
    spec = load_spec(REPO_ROOT / "examples" / "gpt2-small.spec.json")

    result = client.recommend(spec)

    # Radford et al. (2019), GPT-2 small with the LM head tied to wte.
    assert result.parameter_count == 124_439_808
    assert result.residual_branch_count == 24


def test_a_bad_size_raises_validation_error_pointing_at_it(client: Client) -> None:
    spec = {"dims": {}, "layers": [{"kind": "linear", "in": -3, "out": 4}]}

    with pytest.raises(ValidationError) as caught:
        client.recommend(spec)

    error = caught.value
    assert error.status == 422
    assert "/spec/layers/0/in" in [field.pointer for field in error.errors]
    assert error.request_id == error.response.headers["X-Request-ID"]
    assert error.type.startswith("https://initlab.dev/problems/")


def test_the_message_of_a_422_names_the_field_and_the_fix(client: Client) -> None:
    spec = {
        "dims": {"d_model": 64},
        "layers": [{"kind": "linear", "in": "d_modle", "out": 4}],
    }

    with pytest.raises(ValidationError) as caught:
        client.recommend(spec)

    message = str(caught.value)
    assert message.startswith("422 ")
    assert '/spec/layers/0/in: unknown dim "d_modle"' in message
    assert 'did you mean "d_model"?' in message
    # Said once: the detail quotes the only field error, which is not repeated.
    assert message.count("unknown dim") == 1
    assert message.endswith(f"[request {caught.value.request_id}]")


def test_a_body_over_the_limit_raises_payload_too_large(client: Client) -> None:
    spec = {
        "dims": {},
        "layers": [{"kind": "linear", "name": "x" * 1_100_000, "in": 1, "out": 1}],
    }

    with pytest.raises(PayloadTooLarge) as caught:
        client.recommend(spec)

    assert caught.value.status == 413


def test_a_wrong_base_path_raises_not_found(live_server_url: str) -> None:
    with Client(live_server_url + "/v0") as client, pytest.raises(NotFound):
        client.schemes()


def test_leaky_relu_gain_follows_its_slope(client: Client) -> None:
    (leaky_relu,) = client.activations("leaky_relu", negative_slope=0.2)

    assert leaky_relu.name == "leaky_relu"
    assert leaky_relu.parameters == {"negative_slope": 0.2}
    # torch.nn.init.calculate_gain: sqrt(2 / (1 + negative_slope²)).
    assert leaky_relu.pytorch_gain == pytest.approx(
        math.sqrt(2.0 / (1 + 0.2**2)), rel=1e-12
    )


def test_relu_moments_are_the_gaussian_closed_forms(client: Client) -> None:
    (relu,) = client.activations("relu")

    # E[relu(z)] = 1/sqrt(2π), E[relu(z)²] = 1/2 for z ~ N(0, 1).
    assert relu.mean == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-12)
    assert relu.second_moment == pytest.approx(0.5, rel=1e-12)
    assert relu.pytorch_gain == pytest.approx(math.sqrt(2.0), rel=1e-12)


def test_every_activation_of_the_contract_is_listed(client: Client) -> None:
    assert {info.name for info in client.activations()} == ACTIVATION_NAMES


def test_schemes_list_their_options(client: Client) -> None:
    schemes = {scheme.name: scheme for scheme in client.schemes()}

    options = {option.name: option for option in schemes["kaiming_normal"].options}
    assert options["mode"].default == "fan_in"
    assert {"fan_in", "fan_out"} <= set(options["mode"].allowed)
    assert "xavier_uniform" in schemes


def test_health_is_ok(client: Client) -> None:
    assert client.health()["status"] == "ok"


def test_initlab_url_reaches_the_service(
    live_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INITLAB_URL", live_server_url)

    with Client() as client:
        assert client.base_url == live_server_url
        assert client.health()["status"] == "ok"
