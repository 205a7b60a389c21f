"""The analytic propagation's cost at large pre-activation second moments.

A tanh stack with σ_w² = 1e4 puts q near 1e4, beyond meanfield's Gauss rules,
where each correlation integral is a composite quadrature: the propagation
must compute each distinct one once and refuse a map that keeps moving.
"""

from __future__ import annotations

import math

import pytest

from initlab.core import meanfield, propagation
from initlab.core.activations import make_activation
from initlab.core.errors import InvalidInput
from initlab.core.network import Dense, Draw, Network
from initlab.core.propagation import propagate

TANH = make_activation("tanh")
WIDTH = 64


def tanh_stack(depth: int, sigma_w2: float) -> Network:
    weight = Draw("normal", math.sqrt(sigma_w2 / WIDTH))
    return Network(
        WIDTH,
        tuple(
            Dense(f"l{i}", WIDTH, WIDTH, WIDTH, weight, None, TANH)
            for i in range(depth)
        ),
    )


@pytest.fixture
def composite_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, ...]]:
    """Records every composite polar quadrature meanfield runs."""
    calls: list[tuple[float, ...]] = []
    original = meanfield._polar_composite

    def counted(function, q_a, q_b, c):
        calls.append((q_a, q_b, c))
        return original(function, q_a, q_b, c)

    monkeypatch.setattr(meanfield, "_polar_composite", counted)
    return calls


def test_a_deep_stack_at_large_q_runs_each_distinct_integral_once(
    composite_calls: list[tuple[float, ...]],
) -> None:
    result = propagate(tanh_stack(999, 1e4), input_second_moment=1.0)

    assert len(result.layers) == 999
    # q settles on its fixed point within a few layers; from there on every
    # layer repeats the same integrals.
    assert len(composite_calls) == len(set(composite_calls))
    # Five layers until q sits on its fixed point, the pair's correlation 0
    # up to rounding at each.
    assert len(composite_calls) <= 12
    deep = result.layers[700]
    assert deep.second_moment == result.layers[998].second_moment
    assert deep.second_moment > propagation.large_q_threshold(TANH)
    # The remembered values are meanfield's, bit for bit.
    mean, second_moment = meanfield.post_activation_moments(TANH, deep.second_moment)
    assert deep.post_activation_second_moment == second_moment
    assert deep.post_activation_mean == mean
    assert deep.chi_1 == pytest.approx(
        meanfield.chi_1(TANH, deep.second_moment, 1e4), rel=1e-14
    )
    first = result.layers[0]
    assert first.second_moment == 1e4
    assert first.post_activation_second_moment == pytest.approx(
        meanfield.post_activation_moments(TANH, 1e4)[1], rel=1e-15
    )


def test_a_map_still_moving_past_the_cap_is_refused_before_more_integrals(
    composite_calls: list[tuple[float, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(propagation, "MAX_LARGE_Q_INTEGRALS", 3)

    with pytest.raises(InvalidInput) as refused:
        propagate(tanh_stack(999, 1e4), input_second_moment=1.0, input_correlation=0.5)

    assert len(composite_calls) == 3
    (problem,) = refused.value.problems
    assert problem.path == ()
    assert "more than 3 different ones" in problem.message
    assert "beyond 100 where" in problem.message
    assert problem.allowed == "pre-activation second moments up to 100"


def test_closed_form_activations_have_no_large_q_threshold() -> None:
    assert propagation.large_q_threshold(make_activation("relu")) == math.inf
    assert propagation.large_q_threshold(TANH) == 100.0
    softplus = make_activation("softplus", {"beta": 10.0})
    assert propagation.large_q_threshold(softplus) == pytest.approx(1.0, rel=1e-15)
