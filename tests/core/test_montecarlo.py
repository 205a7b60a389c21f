"""initlab.core.montecarlo: the finite-width simulation of a Network.

Reference values are closed forms (the arc-cosine kernel, the ReLU/He
fluctuation formula of signal-propagation.md), direct numpy computations
written independently here (a convolution by loops, attention per head,
finite differences) and scipy's distributions and tests.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
from scipy import special, stats

from initlab.core import montecarlo
from initlab.core.activations import _erfc, make_activation, phi, phi_prime
from initlab.core.errors import InvalidInput
from initlab.core.montecarlo import (
    BACKWARD_STATISTICS,
    FORWARD_STATISTICS,
    MODEL,
    estimate_cost,
    layer_rows,
    sample_draw,
    sampling_path,
    saturation_threshold,
    simulate,
)
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
from initlab.core.recommend import recommend
from initlab.core.spec import LinearSpec, Spec, expand
from initlab.core.statistics import build_network
from initlab.core.types import SchemeChoice

ONE = Draw("constant", 0.0, 1.0)
ZERO = Draw("constant", 0.0)


def dense(name, n_in, n_out, act="identity", *, sigma_w2=1.0, bias=None, **fields):
    kernel = fields.get("kernel_size", ())
    groups = fields.get("groups", 1)
    fan_in = n_in // groups * math.prod(kernel)
    weight = fields.pop("weight", Draw("normal", math.sqrt(sigma_w2 / fan_in)))
    return Dense(
        name, n_in, n_out, fan_in, weight, bias, make_activation(act), **fields
    )


def mlp(depth, width, act, sigma_w2, sigma_b2=0.0, input_width=None):
    bias = Draw("normal", math.sqrt(sigma_b2)) if sigma_b2 else None
    n0 = input_width or width
    layers = tuple(
        dense(
            f"layer{i}",
            n0 if i == 0 else width,
            width,
            act,
            sigma_w2=sigma_w2,
            bias=bias,
        )
        for i in range(depth)
    )
    return Network(n0, layers)


def transformer(d=32, heads=4, kv_heads=2):
    d_head = d // heads
    attention = Attention(
        "h.attn",
        dense("h.attn.q", d, heads * d_head),
        dense("h.attn.k", d, kv_heads * d_head),
        dense("h.attn.v", d, kv_heads * d_head),
        dense("h.attn.o", heads * d_head, d, bias=ZERO),
        heads,
        kv_heads,
        d_head,
    )
    mlp_block = GatedMlp(
        "h.mlp",
        dense("h.mlp.gate", d, 2 * d, "silu"),
        dense("h.mlp.up", d, 2 * d),
        dense("h.mlp.down", 2 * d, d),
    )
    return Network(
        d,
        (
            Embedding(("wte", "wpe"), d, (Draw("normal", 0.5), Draw("normal", 0.3))),
            Residual(
                "h[0]", "pre", Norm("h.ln_1", "layer_norm", d, ONE, ZERO), (attention,)
            ),
            Residual(
                "h[1]", "pre", Norm("h.ln_2", "rms_norm", d, ONE, None), (mlp_block,)
            ),
            Norm("ln_f", "layer_norm", d, ONE, ZERO),
        ),
    )


def conv_net(act="relu"):
    return Network(
        3,
        (
            dense("c1", 3, 8, act, sigma_w2=2.0, kernel_size=(3, 3)),
            Residual(
                "res",
                "post",
                Norm("bn", "batch_norm", 16, ONE, ZERO),
                (
                    dense("c2", 8, 8, "tanh", kernel_size=(3, 3), groups=2),
                    dense("c3", 8, 16, kernel_size=(1, 1)),
                ),
                (dense("shortcut", 8, 16, kernel_size=(1, 1)),),
            ),
        ),
        spatial_dims=2,
    )


# --- streams and determinism --------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"backward": False},
        {"backward": False, "kernel_sampling": False},
        {"backward": True},
    ],
    ids=["kernel", "weights", "backward"],
)
def test_a_layer_gives_the_same_numbers_whatever_the_depth(options):
    shallow = simulate(
        mlp(5, 64, "tanh", 1.5, 0.05),
        batch_size=16,
        seeds=3,
        seed=4,
        input_second_moment=1.0,
        **options,
    )
    deep = simulate(
        mlp(20, 64, "tanh", 1.5, 0.05),
        batch_size=16,
        seeds=3,
        seed=4,
        input_second_moment=1.0,
        **options,
    )

    for statistic in FORWARD_STATISTICS:
        np.testing.assert_array_equal(
            shallow.values[statistic][:, :5], deep.values[statistic][:, :5]
        )
    assert shallow.values["second_moment"][0, 3] != deep.values["second_moment"][1, 3]


_MIXED_NETWORKS = """
import math
from initlab.core.activations import make_activation
from initlab.core.network import *
d = 16
def dense(name, n_in, n_out, act="identity", k=()):
    fan = n_in * (math.prod(k) if k else 1)
    return Dense(name, n_in, n_out, fan, Draw("normal", fan ** -0.5),
                 Draw("uniform", 0.1, bound=0.1 * 3 ** 0.5), make_activation(act), k)
