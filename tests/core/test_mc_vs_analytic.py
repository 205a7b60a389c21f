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
from initlab.core.spec import (
    AttentionSpec,
    ConvSpec,
    EmbeddingSpec,
    GatedMlpSpec,
    LinearSpec,
    NormLayerSpec,
    NormSpec,
    RepeatGroup,
    ResidualGroup,
    Spec,
    expand,
)
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


# --- Beyond MLPs: the same agreement where the model is exact at infinite width ---

ARCHITECTURE_SEEDS = 8
# Norms divide by a variance estimated over finite features or batches, which
# moves values by O(1/n): beside 4 standard errors, 3 % of the value is allowed.
RELATIVE_SLACK = 0.03


def architecture(name: str):
    relu = Activation("relu")
    if name == "pre_norm_residual":
        block = ResidualGroup(
            norm="pre",
            norm_layer=NormLayerSpec(kind="layer_norm", name="ln"),
            layers=(
                LinearSpec(
                    name="fc", in_features=256, out_features=512, activation=relu
                ),
                LinearSpec(name="proj", in_features=512, out_features=256),
            ),
        )
        return Spec({}, (RepeatGroup(name="h", count=3, layers=(block,)),)), "auto"
    if name == "post_norm_residual":
        block = ResidualGroup(
            norm="post",
            norm_layer=NormLayerSpec(kind="rms_norm", name="norm"),
            layers=(
                LinearSpec(
                    name="fc", in_features=256, out_features=256, activation=relu
                ),
            ),
        )
        return Spec({}, (RepeatGroup(name="h", count=3, layers=(block,)),)), "auto"
    if name == "conv_batch_norm":
        layers = []
        for index in range(3):
            layers += [
                ConvSpec(
                    kind="conv2d",
                    name=f"conv{index}",
                    in_features=64,
                    out_features=64,
                    kernel_size=3,
                    bias=False,
                    activation=relu,
                ),
                NormSpec(kind="batch_norm", name=f"bn{index}", in_features=64),
            ]
        return Spec({}, tuple(layers)), "kaiming_normal"
    if name == "gated_mlp":
        block = ResidualGroup(
            norm="pre",
            norm_layer=NormLayerSpec(kind="rms_norm", name="norm"),
            layers=(GatedMlpSpec(name="mlp", d_model=256, d_ff=512),),
        )
        return Spec({}, (RepeatGroup(name="h", count=2, layers=(block,)),)), "auto"
    block = ResidualGroup(
        norm="pre",
        norm_layer=NormLayerSpec(name="ln"),
        layers=(AttentionSpec(name="attn", d_model=256, n_heads=4),),
    )
    layers = (
        EmbeddingSpec(name="wte", in_features=1000, out_features=256),
        RepeatGroup(name="h", count=2, layers=(block,)),
    )
    return Spec({}, layers), "gpt2"


@pytest.mark.parametrize(
    "name",
    [
        "pre_norm_residual",
        "post_norm_residual",
        "conv_batch_norm",
        "gated_mlp",
        "attention",
    ],
)
def test_architectures_agree_within_four_standard_errors_and_a_finite_width_slack(
    name,
):
    spec, scheme = architecture(name)
    expanded = expand(spec)
    network = build_network(expanded, recommend(expanded, SchemeChoice(scheme)))

    analytic = propagate(
        network, input_second_moment=1.0, input_correlation=INPUT_CORRELATION
    )
    simulation = simulate(
        network,
        batch_size=BATCH,
        seeds=ARCHITECTURE_SEEDS,
        seed=SEED,
        input_second_moment=1.0,
        input_correlation=INPUT_CORRELATION,
        spatial_size=4,
    )

    assert [row.name for row in analytic.layers] == [
        row.name for row in simulation.layers
    ]
    for statistic in ("second_moment", "gradient_second_moment"):
        mean = simulation.mean(statistic)
        error = simulation.standard_error(statistic)
        for index, row in enumerate(analytic.layers):
            predicted = getattr(row, statistic)
            allowed = STANDARD_ERRORS * error[index] + RELATIVE_SLACK * abs(predicted)
            assert abs(mean[index] - predicted) <= allowed, (row.name, statistic)
