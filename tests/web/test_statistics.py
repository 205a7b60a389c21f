"""POST /v1/statistics: the request's rules, its limits, and the numbers it answers.

Every exchange goes through the ``api`` fixture, which checks it against
openapi.yaml. The analytic numbers are the mean-field checkpoints of
signal-propagation.md (Poole et al. 2016; Schoenholz et al. 2017): a ReLU
network under He's init keeps its second moment, a tanh stack at σ_w² = 1.5,
σ_b² = 0.05 is ordered with χ₁ = 0.938636 at q* = 0.418037.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import numpy
import pytest
from werkzeug.test import TestResponse

from initlab.core.errors import InvalidInput
from initlab.core.propagation import AnalyticLayer
from initlab.core.spec import SpecLimits
from initlab.core.statistics import MONTE_CARLO_STATISTICS
from initlab.web import statistics_routes
from initlab.web.config import Config, StatisticsLimits, settings
from initlab.web.schemas.statistics import ANALYTIC_VALUES, MONTE_CARLO_VALUES

from .conftest import ContractClient

PROBLEMS = "https://initlab.dev/problems/"


def relu_mlp(width: int = 64, depth: int = 4, d_in: int = 32) -> dict:
    """``depth`` ReLU layers of ``width`` units after a ``d_in``-wide input."""
    layers = [
        {
            "kind": "linear",
            "name": f"fc{index}",
            "in": d_in if index == 0 else "d",
            "out": "d",
            "activation": "relu",
        }
        for index in range(depth)
    ]
    return {"dims": {"d": width}, "layers": layers}


MLP = relu_mlp()


def problem_of(response: TestResponse, status: int, kind: str) -> dict:
    """The problem body, after the checks every problem response must pass."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = json.loads(response.get_data())
    assert body["type"] == PROBLEMS + kind
    assert body["status"] == status
    assert body["instance"] == response.headers["X-Request-ID"]
    return body


def pointers(body: dict) -> list[str]:
    return [error["pointer"] for error in body["errors"]]


def message_at(body: dict, pointer: str) -> str:
    return next(
        error["message"] for error in body["errors"] if error["pointer"] == pointer
    )


# --- configuration ----------------------------------------------------------------


def test_statistics_limits_have_documented_defaults() -> None:
    config = Config.from_environ({})

    assert config.statistics_limits == StatisticsLimits()
    assert config.statistics_limits.max_batch_size == 1024
    assert config.statistics_limits.max_seeds == 64
    listed = {setting.variable: setting for setting in settings()}
    for variable in (
        "INITLAB_MAX_BATCH_SIZE",
        "INITLAB_MAX_SEEDS",
        "INITLAB_COMPUTE_BUDGET",
        "INITLAB_MEMORY_BUDGET",
        "INITLAB_MAX_CHART_DEPTH",
        "INITLAB_MAX_CHART_WIDTH",
        "INITLAB_MAX_CHART_SCHEMES",
        "INITLAB_MAX_GRID_STEPS",
    ):
        assert listed[variable].description


def test_statistics_limits_are_read_from_the_environment() -> None:
    config = Config.from_environ(
        {"INITLAB_MAX_SEEDS": "3", "INITLAB_COMPUTE_BUDGET": "123456789"}
    )

    assert config.statistics_limits.max_seeds == 3
    assert config.statistics_limits.compute_budget == 123456789
    assert config.statistics_limits.max_batch_size == 1024


# --- 422: the request's own rules --------------------------------------------------


def test_every_field_at_fault_is_reported_with_its_pointer(
    api: ContractClient,
) -> None:
    response = api.post(
        "/v1/statistics",
        json_body={
            "spec": MLP,
            "method": "mc",
            "batch_size": 0,
            "seeds": 2.0,
            "seed": -1,
            "input": {"second_moment": "1", "correlation": 1.5},
        },
        conforms=False,
    )

    body = problem_of(response, 422, "validation")
    assert sorted(pointers(body)) == [
        "/batch_size",
        "/input/correlation",
        "/input/second_moment",
        "/method",
        "/seed",
        "/seeds",
    ]
    assert "analytic, monte_carlo, both" in message_at(body, "/method")
    assert "mc" in message_at(body, "/method")
    assert "got 0" in message_at(body, "/batch_size")
    assert "got 2.0" in message_at(body, "/seeds")
    assert "[-1, 1]" in message_at(body, "/input/correlation")
    assert "number" in message_at(body, "/input/second_moment")