one, zero = Draw("constant", 0.0, 1.0), Draw("constant", 0.0)
attention = Attention("a", dense("a.q", d, d), dense("a.k", d, 8), dense("a.v", d, 8),
                      dense("a.o", d, d), 4, 2, 4)
sequence = Network(d, (dense("in", d, d, "gelu"),
    Residual("r", "pre", Norm("ln", "layer_norm", d, one, zero), (attention,)),
    Residual("g", "post", Norm("rms", "rms_norm", d, one, None),
        (GatedMlp("m", dense("m.gate", d, 32, "silu"), dense("m.up", d, 32),
                  dense("m.down", 32, d)),))))
grid = Network(3, (dense("c1", 3, 8, "relu", (3, 3)), dense("c2", 8, 8, "tanh", (3, 3)),
                   Norm("bn", "batch_norm", 8, one, zero)), spatial_dims=2)
"""

_DIGEST = """
import hashlib
from initlab.core.montecarlo import simulate
digest = hashlib.sha256()
for network in (sequence, grid):
    for backward in (False, True):
        result = simulate(network, batch_size=6, seeds=2, seed=2024,
                          input_second_moment=0.7, input_correlation=0.4,
                          backward=backward, spatial_size=5, sequence_length=5)
        for name in sorted(result.values):
            digest.update(name.encode())
            digest.update(result.values[name].tobytes())
