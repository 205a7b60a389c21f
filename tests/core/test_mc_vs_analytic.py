"""Acceptance: the finite-width simulation agrees with the infinite-width prediction.

For MLPs of width 512 over a matrix of activations × schemes, the analytic
value lies within 4 standard errors of the Monte Carlo mean (over seeds) at
every layer, forward and backward. The seed is fixed, so the outcome is too:
the same numbers come back bit for bit on every run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from initlab.core.montecarlo import simulate
from initlab.core.propagation import propagate
from initlab.core.recommend import recommend
from initlab.core.spec import LinearSpec, Spec, expand
from initlab.core.statistics import build_network
from initlab.core.types import Activation, SchemeChoice

WIDTH = 512
DEPTH = 6
BATCH = 8
STANDARD_ERRORS = 4.0
INPUT_CORRELATION = 0.5
# Seeds are chosen so that 4 estimated standard errors are a strict test yet
# a false alarm anywhere in the matrix is unlikely: with n seeds the distance
# over the estimated standard error follows Student's t with n − 1 degrees of
# freedom, P(|t₃₁| > 4) ≈ 4e-4 over 648 forward comparisons and
# P(|t₁₅| > 4) ≈ 1.2e-3 over 216 backward ones (about 0.25 expected each).
FORWARD_SEEDS = 32
BACKWARD_SEEDS = 16
SEED = 7

ACTIVATIONS = {
    "relu": Activation("relu"),
    "tanh": Activation("tanh"),
    "gelu": Activation("gelu"),
    "silu": Activation("silu"),
    "selu": Activation("selu"),
    "leaky_relu": Activation("leaky_relu", (("negative_slope", 0.2),)),
}
SCHEMES = {
    "kaiming_normal": SchemeChoice("kaiming_normal"),
    "xavier_normal": SchemeChoice("xavier_normal"),
    "lecun_normal": SchemeChoice("lecun_normal"),
    "auto": SchemeChoice("auto"),
    "mean_field": SchemeChoice("mean_field", {"sigma_w2": 1.8, "sigma_b2": 0.1}),
    "torch_default": SchemeChoice("torch_default"),
}
FORWARD = ("second_moment", "post_activation_second_moment", "correlation")
BACKWARD = ("gradient_second_moment",)


def mlp(activation: Activation) -> Spec:
    return Spec(
        {},
        tuple(
            LinearSpec(
                name=f"fc{i}",
                in_features=WIDTH,
                out_features=WIDTH,
                activation=activation,
            )
            for i in range(DEPTH)
        ),
    )


def disagreements(analytic, simulation, statistics) -> list[str]:
    found = []
    for statistic in statistics:
        mean = simulation.mean(statistic)
        error = simulation.standard_error(statistic)
        for index, row in enumerate(analytic.layers):
            predicted = getattr(row, statistic)
            distance = abs(mean[index] - predicted)
            if not distance <= STANDARD_ERRORS * error[index]:
                found.append(
                    f"{row.name} {statistic}: analytic {predicted:.6g}, Monte Carlo"
                    f" {mean[index]:.6g} ± {error[index]:.2g}"
                )
    return found


def network_of(activation: str, scheme: str):
    expanded = expand(mlp(ACTIVATIONS[activation]))
    return build_network(expanded, recommend(expanded, SCHEMES[scheme]))


def run(network, *, seeds: int, backward: bool, input_second_moment: float = 1.0):
    analytic = propagate(
        network,
        input_second_moment=input_second_moment,
        input_correlation=INPUT_CORRELATION,
    )
    simulation = simulate(
        network,
        batch_size=BATCH,
        seeds=seeds,
        seed=SEED,
        input_second_moment=1.0,
        input_correlation=INPUT_CORRELATION,
        backward=backward,
    )
    return analytic, simulation


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_analytic_lies_within_four_standard_errors_of_monte_carlo(
    activation, scheme
):
    analytic, simulation = run(
        network_of(activation, scheme), seeds=FORWARD_SEEDS, backward=False
    )

    assert [row.name for row in simulation.layers] == [f"fc{i}" for i in range(DEPTH)]
    assert disagreements(analytic, simulation, FORWARD) == []
    # The comparison has teeth: the standard error is a few percent of the value.
    relative_error = simulation.standard_error("second_moment") / simulation.mean(
        "second_moment"
    )
    assert np.all(relative_error < 0.05)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_analytic_lies_within_four_standard_errors_of_monte_carlo(
    activation, scheme
):
    analytic, simulation = run(
        network_of(activation, scheme), seeds=BACKWARD_SEEDS, backward=True
    )

    assert disagreements(analytic, simulation, BACKWARD) == []
    relative_error = simulation.standard_error(
        "gradient_second_moment"
    ) / simulation.mean("gradient_second_moment")
    assert np.all(relative_error < 0.05)


def test_the_agreement_is_not_vacuous_a_wrong_prediction_is_caught():
    network = network_of("tanh", "kaiming_normal")

    analytic, simulation = run(network, seeds=FORWARD_SEEDS, backward=False)
    shifted, _ = run(
        network, seeds=FORWARD_SEEDS, backward=False, input_second_moment=1.05
    )

    # The prediction for an input 5 % larger is told apart where it differs.
    assert disagreements(analytic, simulation, ("second_moment",)) == []
    assert (
        "fc0 second_moment" in disagreements(shifted, simulation, ("second_moment",))[0]
    )
    assert math.isclose(analytic.layers[0].second_moment, (5 / 3) ** 2, rel_tol=1e-12)