def test_a_missing_spec_and_an_unknown_member_are_both_reported(
    api: ContractClient,
) -> None:
    response = api.post(
        "/v1/statistics", json_body={"specs": MLP, "scheme": "gpt2"}, conforms=False
    )

    body = problem_of(response, 422, "validation")
    assert sorted(pointers(body)) == ["/scheme", "/spec", "/specs"]
    assert "init" in message_at(body, "/scheme")


def test_an_unknown_init_points_at_init(api: ContractClient) -> None:
    response = api.post(
        "/v1/statistics",
        json_body={"spec": MLP, "init": "kaiming_normall"},
        conforms=False,
    )

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/init"]
    assert "kaiming_normall" in message_at(body, "/init")
    assert "kaiming_normal," in message_at(body, "/init")


def test_a_bad_init_option_points_at_the_option(api: ContractClient) -> None:
    response = api.post(
        "/v1/statistics",
        json_body={"spec": MLP, "init": {"name": "kaiming_normal", "mode": "fan"}},
        conforms=False,
    )

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/init/mode"]
    assert "fan" in message_at(body, "/init/mode")
    assert "fan_out" in message_at(body, "/init/mode")


def test_spec_and_init_problems_are_reported_together(api: ContractClient) -> None:
    spec = relu_mlp()
    spec["layers"][0]["in"] = "d_missing"

    response = api.post(
        "/v1/statistics",
        json_body={"spec": spec, "init": {"name": "xavier_normal", "gain": -1}},
        conforms=False,
    )

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/spec/layers/0/in", "/init/gain"]


# --- 422: configured limits ---------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "limit", "variable"),
    [
        ("batch_size", 1025, "max_batch_size", "INITLAB_MAX_BATCH_SIZE"),
        ("seeds", 65, "max_seeds", "INITLAB_MAX_SEEDS"),
    ],
)
def test_a_request_field_over_its_limit_is_refused_naming_the_limit(
    api: ContractClient, field: str, value: int, limit: str, variable: str
) -> None:
    response = api.post("/v1/statistics", json_body={"spec": MLP, field: value})

    body = problem_of(response, 422, "limit-exceeded")
    assert body["limit"] == limit
    assert body["limit_value"] == getattr(StatisticsLimits(), limit)
    assert pointers(body) == [f"/{field}"]
    assert variable in body["detail"]
    assert str(value) in message_at(body, f"/{field}")


def test_limits_follow_the_configuration(
    make_api: Callable[[Config], ContractClient],
) -> None:
    api = make_api(Config(statistics_limits=StatisticsLimits(max_seeds=2)))

    response = api.post("/v1/statistics", json_body={"spec": MLP, "seeds": 3})

    body = problem_of(response, 422, "limit-exceeded")
    assert (body["limit"], body["limit_value"]) == ("max_seeds", 2)


# --- 200: the numbers ---------------------------------------------------------------


def statistics(api: ContractClient, **request) -> dict:
    response = api.post("/v1/statistics", json_body=request)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def by_name(answer: dict) -> dict[str, dict]:
    return {row["name"]: row for row in answer["layers"]}


def tanh_stack(depth: int, width: int = 64) -> dict:
    layers = [
        {
            "kind": "linear",
            "name": f"fc{index}",
            "in": "d",
            "out": "d",
            "activation": "tanh",
        }
        for index in range(depth)
    ]
    return {"dims": {"d": width}, "layers": layers}


def test_relu_under_he_keeps_the_second_moment_exactly(api: ContractClient) -> None:
    answer = statistics(
        api, spec=relu_mlp(depth=6), init="kaiming_normal", method="analytic"
    )

    # He et al. (2015): σ_w² = 2 and E[relu(h)²] = q/2, so q is the same at
    # every layer: 2·E[x²] = 2 for a unit input.
    for row in answer["layers"]:
        assert row["analytic"]["second_moment"] == pytest.approx(2.0, rel=1e-12)
        assert row["analytic"]["post_activation_second_moment"] == pytest.approx(
            1.0, rel=1e-12
        )
        assert row["analytic"]["chi_1"] == pytest.approx(1.0, rel=1e-12)
        assert row["analytic"]["sigma_w2"] == pytest.approx(2.0, rel=1e-12)
        assert row["monte_carlo"] is None
        assert row["sampling"] is None
    summary = answer["summary"]
    assert summary["forward"]["verdict"] == "stable"
    assert summary["forward"]["ratio"] == pytest.approx(1.0, rel=1e-12)
    assert summary["forward"]["crossing_layer"] is None
    assert summary["backward"]["verdict"] == "stable"
    assert summary["phase"]["phase"] == "critical"
    assert summary["phase"]["activation"] == {"name": "relu"}
    assert summary["source"] == "analytic"
    assert answer["cost"] is None


