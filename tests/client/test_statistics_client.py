"""The client's statistics and chart methods against the real service.

The server is gunicorn on 127.0.0.1, started once per session
(``live_server_url``); the numbers are the mean-field checkpoints of
signal-propagation.md. The models are also read from answers with fields
this client does not know, as a newer service would send.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import requests

from initlab_client import (
    Client,
    Cost,
    LimitExceeded,
    PhaseDiagram,
    PropagationChart,
    Statistics,
    ValidationError,
)

pytestmark = pytest.mark.server

RELU = {"kind": "linear", "in": "d", "out": "d", "activation": "relu"}
RELU_MLP = {
    "dims": {"d": 128},
    "layers": [{**RELU, "name": f"fc{index}"} for index in range(4)],
}


def tanh_stack(depth: int) -> dict:
    layer = {"kind": "linear", "name": "fc", "in": 64, "out": 64, "activation": "tanh"}
    return {
        "dims": {},
        "layers": [{"kind": "repeat", "name": "h", "count": depth, "layers": [layer]}],
    }


@pytest.fixture(scope="module")
def client(live_server_url: str) -> Iterator[Client]:
    with Client(live_server_url) as client:
        yield client


def test_relu_under_he_keeps_the_second_moment(client: Client) -> None:
    result = client.statistics(
        RELU_MLP, init="kaiming_normal", batch_size=32, seeds=4, seed=1
    )

    assert isinstance(result, Statistics)
    for layer in result.layers:
        # σ_w² = 2 and E[relu(h)²] = q/2: q = 2 at every layer, exactly.
        assert layer.analytic.second_moment == pytest.approx(2.0, rel=1e-12)
        assert layer.analytic.chi_1 == pytest.approx(1.0, rel=1e-12)
        measured = layer.monte_carlo.second_moment
        assert abs(measured.mean - 2.0) < 5 * measured.standard_error + 0.05
        assert layer.monte_carlo.saturation_fraction is None
    assert result.summary.forward.verdict == "stable"
    assert result.summary.phase.phase == "critical"
    assert result.init["name"] == "kaiming_normal"
    assert (result.seed, result.seeds, result.batch_size) == (1, 4, 32)
    assert isinstance(result.cost, Cost)
    assert result.cost.work <= result.cost.compute_budget
    assert result.layer("fc2").width == 128


def test_tanh_converges_to_q_star(client: Client) -> None:
    result = client.statistics(
        tanh_stack(40),
        init={"name": "mean_field", "sigma_w2": 1.5, "sigma_b2": 0.05},
        method="analytic",
        input_second_moment=1.0,
        input_correlation=0.5,
    )

    # signal-propagation.md: q* = 0.418037, χ₁ = 0.938636.
    assert result.layers[-1].analytic.second_moment == pytest.approx(0.418037, abs=1e-6)
    assert result.summary.phase.q_star == pytest.approx(0.418037, abs=1e-6)
    assert result.summary.phase.chi_1 == pytest.approx(0.938636, abs=1e-6)
    assert result.summary.phase.phase == "ordered"
    # The first layer's pair: (σ_w²·c⁰·q⁰ + σ_b²)/(σ_w²·q⁰ + σ_b²) = 0.8/1.55.
    assert result.layers[0].analytic.correlation == pytest.approx(0.8 / 1.55, rel=1e-9)
    assert result.layers[0].monte_carlo is None
    assert result.cost is None
    assert result.input == {"second_moment": 1.0, "correlation": 0.5}


def test_the_same_arguments_give_the_same_numbers(client: Client) -> None:
    arguments = {"spec": RELU_MLP, "batch_size": 16, "seeds": 3, "seed": 9}

    first = client.statistics(**arguments)
    again = client.statistics(**arguments)

    assert again.raw == first.raw
    assert again == first


def test_over_budget_raises_limit_exceeded_and_the_next_call_is_answered(
    client: Client,
) -> None:
    wide = {
        "dims": {"d": 4096},
        "layers": [
            {
                "kind": "repeat",
                "name": "h",
                "count": 100,
                "layers": [
                    {
                        "kind": "linear",
                        "name": "fc",
                        "in": "d",
                        "out": "d",
                        "activation": "relu",
                    }
                ],
            }
        ],
    }

    with pytest.raises(LimitExceeded) as refused:
        client.statistics(wide, batch_size=1024, seeds=64)

    error = refused.value
    assert isinstance(error, ValidationError)
    assert error.status == 422
    assert error.limit == "compute_budget"
    assert error.estimate["work"] > error.limit_value
    assert "analytic" in error.detail
    assert error.errors[0].pointer == "/backward"
    # The service answers the next request, and the analytic method fits.
    assert client.health()["status"] == "ok"
    assert len(client.statistics(wide, method="analytic").layers) == 100


def test_a_field_over_its_limit_names_the_limit(client: Client) -> None:
    with pytest.raises(LimitExceeded) as refused:
        client.statistics(RELU_MLP, seeds=10_000)

    assert (refused.value.limit, refused.value.limit_value) == ("max_seeds", 64)
    assert refused.value.estimate is None


def test_a_bad_init_raises_validation_error_at_init(client: Client) -> None:
    with pytest.raises(ValidationError) as refused:
        client.statistics(RELU_MLP, init="kaiming")

    assert not isinstance(refused.value, LimitExceeded)
    assert [field.pointer for field in refused.value.errors] == ["/init"]


def test_propagation_compares_schemes(client: Client) -> None:
    chart = client.propagation(
        "relu",
        ["kaiming_normal", "xavier_normal"],
        depth=5,
        width=64,
        seeds=3,
        batch_size=16,
    )

    assert isinstance(chart, PropagationChart)
    assert chart.x == (1, 2, 3, 4, 5)
    assert chart.curve("kaiming_normal").analytic == pytest.approx((2.0,) * 5)
    assert chart.curve("xavier_normal").analytic == pytest.approx(
        (1.0, 0.5, 0.25, 0.125, 0.0625)
    )
    band = chart.curve("kaiming_normal", "backward").monte_carlo
    assert len(band.mean) == 5
    assert chart.forward_axis.scale == "log"
    assert [verdict.forward.verdict for verdict in chart.verdicts] == [
        "stable",
        "vanishing",
    ]
    with pytest.raises(KeyError, match="kaiming_normal, xavier_normal"):
        chart.curve("orthogonal")


def test_propagation_passes_activation_parameters_and_sigma_b2(
    client: Client,
) -> None:
    chart = client.propagation(
        "leaky_relu",
        "mean_field",
        depth=2,
        width=16,
        sigma_b2=0.05,
        method="analytic",
        negative_slope=0.2,
    )

    assert chart.activation == {"name": "leaky_relu", "negative_slope": 0.2}
    assert chart.sigma_b2 == 0.05
    # mean_field's σ_w² = 1: q¹ = E[x²] + σ_b².
    assert chart.curve("mean_field").analytic[0] == pytest.approx(1.05, rel=1e-12)
    assert chart.cost is None


def test_phase_diagram_draws_the_tanh_edge_of_chaos(client: Client) -> None:
    diagram = client.phase_diagram(
        "tanh", sigma_w2=(1.0, 3.0, 5), sigma_b2=(0.05, 0.05, 1)
    )

    assert isinstance(diagram, PhaseDiagram)
    assert diagram.sigma_w2 == (1.0, 1.5, 2.0, 2.5, 3.0)
    [edge] = diagram.edge
    # signal-propagation.md: the tanh edge at σ_b² = 0.05 is σ_w² = 1.760955.
    assert edge.sigma_w2 == pytest.approx(1.760955, abs=1e-6)
    assert edge.q_star == pytest.approx(0.570048, abs=1e-6)
    assert diagram.phase[0][:3] == ("ordered", "ordered", "chaotic")
    assert diagram.chi_1[0][1] == pytest.approx(0.938636, abs=1e-6)


def test_a_bad_grid_raises_validation_error_naming_it(client: Client) -> None:
    with pytest.raises(ValidationError) as refused:
        client.phase_diagram("tanh", sigma_w2=(0.0, 2.0, 3))

    assert [field.pointer for field in refused.value.errors] == ["/sigma_w2_min"]


# --- reading answers from a newer service ---------------------------------------


# Members whose value is a free-form object, kept whole by the client.
FREE_FORM = {"init", "scheme", "activation", "input", "estimate"}


def _with_future_fields(document: object) -> object:
    """Every object of ``document`` with a member no client knows yet.

    Free-form objects (a resolved scheme, an activation) are left as they
    are: the client keeps them whole, members it does not know included.
    """
    if isinstance(document, dict):
        newer = {
            key: value if key in FREE_FORM else _with_future_fields(value)
            for key, value in document.items()
        }
        newer["added_in_v1_9"] = {"anything": [1, 2]}
        return newer
    if isinstance(document, list):
        return [_with_future_fields(item) for item in document]

    return document


def test_statistics_read_answers_with_fields_from_the_future(
    client: Client, live_server_url: str
) -> None:
    answer = requests.post(
        f"{live_server_url}/v1/statistics",
        json={"spec": RELU_MLP, "seeds": 2, "batch_size": 8},
        timeout=30,
    ).json()

    newer = _with_future_fields(copy.deepcopy(answer))

    assert Statistics.from_json(newer) == Statistics.from_json(answer)


def test_charts_read_answers_with_fields_from_the_future(
    live_server_url: str,
) -> None:
    for path, model in (
        ("propagation?depth=3&width=16&seeds=2&batch_size=8", PropagationChart),
        ("phase-diagram?sigma_w2_steps=3&sigma_b2_steps=2", PhaseDiagram),
    ):
        answer = requests.get(
            f"{live_server_url}/v1/visualizations/{path}", timeout=30
        ).json()

        newer = _with_future_fields(copy.deepcopy(answer))

        assert model.from_json(newer) == model.from_json(answer)