print(digest.hexdigest())
"""


def test_the_same_seed_gives_bit_identical_numbers_in_another_process():
    namespace: dict = {}
    exec(_MIXED_NETWORKS + _DIGEST.replace("print(", "result_digest = ("), namespace)

    other = subprocess.run(
        [sys.executable, "-c", _MIXED_NETWORKS + _DIGEST],
        capture_output=True,
        text=True,
        check=True,
    )

    assert other.stdout.strip() == namespace["result_digest"]


def test_another_seed_draws_other_networks():
    network = mlp(3, 32, "relu", 2.0)
    first = simulate(network, batch_size=8, seeds=2, seed=1, input_second_moment=1.0)
    second = simulate(network, batch_size=8, seeds=2, seed=2, input_second_moment=1.0)

    assert not np.any(first.values["second_moment"] == second.values["second_moment"])
    assert not np.array_equal(
        first.values["second_moment"][0], first.values["second_moment"][1]
    )


# --- the kernel path ----------------------------------------------------------


def _kernel_samples(x, std, out_width):
    layer = dense("layer", x.shape[-1], out_width, weight=Draw("normal", std))
    rng = np.random.Generator(np.random.PCG64(5))
    h = montecarlo._kernel_sample(x.astype(np.float32), layer, rng).astype(float)
    return h, std**2 * x @ x.T


def _covariance_z_scores(h, expected):
    """(sample − true covariance)/its standard error, entry by entry."""
    diagonal = np.diag(expected)
    count = h.shape[1]
    standard_error = np.sqrt((np.outer(diagonal, diagonal) + expected**2) / count)
    return (h @ h.T / count - expected) / standard_error


def test_kernel_sampling_draws_each_unit_with_the_covariance_of_wx():
    x = np.random.default_rng(0).standard_normal((6, 40))

    h, expected = _kernel_samples(x, 0.3, 200_000)

    assert np.abs(_covariance_z_scores(h, expected)).max() < 4.5


def test_kernel_sampling_of_a_singular_gram_matrix_uses_its_eigenvectors():
    x = np.random.default_rng(1).standard_normal((6, 40))
    x[3] = x[1]  # a repeated input and an all-zero row: rank 4 of 6
    x[5] = 0.0

    h, expected = _kernel_samples(x, 0.3, 200_000)

    assert np.abs(_covariance_z_scores(h[:5], expected[:5, :5])).max() < 4.5
    assert np.abs(h[5]).max() < 1e-5
    np.testing.assert_allclose(h[3], h[1], atol=1e-5)


def test_the_triangular_product_skips_only_zeros():
    rng = np.random.default_rng(2)
    factor = np.tril(rng.standard_normal((203, 203))).astype(np.float32)
    noise = rng.standard_normal((203, 37)).astype(np.float32)

    product = montecarlo._lower_triangular_product(factor, noise)

    np.testing.assert_allclose(product, factor @ noise, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("act, sigma_w2", [("tanh", 1.5), ("relu", 2.0)])
def test_the_kernel_path_and_the_weight_path_agree_in_distribution(act, sigma_w2):
    network = mlp(4, 256, act, sigma_w2, 0.05)
    common = dict(
        batch_size=16,
        seeds=40,
        input_second_moment=1.0,
        input_correlation=0.2,
        backward=False,
    )

    kernel = simulate(network, seed=11, **common)
    weights = simulate(network, seed=12, kernel_sampling=False, **common)

    assert {row.sampling for row in kernel.layers} == {"kernel"}
    assert {row.sampling for row in weights.layers} == {"weights"}
    for statistic in (
        "second_moment",
        "post_activation_second_moment",
        "correlation",
        "excess_kurtosis",
    ):
        for layer in range(4):
            test = stats.ks_2samp(
                kernel.values[statistic][:, layer], weights.values[statistic][:, layer]
            )
            assert test.pvalue > 1e-3, (statistic, layer, test)


def test_the_kernel_path_is_taken_only_where_it_is_exact_and_cheaper():
    wide = dense("wide", 512, 512)

    assert sampling_path(wide, rows=64, backward=False) == "kernel"
    assert sampling_path(wide, rows=64, backward=True) == "weights"
    assert sampling_path(wide, rows=4096, backward=False) == "weights"
    assert sampling_path(wide, rows=64, backward=False, kernel_sampling=False) == (
        "weights"
    )
    uniform = dense("u", 512, 512, weight=Draw("uniform", 0.05, bound=0.05 * 3**0.5))
    conv = dense("c", 512, 512, kernel_size=(1,))
    assert sampling_path(uniform, rows=64, backward=False) == "weights"
    assert sampling_path(conv, rows=64, backward=False) == "weights"


# --- statistics against closed forms ------------------------------------------


def test_relu_he_second_moment_fluctuates_as_the_reference_formula_says():
    n, depth = 32, 5
    result = simulate(
        mlp(depth, n, "relu", 2.0),
        batch_size=1,
        seeds=1500,
        seed=3,
        input_second_moment=1.0,
        backward=False,
    )
    second = result.values["second_moment"]

    relative_variance = second.var(axis=0) / second.mean(axis=0) ** 2

    # signal-propagation.md: (1 + 2/n)(1 + 5/n)^(l−1) − 1 at layer l
    expected = (1 + 2 / n) * (1 + 5 / n) ** np.arange(depth) - 1
    np.testing.assert_allclose(relative_variance, expected, rtol=0.15)
    assert relative_variance[0] == pytest.approx(2 / n, rel=0.1)


def test_relu_he_keeps_the_second_moment_and_units_die_with_depth():
    result = simulate(
        mlp(50, 128, "relu", 2.0),
        batch_size=64,
        seeds=6,
        seed=8,
        input_second_moment=1.5,
        backward=False,
    )
    second = result.mean("second_moment")
    dead = result.mean("dead_fraction")

    # q^l = σ_w²·q^{l−1}/2 = 3 at every layer (signal-propagation.md checkpoint)
    assert second[0] == pytest.approx(3.0, rel=0.02)
    assert np.abs(second - 3.0).max() < 4 * result.standard_error("second_moment").max()
    assert dead[0] == 0.0
    # about 0.4 by layer 50 with a batch of 64 (0.42 in signal-propagation.md)
    assert 0.33 < dead[49] < 0.47
    assert dead[9] < dead[24] < dead[49]


def test_the_input_pair_has_the_requested_correlation_and_relu_follows_the_arccos_map():
    c = 0.3
    network = mlp(2, 512, "relu", 2.0)
    result = simulate(
        network,
        batch_size=32,
        seeds=12,
        seed=5,
        input_second_moment=2.0,
        input_correlation=c,
        backward=False,
    )
    correlation = result.mean("correlation")
    error = result.standard_error("correlation")

    # Cho & Saul 2009 arc-cosine kernel of degree 1: c' = (√(1−c²) + (π − arccos c)c)/π
    mapped = (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / math.pi
    assert abs(correlation[0] - c) < 4 * error[0] + 1e-3
    assert abs(correlation[1] - mapped) < 4 * error[1] + 1e-3


def test_tanh_reaches_the_fixed_point_of_the_length_map():
    result = simulate(
        mlp(20, 512, "tanh", 1.5, 0.05),
        batch_size=16,
        seeds=16,
        seed=9,
        input_second_moment=1.0,
        backward=False,
    )
    deviation = result.mean("second_moment")[-5:] - 0.418037

    # signal-propagation.md checkpoint: q* = 0.418037; networks differ by ~5%
    assert np.abs(deviation).max() < 4 * result.standard_error("second_moment").max()


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_exploding_and_vanishing_networks_report_inf_and_zero(backward):
    arguments = dict(
        batch_size=8, seeds=2, seed=0, input_second_moment=1.0, backward=backward
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exploding = simulate(mlp(150, 64, "relu", 4.0), **arguments)
        vanishing = simulate(mlp(150, 64, "relu", 0.5), **arguments)

        spread = exploding.sd("second_moment")

    # ×2 per layer (width 64 spreads it over networks); float32 ends near 2^128
    growth = exploding.mean("second_moment")
    assert np.isnan(spread[-1]) and np.isfinite(spread[50])
    assert abs(math.log2(growth[100]) - 101) < 6
    assert np.isinf(growth[-1])
    # ×1/4 per layer: float32 reaches 0 before layer 75
    assert vanishing.mean("second_moment")[-1] == 0.0
    assert np.isnan(vanishing.mean("correlation")[-1])


def test_saturation_thresholds_solve_the_one_percent_rule():
    assert saturation_threshold(make_activation("tanh")) == pytest.approx(
        math.acosh(10.0), rel=1e-12
    )
    assert saturation_threshold(make_activation("softsign")) == pytest.approx(
        9.0, rel=1e-12
    )
    # σ'(h) = σ(1 − σ) = 0.0025 at σ = (1 − √0.99)/2
    low = (1 - math.sqrt(0.99)) / 2
    assert saturation_threshold(make_activation("sigmoid")) == pytest.approx(
        math.log((1 - low) / low), rel=1e-12
    )
    assert saturation_threshold(make_activation("relu")) is None


def test_saturated_fraction_of_a_wide_tanh_layer():
    q = 9.0
    network = mlp(1, 1024, "tanh", q)
    result = simulate(
        network, batch_size=16, seeds=4, seed=1, input_second_moment=1.0, backward=False
    )

    threshold = math.acosh(10.0)
    expected = math.erfc(threshold / math.sqrt(2 * q))
    assert result.mean("saturation_fraction")[0] == pytest.approx(expected, rel=0.02)
    assert np.isnan(result.values["saturation_fraction"]).sum() == 0
    relu = simulate(
        mlp(1, 64, "relu", 2.0),
        batch_size=4,
        seeds=1,
        seed=1,
        input_second_moment=1.0,
        backward=False,
    )
    assert np.isnan(relu.values["saturation_fraction"]).all()


@pytest.mark.parametrize("kind", ["layer_norm", "rms_norm", "batch_norm"])
def test_a_norm_outputs_unit_second_moment_and_zero_mean(kind):
    network = Network(
        64,
        (
            dense("proj", 64, 64, sigma_w2=4.0, bias=Draw("normal", 0.5)),
            Norm("norm", kind, 64, ONE, ZERO),
        ),
    )
    result = simulate(
        network, batch_size=32, seeds=2, seed=3, input_second_moment=1.0, backward=False
    )
    norm = result.row("norm")

    # E[x̂²] = var/(var + 1e-5) ≈ 1 − 1e-5/var
    assert result.values["second_moment"][:, norm] == pytest.approx(1.0, abs=2e-5)
    if kind != "rms_norm":
        assert np.abs(result.values["mean"][:, norm]).max() < 1e-6


def test_embedding_tables_add_their_second_moments():
    network = transformer()
    result = simulate(
        network,
        batch_size=64,
        seeds=4,
        seed=2,
        input_second_moment=1.0,
        input_correlation=0.6,
        backward=False,
        sequence_length=8,
    )
    row = result.row("wte+wpe")

    assert result.positions == (8,)
    assert result.mean("second_moment")[row] == pytest.approx(0.5**2 + 0.3**2, rel=0.02)
    assert result.mean("correlation")[row] == pytest.approx(0.6, abs=0.02)


def test_output_statistics_are_the_moments_of_all_entries():
    values = np.random.default_rng(4).gamma(2.0, size=(6, 3, 50)).astype(np.float32)
    flat = values.astype(float).ravel()

    result = montecarlo._output_statistics(values, saturation=3.0)

    assert result["mean"] == pytest.approx(flat.mean(), rel=1e-6)
    assert result["second_moment"] == pytest.approx(np.mean(flat**2), rel=1e-6)
    assert result["variance"] == pytest.approx(flat.var(), rel=1e-6)
    assert result["excess_kurtosis"] == pytest.approx(stats.kurtosis(flat), rel=1e-5)
    assert result["saturation_fraction"] == np.mean(np.abs(flat) > 3.0)
    a, b = values[0::2].astype(float), values[1::2].astype(float)
    cosines = np.sum(a * b, -1) / np.sqrt(np.sum(a * a, -1) * np.sum(b * b, -1))
    assert result["correlation"] == pytest.approx(cosines.mean(), rel=1e-6)


def test_dense_statistics_count_dead_units_and_post_activation_moments():
    h = np.random.default_rng(5).standard_normal((8, 3, 10)).astype(np.float32)
    h[..., :4] = -np.abs(h[..., :4])  # four units never positive
    h[0, 0, 3] = 0.0  # φ'(0) = 0: still dead

    stats, activated = montecarlo.dense_statistics(make_activation("relu"), h)

    assert stats["dead_fraction"] == 0.4
    np.testing.assert_array_equal(activated, np.maximum(h, 0))
    relu = np.maximum(h.astype(float), 0)
    assert stats["post_activation_second_moment"] == pytest.approx(
        np.mean(relu**2), rel=1e-6
    )
    assert stats["post_activation_mean"] == pytest.approx(relu.mean(), rel=1e-6)
    tanh_stats, _ = montecarlo.dense_statistics(make_activation("tanh"), h)
    assert tanh_stats["dead_fraction"] == 0.0


# --- the backward pass --------------------------------------------------------


def _loss_and_input_gradient(network, x, output_gradient):
    run = montecarlo._Run(3, 0, x.shape[0], x.shape[1:-1], 0.0, backward=True)
    output, backward = run.blocks(network.blocks, x)
    gradient = backward(output_gradient)
    return float(np.sum(output.astype(float) * output_gradient)), gradient, run


@pytest.mark.parametrize(
    "network", [transformer(), conv_net("gelu")], ids=["transformer", "conv"]
)
def test_the_backward_pass_is_the_derivative_of_the_forward_pass(network):
    rng = np.random.default_rng(6)
    positions = (5, 5) if network.spatial_dims else (6,)
    first = network.blocks[0]
    if isinstance(first, Embedding):
        network = Network(first.width, network.blocks[1:])
    shape = (4, *positions, network.input_width)
    x = rng.standard_normal(shape).astype(np.float32)
    direction = rng.standard_normal(shape).astype(np.float32)
    out_shape = (
        *shape[:-1],
        montecarlo._Planner(4, positions, False).blocks(
            network.blocks, network.input_width, 0.0
        ),
    )
    output_gradient = rng.standard_normal(out_shape).astype(np.float32)

    _, gradient, _ = _loss_and_input_gradient(network, x, output_gradient)
    step = 1e-2
    plus, _, _ = _loss_and_input_gradient(
        network, x + step * direction, output_gradient
    )
    minus, _, _ = _loss_and_input_gradient(
        network, x - step * direction, output_gradient
    )

    numeric = (plus - minus) / (2 * step)
    analytic = float(np.sum(gradient.astype(float) * direction))
    assert analytic == pytest.approx(numeric, rel=2e-2)


def test_dense_gradient_statistics_are_per_example_contributions():
    layer = dense("layer", 4, 5, "tanh", bias=Draw("normal", 0.1))
    network = Network(4, (layer,))
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    r = np.random.default_rng(3).standard_normal((3, 5)).astype(np.float32)

    _, input_gradient, run = _loss_and_input_gradient(network, x, r)

    weight, bias = run.weights(layer, 0)
    w = weight[0, :, 0, :].astype(float)
    h = x.astype(float) @ w.T + bias
    dh = r * (1 - np.tanh(h) ** 2)
    contributions = dh[:, :, None] * x.astype(float)[:, None, :]
    recorded = run.values[0]
    assert recorded["weight_gradient_second_moment"] == pytest.approx(
        np.mean(contributions**2), rel=1e-5
    )
    assert recorded["gradient_second_moment"] == pytest.approx(np.mean(dh**2), rel=1e-5)
    assert recorded["bias_gradient_second_moment"] == recorded["gradient_second_moment"]
    np.testing.assert_allclose(input_gradient, dh @ w, rtol=1e-5, atol=1e-6)


def test_relu_he_gradients_keep_their_second_moment():
    result = simulate(
        mlp(6, 256, "relu", 2.0),
        batch_size=32,
        seeds=12,
        seed=7,
        input_second_moment=1.0,
    )

    def deviation(statistic, expected):
        error = result.standard_error(statistic)
        return np.abs(result.mean(statistic) - expected) / error

    # E[φ'²] = 1/2 with the output gradient N(0, 1); χ₁ = σ_w²/2 = 1 per layer,
    # and the first weight gradient is E[δ²]·q⁰ = 1/2
    assert deviation("gradient_second_moment", 0.5).max() < 4
    assert deviation("input_gradient_second_moment", 1.0).max() < 4
    assert deviation("weight_gradient_second_moment", 0.5)[0] < 4
    assert result.mean("input_gradient_second_moment") == pytest.approx(
        [1.0] * 6, rel=0.1
    )
    assert np.isnan(result.values["bias_gradient_second_moment"]).all()


def test_a_circular_convolution_and_its_transpose():
    rng = np.random.default_rng(7)
    layer = dense("c", 4, 6, kernel_size=(3, 2), groups=2)
    weight = montecarlo._draw_weight(layer, np.random.default_rng(1))
    x = rng.standard_normal((2, 5, 4, 4)).astype(np.float32)

    y = montecarlo._apply_weight(x, layer, weight)

    expected = np.zeros((2, 5, 4, 6))
    for b, i, j, out in np.ndindex(2, 5, 4, 6):
        group = out // 3
        for tap, (ki, kj) in enumerate(np.ndindex(3, 2)):
            source = x[b, (i + ki - 1) % 5, (j + kj) % 4, 2 * group : 2 * group + 2]
            expected[b, i, j, out] += source @ weight[group, out % 3, tap]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    g = rng.standard_normal(y.shape).astype(np.float32)
    back = montecarlo._apply_weight_transpose(g, layer, weight)
    assert np.sum(back * x) == pytest.approx(np.sum(g * y), rel=1e-4)


@pytest.mark.parametrize("kind", ["layer_norm", "rms_norm", "batch_norm"])
def test_norm_backward_is_the_derivative_of_the_norm(kind):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 4, 6)) * 2 + 0.5
    g = rng.standard_normal(x.shape)
    v = rng.standard_normal(x.shape)
    normalized, inverse = montecarlo._normalize(kind, x)

    gradient = montecarlo._normalize_backward(kind, normalized, inverse, g)

    step = 1e-6
    plus = np.sum(montecarlo._normalize(kind, x + step * v)[0] * g)
    minus = np.sum(montecarlo._normalize(kind, x - step * v)[0] * g)
    assert np.sum(gradient * v) == pytest.approx((plus - minus) / (2 * step), rel=1e-6)


def test_attention_is_softmax_mixing_per_head_and_its_backward_its_derivative():
    rng = np.random.default_rng(9)
    block = transformer(d=12, heads=6, kv_heads=2).blocks[1].branch[0]
    q = rng.standard_normal((2, 5, 12))
    k = rng.standard_normal((2, 5, 4))
    v = rng.standard_normal((2, 5, 4))

    mixed, attended = montecarlo._attend(q, k, v, block)

    for b, head in np.ndindex(2, 6):
        shared = head // 3
        scores = (
            q[b, :, 2 * head : 2 * head + 2]
            @ k[b, :, 2 * shared : 2 * shared + 2].T
            / math.sqrt(2)
        )
        weights = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
        np.testing.assert_allclose(
            mixed[b, :, 2 * head : 2 * head + 2],
            weights @ v[b, :, 2 * shared : 2 * shared + 2],
            rtol=1e-12,
        )
    g = rng.standard_normal(mixed.shape)
    gradients = montecarlo._attend_backward(g, attended, block, q)
    step = 1e-6
    for index, value in enumerate((q, k, v)):
        direction = rng.standard_normal(value.shape)
        moved = [q, k, v]
        moved[index] = value + step * direction
        plus = np.sum(montecarlo._attend(*moved, block)[0] * g)
        moved[index] = value - step * direction
        minus = np.sum(montecarlo._attend(*moved, block)[0] * g)
        assert np.sum(gradients[index] * direction) == pytest.approx(
            (plus - minus) / (2 * step), rel=1e-6
        )


# --- rows, results and the networks the service builds ------------------------


def test_rows_come_in_forward_order_with_their_kinds():
    rows = layer_rows(transformer())

    assert [(row.name, row.kind) for row in rows] == [
        ("wte+wpe", "embedding"),
        ("h.ln_1", "norm"),
        ("h.attn.q", "dense"),
        ("h.attn.k", "dense"),
        ("h.attn.v", "dense"),
        ("h.attn", "attention"),
        ("h.attn.o", "dense"),
        ("h[0]", "residual"),
        ("h.ln_2", "norm"),
        ("h.mlp.gate", "dense"),
        ("h.mlp.up", "dense"),
        ("h.mlp.down", "dense"),
        ("h[1]", "residual"),
        ("ln_f", "norm"),
    ]
    post = [(row.name, row.kind) for row in layer_rows(conv_net())]
    assert post == [
        ("c1", "dense"),
        ("c2", "dense"),
        ("c3", "dense"),
        ("shortcut", "dense"),
        ("bn", "norm"),
        ("res", "residual"),
    ]


def test_the_result_carries_every_statistic_per_seed_and_row():
    result = simulate(
        conv_net(),
        batch_size=4,
        seeds=3,
        seed=0,
        input_second_moment=1.0,
        spatial_size=4,
    )

    assert set(result.values) == set(FORWARD_STATISTICS + BACKWARD_STATISTICS)
    for values in result.values.values():
        assert values.shape == (3, 6)
        assert values.dtype == np.float64
    assert result.positions == (4, 4)
    assert result.mean("second_moment").shape == (6,)
    np.testing.assert_allclose(
        result.sd("second_moment"), result.values["second_moment"].std(0, ddof=1)
    )
    assert result.numpy_version == np.__version__
    assert "softmax" in result.model and result.model == MODEL
    assert result.cost == estimate_cost(
        conv_net(), batch_size=4, seeds=3, spatial_size=4
    )


def test_a_network_built_from_a_spec_simulates():
    spec = Spec(
        {},
        tuple(
            LinearSpec(
                in_features=64, out_features=64, activation=make_activation("gelu")
            )
            for _ in range(3)
        ),
    )
    expanded = expand(spec)
    network = build_network(
        expanded, recommend(expanded, SchemeChoice("kaiming_normal", {}))
    )

    result = simulate(network, batch_size=8, seeds=2, seed=1, input_second_moment=1.0)

    assert len(result.layers) == 3
    assert np.isfinite(result.values["gradient_second_moment"]).all()


# --- the cost -----------------------------------------------------------------


def test_forward_memory_does_not_grow_with_depth_and_backward_memory_does():
    shallow = estimate_cost(
        mlp(10, 1024, "tanh", 1.0), batch_size=256, seeds=4, backward=False
    )
    deep = estimate_cost(
        mlp(100, 1024, "tanh", 1.0), batch_size=256, seeds=4, backward=False
    )

    assert deep.peak_bytes == shallow.peak_bytes
    assert deep.flops == pytest.approx(10 * shallow.flops, rel=0.01)
    backward = [
        estimate_cost(mlp(depth, 1024, "tanh", 1.0), batch_size=256, seeds=4).peak_bytes
        for depth in (10, 100)
    ]
    # Each layer keeps its input for the backward pass: 256 × 1024 float32.
    assert backward[1] - backward[0] == 90 * 256 * 1024 * 4


def test_random_numbers_are_counted_from_the_shapes():
    network = mlp(3, 512, "relu", 2.0, 0.1, input_width=64)

    kernel = estimate_cost(network, batch_size=32, seeds=5, backward=False)
    mixed = estimate_cost(network, batch_size=128, seeds=5, backward=False)
    backward = estimate_cost(network, batch_size=128, seeds=5)

    # the input; L·Z and the biases per layer, or W and the biases where the
    # batch has more rows than the layer has inputs (the first, at batch 128)
    layer = 32 * 512 + 512
    assert kernel.random_numbers == 5 * (32 * 64 + 3 * layer)
    first = 512 * 64 + 512
    assert mixed.random_numbers == 5 * (128 * 64 + first + 2 * (128 * 512 + 512))
    weights = first + 2 * (512 * 512 + 512)
    assert backward.random_numbers == 5 * (128 * 64 + 2 * weights + 128 * 512)
    assert kernel.work == kernel.flops + 1000 * kernel.random_numbers


@pytest.mark.parametrize(
    "network, backward",
    [
        (mlp(8, 256, "gelu", 1.0, 0.1), False),
        (mlp(8, 256, "gelu", 1.0, 0.1), True),
        (transformer(), True),
        (conv_net(), False),
        (conv_net(), True),
    ],
    ids=["mlp", "mlp-backward", "transformer-backward", "conv", "conv-backward"],
)
def test_the_peak_memory_estimate_bounds_what_is_allocated(network, backward):
    arguments = dict(batch_size=16, seeds=2, backward=backward, spatial_size=6)
    simulate(network, seed=0, input_second_moment=1.0, **arguments)

    tracemalloc.start()
    try:
        simulate(network, seed=0, input_second_moment=1.0, **arguments)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    estimate = estimate_cost(network, **arguments).peak_bytes
    assert peak <= estimate <= 2.5 * peak


# --- sampling -----------------------------------------------------------------


def test_box_muller_normals_are_standard_normal():
    rng = np.random.Generator(np.random.PCG64(12))
    z = montecarlo._standard_normal(rng, (400, 501)).astype(float).ravel()

    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 4 / math.sqrt(z.size)
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / z.size)
    half = z.size // 2
    assert abs(np.corrcoef(z[:half], z[half : 2 * half])[0, 1]) < 4 / math.sqrt(half)


@pytest.mark.parametrize(
    "draw",
    [
        Draw("normal", 0.2),
        Draw("uniform", 0.2, bound=0.2 * math.sqrt(3)),
        Draw("truncated_normal", 0.2 * 0.879626, truncation=(-0.4, 0.4, 0.2)),
    ],
    ids=["normal", "uniform", "truncated_normal"],
)
def test_draws_have_the_std_they_declare(draw):
    values = sample_draw(draw, (300, 400), np.random.default_rng(3)).astype(float)

    assert values.dtype == np.float64
    assert values.std() == pytest.approx(draw.std, rel=0.01)
    if draw.truncation:
        assert values.min() >= -0.4 and values.max() <= 0.4


def test_orthogonal_and_constant_draws():
    rng = np.random.default_rng(4)
    tall = sample_draw(Draw("orthogonal", 0.1, gain=2.0), (30, 10), rng).astype(float)
    wide = sample_draw(Draw("orthogonal", 0.1, gain=2.0), (10, 30), rng).astype(float)

    np.testing.assert_allclose(tall.T @ tall, 4 * np.eye(10), atol=1e-5)
    np.testing.assert_allclose(wide @ wide.T, 4 * np.eye(10), atol=1e-5)
    assert (sample_draw(ONE, (3,), rng) == 1.0).all()


# --- errors -------------------------------------------------------------------


def test_arguments_out_of_range_are_refused_at_their_names():
    with pytest.raises(InvalidInput) as caught:
        simulate(
            mlp(1, 4, "relu", 2.0),
            batch_size=0,
            seeds=-1,
            seed=True,
            input_second_moment=math.inf,
            input_correlation=1.5,
        )

    paths = {problem.path for problem in caught.value.problems}
    assert paths == {
        ("batch_size",),
        ("seeds",),
        ("seed",),
        ("input_second_moment",),
        ("input_correlation",),
    }


def test_attention_widths_must_fit_the_heads():
    good = transformer().blocks[1].branch[0]
    bad = Attention("bad", good.q, good.k, good.v, good.o, 3, 2, 8)
    network = Network(32, (bad,))

    with pytest.raises(InvalidInput, match="heads"):
        simulate(network, batch_size=2, seeds=1, seed=0, input_second_moment=1.0)


# --- the vectorised erfc and float32 activations (initlab.core.activations) ---


def test_erfc_matches_the_c_library_in_float64_down_to_the_far_tail():
    y = np.concatenate([np.linspace(-6, 26, 20001), [0.0, -0.0, 0.5, 3.0, 8.0]])

    # math.erfc is the C library's, within an ulp or two; scipy's loses up to
    # 6e-14 past y = 8, so it only checks the first digits here
    reference = np.array([math.erfc(value) for value in y])
    np.testing.assert_allclose(_erfc(y), reference, rtol=3e-15, atol=0)
    np.testing.assert_allclose(_erfc(y), special.erfc(y), rtol=1e-13, atol=0)
    assert _erfc(np.array([np.inf, -np.inf]))[:2].tolist() == [0.0, 2.0]
    assert np.isnan(_erfc(np.array([np.nan])))[0]


def test_activations_keep_float32_arrays_in_float32():
    x = np.linspace(-9, 9, 3001).astype(np.float32)
    for name in ("relu", "leaky_relu", "gelu", "silu", "tanh", "sigmoid", "elu"):
        act = make_activation(name)
        value, slope = phi(act, x), phi_prime(act, x)
        assert value.dtype == np.float32 and slope.dtype == np.float32
        # float32 rounding of intermediate values, e.g. of x/√2 inside GELU's erfc,
        # whose relative effect grows like x² in the far tail
        exact = phi(act, x.astype(float))
        np.testing.assert_allclose(value, exact, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(
            slope, phi_prime(act, x.astype(float)), rtol=1e-5, atol=1e-7
        )
