"""initlab.core.propagation: the infinite-width statistics, block by block."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from initlab.core import meanfield
from initlab.core.activations import make_activation
from initlab.core.errors import InvalidInput
from initlab.core.montecarlo import NORM_EPS
from initlab.core.network import (
    Attention,
    Dense,
    Draw,
    Embedding,
    GatedMlp,
    Network,
    Norm,
    Residual,
)
from initlab.core.propagation import propagate, softmax_moments
from initlab.core.types import Activation

RELU = make_activation("relu")
TANH = make_activation("tanh")
SILU = make_activation("silu")
IDENTITY = Activation()
ONE = Draw("constant", 0.0, 1.0)


def normal(sigma2: float, fan_in: int) -> Draw:
    """Weights of second moment σ²/fan_in (σ² for a bias: fan_in 1)."""
    return Draw("normal", math.sqrt(sigma2 / fan_in))


def dense(name, n_in, n_out, sigma_w2, act=RELU, sigma_b2=None, kernel=()):
    fan_in = n_in * math.prod(kernel) if kernel else n_in
    bias = None if sigma_b2 is None else normal(sigma_b2, 1)
    return Dense(name, n_in, n_out, fan_in, normal(sigma_w2, fan_in), bias, act, kernel)


def stack(depth, sigma_w2, sigma_b2=None, act=RELU, width=256):
    return Network(
        width,
        tuple(
            dense(f"l{i}", width, width, sigma_w2, act, sigma_b2) for i in range(depth)
        ),
    )


def relative(ours: float, reference: float) -> float:
    return abs(ours - reference) / abs(reference)


# --- The checkpoints of signal-propagation.md ------------------------------------


def test_relu_with_sigma_w2_2_keeps_the_second_moment_exactly():
    result = propagate(stack(20, 2.0), input_second_moment=0.7)

    moments = [row.second_moment for row in result.layers]
    assert moments[0] == pytest.approx(1.4, rel=1e-15)
    for row in result.layers:
        assert relative(row.second_moment, 1.4) <= 1e-12
        assert relative(row.post_activation_second_moment, 0.7) <= 1e-12
        assert row.chi_1 == pytest.approx(1.0, rel=1e-15)


def test_tanh_converges_to_the_published_fixed_point():
    result = propagate(stack(80, 1.5, 0.05, TANH, width=64), input_second_moment=1.0)

    last = result.layers[-1]
    assert abs(last.second_moment - 0.418037) <= 1e-6
    assert abs(last.chi_1 - 0.938636) <= 1e-6
    point = meanfield.fixed_point(TANH, 1.5, 0.05)
    assert relative(last.second_moment, point.q_star) <= 1e-10


def test_each_dense_row_is_the_length_and_correlation_map_of_the_one_before():
    result = propagate(
        stack(6, 1.8, 0.1, TANH), input_second_moment=1.0, input_correlation=0.4
    )

    for before, after in zip(result.layers, result.layers[1:], strict=False):
        assert (
            relative(
                after.second_moment,
                meanfield.length_map(TANH, before.second_moment, 1.8, 0.1),
            )
            <= 1e-12
        )
        expected = meanfield.correlation_map(
            TANH,
            before.second_moment,
            before.second_moment,
            before.correlation,
            1.8,
            0.1,
        )
        assert relative(after.correlation, expected) <= 1e-12


def test_the_raw_input_reaches_the_first_layer_without_an_activation():
    result = propagate(
        stack(1, 1.5, 0.2, TANH), input_second_moment=2.0, input_correlation=0.5
    )

    (row,) = result.layers
    assert row.second_moment == pytest.approx(1.5 * 2.0 + 0.2, rel=1e-15)
    assert row.correlation == pytest.approx((1.5 * 1.0 + 0.2) / 3.2, rel=1e-15)
    assert row.mean == 0.0 and row.excess_kurtosis == 0.0


def test_exploding_relu_is_followed_past_meanfields_range_by_homogeneity():
    result = propagate(stack(45, 4.0), input_second_moment=1.0)

    assert result.layers[-1].second_moment == pytest.approx(4.0 * 2.0**44, rel=1e-12)


def test_an_explosion_beyond_the_quadrature_range_is_refused_naming_the_layer():
    with pytest.raises(InvalidInput) as caught:
        propagate(stack(3, 1e7, act=make_activation("gelu")), input_second_moment=1.0)

    assert "at l1," in str(caught.value) and "explodes" in str(caught.value)


# --- Backward ---------------------------------------------------------------------


def test_gradients_change_by_chi_1_times_the_width_ratio():
    widths = (64, 256, 128, 512)
    layers = tuple(
        dense(f"l{i}", n_in, n_out, 2.0)
        for i, (n_in, n_out) in enumerate(zip(widths, widths[1:], strict=False))
    )

    result = propagate(Network(64, layers), input_second_moment=1.0)

    last = result.layers[-1]
    assert last.gradient_second_moment == pytest.approx(0.5, rel=1e-15)
    for row, n_in, n_out in zip(result.layers, widths, widths[1:], strict=False):
        assert relative(row.gradient_ratio, row.chi_1 * n_out / n_in) <= 1e-12
        assert (
            relative(
                row.input_gradient_second_moment,
                row.gradient_second_moment * 2 * n_out / n_in,
            )
            <= 1e-12
        )
        # Every layer reads a second moment of 1 (the input, then relu(h), h ~ 2).
        assert (
            relative(row.weight_gradient_second_moment, row.gradient_second_moment)
            <= 1e-12
        )
    assert result.layers[0].input_gradient_second_moment == pytest.approx(
        512 / 64, rel=1e-12
    )


def test_torch_default_relu_gradients_shrink_by_one_sixth_per_layer():
    # U(±1/√n) has second moment 1/(3n): σ_w² = 1/3, so χ₁ = 1/6 (no biases here).
    width = 100
    bound = 1 / math.sqrt(width)
    uniform = Draw("uniform", bound / math.sqrt(3), bound=bound)
    layers = tuple(
        Dense(f"l{i}", width, width, width, uniform, None, RELU) for i in range(5)
    )

    result = propagate(Network(width, layers), input_second_moment=1.0)

    gradients = [row.gradient_second_moment for row in result.layers]
    for earlier, later in zip(gradients, gradients[1:], strict=False):
        assert relative(earlier / later, 1 / 6) <= 1e-12
    assert relative(result.layers[2].chi_1, 1 / 6) <= 1e-12


# --- Norms and residual groups ------------------------------------------------------


def layer_norm(name, width, kind="layer_norm"):
    return Norm(
        name, kind, width, ONE, None if kind == "rms_norm" else Draw("constant", 0.0)
    )


def pre_norm_group(index, width, branch_sigma_w2):
    return Residual(
        f"r{index}",
        "pre",
        layer_norm(f"r{index}.ln", width),
        (dense(f"r{index}.fc", width, width, branch_sigma_w2, IDENTITY),),
    )


def test_a_pre_norm_stack_grows_linearly_by_each_branch():
    width, v, depth = 128, 0.25, 12
    network = Network(width, tuple(pre_norm_group(i, width, v) for i in range(depth)))

    result = propagate(network, input_second_moment=1.0)

    outputs = [row for row in result.layers if row.kind == "residual"]
    q = 1.0
    for row in outputs:
        # The norm's output is σ²/(σ² + ε): the branch adds v times that.
        q = q + v * q / (q + NORM_EPS)
        assert relative(row.second_moment, q) <= 1e-12
    assert relative(outputs[-1].second_moment, 1.0 + depth * v) <= 1e-5
    norms = [row for row in result.layers if row.kind == "norm"]
    assert all(abs(row.second_moment - 1.0) <= 1e-5 for row in norms)


def test_a_post_norm_stack_is_pinned_at_one():
    width = 128
    blocks = tuple(
        Residual(
            f"r{i}",
            "post",
            layer_norm(f"r{i}.ln", width),
            (dense(f"r{i}.fc", width, width, 2.0, RELU),),
        )
        for i in range(8)
    )

    result = propagate(Network(width, blocks), input_second_moment=3.0)

    outputs = [row for row in result.layers if row.kind == "residual"]
    for row in outputs:
        assert abs(row.second_moment - 1.0) <= 1e-5
        assert row.mean == 0.0
    # The first sum: stream 3 (mean 0) plus relu(h), h ~ N(0, 6).
    first = [row for row in result.layers if row.name == "r0.ln"][0]
    mean = math.sqrt(6 / (2 * math.pi))
    variance = 3.0 + 3.0 - mean**2
    assert relative(first.second_moment, variance / (variance + NORM_EPS)) <= 1e-12


def test_norm_gradients_divide_by_the_variance_the_norm_removed():
    width = 64
    network = Network(
        width,
        (
            dense("fc", width, width, 3.0, IDENTITY),
            Norm("ln", "rms_norm", width, Draw("normal", 0.5, 1.0), None),
        ),
    )

    result = propagate(network, input_second_moment=1.0)

    norm = result.layers[1]
    assert relative(norm.second_moment, 1.25 * 3.0 / (3.0 + NORM_EPS)) <= 1e-12
    assert norm.gradient_second_moment == 1.0
    assert relative(norm.input_gradient_second_moment, 1.25 / (3.0 + NORM_EPS)) <= 1e-12


def test_a_projection_shortcut_replaces_the_identity():
    network = Network(
        32,
        (
            Residual(
                "down",
                "none",
                None,
                (dense("down.fc", 32, 64, 2.0, IDENTITY),),
                (dense("down.proj", 32, 64, 0.5, IDENTITY),),
            ),
        ),
    )

    result = propagate(network, input_second_moment=2.0)

    assert result.layers[-1].second_moment == pytest.approx(2.0 * 2.0 + 0.5 * 2.0)
    assert result.layers[-1].input_gradient_second_moment == pytest.approx(
        (2.0 + 0.5) * 64 / 32, rel=1e-12
    )


def test_convolutions_keep_per_location_moments_with_fan_in_c_in_k_squared():
    channels, kernel = 16, (3, 3)
    layers = tuple(
        dense(f"c{i}", channels, channels, 2.0, RELU, kernel=kernel) for i in range(4)
    )

    result = propagate(Network(channels, layers, 2), input_second_moment=1.5)

    assert all(relative(row.second_moment, 3.0) <= 1e-12 for row in result.layers)
    assert layers[0].fan_in == 144
    assert relative(layers[0].weight.second_moment, 2.0 / 144) <= 1e-15
    assert all(relative(row.gradient_ratio, 1.0) <= 1e-12 for row in result.layers)


# --- Gated MLPs, attention, embeddings ---------------------------------------------


def test_a_gated_mlp_multiplies_the_gate_and_up_second_moments():
    d, d_ff = 64, 172
    block = GatedMlp(
        "mlp",
        dense("mlp.gate", d, d_ff, 1.3, SILU),
        dense("mlp.up", d, d_ff, 0.7, IDENTITY),
        dense("mlp.down", d_ff, d, 2.0, IDENTITY),
    )

    result = propagate(Network(d, (block,)), input_second_moment=1.0)

    gate, up, down = result.layers
    _, gate_square = meanfield.post_activation_moments(SILU, 1.3)
    assert relative(gate.post_activation_second_moment, gate_square) <= 1e-15
    assert up.second_moment == pytest.approx(0.7, rel=1e-15)
    assert relative(down.second_moment, 2.0 * gate_square * 0.7) <= 1e-12
    assert down.excess_kurtosis == 0.0


def attention_block(d, heads, q_sigma2, v_sigma2, kv_heads=None):
    kv_heads = kv_heads or heads
    d_head = d // heads

    def projection(name, n_out, sigma2):
        return Dense(name, d, n_out, d, normal(sigma2, d), None, IDENTITY)

    return Attention(
        "attn",
        projection("attn.q", d, q_sigma2),
        projection("attn.k", kv_heads * d_head, q_sigma2),
        projection("attn.v", kv_heads * d_head, v_sigma2),
        dense("attn.o", d, d, 1.0, IDENTITY),
        heads,
        kv_heads,
        d_head,
    )


def test_attention_with_flat_scores_averages_the_values_of_the_sequence():
    block = attention_block(64, 4, 0.0, 2.0)

    result = propagate(
        Network(64, (block,)), input_second_moment=1.5, sequence_length=16
    )

    names = [row.name for row in result.layers]
    assert names == ["attn.q", "attn.k", "attn.v", "attn", "attn.o"]
    mixed = result.layers[3]
    assert relative(mixed.second_moment, 2.0 * 1.5 / 16) <= 1e-9
    assert mixed.width == 64


def test_attention_scores_spread_the_weights_by_the_softmax_moments():
    block = attention_block(64, 4, 1.0, 1.0)

    result = propagate(
        Network(64, (block,)), input_second_moment=2.0, sequence_length=8
    )

    # q and k have second moment 2 and independent tokens: σ_s² = 2·2 = 4.
    weights = softmax_moments(4.0, 8)
    assert relative(result.layers[3].second_moment, 2.0 * weights.sum_squares) <= 1e-12
    assert 1 / 8 < weights.sum_squares < 1


def test_one_token_attends_to_itself():
    result = propagate(
        Network(32, (attention_block(32, 2, 1.0, 1.0),)),
        input_second_moment=1.0,
        sequence_length=1,
    )

    assert result.layers[3].second_moment == pytest.approx(1.0, rel=1e-15)


def test_grouped_keys_and_values_collect_the_gradients_of_their_query_heads():
    full = propagate(
        Network(64, (attention_block(64, 8, 1.0, 1.0),)), input_second_moment=1.0
    )
    grouped = propagate(
        Network(64, (attention_block(64, 8, 1.0, 1.0, kv_heads=2),)),
        input_second_moment=1.0,
    )

    # Same per-head statistics; each of the 2 key/value heads serves 4 queries.
    v_full, v_grouped = full.layers[2], grouped.layers[2]
    assert relative(v_grouped.second_moment, v_full.second_moment) <= 1e-15
    assert (
        relative(v_grouped.gradient_second_moment, 4 * v_full.gradient_second_moment)
        <= 1e-12
    )


def test_embeddings_sum_their_tables_and_mix_the_pair_as_the_simulation_does():
    block = Embedding(("wte", "wpe"), 32, (Draw("normal", 0.02), Draw("normal", 0.01)))

    result = propagate(
        Network(32, (block,)), input_second_moment=5.0, input_correlation=0.6
    )

    (row,) = result.layers
    assert row.name == "wte+wpe" and row.kind == "embedding"
    assert row.second_moment == pytest.approx(0.0005, rel=1e-12)
    assert row.correlation == pytest.approx(0.6, rel=1e-12)
    assert row.gradient_second_moment == 1.0


# --- The softmax moments ------------------------------------------------------------


def two_token_moments(variance: float) -> tuple[float, float, float]:
    """For T = 2 the weights are σ(d), σ(−d) with d = s₁ − s₂ ~ N(0, 2σ²)."""
    scale = math.sqrt(2 * variance)

    def expect(f):
        def integrand(z):
            a = 1 / (1 + math.exp(-scale * z))
            return f(a) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

        return integrate.quad(integrand, -40, 40, epsabs=1e-14, limit=200)[0]

    squares = expect(lambda a: a**2 + (1 - a) ** 2)
    cubes = expect(lambda a: a**3 + (1 - a) ** 3)
    squared = expect(lambda a: (a**2 + (1 - a) ** 2) ** 2)
    return squares, cubes, squared


@pytest.mark.parametrize("variance", [0.01, 0.5, 2.0, 9.0])
def test_softmax_moments_of_two_tokens_match_one_dimensional_quadrature(variance):
    moments = softmax_moments(variance, 2)

    expected = two_token_moments(variance)
    assert relative(moments.sum_squares, expected[0]) <= 1e-9
    assert relative(moments.sum_cubes, expected[1]) <= 1e-9
    assert relative(moments.squared_sum_squares, expected[2]) <= 1e-9


@given(tokens=st.integers(1, 512))
@settings(max_examples=25, deadline=None)
def test_flat_scores_give_uniform_weights(tokens):
    moments = softmax_moments(0.0, tokens)

    assert relative(moments.sum_squares, 1 / tokens) <= 1e-9
    assert relative(moments.sum_cubes, 1 / tokens**2) <= 1e-9
    assert relative(moments.squared_sum_squares, 1 / tokens**2) <= 1e-9


@given(variance=st.floats(0.0, 25.0), tokens=st.integers(2, 64))
@settings(max_examples=40, deadline=None)
def test_softmax_weight_moments_are_ordered_as_for_any_probability_vector(
    variance, tokens
):
    moments = softmax_moments(variance, tokens)

    # 1/T ≤ Σa² ≤ 1, Σa³ ≤ Σa² and (Σa²)² ≤ Σa² hold for every weight vector.
    assert 1 / tokens - 1e-12 <= moments.sum_squares <= 1 + 1e-12
    assert moments.sum_cubes <= moments.sum_squares + 1e-12
    assert moments.squared_sum_squares <= moments.sum_squares + 1e-12
    assert moments.squared_sum_squares >= moments.sum_squares**2 - 1e-12


# --- Arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"input_second_moment": 0.0}, "input_second_moment"),
        ({"input_second_moment": math.inf}, "input_second_moment"),
        ({"input_second_moment": 1.0, "input_correlation": 1.5}, "input_correlation"),
        ({"input_second_moment": 1.0, "sequence_length": 0}, "sequence_length"),
    ],
)
def test_arguments_out_of_range_are_refused_at_their_name(arguments, field):
    with pytest.raises(InvalidInput) as caught:
        propagate(stack(2, 2.0), **arguments)

    assert caught.value.problems[0].path == (field,)
