"""GET /v1/visualizations/propagation and /phase-diagram, held to the contract.

The numbers are the mean-field checkpoints of signal-propagation.md: a ReLU
stack under He's init keeps E[h²] = 2 at every layer while Xavier's halves it
(σ_w² = 1, E[relu(h)²] = q/2); the tanh edge of chaos at σ_b² = 0.05 lies at
σ_w² = 1.760955 (Poole et al. 2016; Schoenholz et al. 2017), and the ReLU
edge is the single point σ_w² = 2, σ_b² = 0.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy
import pytest
from werkzeug.test import TestResponse

from initlab.web.config import Config, StatisticsLimits

from .conftest import ContractClient

PROBLEMS = "https://initlab.dev/problems/"
PROPAGATION = "/v1/visualizations/propagation"
PHASE_DIAGRAM = "/v1/visualizations/phase-diagram"


def chart(api: ContractClient, path: str, **query: str) -> dict:
    response = api.get(path, query=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def problem_of(response: TestResponse, status: int, kind: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = json.loads(response.get_data())
    assert body["type"] == PROBLEMS + kind
    assert body["instance"] == response.headers["X-Request-ID"]
    return body


def series_of(answer: dict, scheme: str, direction: str) -> dict:
    return next(
        series
        for series in answer["series"]
        if series["scheme"]["name"] == scheme and series["direction"] == direction
    )


# --- propagation ----------------------------------------------------------------


def test_he_keeps_the_second_moment_and_xavier_halves_it(api: ContractClient) -> None:
    answer = chart(
        api,
        PROPAGATION,
        activation="relu",
        schemes="kaiming_normal,xavier_normal",
        depth="6",
        width="128",
        seeds="4",
        batch_size="16",
    )

    assert answer["x"] == [1, 2, 3, 4, 5, 6]
    he = series_of(answer, "kaiming_normal", "forward")["analytic"]
    xavier = series_of(answer, "xavier_normal", "forward")["analytic"]
    assert he == pytest.approx([2.0] * 6, rel=1e-12)
    # σ_w² = 2·fan_in/(fan_in + fan_out) = 1: q¹ = 1, then halved per layer.
    assert xavier == pytest.approx([1.0 / 2**layer for layer in range(6)], rel=1e-12)
    band = series_of(answer, "kaiming_normal", "forward")["monte_carlo"]
    assert len(band["mean"]) == 6
    for mean, sd, lower, upper in zip(
        band["mean"], band["sd"], band["lower"], band["upper"], strict=True
    ):
        assert lower == pytest.approx(mean - sd, rel=1e-12)
        assert upper == pytest.approx(mean + sd, rel=1e-12)
    # Xavier's forward series spans 32×: read on a log axis.
    assert answer["forward_axis"]["scale"] == "log"
    assert answer["x_axis"]["label"] == "layer"
    verdicts = {verdict["scheme"]["name"]: verdict for verdict in answer["verdicts"]}
    assert verdicts["kaiming_normal"]["forward"]["verdict"] == "stable"
    assert verdicts["xavier_normal"]["forward"]["verdict"] == "vanishing"
    assert verdicts["xavier_normal"]["forward"]["growth_factor"] == pytest.approx(0.5)
    assert verdicts["xavier_normal"]["phase"]["phase"] == "ordered"
    assert [series["label"] for series in answer["series"]] == [
        "kaiming_normal, forward",
        "kaiming_normal, backward",
        "xavier_normal, forward",
        "xavier_normal, backward",
    ]
    assert answer["numpy_version"] == numpy.__version__
    assert answer["cost"]["work"] > 0


def test_sigma_b2_goes_to_mean_field(api: ContractClient) -> None:
    answer = chart(
        api,
        PROPAGATION,
        activation="tanh",
        schemes="mean_field",
        depth="3",
        width="32",
        sigma_b2="0.05",
        method="analytic",
    )

    forward = series_of(answer, "mean_field", "forward")
    assert forward["scheme"]["sigma_b2"] == 0.05
    # mean_field's default σ_w² = 1: q¹ = 1·E[x²] + σ_b².
    assert forward["analytic"][0] == pytest.approx(1.05, rel=1e-12)
    assert forward["monte_carlo"] is None
    assert answer["cost"] is None
    assert answer["sigma_b2"] == 0.05


def test_the_defaults_draw_the_issue_example(api: ContractClient) -> None:
    answer = chart(api, PROPAGATION, method="analytic")

    assert answer["activation"] == {"name": "relu"}
    assert (answer["depth"], answer["width"]) == (20, 256)
    assert [verdict["scheme"]["name"] for verdict in answer["verdicts"]] == [
        "kaiming_normal",
        "xavier_normal",
    ]


def test_the_same_query_gives_the_same_bytes(api: ContractClient) -> None:
    query = {"depth": "4", "width": "32", "seeds": "3", "batch_size": "8", "seed": "5"}

    first = api.get(PROPAGATION, query=query)
    again = api.get(PROPAGATION, query=query)

    assert first.status_code == 200
    assert first.get_data() == again.get_data()


GELU_EXPLODING = {
    "activation": "gelu",
    "schemes": "xavier_normal,kaiming_normal,normal",
    "depth": "20",
    "width": "128",
    "seeds": "2",
    "batch_size": "16",
}


def test_a_scheme_beyond_the_analytic_range_is_drawn_from_simulation(
    api: ContractClient,
) -> None:
    # N(0, 1) weights on 128 units give σ_w² = 128: gelu's E[h²] passes 1e12
    # at layer 7, past the mean-field integrals. The chart keeps that scheme
    # with its Monte Carlo means and the analytic lines of the others.
    answer = chart(api, PROPAGATION, **GELU_EXPLODING, method="both")
    alone = chart(
        api,
        PROPAGATION,
        **{**GELU_EXPLODING, "schemes": "xavier_normal,kaiming_normal"},
        method="analytic",
    )

    for scheme in ("xavier_normal", "kaiming_normal"):
        for direction in ("forward", "backward"):
            drawn = series_of(answer, scheme, direction)
            assert drawn["analytic"] == series_of(alone, scheme, direction)["analytic"]
            assert drawn["monte_carlo"] is not None
    exploding = series_of(answer, "normal", "forward")
    assert exploding["analytic"] is None
    assert exploding["monte_carlo"]["mean"][0] > 100.0
    [note] = [note for note in answer["notes"] if note.startswith("normal has no")]
    assert "8.79e+12 at layer7, beyond 1e+12" in note
    assert "Monte Carlo means" in note
    verdict = next(v for v in answer["verdicts"] if v["scheme"]["name"] == "normal")
    assert verdict["forward"]["verdict"] == "exploding"


def test_a_scheme_beyond_the_analytic_range_is_named_when_only_analytic(
    api: ContractClient,
) -> None:
    response = api.get(PROPAGATION, query={**GELU_EXPLODING, "method": "analytic"})

    body = problem_of(response, 422, "validation")
    [error] = body["errors"]
    assert error["pointer"] == "/schemes/2"
    assert error["message"].startswith("under normal, the pre-activation second")
    assert "Ask for method both or monte_carlo" in error["message"]


@pytest.mark.parametrize(
    ("query", "pointer", "expected"),
    [
        ({"depth": "0"}, "/depth", "at least 1"),
        ({"depth": "2.5"}, "/depth", "integer"),
        ({"sigma_b2": "-0.1"}, "/sigma_b2", "≥ 0"),
        ({"sigma_b2": "nan"}, "/sigma_b2", "number"),
        ({"input_second_moment": "2e12"}, "/input_second_moment", "1e12"),
        ({"schemes": "kaiming_normal,,xavier_normal"}, "/schemes", "commas"),
        ({"method": "exact"}, "/method", "analytic"),
        ({"activation": "swish"}, "/activation", "silu"),
        ({"colour": "red"}, "/colour", "allowed parameters"),
    ],
)
def test_a_bad_parameter_is_named(
    api: ContractClient, query: dict, pointer: str, expected: str
) -> None:
    response = api.get(PROPAGATION, query=query, conforms=None)

    body = problem_of(response, 422, "validation")
    [error] = body["errors"]
    assert error["pointer"] == pointer
    assert error["parameter"] == pointer.lstrip("/")
    assert expected in error["message"]


def test_an_unknown_scheme_is_named_with_its_position(api: ContractClient) -> None:
    response = api.get(PROPAGATION, query={"schemes": "kaiming_normal,he_normal"})

    body = problem_of(response, 422, "validation")
    [error] = body["errors"]
    assert error["pointer"].startswith("/schemes/1")
    assert error["parameter"] == "schemes"
    assert "he_normal" in error["message"]


def test_a_scheme_named_twice_is_refused(api: ContractClient) -> None:
    # Two curves of one name could not be told apart by a reader or a client.
    query = {"schemes": "kaiming_normal,xavier_normal, kaiming_normal"}
    response = api.get(PROPAGATION, query=query)

    body = problem_of(response, 422, "validation")
    [error] = body["errors"]
    assert error["parameter"] == "schemes"
    assert error["message"] == (
        'names "kaiming_normal" more than once; each scheme is one curve, so name'
        ' each once. Got "kaiming_normal,xavier_normal, kaiming_normal".'
    )


def test_a_parameter_given_twice_is_refused(api: ContractClient) -> None:
    # The contract client sends each parameter once: go around it, and check
    # the problem against the document's Problem schema by hand.
    response = api.client.get(f"{PROPAGATION}?depth=3&depth=4")

    body = problem_of(response, 422, "validation")
    api.problem_validator.validate(body)
    assert body["errors"][0]["parameter"] == "depth"
    assert "2 times" in body["errors"][0]["message"]


def test_a_parameter_of_another_activation_is_refused(api: ContractClient) -> None:
    response = api.get(PROPAGATION, query={"activation": "relu", "alpha": "2"})

    body = problem_of(response, 422, "validation")
    assert body["errors"][0]["parameter"] == "alpha"


def test_leaky_relu_takes_its_slope(api: ContractClient) -> None:
    answer = chart(
        api,
        PROPAGATION,
        activation="leaky_relu",
        negative_slope="0.2",
        schemes="kaiming_normal",
        depth="3",
        width="16",
        method="analytic",
    )

    assert answer["activation"] == {"name": "leaky_relu", "negative_slope": 0.2}
    # kaiming_normal with the layer's slope: σ_w² = 2/(1 + 0.2²) and
    # E[leaky(h)²] = (1 + 0.2²)/2·q, so q stays at σ_w²·E[x²] = 2/1.04.
    forward = series_of(answer, "kaiming_normal", "forward")["analytic"]
    assert forward == pytest.approx([2 / 1.04] * 3, rel=1e-12)


@pytest.mark.parametrize(
    ("parameter", "value", "limit"),
    [
        ("depth", "501", "max_chart_depth"),
        ("width", "4097", "max_chart_width"),
        ("seeds", "65", "max_seeds"),
        ("batch_size", "1025", "max_batch_size"),
        (
            "schemes",
            "xavier_uniform,xavier_normal,kaiming_uniform,kaiming_normal,"
            "lecun_uniform,lecun_normal,orthogonal,trunc_normal,normal",
            "max_chart_schemes",
        ),
    ],
)
def test_sizes_over_their_limits_are_refused(
    api: ContractClient, parameter: str, value: str, limit: str
) -> None:
    response = api.get(PROPAGATION, query={parameter: value})

    body = problem_of(response, 422, "limit-exceeded")
    assert (body["limit"], body["limit_value"]) == (
        limit,
        getattr(StatisticsLimits(), limit),
    )
    assert body["errors"][0]["parameter"] == parameter
    assert f"INITLAB_{limit.upper()}" in body["detail"]


def test_a_chart_over_budget_carries_its_estimate_and_the_next_is_answered(
    make_api: Callable[[Config], ContractClient],
) -> None:
    api = make_api(Config(statistics_limits=StatisticsLimits(compute_budget=10**6)))
    query = {"depth": "10", "width": "64", "seeds": "4", "batch_size": "16"}

    response = api.get(PROPAGATION, query=query)

    body = problem_of(response, 422, "limit-exceeded")
    assert body["limit"] == "compute_budget"
    assert body["estimate"]["work"] > 10**6
    assert body["estimate"]["compute_budget"] == 10**6
    assert "analytic" in body["detail"]
    # One network of this width at a batch of 1 is over 10⁶ by itself.
    assert body["errors"][0]["parameter"] == "width"
    assert chart(api, PROPAGATION, **query, method="analytic")["cost"] is None


# --- phase diagram --------------------------------------------------------------


def test_the_tanh_edge_of_chaos_at_the_reference_point(api: ContractClient) -> None:
    answer = chart(
        api,
        PHASE_DIAGRAM,
        activation="tanh",
        sigma_w2_min="1",
        sigma_w2_max="3",
        sigma_w2_steps="5",
        sigma_b2_min="0.05",
        sigma_b2_max="0.05",
        sigma_b2_steps="1",
    )

    assert answer["sigma_w2"] == [1.0, 1.5, 2.0, 2.5, 3.0]
    assert answer["sigma_b2"] == [0.05]
    [edge] = answer["edge"]
    # signal-propagation.md: σ_w² = 1.760955, q* = 0.570048 at σ_b² = 0.05.
    assert edge["sigma_b2"] == 0.05
    assert edge["sigma_w2"] == pytest.approx(1.760955, abs=1e-6)
    assert edge["q_star"] == pytest.approx(0.570048, abs=1e-6)
    [phases] = answer["phase"]
    assert phases == ["ordered", "ordered", "chaotic", "chaotic", "chaotic"]
    [chi_1] = answer["chi_1"]
    assert chi_1[1] == pytest.approx(0.938636, abs=1e-6)
    assert answer["q_star"][0][1] == pytest.approx(0.418037, abs=1e-6)
    assert answer["x_axis"]["label"].startswith("σ_w²")


def test_relu_has_its_edge_at_sigma_w2_two_only_without_bias(
    api: ContractClient,
) -> None:
    answer = chart(
        api,
        PHASE_DIAGRAM,
        activation="relu",
        sigma_w2_min="1",
        sigma_w2_max="3",
        sigma_w2_steps="3",
        sigma_b2_min="0",
        sigma_b2_max="0.1",
        sigma_b2_steps="2",
    )

    assert answer["edge"] == [{"sigma_b2": 0.0, "sigma_w2": 2.0, "q_star": 1.0}]
    # χ₁ = σ_w²/2 for ReLU, whatever q*.
    assert answer["chi_1"][0] == pytest.approx([0.5, 1.0, 1.5], rel=1e-12)


def test_softplus_has_no_edge_and_says_so(api: ContractClient) -> None:
    answer = chart(
        api,
        PHASE_DIAGRAM,
        activation="softplus",
        sigma_w2_steps="3",
        sigma_b2_steps="2",
    )

    assert answer["edge"] == []
    assert any("no edge of chaos" in note for note in answer["notes"])


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"sigma_w2_min": "0"}, "sigma_w2_min"),
        ({"sigma_b2_min": "-1"}, "sigma_b2_min"),
        ({"sigma_w2_steps": "0"}, "sigma_w2_steps"),
        ({"sigma_w2_min": "3", "sigma_w2_max": "2"}, "sigma_w2_max"),
    ],
)
def test_a_grid_it_cannot_draw_is_named(
    api: ContractClient, query: dict, parameter: str
) -> None:
    response = api.get(PHASE_DIAGRAM, query=query, conforms=None)

    body = problem_of(response, 422, "validation")
    assert [error["parameter"] for error in body["errors"]] == [parameter]


def test_a_grid_over_its_limit_is_refused(api: ContractClient) -> None:
    response = api.get(PHASE_DIAGRAM, query={"sigma_b2_steps": "102"})

    body = problem_of(response, 422, "limit-exceeded")
    assert (body["limit"], body["limit_value"]) == ("max_grid_steps", 101)
    assert body["errors"][0]["parameter"] == "sigma_b2_steps"


# --- the contract ---------------------------------------------------------------

CHART_COMPONENTS = [
    "PropagationChart",
    "PhaseDiagramChart",
    "Series",
    "Band",
    "Axis",
    "SchemeVerdict",
    "EdgePoint",
]


@pytest.mark.parametrize("component", CHART_COMPONENTS)
def test_every_field_is_described(openapi_document: dict, component: str) -> None:
    properties = openapi_document["components"]["schemas"][component]["properties"]

    undescribed = [
        name for name, field in properties.items() if not field.get("description")
    ]
    assert undescribed == []


@pytest.mark.parametrize("path", [PROPAGATION, PHASE_DIAGRAM])
def test_every_query_parameter_is_described(openapi_document: dict, path: str) -> None:
    parameters = openapi_document["paths"][path]["get"]["parameters"]

    query = [parameter for parameter in parameters if parameter.get("in") == "query"]
    assert query
    assert [p["name"] for p in query if not p.get("description")] == []