def test_tanh_at_the_reference_point_converges_to_q_star(api: ContractClient) -> None:
    init = {"name": "mean_field", "sigma_w2": 1.5, "sigma_b2": 0.05}

    answer = statistics(api, spec=tanh_stack(40), init=init, method="analytic")

    # signal-propagation.md checkpoint: q* = 0.418037, χ₁ = 0.938636.
    last = answer["layers"][-1]["analytic"]
    assert last["second_moment"] == pytest.approx(0.418037, abs=1e-6)
    assert last["chi_1"] == pytest.approx(0.938636, abs=1e-6)
    phase = answer["summary"]["phase"]
    assert phase["homogeneous"] is True
    assert phase["phase"] == "ordered"
    assert phase["q_star"] == pytest.approx(0.418037, abs=1e-6)
    assert phase["chi_1"] == pytest.approx(0.938636, abs=1e-6)
    assert phase["sigma_w2"] == pytest.approx(1.5, rel=1e-12)
    assert phase["sigma_b2"] == pytest.approx(0.05, rel=1e-12)
    # Ordered: the gradient shrinks by about χ₁ per layer, 0.9386^39 ≈ 0.085.
    assert answer["summary"]["backward"]["verdict"] == "vanishing"
    assert answer["summary"]["backward"]["growth_factor"] < 1
    assert answer["init"] == init


def test_monte_carlo_agrees_with_the_prediction_within_its_error(
    api: ContractClient,
) -> None:
    answer = statistics(
        api,
        spec=relu_mlp(width=256, depth=3, d_in=64),
        init="kaiming_normal",
        batch_size=32,
        seeds=16,
        seed=7,
        input={"second_moment": 1.0, "correlation": 0.5},
    )

    for row in answer["layers"]:
        for statistic in ("second_moment", "correlation", "gradient_second_moment"):
            predicted = row["analytic"][statistic]
            measured = row["monte_carlo"][statistic]
            assert abs(measured["mean"] - predicted) <= 4 * measured[
                "standard_error"
            ] + 1e-3 * abs(predicted), (row["name"], statistic, measured, predicted)
        assert row["monte_carlo"]["saturation_fraction"] is None
        assert 0 <= row["monte_carlo"]["dead_fraction"]["mean"] < 0.05
    first = answer["layers"][0]
    # The first layer's correlation is the input's, exactly: a linear map of
    # a pair at correlation 0.5 with zero bias keeps it at infinite width.
    assert first["analytic"]["correlation"] == pytest.approx(0.5, rel=1e-12)


def test_the_answer_echoes_what_it_was_computed_with(api: ContractClient) -> None:
    answer = statistics(
        api,
        spec=MLP,
        init={"name": "xavier_normal"},
        overrides={"fc3": "kaiming_normal"},
        method="monte_carlo",
        batch_size=16,
        seeds=3,
        seed=11,
        backward=False,
        input={"second_moment": 2.5},
    )

    assert answer["method"] == "monte_carlo"
    assert answer["init"] == {"name": "xavier_normal", "gain": 1.0}
    assert answer["overrides"][0]["pattern"] == "fc3"
    assert "fc3.weight" in answer["overrides"][0]["matched"]
    assert (answer["seed"], answer["seeds"], answer["batch_size"]) == (11, 3, 16)
    assert answer["backward"] is False
    assert answer["input"] == {"second_moment": 2.5, "correlation": None}
    assert answer["numpy_version"] == numpy.__version__
    assert answer["monte_carlo_model"].startswith("Monte Carlo at finite width")
    assert answer["attention_model"] is None
    assert answer["summary"]["backward"] is None
    assert answer["summary"]["source"] == "monte_carlo"
    for row in answer["layers"]:
        assert row["analytic"] is None
        assert row["monte_carlo"]["gradient_second_moment"] is None
        # Forward only with Gaussian weights: the exact kernel path draws no W.
        assert row["sampling"] == "kernel"
    cost = answer["cost"]
    assert (
        cost["work"]
        == cost["flops"] + cost["random_number_flops"] * (cost["random_numbers"])
    )
    assert cost["compute_budget"] == StatisticsLimits().compute_budget
    assert any("3 independently drawn networks" in note for note in answer["notes"])


