"""initlab.core.statistics: the network both engines read, the budget, summaries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initlab.core import meanfield, montecarlo
from initlab.core.errors import InvalidInput, LimitExceeded
from initlab.core.network import Attention, Dense, Embedding, GatedMlp, Norm, Residual
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
    SequentialGroup,
    Spec,
    expand,
)
from initlab.core.statistics import (
    EDGE_TOLERANCE,
    GridAxis,
    build_network,
    check_budget,
    compute_statistics,
    phase_diagram_chart,
    propagation_chart,
    trend,
)
from initlab.core.types import Activation, LayerNode, ResidualNode, SchemeChoice

RELU = Activation("relu")


def linear(n_in, n_out, activation=RELU, **fields):
    return LinearSpec(
        in_features=n_in, out_features=n_out, activation=activation, **fields
    )


def network_of(*layers, scheme="kaiming_normal", overrides=(), dims=None, **options):
    expanded = expand(Spec(dims or {}, tuple(layers)))
    result = recommend(expanded, SchemeChoice(scheme, options), overrides)
    return build_network(expanded, result)


def refusal(*layers, **kwargs) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        network_of(*layers, **kwargs)
    return caught.value


# --- The layer tree of an expanded spec ------------------------------------------


def test_expansion_keeps_residual_groups_nested_and_repeats_flat():
    spec = Spec(
        {},
        (
            linear(8, 16, name="stem"),
            RepeatGroup(
                name="h",
                count=2,
                layers=(
                    ResidualGroup(
                        norm="pre",
                        norm_layer=NormLayerSpec(kind="rms_norm", name="ln"),
                        layers=(linear(16, 32, name="fc"), linear(32, 16, None)),
                    ),
                ),
            ),
        ),
    )

    structure = expand(spec).structure

    assert [type(node) for node in structure] == [
        LayerNode,
        ResidualNode,
        ResidualNode,
    ]
    stem, first, second = structure
    assert (stem.name, stem.kind, stem.path, stem.parameters) == (
        "stem",
        "linear",
        ("layers", 0),
        (0, 1),
    )
    assert first.name == "h.0" and second.name == "h.1"
    assert first.norm == "pre" and first.norm_layer.name == "h.0.ln"
    assert [node.name for node in first.branch] == ["h.0.fc", "h.0.1"]
    assert first.branch[0].path == ("layers", 1, "layers", 0, "layers", 0)
    assert second.branch[1].parameters == (10, 11)


def test_expansion_records_attention_heads():
    spec = Spec(
        {},
        (AttentionSpec(name="attn", d_model=64, n_heads=8, n_kv_heads=2),),
    )

    (node,) = expand(spec).structure

    assert node.kind == "attention" and node.heads == (8, 2, 8)
    assert node.parameters == tuple(range(8))


# --- build_network ---------------------------------------------------------------


def test_mlp_becomes_dense_blocks_with_their_draws():
    network = network_of(
        linear(784, 256, name="fc1"),
        linear(256, 10, None, name="fc2", bias=False),
    )

    fc1, fc2 = network.blocks
    assert network.input_width == 784 and network.spatial_dims == 0
    assert (fc1.name, fc1.in_width, fc1.out_width, fc1.fan_in) == ("fc1", 784, 256, 784)
    assert fc1.weight.distribution == "normal"
    assert fc1.weight.std == pytest.approx(math.sqrt(2 / 784), rel=1e-15)
    assert fc1.bias.distribution == "constant" and fc1.bias.second_moment == 0.0
    assert fc1.activation == RELU
    assert fc2.bias is None and fc2.activation.name == "identity"


def test_uniform_and_truncated_draws_keep_their_shape():
    network = network_of(
        linear(100, 100, name="a"),
        linear(100, 100, name="b"),
        scheme="torch_default",
        overrides=[("b.weight", SchemeChoice("trunc_normal", {"std": 0.1}))],
    )

    a, b = network.blocks
    assert a.weight.distribution == "uniform"
    assert a.weight.bound == pytest.approx(0.1, rel=1e-15)
    assert a.weight.second_moment == pytest.approx(0.01 / 3, rel=1e-14)
    assert a.bias.distribution == "uniform"
    assert b.weight.distribution == "truncated_normal"
    assert b.weight.truncation == (-2.0, 2.0, 0.1)


def test_conv_fan_in_counts_channels_per_group_and_kernel_taps():
    network = network_of(
        ConvSpec(
            kind="conv2d", in_features=16, out_features=32, kernel_size=3, name="c1"
        ),
        ConvSpec(
            kind="conv2d",
            in_features=32,
            out_features=32,
            kernel_size=(3, 5),
            groups=4,
            name="c2",
        ),
    )

    c1, c2 = network.blocks
    assert network.spatial_dims == 2
    assert c1.fan_in == 16 * 9 and c1.kernel_size == (3, 3)
    assert c2.fan_in == 8 * 15 and c2.groups == 4


def test_gpt2_blocks_embeddings_and_groups():
    spec = Spec(
        {"d": 64},
        (
            EmbeddingSpec(name="wte", in_features=100, out_features="d"),
            EmbeddingSpec(name="wpe", in_features=16, out_features="d"),
            RepeatGroup(
                name="h",
                count=2,
                layers=(
                    ResidualGroup(
                        norm="pre",
                        norm_layer=NormLayerSpec(name="ln_1"),
                        layers=(
                            AttentionSpec(
                                name="attn", d_model="d", n_heads=4, fused_qkv=True
                            ),
                        ),
                    ),
                    ResidualGroup(
                        norm="pre",
                        norm_layer=NormLayerSpec(name="ln_2"),
                        layers=(
                            SequentialGroup(
                                name="mlp",
                                layers=(
                                    linear("d", 256, Activation("gelu"), name="c_fc"),
                                    linear(256, "d", None, name="c_proj"),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
            NormSpec(kind="layer_norm", name="ln_f", in_features="d"),
            linear("d", 100, None, name="lm_head", bias=False, tied_to="wte"),
        ),
    )
    expanded = expand(spec)
    network = build_network(expanded, recommend(expanded, SchemeChoice("gpt2")))

    embedding, *groups, ln_f, lm_head = network.blocks
    assert isinstance(embedding, Embedding)
    assert embedding.names == ("wte", "wpe") and embedding.width == 64
    assert [table.std for table in embedding.tables] == [0.02, 0.02]
    assert [group.name for group in groups] == ["h.0[0]", "h.0[1]", "h.1[0]", "h.1[1]"]
    attention_group = groups[0]
    assert isinstance(attention_group, Residual)
    assert attention_group.placement == "pre"
    assert attention_group.norm.name == "h.0.ln_1"
    (attention,) = attention_group.branch
    assert isinstance(attention, Attention)
    assert (attention.n_heads, attention.n_kv_heads, attention.d_head) == (4, 4, 16)
    assert [attention.q.name, attention.k.name, attention.v.name] == [
        "h.0.attn.q",
        "h.0.attn.k",
        "h.0.attn.v",
    ]
    assert attention.q.out_width == 64 and attention.q.weight.std == 0.02
    assert attention.o.weight.std == pytest.approx(0.02 / math.sqrt(4), rel=1e-15)
    c_fc, c_proj = groups[1].branch
    assert c_fc.activation.name == "gelu" and c_proj.out_width == 64
    assert isinstance(ln_f, Norm) and ln_f.kind == "layer_norm"
    assert isinstance(lm_head, Dense) and lm_head.weight.std == 0.02


def test_grouped_query_attention_and_gated_mlp():
    network = network_of(
        ResidualGroup(
            norm="pre",
            norm_layer=NormLayerSpec(kind="rms_norm", name="norm_1"),
            layers=(AttentionSpec(name="attn", d_model=64, n_heads=8, n_kv_heads=2),),
        ),
        ResidualGroup(
            norm="pre",
            norm_layer=NormLayerSpec(kind="rms_norm", name="norm_2"),
            layers=(GatedMlpSpec(name="mlp", d_model=64, d_ff=172),),
        ),
        scheme="auto",
    )

    first, second = network.blocks
    (attention,) = first.branch
    assert attention.k.out_width == 16 and attention.v.out_width == 16
    assert attention.o.in_width == 64 and attention.o.fan_in == 64
    assert first.norm.bias is None
    (mlp,) = second.branch
    assert isinstance(mlp, GatedMlp)
    assert mlp.gate.activation.name == "silu" and mlp.up.activation.name == "identity"
    assert (mlp.down.in_width, mlp.down.out_width) == (172, 64)
    assert [first.name, second.name] == ["residual[0]", "residual[1]"]


def test_projection_shortcut_and_post_norm():
    network = network_of(
        ResidualGroup(
            name="down",
            layers=(linear(32, 64, name="fc1"), linear(64, 64, None, name="fc2")),
            shortcut=(linear(32, 64, None, name="proj", bias=False),),
        ),
        ResidualGroup(
            name="block",
            norm="post",
            norm_layer=NormLayerSpec(kind="batch_norm", name="bn"),
            layers=(linear(64, 64, None, name="fc"),),
        ),
    )

    down, block = network.blocks
    assert down.name == "down" and down.placement == "none" and down.norm is None
    assert [layer.name for layer in down.branch] == ["down.fc1", "down.fc2"]
    assert [layer.name for layer in down.shortcut] == ["down.proj"]
    assert block.placement == "post"
    assert block.norm.width == 64 and block.norm.kind == "batch_norm"


# --- What the engines cannot model is refused, at the layer's path ---------------


def test_a_layer_that_does_not_read_the_width_before_it_is_refused():
    error = refusal(linear(10, 20, name="a"), linear(30, 5, name="b"))

    (problem,) = error.problems
    assert problem.path == ("layers", 1)
    assert "b reads 30 features but a gives 20" in problem.message
    assert "make its in 20" in problem.message


def test_a_branch_that_changes_the_width_needs_a_shortcut():
    error = refusal(
        ResidualGroup(name="r", layers=(linear(16, 32),)),
    )

    (problem,) = error.problems
    # The spec's own check or the network's: either names the group and the fix.
    assert problem.path[:2] == ("layers", 0)
    assert "32" in problem.message and "16" in problem.message
    assert "shortcut" in problem.message


def test_an_embedding_after_the_first_layers_is_refused():
    error = refusal(
        linear(8, 8, name="fc"),
        EmbeddingSpec(name="emb", in_features=100, out_features=8),
    )

    assert error.problems[0].path == ("layers", 1)
    assert "embedding after the first layers" in error.problems[0].message


def test_nonzero_mean_biases_are_refused_naming_the_tensor_and_the_mean():
    error = refusal(
        linear(8, 8, name="fc"),
        overrides=[("fc.bias", SchemeChoice("constant", {"value": 0.1}))],
    )

    (problem,) = error.problems
    assert problem.path == ("layers", 0) and problem.value == 0.1
    assert "fc.bias is drawn with mean 0.1" in problem.message


def test_an_activation_on_a_norm_layer_is_refused():
    error = refusal(
        linear(8, 8, None, name="fc"),
        NormSpec(kind="layer_norm", in_features=8, activation=RELU, name="ln"),
    )

    assert error.problems[0].path == ("layers", 1)
    assert "put the activation on that layer" in error.problems[0].message


def test_convolutions_of_two_dimensionalities_are_refused():
    error = refusal(
        ConvSpec(kind="conv1d", in_features=4, out_features=4, kernel_size=3),
        ConvSpec(kind="conv2d", in_features=4, out_features=4, kernel_size=3),
    )

    assert error.problems[0].path == ("layers", 1)
    assert "different dimensionality" in error.problems[0].message


def test_every_problem_is_reported_at_once():
    error = refusal(
        linear(10, 20, name="a"),
        linear(30, 40, name="b"),
        linear(50, 5, name="c"),
    )

    assert [problem.path for problem in error.problems] == [
        ("layers", 1),
        ("layers", 2),
    ]


# --- Verdicts, phase and budget ----------------------------------------------------


def mlp_spec(depth=8, width=256, activation=RELU):
    return expand(
        Spec(
            {},
            tuple(
                linear(width, width, activation, name=f"fc{i}") for i in range(depth)
            ),
        )
    )


def statistics_of(expanded, scheme, method="analytic", budget=1e12, **options):
    choice = scheme if isinstance(scheme, SchemeChoice) else SchemeChoice(scheme)
    return compute_statistics(
        expanded, recommend(expanded, choice), method=method, budget=budget, **options
    )


def test_pytorch_default_relu_vanishes_crossing_a_tenth_at_the_third_layer():
    result = statistics_of(mlp_spec(), "torch_default")

    forward, backward = result.summary.forward, result.summary.backward
    assert forward.verdict == "vanishing"
    assert (forward.crossing_layer, forward.crossing_index) == ("fc2", 3)
    assert "passes 0.1× at fc2" in forward.reason
    # σ_w² = 1/3 for U(±1/√n): χ₁ = 1/6, so gradients shrink by 6 per layer.
    assert backward.verdict == "vanishing"
    assert backward.growth_factor == pytest.approx(1 / 6, rel=1e-12)
    assert (backward.crossing_layer, backward.crossing_index) == ("fc5", 3)
    assert result.summary.source == "analytic"


def test_relu_with_sigma_w2_4_explodes_doubling_per_layer():
    result = statistics_of(
        mlp_spec(), SchemeChoice("mean_field", {"sigma_w2": 4.0, "sigma_b2": 0.0})
    )

    forward, backward = result.summary.forward, result.summary.backward
    assert forward.verdict == "exploding"
    assert forward.ratio == pytest.approx(2.0**7, rel=1e-12)
    assert forward.growth_factor == pytest.approx(2.0, rel=1e-12)
    assert (forward.crossing_layer, forward.crossing_index) == ("fc4", 5)
    assert backward.verdict == "exploding"
    assert backward.growth_factor == pytest.approx(2.0, rel=1e-12)
    assert result.summary.phase.phase == "chaotic"


def test_he_relu_is_stable_and_critical():
    result = statistics_of(mlp_spec(), "kaiming_normal")

    assert result.summary.forward.verdict == "stable"
    assert result.summary.forward.ratio == pytest.approx(1.0, rel=1e-12)
    assert result.summary.forward.crossing_layer is None
    assert result.summary.phase.phase == "critical"
    assert result.summary.phase.chi_1 == pytest.approx(1.0, rel=1e-12)


def test_the_phase_of_a_homogeneous_stack_is_meanfields_fixed_point():
    result = statistics_of(
        mlp_spec(depth=5, width=64, activation=Activation("tanh")),
        SchemeChoice("mean_field", {"sigma_w2": 1.5, "sigma_b2": 0.05}),
        input_second_moment=2.0,
    )

    phase = result.summary.phase
    point = meanfield.fixed_point(
        Activation("tanh"), 1.5, 0.05, q_input=1.5 * 2.0 + 0.05
    )
    assert phase.homogeneous and phase.phase == point.phase == "ordered"
    assert (phase.sigma_w2, phase.sigma_b2) == pytest.approx((1.5, 0.05), rel=1e-12)
    assert abs(phase.q_star - 0.418037) <= 1e-6
    assert abs(phase.chi_1 - 0.938636) <= 1e-6
    assert (phase.q_star, phase.c_star, phase.chi_1) == pytest.approx(
        (point.q_star, point.c_star, point.chi_1), rel=1e-12
    )
    assert (phase.xi_q, phase.xi_c, phase.xi_grad) == pytest.approx(
        (point.xi_q, point.xi_c, point.xi_grad), rel=1e-9
    )


def test_a_readout_and_a_first_layer_of_their_own_keep_the_stack_homogeneous():
    expanded = expand(
        Spec(
            {},
            (
                linear(784, 256, name="fc0"),
                linear(256, 256, name="fc1"),
                linear(256, 256, name="fc2"),
                linear(256, 10, None, name="out"),
            ),
        )
    )

    phase = statistics_of(expanded, "auto").summary.phase

    assert phase.homogeneous and phase.activation == RELU
    assert phase.sigma_w2 == pytest.approx(2.0, rel=1e-12)


def test_mixed_stacks_and_residual_networks_have_no_phase_and_say_why():
    mixed = expand(
        Spec(
            {},
            (
                linear(8, 8, name="a"),
                linear(8, 8, Activation("tanh"), name="b"),
                linear(8, 8, name="c"),
                linear(8, 8, name="d"),
            ),
        )
    )
    residual = expand(
        Spec({}, (ResidualGroup(name="r", layers=(linear(8, 8, None),)),))
    )

    mixed_phase = statistics_of(mixed, "kaiming_normal").summary.phase
    residual_phase = statistics_of(residual, "kaiming_normal").summary.phase

    assert not mixed_phase.homogeneous and mixed_phase.phase is None
    assert "c reads tanh but b reads relu" in mixed_phase.reason
    assert not residual_phase.homogeneous
    assert "Residual" in residual_phase.reason


def test_an_over_budget_request_is_refused_with_the_estimate_the_limit_and_a_fix():
    expanded = mlp_spec(depth=4, width=256)
    network = build_network(
        expanded, recommend(expanded, SchemeChoice("kaiming_normal"))
    )
    cost = montecarlo.estimate_cost(network, batch_size=64, seeds=8)
    budget = cost.work / 3

    with pytest.raises(LimitExceeded) as caught:
        statistics_of(
            expanded,
            "kaiming_normal",
            method="both",
            budget=budget,
            batch_size=64,
            seeds=8,
        )

    error = caught.value
    assert (error.limit, error.limit_value) == ("compute_budget", budget)
    (problem,) = error.problems
    assert f"{cost.work:.3g} flop-equivalents" in problem.message
    assert f"compute_budget = {budget:.3g}" in problem.message
    assert "at most 2 seeds (you asked for 8)" in problem.message
    assert "method 'analytic'" in problem.message
    assert problem.value == cost.work


def test_memory_over_budget_is_refused_and_the_analytic_method_always_runs():
    expanded = mlp_spec(depth=3, width=128)

    with pytest.raises(LimitExceeded) as caught:
        statistics_of(
            expanded, "kaiming_normal", method="monte_carlo", memory_budget=1000
        )
    analytic = statistics_of(expanded, "kaiming_normal", budget=0.0)

    assert caught.value.limit == "memory_budget"
    assert "bytes of working memory" in caught.value.problems[0].message
    assert analytic.cost is None and analytic.rows[0].monte_carlo is None


def test_both_methods_side_by_side_record_the_seed_the_numpy_version_and_the_cost():
    expanded = mlp_spec(depth=3, width=128)

    result = statistics_of(
        expanded, "kaiming_normal", method="both", batch_size=8, seeds=4, seed=11
    )

    assert [row.name for row in result.rows] == ["fc0", "fc1", "fc2"]
    assert all(row.top_level and row.kind == "dense" for row in result.rows)
    row = result.rows[1]
    assert row.analytic.second_moment == pytest.approx(2.0, rel=1e-12)
    estimate = row.monte_carlo["second_moment"]
    assert abs(estimate.mean - 2.0) <= 4 * estimate.standard_error + 1e-12
    assert estimate.standard_error == pytest.approx(estimate.sd / 2, rel=1e-12)
    assert "saturation_fraction" not in row.monte_carlo
    assert row.expected_gradient_ratio == pytest.approx(1.0, rel=1e-12)
    ratio = row.monte_carlo["gradient_ratio"]
    assert abs(ratio.mean - 1.0) <= 4 * ratio.standard_error
    assert (result.seed, result.seeds, result.batch_size) == (11, 4, 8)
    assert result.numpy_version == np.__version__
    assert result.cost == montecarlo.estimate_cost(
        build_network(expanded, recommend(expanded, SchemeChoice("kaiming_normal"))),
        batch_size=8,
        seeds=4,
    )
    assert result.monte_carlo_model == montecarlo.MODEL
    assert any("gradient independence" in note for note in result.notes)


def test_the_same_request_gives_the_same_numbers():
    expanded = mlp_spec(depth=3, width=64)

    first = statistics_of(expanded, "auto", method="both", batch_size=8, seeds=3)
    second = statistics_of(expanded, "auto", method="both", batch_size=8, seeds=3)

    assert first == second


def test_monte_carlo_alone_reads_its_verdicts_from_the_means():
    result = statistics_of(
        mlp_spec(depth=6, width=128),
        "torch_default",
        method="monte_carlo",
        batch_size=8,
        seeds=3,
        backward=False,
    )

    assert result.summary.source == "monte_carlo"
    assert result.summary.forward.verdict == "vanishing"
    assert result.summary.backward is None
    assert result.rows[0].analytic is None


def test_notes_state_the_order_of_activation_and_norm_and_tied_weights():
    expanded = expand(
        Spec(
            {},
            (
                EmbeddingSpec(name="wte", in_features=50, out_features=16),
                linear(16, 16, name="fc"),
                NormSpec(kind="layer_norm", in_features=16, name="ln"),
                linear(16, 50, None, name="head", bias=False, tied_to="wte"),
            ),
        )
    )

    result = statistics_of(expanded, "auto")

    assert [row.name for row in result.rows] == ["wte", "fc", "ln", "head"]
    assert any("layer → activation → norm" in note for note in result.notes)
    assert any("Tied weights" in note for note in result.notes)


def test_an_unknown_method_is_refused_at_its_name():
    with pytest.raises(InvalidInput) as caught:
        statistics_of(mlp_spec(depth=2, width=8), "auto", method="exact")

    assert caught.value.problems[0].path == ("method",)


def test_rows_inside_blocks_are_not_top_level():
    expanded = expand(
        Spec(
            {},
            (
                linear(16, 16, name="fc"),
                ResidualGroup(
                    name="r",
                    norm="pre",
                    norm_layer=NormLayerSpec(name="ln"),
                    layers=(GatedMlpSpec(name="mlp", d_model=16, d_ff=32),),
                ),
            ),
        )
    )

    result = statistics_of(expanded, "auto")

    flags = {row.name: row.top_level for row in result.rows}
    assert flags == {
        "fc": True,
        "r.ln": False,
        "r.mlp.gate": False,
        "r.mlp.up": False,
        "r.mlp.down": False,
        "r": True,
    }
    assert [row.activation for row in result.rows[:3]] == ["relu", "identity", "silu"]


# --- Chart data ---------------------------------------------------------------------


def test_propagation_chart_compares_schemes_layer_by_layer():
    chart = propagation_chart(
        RELU,
        [SchemeChoice("kaiming_normal"), SchemeChoice("xavier_normal")],
        depth=10,
        width=128,
        batch_size=8,
        seeds=3,
        budget=1e12,
    )

    assert chart.x == tuple(range(1, 11))
    assert [(s.scheme.name, s.direction) for s in chart.series] == [
        ("kaiming_normal", "forward"),
        ("kaiming_normal", "backward"),
        ("xavier_normal", "forward"),
        ("xavier_normal", "backward"),
    ]
    he_forward, _, xavier_forward, _ = chart.series
    assert he_forward.analytic == pytest.approx((2.0,) * 10, rel=1e-12)
    # Xavier on a square layer is σ_w² = 1: ReLU halves the second moment.
    assert xavier_forward.analytic == pytest.approx(
        tuple(0.5**i for i in range(10)), rel=1e-12
    )
    band = xavier_forward.monte_carlo
    assert band.lower == pytest.approx(
        tuple(m - s for m, s in zip(band.mean, band.sd, strict=True))
    )
    assert chart.forward_axis.scale == "log"
    assert chart.x_axis.label == "layer"
    assert [v.forward.verdict for v in chart.verdicts] == ["stable", "vanishing"]
    assert chart.verdicts[1].forward.crossing_layer == "layer5"
    assert chart.cost.work > 0


def test_propagation_chart_passes_sigma_b2_to_mean_field_only():
    chart = propagation_chart(
        Activation("tanh"),
        [SchemeChoice("mean_field", {"sigma_w2": 1.5}), SchemeChoice("lecun_normal")],
        depth=40,
        width=64,
        sigma_b2=0.05,
        method="analytic",
        budget=0.0,
    )

    mean_field, lecun = chart.verdicts
    assert mean_field.scheme.options["sigma_b2"] == 0.05
    assert abs(mean_field.phase.q_star - 0.418037) <= 1e-6
    assert lecun.phase.sigma_b2 == 0.0
    assert chart.series[0].monte_carlo is None and chart.cost is None
    assert any("σ_b² applies" in note for note in chart.notes)


def test_propagation_chart_checks_the_budget_of_all_schemes_before_any_work():
    with pytest.raises(LimitExceeded) as caught:
        propagation_chart(
            RELU,
            [SchemeChoice("kaiming_normal"), SchemeChoice("xavier_normal")],
            depth=4,
            width=64,
            budget=1.0,
        )

    assert caught.value.limit == "compute_budget"


def test_propagation_chart_reports_a_bad_scheme_at_its_index():
    with pytest.raises(InvalidInput) as caught:
        propagation_chart(
            RELU,
            [
                SchemeChoice("kaiming_normal"),
                SchemeChoice("kaiming_normal", {"mode": "x"}),
            ],
            depth=2,
            width=8,
            method="analytic",
            budget=0.0,
        )

    assert caught.value.problems[0].path[:3] == ("schemes", 1, "mode")


def test_phase_diagram_chart_finds_the_tanh_edge_of_chaos():
    chart = phase_diagram_chart(
        Activation("tanh"), GridAxis(1.5, 2.0, 3), GridAxis(0.0, 0.05, 2)
    )

    assert chart.sigma_w2 == (1.5, 1.75, 2.0) and chart.sigma_b2 == (0.0, 0.05)
    assert abs(chart.chi_1[1][0] - 0.938636) <= 1e-6
    assert abs(chart.q_star[1][0] - 0.418037) <= 1e-6
    assert chart.phase[1][0] == "ordered" and chart.phase[1][2] == "chaotic"
    edge = {point.sigma_b2: point for point in chart.edge}
    assert abs(edge[0.05].sigma_w2 - 1.760955) <= 1e-6
    assert abs(edge[0.05].q_star - 0.570048) <= 1e-6
    assert chart.x_axis.label.startswith("σ_w²")


def test_phase_diagram_chart_says_when_there_is_no_edge():
    chart = phase_diagram_chart(
        Activation("softplus"), GridAxis(0.5, 2.0, 2), GridAxis(0.0, 0.1, 2)
    )

    assert chart.edge == ()
    assert "no edge of chaos" in chart.notes[0]


@pytest.mark.parametrize(
    ("sigma_w2", "sigma_b2", "path"),
    [
        (GridAxis(0.0, 2.0, 5), GridAxis(0.0, 0.1, 5), ("sigma_w2", "minimum")),
        (GridAxis(2.0, 1.0, 5), GridAxis(0.0, 0.1, 5), ("sigma_w2", "maximum")),
        (GridAxis(1.0, 2.0, 5), GridAxis(-0.1, 0.1, 5), ("sigma_b2", "minimum")),
        (GridAxis(1.0, 2.0, 0), GridAxis(0.0, 0.1, 5), ("sigma_w2", "steps")),
        (GridAxis(1.0, 2.0, 5), GridAxis(0.0, 0.1, 10_000), ("sigma_b2", "steps")),
    ],
)
def test_phase_diagram_grids_out_of_range_are_refused_at_their_field(
    sigma_w2, sigma_b2, path
):
    with pytest.raises(InvalidInput) as caught:
        phase_diagram_chart(RELU, sigma_w2, sigma_b2)

    assert caught.value.problems[0].path == path


def test_trend_of_a_single_layer_has_no_growth_factor():
    single = trend(["a"], [3.0], "forward")
    silent = trend(["a", "b"], [0.0, 1.0], "forward")

    assert (single.verdict, single.ratio, single.growth_factor) == ("stable", 1.0, None)
    assert silent.verdict == "vanishing" and silent.crossing_layer == "a"


def test_trend_of_an_overflowed_signal_says_so_without_an_infinite_ratio():
    overflowed = trend(["a", "b", "c"], [1.0, 1e30, math.inf], "forward")

    assert overflowed.verdict == "exploding"
    assert overflowed.ratio == math.inf
    assert overflowed.crossing_layer == "b"
    assert overflowed.reason == (
        "the second moment outgrows floating point from a to c (its ratio to a"
        " overflows); it passes 10× at b"
    )


def test_trend_reads_nan_as_an_overflow_not_as_stable():
    # A float32 simulation's NaN follows only an overflow (inf·0): every
    # layer past the first overflowed, so the gradient exploded.
    # Backward, the pass starts at the last layer, c.
    overflowed = trend(["a", "b", "c"], [math.nan, math.nan, 1.0], "backward")
    from_the_start = trend(["a", "b"], [math.nan, math.nan], "forward")

    assert overflowed.verdict == "exploding"
    assert overflowed.reason.startswith(
        "the gradient second moment outgrows floating point from c to a"
    )
    assert from_the_start.verdict == "exploding"
    assert from_the_start.reason == (
        "the second moment outgrows floating point already at a, where the"
        " forward pass starts"
    )


# --- what a refusal over budget suggests ------------------------------------------


def linear_cost(seeds: int, batch_size: int, backward: bool) -> montecarlo.Cost:
    """A made-up simulation: 1e6 flops per example, 1e9 random-number flops per
    network when backward (its weights), 1e3 bytes per example."""
    return montecarlo.Cost(
        flops=10**6 * seeds * batch_size,
        peak_bytes=10**3 * batch_size,
        random_numbers=10**6 * seeds if backward else 0,
    )


def budget_refusal(seeds, batch_size, backward=True, **budgets) -> LimitExceeded:
    with pytest.raises(LimitExceeded) as caught:
        montecarlo_cost = linear_cost(seeds, batch_size, backward is not False)
        check_budget(
            montecarlo_cost,
            seeds=seeds,
            batch_size=batch_size,
            estimate=linear_cost,
            backward=backward,
            **budgets,
        )
    return caught.value


def test_when_the_weight_draws_dominate_the_refusal_points_at_backward():
    # One seed, batch 2: 2e6 flops and 1e9 flop-equivalents of weight draws.
    error = budget_refusal(1, 2, compute_budget=5e8)

    (problem,) = error.problems
    assert problem.path == ("backward",)
    assert "for 1 seed of a batch of 2" in problem.message
    assert "the random numbers are 100% of it" in problem.message
    assert '"backward": false (forward statistics only' in problem.message
    assert "2e+06 flop-equivalents)" in problem.message
    assert "smaller batch" not in problem.message
    assert problem.message.endswith("or method 'analytic' (always within budget)")
    assert (error.limit, error.limit_value) == ("compute_budget", 5e8)


def test_every_single_change_that_fits_is_named_once():
    # 8 seeds of 64: 8·(6.4e7 + 1e9) = 8.5e9; 3 seeds fit in 3.5e9.
    error = budget_refusal(8, 64, compute_budget=3.5e9)

    (problem,) = error.problems
    assert problem.path == ("seeds",)
    assert "at most 3 seeds (you asked for 8)" in problem.message
    assert '"backward": false' in problem.message
    assert "a smaller batch" not in problem.message
    assert problem.message.count("method 'analytic'") == 1


def test_a_smaller_batch_is_worked_out_when_seeds_and_backward_cannot_help():
    # Forward only: 1e6 per example and seed; 4 seeds of 300 examples fit in
    # 1.2e9, not 4 of 301; the memory (1e3 per example) is not the limit.
    error = budget_refusal(4, 1000, backward=False, compute_budget=1.2e9)

    (problem,) = error.problems
    assert problem.path == ("seeds",)
    error = budget_refusal(
        4, 1000, backward=False, compute_budget=1.2e9, memory_budget=4e5
    )
    (problem,) = error.problems
    assert problem.path == ("batch_size",)
    assert "a batch of at most 300 (you asked for 1000)" in problem.message
    assert "1e+06 bytes of working memory" in problem.message
    assert "memory_budget = 4e+05" in problem.message
    assert "4e+09 flop-equivalents" in problem.message
    assert '"backward"' not in problem.message
    assert error.limit == "compute_budget"


def test_memory_alone_over_names_the_memory_budget_and_no_seeds():
    error = budget_refusal(
        8, 64, backward=False, compute_budget=1e12, memory_budget=1e4
    )

    (problem,) = error.problems
    assert error.limit == "memory_budget"
    assert problem.path == ("batch_size",)
    assert "a batch of at most 10 (you asked for 64)" in problem.message
    assert "seeds (you asked" not in problem.message
    assert "flop-equivalents" not in problem.message


def test_a_network_over_budget_by_itself_points_at_the_network():
    error = budget_refusal(2, 4, compute_budget=1e5)

    (problem,) = error.problems
    assert problem.path == ("layers",)
    assert (
        "one network alone at a batch of 1 needs 1e+06 flop-equivalents and"
        " 1e+03 bytes: ask for fewer or narrower layers" in problem.message
    )


# --- the edge of chaos in the summary ---------------------------------------------


def tanh_phase(sigma_w2: float):
    expanded = mlp_spec(depth=6, width=64, activation=Activation("tanh"))
    scheme = SchemeChoice("mean_field", {"sigma_w2": sigma_w2, "sigma_b2": 0.05})
    return statistics_of(expanded, scheme).summary.phase


def test_the_tanh_edge_of_chaos_to_seven_digits_is_critical():
    phase = tanh_phase(1.760955)

    # χ₁ = 1 + 7.7e-8: chaotic to meanfield's 1e-9, but the σ_w² given to
    # seven digits cannot place it on either side of the edge.
    assert 1.0 + 1e-9 < phase.chi_1 < 1.0 + EDGE_TOLERANCE
    assert phase.phase == "critical"
    assert phase.xi_c is None and phase.xi_grad is None
    assert phase.xi_q == pytest.approx(1.521097, rel=1e-6)
    assert (
        "χ₁ = 1.00000008 at q* is within 1e-6 of 1, closer than a σ_w² written to"
        " 7 significant digits can place it" in phase.reason
    )


def test_a_sigma_w2_one_part_in_a_thousand_off_the_edge_keeps_its_phase():
    above, below = tanh_phase(1.762), tanh_phase(1.759)

    assert above.phase == "chaotic" and above.chi_1 > 1.0 + EDGE_TOLERANCE
    assert above.xi_grad < 0 < above.xi_c
    assert below.phase == "ordered" and below.chi_1 < 1.0 - EDGE_TOLERANCE
    assert "puts the stack in the ordered phase" in below.reason
