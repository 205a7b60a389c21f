"""initlab.core.initializers: each formula against the libraries' own numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.stats import truncnorm

from initlab.core.activations import make_activation, pytorch_gain
from initlab.core.initializers import (
    KERAS_TRUNCATED_NORMAL_STD,
    TORCH_DEFAULT_NEGATIVE_SLOPE,
    deepnorm_alpha,
    deepnorm_beta,
    depth_scaled_std,
    fixup_branch_scale,
    kaiming_std,
    lecun_std,
    mean_field_bias_std,
    mean_field_weight_std,
    orthogonal_element_rms,
    small_init_std,
    torch_default_bias_bound,
    truncated_normal_mean,
    truncated_normal_std,
    uniform_bound,
    uniform_std,
    variance_scaling_sampler_std,
    variance_scaling_uniform_limit,
    variance_scaling_variance,
    wang_init_std,
    xavier_std,
)
from initlab.core.types import Activation

RELU_GAIN = math.sqrt(2.0)


def relative_error(ours: float, reference: float) -> float:
    return abs(ours - reference) / abs(reference)


# --- Numbers PyTorch 2.13 computes ----------------------------------------------


def test_kaiming_relu_on_linear_784_256():
    std = kaiming_std(784, RELU_GAIN)

    assert relative_error(std, 0.050507627227610534) <= 1e-12
    assert uniform_bound(std) == 0.08748177652797065


def test_kaiming_relu_on_conv_64_128_k3():
    fan_in, fan_out = 64 * 9, 128 * 9

    assert relative_error(kaiming_std(fan_out, RELU_GAIN), 1 / 24) <= 1e-15
    assert uniform_bound(kaiming_std(fan_out, RELU_GAIN)) == 0.07216878364870323
    assert kaiming_std(fan_in, RELU_GAIN) == 0.05892556509887897


def test_xavier_on_100_by_300():
    std = xavier_std(300, 100)

    assert std == 0.07071067811865475
    assert uniform_bound(std) == 0.1224744871391589


def test_leaky_relu_kaiming_uniform_on_512_by_512():
    gain = pytorch_gain(make_activation("leaky_relu", {"negative_slope": 0.2}))

    assert gain == 1.3867504905630728
    assert uniform_bound(kaiming_std(512, gain)) == 0.10615097195105584


def test_tanh_xavier_uniform_on_256_by_256():
    bound = uniform_bound(xavier_std(256, 256, 5.0 / 3))

    assert relative_error(bound, 0.18042195912175804) <= 1e-12


def test_torch_default_linear_784_256_is_one_over_28_for_weight_and_bias():
    gain = pytorch_gain(
        Activation("leaky_relu", (("negative_slope", TORCH_DEFAULT_NEGATIVE_SLOPE),))
    )

    assert gain == 0.5773502691896257
    assert relative_error(uniform_bound(kaiming_std(784, gain)), 1 / 28) <= 1e-12
    assert torch_default_bias_bound(784) == 1 / 28
    assert torch_default_bias_bound(0) == 0.0


def test_lecun_is_one_over_root_fan_in():
    assert lecun_std(784) == 1 / 28
    assert lecun_std(100) == 0.1


# --- Truncated normals -------------------------------------------------------------


def test_trunc_normal_std_002_cut_at_004():
    std = truncated_normal_std(0.0, 0.02, -0.04, 0.04)

    assert abs(std - 0.0175925) <= 1e-6
    # The symmetric closed form: σ·√(1 − 2βφ(β)/(2Φ(β) − 1)) at β = 2.
    beta = 2.0
    density = math.exp(-beta * beta / 2) / math.sqrt(2 * math.pi)
    closed = 0.02 * math.sqrt(1 - 2 * beta * density / math.erf(beta / math.sqrt(2)))
    assert relative_error(std, closed) <= 1e-13


def test_trunc_normal_with_pytorchs_default_bounds_changes_nothing():
    assert relative_error(truncated_normal_std(0.0, 0.02, -2.0, 2.0), 0.02) <= 1e-12
    assert truncated_normal_mean(0.0, 0.02, -2.0, 2.0) == 0.0


def test_the_keras_constant_is_the_std_of_a_normal_cut_at_two():
    assert relative_error(truncated_normal_std(0.0, 1.0, -2.0, 2.0), 0.879626) <= 1e-6
    assert (
        relative_error(
            truncated_normal_std(0.0, 1.0, -2.0, 2.0), KERAS_TRUNCATED_NORMAL_STD
        )
        <= 1e-15
    )


@st.composite
def truncations(draw):
    """A normal and bounds at most 4σ out with at least 1σ between them.

    There scipy's closed form holds 12 digits; in narrower intervals farther out
    it loses them, and those are checked against quadrature below.
    """
    mean = draw(st.floats(-10.0, 10.0))
    std = draw(st.floats(1e-3, 1e2))
    alpha = draw(st.floats(-4.0, 3.0))
    beta = draw(st.floats(alpha + 1.0, 4.0))
    return mean, std, mean + alpha * std, mean + beta * std


@settings(max_examples=300, deadline=None)
@given(truncations())
def test_truncated_moments_match_scipy_truncnorm(case):
    mean, std, lower, upper = case
    alpha, beta = (lower - mean) / std, (upper - mean) / std

    expected_std = truncnorm.std(alpha, beta, loc=mean, scale=std)
    expected_mean = truncnorm.mean(alpha, beta, loc=mean, scale=std)

    assert relative_error(
        truncated_normal_std(mean, std, lower, upper), expected_std
    ) <= (1e-12)
    assert abs(truncated_normal_mean(mean, std, lower, upper) - expected_mean) <= (
        1e-12 * max(abs(expected_mean), std)
    )


def _quadrature_std(alpha: float, beta: float) -> float:
    """Std of N(0, 1) cut to [alpha, beta], by adaptive quadrature.

    Integrated in t = x − c, c the point of the interval nearest 0, where the
    density relative to φ(c) is exp(−c·t − t²/2): no digits lost in the tails.
    """
    centre = min(max(0.0, alpha), beta)

    def moment(power: int) -> float:
        return integrate.quad(
            lambda t: t**power * math.exp(-centre * t - t * t / 2),
            alpha - centre,
            beta - centre,
            epsabs=0.0,
            epsrel=1e-13,
            limit=200,
        )[0]

    mass, first, second = moment(0), moment(1), moment(2)
    return math.sqrt(second / mass - (first / mass) ** 2)


@settings(max_examples=100, deadline=None)
@given(st.floats(-30.0, 30.0), st.floats(1e-3, 3.0), st.booleans())
def test_narrow_and_far_cuts_keep_their_digits(start, width, mirrored):
    alpha, beta = (-start - width, -start) if mirrored else (start, start + width)

    expected = _quadrature_std(alpha, beta)

    assert (
        relative_error(truncated_normal_std(0.0, 1.0, alpha, beta), expected) <= 1e-12
    )


# Every trunc_normal the service accepts: |mean|, |a|, |b| ≤ 1e6, 0 < std ≤ 1e6.
_OPTION = st.floats(-1e6, 1e6, allow_subnormal=True)


@settings(max_examples=300, deadline=None)
@given(
    mean=_OPTION,
    std=st.floats(5e-324, 1e6, allow_subnormal=True),
    bounds=st.lists(_OPTION, min_size=2, max_size=2, unique=True).map(sorted),
)
def test_every_accepted_truncation_has_finite_moments_inside_the_cut(mean, std, bounds):
    lower, upper = bounds

    drawn_mean = truncated_normal_mean(mean, std, lower, upper)
    drawn_std = truncated_normal_std(mean, std, lower, upper)

    assert lower <= drawn_mean <= upper
    assert 0.0 <= drawn_std <= std
    assert math.isfinite(drawn_std)


@pytest.mark.parametrize(
    ("mean", "std", "lower", "upper", "expected_mean"),
    [
        # (b − μ)/σ overflows: the mass sits at the bound nearest the mean.
        (1e6, 5e-324, -1e6, -1.0, -1.0),
        (-1e6, 5e-324, 1.0, 1e6, 1.0),
        # 1e12 σ below the cut: √(c² + 184) − c would cancel to 0.
        (1e6, 1e-6, -1e6, -1.0, -1.0),
        # 1e156 σ away: the variance underflows.
        (1.0, 1e-150, -1.0, 0.0, 0.0),
    ],
)
def test_a_cut_far_beyond_the_mean_collapses_onto_its_bound(
    mean, std, lower, upper, expected_mean
):
    assert truncated_normal_mean(mean, std, lower, upper) == pytest.approx(
        expected_mean, abs=1e-12
    )
    assert truncated_normal_std(mean, std, lower, upper) <= std * 1e-6


@given(st.floats(1e-3, 10.0))
def test_a_symmetric_cut_keeps_the_mean(half_width):
    assert truncated_normal_mean(0.5, 1.0, 0.5 - half_width, 0.5 + half_width) == (
        pytest.approx(0.5, abs=1e-15)
    )


# --- Keras 3 and JAX VarianceScaling ---------------------------------------------


def test_keras_he_normal_on_dense_784_256():
    variance = variance_scaling_variance(2.0, "fan_in", 784, 256, "keras")
    sampler_std = variance_scaling_sampler_std(variance)
    effective = truncated_normal_std(
        0.0, sampler_std, -2 * sampler_std, 2 * sampler_std
    )

    assert sampler_std == 0.057419456326711804
    assert abs(effective - 0.050507627) <= 1e-9
    assert relative_error(effective, math.sqrt(variance)) <= 1e-15


def test_variance_scaling_modes():
    assert variance_scaling_variance(1.0, "fan_out", 784, 256) == 1 / 256
    assert variance_scaling_variance(1.0, "fan_avg", 784, 256) == 1 / 520
    assert variance_scaling_variance(2.0, "fan_geo_avg", 16, 64, "jax") == 2 / 32
    assert variance_scaling_uniform_limit(1 / 3) == 1.0


def test_keras_clamps_the_fan_to_one_and_jax_does_not():
    assert variance_scaling_variance(1.0, "fan_avg", 1, 0, "keras") == 1.0
    assert variance_scaling_variance(1.0, "fan_avg", 1, 0, "jax") == 2.0


# --- Uniform and orthogonal --------------------------------------------------------


@given(st.floats(1e-6, 1e3))
def test_uniform_bound_and_std_invert_each_other(std):
    bound = uniform_bound(std)

    assert relative_error(uniform_std(-bound, bound), std) <= 1e-15


def _orthogonal_sample(rows: int, cols: int, gain: float, seed: int) -> np.ndarray:
    """What torch.nn.init.orthogonal_ draws: QR of a Gaussian, signs fixed."""
    rng = np.random.default_rng(seed)
    flat = rng.standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return gain * q


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40), st.integers(1, 40), st.floats(0.1, 3.0), st.integers(0, 2**32)
)
def test_orthogonal_rms_matches_a_sampled_orthogonal_matrix(rows, cols, gain, seed):
    weight = _orthogonal_sample(rows, cols, gain, seed)
    gram = weight @ weight.T if rows <= cols else weight.T @ weight

    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), atol=1e-12)
    rms = math.sqrt(float(np.mean(weight**2)))
    assert relative_error(orthogonal_element_rms(rows, cols, gain), rms) <= 1e-12


# --- Mean field and the depth-aware schemes ------------------------------------------


def test_mean_field_weight_and_bias_stds():
    assert mean_field_weight_std(2.0, 784) == math.sqrt(2.0 / 784)
    assert mean_field_bias_std(0.05) == math.sqrt(0.05)


def test_gpt2_and_megatron_scale_output_projections_by_root_branch_count():
    # nanoGPT: 0.02 / math.sqrt(2 * n_layer) for n_layer = 12.
    assert depth_scaled_std(0.02, 24) == 0.02 / math.sqrt(2 * 12)
    assert relative_error(depth_scaled_std(0.02, 24), 0.004082482904638631) <= 1e-15


def test_small_init_and_wang_init():
    assert relative_error(small_init_std(768), math.sqrt(2 / 3840)) <= 1e-15
    assert relative_error(wang_init_std(12, 768), 2 / (12 * math.sqrt(768))) <= 1e-15


@given(st.integers(1, 10_000), st.integers(2, 8))
def test_fixup_scale_is_l_to_the_minus_one_over_2m_minus_2(branch_count, depth):
    scale = fixup_branch_scale(branch_count, depth)

    # m = 2 is the ResNet case of the paper: L^(-1/2).
    assume(depth == 2 or branch_count > 1)
    assert relative_error(scale ** (2 * depth - 2), 1 / branch_count) <= 1e-12


def test_fixup_two_layer_branches_scale_by_one_over_root_l():
    assert fixup_branch_scale(16, 2) == 0.25


def test_deepnorm_constants_for_an_18_layer_model():
    assert relative_error(deepnorm_beta(18), 144**-0.25) <= 1e-15
    assert relative_error(deepnorm_alpha(18), 36**0.25) <= 1e-15
    # α·β = (2N/8N)^(1/4) = 1/√2 whatever N.
    assert relative_error(deepnorm_alpha(18) * deepnorm_beta(18), math.sqrt(0.5)) <= (
        1e-15
    )
