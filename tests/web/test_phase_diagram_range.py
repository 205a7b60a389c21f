"""The phase diagram's σ_w² and σ_b² axes are bounded as mean_field's options."""

from __future__ import annotations

import pytest

from .conftest import ContractClient
from .test_visualizations import chart, problem_of

PHASE = "/v1/visualizations/phase-diagram"


@pytest.mark.parametrize(
    ("parameter", "value", "allowed"),
    [
        ("sigma_w2_max", "1e20", "must be in (0, 1e6]; got 1e+20"),
        ("sigma_w2_min", "2e6", "must be in (0, 1e6]; got 2000000.0"),
        ("sigma_b2_max", "1000001", "must be in [0, 1e6]; got 1000001"),
    ],
)
def test_an_axis_end_beyond_1e6_is_refused_with_the_range(
    api: ContractClient, parameter: str, value: str, allowed: str
) -> None:
    response = api.get(
        PHASE, query={"activation": "tanh", parameter: value}, conforms=False
    )

    body = problem_of(response, 422, "validation")
    (error,) = body["errors"]
    assert error["pointer"] == f"/{parameter}"
    assert error["parameter"] == parameter
    assert error["message"].startswith(allowed)


def test_tanh_at_the_largest_sigma_w2_is_chaotic(api: ContractClient) -> None:
    answer = chart(
        api,
        PHASE,
        activation="tanh",
        sigma_w2_min="1e6",
        sigma_w2_max="1e6",
        sigma_w2_steps="1",
        sigma_b2_min="0",
        sigma_b2_max="0",
        sigma_b2_steps="1",
    )

    assert answer["sigma_w2"] == [1e6]
    # χ₁ = σ_w²·E[sech⁴(√q* z)] with q* ≈ σ_w²: about √(σ_w²)·(4/3)·(2/π)^½·…,
    # far above 1, where a σ_w² of 1e20 read 0.
    assert answer["chi_1"][0][0] > 100
    assert answer["q_star"][0][0] == pytest.approx(1e6, rel=1e-3)