def test_the_same_request_gives_the_same_bytes(api: ContractClient) -> None:
    request = {"spec": MLP, "seeds": 4, "batch_size": 16, "seed": 3}

    first = api.post("/v1/statistics", json_body=request)
    again = api.post("/v1/statistics", json_body=request)
    other_seed = api.post("/v1/statistics", json_body={**request, "seed": 4})

    assert first.status_code == 200
    assert first.get_data() == again.get_data()
    assert other_seed.get_data() != first.get_data()


def test_a_network_that_overflows_is_answered_with_nulls_and_a_note(
    api: ContractClient,
) -> None:
    # σ_w² = 100·32 on the first layer, 100·64 on the others: after a ReLU
    # the second moment grows 3200× a layer and passes float32's 3.4e38
    # after a dozen layers.
    answer = statistics(
        api,
        spec=relu_mlp(depth=14),
        init={"name": "normal", "std": 10.0},
        seeds=2,
        batch_size=8,
    )

    measured = [row["monte_carlo"]["second_moment"] for row in answer["layers"]]
    assert measured[0]["mean"] == pytest.approx(3200, rel=0.1)
    assert measured[-1] is None or measured[-1]["mean"] is None
    assert any("overflowed" in note for note in answer["notes"])
    assert answer["summary"]["forward"]["verdict"] == "exploding"
    assert answer["summary"]["forward"]["crossing_layer"] == "fc1"
    assert answer["summary"]["forward"]["growth_factor"] == pytest.approx(3200)


def test_a_network_the_engines_cannot_model_points_at_the_layer(
    api: ContractClient,
) -> None:
    spec = relu_mlp()
    spec["layers"][1]["in"] = 48

    response = api.post("/v1/statistics", json_body={"spec": spec})

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/spec/layers/1"]
    assert "48" in message_at(body, "/spec/layers/1")


# --- 422: the compute budget ----------------------------------------------------------

WIDE_AND_DEEP = relu_mlp(width=4096, depth=100, d_in=4096)


def test_over_budget_is_refused_with_the_estimate_and_the_service_answers_next(
    api: ContractClient,
) -> None:
    request = {"spec": WIDE_AND_DEEP, "batch_size": 1024, "seeds": 64}

    response = api.post("/v1/statistics", json_body=request)

    body = problem_of(response, 422, "limit-exceeded")
    assert body["limit"] == "compute_budget"
    assert body["limit_value"] == StatisticsLimits().compute_budget
    estimate = body["estimate"]
    assert estimate["work"] > body["limit_value"]
    assert estimate["compute_budget"] == body["limit_value"]
    assert (
        estimate["work"]
        == estimate["flops"]
        + estimate["random_number_flops"] * (estimate["random_numbers"])
    )
    # Drawing 4096 × 4096 weights per layer for the backward pass is what is
    # over: forward-only with a small batch is the change that fits.
    assert pointers(body) == ["/backward"]
    assert '"backward": false with a batch of at most' in message_at(body, "/backward")
    assert "INITLAB_COMPUTE_BUDGET" in body["detail"]
    assert "analytic" in body["detail"]
    assert f"{estimate['work']:.3g}" in body["detail"]

    # The analytic method is always available, and the service still answers.
    analytic = statistics(api, **request, method="analytic")
    assert analytic["cost"] is None
    assert len(analytic["layers"]) == 100


def test_the_refusal_names_how_many_seeds_fit(
    make_api: Callable[[Config], ContractClient],
) -> None:
    api = make_api(Config())
    request = {"spec": MLP, "seeds": 8, "batch_size": 64}
    work = statistics(api, **request)["cost"]["work"]
    limits = StatisticsLimits(compute_budget=work // 8 * 3 + 1)
    tight = make_api(Config(statistics_limits=limits))

    response = tight.post("/v1/statistics", json_body=request)

    body = problem_of(response, 422, "limit-exceeded")
    assert body["estimate"]["work"] == work
    assert "at most 3 seeds" in message_at(body, "/seeds")
    fitting = statistics(tight, **{**request, "seeds": 3})
    assert fitting["cost"]["work"] == work // 8 * 3


def test_the_memory_budget_is_checked_too(
    make_api: Callable[[Config], ContractClient],
) -> None:
    api = make_api(Config(statistics_limits=StatisticsLimits(memory_budget=1000)))

    response = api.post("/v1/statistics", json_body={"spec": MLP})

    body = problem_of(response, 422, "limit-exceeded")
    assert body["limit"] == "memory_budget"
    assert body["estimate"]["peak_bytes"] > 1000
    # Not even one network at a batch of 1 fits in 1000 bytes: the network.
    assert pointers(body) == ["/spec/layers"]
    assert "one network alone at a batch of 1" in message_at(body, "/spec/layers")
    assert "INITLAB_MEMORY_BUDGET" in body["detail"]


# --- the contract -----------------------------------------------------------------

STATISTICS_COMPONENTS = [
    "StatisticsRequest",
    "StatisticsInput",
    "StatisticsResponse",
    "StatisticsLayer",
    "AnalyticValues",
    "MonteCarloValues",
    "Estimate",
    "Cost",
    "StatisticsSummary",
    "Trend",
    "Phase",
]


@pytest.mark.parametrize("component", STATISTICS_COMPONENTS)
def test_every_field_is_described(openapi_document: dict, component: str) -> None:
    properties = openapi_document["components"]["schemas"][component]["properties"]

    undescribed = [
        name for name, field in properties.items() if not field.get("description")
    ]
    assert undescribed == []


def test_every_engine_value_is_in_the_contract() -> None:
    analytic = {field.name for field in dataclasses.fields(AnalyticLayer)}

    assert set(ANALYTIC_VALUES) == analytic - {"name", "kind", "width"}
    assert tuple(MONTE_CARLO_VALUES) == MONTE_CARLO_STATISTICS


def test_a_spec_with_more_layers_than_allowed_is_refused_before_any_work(
    make_api: Callable[[Config], ContractClient],
) -> None:
    limits = StatisticsLimits(max_statistics_layers=3)
    api = make_api(Config(statistics_limits=limits))

    response = api.post(
        "/v1/statistics", json_body={"spec": relu_mlp(depth=4), "method": "analytic"}
    )

    body = problem_of(response, 422, "limit-exceeded")
    assert (body["limit"], body["limit_value"]) == ("max_statistics_layers", 3)
    assert pointers(body) == ["/spec"]
    assert "4 layers" in message_at(body, "/spec")
    assert "INITLAB_MAX_STATISTICS_LAYERS" in body["detail"]


def test_a_problem_of_the_whole_network_points_at_the_init(
    api: ContractClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engines report a signal that leaves what they can integrate at ();
    # drawing the weights smaller is the fix, so the problem is the init's.
    def explodes(*args, **kwargs):
        raise InvalidInput.at((), "the signal explodes at fc3", 1e13)

    monkeypatch.setattr(statistics_routes, "compute_statistics", explodes)

    response = api.post("/v1/statistics", json_body={"spec": MLP})

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/init"]
    assert "explodes" in message_at(body, "/init")


def test_the_phase_of_a_too_large_input_points_at_the_input(
    api: ContractClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuses(*args, **kwargs):
        raise InvalidInput.at(("q_input",), "q_input must be at most 1e12", 2e12)

    monkeypatch.setattr(statistics_routes, "compute_statistics", refuses)

    response = api.post("/v1/statistics", json_body={"spec": MLP})

    body = problem_of(response, 422, "validation")
    assert pointers(body) == ["/input/second_moment"]


def test_the_override_limits_apply_as_in_recommendations(
    make_api: Callable[[Config], ContractClient],
) -> None:
    api = make_api(Config(spec_limits=SpecLimits(max_overrides=1)))
    overrides = {"fc0": "xavier_normal", "fc1": "xavier_normal"}

    response = api.post(
        "/v1/statistics", json_body={"spec": MLP, "overrides": overrides}
    )

    body = problem_of(response, 422, "limit-exceeded")
    assert (body["limit"], body["limit_value"]) == ("max_overrides", 1)
    assert pointers(body) == ["/overrides"]
